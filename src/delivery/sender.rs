//! One HTTP attempt: render, sign, add headers, POST through the pooled
//! client, read (a bounded part of) the answer, classify what went wrong.
//! The format decides the body, may send elsewhere than the webhook's URL
//! (GitHub), adds its own headers (secret ones masked in the log) and says
//! how the answer is judged (Slack wants 200 `ok`).

use std::time::{Duration, Instant};

use std::sync::Arc;

use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};

use crate::netguard::{Blocked, GuardedResolver, NetworkPolicy};

use crate::formats::{self, Acceptance, EventData};
use crate::webhook::Webhook;

/// Response bodies are kept up to this size in the attempt log.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Keep-alive connections kept open per destination host. Webhooks often
/// share a host (hooks.slack.com; one receiver with a path per webhook): with
/// only one lane's worth kept, their lanes together opened a new connection
/// for about one attempt in ten, and fan-out slowed (docs/performance.md).
const MAX_IDLE_PER_HOST: usize = 1024;
/// What the log shows in place of a secret.
pub const MASK: &str = "********";

#[derive(Clone)]
pub struct Sender {
    network: Arc<NetworkPolicy>,
    client: reqwest::Client,
    user_agent: String,
}

/// Everything learned from one attempt.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub started_at: i64,
    pub duration: Duration,
    pub url: String,
    /// The headers as sent, secrets masked, in send order.
    pub request_headers: Vec<(String, String)>,
    pub request_body: bytes::Bytes,
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub error: Option<AttemptError>,
    pub retry_after: Option<Duration>,
}

impl SendResult {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptError {
    /// blocked, dns, connect, tls, timeout, http_status, rejected, network, render, request
    pub kind: &'static str,
    pub message: String,
}

impl Sender {
    pub fn new(timeout: Duration, lane_concurrency: usize, network: Arc<NetworkPolicy>) -> Sender {
        let client = reqwest::Client::builder()
            // Every host name is resolved through the guard: only allowed
            // addresses ever reach the connector.
            .dns_resolver(Arc::new(GuardedResolver::new(network.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST.max(lane_concurrency))
            .tcp_nodelay(true)
            .build()
            .expect("the HTTP client configuration is static and valid");
        Sender {
            network,
            client,
            user_agent: format!("mlhook/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Sends `event` to `webhook` as delivery `delivery_id`.
    pub async fn send(
        &self,
        webhook: &Webhook,
        event: &EventData,
        delivery_id: &str,
    ) -> SendResult {
        let started_at = crate::ids::now_millis();
        let clock = Instant::now();
        let mut result = SendResult {
            started_at,
            duration: Duration::ZERO,
            url: webhook.url.clone(),
            request_headers: Vec::new(),
            request_body: bytes::Bytes::new(),
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            response_truncated: false,
            error: None,
            retry_after: None,
        };
        match self.build(webhook, event, delivery_id, started_at / 1000) {
            Ok(request) => {
                result.request_headers = request.shown;
                result.request_body = request.body.clone();
                self.post(&request.url, request.headers, request.body, &mut result)
                    .await;
                result.url = request.url;
                judge(request.accept, &mut result);
                // A receiver may echo what it was sent: the answer is masked too.
                request.secrets.mask(&mut result);
            }
            Err(error) => result.error = Some(error),
        }
        result.duration = clock.elapsed();
        result
    }

    /// The request to send, with its headers as the log may show them.
    fn build(
        &self,
        webhook: &Webhook,
        event: &EventData,
        delivery_id: &str,
        timestamp: i64,
    ) -> Result<Outgoing, AttemptError> {
        let rendered = formats::render(webhook, event).map_err(|e| AttemptError {
            kind: "render",
            message: e.to_string(),
        })?;
        // During a key rotation the old key signs too: one header, two signatures.
        let signature = crate::signing::sign_all(
            webhook.signing_keys(timestamp * 1000),
            delivery_id,
            timestamp,
            &rendered.body,
        )
        .map_err(|e| AttemptError {
            kind: "render",
            message: e.to_string(),
        })?;
        let mut out =
            OutgoingHeaders::with_capacity(5 + rendered.headers.len() + webhook.headers.len() + 1);
        out.add_named(CONTENT_TYPE, rendered.content_type, false);
        out.add_named(USER_AGENT, &self.user_agent, false);
        out.add_named(WEBHOOK_ID, delivery_id, false);
        out.add_named(WEBHOOK_TIMESTAMP, &timestamp.to_string(), false);
        out.add_named(WEBHOOK_SIGNATURE, &signature, false);
        for h in &rendered.headers {
            out.add(h.name, &h.value, h.secret);
        }
        for h in &webhook.headers {
            out.add(&h.key, &h.value, h.protected);
        }
        if let Some(secret) = &webhook.secret {
            out.add_named(AUTHORIZATION, secret, true);
        }
        let headers = out.finish()?;
        Ok(Outgoing {
            url: rendered.url.unwrap_or_else(|| webhook.url.clone()),
            headers: headers.wire,
            shown: headers.shown,
            secrets: headers.secrets,
            body: rendered.body,
            accept: rendered.accept,
        })
    }

    async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: bytes::Bytes,
        result: &mut SendResult,
    ) {
        let target = match self.check_destination(url) {
            Ok(target) => target,
            Err(error) => {
                result.error = Some(error);
                return;
            }
        };
        let response = match self
            .client
            .post(target)
            .headers(headers)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                result.error = Some(classify(&e));
                return;
            }
        };
        let status = response.status();
        result.status = Some(status.as_u16());
        result.response_headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        result.retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| super::retry::parse_retry_after(v, chrono::Utc::now()));
        read_bounded_body(response, result).await;
        if !status.is_success() && result.error.is_none() {
            let kind = "http_status";
            result.error = Some(AttemptError {
                kind,
                message: format!("receiver answered {status}"),
            });
        }
    }
}

/// A request ready to go out.
struct Outgoing {
    url: String,
    headers: HeaderMap,
    /// The same headers with secrets masked, for the attempt log.
    shown: Vec<(String, String)>,
    /// The secret values sent, to mask wherever the answer repeats them.
    secrets: Secrets,
    body: bytes::Bytes,
    accept: Acceptance,
}

/// A 2xx the destination does not count as a success (Slack without `ok`)
/// is a failed attempt of kind `rejected`.
fn judge(accept: Acceptance, result: &mut SendResult) {
    let Some(status) = result.status else { return };
    if result.error.is_some() || !(200..300).contains(&status) {
        return;
    }
    let body = result.response_body.as_deref().unwrap_or("");
    if let Err(message) = accept.judge(status, body) {
        result.error = Some(AttemptError {
            kind: "rejected",
            message,
        });
    }
}

/// mlhook's own headers (the Standard Webhooks set), named once.
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

/// Collects headers for the wire and, in parallel, their masked copy for the log.
struct OutgoingHeaders {
    wire: HeaderMap,
    shown: Vec<(String, String)>,
    secrets: Secrets,
    /// The first header that is not valid on the wire.
    invalid: Option<String>,
}

impl OutgoingHeaders {
    fn with_capacity(n: usize) -> OutgoingHeaders {
        OutgoingHeaders {
            wire: HeaderMap::with_capacity(n),
            shown: Vec::with_capacity(n),
            secrets: Secrets::default(),
            invalid: None,
        }
    }

    /// A header named by the format or the webhook's configuration.
    fn add(&mut self, key: &str, value: &str, secret: bool) {
        match HeaderName::from_bytes(key.as_bytes()) {
            Ok(name) => self.add_named(name, value, secret),
            Err(_) => self.mark_invalid(key),
        }
    }

    fn add_named(&mut self, name: HeaderName, value: &str, secret: bool) {
        let Ok(mut wire_value) = HeaderValue::from_str(value) else {
            return self.mark_invalid(name.as_str());
        };
        wire_value.set_sensitive(true);
        let shown = if secret {
            self.secrets.add(value);
            MASK
        } else {
            value
        };
        self.shown
            .push((name.as_str().to_owned(), shown.to_owned()));
        self.wire.append(name, wire_value);
    }

    fn mark_invalid(&mut self, key: &str) {
        self.invalid.get_or_insert_with(|| key.to_owned());
    }

    /// The headers, once every one was valid on the wire.
    fn finish(mut self) -> Result<OutgoingHeaders, AttemptError> {
        match self.invalid {
            // Validated on save; reaching here means stored data changed under us.
            Some(key) => Err(AttemptError {
                kind: "request",
                message: format!("header {key:?} is not valid"),
            }),
            None => {
                self.secrets.finish();
                Ok(self)
            }
        }
    }
}

/// The secret values one request carries (the webhook's secret, its
/// protected header values, a format's token), masked wherever a receiver's
/// answer repeats them: the log keeps them out of the answer as out of the
/// request. Nothing to scan when the webhook has none.
#[derive(Default)]
struct Secrets(Vec<String>);

/// A credential after its scheme (`Bearer <token>`) is masked on its own
/// too, when it is at least this long: shorter, it would mask common words.
const MIN_MASKED_PART: usize = 6;

impl Secrets {
    fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        self.0.push(value.to_owned());
        if let Some((_, credential)) = value.split_once(' ') {
            let credential = credential.trim();
            if credential.len() >= MIN_MASKED_PART {
                self.0.push(credential.to_owned());
            }
        }
    }

    /// Longest first: a value that contains another is masked whole.
    fn finish(&mut self) {
        self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.0.dedup();
    }

    fn mask(&self, result: &mut SendResult) {
        if self.0.is_empty() {
            return;
        }
        for (_, value) in &mut result.response_headers {
            self.mask_text(value);
        }
        if let Some(body) = &mut result.response_body {
            self.mask_text(body);
            if result.response_truncated {
                self.mask_cut_tail(body);
            }
        }
        if let Some(error) = &mut result.error {
            self.mask_text(&mut error.message);
        }
    }

    fn mask_text(&self, text: &mut String) {
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), MASK);
            }
        }
    }

    /// A body cut at the size limit may end inside a secret: its start goes too.
    fn mask_cut_tail(&self, body: &mut String) {
        for secret in &self.0 {
            let longest = (1..secret.len())
                .rev()
                .filter(|&n| secret.is_char_boundary(n))
                .find(|&n| body.ends_with(&secret[..n]));
            if let Some(n) = longest.filter(|&n| n >= MIN_MASKED_PART.min(secret.len())) {
                body.truncate(body.len() - n);
                body.push_str(MASK);
                return;
            }
        }
    }
}

/// Reads up to `MAX_RESPONSE_BODY` bytes and notes whether there was more.
async fn read_bounded_body(mut response: reqwest::Response, result: &mut SendResult) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BODY - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    result.response_truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                result.error = Some(classify(&e));
                break;
            }
        }
    }
    result.response_body = Some(String::from_utf8_lossy(&body).into_owned());
}

impl Sender {
    /// What the resolver cannot see: the scheme and an IP-literal host. The
    /// parsed URL is what the client sends to (parsed once per attempt).
    fn check_destination(&self, url: &str) -> Result<reqwest::Url, AttemptError> {
        let blocked = |message| AttemptError {
            kind: "blocked",
            message,
        };
        let target = crate::netguard::parse_url(url).map_err(blocked)?;
        self.network.check_parsed_url(&target).map_err(blocked)?;
        Ok(target)
    }
}

/// Names what failed, from reqwest's error and its causes. The URL is left out
/// of the message: a destination URL can itself be a credential (Slack).
fn classify(err: &reqwest::Error) -> AttemptError {
    let chain = error_chain(err);
    let lower = chain.to_ascii_lowercase();
    let kind = if has_source::<Blocked>(err) {
        "blocked"
    } else if err.is_timeout() {
        "timeout"
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "dns"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "tls"
    } else if err.is_connect() {
        "connect"
    } else {
        "network"
    };
    AttemptError {
        kind,
        message: chain,
    }
}

fn has_source<E: std::error::Error + 'static>(err: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<E>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

fn error_chain(err: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        let text = match e.downcast_ref::<reqwest::Error>() {
            Some(r) if r.url().is_some() => {
                let mut shown = format!("{r}");
                if let Some(url) = r.url() {
                    shown = shown
                        .replace(&format!(" ({url})"), "")
                        .replace(url.as_str(), "<url>");
                }
                shown
            }
            _ => e.to_string(),
        };
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(values: &[&str], text: &str, truncated: bool) -> String {
        let mut secrets = Secrets::default();
        for v in values {
            secrets.add(v);
        }
        secrets.finish();
        let mut result = SendResult {
            started_at: 0,
            duration: Duration::ZERO,
            url: String::new(),
            request_headers: Vec::new(),
            request_body: bytes::Bytes::new(),
            status: Some(200),
            response_headers: vec![("x-echo".into(), text.into())],
            response_body: Some(text.into()),
            response_truncated: truncated,
            error: Some(AttemptError {
                kind: "http_status",
                message: text.into(),
            }),
            retry_after: None,
        };
        secrets.mask(&mut result);
        assert_eq!(result.response_headers[0].1, result.error.unwrap().message);
        result.response_body.unwrap()
    }

    #[test]
    fn secrets_are_masked_in_the_answer_wherever_they_appear() {
        assert_eq!(
            masked(
                &["Bearer ghp_token123"],
                "auth=Bearer ghp_token123; t=ghp_token123",
                false
            ),
            "auth=********; t=********"
        );
        assert_eq!(
            masked(&["s3cr3t-value"], "nothing here", false),
            "nothing here"
        );
        // Cut at the size limit in the middle of a secret.
        assert_eq!(
            masked(&["s3cr3t-value"], "echo: s3cr3t-va", true),
            "echo: ********"
        );
        assert_eq!(masked(&[], "s3cr3t-value", false), "s3cr3t-value");
    }
}
