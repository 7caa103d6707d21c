//! The scenarios of docs/performance.md. Each is bounded in count and time
//! and sends traffic to 127.0.0.1 only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::Scale;
use crate::harness::{
    BenchDir, Figure, Receiver, Service, fig, payload, percentile, process_stats, seed, send_one,
};

/// How long any one wait may take before the run is declared failed.
pub const PATIENCE: Duration = Duration::from_secs(600);

pub async fn run_all(names: &[&str], scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for name in names {
        eprintln!("running {name} …");
        let new = match *name {
            "wire" => wire(scale).await?,
            "ingest" => ingest(scale).await?,
            "end-to-end" => end_to_end(scale).await?,
            "deliver" => deliver(scale).await?,
            "latency" => latency(scale).await?,
            "fanout" => fanout(scale).await?,
            "slow-neighbour" => slow_neighbour(scale).await?,
            "log-query" => log_query(scale).await?,
            "held-backlog" => held_backlog(scale).await?,
            "cost" => crate::cost::cost(scale).await?,
            other => anyhow::bail!("unknown scenario {other}"),
        };
        figures.extend(new);
    }
    let wire = figures
        .iter()
        .find(|f| f.scenario == "wire")
        .map(|f| f.value);
    if let Some(wire) = wire {
        for f in figures.iter_mut().filter(|f| f.unit.ends_with("/s")) {
            f.ratio_to_wire = Some(f.value / wire);
        }
    }
    Ok(figures)
}

/// The raw limit: a pooled client POSTing 600-byte bodies to the receiver.
async fn wire(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    let client = reqwest::Client::new();
    let body = bytes::Bytes::from(payload());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, body, next) = (client.clone(), body.clone(), next.clone());
        let url = format!("{}/wire", receiver.base);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < scale.wire_requests {
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(resp.status() == 200, "receiver answered {}", resp.status());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = scale.wire_requests as f64 / start.elapsed().as_secs_f64();
    Ok(vec![fig(
        "wire",
        "requests/s, pooled client → receiver, c=32",
        rate,
        "requests/s",
    )])
}

/// Events accepted per second, single POSTs at concurrency 64 and batches of 1,000.
async fn ingest(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let service = Service::start(&[])?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = process_stats(service.pid())?;
    service.setup(&[]).await?;
    let (_, seconds) = service.send_events(scale.ingest_events, 64).await?;
    let single = scale.ingest_events as f64 / seconds;
    let batched = ingest_batches(&service, scale.batch_events).await?;
    Ok(vec![
        fig("idle", "service RSS after start", idle.rss_mb, "MB"),
        fig(
            "ingest",
            "events accepted/s, single POST, c=64",
            single,
            "events/s",
        ),
        fig(
            "ingest",
            "events accepted/s, batch route (1,000 per request), c=4",
            batched,
            "events/s",
        ),
    ])
}

async fn ingest_batches(service: &Service, events: usize) -> anyhow::Result<f64> {
    let event: serde_json::Value = serde_json::from_str(crate::harness::EVENT_BODY)?;
    let batch = json!({"events": vec![event; 1000]}).to_string();
    let requests = events.div_ceil(1000);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, batch, next) = (service.client.clone(), batch.clone(), next.clone());
        let url = format!("{}/v1/projects/bench/events/batch", service.base);
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let resp = client
                    .post(&url)
                    .bearer_auth(crate::harness::TOKEN)
                    .header("content-type", "application/json")
                    .body(batch.clone())
                    .send()
                    .await?;
                anyhow::ensure!(resp.status() == 202, "batch answered {}", resp.status());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((requests * 1000) as f64 / start.elapsed().as_secs_f64())
}

/// Single POSTs at concurrency 32, one webhook: from the first send until
/// the receiver has every event.
async fn end_to_end(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    let service = Service::start(&[])?;
    service.setup(&[format!("{}/hook", receiver.base)]).await?;
    let start = Instant::now();
    service.send_events(scale.e2e_events, 32).await?;
    receiver
        .wait_for_arrivals(scale.e2e_events, PATIENCE)
        .await?;
    let rate = scale.e2e_events as f64 / start.elapsed().as_secs_f64();
    service.print_store_writes("end-to-end").await?;
    Ok(vec![fig(
        "end-to-end",
        "events delivered/s, single POST c=32, 1 webhook",
        rate,
        "events/s",
    )])
}

/// Draining a stored backlog, with every attempt recorded durably.
async fn deliver(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for webhooks in [1, 10] {
        let drained = drain(scale.backlog / webhooks, webhooks).await?;
        let total = drained.deliveries;
        let label = format!("deliveries/s draining {total}, {webhooks} webhook(s)");
        figures.push(fig("deliver", &label, drained.rate, "deliveries/s"));
        figures.push(fig(
            "deliver",
            &format!("peak RSS, {webhooks} webhook(s)"),
            drained.stats.peak_rss_mb,
            "MB",
        ));
        let per_thousand = drained.stats.cpu_seconds / total as f64 * 1000.0;
        figures.push(fig(
            "deliver",
            &format!("CPU seconds per 1,000 deliveries, {webhooks} webhook(s)"),
            per_thousand,
            "s",
        ));
    }
    Ok(figures)
}

/// What draining a backlog showed.
struct Drained {
    deliveries: usize,
    rate: f64,
    stats: crate::harness::ProcessStats,
}

/// Seeds `events` events, each with a delivery to every one of `webhooks`
/// webhooks, then starts the service and times it until all have arrived.
async fn drain(events: usize, webhooks: usize) -> anyhow::Result<Drained> {
    let (receiver, dir) = backlog(events, webhooks).await?;
    let deliveries = events * webhooks;
    let start = Instant::now();
    let service = Service::start_in(dir, &[])?;
    receiver.wait_for_arrivals(deliveries, PATIENCE).await?;
    let seconds = start.elapsed().as_secs_f64();
    let stats = process_stats(service.pid())?;
    service.print_store_writes("deliver").await?;
    Ok(Drained {
        deliveries,
        rate: deliveries as f64 / seconds,
        stats,
    })
}

/// A receiver, and a data directory holding `webhooks` webhooks pointing at
/// it and `events` stored events, each with a delivery to every webhook.
async fn backlog(events: usize, webhooks: usize) -> anyhow::Result<(Receiver, BenchDir)> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    let dir = BenchDir::new()?;
    let urls: Vec<String> = (0..webhooks)
        .map(|i| format!("{}/hook/{i}", receiver.base))
        .collect();
    seed(&dir, &urls, true, events).await?;
    Ok((receiver, dir))
}

/// One webhook held at one delivery a minute while a backlog of pending
/// deliveries builds up behind it: memory must not grow with the backlog.
async fn held_backlog(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    let service = Service::start(&[])?;
    service.setup(&[]).await?;
    service
        .post(
            "/v1/projects/bench/webhooks",
            &json!({"url": format!("{}/hook", receiver.base), "events": ["*"],
                    "rate_limit": {"per_minute": 1}}),
        )
        .await?;
    let idle = process_stats(service.pid())?;
    let events = scale.held_backlog;
    let rate = ingest_batches(&service, events).await?;
    // The last overflow's deferrals are written behind the last answer.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = process_stats(service.pid())?;
    anyhow::ensure!(
        receiver.arrived() <= 2,
        "the pace let {} deliveries through",
        receiver.arrived()
    );
    Ok(vec![
        fig(
            "held-backlog",
            &format!("events accepted/s into {events} pending on 1 webhook at 1/min"),
            rate,
            "events/s",
        ),
        fig("held-backlog", "RSS before the backlog", idle.rss_mb, "MB"),
        fig(
            "held-backlog",
            &format!("peak RSS, {events} pending on 1 webhook at 1/min"),
            held.peak_rss_mb,
            "MB",
        ),
        fig(
            "held-backlog",
            &format!("RSS with {events} pending"),
            held.rss_mb,
            "MB",
        ),
    ])
}

/// A steady rate for a fixed time: 202→arrival and send→arrival percentiles.
async fn latency(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let receiver = Receiver::start(Duration::ZERO).await?;
    let service = Service::start(&[])?;
    service.setup(&[format!("{}/hook", receiver.base)]).await?;
    let total = scale.latency_rate * scale.latency_seconds as usize;
    let interval = Duration::from_secs_f64(1.0 / scale.latency_rate as f64);
    let url = format!("{}/v1/projects/bench/events", service.base);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    for _ in 0..total {
        ticker.tick().await;
        let (client, url) = (service.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move { send_one(&client, &url).await }));
    }
    let mut accepted = Vec::with_capacity(total);
    for t in tasks {
        accepted.push(t.await??);
    }
    receiver.wait_for_arrivals(total, PATIENCE).await?;
    let (mut after_202, mut after_send) = (Vec::new(), Vec::new());
    for a in &accepted {
        let arrival = receiver
            .arrival(&a.delivery_ids[0])
            .expect("every delivery arrived");
        // A delivery can arrive before the client reads its 202: count that as 0.
        after_202.push(arrival.saturating_duration_since(a.accepted).as_secs_f64() * 1000.0);
        after_send.push(arrival.duration_since(a.sent).as_secs_f64() * 1000.0);
    }
    let mut figures = Vec::new();
    for (label, samples) in [
        ("202 → arrival", &mut after_202),
        ("send → arrival", &mut after_send),
    ] {
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
            let metric = format!("{label} {name} at {}/s", scale.latency_rate);
            figures.push(fig("latency", &metric, percentile(samples, q), "ms"));
        }
    }
    Ok(figures)
}

/// One event type subscribed by many webhooks.
async fn fanout(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let (events, webhooks) = (scale.fanout_events, scale.fanout_webhooks);
    let total = events * webhooks;
    // Sending alone, as `deliver` measures it: the fan-out's backlog against
    // one webhook's backlog of as many deliveries, pair by pair.
    let (mut many, mut one) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        one.push(drain(total, 1).await?.rate);
        many.push(drain(events, webhooks).await?.rate);
    }
    let mut cost_ratios: Vec<f64> = one.iter().zip(&many).map(|(o, m)| o / m).collect();
    let many_rate = percentile(&mut many, 0.5);
    let mut figures = vec![
        fig(
            "fanout",
            &format!(
                "deliveries/s draining {events} events × {webhooks} webhooks (median of {PAIRS})"
            ),
            many_rate,
            "deliveries/s",
        ),
        fig(
            "fanout",
            "cost per delivery, draining",
            1e6 / many_rate,
            "µs",
        ),
        fig(
            "fanout",
            &format!("deliveries/s draining {total} events × 1 webhook (median of {PAIRS})"),
            percentile(&mut one, 0.5),
            "deliveries/s",
        ),
    ];
    figures.extend(pair_figures(
        "fanout",
        "cost per delivery against one webhook's",
        &mut cost_ratios,
        "×",
    ));
    // The whole path: each accepted event writes a delivery per webhook.
    let (receiver, dir) = backlog(0, webhooks).await?;
    let service = Service::start_in(dir, &[])?;
    let start = Instant::now();
    service.send_events(events, 4).await?;
    receiver.wait_for_arrivals(total, PATIENCE).await?;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    figures.push(fig(
        "fanout",
        &format!("deliveries/s from the first send, {events} events × {webhooks} webhooks"),
        rate,
        "deliveries/s",
    ));
    figures.push(fig(
        "fanout",
        "cost per delivery, from the first send",
        1e6 / rate,
        "µs",
    ));
    Ok(figures)
}

/// Ten webhooks, one of which answers only after a long delay: the others'
/// throughput and p99, against the same run without the slow one.
async fn slow_neighbour(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        alone.push(neighbour_round(scale, false).await?);
        beside.push(neighbour_round(scale, true).await?);
    }
    let median = |runs: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        percentile(&mut runs.iter().map(pick).collect::<Vec<_>>(), 0.5)
    };
    let mut figures = Vec::new();
    for (case, runs) in [("alone", &alone), ("with a 10 s neighbour", &beside)] {
        figures.push(fig(
            "slow-neighbour",
            &format!("9 fast webhooks' deliveries/s, {case} (median of {PAIRS})"),
            median(runs, |r| r.0),
            "deliveries/s",
        ));
        figures.push(fig(
            "slow-neighbour",
            &format!("fast 202 → arrival p99, {case} (median of {PAIRS})"),
            median(runs, |r| r.1),
            "ms",
        ));
    }
    let mut kept: Vec<f64> = alone
        .iter()
        .zip(&beside)
        .map(|(a, b)| 100.0 * b.0 / a.0)
        .collect();
    figures.extend(pair_figures(
        "slow-neighbour",
        "fast webhooks' throughput kept beside the slow one",
        &mut kept,
        "%",
    ));
    Ok(figures)
}

/// Back-to-back pairs of the two cases a target compares, alternating. One
/// run takes seconds on a machine whose speed drifts by a fifth within
/// minutes, and a pair shares the machine's mood where two runs minutes
/// apart do not. Even so, 17 slow-neighbour pairs of one build spread over
/// 73–135 % (median 101 %): the median of seven is still ± several points.
const PAIRS: usize = 7;

/// The median of the pairs' ratios, then the lowest and the highest.
fn pair_figures(scenario: &str, what: &str, ratios: &mut [f64], unit: &str) -> Vec<Figure> {
    vec![
        fig(
            scenario,
            &format!("{what} (median of {PAIRS} pairs)"),
            percentile(ratios, 0.5),
            unit,
        ),
        fig(scenario, "… the lowest pair", percentile(ratios, 0.0), unit),
        fig(
            scenario,
            "… the highest pair",
            percentile(ratios, 1.0),
            unit,
        ),
    ]
}

/// Nine fast webhooks, and a tenth that answers after the delay when
/// `with_slow`: the fast ones' deliveries/s and their 202 → arrival p99 (ms).
async fn neighbour_round(scale: Scale, with_slow: bool) -> anyhow::Result<(f64, f64)> {
    let receiver = Receiver::start(Duration::from_millis(scale.neighbour_delay_ms)).await?;
    let mut urls: Vec<String> = (0..9)
        .map(|i| format!("{}/fast/{i}", receiver.base))
        .collect();
    if with_slow {
        urls.push(format!("{}/slow", receiver.base));
    }
    let service = Service::start(&[])?;
    service.setup(&urls).await?;
    let start = Instant::now();
    let (accepted, _) = service.send_events(scale.neighbour_events, 32).await?;
    let fast = scale.neighbour_events * 9;
    receiver.wait_for_arrivals(fast, PATIENCE).await?;
    let rate = fast as f64 / start.elapsed().as_secs_f64();
    let mut waits: Vec<f64> = accepted
        .iter()
        .flat_map(|a| {
            a.delivery_ids
                .iter()
                .filter_map(|id| receiver.arrival(id))
                .map(|t| t.saturating_duration_since(a.accepted))
        })
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    Ok((rate, percentile(&mut waits, 0.99)))
}

/// Pages of the delivery log with filters over a large stored log.
async fn log_query(scale: Scale) -> anyhow::Result<Vec<Figure>> {
    let dir = BenchDir::new()?;
    // A disabled webhook: the deliveries stay in the log, never sent.
    let webhooks = seed(
        &dir,
        &["http://127.0.0.1:9/never".to_string()],
        false,
        scale.log_rows,
    )
    .await?;
    let service = Service::start_in(dir, &[])?;
    let base = "/v1/projects/bench/deliveries";
    let first = service.get(&format!("{base}?limit=50")).await?;
    let cursor = first["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let queries = [
        format!("{base}?limit=50"),
        format!("{base}?limit=50&webhook_id={}", webhooks[0]),
        format!("{base}?limit=50&event_type=MODEL_VERSION_CREATED"),
        format!("{base}?limit=50&status=pending"),
        format!("{base}?limit=50&status=succeeded"),
        format!("{base}?limit=50&since=1h"),
        format!("{base}?limit=50&cursor={cursor}"),
    ];
    let mut samples = Vec::new();
    for i in 0..scale.log_queries {
        let query = &queries[i % queries.len()];
        let start = Instant::now();
        service.get(query).await?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let rows = scale.log_rows;
    Ok(vec![
        fig(
            "log-query",
            &format!("page of 50 with filters over {rows} deliveries, p50"),
            percentile(&mut samples, 0.5),
            "ms",
        ),
        fig(
            "log-query",
            &format!("page of 50 with filters over {rows} deliveries, p99"),
            percentile(&mut samples, 0.99),
            "ms",
        ),
    ])
}
