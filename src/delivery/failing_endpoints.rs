//! The failing-endpoint policy and mlhook's own events about it.
//!
//! After each recorded attempt: a `410 Gone` disables the webhook at once
//! (Standard Webhooks); an exhausted delivery disables it when it has had no
//! success for the failure window; the first success after failures is a
//! recovery. Each of these is announced as an `mlhook.*` event — except about
//! deliveries of `mlhook.*` events themselves, so a failing alert channel
//! cannot feed itself.

use std::sync::Arc;

use serde_json::json;

use super::{Job, Notice, Shared};
use crate::catalog::operational::{DELIVERY_EXHAUSTED, DELIVERY_RECOVERED, WEBHOOK_DISABLED};
use crate::ids::{ProjectId, WebhookId, millis_to_rfc3339, now_millis};
use crate::store::{AttemptRecord, DeliveryStatus};

pub(super) fn observe(shared: &Arc<Shared>, record: &AttemptRecord, job: &Job) {
    let about_ourselves = job.event.event_type.starts_with("mlhook.");
    if record.succeeded {
        let was_failing = shared
            .failing
            .lock()
            .expect("failing lock poisoned")
            .remove(&job.webhook_id);
        if was_failing && !about_ourselves {
            announce_recovery(shared, job);
        }
        return;
    }
    shared
        .failing
        .lock()
        .expect("failing lock poisoned")
        .insert(job.webhook_id.clone());
    if record.response_status == Some(410) {
        let shared = shared.clone();
        let webhook_id = job.webhook_id.clone();
        tokio::spawn(async move {
            disable(&shared, &webhook_id, "the endpoint answered 410 Gone").await
        });
    } else if record.status == DeliveryStatus::Exhausted {
        if !about_ourselves {
            announce_exhausted(shared, record, job);
        }
        let shared = shared.clone();
        let webhook_id = job.webhook_id.clone();
        tokio::spawn(async move { disable_if_failing_too_long(&shared, &webhook_id).await });
    }
}

/// Disables the webhook when neither a success nor its creation falls
/// within the failure window.
async fn disable_if_failing_too_long(shared: &Arc<Shared>, webhook_id: &WebhookId) {
    let Some(webhook) = shared.subscriptions.get(webhook_id) else {
        return;
    };
    let window = shared.config.failure_window.as_millis() as i64;
    let last_success = match shared.store.last_success_at(webhook_id).await {
        Ok(at) => at,
        Err(e) => {
            tracing::warn!(
                webhook_id = webhook_id.as_str(),
                error = %e,
                "could not read the last success"
            );
            return;
        }
    };
    let healthy_since = last_success
        .unwrap_or(webhook.created_at)
        .max(webhook.created_at);
    if healthy_since < now_millis() - window {
        let days = shared.config.failure_window.as_secs_f64() / 86_400.0;
        let reason = format!(
            "no successful delivery for {} with a delivery exhausted",
            humanise(days)
        );
        disable(shared, webhook_id, &reason).await;
    }
}

fn humanise(days: f64) -> String {
    if days >= 1.0 {
        format!("{days:.0} day(s)")
    } else {
        format!("{:.0} second(s)", days * 86_400.0)
    }
}

/// Disables a webhook, pauses its deliveries, refreshes routing, announces it.
pub(super) async fn disable(shared: &Arc<Shared>, webhook_id: &WebhookId, reason: &str) {
    let Some(webhook) = shared.subscriptions.get(webhook_id) else {
        return;
    };
    let at = now_millis();
    match shared.store.disable_webhook(webhook_id, reason, at).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(
                webhook_id = webhook_id.as_str(),
                error = %e,
                "could not disable failing webhook"
            );
            return;
        }
    }
    shared.metrics.webhook_disabled();
    tracing::warn!(webhook_id = webhook_id.as_str(), reason, "webhook disabled");
    if let Err(e) = shared
        .subscriptions
        .refresh_webhooks(&*shared.store, &webhook.project_id)
        .await
    {
        tracing::error!(
            webhook_id = webhook_id.as_str(),
            error = %e,
            "could not refresh routing after disabling"
        );
    }
    notify(
        shared,
        &webhook.project_id,
        WEBHOOK_DISABLED,
        json!({
            "webhook_id": webhook.id,
            "webhook_name": webhook.name,
            "reason": reason,
            "disabled_at": millis_to_rfc3339(at),
        }),
    );
}

fn announce_exhausted(shared: &Shared, record: &AttemptRecord, job: &Job) {
    let extra = json!({
        "attempts": record.attempt,
        "last_status_code": record.response_status,
        "last_error": record.error_message,
    });
    announce_delivery(shared, job, DELIVERY_EXHAUSTED, extra);
}

fn announce_recovery(shared: &Shared, job: &Job) {
    let extra = json!({"recovered_at": millis_to_rfc3339(now_millis())});
    announce_delivery(shared, job, DELIVERY_RECOVERED, extra);
}

/// An event about one delivery: who and what it was, then `extra`'s fields.
fn announce_delivery(
    shared: &Shared,
    job: &Job,
    event_type: &'static str,
    extra: serde_json::Value,
) {
    let mut payload = json!({
        "delivery_id": job.delivery_id,
        "webhook_id": job.webhook_id,
        "webhook_name": webhook_name(shared, &job.webhook_id),
        "event_id": job.event.id,
        "event_type": job.event.event_type,
    });
    if let (Some(fields), serde_json::Value::Object(more)) = (payload.as_object_mut(), extra) {
        fields.extend(more);
    }
    notify(shared, &job.event.project_id, event_type, payload);
}

fn webhook_name(shared: &Shared, webhook_id: &WebhookId) -> String {
    shared
        .subscriptions
        .get(webhook_id)
        .map(|w| w.name.clone())
        .unwrap_or_default()
}

fn notify(
    shared: &Shared,
    project_id: &ProjectId,
    event_type: &'static str,
    payload: serde_json::Value,
) {
    let notice = Notice {
        project_id: project_id.clone(),
        event_type,
        payload,
    };
    if shared.notices.send(notice).is_err() {
        tracing::warn!(event_type, "operational event dropped: publisher stopped");
    }
}
