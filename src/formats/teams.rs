//! `teams`: a message for a Microsoft Teams workflow ("When a Teams webhook
//! request is received" → "Post card in a chat or channel"), holding one
//! Adaptive Card 1.4: the title, the summary with links, the key fields as a
//! FactSet, a context line, and an "Open" action when the event has a link.
//! The old Office 365 connector cards are retired, so they are not sent.
//!
//! Teams takes messages up to about 28 KB; the card is built within 24 KB
//! (longer values are cut with an ellipsis).

use serde_json::{Value, json};

use super::text::{Markup, truncate, units};
use super::{Context, Rendered};
use crate::catalog::Tone;

pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
pub const CARD_VERSION: &str = "1.4";
/// Teams refuses messages over ~28 KB; we stay well under.
pub const MAX_BODY_BYTES: usize = 24 * 1024;
const MAX_FACTS: usize = 10;

/// Adaptive Card markdown: a link's text must not close the bracket early.
fn escape(c: char, out: &mut String) {
    match c {
        '[' => out.push('('),
        ']' => out.push(')'),
        c => out.push(c),
    }
}

fn link(text: &str, url: &str) -> String {
    format!("[{}]({})", MARKDOWN.escaped(text), url_for_markdown(url))
}

/// Parentheses and spaces would end a markdown link's URL early.
pub(super) fn url_for_markdown(url: &str) -> String {
    url.replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

const MARKDOWN: Markup = Markup { escape, link };

pub fn render(ctx: &Context) -> Rendered {
    Rendered::json(&body(ctx))
}

pub fn body(ctx: &Context) -> Value {
    // Shrink the budgets until the whole message fits (multi-byte text).
    let mut budget = Budget {
        title: 300,
        summary: 3000,
        fact: 1000,
    };
    loop {
        let body = build(ctx, &budget);
        let size = serde_json::to_vec(&body).map(|b| b.len()).unwrap_or(0);
        if size <= MAX_BODY_BYTES || budget.fact <= 20 {
            return body;
        }
        budget = Budget {
            title: (budget.title / 2).max(40),
            summary: budget.summary / 2,
            fact: budget.fact / 2,
        };
    }
}

struct Budget {
    title: usize,
    summary: usize,
    fact: usize,
}

fn build(ctx: &Context, budget: &Budget) -> Value {
    let d = &ctx.description;
    let color = match d.tone {
        Tone::Good => "Good",
        Tone::Bad => "Attention",
        Tone::Neutral => "Default",
    };
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": truncate(d.title.trim(), budget.title),
            "size": "Large",
            "weight": "Bolder",
            "color": color,
            "wrap": true,
        }),
        json!({
            "type": "TextBlock",
            "text": MARKDOWN.spans_within(&d.summary, budget.summary),
            "wrap": true,
        }),
    ];
    let facts: Vec<Value> = d
        .fields
        .iter()
        .take(MAX_FACTS)
        .map(|f| {
            json!({
                "title": truncate(&f.name, 100),
                "value": MARKDOWN.escaped_within(&f.value, budget.fact),
            })
        })
        .collect();
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    let time = ctx.time_text();
    body.push(json!({
        "type": "TextBlock",
        "text": format!(
            "{} · {{{{DATE({time}, SHORT)}}}} {{{{TIME({time})}}}} · project {}",
            truncate(&ctx.event_type, 100),
            truncate(&ctx.project_id, 100),
        ),
        "size": "Small",
        "isSubtle": true,
        "wrap": true,
    }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    });
    if let Some(link) = d.link.as_deref().filter(|l| units(l) <= 2000) {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open", "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": CARD_CONTENT_TYPE,
            "contentUrl": null,
            "content": card,
        }],
    })
}
