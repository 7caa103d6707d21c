//! MLflow sources and their logs as their rows hold them.

use super::super::StoreError;
use super::{parse_name, unsigned};
use crate::ids::{ProjectId, SourceId};
use crate::sources::{PreviousSecret, Source, SourceKind, SourceRejection};

/// A source with its secret still sealed (`Source::opened` opens it).
#[derive(sqlx::FromRow)]
pub(in crate::store) struct SourceColumns {
    id: SourceId,
    project_id: ProjectId,
    kind: String,
    name: String,
    secret: Option<String>,
    tolerance_secs: i32,
    workspace_name: Option<String>,
    created_at: i64,
    updated_at: i64,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<i64>,
}

impl TryFrom<SourceColumns> for Source {
    type Error = StoreError;

    fn try_from(c: SourceColumns) -> Result<Self, StoreError> {
        Ok(Source {
            kind: parse_name("source kind", &c.kind, SourceKind::parse)?,
            tolerance_secs: unsigned("tolerance_secs", c.tolerance_secs)?,
            id: c.id,
            project_id: c.project_id,
            name: c.name,
            secret: c.secret,
            workspace_name: c.workspace_name,
            previous_secret: c
                .previous_secret
                .zip(c.previous_secret_expires_at)
                .map(|(secret, expires_at)| PreviousSecret { secret, expires_at }),
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(in crate::store) struct RejectionColumns {
    source_id: SourceId,
    at: i64,
    status: i32,
    code: String,
    reason: String,
    delivery_id: Option<String>,
    event_type: Option<String>,
    body: Option<String>,
}

impl TryFrom<RejectionColumns> for SourceRejection {
    type Error = StoreError;

    fn try_from(c: RejectionColumns) -> Result<Self, StoreError> {
        Ok(SourceRejection {
            status: unsigned("status", c.status)?,
            source_id: c.source_id,
            at: c.at,
            code: c.code,
            reason: c.reason,
            delivery_id: c.delivery_id,
            event_type: c.event_type,
            body: c.body,
        })
    }
}
