//! The web console in a real browser: headless Chromium, driven by
//! Playwright from `tests/console/console.test.mjs`, against a real
//! `mlhook serve` and a real receiver. This file starts both, runs the
//! Node script and checks it passed; the script takes the screenshots
//! (into `target/console-screenshots/`, kept by CI).
//!
//! Chromium (`/usr/bin/chromium`, or `MLHOOK_CHROMIUM`), Node and the
//! script's packages (`npm ci --prefix tests/console`) must be installed:
//! `scripts/test` does it. Without them the test fails, saying what is missing,
//! unless `MLHOOK_SKIP_BROWSER=1` is set.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use crate::common::{ADMIN, Receiver, Reply, Server};

/// The whole browser run may take this long at most.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("console-screenshots")
}

/// What the browser run needs, or what is missing and how to install it.
fn prerequisites() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("MLHOOK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!(
            "Chromium at {} (apt-get install chromium, or set MLHOOK_CHROMIUM)",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !node {
        missing.push("node (apt-get install nodejs npm)".to_string());
    }
    for package in ["playwright-core", "axe-core"] {
        if !console_dir().join("node_modules").join(package).exists() {
            missing.push(format!(
                "the npm package {package} (npm ci --prefix tests/console)"
            ));
        }
    }
    if missing.is_empty() {
        Ok(chromium)
    } else {
        Err(format!(
            "the console's browser test cannot run; missing: {}. `scripts/test` installs them; \
             set MLHOOK_SKIP_BROWSER=1 to skip this test on purpose.",
            missing.join("; ")
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    if std::env::var("MLHOOK_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("MLHOOK_SKIP_BROWSER=1: the console's browser test is skipped");
        return;
    }
    let chromium = prerequisites().unwrap_or_else(|message| panic!("{message}"));

    let server = Server::start().await;
    // The receiver answers what it was last told to: `/control/500` makes
    // it fail from then on, `/control/200` makes it succeed again.
    let answer = Arc::new(AtomicU16::new(200));
    let told = answer.clone();
    let receiver = Receiver::start_with(move |_, request| {
        if let Some(code) = request.path.strip_prefix("/control/") {
            told.store(code.parse().unwrap_or(200), Ordering::SeqCst);
            return Reply::status(204);
        }
        let status = told.load(Ordering::SeqCst);
        let mut reply = Reply::status(status);
        reply.headers = vec![("content-type", "application/json".to_string())];
        reply.body = if status < 300 {
            r#"{"received": true}"#.to_string()
        } else {
            r#"{"error": "the receiver fails on purpose"}"#.to_string()
        };
        reply
    })
    .await;

    // A fresh folder: no screenshot of an earlier run is mistaken for this one's.
    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut command = tokio::process::Command::new("node");
    command
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("console.test.mjs")
        .current_dir(console_dir())
        .env("MLHOOK_URL", &server.base)
        .env("MLHOOK_ADMIN_TOKEN", ADMIN)
        .env("RECEIVER_URL", &receiver.url)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("the browser test ran longer than {BROWSER_TIMEOUT:?}"))
        .expect("node starts");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        let log = server.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "the browser test failed ({}); screenshots in {}; the server log ends:\n{}",
            output.status,
            shots.display(),
            tail.join("\n")
        );
    }

    // What the browser did reached the receiver: the header typed but never
    // added with + was sent, and so were the protected one and the secret.
    let deliveries: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.path == "/hooks")
        .collect();
    assert!(
        deliveries.len() >= 7,
        "validate twice, test, the events, a redelivery and a recovery: {} requests",
        deliveries.len()
    );
    for request in &deliveries {
        assert_eq!(request.header("x-team"), "ml-platform", "{request:?}");
        assert!(
            request.header("x-api-key").starts_with("protected-"),
            "{request:?}"
        );
        assert!(
            request.header("authorization").starts_with("secret-"),
            "{request:?}"
        );
    }
    for name in [
        "signin.png",
        "webhooks.png",
        "webhook-form.png",
        "webhook-detail.png",
        "deliveries.png",
        "delivery.png",
        "catalog.png",
        "template-editor.png",
        "delivery-log-tools.png",
        "events.png",
        "event.png",
        "settings.png",
        "tokens.png",
        "audit.png",
        "sources.png",
        "webhooks-phone.png",
        "deliveries-phone.png",
        "webhook-detail-phone.png",
        "webhook-form-phone.png",
    ] {
        assert!(shots.join(name).exists(), "no screenshot {name}");
    }
}

/// A request as the console's page sends it: with or without the session
/// cookie, the console header and an Origin.
struct Browserish<'a> {
    server: &'a Server,
    client: reqwest::Client,
}

impl Browserish<'_> {
    fn new(server: &Server) -> Browserish<'_> {
        Browserish {
            server,
            client: reqwest::Client::new(),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{}", self.server.base, path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request
    }

    /// Signs in with `token`; answers the status and the Set-Cookie header.
    async fn sign_in(&self, token: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let response = self
            .request("POST", "/console/session", headers)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "token": token }).to_string())
            .send()
            .await
            .unwrap();
        let cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (response.status().as_u16(), cookie)
    }
}

/// `name=value` of a Set-Cookie header, as a browser sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_page_and_its_files_are_served_under_a_strict_policy() {
    let server = Server::start().await;
    let b = Browserish::new(&server);
    let page = b.request("GET", "/", &[]).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/console/assets/js/app.js"));

    let script = b
        .request("GET", "/console/assets/js/app.js", &[])
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = script.headers()["etag"].to_str().unwrap().to_string();
    let again = b
        .request(
            "GET",
            "/console/assets/js/app.js",
            &[("if-none-match", &etag)],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = b
        .request("GET", "/console/assets/nope.js", &[])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_session_cookie_authenticates_and_writes_need_the_console_header() {
    let server = Server::start().await;
    let b = Browserish::new(&server);
    let console = [("x-mlhook-console", "1")];

    // Sign-in itself is protected against cross-site forms.
    assert_eq!(b.sign_in(ADMIN, &[]).await.0, 403);
    assert_eq!(b.sign_in("mlh_wrong", &console).await.0, 401);
    let (status, set_cookie) = b.sign_in(ADMIN, &console).await;
    assert_eq!(status, 200);
    assert!(set_cookie.starts_with("mlhook_session="), "{set_cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    assert!(
        !set_cookie.contains(ADMIN),
        "the cookie is not the token in clear"
    );
    let (_, over_https) = b
        .sign_in(
            ADMIN,
            &[("x-mlhook-console", "1"), ("x-forwarded-proto", "https")],
        )
        .await;
    assert!(over_https.contains("; Secure"), "{over_https}");

    let cookie = cookie_pair(&set_cookie);
    let who = b
        .request("GET", "/console/session", &[("cookie", &cookie)])
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), 200);
    let who: serde_json::Value = serde_json::from_str(&who.text().await.unwrap()).unwrap();
    assert_eq!(who["access"], "admin");

    // Reads need only the cookie.
    let list = b
        .request("GET", "/v1/projects", &[("cookie", &cookie)])
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    // Writes need the console header, and no foreign Origin.
    let create = |headers: Vec<(&'static str, String)>| {
        let mut request = b
            .request("POST", "/v1/projects", &[("cookie", &cookie)])
            .header("content-type", "application/json")
            .body(r#"{"id": "console", "name": "Console"}"#);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send()
    };
    let bare = create(vec![]).await.unwrap();
    assert_eq!(bare.status(), 403);
    let body: serde_json::Value = serde_json::from_str(&bare.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "csrf_check_failed");
    let foreign = create(vec![
        ("x-mlhook-console", "1".into()),
        ("origin", "http://evil.example".into()),
    ])
    .await
    .unwrap();
    assert_eq!(foreign.status(), 403);
    let host = server.base.trim_start_matches("http://").to_string();
    let same = create(vec![
        ("x-mlhook-console", "1".into()),
        ("origin", format!("http://{host}")),
    ])
    .await
    .unwrap();
    assert_eq!(same.status(), 201);

    // A bearer token, when sent, is what counts: the cookie is not looked at.
    let wrong_bearer = b
        .request(
            "GET",
            "/v1/projects",
            &[("cookie", &cookie), ("authorization", "Bearer mlh_wrong")],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_bearer.status(), 401);

    // A read token signed in may read, not write.
    let (_, token) = server
        .post(
            "/v1/projects/console/tokens",
            serde_json::json!({"kind": "read"}),
        )
        .await;
    let (status, read_cookie) = b.sign_in(token["token"].as_str().unwrap(), &console).await;
    assert_eq!(status, 200);
    let read_cookie = cookie_pair(&read_cookie);
    let write = b
        .request(
            "POST",
            "/v1/projects/console/tokens",
            &[("cookie", &read_cookie), ("x-mlhook-console", "1")],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);

    // Sign-out clears the cookie.
    let out = b
        .request("DELETE", "/console/session", &console)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("mlhook_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let nobody = b
        .request("GET", "/console/session", &[])
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), 401);
}

#[tokio::test]
async fn formats_preview_and_payload_checks_for_the_forms() {
    let server = Server::start().await;
    let (status, formats) = server.get("/v1/formats").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = formats["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["format"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            "json",
            "slack",
            "teams",
            "discord",
            "github_dispatch",
            "template"
        ]
    );

    // A template renders for the event type's example ...
    let (status, preview) = server
        .post(
            "/v1/formats/preview",
            serde_json::json!({
                "format": "template",
                "events": ["MODEL_VERSION_CREATED"],
                "template": {"model": "{{ payload.registryModelName }}", "kind": "{{ event.type }}"}
            }),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let body: serde_json::Value = serde_json::from_str(preview["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["kind"], "MODEL_VERSION_CREATED");
    assert!(body["model"].is_string());
    // ... and a mistake is named by its place in the template.
    let (status, error) = server
        .post(
            "/v1/formats/preview",
            serde_json::json!({
                "format": "template",
                "events": ["MODEL_VERSION_CREATED"],
                "template": {"model": "{{ payload.registryModelNam }}"}
            }),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["field"], "/template/model");
    // Other formats preview too: GitHub's URL comes from the repository.
    let (status, github) = server
        .post(
            "/v1/formats/preview",
            serde_json::json!({"format": "github_dispatch", "github_repository": "acme/models",
                               "event_type": "RUN_COMPLETED"}),
        )
        .await;
    assert_eq!(status, 200, "{github}");
    assert_eq!(
        github["url"],
        "https://api.github.com/repos/acme/models/dispatches"
    );

    // Payloads are checked as the events route would, nothing stored.
    let path = "/v1/event-types/MODEL_VERSION_CREATED/validate";
    let payload = |version: serde_json::Value| {
        serde_json::json!({"payload": {"workspaceName": "ml", "registryModelName": "churn",
            "version": version, "tags": [], "createdAt": 1795600000, "sourceExperimentKey": null}})
    };
    let (status, bad) = server.post(path, payload(serde_json::json!(3))).await;
    assert_eq!(status, 200);
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["violations"][0]["field"], "/payload/version");
    let (_, good) = server.post(path, payload(serde_json::json!("3"))).await;
    assert_eq!(good["valid"], true, "{good}");
    assert_eq!(good["payload"]["eventTrigger"], "MODEL_VERSION_CREATED");
    assert_eq!(good["object"]["name"], "churn");
    let (status, _) = server
        .post(
            "/v1/event-types/NOPE/validate",
            serde_json::json!({"payload": {}}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/v1/projects/x/events").await;
    assert_eq!(status, 404, "no project was made by the checks");
}
