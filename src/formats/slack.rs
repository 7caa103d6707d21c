//! `slack`: a message for a Slack incoming webhook — `text` (the
//! notification fallback) and Block Kit `blocks`: a header with the title,
//! the summary with mrkdwn links, the key fields as a section with fields,
//! and a context line with the event type, time and project.
//!
//! Slack's limits are kept by construction: header text ≤ 150 characters,
//! section text ≤ 3,000, ≤ 10 fields of ≤ 2,000 each, ≤ 50 blocks (we send
//! at most 4). Longer text is cut with an ellipsis, never inside an escape
//! or a link. Slack answers 200 `ok`; anything else is a failure.

use serde_json::{Value, json};

use super::text::{Markup, truncate, units};
use super::{Acceptance, Context, Rendered};
use crate::catalog::Span;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER: usize = 150;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
/// The top-level `text`; Slack cuts at 40,000 but advises far less.
pub const MAX_TEXT: usize = 3000;
/// Longest link we write; a longer one is left out (the text stays).
const MAX_LINK_URL: usize = 1000;

/// mrkdwn: `&`, `<` and `>` are control characters.
fn escape(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

fn link(text: &str, url: &str) -> String {
    if units(url) > MAX_LINK_URL {
        return MRKDWN.escaped(text);
    }
    let url = url
        .replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E");
    format!("<{url}|{}>", MRKDWN.escaped(text))
}

pub const MRKDWN: Markup = Markup { escape, link };

pub fn render(ctx: &Context) -> Rendered {
    let mut rendered = Rendered::json(&body(ctx));
    rendered.accept = Acceptance::SlackOk;
    rendered
}

pub fn body(ctx: &Context) -> Value {
    let d = &ctx.description;
    let title = non_empty(truncate(d.title.trim(), MAX_HEADER), &ctx.event_type);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": title, "emoji": true},
    })];

    // The link on a line of its own, unless the summary already links there.
    let linked = |url: &str| {
        d.summary
            .iter()
            .any(|s| matches!(s, Span::Link { url: u, .. } if u == url))
    };
    let link_line = d
        .link
        .as_deref()
        .filter(|l| units(l) <= MAX_LINK_URL && !linked(l))
        .map(|l| format!("\n{}", link("Open", l)))
        .unwrap_or_default();
    let summary = MRKDWN.spans_within(&d.summary, MAX_SECTION_TEXT - units(&link_line));
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": non_empty(summary + &link_line, &title)},
    }));

    let fields: Vec<Value> = d
        .fields
        .iter()
        .take(MAX_FIELDS)
        .map(|f| {
            let name = format!("*{}*\n", MRKDWN.escaped_within(&f.name, 100));
            let value = MRKDWN.escaped_within(&f.value, MAX_FIELD_TEXT - units(&name));
            json!({"type": "mrkdwn", "text": name + &value})
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }

    let ts = ctx.time.timestamp();
    let context = format!(
        "`{}` · <!date^{ts}^{{date_short_pretty}} {{time}}|{}> · project {}",
        MRKDWN.escaped_within(&ctx.event_type, 100),
        ctx.time_text(),
        MRKDWN.escaped_within(&ctx.project_id, 100),
    );
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    debug_assert!(blocks.len() <= MAX_BLOCKS);

    let fallback = format!("{}: {}", d.title.trim(), d.summary_text());
    json!({
        "text": MRKDWN.escaped_within(&fallback, MAX_TEXT),
        "blocks": blocks,
    })
}

/// Slack refuses empty text objects.
fn non_empty(text: String, fallback: &str) -> String {
    if text.trim().is_empty() {
        truncate(fallback, MAX_HEADER)
    } else {
        text
    }
}
