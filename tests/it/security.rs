//! Security end to end: secrets sealed at rest, signing-key rotation and
//! ed25519 checked by independent verifiers, project tokens, the limit on
//! failed authentication, and the audit log.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// Every byte the store keeps on disk: the database, its WAL and shared memory.
fn store_bytes(server: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("mlhook.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(all.len() > 4096, "the store files were found");
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Sends the catalog's example of the TEST event.
async fn send_test_event(server: &Server) {
    let (status, test_type) = server.get("/v1/event-types/TEST").await;
    assert_eq!(status, 200, "{test_type}");
    server
        .send_event("p", "TEST", test_type["example"].clone())
        .await;
}

const SECRET: &str = "auth-secret-5f1d2c";
const PROTECTED: &str = "protected-value-9ab3e1";
const GITHUB_TOKEN: &str = "ghp_githubtoken7c4e2a";

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_a_wrong_key_refuses_to_start() {
    let mut server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/in", receiver.url), "events": ["*"], "secret": SECRET,
                   "headers": [{"key": "X-Api-Key", "value": PROTECTED, "protected": true},
                               {"key": "X-Team", "value": "ml-platform"}]}),
        )
        .await;
    let signing = s(&hook["signing_secret"]);
    server
        .create_webhook(
            "p",
            json!({"format": "github_dispatch", "events": ["*"],
                   "github": {"repository": "o/r", "token": GITHUB_TOKEN,
                              "api_url": format!("{}/gh", receiver.url)}}),
        )
        .await;
    send_test_event(&server).await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    // The service still uses the secrets it sealed.
    let first = receiver
        .received()
        .into_iter()
        .find(|r| r.path == "/in")
        .expect("the plain webhook got the event");
    assert_eq!(first.header("authorization"), SECRET);
    assert_eq!(first.header("x-api-key"), PROTECTED);
    assert!(verify_signature(&signing, &first));

    assert_eq!(server.terminate().code(), Some(0));
    let disk = store_bytes(&server);
    for secret in [SECRET, PROTECTED, GITHUB_TOKEN, signing.as_str()] {
        assert!(
            !contains(&disk, secret),
            "{secret} found in the store files"
        );
    }
    assert!(contains(&disk, "ml-platform"), "clear fields stay readable");
    let key_file = server.data_dir.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Another key cannot open them: the start fails and says why.
    let real_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::write(&key_file, B64.encode([9u8; 32])).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server.data_dir)
        .env("MLHOOK_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MLHOOK_SECRET_KEY"), "{stderr}");

    // MLHOOK_SECRET_KEY overrides the file: the right key starts again.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mlhook"))
        .args(["serve", "--listen", "not-an-address", "--data-dir"])
        .arg(&server.data_dir)
        .env("MLHOOK_SECRET_KEY", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::write(&key_file, real_key).unwrap();
    server.restart().await;
    let (status, got) = server
        .get(&format!(
            "/v1/projects/p/webhooks/{}/signing-secret",
            s(&hook["id"])
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["signing_secret"], signing.as_str());
}

#[tokio::test]
async fn a_rotated_key_signs_beside_the_new_one_until_its_grace_period_ends() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server
        .create_webhook("p", json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let id = s(&hook["id"]);
    let old = s(&hook["signing_secret"]);
    let rotate = format!("/v1/projects/p/webhooks/{id}/signing-secret/rotate");

    let (status, rotated) = server.post(&rotate, json!({"grace_period": "1h"})).await;
    assert_eq!(status, 200, "{rotated}");
    // The answer shows no secret (docs/security.md): it is read on request.
    assert!(rotated.get("signing_secret").is_none(), "{rotated}");
    assert_eq!(rotated["signing_scheme"], "hmac_sha256", "{rotated}");
    let key_path = format!("/v1/projects/p/webhooks/{id}/signing-secret");
    let new = s(&server.get(&key_path).await.1["signing_secret"]);
    assert_ne!(new, old);
    assert!(rotated["previous_key_expires_at"].is_string(), "{rotated}");
    send_test_event(&server).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let header = got[0].header("webhook-signature").to_string();
    assert_eq!(header.split(' ').count(), 2, "{header}");
    assert!(verify_signature(&old, &got[0]), "old key still verifies");
    assert!(verify_signature(&new, &got[0]), "new key verifies");

    // A rotation without grace drops the old key at once.
    let (_, again) = server.post(&rotate, json!({"grace_period": "0s"})).await;
    let newest = s(&server.get(&key_path).await.1["signing_secret"]);
    assert!(again.get("previous_key_expires_at").is_none(), "{again}");
    send_test_event(&server).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(verify_signature(&newest, &got[1]));
    assert!(!verify_signature(&new, &got[1]));
    assert!(!verify_signature(&old, &got[1]));

    // Unreadable, over the bound, and too long for the millisecond clock
    // (its milliseconds were cast to i64 unchecked before).
    for grace in ["soon", "31d", "99999999999999h"] {
        let (status, body) = server.post(&rotate, json!({"grace_period": grace})).await;
        assert_eq!(status, 400, "{grace}: {body}");
        assert_eq!(body["error"]["field"], "/grace_period");
    }
}

/// Verifies every `v1a,` signature of a delivery with `ring`, an
/// implementation independent of the service's.
fn ed25519_valid(public_key: &str, request: &Received) -> bool {
    let key = B64
        .decode(public_key.strip_prefix("whpk_").expect("whpk_ key"))
        .unwrap();
    let content = [
        request.header("webhook-id").as_bytes(),
        b".",
        request.header("webhook-timestamp").as_bytes(),
        b".",
        &request.body,
    ]
    .concat();
    let verifier = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key);
    request
        .header("webhook-signature")
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1a,"))
        .any(|sig| verifier.verify(&content, &B64.decode(sig).unwrap()).is_ok())
}

#[tokio::test]
async fn ed25519_webhooks_sign_v1a_and_show_only_the_public_key() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server
        .create_webhook(
            "p",
            json!({"url": receiver.url, "events": ["*"], "signing_scheme": "ed25519"}),
        )
        .await;
    let id = s(&hook["id"]);
    assert!(hook.get("signing_secret").is_none(), "{hook}");
    assert_eq!(hook["signing_scheme"], "ed25519");
    let public = s(&hook["signing_public_key"]);
    assert!(public.starts_with("whpk_"));
    let (_, shown) = server
        .get(&format!("/v1/projects/p/webhooks/{id}/signing-secret"))
        .await;
    assert_eq!(shown["signing_public_key"], public.as_str());
    assert!(!shown.to_string().contains("whsk_"), "{shown}");

    send_test_event(&server).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].header("webhook-signature").starts_with("v1a,"));
    assert!(ed25519_valid(&public, &got[0]));

    // Rotating to HMAC: during the grace period both kinds sign.
    let (status, rotated) = server
        .post(
            &format!("/v1/projects/p/webhooks/{id}/signing-secret/rotate"),
            json!({"signing_scheme": "hmac_sha256"}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let secret = s(&server
        .get(&format!("/v1/projects/p/webhooks/{id}/signing-secret"))
        .await
        .1["signing_secret"]);
    send_test_event(&server).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert!(verify_signature(&secret, &got[1]), "v1 by standardwebhooks");
    assert!(ed25519_valid(&public, &got[1]), "v1a by ring");
    let mut tampered = got[1].clone();
    tampered.body = bytes::Bytes::from_static(b"{\"forged\":true}");
    assert!(!ed25519_valid(&public, &tampered));
    assert!(!verify_signature(&secret, &tampered));
}

#[tokio::test]
async fn project_tokens_are_listed_without_the_token_and_revoked_at_once() {
    let server = Server::start().await;
    server.create_project("p").await;
    let (status, created) = server
        .post(
            "/v1/projects/p/tokens",
            json!({"name": "ci", "kind": "read"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = s(&created["token"]);
    let id = s(&created["id"]);
    let (status, _) = server
        .request("GET", "/v1/projects/p/webhooks", Some(&token), None)
        .await;
    assert_eq!(status, 200);

    let (status, list) = server.get("/v1/projects/p/tokens").await;
    assert_eq!(status, 200);
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("the token is listed");
    assert_eq!(listed["prefix"], created["prefix"]);
    assert!(token.starts_with(&s(&listed["prefix"])));
    assert_eq!(listed["kind"], "read");
    assert!(listed["revoked_at"].is_null());
    assert!(!list.to_string().contains(&token), "{list}");

    let (status, _) = server.delete(&format!("/v1/projects/p/tokens/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = server
        .request("GET", "/v1/projects/p/webhooks", Some(&token), None)
        .await;
    assert_eq!(status, 401, "{body}");
    let (_, list) = server.get("/v1/projects/p/tokens").await;
    assert!(list["data"][0]["revoked_at"].is_string(), "{list}");
    let (status, _) = server.delete(&format!("/v1/projects/p/tokens/{id}")).await;
    assert_eq!(status, 404, "a revoked token cannot be revoked again");
}

#[tokio::test]
async fn repeated_failed_authentication_is_answered_429() {
    let server = Server::start_with(&flags(&["--auth-failures-per-minute", "3"])).await;
    for _ in 0..3 {
        let (status, _) = server
            .request("GET", "/v1/projects", Some("mlh_guess"), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{}/v1/projects", server.base))
        .bearer_auth("mlh_guess")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Health checks need no token and are not limited.
    let (status, _) = server.request("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn forged_mlflow_signatures_count_as_failed_authentication() {
    let server = Server::start_with(&flags(&["--auth-failures-per-minute", "3"])).await;
    server.create_project("p").await;
    let (status, source) = server
        .post(
            "/v1/projects/p/sources",
            json!({"name": "mlflow", "secret": "mlflow-shared-secret-0001"}),
        )
        .await;
    assert_eq!(status, 201, "{source}");
    let url = format!(
        "{}/v1/projects/p/sources/{}/mlflow",
        server.base,
        s(&source["id"])
    );
    let client = reqwest::Client::new();
    let forged = |n: usize| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "x-mlflow-delivery-id",
                format!("00000000-0000-4000-8000-00000000000{n}"),
            )
            .header("x-mlflow-timestamp", now_secs().to_string())
            .header(
                "x-mlflow-signature",
                "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .body(r#"{"entity":"registered_model","action":"created","timestamp":1,"data":{}}"#)
            .send()
    };
    for n in 0..3 {
        assert_eq!(forged(n).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let limited = forged(3).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_audit_log_names_the_token_and_masks_secret_values() {
    let server = Server::start().await;
    server.create_project("p").await;
    let (_, created) = server
        .post("/v1/projects/p/tokens", json!({"name": "deployer"}))
        .await;
    let token = s(&created["token"]);
    let prefix = s(&created["prefix"]);
    let as_writer = |method: &'static str, path: String, body: Option<Value>| {
        let server = &server;
        let token = token.clone();
        async move {
            server
                .request(method, &path, Some(&token), body.as_ref())
                .await
        }
    };
    let (status, hook) = as_writer(
        "POST",
        "/v1/projects/p/webhooks".into(),
        Some(
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"], "secret": SECRET,
                    "headers": [{"key": "X-Key", "value": PROTECTED, "protected": true}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let id = s(&hook["id"]);
    let path = format!("/v1/projects/p/webhooks/{id}");
    let (status, _) = as_writer(
        "PATCH",
        path.clone(),
        Some(json!({"name": "renamed", "secret": "another-secret-42"})),
    )
    .await;
    assert_eq!(status, 200);
    as_writer("POST", format!("{path}/signing-secret/rotate"), None).await;
    let (status, _) = as_writer("DELETE", path, None).await;
    assert_eq!(status, 204);

    let (status, audit) = server.get("/v1/projects/p/audit").await;
    assert_eq!(status, 200, "{audit}");
    let records = audit["data"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.deleted",
            "webhook.signing_key_rotated",
            "webhook.updated",
            "webhook.created",
            "token.created",
            "project.created"
        ]
    );
    assert!(s(&records[0]["actor"]).starts_with(&prefix), "{audit}");
    assert_eq!(records[5]["actor"], "admin (MLHOOK_ADMIN_TOKEN)");
    let update = &records[2]["changes"];
    assert_eq!(update["name"]["to"], "renamed", "{update}");
    assert_eq!(update["secret"], "changed", "{update}");
    assert_eq!(records[1]["changes"]["signing_key"], "changed");
    let text = audit.to_string();
    for secret in [SECRET, PROTECTED, "another-secret-42", "whsec_"] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    // Pages, newest first.
    let (_, first) = server.get("/v1/projects/p/audit?limit=4").await;
    let cursor = s(&first["next_cursor"]);
    let (_, rest) = server
        .get(&format!("/v1/projects/p/audit?limit=4&cursor={cursor}"))
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert_eq!(rest["data"][1]["action"], "project.created");
}

/// Who a route lets in, beyond the admin.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Access {
    /// The admin only (creating and deleting projects).
    Admin,
    /// Any valid token: the event catalog, the project list (filtered).
    AnyToken,
    /// Any token that may write: a project's write token, whichever project.
    AnyWriter,
    /// A token of the project, read or write.
    ProjectRead,
    /// A write token of the project.
    ProjectWrite,
}

/// Every authenticated route of the API, with bodies that would change
/// something if the call were let through. The two health routes need no
/// token, and the MLflow receiving route authenticates by signature
/// (tests/it/mlflow.rs); nothing else is left out.
fn every_route(ids: &Ids, receiver: &str) -> Vec<(&'static str, String, Option<Value>, Access)> {
    use Access::*;
    let Ids {
        webhook,
        event,
        delivery,
        token,
        source,
    } = ids;
    let p = "/v1/projects/a";
    let hook = json!({"url": format!("{receiver}/stolen"), "events": ["*"]});
    let test_event = json!({"type": "TEST", "payload": {}});
    vec![
        ("GET", "/v1/projects".into(), None, AnyToken),
        (
            "POST",
            "/v1/projects".into(),
            Some(json!({"id": "intruder", "name": "x"})),
            Admin,
        ),
        ("GET", p.into(), None, ProjectRead),
        (
            "PATCH",
            p.into(),
            Some(json!({"name": "hacked"})),
            ProjectWrite,
        ),
        ("DELETE", p.into(), None, Admin),
        ("GET", "/v1/event-types".into(), None, AnyToken),
        ("GET", "/v1/event-types/TEST".into(), None, AnyToken),
        (
            "POST",
            "/v1/event-types/TEST/validate".into(),
            Some(json!({"payload": {}})),
            AnyWriter,
        ),
        ("GET", "/v1/formats".into(), None, AnyToken),
        (
            "POST",
            "/v1/formats/preview".into(),
            Some(json!({"format": "slack", "events": ["TEST"]})),
            AnyWriter,
        ),
        ("GET", "/metrics".into(), None, Admin),
        ("GET", format!("{p}/tokens"), None, ProjectRead),
        ("POST", format!("{p}/tokens"), Some(json!({})), ProjectWrite),
        ("DELETE", format!("{p}/tokens/{token}"), None, ProjectWrite),
        ("GET", format!("{p}/audit"), None, ProjectRead),
        ("GET", format!("{p}/webhooks"), None, ProjectRead),
        (
            "POST",
            format!("{p}/webhooks"),
            Some(hook.clone()),
            ProjectWrite,
        ),
        (
            "POST",
            format!("{p}/webhooks/validate"),
            Some(hook),
            ProjectWrite,
        ),
        ("GET", format!("{p}/webhooks/{webhook}"), None, ProjectRead),
        (
            "PATCH",
            format!("{p}/webhooks/{webhook}"),
            Some(json!({"name": "hacked"})),
            ProjectWrite,
        ),
        (
            "DELETE",
            format!("{p}/webhooks/{webhook}"),
            None,
            ProjectWrite,
        ),
        (
            "GET",
            format!("{p}/webhooks/{webhook}/signing-secret"),
            None,
            ProjectWrite,
        ),
        (
            "POST",
            format!("{p}/webhooks/{webhook}/signing-secret/rotate"),
            None,
            ProjectWrite,
        ),
        (
            "GET",
            format!("{p}/webhooks/{webhook}/stats"),
            None,
            ProjectRead,
        ),
        (
            "POST",
            format!("{p}/webhooks/{webhook}/validate"),
            Some(json!({"name": "probe"})),
            ProjectWrite,
        ),
        (
            "POST",
            format!("{p}/webhooks/{webhook}/test"),
            None,
            ProjectWrite,
        ),
        (
            "POST",
            format!("{p}/webhooks/{webhook}/recover"),
            Some(json!({"since": "2h"})),
            ProjectWrite,
        ),
        ("GET", format!("{p}/events"), None, ProjectRead),
        (
            "POST",
            format!("{p}/events"),
            Some(test_event.clone()),
            ProjectWrite,
        ),
        (
            "POST",
            format!("{p}/events/batch"),
            Some(json!({"events": [test_event]})),
            ProjectWrite,
        ),
        ("GET", format!("{p}/events/{event}"), None, ProjectRead),
        (
            "POST",
            format!("{p}/events/{event}/replay"),
            None,
            ProjectWrite,
        ),
        ("GET", format!("{p}/deliveries"), None, ProjectRead),
        (
            "GET",
            format!("{p}/deliveries/{delivery}"),
            None,
            ProjectRead,
        ),
        (
            "POST",
            format!("{p}/deliveries/{delivery}/redeliver"),
            None,
            ProjectWrite,
        ),
        ("GET", format!("{p}/sources"), None, ProjectRead),
        (
            "POST",
            format!("{p}/sources"),
            Some(json!({"name": "intruder", "secret": "an-intruders-source-secret"})),
            ProjectWrite,
        ),
        ("GET", format!("{p}/sources/{source}"), None, ProjectRead),
        (
            "PATCH",
            format!("{p}/sources/{source}"),
            Some(json!({"name": "hacked"})),
            ProjectWrite,
        ),
        (
            "DELETE",
            format!("{p}/sources/{source}"),
            None,
            ProjectWrite,
        ),
        (
            "GET",
            format!("{p}/sources/{source}/log"),
            None,
            ProjectRead,
        ),
    ]
}

/// The route template a concrete path of `every_route` was made from.
fn template_of(path: &str, ids: &Ids) -> String {
    let mut template = path.replacen("/v1/projects/a", "/v1/projects/{project}", 1);
    for id in [
        &ids.webhook,
        &ids.event,
        &ids.delivery,
        &ids.token,
        &ids.source,
    ] {
        template = template.replace(id.as_str(), "{id}");
    }
    template.replace("/event-types/TEST", "/event-types/{event_type}")
}

struct Ids {
    webhook: String,
    event: String,
    delivery: String,
    token: String,
    source: String,
}

async fn token_for(server: &Server, project: &str, kind: &str) -> (String, String) {
    let (status, created) = server
        .post(
            &format!("/v1/projects/{project}/tokens"),
            json!({"kind": kind}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (s(&created["token"]), s(&created["id"]))
}

/// Everything of project `a` a leaking route could change or reveal.
async fn snapshot(server: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/v1/projects",
        "/v1/projects/a/webhooks",
        "/v1/projects/a/tokens",
        "/v1/projects/a/events",
        "/v1/projects/a/deliveries",
        "/v1/projects/a/sources",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        all.push(body);
    }
    all
}

#[tokio::test]
async fn every_route_keeps_out_missing_wrong_revoked_read_only_and_foreign_tokens() {
    // Every failure comes from one address: lift the failed-auth limit here.
    let server = Server::start_with(&flags(&["--auth-failures-per-minute", "100000"])).await;
    let receiver = Receiver::start().await;
    server.create_project("a").await;
    server.create_project("b").await;
    let hook = server
        .create_webhook("a", json!({"url": receiver.url, "events": ["*"]}))
        .await;
    let accepted = server
        .send_event(
            "a",
            "TEST",
            server.get("/v1/event-types/TEST").await.1["example"].clone(),
        )
        .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let (status, source) = server
        .post(
            "/v1/projects/a/sources",
            json!({"name": "mlflow", "secret": "source-secret-of-project-a"}),
        )
        .await;
    assert_eq!(status, 201, "{source}");
    let (_, spare_token) = token_for(&server, "a", "write").await;
    let ids = Ids {
        webhook: s(&hook["id"]),
        event: s(&accepted["id"]),
        delivery: s(&accepted["deliveries"][0]),
        token: spare_token,
        source: s(&source["id"]),
    };
    let (read_a, _) = token_for(&server, "a", "read").await;
    let (revoked_a, revoked_id) = token_for(&server, "a", "write").await;
    let (status, _) = server
        .delete(&format!("/v1/projects/a/tokens/{revoked_id}"))
        .await;
    assert_eq!(status, 204);
    let (write_b, _) = token_for(&server, "b", "write").await;
    let before = snapshot(&server).await;
    let received_before = receiver.count();

    let routes = every_route(&ids, &receiver.url);
    for (method, path, body, access) in &routes {
        let server = &server;
        let call = |token: Option<String>| async move {
            server
                .request(method, path, token.as_deref(), body.as_ref())
                .await
        };
        let context = |who: &str| format!("{method} {path} with {who}");
        for (who, token) in [
            ("no token", None),
            ("a wrong token", Some("mlh_not-a-token".to_string())),
            ("a revoked token", Some(revoked_a.clone())),
        ] {
            let (status, answer) = call(token).await;
            assert_eq!(status, 401, "{}: {answer}", context(who));
            assert_eq!(answer["error"]["code"], "unauthorized");
        }

        let (status, answer) = call(Some(read_a.clone())).await;
        let read_only_refused = matches!(
            access,
            Access::Admin | Access::AnyWriter | Access::ProjectWrite
        );
        if read_only_refused {
            assert_eq!(status, 403, "{}: {answer}", context("a read token"));
        } else {
            assert!(status.is_success(), "{}: {answer}", context("a read token"));
        }

        let (status, answer) = call(Some(write_b.clone())).await;
        match access {
            Access::Admin => assert_eq!(status, 403, "{}: {answer}", context("b's token")),
            Access::AnyToken | Access::AnyWriter => {
                assert_eq!(status, 200, "{}: {answer}", context("b's token"));
                assert!(!answer.to_string().contains("\"a\""), "{answer}");
            }
            Access::ProjectRead | Access::ProjectWrite => {
                // Exactly what a project that does not exist answers.
                let elsewhere = path.replacen("/v1/projects/a", "/v1/projects/zz-none", 1);
                let (none_status, none_answer) = server
                    .request(method, &elsewhere, Some(&write_b), body.as_ref())
                    .await;
                assert_eq!(status, 404, "{}: {answer}", context("b's token"));
                assert_eq!((status, &answer), (none_status, &none_answer), "{path}");
            }
        }
    }
    assert_eq!(snapshot(&server).await, before, "nothing of a changed");
    assert_eq!(
        receiver.settle(Duration::from_millis(300)).await.len(),
        received_before,
        "no request was sent for a refused call"
    );

    // The matrix is every authenticated route the API documents (and the
    // OpenAPI test holds the document to every route the code registers).
    let (_, doc) = server.request("GET", "/openapi.json", None, None).await;
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut matrix: Vec<(String, String)> = routes
        .iter()
        .map(|(method, path, _, _)| (method.to_string(), template_of(path, &ids)))
        .collect();
    let public = [
        "/healthz",
        "/readyz",
        "/v1/projects/{project}/sources/{id}/mlflow",
    ];
    documented.retain(|(_, path)| !public.contains(&path.as_str()));
    documented.sort();
    matrix.sort();
    assert_eq!(
        matrix, documented,
        "the matrix and the documented routes differ"
    );

    // The routes exist: the admin reaches every read route.
    for (method, path, _, _) in routes.iter().filter(|r| r.0 == "GET") {
        let (status, answer) = server.request(method, path, Some(ADMIN), None).await;
        assert_eq!(status, 200, "{method} {path} as admin: {answer}");
    }
}

/// Runs the whole life of webhooks holding every kind of secret — sends that
/// fail and retry, tests, validations, redeliveries, rotation, reads of every
/// list — then looks for each secret in everything the service wrote: its
/// log, its data directory, and every API answer except the two that exist
/// to show one (token creation, the signing secret on request).
#[tokio::test]
async fn no_secret_appears_in_logs_store_files_or_api_answers() {
    let mut server = Server::start().await;
    // Fails the first attempt of everything, so errors and retries are logged.
    let receiver =
        Receiver::start_with(|n, _| Reply::status(if n % 2 == 0 { 500 } else { 200 })).await;
    server.create_project("p").await;
    let mut answers: Vec<String> = Vec::new();
    let mut shown_once: Vec<String> = Vec::new();

    let (_, created) = server
        .post("/v1/projects/p/tokens", json!({"kind": "write"}))
        .await;
    let project_token = s(&created["token"]);
    let hook = server
        .create_webhook(
            "p",
            json!({"url": format!("{}/plain", receiver.url), "events": ["*"], "secret": SECRET,
                   "headers": [{"key": "X-Api-Key", "value": PROTECTED, "protected": true}]}),
        )
        .await;
    let signing = s(&hook["signing_secret"]);
    shown_once.push(hook.to_string());
    let github = server
        .create_webhook(
            "p",
            json!({"format": "github_dispatch", "events": ["*"],
                   "github": {"repository": "o/r", "token": GITHUB_TOKEN,
                              "api_url": format!("{}/gh", receiver.url)}}),
        )
        .await;
    shown_once.push(github.to_string());
    const SOURCE_SECRET: &str = "mlflow-source-secret-3e9d1f";
    let (status, source) = server
        .post(
            "/v1/projects/p/sources",
            json!({"name": "mlflow", "secret": SOURCE_SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{source}");
    answers.push(source.to_string());

    let hook_path = format!("/v1/projects/p/webhooks/{}", s(&hook["id"]));
    let example = server.get("/v1/event-types/TEST").await.1["example"].clone();
    let accepted = server.send_event("p", "TEST", example).await;
    receiver.wait_for(4, Duration::from_secs(15)).await;
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", format!("{hook_path}/test"), None),
        (
            "POST",
            "/v1/projects/p/webhooks/validate".into(),
            Some(
                json!({"url": format!("{}/v", receiver.url), "events": ["*"],
                        "secret": SECRET,
                        "headers": [{"key": "X-Api-Key", "value": PROTECTED, "protected": true}]}),
            ),
        ),
        (
            "POST",
            format!(
                "/v1/projects/p/deliveries/{}/redeliver",
                s(&accepted["deliveries"][0])
            ),
            None,
        ),
        ("PATCH", hook_path.clone(), Some(json!({"name": "renamed"}))),
        ("GET", "/v1/projects/p/webhooks".into(), None),
        ("GET", hook_path.clone(), None),
        ("GET", format!("{hook_path}/stats"), None),
        ("GET", "/v1/projects/p/events".into(), None),
        (
            "GET",
            format!("/v1/projects/p/events/{}", s(&accepted["id"])),
            None,
        ),
        ("GET", "/v1/projects/p/tokens".into(), None),
        ("GET", "/v1/projects/p/audit".into(), None),
        ("GET", "/v1/projects/p/sources".into(), None),
        (
            "GET",
            format!("/v1/projects/p/sources/{}", s(&source["id"])),
            None,
        ),
    ];
    // Rotation answers without the new signing secret: an answer like any other.
    let (status, rotated) = server
        .post(&format!("{hook_path}/signing-secret/rotate"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    answers.push(rotated.to_string());
    for (method, path, body) in &calls {
        let (status, answer) = server
            .request(method, path, Some(ADMIN), body.as_ref())
            .await;
        assert!(status.is_success(), "{method} {path}: {answer}");
        answers.push(answer.to_string());
    }
    // Every delivery and its attempts, as the log shows them.
    let (_, deliveries) = server.get("/v1/projects/p/deliveries").await;
    answers.push(deliveries.to_string());
    for d in deliveries["data"].as_array().unwrap() {
        let (_, detail) = server
            .get(&format!("/v1/projects/p/deliveries/{}", s(&d["id"])))
            .await;
        assert!(
            detail["history"].as_array().is_some_and(|a| !a.is_empty()),
            "{detail}"
        );
        answers.push(detail.to_string());
    }
    let (_, revealed) = server.get(&format!("{hook_path}/signing-secret")).await;
    let rotated_signing = s(&revealed["signing_secret"]);
    assert_eq!(server.terminate().code(), Some(0));

    let log = server.log();
    assert!(log.contains("delivery"), "the log was captured");
    let disk = store_bytes(&server);
    let secrets = [
        SECRET,
        PROTECTED,
        GITHUB_TOKEN,
        SOURCE_SECRET,
        ADMIN,
        project_token.as_str(),
        signing.as_str(),
        rotated_signing.as_str(),
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in the server log");
        assert!(!contains(&disk, secret), "{secret} in the store files");
        for answer in &answers {
            assert!(
                !answer.contains(secret),
                "{secret} in an API answer: {answer}"
            );
        }
    }
    // The creation answers show the signing secret, and nothing else secret.
    for answer in &shown_once {
        for secret in [SECRET, PROTECTED, GITHUB_TOKEN] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
    }
}

/// A receiver that echoes what it was sent — every header in its body, the
/// credentials as response headers — must not put the webhook's secrets in
/// the delivery log: they are masked there as in the request.
#[tokio::test]
async fn secrets_a_receiver_echoes_back_are_masked_in_the_delivery_log() {
    let server = Server::start().await;
    let receiver = Receiver::start_with(|_, request| {
        let echoed: Vec<String> = request
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
            .collect();
        let mut reply = Reply::status(500);
        reply.headers = vec![
            (
                "x-echo-authorization",
                request.header("authorization").to_string(),
            ),
            ("x-echo-key", request.header("x-api-key").to_string()),
        ];
        reply.body = echoed.join("\n");
        reply
    })
    .await;
    server.create_project("p").await;
    server
        .create_webhook(
            "p",
            json!({"url": format!("{}/plain", receiver.url), "events": ["*"], "secret": SECRET,
                   "headers": [{"key": "X-Api-Key", "value": PROTECTED, "protected": true}]}),
        )
        .await;
    server
        .create_webhook(
            "p",
            json!({"format": "github_dispatch", "events": ["*"],
                   "github": {"repository": "o/r", "token": GITHUB_TOKEN,
                              "api_url": format!("{}/gh", receiver.url)}}),
        )
        .await;
    send_test_event(&server).await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    let (_, read) = server
        .post("/v1/projects/p/tokens", json!({"kind": "read"}))
        .await;
    let read_token = s(&read["token"]);
    let mut logs = Vec::new();
    let deliveries = server
        .poll_until(
            "/v1/projects/p/deliveries",
            Duration::from_secs(10),
            "attempted",
            |v| {
                v["data"]
                    .as_array()
                    .is_some_and(|d| d.len() == 2 && d.iter().all(|d| d["attempts"] != 0))
            },
        )
        .await;
    for d in deliveries["data"].as_array().unwrap() {
        let path = format!("/v1/projects/p/deliveries/{}", s(&d["id"]));
        let (status, detail) = server.request("GET", &path, Some(&read_token), None).await;
        assert_eq!(status, 200, "{detail}");
        logs.push(detail.to_string());
    }
    let all = logs.join("\n");
    assert!(all.contains("x-echo-authorization"), "{all}");
    for secret in [SECRET, PROTECTED, GITHUB_TOKEN] {
        assert!(!all.contains(secret), "{secret} in the delivery log: {all}");
    }
    assert!(all.matches("********").count() >= 6, "{all}");
    let disk = store_bytes(&server);
    for secret in [SECRET, PROTECTED, GITHUB_TOKEN] {
        assert!(!contains(&disk, secret), "{secret} in the store files");
    }
}
