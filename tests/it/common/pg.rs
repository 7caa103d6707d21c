//! PostgreSQL for tests: a fresh database per test on the shared server
//! (127.0.0.1:5432, trust auth; `MLHOOK_TEST_PG_URL` names another), dropped
//! afterwards; and a private server of our own that a test may stop and start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::Connection;

/// The maintenance database of the server the tests use.
pub fn admin_url() -> String {
    std::env::var("MLHOOK_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("a postgres:// URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// A database created for one test and dropped when this is dropped.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates `mlhook_test_<random>` on the tests' server. Fails the test
    /// with a clear message when PostgreSQL does not answer: never a skip.
    pub async fn create() -> TestDatabase {
        TestDatabase::create_on(&admin_url()).await
    }

    pub async fn create_on(admin: &str) -> TestDatabase {
        let name = format!("mlhook_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin} ({e}). The PostgreSQL half of the \
                 tests needs it: start it (`service postgresql start`; .ci/run does) or set \
                 MLHOOK_TEST_PG_URL"
                )
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        TestDatabase {
            url: with_database(admin, &name),
            name,
            admin: admin.to_string(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A PostgreSQL server of the test's own (initdb in a temp dir, a free
/// loopback port), which the test may stop and start. Runs as the
/// `postgres` user when the test runs as root (initdb refuses root).
pub struct PrivateServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateServer {
    /// Initialises and starts a server; panics with the reason when this
    /// machine cannot (no PostgreSQL binaries, say).
    pub fn start() -> PrivateServer {
        let bin = postgres_bin().expect(
            "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH",
        );
        let dir = tempfile::Builder::new()
            .prefix("mlhook-pg-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let server = PrivateServer { bin, dir, port };
        server.chown_to_postgres(server.dir.path());
        let data = server.data_dir();
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        server.pg_ctl_start();
        server
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn pg_ctl_start(&self) {
        let data = self.data_dir();
        let socket_dir = self.dir.path().to_str().unwrap().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: connections are cut, the server is down.
    pub fn pg_ctl_stop(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let output = if running_as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn chown_to_postgres(&self, path: &Path) {
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(path)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown postgres {}", path.display());
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = if running_as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
                .output()
        } else {
            Command::new(self.bin.join("pg_ctl"))
                .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
                .output()
        };
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().or_else(|| {
        let output = Command::new("sh")
            .args(["-c", "command -v initdb"])
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        path.parent().map(Path::to_path_buf)
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
