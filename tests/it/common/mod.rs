//! Test harness: the real `mlhook` binary on a loopback port with a fresh
//! data directory, and a real HTTP receiver on another loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub mod pg;

pub const ADMIN: &str = "test-admin-token";

/// A short retry schedule without jitter, so retry tests finish fast and exactly.
pub const TEST_FLAGS: [&str; 4] = ["--retry-schedule", "100ms,200ms", "--retry-jitter", "0"];

/// `TEST_FLAGS` followed by `extra`.
pub fn flags<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = TEST_FLAGS.to_vec();
    all.extend_from_slice(extra);
    all
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every field an API error names: `field` and each detail's field.
pub fn error_fields(error: &Value) -> Vec<String> {
    let mut fields: Vec<String> = error["field"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(details) = error["details"].as_array() {
        fields.extend(
            details
                .iter()
                .filter_map(|d| d["field"].as_str().map(str::to_string)),
        );
    }
    fields
}

/// `args`, with the loopback range, where the test receivers listen, opened
/// in the network guard unless `args` name ranges.
fn with_loopback(args: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if !args.iter().any(|a| a == "--allow-network") {
        args.extend(["--allow-network".to_string(), "127.0.0.0/8".to_string()]);
    }
    args
}

/// Project `p` with one webhook for every platform event, to the receiver's `/hook`.
pub async fn catch_all_webhook(server: &Server, receiver: &Receiver) -> Value {
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/hook", receiver.url), "events": ["*"]}),
        )
        .await
}

/// A running `mlhook serve` process.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    /// The server's stderr (in the data directory unless started elsewhere).
    log_path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    client: reqwest::Client,
}

impl Server {
    /// Starts with a short retry schedule and no jitter, fit for tests.
    pub async fn start() -> Server {
        Server::start_with(&["--retry-schedule", "100ms,200ms", "--retry-jitter", "0"]).await
    }

    /// Starts with `args`; the loopback range, where the test receivers
    /// listen, is opened in the network guard unless `args` name ranges.
    pub async fn start_with(args: &[&str]) -> Server {
        Server::start_exactly(with_loopback(args)).await
    }

    /// Starts with `args` (as `start_with`) on `data_dir`, logging to
    /// `log_path`: for a data directory on a volume the test controls.
    pub async fn start_in(data_dir: &Path, log_path: &Path, args: &[&str]) -> Server {
        let server = Server::spawn(data_dir, log_path, with_loopback(args));
        server.wait_ready().await;
        server
    }

    /// Starts with exactly `args`: the network guard keeps its defaults.
    pub async fn start_exactly(args: Vec<String>) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = Server::spawn(&data_dir, &data_dir.join("server.log"), args);
        server._tmp = Some(tmp);
        server.wait_ready().await;
        server
    }

    fn spawn(data_dir: &Path, log_path: &Path, args: Vec<String>) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlhook"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(&args)
            .env("MLHOOK_ADMIN_TOKEN", ADMIN)
            .env("MLHOOK_LOG", "info,mlhook=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("mlhook binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("mlhook listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                panic!("mlhook did not start; log:\n{log}")
            });
        Server {
            child: Some(child),
            base,
            data_dir: data_dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
            _tmp: None,
            args,
            client: reqwest::Client::new(),
        }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("mlhook never became ready");
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// A figure of /proc/<pid>/status in MiB (`VmHWM:` is the peak resident set).
    pub fn memory_mib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} not in /proc status"));
        kib / 1024.0
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`) and goes on: a stalled node.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("server running");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// Starts again on the same data directory (a new port).
    pub async fn restart(&mut self) {
        self.restart_listening();
        self.wait_ready().await;
    }

    /// Starts again on the same data directory and returns once it
    /// listens, ready or not.
    pub fn restart_listening(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let mut fresh = Server::spawn(&self.data_dir, &self.log_path, self.args.clone());
        self.child = fresh.child.take();
        self.base = std::mem::take(&mut fresh.base);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.expect("request reaches mlhook");
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Sends raw bytes, for malformed-input tests.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .header("authorization", format!("Bearer {ADMIN}"));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().await.expect("request reaches mlhook");
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request("GET", path, Some(ADMIN), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request("POST", path, Some(ADMIN), Some(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request("PATCH", path, Some(ADMIN), Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request("DELETE", path, Some(ADMIN), None).await
    }

    /// GETs `path` (as admin) until `done` holds of the answer; panics with
    /// the last answer after `timeout`.
    pub async fn poll_until(
        &self,
        path: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            if done(&body) {
                return body;
            }
            if Instant::now() > deadline {
                panic!("{path} never became {what}; last seen: {body}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn create_project(&self, id: &str) {
        let (status, body) = self
            .post(
                "/v1/projects",
                json!({"id": id, "name": format!("Project {id}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Creates a webhook; answers its JSON (with `signing_secret`).
    pub async fn create_webhook(&self, project: &str, config: Value) -> Value {
        let (status, body) = self
            .post(&format!("/v1/projects/{project}/webhooks"), config)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Posts an event; answers the 202 body.
    pub async fn send_event(&self, project: &str, event_type: &str, payload: Value) -> Value {
        let (status, body) = self
            .post(
                &format!("/v1/projects/{project}/events"),
                json!({"type": event_type, "payload": payload}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

/// What the receiver answers: status, extra headers, and a delay before answering.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: String::new(),
        }
    }
}

type Responder = Arc<dyn Fn(usize, &Received) -> Reply + Send + Sync>;

/// A real HTTP server on 127.0.0.1 recording every request.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::start_with(|_, _| Reply::status(200)).await
    }

    /// `respond(n, request)` decides the answer to the n-th request (0-based).
    pub async fn start_with(
        respond: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let respond: Responder = Arc::new(respond);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = {
            let received = received.clone();
            axum::Router::new().fallback(
                move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                    let received = received.clone();
                    let respond = respond.clone();
                    async move {
                        let request = Received {
                            path: uri.path().to_string(),
                            headers,
                            body,
                            at: Instant::now(),
                        };
                        let n = {
                            let mut list = received.lock().unwrap();
                            list.push(request.clone());
                            list.len() - 1
                        };
                        let reply = respond(n, &request);
                        tokio::time::sleep(reply.delay).await;
                        let mut response = axum::response::Response::builder().status(reply.status);
                        for (k, v) in reply.headers {
                            response = response.header(k, v);
                        }
                        response.body(axum::body::Body::from(reply.body)).unwrap()
                    }
                },
            )
        };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "receiver expected {n} requests within {timeout:?}, got {}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits `quiet` and returns what arrived, for "nothing more comes" checks.
    pub async fn settle(&self, quiet: Duration) -> Vec<Received> {
        tokio::time::sleep(quiet).await;
        self.received()
    }
}

/// Verifies a delivery's signature with the independent `standardwebhooks` crate.
pub fn verify_signature(signing_secret: &str, request: &Received) -> bool {
    let verifier = standardwebhooks::Webhook::new(signing_secret).expect("valid whsec secret");
    verifier.verify(&request.body, &request.headers).is_ok()
}
