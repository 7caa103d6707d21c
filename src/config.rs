//! Configuration of `mlhook serve`: flags, then `MLHOOK_*` environment
//! variables, then an optional TOML file (`--config`), then defaults — each
//! setting taken from the first of these that gives it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::connections::ConnectionLimits;
use crate::delivery::{DeliveryConfig, RetryPolicy, retry::parse_schedule};
use crate::netguard::NetworkPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// `mlhook serve` flags; every one also reads its `MLHOOK_*` variable.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "MLHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address the API listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "MLHOOK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded database, admin token and lock [default: ./mlhook-data].
    #[arg(long, env = "MLHOOK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A client must send a whole request head within this of connecting or
    /// of its previous answer (so also the keep-alive idle timeout) [default: 30s].
    #[arg(long, env = "MLHOOK_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// Open API connections at most; beyond, the oldest is asked to close [default: 1024].
    #[arg(long, env = "MLHOOK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Largest accepted request body, e.g. 1MiB, 512KiB, 65536 [default: 1MiB].
    #[arg(long, env = "MLHOOK_MAX_BODY_SIZE")]
    pub max_body_size: Option<String>,
    /// Time a receiver has to answer one delivery [default: 30s].
    #[arg(long, env = "MLHOOK_DELIVERY_TIMEOUT")]
    pub delivery_timeout: Option<String>,
    /// Delays between attempts [default: 5s,5m,30m,2h,5h,10h,10h].
    #[arg(long, env = "MLHOOK_RETRY_SCHEDULE")]
    pub retry_schedule: Option<String>,
    /// Random spread of each retry delay, 0 to 1 [default: 0.2 = ±20 %].
    #[arg(long, env = "MLHOOK_RETRY_JITTER")]
    pub retry_jitter: Option<f64>,
    /// Longest `Retry-After` honoured [default: 1h].
    #[arg(long, env = "MLHOOK_RETRY_AFTER_MAX")]
    pub retry_after_max: Option<String>,
    /// Requests in flight per webhook [default: 16].
    #[arg(long, env = "MLHOOK_LANE_CONCURRENCY")]
    pub lane_concurrency: Option<usize>,
    /// Time given to attempts in flight at shutdown [default: 10s].
    #[arg(long, env = "MLHOOK_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
    /// How often the scheduler looks for due retries [default: 1s].
    #[arg(long, env = "MLHOOK_SCAN_INTERVAL")]
    pub scan_interval: Option<String>,
    /// Disable a webhook after this long without a success, once a delivery is exhausted [default: 5d].
    #[arg(long, env = "MLHOOK_DISABLE_AFTER")]
    pub disable_after: Option<String>,
    /// Keep events, deliveries and attempts this long [default: 30d].
    #[arg(long, env = "MLHOOK_RETENTION")]
    pub retention: Option<String>,
    /// Open a destination range the network guard blocks by default, e.g. 10.0.0.0/8 (repeatable).
    #[arg(
        long = "allow-network",
        env = "MLHOOK_ALLOW_NETWORKS",
        value_delimiter = ','
    )]
    pub allow_networks: Vec<String>,
    /// Refuse plain-HTTP destinations.
    #[arg(long, env = "MLHOOK_HTTPS_ONLY")]
    pub https_only: bool,
    /// Log output: pretty or json [default: pretty].
    #[arg(long, env = "MLHOOK_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// File holding the key that seals secrets at rest, created (0600) when
    /// missing; MLHOOK_SECRET_KEY overrides it [default: <data-dir>/secret.key].
    #[arg(long, env = "MLHOOK_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// How long a rotated-out signing key keeps signing [default: 24h].
    #[arg(long, env = "MLHOOK_SIGNING_GRACE_PERIOD")]
    pub signing_grace_period: Option<String>,
    /// Failed authentications one client may make per minute before it is
    /// answered 429 [default: 20].
    #[arg(long, env = "MLHOOK_AUTH_FAILURES_PER_MINUTE")]
    pub auth_failures_per_minute: Option<u32>,
    /// PostgreSQL instead of the embedded SQLite, e.g.
    /// postgres://mlhook:secret@db:5432/mlhook; several nodes may share it.
    #[arg(long, env = "MLHOOK_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// PostgreSQL connections this node keeps at most [default: 10].
    #[arg(long, env = "MLHOOK_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// PostgreSQL cancels a statement running longer than this; 0s for no limit [default: 30s].
    #[arg(long, env = "MLHOOK_DB_STATEMENT_TIMEOUT")]
    pub db_statement_timeout: Option<String>,
    /// PostgreSQL: the longest an API request waits for the database, all its
    /// waits together, before it is answered 503 [default: 5s].
    #[arg(long, env = "MLHOOK_DB_ACQUIRE_TIMEOUT")]
    pub db_acquire_timeout: Option<String>,
    /// How long a node's claim on a delivery lasts without renewal; another
    /// node takes over a dead node's deliveries after it [default: 60s].
    #[arg(long, env = "MLHOOK_LEASE_DURATION")]
    pub lease_duration: Option<String>,
    /// PostgreSQL: a node whose heartbeat is older than this is dead, and the
    /// other nodes release its leases at once [default: 15s].
    #[arg(long, env = "MLHOOK_NODE_TIMEOUT")]
    pub node_timeout: Option<String>,
    /// Do not apply migrations at start (PostgreSQL): fail if any is pending;
    /// run `mlhook migrate` first.
    #[arg(long, env = "MLHOOK_SKIP_MIGRATIONS")]
    pub skip_migrations: bool,
    /// Serve GET /metrics without a token (otherwise the admin token or MLHOOK_METRICS_TOKEN).
    #[arg(long, env = "MLHOOK_METRICS_PUBLIC")]
    pub metrics_public: bool,
}

/// `mlhook migrate` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to migrate; without it, the SQLite database in --data-dir.
    #[arg(long, env = "MLHOOK_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded database [default: ./mlhook-data].
    #[arg(long, env = "MLHOOK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The TOML file: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    max_body_size: Option<String>,
    header_read_timeout: Option<String>,
    max_connections: Option<usize>,
    delivery_timeout: Option<String>,
    retry_schedule: Option<String>,
    retry_jitter: Option<f64>,
    retry_after_max: Option<String>,
    lane_concurrency: Option<usize>,
    shutdown_grace: Option<String>,
    scan_interval: Option<String>,
    disable_after: Option<String>,
    retention: Option<String>,
    allow_networks: Option<Vec<String>>,
    https_only: Option<bool>,
    log_format: Option<LogFormat>,
    secret_key_file: Option<PathBuf>,
    signing_grace_period: Option<String>,
    auth_failures_per_minute: Option<u32>,
    database_url: Option<String>,
    db_pool_size: Option<u32>,
    db_statement_timeout: Option<String>,
    db_acquire_timeout: Option<String>,
    lease_duration: Option<String>,
    node_timeout: Option<String>,
    skip_migrations: Option<bool>,
    metrics_public: Option<bool>,
}

/// The resolved settings the service runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    /// Header-read timeout and connection cap of the API.
    pub connections: ConnectionLimits,
    pub delivery: DeliveryConfig,
    pub shutdown_grace: Duration,
    /// Events older than this are purged with their deliveries and attempts.
    pub retention: Duration,
    /// Which destinations may be reached.
    pub network: NetworkPolicy,
    pub log_format: LogFormat,
    /// `MLHOOK_ADMIN_TOKEN`: read from the environment only, never a flag or file.
    pub admin_token: Option<String>,
    /// `MLHOOK_SECRET_KEY`: environment only, like the admin token.
    pub secret_key: Option<String>,
    pub secret_key_file: PathBuf,
    pub signing_grace_period: Duration,
    pub auth_failures_per_minute: u32,
    /// Where the data lives: the data directory's SQLite, or PostgreSQL.
    pub database: Database,
    /// `/metrics` without a token.
    pub metrics_public: bool,
    /// `MLHOOK_METRICS_TOKEN`: a token that reads `/metrics` only (environment only).
    pub metrics_token: Option<String>,
}

/// Which store `mlhook serve` runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum Database {
    /// `<data_dir>/mlhook.db`, one process.
    Sqlite,
    /// PostgreSQL, one node or several.
    Postgres {
        url: String,
        pool_size: u32,
        statement_timeout: Duration,
        /// A request's waits for the database, together, before its 503.
        acquire_timeout: Duration,
        skip_migrations: bool,
    },
}

impl Database {
    /// A `postgres://` (or `postgresql://`) URL is PostgreSQL; none is SQLite.
    pub fn url(url: Option<String>) -> Result<Option<String>, ConfigError> {
        match url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) {
            None => Ok(None),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Some(url))
            }
            // Never echo the URL: it may hold a password.
            Some(_) => Err(invalid(
                "database_url",
                "must be a postgres:// URL (SQLite needs none: it lives in --data-dir)".into(),
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

impl ServeConfig {
    pub fn resolve(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let defaults = DeliveryConfig::default();
        let retry = RetryPolicy {
            schedule: match args.retry_schedule.or(file.retry_schedule) {
                Some(text) => parse_schedule(&text).map_err(|m| invalid("retry_schedule", m))?,
                None => defaults.retry.schedule.clone(),
            },
            jitter: args
                .retry_jitter
                .or(file.retry_jitter)
                .unwrap_or(defaults.retry.jitter),
            retry_after_cap: duration(
                "retry_after_max",
                args.retry_after_max.or(file.retry_after_max),
                defaults.retry.retry_after_cap,
            )?,
        };
        if !(0.0..=1.0).contains(&retry.jitter) {
            return Err(invalid("retry_jitter", "must be between 0 and 1".into()));
        }
        let allow = if args.allow_networks.is_empty() {
            file.allow_networks
        } else {
            Some(args.allow_networks)
        };
        let network = NetworkPolicy {
            allow: networks(allow)?,
            https_only: args.https_only || file.https_only.unwrap_or(false),
        };
        let delivery = DeliveryConfig {
            timeout: duration(
                "delivery_timeout",
                args.delivery_timeout.or(file.delivery_timeout),
                defaults.timeout,
            )?,
            lane_concurrency: args
                .lane_concurrency
                .or(file.lane_concurrency)
                .unwrap_or(defaults.lane_concurrency)
                .max(1),
            retry,
            lease: duration(
                "lease_duration",
                args.lease_duration.or(file.lease_duration),
                defaults.lease,
            )?,
            scan_interval: duration(
                "scan_interval",
                args.scan_interval.or(file.scan_interval),
                defaults.scan_interval,
            )?,
            failure_window: duration(
                "disable_after",
                args.disable_after.or(file.disable_after),
                defaults.failure_window,
            )?,
            node_timeout: duration(
                "node_timeout",
                args.node_timeout.or(file.node_timeout),
                defaults.node_timeout,
            )?,
            network: std::sync::Arc::new(network.clone()),
            // Known once the store is open (`server`).
            shared_store: false,
        };
        if delivery.lease < Duration::from_secs(1) {
            return Err(invalid("lease_duration", "must be at least 1s".into()));
        }
        if delivery.node_timeout < Duration::from_secs(1) {
            return Err(invalid("node_timeout", "must be at least 1s".into()));
        }
        let database = match Database::url(args.database_url.or(file.database_url))? {
            None => Database::Sqlite,
            Some(url) => Database::Postgres {
                url,
                pool_size: args.db_pool_size.or(file.db_pool_size).unwrap_or(10).max(2),
                statement_timeout: duration(
                    "db_statement_timeout",
                    args.db_statement_timeout.or(file.db_statement_timeout),
                    Duration::from_secs(30),
                )?,
                acquire_timeout: duration(
                    "db_acquire_timeout",
                    args.db_acquire_timeout.or(file.db_acquire_timeout),
                    Duration::from_secs(5),
                )?,
                skip_migrations: args.skip_migrations || file.skip_migrations.unwrap_or(false),
            },
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./mlhook-data"));
        Ok(ServeConfig {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            secret_key_file: args
                .secret_key_file
                .or(file.secret_key_file)
                .unwrap_or_else(|| data_dir.join("secret.key")),
            data_dir,
            max_body_bytes: match args.max_body_size.or(file.max_body_size) {
                Some(text) => parse_size(&text).map_err(|m| invalid("max_body_size", m))?,
                None => 1024 * 1024,
            },
            connections: connection_limits(
                args.header_read_timeout.or(file.header_read_timeout),
                args.max_connections.or(file.max_connections),
            )?,
            delivery,
            shutdown_grace: duration(
                "shutdown_grace",
                args.shutdown_grace.or(file.shutdown_grace),
                Duration::from_secs(10),
            )?,
            retention: duration(
                "retention",
                args.retention.or(file.retention),
                Duration::from_secs(30 * 24 * 3600),
            )?,
            network,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            admin_token: non_empty_env("MLHOOK_ADMIN_TOKEN"),
            secret_key: non_empty_env("MLHOOK_SECRET_KEY"),
            signing_grace_period: duration(
                "signing_grace_period",
                args.signing_grace_period.or(file.signing_grace_period),
                Duration::from_secs(24 * 3600),
            )?,
            auth_failures_per_minute: args
                .auth_failures_per_minute
                .or(file.auth_failures_per_minute)
                .unwrap_or(20)
                .max(1),
            database,
            metrics_public: args.metrics_public || file.metrics_public.unwrap_or(false),
            metrics_token: non_empty_env("MLHOOK_METRICS_TOKEN"),
        })
    }
}

fn connection_limits(
    header_read_timeout: Option<String>,
    max_connections: Option<usize>,
) -> Result<ConnectionLimits, ConfigError> {
    let defaults = ConnectionLimits::default();
    let header_read_timeout = duration(
        "header_read_timeout",
        header_read_timeout,
        defaults.header_read_timeout,
    )?;
    if header_read_timeout.is_zero() {
        return Err(invalid(
            "header_read_timeout",
            "must be more than 0s".into(),
        ));
    }
    let max_connections = max_connections.unwrap_or(defaults.max_connections);
    if max_connections == 0 {
        return Err(invalid("max_connections", "must be at least 1".into()));
    }
    Ok(ConnectionLimits {
        header_read_timeout,
        max_connections,
    })
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn networks(list: Option<Vec<String>>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let parse = |text: &String| {
        let text = text.trim();
        // A bare address opens just itself.
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                invalid(
                    "allow_networks",
                    format!("{text:?} is not a CIDR range such as 10.0.0.0/8"),
                )
            })
    };
    list.unwrap_or_default()
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(parse)
        .collect()
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.into(),
        source,
    })
}

fn invalid(setting: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { setting, message }
}

fn duration(
    setting: &'static str,
    text: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match text {
        Some(t) => {
            humantime::parse_duration(t.trim()).map_err(|e| invalid(setting, format!("{t:?}: {e}")))
        }
        None => Ok(default),
    }
}

/// `1048576`, `512KiB`, `1MiB`, `1MB` (decimal units are taken as binary).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("{text:?}: unknown unit (use B, KiB or MiB)")),
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1MiB").unwrap(), 1_048_576);
        assert_eq!(parse_size("512KiB").unwrap(), 524_288);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlhook.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nlane_concurrency = 4\nretry_schedule = \"1s,2s\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            lane_concurrency: Some(8),
            ..Default::default()
        };
        let config = ServeConfig::resolve(args).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.delivery.lane_concurrency, 8);
        assert_eq!(
            config.delivery.retry.schedule,
            vec![Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert_eq!(config.delivery.timeout, Duration::from_secs(30));
    }

    #[test]
    fn allowed_networks_parse_as_cidr_or_address() {
        let args = ServeArgs {
            allow_networks: vec!["127.0.0.0/8".into(), "::1".into()],
            ..Default::default()
        };
        let config = ServeConfig::resolve(args).unwrap();
        assert_eq!(config.network.allow.len(), 2);
        assert!(config.network.check("127.0.0.9".parse().unwrap()).is_ok());
        assert!(config.network.check("10.0.0.1".parse().unwrap()).is_err());
        let bad = ServeArgs {
            allow_networks: vec!["ten".into()],
            ..Default::default()
        };
        assert!(matches!(
            ServeConfig::resolve(bad),
            Err(ConfigError::Invalid {
                setting: "allow_networks",
                ..
            })
        ));
    }

    #[test]
    fn a_postgres_url_chooses_postgres_with_its_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mlhook.toml");
        std::fs::write(
            &path,
            "database_url = \"postgres://mlhook@db/mlhook\"\ndb_pool_size = 20\nlease_duration = \"10s\"\n\
             db_acquire_timeout = \"2s\"\nnode_timeout = \"9s\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            db_statement_timeout: Some("5s".into()),
            ..Default::default()
        };
        let config = ServeConfig::resolve(args).unwrap();
        assert_eq!(
            config.database,
            Database::Postgres {
                url: "postgres://mlhook@db/mlhook".into(),
                pool_size: 20,
                statement_timeout: Duration::from_secs(5),
                acquire_timeout: Duration::from_secs(2),
                skip_migrations: false,
            }
        );
        assert_eq!(config.delivery.node_timeout, Duration::from_secs(9));
        assert_eq!(config.delivery.lease, Duration::from_secs(10));
        let defaults = ServeConfig::resolve(ServeArgs::default()).unwrap();
        assert_eq!(defaults.database, Database::Sqlite);
        assert_eq!(defaults.delivery.lease, Duration::from_secs(60));
        assert_eq!(defaults.delivery.node_timeout, Duration::from_secs(15));
    }

    #[test]
    fn a_database_url_that_is_not_postgres_is_refused_without_echoing_it() {
        let args = ServeArgs {
            database_url: Some("mysql://user:hunter2@db/x".into()),
            ..Default::default()
        };
        let error = ServeConfig::resolve(args).unwrap_err();
        assert!(matches!(
            error,
            ConfigError::Invalid {
                setting: "database_url",
                ..
            }
        ));
        assert!(!error.to_string().contains("hunter2"));
        let args = ServeArgs {
            lease_duration: Some("100ms".into()),
            ..Default::default()
        };
        assert!(ServeConfig::resolve(args).is_err());
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(matches!(
            ServeConfig::resolve(args),
            Err(ConfigError::Parse { .. })
        ));
        let args = ServeArgs {
            retry_schedule: Some("soon".into()),
            ..Default::default()
        };
        assert!(matches!(
            ServeConfig::resolve(args),
            Err(ConfigError::Invalid {
                setting: "retry_schedule",
                ..
            })
        ));
    }
}
