//! Property tests over the three parsers that take untrusted text: webhook
//! URLs, signature headers, and event payloads. They run a few hundred cases
//! in the test suite; for a longer hunt: `PROPTEST_CASES=100000 cargo test
//! --release --test fuzz`.

use std::net::Ipv4Addr;

use mlhook::catalog::{Catalog, PrepareContext};
use mlhook::netguard::NetworkPolicy;
use mlhook::signing;
use mlhook::webhook::{Webhook, WebhookInput};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The textual forms one IPv4 address can take in a URL host.
fn ipv4_forms(ip: Ipv4Addr) -> Vec<String> {
    let n = u32::from(ip);
    let [a, b, c, d] = ip.octets();
    vec![
        ip.to_string(),
        n.to_string(),
        format!("0x{n:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!(
            "{a}.{}",
            (u32::from(b) << 16) | (u32::from(c) << 8) | u32::from(d)
        ),
        format!("[::ffff:{ip}]"),
    ]
}

/// Addresses in ranges the guard blocks by default.
fn blocked_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(127, b, c, d)),
        any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(10, b, c, d)),
        any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(192, 168, c, d)),
        any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(169, 254, c, d)),
        (16u8..32, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(172, b, c, d)),
        (64u8..128, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(100, b, c, d)),
        any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(0, b, c, d)),
        (224u8..=255, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d)),
    ]
}

fn webhook_with_url(url: &str) -> Result<Webhook, Vec<mlhook::error::FieldError>> {
    let input: WebhookInput =
        serde_json::from_value(json!({"url": url, "events": ["*"]})).expect("input shape");
    Webhook::create(input, &"p".into(), &Catalog::builtin(), 0)
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z_]{1,20}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn every_form_of_a_blocked_address_is_refused(ip in blocked_ipv4(), port in 1u16..) {
        let policy = NetworkPolicy::default();
        for host in ipv4_forms(ip) {
            let url = format!("http://{host}:{port}/hook");
            prop_assert!(policy.check_url(&url).is_err(), "{url} was let through");
        }
    }

    #[test]
    fn url_checks_never_panic_and_accept_only_plain_http_urls(url in prop_oneof![
        "\\PC{0,80}",
        "(https?|HTTP|ftp)://[a-z0-9.@:%_\\[\\]-]{1,40}(/\\PC{0,20})?",
    ]) {
        let _ = NetworkPolicy::default().check_url(&url);
        if let Ok(webhook) = webhook_with_url(&url) {
            let parsed = url::Url::parse(&webhook.url).expect("a saved URL parses");
            prop_assert!(matches!(parsed.scheme(), "http" | "https"), "{url}");
            prop_assert!(parsed.host_str().is_some_and(|h| !h.is_empty()), "{url}");
            prop_assert!(parsed.username().is_empty() && parsed.password().is_none(), "{url}");
        }
    }

    #[test]
    fn url_shaped_input_with_credentials_or_other_schemes_is_refused(
        scheme in "(ftp|file|gopher|javascript|data|ws)",
        user in "[a-z]{1,8}",
        host in "[a-z]{1,12}\\.(com|io|org)",
    ) {
        let refused = [
            format!("{scheme}://{host}/x"),
            format!("https://{user}@{host}/x"),
            format!("https://{user}:pw@{host}/x"),
        ];
        for url in refused {
            prop_assert!(webhook_with_url(&url).is_err(), "{}", url);
        }
    }

    #[test]
    fn signature_headers_never_panic_and_never_verify_by_chance(
        header in "\\PC{0,200}",
        forged in prop::collection::vec("v1a?,[A-Za-z0-9+/]{0,90}={0,2}", 0..4),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let hmac = signing::generate_secret();
        let ed = signing::generate_ed25519_secret();
        let public = signing::public_key(&ed).unwrap().unwrap();
        for text in [header.clone(), forged.join(" ")] {
            for key in [&hmac, &public, &ed] {
                prop_assert!(!signing::verify(key, "msg_1", 1, &body, &text).unwrap());
            }
        }
    }

    #[test]
    fn signatures_verify_for_any_content_and_only_for_it(
        id in "\\PC{0,40}",
        timestamp in any::<i64>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        flip in any::<prop::sample::Index>(),
    ) {
        for key in [signing::generate_secret(), signing::generate_ed25519_secret()] {
            let header = signing::sign(&key, &id, timestamp, &body).unwrap();
            let checker = signing::public_key(&key).unwrap().unwrap_or(key.clone());
            prop_assert!(signing::verify(&checker, &id, timestamp, &body, &header).unwrap());
            let mut altered = body.clone();
            if altered.is_empty() {
                altered.push(0);
            } else {
                let i = flip.index(altered.len());
                altered[i] ^= 0x01;
            }
            prop_assert!(!signing::verify(&checker, &id, timestamp, &altered, &header).unwrap());
        }
    }

    #[test]
    fn payload_validation_never_panics_and_names_fields_as_pointers(
        payload in json_value(),
        pick in any::<prop::sample::Index>(),
    ) {
        let catalog = Catalog::builtin();
        let types: Vec<String> = catalog.list().map(|t| t.name.clone()).collect();
        let event_type = &types[pick.index(types.len())];
        let ctx = PrepareContext { project_id: "p" };
        if let Err(mlhook::catalog::CatalogError::Invalid(violations)) =
            catalog.prepare(event_type, payload, &ctx)
        {
            prop_assert!(!violations.is_empty());
            for v in violations {
                prop_assert!(v.pointer.is_empty() || v.pointer.starts_with('/'), "{}", v.pointer);
            }
        }
    }
}
