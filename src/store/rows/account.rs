//! Tokens and audit records as their rows hold them (projects map to
//! `Project` field for field: it derives `FromRow` itself).

use super::super::{AuditRecord, StoreError, TokenKind, TokenRecord};
use super::{from_json, parse_name};
use crate::ids::{ProjectId, TokenId};

#[derive(sqlx::FromRow)]
pub(in crate::store) struct TokenColumns {
    id: TokenId,
    project_id: Option<ProjectId>,
    kind: String,
    token_hash: String,
    prefix: String,
    name: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenColumns> for TokenRecord {
    type Error = StoreError;

    fn try_from(c: TokenColumns) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            kind: parse_name("token kind", &c.kind, TokenKind::parse)?,
            id: c.id,
            project_id: c.project_id,
            token_hash: c.token_hash,
            prefix: c.prefix,
            name: c.name,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
        })
    }
}

/// `changes` is read in place: it is parsed, never kept as text.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct AuditColumns<'r> {
    id: String,
    project_id: Option<ProjectId>,
    at: i64,
    actor: String,
    action: String,
    target_id: String,
    changes: &'r str,
}

impl TryFrom<AuditColumns<'_>> for AuditRecord {
    type Error = StoreError;

    fn try_from(c: AuditColumns<'_>) -> Result<Self, StoreError> {
        Ok(AuditRecord {
            changes: from_json("changes", c.changes)?,
            id: c.id,
            project_id: c.project_id,
            at: c.at,
            actor: c.actor,
            action: c.action,
            target_id: c.target_id,
        })
    }
}
