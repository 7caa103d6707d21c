//! Secrets at rest: webhook secrets, protected header values, GitHub tokens
//! and signing keys are sealed with XChaCha20-Poly1305 before they reach the
//! store, so a copy of the database alone reveals none of them.
//!
//! The key (32 bytes) comes from `MLHOOK_SECRET_KEY` (base64 or hex) or from
//! a key file, generated with mode 0600 on first start. Sealed values read
//! `sealed:v1:<base64(nonce ‖ ciphertext ‖ tag)>`; the random 24-byte nonce
//! makes two seals of the same secret differ.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const SEALED_PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("the secret key must be 32 bytes, written as base64 or hex")]
    MalformedKey,
    #[error("a stored secret cannot be opened with this key (wrong MLHOOK_SECRET_KEY?)")]
    WrongKey,
    #[error("a stored secret is not sealed")]
    NotSealed,
    #[error("cannot use the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// Seals and opens secret values with one key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; KEY_LEN]) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// A key as an operator writes it: base64 (standard or URL-safe) or hex.
    pub fn from_key_text(text: &str) -> Result<SecretBox, SecretsError> {
        let text = text.trim();
        let decoded = hex::decode(text)
            .ok()
            .or_else(|| B64.decode(text).ok())
            .or_else(|| base64::engine::general_purpose::URL_SAFE.decode(text).ok())
            .ok_or(SecretsError::MalformedKey)?;
        let key: [u8; KEY_LEN] = decoded.try_into().map_err(|_| SecretsError::MalformedKey)?;
        Ok(SecretBox::new(key))
    }

    /// The key from `key_text` when given, else from `key_file`, which is
    /// created (mode 0600) with a random key when it does not exist.
    pub fn load(key_text: Option<&str>, key_file: &Path) -> Result<SecretBox, SecretsError> {
        if let Some(text) = key_text {
            return SecretBox::from_key_text(text);
        }
        let file_error = |source| SecretsError::KeyFile {
            path: key_file.display().to_string(),
            source,
        };
        match std::fs::read_to_string(key_file) {
            Ok(text) => SecretBox::from_key_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::rng().fill_bytes(&mut key);
                write_key_file(key_file, &B64.encode(key)).map_err(file_error)?;
                Ok(SecretBox::new(key))
            }
            Err(e) => Err(file_error(e)),
        }
    }

    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("XChaCha20-Poly1305 seals any length a webhook secret has");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", B64.encode(bytes))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SecretsError> {
        let encoded = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretsError::NotSealed)?;
        let bytes = B64.decode(encoded).map_err(|_| SecretsError::WrongKey)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretsError::WrongKey);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretsError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SecretsError::WrongKey)
    }

    /// Whether a stored value is sealed (older databases kept clear text).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

fn write_key_file(path: &Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    // create_new: two processes starting at once never overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{key}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_to_the_original_and_hide_it() {
        let secrets = SecretBox::new([7; 32]);
        let sealed = secrets.seal("whsec_top");
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_top"));
        assert_ne!(sealed, secrets.seal("whsec_top"), "a fresh nonce per seal");
        assert_eq!(secrets.open(&sealed).unwrap(), "whsec_top");
    }

    #[test]
    fn another_key_or_a_flipped_byte_cannot_open() {
        let sealed = SecretBox::new([1; 32]).seal("value");
        assert!(matches!(
            SecretBox::new([2; 32]).open(&sealed),
            Err(SecretsError::WrongKey)
        ));
        let mut bytes = B64
            .decode(sealed.strip_prefix(SEALED_PREFIX).unwrap())
            .unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        let tampered = format!("{SEALED_PREFIX}{}", B64.encode(bytes));
        assert!(SecretBox::new([1; 32]).open(&tampered).is_err());
        assert!(matches!(
            SecretBox::new([1; 32]).open("clear"),
            Err(SecretsError::NotSealed)
        ));
    }

    #[test]
    fn keys_are_read_as_hex_or_base64_of_32_bytes() {
        let hex_key = "11".repeat(32);
        let b64_key = B64.encode([0x11; 32]);
        let sealed = SecretBox::from_key_text(&hex_key).unwrap().seal("x");
        assert_eq!(
            SecretBox::from_key_text(&b64_key)
                .unwrap()
                .open(&sealed)
                .unwrap(),
            "x"
        );
        assert!(SecretBox::from_key_text("short").is_err());
        assert!(SecretBox::from_key_text(&B64.encode([0; 16])).is_err());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let sealed = SecretBox::load(None, &path).unwrap().seal("kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            SecretBox::load(None, &path).unwrap().open(&sealed).unwrap(),
            "kept"
        );
    }
}
