//! Event type patterns: what a webhook's `events` may list besides names.
//!
//! The rule, stated once: an entry is an event type name, or a pattern in
//! which `*` stands for any run of characters (none included, dots included)
//! — shell-style, no other wildcard, no regex. `*` alone is every platform
//! event. mlhook's own `mlhook.*` events are matched only by entries that
//! begin with `mlhook.`, so a catch-all never subscribes to them by accident.

/// The longest entry, as the longest type name.
pub const MAX_LEN: usize = 100;

/// Why an entry of `events` is not a name or pattern.
pub fn check_syntax(entry: &str) -> Result<(), String> {
    if entry.is_empty() || entry.chars().count() > MAX_LEN {
        return Err(format!("must be 1 to {MAX_LEN} characters"));
    }
    match entry
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '*')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed: use letters, digits, `_ . : -` and `*` as a wildcard"
        )),
        None => Ok(()),
    }
}

pub fn is_pattern(entry: &str) -> bool {
    entry.contains('*')
}

/// Whether the `events` entry `entry` (a name or a pattern) covers `name`.
pub fn covers(entry: &str, name: &str) -> bool {
    if entry == name {
        return true;
    }
    if !is_pattern(entry) || (name.starts_with("mlhook.") && !entry.starts_with("mlhook.")) {
        return false;
    }
    glob(entry.as_bytes(), name.as_bytes())
}

/// `*`-only glob match, linear in the name's length times the stars' count:
/// on a mismatch after a star, only that star's span is stretched by one.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_spans_any_run_of_characters() {
        assert!(covers("*", "MODEL_VERSION_CREATED"));
        assert!(covers(
            "mlflow.model_version_alias.*",
            "mlflow.model_version_alias.created"
        ));
        assert!(!covers(
            "mlflow.model_version_alias.*",
            "mlflow.model_version.created"
        ));
        assert!(covers("execution_*", "execution_completed"));
        assert!(covers("*_completed", "execution_completed"));
        assert!(covers(
            "mlflow.*.created",
            "mlflow.model_version_tag.created"
        ));
        assert!(covers("a*b*c", "abc"));
        assert!(covers("a*b*c", "axxbyyc"));
        assert!(!covers("a*b*c", "axxbyy"));
        assert!(!covers("execution_*", "EXECUTION_COMPLETED"));
    }

    #[test]
    fn names_match_only_themselves() {
        assert!(covers("TEST", "TEST"));
        assert!(!covers("TEST", "TESTS"));
        assert!(!covers("TES", "TEST"));
    }

    #[test]
    fn own_events_need_an_entry_that_names_them() {
        assert!(!covers("*", "mlhook.webhook.disabled"));
        assert!(!covers("*.disabled", "mlhook.webhook.disabled"));
        assert!(covers("mlhook.*", "mlhook.webhook.disabled"));
        assert!(covers("mlhook.webhook.disabled", "mlhook.webhook.disabled"));
    }

    #[test]
    fn syntax_allows_name_characters_and_star() {
        assert!(check_syntax("mlflow.model_version_alias.*").is_ok());
        assert!(check_syntax("team:drift-check_v2").is_ok());
        assert!(check_syntax("").is_err());
        assert!(check_syntax("a b").is_err());
        assert!(check_syntax("model?").is_err());
        assert!(check_syntax(&"x".repeat(101)).is_err());
    }
}
