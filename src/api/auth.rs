//! Bearer tokens: generation, hashing, and the `Caller` extractor that every
//! `/v1` handler takes. Tokens are stored as SHA-256 hashes (they are 256-bit
//! random, so a fast hash is enough); the clear token exists only in the
//! answer that creates it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::error::ApiError;
use crate::ids::{ProjectId, TokenId};
use crate::store::{Project, TokenKind, TokenRecord};

const TOKEN_PREFIX: &str = "mlh_";
/// How long a looked-up token is trusted before it is read again (revocation delay).
const CACHE_TTL: Duration = Duration::from_secs(5);

/// A new token, in clear (shown once) and as its stored record.
pub fn generate_token(
    kind: TokenKind,
    project_id: Option<&ProjectId>,
    name: Option<String>,
) -> (String, TokenRecord) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let record = TokenRecord {
        id: TokenId::generate(),
        project_id: project_id.cloned(),
        kind,
        token_hash: hash_token(&token),
        prefix: token[..TOKEN_PREFIX.len() + 6].to_string(),
        name,
        created_at: crate::ids::now_millis(),
        revoked_at: None,
    };
    (token, record)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who is calling: what the token may reach, and which token it was.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access: Access,
    /// Names the token in the audit log: its prefix and kind, never the token.
    pub actor: String,
}

/// What a token may reach: everything (admin) or one project.
#[derive(Debug, Clone)]
pub enum Access {
    Admin,
    Project {
        project_id: ProjectId,
        kind: TokenKind,
    },
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self.access, Access::Admin)
    }

    pub fn is_read_only(&self) -> bool {
        matches!(
            self.access,
            Access::Project {
                kind: TokenKind::Read,
                ..
            }
        )
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.access {
            Access::Admin => Ok(()),
            Access::Project { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this route needs the admin token",
            )),
        }
    }

    /// Secrets are shown to tokens that may write, never to read-only ones.
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.is_read_only() {
            return Err(read_only());
        }
        Ok(())
    }

    /// Whether the caller may see `project_id` at all. A project token asking
    /// for another project gets the same 404 as for a project that does not exist.
    pub fn may_see(&self, project_id: &ProjectId) -> bool {
        match &self.access {
            Access::Admin => true,
            Access::Project {
                project_id: own, ..
            } => own == project_id,
        }
    }

    /// The id of a project the caller may see, or 404, from memory: the
    /// ingest path's check, without a store query.
    pub fn project_id(
        &self,
        state: &AppState,
        project_id: &ProjectId,
    ) -> Result<ProjectId, ApiError> {
        if self.may_see(project_id) && state.subscriptions.project_exists(project_id) {
            Ok(project_id.clone())
        } else {
            Err(ApiError::not_found("project"))
        }
    }

    /// Loads a project the caller may see, or 404.
    pub async fn project(
        &self,
        state: &AppState,
        project_id: &ProjectId,
    ) -> Result<Project, ApiError> {
        if !self.may_see(project_id) {
            return Err(ApiError::not_found("project"));
        }
        state
            .store
            .get_project(project_id)
            .await?
            .ok_or_else(|| ApiError::not_found("project"))
    }
}

/// Recently verified tokens, so the ingest path does not read the store per request.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Caller> {
        let entries = self.entries.lock().expect("token cache poisoned");
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(c, _)| c.clone())
    }

    /// Forgets every verified token: after a revocation.
    pub fn clear(&self) {
        self.entries.lock().expect("token cache poisoned").clear();
    }

    fn put(&self, hash: String, caller: Caller) {
        let mut entries = self.entries.lock().expect("token cache poisoned");
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(hash, (caller, Instant::now()));
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let client = connected_address(&parts.extensions);
        state.auth_failures.check(client)?;
        let caller = match bearer(parts) {
            Some(token) => resolve(state, token).await?,
            // The web console's session cookie, with its CSRF checks.
            None => match super::session_cookie::session_token(parts)? {
                Some(token) => resolve(state, &token).await?,
                None => None,
            },
        };
        let Some(caller) = caller else {
            state.auth_failures.record(client);
            return Err(ApiError::unauthorized());
        };
        if caller.is_read_only() && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(read_only());
        }
        Ok(caller)
    }
}

fn read_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this token may only read",
    )
}

/// The peer address recorded by the server's connect info, if any.
pub fn connected_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Slows down token guessing: a client whose requests failed authentication
/// `per_minute` times within a minute is answered 429 until the minute ends,
/// without its tokens being looked at.
pub struct AuthFailures {
    per_minute: u32,
    clients: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

const FAILURE_WINDOW: Duration = Duration::from_secs(60);

impl AuthFailures {
    pub fn new(per_minute: u32) -> AuthFailures {
        AuthFailures {
            per_minute,
            clients: Mutex::default(),
        }
    }

    /// 429 while `client` is over its failures; also used by routes that
    /// authenticate otherwise (the MLflow source's signature).
    pub fn check(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let clients = self.clients.lock().expect("auth failures poisoned");
        let Some((since, count)) = clients.get(&client) else {
            return Ok(());
        };
        let elapsed = since.elapsed();
        if elapsed >= FAILURE_WINDOW || *count < self.per_minute {
            return Ok(());
        }
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_authentications",
            "too many requests with a missing or invalid token; wait and retry",
        );
        error.retry_after_secs = Some((FAILURE_WINDOW - elapsed).as_secs().max(1) as u32);
        Err(error)
    }

    pub fn record(&self, client: Option<IpAddr>) {
        let mut clients = self.clients.lock().expect("auth failures poisoned");
        if clients.len() > 10_000 {
            clients.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = clients.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn resolve(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let hash = hash_token(token);
    if let Some(admin) = &state.admin_token_hash
        && bool::from(admin.as_bytes().ct_eq(hash.as_bytes()))
    {
        return Ok(Some(Caller {
            access: Access::Admin,
            actor: "admin (MLHOOK_ADMIN_TOKEN)".into(),
        }));
    }
    if let Some(caller) = state.token_cache.get(&hash) {
        return Ok(Some(caller));
    }
    let Some(record) = state.store.find_token(&hash).await? else {
        return Ok(None);
    };
    if record.revoked_at.is_some() {
        return Ok(None);
    }
    let access = match (record.kind, record.project_id) {
        (TokenKind::Admin, _) => Access::Admin,
        (kind, Some(project_id)) => Access::Project { project_id, kind },
        (_, None) => return Ok(None),
    };
    let caller = Caller {
        access,
        actor: format!("{} ({})", record.prefix, record.kind.as_str()),
    };
    state.token_cache.put(hash, caller.clone());
    Ok(Some(caller))
}
