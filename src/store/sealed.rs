//! The secret fields of a webhook or a source, sealed on the way into a store
//! and opened on the way out (see `crate::secrets`). Both stores use these
//! functions, so which fields count as secret is decided once.

use super::{StoreError, StoreResult};
use crate::secrets::SecretBox;
use crate::sources::Source;
use crate::webhook::Webhook;

/// A copy of `w` whose secret, signing keys, protected header values and
/// GitHub token are sealed.
pub fn seal_webhook(w: &Webhook, secrets: &SecretBox) -> Webhook {
    let mut sealed = w.clone();
    map_secrets(&mut sealed, |value| Ok(secrets.seal(value))).expect("sealing cannot fail");
    sealed
}

/// Opens what `seal_webhook` sealed. A value still in clear text (written
/// before sealing existed) is taken as is; `seal_clear_secrets` rewrites it.
pub fn open_webhook(mut w: Webhook, secrets: &SecretBox) -> StoreResult<Webhook> {
    map_secrets(&mut w, |value| {
        if !SecretBox::is_sealed(value) {
            return Ok(value.to_string());
        }
        secrets
            .open(value)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    })?;
    Ok(w)
}

/// Opens a stored source's secret (`Source::sealed` sealed it).
pub fn open_source(stored: Source, secrets: &SecretBox) -> StoreResult<Source> {
    stored
        .opened(secrets)
        .map_err(|_| StoreError::WrongSecretKey)
}

/// Whether any secret field of a stored (not yet opened) webhook is in clear text.
pub fn has_clear_secrets(stored: &Webhook) -> bool {
    let mut clear = false;
    let mut probe = stored.clone();
    let _ = map_secrets(&mut probe, |value| {
        clear |= !SecretBox::is_sealed(value);
        Ok(value.to_string())
    });
    clear
}

/// Applies `f` to every secret field that holds a value.
fn map_secrets(w: &mut Webhook, mut f: impl FnMut(&str) -> StoreResult<String>) -> StoreResult<()> {
    if let Some(secret) = &mut w.secret {
        *secret = f(secret)?;
    }
    w.signing_secret = f(&w.signing_secret)?;
    if let Some(previous) = &mut w.previous_signing {
        previous.key = f(&previous.key)?;
    }
    for header in w.headers.iter_mut().filter(|h| h.protected) {
        header.value = f(&header.value)?;
    }
    if let Some(github) = &mut w.format_config.github
        && !github.token.is_empty()
    {
        github.token = f(&github.token)?;
    }
    Ok(())
}
