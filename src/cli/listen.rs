//! `mlhook listen`: a local receiver for developing a consumer. Prints each
//! request (time, event type, `webhook-id`, attempt, signature verdict,
//! headers, body), then answers `--status` or forwards it to `--forward-to`
//! and answers what came back. Signatures are checked by [`crate::signing`],
//! the very code the service signs with.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use clap::Args;

use super::client::CliError;

/// Standard Webhooks' tolerance for `webhook-timestamp` either side of now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Headers that describe one hop, not the request: never forwarded.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Port to listen on; 0 picks a free one (printed at start).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The webhook's signing secret (whsec_…) or public key (whpk_…), to check signatures.
    #[arg(long, env = "MLHOOK_LISTEN_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Status to answer with (500 to watch the service retry).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    pub status: u16,
    /// Forward each request to this URL (same method, headers and body) and answer with its response.
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<url::Url>,
}

/// What the signature check concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Valid,
    Invalid(String),
    /// No `webhook-signature` header.
    Absent,
    /// A signature came but no `--secret` was given.
    NotChecked,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Valid => write!(f, "valid"),
            Verdict::Invalid(why) => write!(f, "invalid ({why})"),
            Verdict::Absent => write!(f, "absent"),
            Verdict::NotChecked => write!(f, "not checked (no --secret)"),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a request's Standard Webhooks signature with `signing::verify`,
/// and its timestamp against the tolerance.
pub fn check(secret: Option<&str>, headers: &HeaderMap, body: &[u8], now: i64) -> Verdict {
    let Some(signature) = header(headers, "webhook-signature") else {
        return Verdict::Absent;
    };
    let Some(secret) = secret else {
        return Verdict::NotChecked;
    };
    let Some(id) = header(headers, "webhook-id") else {
        return Verdict::Invalid("no webhook-id header".into());
    };
    let Some(timestamp) = header(headers, "webhook-timestamp") else {
        return Verdict::Invalid("no webhook-timestamp header".into());
    };
    let Ok(timestamp) = timestamp.trim().parse::<i64>() else {
        return Verdict::Invalid(format!("webhook-timestamp {timestamp:?} is not a number"));
    };
    match crate::signing::verify(secret, id, timestamp, body, signature) {
        Err(e) => Verdict::Invalid(e.to_string()),
        Ok(false) => Verdict::Invalid("signature mismatch".into()),
        Ok(true) if now - timestamp > TOLERANCE_SECS => {
            Verdict::Invalid(format!("stale timestamp: {} s old", now - timestamp))
        }
        Ok(true) if timestamp - now > TOLERANCE_SECS => Verdict::Invalid(format!(
            "stale timestamp: {} s in the future",
            timestamp - now
        )),
        Ok(true) => Verdict::Valid,
    }
}

/// The event type a body names: its `type`, `event_type` or (Comet)
/// `eventTrigger` field, else `-`.
pub fn event_type(body: &[u8]) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return "-".into();
    };
    ["type", "event_type", "eventTrigger"]
        .iter()
        .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
        .unwrap_or("-")
        .to_string()
}

struct Listener {
    secret: Option<String>,
    status: StatusCode,
    forward: Option<(reqwest::Client, url::Url)>,
    /// How often each `webhook-id` was seen: the attempt number when the
    /// request carries no `webhook-attempt` header.
    seen: Mutex<HashMap<String, u32>>,
    count: Mutex<u64>,
}

pub fn run(args: ListenArgs) -> Result<(), CliError> {
    if let Some(secret) = &args.secret {
        if !secret.starts_with("whsec_") && !secret.starts_with("whpk_") {
            return Err(CliError::Usage(
                "--secret must be a signing secret (whsec_…) or public key (whpk_…)".into(),
            ));
        }
        // A malformed key is refused now, not on every request.
        crate::signing::verify(secret, "msg_check", 0, b"", "")
            .map_err(|e| CliError::Usage(format!("--secret: {e}")))?;
    }
    let status =
        StatusCode::from_u16(args.status).map_err(|e| CliError::Usage(format!("--status: {e}")))?;
    let forward = match args.forward_to.clone() {
        Some(url) if matches!(url.scheme(), "http" | "https") => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| CliError::Other(e.to_string()))?;
            Some((client, url))
        }
        Some(url) => {
            return Err(CliError::Usage(format!(
                "--forward-to {url}: not an http(s) URL"
            )));
        }
        None => None,
    };
    let state = Arc::new(Listener {
        secret: args.secret.clone(),
        status,
        forward,
        seen: Mutex::default(),
        count: Mutex::default(),
    });
    let runtime = tokio::runtime::Runtime::new().map_err(|e| CliError::Other(e.to_string()))?;
    runtime.block_on(serve(SocketAddr::new(args.host, args.port), state))
}

async fn serve(addr: SocketAddr, state: Arc<Listener>) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let checking = match &state.secret {
        Some(_) => "checking signatures",
        None => "not checking signatures (no --secret)",
    };
    let answering = match &state.forward {
        Some((_, url)) => format!("forwarding to {url}"),
        None => format!("answering {}", state.status.as_u16()),
    };
    emit(&format!(
        "mlhook listen: receiving on http://{local}/ — {checking}, {answering}\n"
    ));
    let app = axum::Router::new()
        .fallback(receive)
        .layer(axum::extract::DefaultBodyLimit::max(16 << 20))
        .with_state(state);
    axum::serve(listener, app)
        .await
        .map_err(|e| CliError::Other(e.to_string()))
}

/// Writes one whole report at once, so reports of concurrent requests never interleave.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

async fn receive(
    State(state): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = chrono::Local::now();
    let n = {
        let mut count = state.count.lock().expect("lock");
        *count += 1;
        *count
    };
    let id = header(&headers, "webhook-id");
    let attempt = match (header(&headers, "webhook-attempt"), id) {
        (Some(attempt), _) => attempt.to_string(),
        (None, Some(id)) => {
            let mut seen = state.seen.lock().expect("lock");
            let times = seen.entry(id.to_string()).or_default();
            *times += 1;
            format!("{times} (counted by listen)")
        }
        (None, None) => "-".into(),
    };
    let verdict = check(state.secret.as_deref(), &headers, &body, now.timestamp());

    let mut report = format!(
        "── #{n} {} {method} {uri}\n",
        now.format("%Y-%m-%d %H:%M:%S%.3f")
    );
    report.push_str(&format!("event:      {}\n", event_type(&body)));
    report.push_str(&format!("webhook-id: {}\n", id.unwrap_or("-")));
    report.push_str(&format!("attempt:    {attempt}\n"));
    report.push_str(&format!("signature:  {verdict}\n"));
    report.push_str("headers:\n");
    for (name, value) in &headers {
        report.push_str(&format!(
            "  {name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    report.push_str("body:\n");
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(json) => report.push_str(&super::output::pretty(&json)),
        Err(_) => report.push_str(&String::from_utf8_lossy(&body)),
    }
    report.push('\n');

    let response = match &state.forward {
        Some((client, url)) => {
            let (response, line) = forward(client, url, method, &headers, body).await;
            report.push_str(&line);
            response
        }
        None => {
            report.push_str(&format!("→ answered {}\n", state.status.as_u16()));
            Response::builder()
                .status(state.status)
                .body(Body::empty())
                .expect("valid response")
        }
    };
    report.push('\n');
    emit(&report);
    response
}

/// Sends the request on; answers its response and a line for the report.
async fn forward(
    client: &reqwest::Client,
    url: &url::Url,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> (Response, String) {
    let mut sent = HeaderMap::new();
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            sent.append(name.clone(), value.clone());
        }
    }
    let result = async {
        let response = client
            .request(method, url.clone())
            .headers(sent)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .cloned();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, content_type, body))
    }
    .await;
    match result {
        Ok((status, content_type, body)) => {
            let mut response = Response::builder().status(status);
            if let Some(content_type) = content_type {
                response = response.header(reqwest::header::CONTENT_TYPE, content_type);
            }
            let line = format!("→ forwarded to {url}: answered {}\n", status.as_u16());
            (
                response.body(Body::from(body)).expect("valid response"),
                line,
            )
        }
        Err(e) => {
            let message = format!("forwarding to {url} failed: {e}");
            let response = Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(message.clone()))
                .expect("valid response");
            (response, format!("→ {message}; answered 502\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        let signature = crate::signing::sign(secret, id, ts, body).unwrap();
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn verdicts() {
        let secret = crate::signing::generate_secret();
        let now = 1_800_000_000;
        let headers = signed(&secret, "msg_1", now, b"{}");
        assert_eq!(check(Some(&secret), &headers, b"{}", now), Verdict::Valid);
        assert_eq!(
            check(Some(&secret), &headers, b"{ }", now),
            Verdict::Invalid("signature mismatch".into())
        );
        assert_eq!(check(None, &headers, b"{}", now), Verdict::NotChecked);
        assert_eq!(
            check(Some(&secret), &HeaderMap::new(), b"{}", now),
            Verdict::Absent
        );
        let old = signed(&secret, "msg_1", now - TOLERANCE_SECS - 1, b"{}");
        assert_eq!(
            check(Some(&secret), &old, b"{}", now),
            Verdict::Invalid("stale timestamp: 301 s old".into())
        );
        let edge = signed(&secret, "msg_1", now - TOLERANCE_SECS, b"{}");
        assert_eq!(check(Some(&secret), &edge, b"{}", now), Verdict::Valid);
        let future = signed(&secret, "msg_1", now + 600, b"{}");
        assert!(matches!(
            check(Some(&secret), &future, b"{}", now),
            Verdict::Invalid(why) if why.contains("future")
        ));
    }

    #[test]
    fn event_type_comes_from_the_body() {
        assert_eq!(
            event_type(br#"{"type": "execution_completed"}"#),
            "execution_completed"
        );
        assert_eq!(
            event_type(br#"{"event_type": "deployment_request_failed"}"#),
            "deployment_request_failed"
        );
        assert_eq!(event_type(br#"{"eventTrigger": "TEST"}"#), "TEST");
        assert_eq!(event_type(br#"{"type": 3}"#), "-");
        assert_eq!(event_type(b"not json"), "-");
    }
}
