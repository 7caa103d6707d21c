//! The webhook resource, one file per role:
//! - [`model`]: what is stored (`Webhook`, secrets included), its headers,
//!   scope and signing keys, and which events it matches;
//! - [`input`]: what a client may send (`WebhookInput`, `WebhookPatch`);
//! - [`view`]: what the API may show (`WebhookView`);
//! - [`validate`]: `Webhook::create` and `Webhook::apply`, which turn input
//!   into a valid webhook or name every field at fault.
//!
//! Secrets are kept out of the view by construction: `WebhookView` has no field
//! that could hold the secret or a protected header value. Each format's own
//! settings (GitHub's repository and token, the template) live with the format
//! in `formats`; a webhook holds them as a `FormatConfig`.

pub mod input;
pub mod model;
pub mod validate;
pub mod view;

pub use crate::formats::Format;
pub use crate::rate_limit::RateLimit;
pub use crate::signing::Scheme;
pub use input::{HeaderInput, WebhookInput, WebhookPatch};
pub use model::{Header, MlflowShape, OBJECT_TYPES, PreviousSigningKey, Scope, Webhook};
pub use view::{HeaderView, WebhookView};
