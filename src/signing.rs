//! Standard Webhooks signatures (https://www.standardwebhooks.com):
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`
//! where the key is the base64 part of a `whsec_…` secret.
//!
//! The same module signs in the service and verifies in `mlhook listen`, so
//! there is one implementation of the scheme, not two.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SigningError {
    #[error("signing secret must start with whsec_ and hold base64")]
    MalformedSecret,
}

/// A fresh `whsec_<base64 of 32 random bytes>` secret.
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", B64.encode(key))
}

/// The raw HMAC key inside a `whsec_` secret.
fn secret_key(secret: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SigningError::MalformedSecret)?;
    B64.decode(encoded)
        .map_err(|_| SigningError::MalformedSecret)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` header value for one request.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigningError> {
    let key = secret_key(secret)?;
    let digest = mac(&key, id, timestamp, body).finalize().into_bytes();
    Ok(format!("v1,{}", B64.encode(digest)))
}

/// Whether any `v1,` signature in a (space-separated) header value matches,
/// compared in constant time.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<bool, SigningError> {
    let key = secret_key(secret)?;
    let matches = header
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| {
            B64.decode(sig)
                .is_ok_and(|bytes| mac(&key, id, timestamp, body).verify_slice(&bytes).is_ok())
        });
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_hold_32_bytes_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(secret_key(&a).unwrap().len(), 32);
    }

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verify_accepts_own_signature_and_rejects_tampering() {
        let secret = generate_secret();
        let sig = sign(&secret, "dlv_1", 42, b"{}").unwrap();
        assert!(verify(&secret, "dlv_1", 42, b"{}", &sig).unwrap());
        assert!(verify(&secret, "dlv_1", 42, b"{}", &format!("v1,AAAA {sig}")).unwrap());
        assert!(!verify(&secret, "dlv_1", 43, b"{}", &sig).unwrap());
        assert!(!verify(&secret, "dlv_1", 42, b"{ }", &sig).unwrap());
        assert!(!verify(&generate_secret(), "dlv_1", 42, b"{}", &sig).unwrap());
    }

    #[test]
    fn malformed_secret_is_an_error() {
        assert_eq!(
            sign("nope", "x", 1, b"").unwrap_err(),
            SigningError::MalformedSecret
        );
    }
}
