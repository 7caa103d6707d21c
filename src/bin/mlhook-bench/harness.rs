//! What every scenario stands on: the service as a child process, a fast
//! receiver, seeding through the store interface, figures and percentiles.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOKEN: &str = "bench-admin-token";

/// One measured figure; throughput figures also carry their ratio to the wire.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub scenario: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    pub ratio_to_wire: Option<f64>,
}

pub fn fig(scenario: &str, metric: &str, value: f64, unit: &str) -> Figure {
    Figure {
        scenario: scenario.into(),
        metric: metric.into(),
        value,
        unit: unit.into(),
        ratio_to_wire: None,
    }
}

pub fn print_table(figures: &[Figure]) {
    println!(
        "{:<15} {:<68} {:>12} {:<14} {:>8}",
        "scenario", "metric", "value", "unit", "vs wire"
    );
    for f in figures {
        let ratio = f
            .ratio_to_wire
            .map(|r| format!("{:.1} %", r * 100.0))
            .unwrap_or_default();
        println!(
            "{:<15} {:<68} {:>12.2} {:<14} {:>8}",
            f.scenario, f.metric, f.value, f.unit, ratio
        );
    }
}

/// The value at quantile `q` (0–1) of `samples`, which it sorts.
pub fn percentile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[rank]
}

/// `--database-url`: the PostgreSQL server the service runs on (a fresh
/// database per run is created there), or none for SQLite.
static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs every scenario on PostgreSQL: `admin_url` names a database on the
/// server where the bench may create and drop its own.
pub fn use_postgres(admin_url: String) {
    let _ = POSTGRES.set(admin_url);
}

/// A fresh data directory under the system temp dir, removed afterwards;
/// on PostgreSQL also a fresh database, dropped afterwards.
pub struct BenchDir {
    path: PathBuf,
    database: Option<Database>,
}

/// A database of the bench's own on the `--database-url` server.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl BenchDir {
    pub fn new() -> anyhow::Result<BenchDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("mlhook-bench-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        let database = match POSTGRES.get() {
            Some(admin_url) => Some(Database::create(admin_url, &name.replace('-', "_"))?),
            None => None,
        };
        Ok(BenchDir { path, database })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The service's `--database-url`, on PostgreSQL.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.url.as_str())
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(db) = &self.database {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", db.name);
            if let Err(e) = admin_statement(&db.admin_url, sql) {
                eprintln!("could not drop bench database {}: {e}", db.name);
            }
        }
    }
}

impl Database {
    fn create(admin_url: &str, name: &str) -> anyhow::Result<Database> {
        admin_statement(admin_url, format!("DROP DATABASE IF EXISTS \"{name}\""))?;
        admin_statement(admin_url, format!("CREATE DATABASE \"{name}\""))?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Database {
            admin_url: admin_url.to_string(),
            name: name.to_string(),
            url: url.to_string(),
        })
    }
}

/// One statement on the server's admin database, on a thread and runtime of
/// its own (callers may be inside the bench's runtime, or dropping).
fn admin_statement(admin_url: &str, sql: String) -> anyhow::Result<()> {
    use sqlx::Connection;
    let admin_url = admin_url.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
            sqlx::query(&sql).execute(&mut conn).await?;
            conn.close().await?;
            anyhow::Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the admin statement's thread panicked"))?
}

/// The service under test, a child process on its own data directory.
pub struct Service {
    child: Child,
    pub base: String,
    pub client: reqwest::Client,
    data_dir: BenchDir,
}

impl Service {
    pub fn start(extra: &[&str]) -> anyhow::Result<Service> {
        Service::start_in(BenchDir::new()?, extra)
    }

    pub fn start_in(data_dir: BenchDir, extra: &[&str]) -> anyhow::Result<Service> {
        Service::launch(Vec::new(), data_dir, extra)
    }

    /// Starts the service as the last argument of a launcher (a profiler and
    /// its options), e.g. `valgrind --tool=callgrind … mlhook serve …`.
    /// `launcher` is given the data directory, for files the profiler writes:
    /// they go with it when the service is dropped.
    pub fn start_under(launcher: impl FnOnce(&Path) -> Vec<String>) -> anyhow::Result<Service> {
        let data_dir = BenchDir::new()?;
        Service::launch(launcher(data_dir.path()), data_dir, &[])
    }

    fn launch(
        launcher: Vec<String>,
        data_dir: BenchDir,
        extra: &[&str],
    ) -> anyhow::Result<Service> {
        let binary = std::env::current_exe()?.with_file_name("mlhook");
        let database: Vec<&str> = match data_dir.database_url() {
            Some(url) => vec!["--database-url", url],
            None => Vec::new(),
        };
        let mut command = match launcher.split_first() {
            Some((program, options)) => {
                let mut command = Command::new(program);
                command.args(options).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--allow-network",
                "127.0.0.0/8",
                "--data-dir",
            ])
            .arg(data_dir.path())
            .args(&database)
            .args(extra)
            .env("MLHOOK_ADMIN_TOKEN", TOKEN)
            .env("MLHOOK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let base = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("mlhook exited before listening"))??;
            if let Some(addr) = line.strip_prefix("mlhook listening on ") {
                break addr.to_string();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Service {
            child,
            base,
            client,
            data_dir,
        })
    }

    /// With `MLHOOK_BENCH_WRITES` set, prints the service's group-commit
    /// figures (transactions, rows and seconds per writer): where a scenario
    /// is bound by writes, this shows how the writers shared the time.
    pub async fn print_store_writes(&self, scenario: &str) -> anyhow::Result<()> {
        if std::env::var_os("MLHOOK_BENCH_WRITES").is_none() {
            return Ok(());
        }
        let text = self.get_text("/metrics").await?;
        for line in text.lines().filter(|l| {
            l.starts_with("mlhook_store_write") && (l.contains("_sum") || l.contains("_count"))
        }) {
            eprintln!("{scenario}: {line}");
        }
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
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

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.get_text(path).await?)?)
    }

    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(text)
    }

    /// A project `bench` and one webhook per URL, all subscribed to everything.
    pub async fn setup(&self, urls: &[String]) -> anyhow::Result<Vec<String>> {
        self.post("/v1/projects", &json!({"id": "bench", "name": "Bench"}))
            .await?;
        let mut ids = Vec::new();
        for url in urls {
            let hook = self
                .post(
                    "/v1/projects/bench/webhooks",
                    &json!({"url": url, "events": ["*"]}),
                )
                .await?;
            ids.push(hook["id"].as_str().unwrap_or_default().to_string());
        }
        Ok(ids)
    }

    /// Sends `count` events over `concurrency` connections; answers each
    /// event's (delivery ids, 202 time) and the seconds taken.
    pub async fn send_events(
        &self,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<(Vec<Accepted>, f64)> {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let next = next.clone();
            let client = self.client.clone();
            let url = format!("{}/v1/projects/bench/events", self.base);
            tasks.push(tokio::spawn(async move {
                let mut accepted = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    accepted.push(send_one(&client, &url).await?);
                }
                anyhow::Ok(accepted)
            }));
        }
        let mut all = Vec::with_capacity(count);
        for t in tasks {
            all.extend(t.await??);
        }
        Ok((all, start.elapsed().as_secs_f64()))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One event's answer: its delivery ids, and when it was sent and accepted.
pub struct Accepted {
    pub delivery_ids: Vec<String>,
    pub sent: Instant,
    pub accepted: Instant,
}

pub async fn send_one(client: &reqwest::Client, url: &str) -> anyhow::Result<Accepted> {
    let sent = Instant::now();
    let resp = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(EVENT_BODY)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = serde_json::from_slice(&resp.bytes().await?)?;
    anyhow::ensure!(status == 202, "ingest answered {status}: {body}");
    let accepted = Instant::now();
    let delivery_ids = body["deliveries"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Accepted {
        delivery_ids,
        sent,
        accepted,
    })
}

/// A MODEL_VERSION_CREATED of about 600 bytes, the size the wire anchor uses.
pub const EVENT_BODY: &str = r#"{"type":"MODEL_VERSION_CREATED","payload":{"eventTrigger":"MODEL_VERSION_CREATED","workspaceName":"ml-platform-team","registryModelName":"fraud-detector-gradient-boosting","version":"3.14.159","tags":["production-candidate","validated","drift-checked","owner:risk-analytics","dataset:transactions-2026-10","framework:xgboost","gpu:false"],"deletedTags":[],"status":"Staging","oldStatus":null,"createdAt":1795600000,"sourceExperimentKey":"711e50b9e477498b91d32c024ffc802e"}}"#;

/// The payload alone, for seeding and for the wire scenario's bodies.
pub fn payload() -> String {
    let body: Value = serde_json::from_str(EVENT_BODY).expect("valid constant");
    body["payload"].to_string()
}

/// The fast receiver: answers 200 at once (or after `slow_delay` on paths
/// starting with /slow) and records the arrival time per `webhook-id`.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Receiver {
    pub async fn start(slow_delay: Duration) -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let app = {
            let arrivals = arrivals.clone();
            axum::Router::new().fallback(
                move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
                    let arrivals = arrivals.clone();
                    async move {
                        let now = Instant::now();
                        if uri.path().starts_with("/slow") {
                            tokio::time::sleep(slow_delay).await;
                        } else if let Some(id) =
                            headers.get("webhook-id").and_then(|v| v.to_str().ok())
                        {
                            arrivals
                                .lock()
                                .expect("arrivals lock")
                                .entry(id.to_string())
                                .or_insert(now);
                        }
                        axum::http::StatusCode::OK
                    }
                },
            )
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { base, arrivals })
    }

    pub fn arrival(&self, delivery_id: &str) -> Option<Instant> {
        self.arrivals
            .lock()
            .expect("arrivals lock")
            .get(delivery_id)
            .copied()
    }

    pub fn arrived(&self) -> usize {
        self.arrivals.lock().expect("arrivals lock").len()
    }

    /// Waits until `n` distinct deliveries arrived at the fast paths.
    pub async fn wait_for_arrivals(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.arrived() < n {
            anyhow::ensure!(
                Instant::now() < deadline,
                "receiver got {} of {n}",
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }
}

/// Writes a project, webhooks for `urls` (enabled or not) and `events` events
/// fanned out to all of them, through the store's own interface.
pub async fn seed(
    dir: &BenchDir,
    urls: &[String],
    enabled: bool,
    events: usize,
) -> anyhow::Result<Vec<String>> {
    use mlhook::ids::{EventId, WebhookId};
    use mlhook::store::{NewDelivery, NewEvent, PgOptions, PostgresStore, Project, SqliteStore};
    // The key file the service will find in the same data directory.
    let secrets = mlhook::secrets::SecretBox::load(None, &dir.path().join("secret.key"))?;
    let secrets = std::sync::Arc::new(secrets);
    let store: Box<dyn mlhook::store::Store> = match dir.database_url() {
        Some(url) => Box::new(PostgresStore::connect(&PgOptions::new(url), secrets).await?),
        None => Box::new(SqliteStore::open(dir.path(), secrets).await?),
    };
    let catalog = mlhook::catalog::Catalog::builtin();
    let now = mlhook::ids::now_millis();
    store
        .create_project(&Project {
            id: "bench".into(),
            name: "Bench".into(),
            link_base_url: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    let mut ids = Vec::new();
    for url in urls {
        let input =
            serde_json::from_value(json!({"url": url, "events": ["*"], "enabled": enabled}))?;
        let webhook = mlhook::webhook::Webhook::create(input, &"bench".into(), &catalog, now)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        store.create_webhook(&webhook).await?;
        ids.push(webhook.id);
    }
    let payload = payload();
    for first in (0..events).step_by(2000) {
        let batch: Vec<NewEvent> = (first..events.min(first + 2000))
            .map(|_| NewEvent {
                id: EventId::generate(),
                project_id: "bench".into(),
                event_type: "MODEL_VERSION_CREATED".into(),
                object: None,
                payload: payload.clone(),
                created_at: now,
                idempotency_key: None,
                deliveries: ids.iter().cloned().map(NewDelivery::new).collect(),
                lease_until: 0,
                is_test: false,
                request: 0,
            })
            .collect();
        store.insert_events(&batch, 0).await?;
    }
    if let Some(url) = dir.database_url() {
        // A bulk load, queried at once: give the planner the statistics that
        // autovacuum gathers as a table grows in real use.
        let sql = "ANALYZE".to_string();
        let url = url.to_string();
        tokio::task::spawn_blocking(move || admin_statement(&url, sql)).await??;
    }
    Ok(ids.into_iter().map(WebhookId::into_string).collect())
}

/// Resident set and CPU time of a process, from /proc.
pub struct ProcessStats {
    pub peak_rss_mb: f64,
    pub rss_mb: f64,
    pub cpu_seconds: f64,
}

pub fn process_stats(pid: u32) -> anyhow::Result<ProcessStats> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let clock_ticks = 100.0;
    Ok(ProcessStats {
        peak_rss_mb: kib("VmHWM:") / 1024.0,
        rss_mb: kib("VmRSS:") / 1024.0,
        cpu_seconds: (ticks(11) + ticks(12)) / clock_ticks,
    })
}
