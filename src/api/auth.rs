//! Bearer tokens: generation, hashing, and the `Caller` extractor that every
//! `/v1` handler takes. Tokens are stored as SHA-256 hashes (they are 256-bit
//! random, so a fast hash is enough); the clear token exists only in the
//! answer that creates it.

use std::collections::HashMap;
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
use crate::store::{Project, TokenKind, TokenRecord};

const TOKEN_PREFIX: &str = "mlh_";
/// How long a looked-up token is trusted before it is read again (revocation delay).
const CACHE_TTL: Duration = Duration::from_secs(5);

/// A new token, in clear (shown once) and as its stored record.
pub fn generate_token(
    kind: TokenKind,
    project_id: Option<&str>,
    name: Option<String>,
) -> (String, TokenRecord) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let record = TokenRecord {
        id: crate::ids::new_id("tok"),
        project_id: project_id.map(str::to_string),
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

/// Who is calling: the admin, or a token of one project.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    Project { project_id: String, kind: TokenKind },
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Project { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this route needs the admin token",
            )),
        }
    }

    /// Secrets are shown to tokens that may write, never to read-only ones.
    pub fn require_write(&self) -> Result<(), ApiError> {
        match self {
            Caller::Project {
                kind: TokenKind::Read,
                ..
            } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token may only read",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the caller may see `project_id` at all. A project token asking
    /// for another project gets the same 404 as for a project that does not exist.
    pub fn may_see(&self, project_id: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Project {
                project_id: own, ..
            } => own == project_id,
        }
    }

    /// The id of a project the caller may see, or 404, from memory: the
    /// ingest path's check, without a store query.
    pub fn project_id(&self, state: &AppState, project_id: &str) -> Result<String, ApiError> {
        if self.may_see(project_id) && state.subscriptions.project_exists(project_id) {
            Ok(project_id.to_string())
        } else {
            Err(ApiError::not_found("project"))
        }
    }

    /// Loads a project the caller may see, or 404.
    pub async fn project(&self, state: &AppState, project_id: &str) -> Result<Project, ApiError> {
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
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let caller = resolve(state, token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if let Caller::Project {
            kind: TokenKind::Read,
            ..
        } = caller
            && !matches!(parts.method, Method::GET | Method::HEAD)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token may only read",
            ));
        }
        Ok(caller)
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
        return Ok(Some(Caller::Admin));
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
    let caller = match (record.kind, record.project_id) {
        (TokenKind::Admin, _) => Caller::Admin,
        (kind, Some(project_id)) => Caller::Project { project_id, kind },
        (_, None) => return Ok(None),
    };
    state.token_cache.put(hash, caller.clone());
    Ok(Some(caller))
}
