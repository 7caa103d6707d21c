//! Events, deliveries and attempts as their rows hold them, and a claimed
//! delivery as a claim answers it.

use super::super::{AttemptRow, DeliveryRow, DueDelivery, EventRow, StoreError};
use super::{from_json, unsigned};
use crate::ids::{DeliveryId, EventId, ProjectId, WebhookId};

/// `object` is read in place: it is parsed, never kept as text.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct EventColumns<'r> {
    id: EventId,
    project_id: ProjectId,
    event_type: String,
    object: Option<&'r str>,
    payload: String,
    is_test: bool,
    created_at: i64,
}

impl TryFrom<EventColumns<'_>> for EventRow {
    type Error = StoreError;

    fn try_from(c: EventColumns<'_>) -> Result<Self, StoreError> {
        Ok(EventRow {
            object: c.object.map(|o| from_json("object", o)).transpose()?,
            id: c.id,
            project_id: c.project_id,
            event_type: c.event_type,
            payload: c.payload,
            is_test: c.is_test,
            created_at: c.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(in crate::store) struct DeliveryColumns {
    id: DeliveryId,
    project_id: ProjectId,
    event_id: EventId,
    webhook_id: WebhookId,
    event_type: String,
    status: String,
    is_test: bool,
    attempts: i32,
    retry_base: i32,
    next_attempt_at: Option<i64>,
    last_status_code: Option<i32>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeliveryColumns> for DeliveryRow {
    type Error = StoreError;

    fn try_from(c: DeliveryColumns) -> Result<Self, StoreError> {
        Ok(DeliveryRow {
            attempts: unsigned("attempts", c.attempts)?,
            retry_base: unsigned("retry_base", c.retry_base)?,
            last_status_code: c
                .last_status_code
                .map(|code| unsigned("last_status_code", code))
                .transpose()?,
            id: c.id,
            project_id: c.project_id,
            event_id: c.event_id,
            webhook_id: c.webhook_id,
            event_type: c.event_type,
            status: c.status,
            is_test: c.is_test,
            next_attempt_at: c.next_attempt_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(in crate::store) struct AttemptColumns {
    attempt: i32,
    manual: bool,
    started_at: i64,
    duration_ms: i64,
    request_url: String,
    request_headers: String,
    request_body: Option<String>,
    succeeded: bool,
    response_status: Option<i32>,
    response_headers: Option<String>,
    response_body: Option<String>,
    response_truncated: bool,
    error_kind: Option<String>,
    error_message: Option<String>,
    next_attempt_at: Option<i64>,
}

impl TryFrom<AttemptColumns> for AttemptRow {
    type Error = StoreError;

    fn try_from(c: AttemptColumns) -> Result<Self, StoreError> {
        Ok(AttemptRow {
            attempt: unsigned("attempt", c.attempt)?,
            response_status: c
                .response_status
                .map(|code| unsigned("response_status", code))
                .transpose()?,
            manual: c.manual,
            started_at: c.started_at,
            duration_ms: c.duration_ms,
            request_url: c.request_url,
            request_headers: c.request_headers,
            request_body: c.request_body,
            succeeded: c.succeeded,
            response_headers: c.response_headers,
            response_body: c.response_body,
            response_truncated: c.response_truncated,
            error_kind: c.error_kind,
            error_message: c.error_message,
            next_attempt_at: c.next_attempt_at,
        })
    }
}

/// A claimed delivery with its event, as both stores' claims select it
/// (`id` is the delivery's).
#[derive(sqlx::FromRow)]
pub(in crate::store) struct DueColumns {
    id: DeliveryId,
    webhook_id: WebhookId,
    project_id: ProjectId,
    event_id: EventId,
    event_type: String,
    payload: String,
    attempts: i32,
    retry_base: i32,
}

impl TryFrom<DueColumns> for DueDelivery {
    type Error = StoreError;

    fn try_from(c: DueColumns) -> Result<Self, StoreError> {
        Ok(DueDelivery {
            attempts: unsigned("attempts", c.attempts)?,
            retry_base: unsigned("retry_base", c.retry_base)?,
            delivery_id: c.id,
            webhook_id: c.webhook_id,
            project_id: c.project_id,
            event_id: c.event_id,
            event_type: c.event_type,
            payload: c.payload,
        })
    }
}
