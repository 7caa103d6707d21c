//! `discord`: a message for a Discord channel webhook — `content` (the
//! title, shown in notifications) and one embed: title (linking to the
//! event's page when it has one), the summary as description, the key
//! fields, a footer with event type and project, and the event's time.
//! `allowed_mentions` is empty, so no text from a payload can ping anyone.
//!
//! Discord's limits are kept by construction: content ≤ 2,000 characters,
//! ≤ 10 embeds (we send one), title ≤ 256, description ≤ 4,096, ≤ 25 fields
//! (we send ≤ 10) with name ≤ 256 and value ≤ 1,024, footer ≤ 2,048, and all
//! of an embed's text together ≤ 6,000.

use serde_json::{Value, json};

use super::text::{Markup, units};
use super::{Context, Rendered};
use crate::catalog::Tone;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBEDS: usize = 10;
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 4096;
pub const MAX_FIELDS: usize = 25;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_FOOTER: usize = 2048;
pub const MAX_EMBED_TOTAL: usize = 6000;
const FIELDS_SENT: usize = 10;

/// Discord markdown: a backslash makes a markup character literal.
fn escape(c: char, out: &mut String) {
    if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '>') {
        out.push('\\');
    }
    out.push(c);
}

fn link(text: &str, url: &str) -> String {
    format!(
        "[{}]({})",
        MARKDOWN.escaped(text),
        super::teams::url_for_markdown(url)
    )
}

pub const MARKDOWN: Markup = Markup { escape, link };

pub fn render(ctx: &Context) -> Rendered {
    Rendered::json(&body(ctx))
}

pub fn body(ctx: &Context) -> Value {
    let mut budget = Budget {
        description: 2048,
        field_value: MAX_FIELD_VALUE,
    };
    loop {
        let (body, total) = build(ctx, &budget);
        if total <= MAX_EMBED_TOTAL {
            return body;
        }
        budget = Budget {
            description: budget.description * 3 / 4,
            field_value: (budget.field_value / 2).max(16),
        };
    }
}

struct Budget {
    description: usize,
    field_value: usize,
}

/// The body and the embed's text length as Discord counts it.
fn build(ctx: &Context, budget: &Budget) -> (Value, usize) {
    let d = &ctx.description;
    let title = MARKDOWN.escaped_within(d.title.trim(), MAX_TITLE);
    let description = MARKDOWN.spans_within(&d.summary, budget.description.min(MAX_DESCRIPTION));
    let fields: Vec<(String, String)> = d
        .fields
        .iter()
        .take(FIELDS_SENT.min(MAX_FIELDS))
        .map(|f| {
            (
                MARKDOWN.escaped_within(&f.name, 100),
                MARKDOWN.escaped_within(&f.value, budget.field_value),
            )
        })
        .collect();
    let footer = format!(
        "{} · project {}",
        super::text::truncate(&ctx.event_type, 100),
        super::text::truncate(&ctx.project_id, 100)
    );
    let total = units(&title)
        + units(&description)
        + units(&footer)
        + fields
            .iter()
            .map(|(n, v)| units(n) + units(v))
            .sum::<usize>();
    let color = match d.tone {
        Tone::Good => 0x2EB67D,
        Tone::Bad => 0xE01E5A,
        Tone::Neutral => 0x5865F2,
    };
    let mut embed = json!({
        "title": title,
        "description": description,
        "color": color,
        "fields": fields
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value, "inline": units(value) <= 40}))
            .collect::<Vec<_>>(),
        "footer": {"text": footer},
        "timestamp": ctx.time_text(),
    });
    if let Some(url) = d.link.as_deref().filter(|l| units(l) <= 2000) {
        embed["url"] = json!(url);
    }
    let body = json!({
        "content": MARKDOWN.escaped_within(d.title.trim(), MAX_CONTENT),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    });
    (body, total)
}
