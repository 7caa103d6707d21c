//! Identifiers and clock helpers shared by every module.
//!
//! Ids are UUIDv7 (time-ordered) behind a short prefix naming the resource, so
//! sorting by id is sorting by creation time — the delivery log pages on that.
//!
//! Each kind of id has a type of its own ([`ProjectId`], [`WebhookId`],
//! [`EventId`], [`DeliveryId`], [`SourceId`], [`TokenId`]): a function that
//! takes a project and a webhook takes `(&ProjectId, &WebhookId)`, so passing
//! the two the wrong way round is a compile error instead of a lookup that
//! silently finds nothing (or the wrong row). They are plain text underneath:
//! the same JSON (`serde(transparent)`), the same columns
//! (`sqlx(transparent)`), and a `&str` wherever one is read (`Deref`).

use uuid::Uuid;

/// A new time-ordered id such as `evt_0193…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// One newtype per kind of id; `prefix = "…"` gives it `generate()`, for the
/// kinds mlhook mints itself.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident $(, prefix = $prefix:literal)?) => {
        $(#[$doc])*
        #[derive(
            Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            $(
                #[doc = concat!("A new id: `", $prefix, "_` and a UUIDv7.")]
                pub fn generate() -> $name {
                    $name(new_id($prefix))
                }
            )?

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        /// Shown as the text it is, quoted as a `&str` would be.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.0.as_str(), f)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Maps and sets keyed by the id are looked up with a `&str` too.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A project: a slug its creator chose (`acme`), never generated.
    ProjectId
);
id_type!(
    /// A webhook: `wh_…`.
    WebhookId,
    prefix = "wh"
);
id_type!(
    /// An accepted event: `evt_…`.
    EventId,
    prefix = "evt"
);
id_type!(
    /// One delivery of an event to one webhook: `msg_…` (the `webhook-id`
    /// header receivers see).
    DeliveryId,
    prefix = "msg"
);
id_type!(
    /// An MLflow (or other platform's) source: `src_…`.
    SourceId,
    prefix = "src"
);
id_type!(
    /// A bearer token's record (never the token): `tok_…`.
    TokenId,
    prefix = "tok"
);

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 text for a millisecond timestamp, as the API shows times.
pub fn millis_to_rfc3339(millis: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn an_id_is_its_text_in_json_and_in_messages() {
        let id = WebhookId::from("wh_1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"wh_1\"");
        let back: WebhookId = serde_json::from_str("\"wh_1\"").unwrap();
        assert_eq!(back, id);
        assert_eq!(format!("{id} {id:?}"), "wh_1 \"wh_1\"");
        assert_eq!(id, "wh_1");
        assert_eq!(&*id, "wh_1");
        assert_eq!(id.clone().into_string(), "wh_1");
    }

    #[test]
    fn a_set_of_ids_is_looked_up_by_text() {
        let set: HashSet<DeliveryId> = HashSet::from([DeliveryId::from("msg_1")]);
        assert!(set.contains("msg_1"));
        assert!(!set.contains("msg_2"));
    }

    #[test]
    fn generated_ids_carry_their_prefix_and_sort_by_time() {
        let first = EventId::generate();
        let second = EventId::generate();
        assert!(first.starts_with("evt_"));
        assert!(WebhookId::generate().starts_with("wh_"));
        assert!(DeliveryId::generate().starts_with("msg_"));
        assert!(SourceId::generate().starts_with("src_"));
        assert!(TokenId::generate().starts_with("tok_"));
        assert!(first < second);
    }
}
