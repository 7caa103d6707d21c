//! Benchmark harness: starts `mlhook serve` (the binary next to this one) on
//! a fresh data directory and a fast receiver, both on 127.0.0.1, runs a
//! bounded load, and prints a table plus a JSON file of the figures.
//!
//! Usage: `cargo run --release --bin mlhook-bench -- [ingest|end-to-end|deliver|all] [--events N]`

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "bench-admin-token";

#[derive(Debug, Clone, serde::Serialize)]
struct Figure {
    scenario: String,
    metric: String,
    value: f64,
    unit: String,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = args.first().cloned().unwrap_or_else(|| "all".into());
    let events = flag(&args, "--events").unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let figures = runtime.block_on(run(&scenario, events))?;
    print_table(&figures);
    let out = PathBuf::from("bench-results");
    std::fs::create_dir_all(&out)?;
    let path = out.join(format!("{scenario}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&figures)?)?;
    println!("\nfigures written to {}", path.display());
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
}

async fn run(scenario: &str, events: usize) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    if matches!(scenario, "ingest" | "all") {
        figures.extend(ingest(events).await?);
    }
    if matches!(scenario, "end-to-end" | "all") {
        figures.extend(end_to_end(events).await?);
    }
    if matches!(scenario, "deliver" | "all") {
        figures.extend(deliver(events).await?);
    }
    anyhow::ensure!(
        !figures.is_empty(),
        "unknown scenario {scenario:?}: use ingest, end-to-end, deliver or all"
    );
    Ok(figures)
}

/// Events accepted per second: single POSTs at concurrency 64, no webhooks.
async fn ingest(events: usize) -> anyhow::Result<Vec<Figure>> {
    let service = Service::start(&[])?;
    service.setup(None).await?;
    let seconds = service.send_events(events, 64).await?;
    Ok(vec![fig(
        "ingest",
        "events accepted/s (single POST, c=64)",
        events as f64 / seconds,
        "events/s",
    )])
}

/// Events per second from the first send until the receiver has them all
/// (one webhook, single POSTs at concurrency 32).
async fn end_to_end(events: usize) -> anyhow::Result<Vec<Figure>> {
    let receiver = Receiver::start().await?;
    let service = Service::start(&[])?;
    service.setup(Some(&receiver.url)).await?;
    let start = Instant::now();
    service.send_events(events, 32).await?;
    receiver.wait_for(events, Duration::from_secs(300)).await?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(vec![fig(
        "end-to-end",
        "events delivered/s (c=32, 1 webhook)",
        events as f64 / seconds,
        "events/s",
    )])
}

/// Deliveries per second draining a backlog of `events` × `webhooks`
/// pending deliveries, written straight into a fresh store before the
/// service starts; every attempt is recorded durably as in production.
async fn deliver(events: usize) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for webhooks in [1, 10] {
        let per_webhook = events / webhooks;
        let receiver = Receiver::start().await?;
        let data_dir = BenchDir::new()?;
        seed_backlog(data_dir.path(), &receiver.url, per_webhook, webhooks).await?;
        let total = per_webhook * webhooks;
        let start = Instant::now();
        let _service = Service::start_in(data_dir, &[])?;
        receiver.wait_for(total, Duration::from_secs(600)).await?;
        let seconds = start.elapsed().as_secs_f64();
        let metric = format!("deliveries/s draining {total} ({webhooks} webhook(s))");
        figures.push(fig(
            "deliver",
            &metric,
            total as f64 / seconds,
            "deliveries/s",
        ));
    }
    Ok(figures)
}

/// Writes a project, `webhooks` webhooks and `events` events fanned out to
/// all of them, through the store's own interface.
async fn seed_backlog(
    dir: &std::path::Path,
    url: &str,
    events: usize,
    webhooks: usize,
) -> anyhow::Result<()> {
    use mlhook::store::{NewDelivery, NewEvent, Project, SqliteStore, Store};
    let store = SqliteStore::open(dir).await?;
    let catalog = mlhook::catalog::Catalog::builtin();
    let now = mlhook::ids::now_millis();
    store
        .create_project(&Project {
            id: "bench".into(),
            name: "Bench".into(),
            created_at: now,
            updated_at: now,
        })
        .await?;
    let mut ids = Vec::new();
    for _ in 0..webhooks {
        let input = serde_json::from_value(json!({"url": url, "events": ["*"]}))?;
        let webhook = mlhook::webhook::Webhook::create(input, "bench", &catalog, now)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        store.create_webhook(&webhook).await?;
        ids.push(webhook.id);
    }
    let body: Value = serde_json::from_str(EVENT_BODY)?;
    let payload = body["payload"].to_string();
    for chunk_start in (0..events).step_by(2000) {
        let batch: Vec<NewEvent> = (chunk_start..events.min(chunk_start + 2000))
            .map(|_| NewEvent {
                id: mlhook::ids::new_id("evt"),
                project_id: "bench".into(),
                event_type: "MODEL_VERSION_CREATED".into(),
                object: None,
                payload: payload.clone(),
                created_at: now,
                idempotency_key: None,
                deliveries: ids
                    .iter()
                    .map(|w| NewDelivery {
                        id: mlhook::ids::new_id("msg"),
                        webhook_id: w.clone(),
                    })
                    .collect(),
                lease_until: 0,
                is_test: false,
            })
            .collect();
        store.insert_events(&batch, 0).await?;
    }
    Ok(())
}

fn fig(scenario: &str, metric: &str, value: f64, unit: &str) -> Figure {
    Figure {
        scenario: scenario.into(),
        metric: metric.into(),
        value,
        unit: unit.into(),
    }
}

fn print_table(figures: &[Figure]) {
    println!("{:<12} {:<50} {:>14}", "scenario", "metric", "value");
    for f in figures {
        println!(
            "{:<12} {:<50} {:>10.0} {}",
            f.scenario, f.metric, f.value, f.unit
        );
    }
}

/// The service under test, a child process on a fresh data directory.
struct Service {
    child: Option<Child>,
    base: String,
    client: reqwest::Client,
    _data_dir: BenchDir,
}

impl Service {
    fn start(extra: &[&str]) -> anyhow::Result<Service> {
        Service::start_in(BenchDir::new()?, extra)
    }

    fn start_in(data_dir: BenchDir, extra: &[&str]) -> anyhow::Result<Service> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, base) = spawn(data_dir.path(), &extra)?;
        Ok(Service {
            child: Some(child),
            base,
            client: reqwest::Client::new(),
            _data_dir: data_dir,
        })
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    async fn setup(&self, receiver: Option<&str>) -> anyhow::Result<()> {
        self.post("/v1/projects", &json!({"id": "bench", "name": "Bench"}))
            .await?;
        if let Some(url) = receiver {
            self.post(
                "/v1/projects/bench/webhooks",
                &json!({"url": url, "events": ["*"]}),
            )
            .await?;
        }
        Ok(())
    }

    /// Sends `count` events over `concurrency` connections; answers the seconds taken.
    async fn send_events(&self, count: usize, concurrency: usize) -> anyhow::Result<f64> {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let next = next.clone();
            let client = self.client.clone();
            let url = format!("{}/v1/projects/bench/events", self.base);
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let resp = client
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(EVENT_BODY)
                        .send()
                        .await?;
                    anyhow::ensure!(resp.status() == 202, "ingest answered {}", resp.status());
                }
                Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(data_dir: &std::path::Path, extra: &[String]) -> anyhow::Result<(Child, String)> {
    let binary = std::env::current_exe()?.with_file_name("mlhook");
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("MLHOOK_ADMIN_TOKEN", TOKEN)
        .env("MLHOOK_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .ok_or_else(|| anyhow::anyhow!("mlhook exited before listening"))??;
        if let Some(addr) = line.strip_prefix("mlhook listening on ") {
            break addr.to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, base))
}

/// A fresh data directory under the system temp dir, removed afterwards.
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> anyhow::Result<BenchDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mlhook-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(BenchDir(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A MODEL_VERSION_CREATED of about 600 bytes, the size the wire anchor uses.
const EVENT_BODY: &str = r#"{"type":"MODEL_VERSION_CREATED","payload":{"eventTrigger":"MODEL_VERSION_CREATED","workspaceName":"ml-platform-team","registryModelName":"fraud-detector-gradient-boosting","version":"3.14.159","tags":["production-candidate","validated","drift-checked","owner:risk-analytics","dataset:transactions-2026-10","framework:xgboost","gpu:false"],"deletedTags":[],"status":"Staging","oldStatus":null,"createdAt":1795600000,"sourceExperimentKey":"711e50b9e477498b91d32c024ffc802e"}}"#;

/// The fast receiver: counts requests and answers 200.
#[derive(Clone)]
struct Receiver {
    url: String,
    count: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let count = Arc::new(AtomicUsize::new(0));
        let app = {
            let count = count.clone();
            axum::Router::new().fallback(move || {
                count.fetch_add(1, Ordering::Relaxed);
                async { axum::http::StatusCode::OK }
            })
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { url, count })
    }

    async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.count.load(Ordering::Relaxed) < n {
            anyhow::ensure!(
                Instant::now() < deadline,
                "receiver got {} of {n}",
                self.count.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}
