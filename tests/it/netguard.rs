//! The network guard end to end: without `--allow-network`, no request of
//! mlhook reaches the loopback receiver, whatever the URL's form.

use crate::common::*;
use serde_json::json;
use std::time::Duration;

async fn guarded_server() -> Server {
    let args = ["--retry-schedule", "50ms", "--retry-jitter", "0"];
    Server::start_exactly(args.iter().map(|s| s.to_string()).collect()).await
}

#[tokio::test]
async fn ip_literal_destinations_are_refused_at_save_naming_the_rule() {
    let server = guarded_server().await;
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_string();
    server.create_project("p").await;
    let forms = [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f.0.0.1:{port}/x"),
        format!("http://0177.0.0.1:{port}/x"),
        format!("http://127.1:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/x".to_string(),
    ];
    for url in &forms {
        for route in [
            "/v1/projects/p/webhooks",
            "/v1/projects/p/webhooks/validate",
        ] {
            let (status, body) = server
                .post(route, json!({"url": url, "events": ["*"]}))
                .await;
            assert_eq!(status, 400, "{route} {url}: {body}");
            assert_eq!(body["error"]["field"], "/url", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("blocked"),
                "{body}"
            );
        }
    }
    let (_, list) = server.get("/v1/projects/p/webhooks").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert_eq!(receiver.settle(Duration::from_millis(100)).await.len(), 0);
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_blocked_on_every_attempt() {
    let server = guarded_server().await;
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_string();
    server.create_project("p").await;
    // A name is accepted at save: it is judged after resolution, per attempt.
    let hook = server
        .create_webhook(
            "p",
            json!({"url": format!("http://localhost:{port}/x"), "events": ["*"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    let (status, test) = server
        .post(&format!("/v1/projects/p/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["valid"], false, "{test}");
    assert_eq!(test["error"]["kind"], "blocked", "{test}");
    assert!(
        test["error"]["message"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{test}"
    );

    let accepted = server
        .send_event(
            "p",
            "TEST",
            json!({"workspaceName": "w", "registryModelName": "m",
        "version": "1", "tags": [], "createdAt": 1}),
        )
        .await;
    let delivery = accepted["deliveries"][0].as_str().unwrap();
    let path = format!("/v1/projects/p/deliveries/{delivery}");
    let shown = server
        .poll_until(&path, Duration::from_secs(5), "exhausted", |d| {
            d["status"] == "exhausted"
        })
        .await;
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{shown}");
    assert!(
        history.iter().all(|a| a["error"]["kind"] == "blocked"),
        "{shown}"
    );
    assert_eq!(
        receiver.settle(Duration::from_millis(100)).await.len(),
        0,
        "a request reached loopback"
    );
}

#[tokio::test]
async fn https_only_refuses_plain_http() {
    let mut args: Vec<String> = ["--https-only", "--allow-network", "127.0.0.0/8"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--retry-jitter".to_string(), "0".to_string()]);
    let server = Server::start_exactly(args).await;
    server.create_project("p").await;
    let (status, body) = server
        .post(
            "/v1/projects/p/webhooks",
            json!({"url": "http://hooks.example.com/x", "events": ["*"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https-only"),
        "{body}"
    );
}
