//! Standard Webhooks signatures (https://www.standardwebhooks.com), both kinds
//! the specification defines, chosen by the key's prefix:
//! - `whsec_<base64 key>`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`;
//! - `whsk_<base64 ed25519 secret key>` signs, `whpk_<base64 public key>`
//!   verifies: `v1a,<base64 ed25519 signature of the same string>`.
//!
//! A header may carry several signatures, space-separated (during a key
//! rotation the old key signs too); a receiver accepts when any one matches.
//! The same module signs in the service and verifies in `mlhook listen`, so
//! there is one implementation of the scheme, not two.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
const ED25519_SECRET_PREFIX: &str = "whsk_";
const ED25519_PUBLIC_PREFIX: &str = "whpk_";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SigningError {
    #[error("a signing key must be whsec_, whsk_ or whpk_ followed by base64 of the key")]
    MalformedSecret,
}

/// Which of the two Standard Webhooks signatures a webhook sends.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// `v1`: HMAC-SHA256 with a shared `whsec_` secret.
    #[default]
    HmacSha256,
    /// `v1a`: ed25519; the receiver holds only the `whpk_` public key.
    Ed25519,
}

impl Scheme {
    /// The scheme a stored signing key belongs to.
    pub fn of_key(key: &str) -> Scheme {
        if key.starts_with(ED25519_SECRET_PREFIX) {
            Scheme::Ed25519
        } else {
            Scheme::HmacSha256
        }
    }

    /// A fresh signing key of this scheme.
    pub fn generate(self) -> String {
        match self {
            Scheme::HmacSha256 => generate_secret(),
            Scheme::Ed25519 => generate_ed25519_secret(),
        }
    }
}

fn random_32() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

/// A fresh `whsec_<base64 of 32 random bytes>` secret.
pub fn generate_secret() -> String {
    format!("{SECRET_PREFIX}{}", B64.encode(random_32()))
}

/// A fresh `whsk_<base64 of the 32-byte seed and the 32-byte public key>`
/// (the 64-byte layout libsodium and tweetnacl use).
pub fn generate_ed25519_secret() -> String {
    let key = SigningKey::from_bytes(&random_32());
    format!(
        "{ED25519_SECRET_PREFIX}{}",
        B64.encode(key.to_keypair_bytes())
    )
}

/// The raw HMAC key inside a `whsec_` secret.
fn secret_key(secret: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SigningError::MalformedSecret)?;
    B64.decode(encoded)
        .map_err(|_| SigningError::MalformedSecret)
}

/// The ed25519 key inside a `whsk_` secret (32-byte seed or 64-byte pair).
fn ed25519_signing_key(secret: &str) -> Result<SigningKey, SigningError> {
    let bytes = secret
        .strip_prefix(ED25519_SECRET_PREFIX)
        .and_then(|encoded| B64.decode(encoded).ok())
        .ok_or(SigningError::MalformedSecret)?;
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|seed| seed.try_into().ok())
        .filter(|_| bytes.len() == 32 || bytes.len() == 64)
        .ok_or(SigningError::MalformedSecret)?;
    Ok(SigningKey::from_bytes(&seed))
}

fn ed25519_verifying_key(public: &str) -> Result<VerifyingKey, SigningError> {
    let bytes: [u8; 32] = public
        .strip_prefix(ED25519_PUBLIC_PREFIX)
        .and_then(|encoded| B64.decode(encoded).ok())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(SigningError::MalformedSecret)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SigningError::MalformedSecret)
}

/// The `whpk_` public key receivers verify with: for a `whsk_` secret its
/// public half, for a `whsec_` secret `None` (a shared secret has none).
pub fn public_key(secret: &str) -> Result<Option<String>, SigningError> {
    if Scheme::of_key(secret) == Scheme::HmacSha256 {
        secret_key(secret)?;
        return Ok(None);
    }
    let key = ed25519_signing_key(secret)?.verifying_key();
    Ok(Some(format!(
        "{ED25519_PUBLIC_PREFIX}{}",
        B64.encode(key.as_bytes())
    )))
}

/// The string both schemes sign, `{id}.{timestamp}.{body}`, in one piece:
/// ed25519 needs the whole message (HMAC streams it, see `mac`).
fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + body.len() + 24);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// HMAC of `{id}.{timestamp}.{body}`, fed in parts so the body is not copied
/// (the default scheme signs every attempt).
fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One signature (`v1,…` or `v1a,…`, by the key's kind) for one request.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigningError> {
    match Scheme::of_key(secret) {
        Scheme::HmacSha256 => {
            let key = secret_key(secret)?;
            let digest = mac(&key, id, timestamp, body).finalize().into_bytes();
            Ok(format!("v1,{}", B64.encode(digest)))
        }
        Scheme::Ed25519 => {
            let content = signed_content(id, timestamp, body);
            let signature = ed25519_signing_key(secret)?.sign(&content);
            Ok(format!("v1a,{}", B64.encode(signature.to_bytes())))
        }
    }
}

/// The `webhook-signature` header value: one signature per key, space-separated.
pub fn sign_all<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SigningError> {
    let signatures = keys
        .into_iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// Whether any signature in a (space-separated) header value matches `key`:
/// a `whsec_` secret checks the `v1,` entries in constant time, a `whpk_`
/// public key (or its `whsk_` secret) the `v1a,` entries.
pub fn verify(
    key: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<bool, SigningError> {
    let entries = |version: &'static str| {
        header
            .split_whitespace()
            .filter_map(move |s| s.strip_prefix(version))
            .filter_map(|sig| B64.decode(sig).ok())
    };
    if key.starts_with(SECRET_PREFIX) {
        let hmac_key = secret_key(key)?;
        return Ok(entries("v1,").any(|sig| {
            mac(&hmac_key, id, timestamp, body)
                .verify_slice(&sig)
                .is_ok()
        }));
    }
    let public = match key.strip_prefix(ED25519_SECRET_PREFIX) {
        Some(_) => ed25519_signing_key(key)?.verifying_key(),
        None => ed25519_verifying_key(key)?,
    };
    let content = signed_content(id, timestamp, body);
    Ok(entries("v1a,").any(|sig| {
        ed25519_dalek::Signature::from_slice(&sig)
            .is_ok_and(|sig| public.verify(&content, &sig).is_ok())
    }))
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
    fn ed25519_signs_v1a_and_verifies_with_the_public_key_only() {
        let secret = generate_ed25519_secret();
        let public = public_key(&secret).unwrap().unwrap();
        assert!(public.starts_with("whpk_"));
        let sig = sign(&secret, "dlv_1", 42, b"{}").unwrap();
        assert!(sig.starts_with("v1a,"));
        assert!(verify(&public, "dlv_1", 42, b"{}", &sig).unwrap());
        assert!(!verify(&public, "dlv_1", 42, b"{ }", &sig).unwrap());
        let other = public_key(&generate_ed25519_secret()).unwrap().unwrap();
        assert!(!verify(&other, "dlv_1", 42, b"{}", &sig).unwrap());
        // A v1 entry never satisfies an ed25519 key, nor v1a a whsec_ one.
        let hmac = generate_secret();
        let both = sign_all([hmac.as_str(), secret.as_str()], "dlv_1", 42, b"{}").unwrap();
        assert!(verify(&public, "dlv_1", 42, b"{}", &both).unwrap());
        assert!(verify(&hmac, "dlv_1", 42, b"{}", &both).unwrap());
        assert!(!verify(&hmac, "dlv_1", 42, b"{}", &sig).unwrap());
        assert_eq!(public_key(&hmac).unwrap(), None);
    }

    #[test]
    fn ed25519_matches_the_rfc8032_test_vector() {
        // RFC 8032 section 7.1, test 1: the empty message.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let secret = format!("whsk_{}", B64.encode(seed));
        let key = ed25519_signing_key(&secret).unwrap();
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"").to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn malformed_secret_is_an_error() {
        assert_eq!(
            sign("nope", "x", 1, b"").unwrap_err(),
            SigningError::MalformedSecret
        );
        assert!(sign("whsk_AAAA", "x", 1, b"").is_err());
        assert!(verify("whpk_AAAA", "x", 1, b"", "v1a,AAAA").is_err());
    }
}
