//! How people read an event: a title with the important fields, a one-line
//! summary (with links where the vendor gives them), the key fields, and a
//! link to the vendor's page when the payload has one. The chat formats and
//! templates use this; the `json` format never does.
//!
//! Describing never fails: a payload missing a field it would mention (a
//! redelivery of an old event, say) is described with what is there.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;

use super::{Catalog, Object, ObjectRef};

/// A run of the summary: plain text, or text linking somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Span {
    Text { text: String },
    Link { text: String, url: String },
}

impl Span {
    pub fn text(text: impl Into<String>) -> Span {
        Span::Text { text: text.into() }
    }

    /// The words a reader sees.
    pub fn visible(&self) -> &str {
        match self {
            Span::Text { text } | Span::Link { text, .. } => text,
        }
    }
}

/// A key field: a short name and its value as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// Whether the event is good news, bad news, or neither (chat colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Good,
    Bad,
    #[default]
    Neutral,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Description {
    /// A headline with the important fields, e.g.
    /// "Model churn v3 moved Staging → Production".
    pub title: String,
    /// One line; links as spans so each format can write them its own way.
    pub summary: Vec<Span>,
    pub fields: Vec<Field>,
    /// An absolute http(s) URL from the payload (report_link, url), if any.
    pub link: Option<String>,
    pub tone: Tone,
}

impl Description {
    /// The summary as plain text, links reduced to their text.
    pub fn summary_text(&self) -> String {
        self.summary.iter().map(Span::visible).collect()
    }

    fn generic(event_type: &str, project_id: &str) -> Description {
        Description {
            title: format!("{event_type} in project {project_id}"),
            summary: vec![Span::text(format!(
                "An event of type {event_type} was published in project {project_id}."
            ))],
            fields: Vec::new(),
            link: None,
            tone: Tone::Neutral,
        }
    }
}

impl Catalog {
    /// The built-in catalog, made once per process, for readers that are
    /// handed none: `formats` describes each event it renders with it.
    pub fn global() -> &'static Catalog {
        static GLOBAL: OnceLock<Catalog> = OnceLock::new();
        GLOBAL.get_or_init(Catalog::builtin)
    }

    /// Describes a stored payload of `event_type`, by its type's rules; an
    /// unknown type, or a payload its rules cannot read, is described
    /// generically.
    pub fn describe(&self, event_type: &str, project_id: &str, payload: &Value) -> Description {
        let described = self.entry(event_type).and_then(|entry| {
            let fields = payload.as_object()?;
            (entry.rules.describe)(event_type, fields, project_id)
        });
        let mut d = described.unwrap_or_else(|| Description::generic(event_type, project_id));
        d.summary = one_line(d.summary);
        d.fields
            .retain(|f| !f.name.is_empty() && !f.value.trim().is_empty());
        d
    }

    /// The object a stored event is about, derived as routing derives it.
    pub fn object_of(&self, event_type: &str, payload: &Value) -> Option<ObjectRef> {
        let entry = self.entry(event_type)?;
        (entry.rules.object)(event_type, payload.as_object()?)
    }
}

/// Newlines and runs of spaces become one space; empty runs go.
fn one_line(spans: Vec<Span>) -> Vec<Span> {
    fn collapse(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut in_space = false;
        for c in s.chars() {
            if c.is_whitespace() {
                if !in_space {
                    out.push(' ');
                }
                in_space = true;
            } else {
                out.push(c);
                in_space = false;
            }
        }
        out
    }
    let mut out: Vec<Span> = spans
        .into_iter()
        .map(|span| match span {
            Span::Text { text } => Span::Text {
                text: collapse(&text),
            },
            Span::Link { text, url } => {
                let text = collapse(&text).trim().to_string();
                let text = if text.is_empty() { url.clone() } else { text };
                Span::Link { text, url }
            }
        })
        .collect();
    if let Some(Span::Text { text }) = out.first_mut() {
        *text = text.trim_start().to_string();
    }
    if let Some(Span::Text { text }) = out.last_mut() {
        *text = text.trim_end().to_string();
    }
    out.retain(|s| !s.visible().is_empty());
    out
}

/// Markdown links `[text](url)` in `body` as spans; everything else is text.
/// Only absolute http(s) URLs become links.
pub(super) fn markdown_spans(body: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut text = String::new();
    let mut rest = body;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let link = after.find("](").and_then(|close| {
            let label = &after[..close];
            let tail = &after[close + 2..];
            let end = tail.find(')')?;
            let url = &tail[..end];
            (!label.contains('[') && is_web_url(url)).then(|| {
                let consumed = open + 1 + close + 2 + end + 1;
                (label.to_string(), url.to_string(), consumed)
            })
        });
        match link {
            Some((label, url, consumed)) => {
                text.push_str(&rest[..open]);
                if !text.is_empty() {
                    spans.push(Span::text(std::mem::take(&mut text)));
                }
                spans.push(Span::Link { text: label, url });
                rest = &rest[consumed..];
            }
            None => {
                text.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        spans.push(Span::text(text));
    }
    spans
}

/// An absolute http or https URL with a host.
pub fn is_web_url(url: &str) -> bool {
    url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// `field` builder that skips absent values.
pub(super) fn push_field(fields: &mut Vec<Field>, name: &str, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
        fields.push(Field {
            name: name.to_string(),
            value,
        });
    }
}

/// A string field, or a number shown as text.
pub(super) fn text_of(fields: &Object, key: &str) -> Option<String> {
    match fields.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Strings of an array, joined with ", "; at most `max` named, then "and N more".
pub(super) fn list_of(value: Option<&Value>, max: usize) -> Option<String> {
    let items: Vec<&str> = value?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    join_capped(&items, max)
}

pub(super) fn join_capped(items: &[&str], max: usize) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let shown = items[..items.len().min(max)].join(", ");
    Some(if items.len() > max {
        format!("{shown} and {} more", items.len() - max)
    } else {
        shown
    })
}

/// "v3" for "3", "v1.4.0" for "1.4.0", unchanged when it already starts with v.
pub(super) fn version_label(version: &str) -> String {
    if version.starts_with(['v', 'V']) || version.is_empty() {
        version.to_string()
    } else {
        format!("v{version}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Family;
    use serde_json::json;

    fn describe(event_type: &str, project_id: &str, payload: &Value) -> Description {
        Catalog::global().describe(event_type, project_id, payload)
    }

    #[test]
    fn markdown_links_become_spans() {
        let spans =
            markdown_spans("Execution [demo/#736](https://app.example.com/x/) (by demouser)\nok.");
        assert_eq!(
            spans,
            [
                Span::text("Execution "),
                Span::Link {
                    text: "demo/#736".into(),
                    url: "https://app.example.com/x/".into()
                },
                Span::text(" (by demouser)\nok."),
            ]
        );
        // Relative links and stray brackets stay text.
        assert_eq!(
            markdown_spans("see [here](/p/x) and [b"),
            [Span::text("see [here](/p/x) and [b")]
        );
    }

    #[test]
    fn summary_is_one_line() {
        let d = describe(
            "execution_completed",
            "p",
            &json!({"project": "x", "data": {}, "title": "T",
                    "body": "A [b](https://e.com/) c\n\nd  e\n"}),
        );
        assert_eq!(d.summary_text(), "A b c d e");
        assert!(matches!(&d.summary[1], Span::Link { url, .. } if url == "https://e.com/"));
    }

    #[test]
    fn every_builtin_example_and_test_payload_is_described() {
        let catalog = Catalog::builtin();
        for t in catalog.list() {
            for payload in [&t.example, &t.test_payload] {
                let d = describe(&t.name, "acme", payload);
                assert!(!d.title.is_empty(), "{}", t.name);
                assert!(!d.summary_text().is_empty(), "{}", t.name);
                assert!(!d.summary_text().contains('\n'), "{}", t.name);
                assert!(!d.title.contains(" in project acme") || t.family == Family::Requests);
            }
        }
    }

    #[test]
    fn titles_name_the_important_fields() {
        let catalog = Catalog::builtin();
        let title = |name: &str, payload: Value| describe(name, "fraud-team", &payload).title;
        assert_eq!(
            title(
                "TEST",
                json!({"registryModelName": "churn", "version": "3", "status": "Production",
                       "oldStatus": "Staging", "workspaceName": "w", "tags": []})
            ),
            "Test: model churn v3 moved Staging → Production"
        );
        assert_eq!(
            title(
                "MODEL_STATUS_CHANGED",
                json!({"registryModelName": "churn", "version": "3", "status": "Production",
                       "workspaceName": "w", "tags": []})
            ),
            "Model churn v3 moved to Production"
        );
        assert_eq!(
            title(
                "deployment_request_failed",
                json!({"deployment_name": "scorer", "deployment_version_name": "v2",
                       "request_id": "abc", "status": "failed"})
            ),
            "Deployment request abc failed for deployment scorer v2 in project fraud-team"
        );
        assert_eq!(
            title(
                "RUN_COMPLETED",
                catalog.get("RUN_COMPLETED").unwrap().example.clone()
            ),
            "Monitoring run of model test raised 2 alerts"
        );
    }

    #[test]
    fn links_come_from_the_payload_and_must_be_absolute() {
        let catalog = Catalog::builtin();
        let link = |name: &str| {
            let t = catalog.get(name).unwrap();
            describe(name, "p", &t.example).link
        };
        assert_eq!(
            link("RUN_COMPLETED").as_deref(),
            Some("https://test.app.nannyml.com/model/1")
        );
        // Valohai's url is relative: the body's first absolute link is used.
        assert!(
            link("execution_completed")
                .unwrap()
                .starts_with("https://app.demo.com/")
        );
        assert_eq!(link("MODEL_VERSION_CREATED"), None);
        assert_eq!(link("deployment_request_failed"), None);
    }

    #[test]
    fn odd_payloads_are_described_without_panicking() {
        let catalog = Catalog::builtin();
        for t in catalog.list() {
            for payload in [
                json!({}),
                json!([]),
                json!({"header": 1, "data": "x", "tags": 5}),
            ] {
                let d = describe(&t.name, "p", &payload);
                assert!(!d.title.is_empty());
            }
        }
        let d = describe("CUSTOM", "p", &json!({}));
        assert_eq!(d.title, "CUSTOM in project p");
    }

    #[test]
    fn object_is_derived_like_routing() {
        let catalog = Catalog::builtin();
        for t in catalog.list() {
            let prepared = catalog
                .prepare(
                    &t.name,
                    t.example.clone(),
                    &super::super::PrepareContext { project_id: "p" },
                )
                .unwrap();
            assert_eq!(
                catalog.object_of(&t.name, &prepared.payload),
                prepared.object,
                "{}",
                t.name
            );
        }
    }
}
