//! What a delivery's body looks like at its destination. Each format renders
//! an event for a webhook; signing, headers, retries and the log are the same
//! for all of them. (Slack, Teams, Discord, GitHub and templates join later.)

mod json;

use bytes::Bytes;

use crate::catalog::Family;
use crate::webhook::{Format, Webhook};

/// The event as the delivery path sees it: shared by every delivery of it.
#[derive(Debug)]
pub struct EventData {
    pub id: String,
    pub project_id: String,
    pub event_type: String,
    pub family: Option<Family>,
    /// The normalised payload, compact JSON.
    pub payload: String,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub content_type: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("stored payload is not valid JSON: {0}")]
    BadPayload(#[from] serde_json::Error),
}

/// Renders `event` in the webhook's format.
pub fn render(webhook: &Webhook, event: &EventData) -> Result<Rendered, RenderError> {
    match webhook.format {
        Format::Json => json::render(webhook, event),
    }
}
