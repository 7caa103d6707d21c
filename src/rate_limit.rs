//! A pace: the most deliveries per second or per minute a webhook is sent.
//! Set per webhook (`webhook`), documented per provider (`formats`), kept by
//! the lanes (`delivery`); below all three so each can name it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::validation::{FieldError, push};

/// The most deliveries per second or per minute a webhook is sent; more wait
/// in its lane (never dropped, never counted as failures).
/// Exactly one of the two is set (`check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, max_properties = 1)]
pub struct RateLimit {
    /// 1 to 1000 (`MAX_PER_SECOND`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::integral::option_u32"
    )]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub per_second: Option<u32>,
    /// 1 to 60000 (`MAX_PER_MINUTE`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::integral::option_u32"
    )]
    #[schema(nullable = false, minimum = 1, maximum = 60000)]
    pub per_minute: Option<u32>,
}

impl RateLimit {
    pub const MAX_PER_SECOND: u32 = 1000;
    pub const MAX_PER_MINUTE: u32 = 60_000;

    pub fn per_second(n: u32) -> RateLimit {
        RateLimit {
            per_second: Some(n),
            per_minute: None,
        }
    }

    pub fn per_minute(n: u32) -> RateLimit {
        RateLimit {
            per_second: None,
            per_minute: Some(n),
        }
    }

    /// The spacing between two sends.
    pub fn interval(&self) -> Duration {
        match (self.per_second, self.per_minute) {
            (Some(n), _) if n > 0 => Duration::from_secs(1) / n,
            (_, Some(n)) if n > 0 => Duration::from_secs(60) / n,
            _ => Duration::ZERO,
        }
    }

    pub fn check(&self, errors: &mut Vec<FieldError>) {
        match (self.per_second, self.per_minute) {
            (Some(n), None) if (1..=Self::MAX_PER_SECOND).contains(&n) => {}
            (None, Some(n)) if (1..=Self::MAX_PER_MINUTE).contains(&n) => {}
            (Some(_), None) => push(
                errors,
                "/rate_limit/per_second",
                format!("must be between 1 and {}", Self::MAX_PER_SECOND),
            ),
            (None, Some(_)) => push(
                errors,
                "/rate_limit/per_minute",
                format!("must be between 1 and {}", Self::MAX_PER_MINUTE),
            ),
            _ => push(
                errors,
                "/rate_limit",
                "must set exactly one of per_second or per_minute",
            ),
        }
    }
}
