mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_event_reaches_a_receiver_signed() {
    let server = Server::start().await;
    let receiver = Receiver::start().await;
    server.create_project("p").await;
    let hook = server.create_webhook("p", json!({"url": format!("{}/hook", receiver.url), "events": ["*"]})).await;
    server.send_event("p", "RUN_COMPLETED", json!({"header": {"model_name": "m", "model_id": 1},
        "payload": {"run": {"started_at": "x"}, "performance_alerts": {}, "other_alerts": {}, "success": [], "report_link": "http://x"}})).await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert!(verify_signature(hook["signing_secret"].as_str().unwrap(), &got[0]));
}
