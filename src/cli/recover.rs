//! `mlhook recover`: re-queue a webhook's failed, exhausted and paused
//! deliveries, then follow them in the delivery log until each has been
//! sent again, with a progress bar (on stderr, drawn only on a terminal).

use std::collections::HashSet;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::RecoverArgs;
use super::client::CliError;
use super::commands::Ctx;
use super::output::{Output, pretty};

/// How often the delivery log is read while waiting.
const POLL: Duration = Duration::from_millis(500);
const PAGE: &str = "250";

pub async fn run(ctx: &Ctx, args: RecoverArgs) -> Result<(), CliError> {
    // One fixed window for every request: "2h" read once, and closed now, so
    // that deliveries of newer events are not followed.
    let now = chrono::Utc::now();
    let since = absolute(&args.since, now);
    let until = match &args.until {
        Some(until) => absolute(until, now),
        None => now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let window = Window {
        webhook: &args.webhook,
        since: &since,
        until: &until,
    };

    let spinner = ProgressBar::new_spinner().with_message("re-queuing deliveries");
    spinner.enable_steady_tick(Duration::from_millis(100));
    // Which deliveries the recovery takes, to follow exactly those.
    let mut taken = HashSet::new();
    if !args.no_wait {
        for status in ["failed", "exhausted", "paused"] {
            taken.extend(window.ids(ctx, status).await?);
        }
    }
    let body = json!({"since": since, "until": until});
    let answer = ctx
        .api
        .post(
            &ctx.in_project(&["webhooks", &args.webhook, "recover"])?,
            Some(&body),
        )
        .await;
    spinner.finish_and_clear();
    let answer = answer?;
    let recovered = answer["recovered"].as_u64().unwrap_or(0);
    match ctx.output {
        Output::Json => println!("{}", pretty(&answer)),
        Output::Table => println!(
            "re-queued {recovered} {} of webhook {}",
            if recovered == 1 {
                "delivery"
            } else {
                "deliveries"
            },
            args.webhook
        ),
    }
    if args.no_wait || recovered == 0 {
        return Ok(());
    }

    let bar = ProgressBar::new(recovered).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} sent again {elapsed}")
            .expect("valid template"),
    );
    loop {
        let pending = window.ids(ctx, "pending").await?;
        let waiting = taken.intersection(&pending).count() as u64;
        bar.set_position(recovered.saturating_sub(waiting));
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    bar.finish_and_clear();
    let succeeded = taken
        .intersection(&window.ids(ctx, "succeeded").await?)
        .count();
    let failing = recovered.saturating_sub(succeeded as u64);
    if ctx.output == Output::Table {
        println!("sent again: {succeeded} succeeded, {failing} failed (retried on schedule)");
    }
    Ok(())
}

/// A duration ago (`2h`) as the RFC 3339 time it means now; anything else
/// as given (the API judges it).
fn absolute(text: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    match humantime::parse_duration(text)
        .ok()
        .and_then(|ago| chrono::Duration::from_std(ago).ok())
    {
        Some(ago) => (now - ago).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => text.to_string(),
    }
}

/// One webhook's deliveries created in a window.
struct Window<'a> {
    webhook: &'a str,
    since: &'a str,
    until: &'a str,
}

impl Window<'_> {
    /// The ids of the window's deliveries in `status`, every page.
    async fn ids(&self, ctx: &Ctx, status: &str) -> Result<HashSet<String>, CliError> {
        let segments = ctx.in_project(&["deliveries"])?;
        let mut ids = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![
                ("webhook_id", self.webhook.to_string()),
                ("status", status.to_string()),
                ("since", self.since.to_string()),
                ("until", self.until.to_string()),
                ("limit", PAGE.to_string()),
            ];
            if let Some(cursor) = cursor.take() {
                query.push(("cursor", cursor));
            }
            let page = ctx.api.get(&segments, &query).await?;
            ids.extend(
                page["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["id"].as_str().map(str::to_string)),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(ids),
            }
        }
    }
}
