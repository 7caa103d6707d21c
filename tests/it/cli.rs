//! The `mlhook` client commands and `mlhook listen`, run as the built binary
//! against a running service and real receivers on 127.0.0.1.

use crate::common;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{ADMIN, Receiver, Reply, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A Comet "model version created" payload for the model `churn`.
fn version_created(version: &str) -> Value {
    json!({"workspaceName": "ml", "registryModelName": "churn", "version": version,
           "tags": ["candidate"], "createdAt": 1795600000, "sourceExperimentKey": null})
}

/// What one run of the binary left.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

/// Runs `mlhook` with a private config directory and none of the user's
/// `MLHOOK_*` client variables.
struct Cli {
    config: tempfile::TempDir,
    /// `--url`, `--token`, `--project`, put before the command's own arguments.
    base_args: Vec<String>,
}

impl Cli {
    fn new(server: &Server, project: &str) -> Cli {
        Cli {
            config: tempfile::tempdir().unwrap(),
            base_args: vec![
                "--url".into(),
                server.base.clone(),
                "--token".into(),
                ADMIN.into(),
                "--project".into(),
                project.into(),
            ],
        }
    }

    /// A command with no connection flags at all.
    fn bare(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mlhook"));
        command
            .env("XDG_CONFIG_HOME", self.config.path())
            .env_remove("MLHOOK_URL")
            .env_remove("MLHOOK_TOKEN")
            .env_remove("MLHOOK_PROJECT")
            .env_remove("MLHOOK_PROFILE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_input(args, None).await
    }

    async fn run_input(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut command = self.bare();
        command.args(&self.base_args).args(args);
        run(command, input).await
    }
}

async fn run(mut command: tokio::process::Command, input: Option<&str>) -> Run {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("mlhook starts");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("mlhook finishes")
        .unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Creates a webhook with the CLI; answers the creation JSON.
async fn create_webhook(cli: &Cli, endpoint: &str) -> Value {
    cli.run(&[
        "webhooks",
        "create",
        "--endpoint",
        endpoint,
        "--event",
        "MODEL_VERSION_CREATED",
        "--scope-type",
        "model",
        "--scope-name",
        "churn",
        "--output",
        "json",
    ])
    .await
    .ok()
    .json()
}

/// The table's rows as whitespace-separated cells, header first.
fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[tokio::test]
async fn events_from_a_file_and_stdin_are_delivered_listed_shown_and_redelivered() {
    let server = Server::start().await;
    server.create_project("cli").await;
    let receiver = Receiver::start().await;
    let cli = Cli::new(&server, "cli");

    let webhook = create_webhook(&cli, &format!("{}/hooks", receiver.url)).await;
    let webhook_id = webhook["id"].as_str().unwrap().to_string();
    assert!(
        webhook["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );

    // From a file: the human answer names the event and its one delivery.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, version_created("3").to_string()).unwrap();
    let payload_arg = format!("@{}", file.display());
    let sent = cli
        .run(&[
            "events",
            "send",
            "--type",
            "MODEL_VERSION_CREATED",
            "--payload",
            &payload_arg,
        ])
        .await
        .ok();
    assert!(sent.stdout.contains(": 1 delivery"), "{sent:?}");
    let from_file = sent
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("msg_"))
        .expect("the delivery id is printed")
        .to_string();

    // From stdin, as JSON for a script.
    let sent = cli
        .run_input(
            &[
                "events",
                "send",
                "--type",
                "MODEL_VERSION_CREATED",
                "--payload",
                "-",
                "--output",
                "json",
            ],
            Some(&version_created("4").to_string()),
        )
        .await
        .ok()
        .json();
    let from_stdin = sent["deliveries"][0].as_str().unwrap().to_string();
    assert!(sent["id"].as_str().unwrap().starts_with("evt_"));

    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let versions: HashSet<String> = got
        .iter()
        .map(|r| r.json()["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions, HashSet::from(["3".into(), "4".into()]));
    let ids: HashSet<String> = got.iter().map(|r| r.header("webhook-id").into()).collect();
    assert_eq!(ids, HashSet::from([from_file.clone(), from_stdin.clone()]));

    let log = format!("/v1/projects/cli/deliveries?webhook_id={webhook_id}&status=succeeded");
    server
        .poll_until(&log, Duration::from_secs(10), "both succeeded", |b| {
            b["data"].as_array().unwrap().len() == 2
        })
        .await;

    // The table: a header, then one row per delivery, newest first.
    let table = cli
        .run(&["deliveries", "list", "--webhook", &webhook_id])
        .await
        .ok();
    let table_rows = rows(&table.stdout);
    assert_eq!(
        table_rows[0],
        [
            "ID", "EVENT", "TYPE", "WEBHOOK", "STATUS", "ATTEMPTS", "LAST", "CODE", "NEXT",
            "ATTEMPT", "CREATED"
        ]
    );
    assert_eq!(table_rows.len(), 3, "{}", table.stdout);
    assert_eq!(table_rows[1][0], from_stdin);
    assert_eq!(table_rows[2][0], from_file);
    for row in &table_rows[1..] {
        assert_eq!(
            &row[1..7],
            [
                "MODEL_VERSION_CREATED",
                webhook_id.as_str(),
                "succeeded",
                "1",
                "200",
                "-"
            ]
        );
    }

    // The same list as JSON is the API's page.
    let page = cli
        .run(&[
            "deliveries",
            "list",
            "--webhook",
            &webhook_id,
            "--output",
            "json",
        ])
        .await
        .ok()
        .json();
    let listed: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [from_stdin.as_str(), from_file.as_str()]);
    assert_eq!(page["next_cursor"], Value::Null);

    let shown = cli.run(&["deliveries", "show", &from_file]).await.ok();
    assert!(
        shown.stdout.contains("status:           succeeded"),
        "{shown:?}"
    );
    let attempt_row = rows(&shown.stdout)
        .into_iter()
        .find(|r| r.first() == Some(&"1"))
        .expect("an attempt row");
    assert_eq!(attempt_row[1], "false");
    assert_eq!(attempt_row[4], "200");

    // Redeliver: the receiver gets the same delivery once more.
    let again = cli.run(&["deliveries", "redeliver", &from_file]).await.ok();
    assert!(again.stdout.contains("valid:    yes"), "{again:?}");
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].header("webhook-id"), from_file);
    assert_eq!(got[2].json()["version"], "3");
    let detail = cli
        .run(&["deliveries", "show", &from_file, "--output", "json"])
        .await
        .ok()
        .json();
    let history = detail["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["manual"], true);
    assert_eq!(history[1]["response"]["status"], 200);
}

/// `events send --idempotency-key`: a repeat says it is one; the key with
/// another payload fails with the API's 422 and what to do about it.
#[tokio::test]
async fn events_send_with_a_reused_idempotency_key_says_so() {
    let server = Server::start().await;
    server.create_project("keys").await;
    let cli = &Cli::new(&server, "keys");
    let payload = |workspace: &str| {
        format!(
            r#"{{"workspaceName": "{workspace}", "registryModelName": "churn", "version": "3", "tags": [], "createdAt": 1}}"#
        )
    };
    let send = |payload: String| async move {
        cli.run(&[
            "events",
            "send",
            "--type",
            "MODEL_VERSION_CREATED",
            "--payload",
            &payload,
            "--idempotency-key",
            "abc-123",
        ])
        .await
    };
    let first = send(payload("p1")).await.ok();
    assert!(!first.stdout.contains("repeat"), "{first:?}");
    let again = send(payload("p1")).await.ok();
    let event_id = first.stdout.split_whitespace().nth(1).unwrap();
    assert!(again.stdout.contains(event_id), "{again:?}");
    assert!(again.stdout.contains("a repeat"), "{again:?}");

    let reused = send(payload("p2")).await;
    assert_eq!(reused.code, 1, "{reused:?}");
    assert!(reused.stdout.is_empty(), "{reused:?}");
    for expected in [
        "422 idempotency_key_reused",
        "field: /idempotency_key",
        "nothing was stored",
        "hint: ",
        "new --idempotency-key",
    ] {
        assert!(reused.stderr.contains(expected), "{expected}: {reused:?}");
    }
    let (_, events) = server.get("/v1/projects/keys/events").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
}

#[tokio::test]
async fn exit_codes_say_api_error_usage_or_no_connection() {
    let server = Server::start().await;
    server.create_project("codes").await;
    let cli = Cli::new(&server, "codes");

    // 1: the API's error, with its message and field, on stderr.
    let missing = cli.run(&["webhooks", "show", "wh_nope"]).await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("webhook not found"), "{missing:?}");
    assert!(missing.stderr.contains("404"), "{missing:?}");
    assert!(missing.stdout.is_empty());

    let unknown = cli
        .run(&["events", "send", "--type", "NOPE", "--payload", "{}"])
        .await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("field: /type"), "{unknown:?}");

    let invalid = cli
        .run(&[
            "events", "send", "--type", "MODEL_VERSION_CREATED", "--payload",
            r#"{"workspaceName": "ml", "registryModelName": "churn", "version": 3, "tags": [], "createdAt": 1}"#,
        ])
        .await;
    assert_eq!(invalid.code, 1, "{invalid:?}");
    assert!(
        invalid.stderr.contains("field: /payload/version"),
        "{invalid:?}"
    );

    let mut no_token = cli.bare();
    no_token.args([
        "--url",
        &server.base,
        "--project",
        "codes",
        "webhooks",
        "list",
    ]);
    let no_token = run(no_token, None).await;
    assert_eq!(no_token.code, 1, "{no_token:?}");
    assert!(no_token.stderr.contains("401"), "{no_token:?}");
    assert!(no_token.stderr.contains("mlhook login"), "{no_token:?}");

    // 2: usage, clap's and our own.
    let unknown_command = cli.run(&["webhooks", "frobnicate"]).await;
    assert_eq!(unknown_command.code, 2, "{unknown_command:?}");
    let bad_json = cli
        .run(&["events", "send", "--type", "TEST", "--payload", "{nope"])
        .await;
    assert_eq!(bad_json.code, 2, "{bad_json:?}");
    assert!(bad_json.stderr.contains("--payload"), "{bad_json:?}");
    let mut no_project = cli.bare();
    no_project.args(["--url", &server.base, "--token", ADMIN, "webhooks", "list"]);
    let no_project = run(no_project, None).await;
    assert_eq!(no_project.code, 2, "{no_project:?}");
    assert!(no_project.stderr.contains("--project"), "{no_project:?}");

    // 3: nothing listens on the port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut unreachable = cli.bare();
    unreachable.args([
        "--url",
        &format!("http://127.0.0.1:{closed}"),
        "--token",
        ADMIN,
        "projects",
        "list",
    ]);
    let unreachable = run(unreachable, None).await;
    assert_eq!(unreachable.code, 3, "{unreachable:?}");
    assert!(
        unreachable.stderr.contains("cannot connect"),
        "{unreachable:?}"
    );

    // Completions are generated from the same command tree.
    let bash = cli.run(&["completions", "bash"]).await.ok();
    assert!(bash.stdout.contains("_mlhook"));
    assert!(bash.stdout.contains("signing-secret"));
}

#[tokio::test]
async fn login_saves_a_private_profile_and_flags_beat_the_environment_beat_the_profile() {
    let server = Server::start().await;
    server.create_project("prof").await;
    let cli = Cli::new(&server, "prof");

    // The token comes from standard input; the server is asked first.
    let mut login = cli.bare();
    login.args([
        "--url",
        &server.base,
        "--project",
        "prof",
        "--profile",
        "ci",
        "login",
    ]);
    let login = run(login, Some(&format!("{ADMIN}\n"))).await.ok();
    assert!(login.stderr.contains("saved profile \"ci\""), "{login:?}");
    let file = cli.config.path().join("mlhook").join("config.toml");
    let saved: toml::Value = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        saved["profiles"]["ci"]["url"].as_str(),
        Some(server.base.as_str())
    );
    assert_eq!(saved["profiles"]["ci"]["token"].as_str(), Some(ADMIN));
    assert_eq!(saved["profiles"]["ci"]["project"].as_str(), Some("prof"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A wrong token is refused at login and not saved.
    let mut wrong = cli.bare();
    wrong.args([
        "--url",
        &server.base,
        "--token",
        "nope",
        "--profile",
        "bad",
        "login",
    ]);
    assert_eq!(run(wrong, None).await.code, 1);
    assert!(!std::fs::read_to_string(&file).unwrap().contains("bad"));

    // A project that does not exist yet may be saved (it is created next), with a note.
    let mut early = cli.bare();
    early.args([
        "--url",
        &server.base,
        "--token",
        ADMIN,
        "--project",
        "later",
    ]);
    early.args(["--profile", "early", "login"]);
    let early = run(early, None).await.ok();
    assert!(
        early.stderr.contains("\"later\" does not exist yet"),
        "{early:?}"
    );

    // The profile alone is enough.
    let mut from_profile = cli.bare();
    from_profile.args(["--profile", "ci", "projects", "show", "--output", "json"]);
    let shown = run(from_profile, None).await.ok().json();
    assert_eq!(shown["id"], "prof");

    // The environment beats the profile: a closed port in MLHOOK_URL is used.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut env_wins = cli.bare();
    env_wins
        .env("MLHOOK_URL", format!("http://127.0.0.1:{closed}"))
        .args(["--profile", "ci", "projects", "show"]);
    assert_eq!(run(env_wins, None).await.code, 3);

    // The flag beats the environment.
    let mut flag_wins = cli.bare();
    flag_wins
        .env("MLHOOK_URL", format!("http://127.0.0.1:{closed}"))
        .env("MLHOOK_PROJECT", "elsewhere")
        .args([
            "--profile",
            "ci",
            "--url",
            &server.base,
            "--project",
            "prof",
        ])
        .args(["projects", "show", "--output", "json"]);
    assert_eq!(run(flag_wins, None).await.ok().json()["id"], "prof");

    // A profile that does not exist is a usage error.
    let mut unknown = cli.bare();
    unknown.args(["--profile", "nope", "projects", "list"]);
    assert_eq!(run(unknown, None).await.code, 2);
}

/// A running `mlhook listen`, its stdout collected as it comes.
struct Listen {
    _child: tokio::process::Child,
    url: String,
    out: Arc<Mutex<String>>,
}

impl Listen {
    async fn start(cli: &Cli, args: &[&str]) -> Listen {
        let mut command = cli.bare();
        command
            .args(["listen", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped());
        let mut child = command.spawn().expect("mlhook listen starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("listen announces itself")
            .unwrap()
            .expect("a first line");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .trim_end_matches('/')
            .to_string();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        Listen {
            _child: child,
            url,
            out,
        }
    }

    /// The reports printed so far, one per request.
    fn reports(&self) -> Vec<String> {
        let out = self.out.lock().unwrap();
        out.split("── #")
            .filter(|r| r.contains("→"))
            .map(str::to_string)
            .collect()
    }

    /// Waits until `n` reports are complete.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let reports = self.reports();
            if reports.len() >= n {
                return reports;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "listen printed {} of {n} reports:\n{}",
                reports.len(),
                self.out.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The value of `key:` in one report.
fn line<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {report}"))
}

#[tokio::test]
async fn listen_checks_signatures_with_the_signing_module_and_shows_retries() {
    let server = Server::start().await;
    server.create_project("dev").await;
    let cli = Cli::new(&server, "dev");

    // The webhook first (its secret is needed to start listen), then pointed at listen.
    let webhook = create_webhook(&cli, "http://127.0.0.1:1/").await;
    let webhook_id = webhook["id"].as_str().unwrap();
    let secret = cli
        .run(&["webhooks", "signing-secret", webhook_id])
        .await
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(secret, webhook["signing_secret"].as_str().unwrap());
    let listen = Listen::start(&cli, &["--secret", &secret, "--status", "500"]).await;
    let endpoint = format!("{}/in", listen.url);
    cli.run(&["webhooks", "update", webhook_id, "--endpoint", &endpoint])
        .await
        .ok();

    // A real signed delivery, answered 500: the service tries again.
    let sent = cli
        .run_input(
            &[
                "events",
                "send",
                "--type",
                "MODEL_VERSION_CREATED",
                "--payload",
                "-",
                "--output",
                "json",
            ],
            Some(&version_created("7").to_string()),
        )
        .await
        .ok()
        .json();
    let delivery_id = sent["deliveries"][0].as_str().unwrap().to_string();
    let reports = listen.wait_for(2).await;
    for (n, report) in reports.iter().take(2).enumerate() {
        assert_eq!(line(report, "signature:"), "valid", "{report}");
        assert_eq!(line(report, "event:"), "MODEL_VERSION_CREATED", "{report}");
        assert_eq!(line(report, "webhook-id:"), delivery_id, "{report}");
        let attempt = line(report, "attempt:");
        assert!(attempt.starts_with(&(n + 1).to_string()), "{report}");
        assert!(report.contains("→ answered 500"), "{report}");
        assert!(report.contains("\"version\": \"7\""), "{report}");
    }

    // The request as sent, from the delivery log; replayed to listen as is,
    // it is valid; with a tampered body under the same headers, it is not.
    let done = server
        .poll_until(
            &format!("/v1/projects/dev/deliveries/{delivery_id}"),
            Duration::from_secs(10),
            "exhausted",
            |d| d["status"] == "exhausted",
        )
        .await;
    let before = listen.wait_for(3).await.len();
    let sent = &done["history"][0]["request"];
    let body = sent["body"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let post = |body: String| {
        let mut request = client.post(&endpoint).body(body);
        for (name, value) in sent["headers"].as_object().unwrap() {
            if name != "content-length" {
                request = request.header(name.as_str(), value.as_str().unwrap());
            }
        }
        request.send()
    };
    let replay = post(body.clone()).await.unwrap();
    assert_eq!(replay.status(), 500);
    let tampered = post(body.replace("\"7\"", "\"8\"")).await.unwrap();
    assert_eq!(tampered.status(), 500);
    let reports = listen.wait_for(before + 2).await;
    assert_eq!(line(&reports[before], "signature:"), "valid");
    assert_eq!(
        line(&reports[before + 1], "signature:"),
        "invalid (signature mismatch)"
    );
    assert!(reports[before + 1].contains("\"version\": \"8\""));

    // Correctly signed, but 10 minutes old: outside the 5-minute tolerance.
    let stale_at = common::now_secs() - 600;
    let stale = client
        .post(&endpoint)
        .header("webhook-id", "msg_stale")
        .header("webhook-timestamp", stale_at.to_string())
        .header(
            "webhook-signature",
            mlhook::signing::sign(&secret, "msg_stale", stale_at, b"{}").unwrap(),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 500);
    let reports = listen.wait_for(before + 3).await;
    let verdict = line(&reports[before + 2], "signature:");
    assert!(
        verdict.starts_with("invalid (stale timestamp: "),
        "{}",
        reports[before + 2]
    );
}

#[tokio::test]
async fn recover_requeues_exhausted_deliveries_and_waits_until_they_are_sent() {
    let server = Server::start().await;
    server.create_project("rec").await;
    // Down for the first three attempts (the whole schedule), then up.
    let receiver = Receiver::start_with(|n, _| Reply::status(if n < 3 { 503 } else { 200 })).await;
    let cli = Cli::new(&server, "rec");
    let webhook = create_webhook(&cli, &receiver.url).await;
    let webhook_id = webhook["id"].as_str().unwrap();
    let sent = server
        .send_event("rec", "MODEL_VERSION_CREATED", version_created("9"))
        .await;
    let delivery = sent["deliveries"][0].as_str().unwrap();
    server
        .poll_until(
            &format!("/v1/projects/rec/deliveries/{delivery}"),
            Duration::from_secs(10),
            "exhausted",
            |d| d["status"] == "exhausted",
        )
        .await;

    let recovered = cli
        .run(&["recover", "--webhook", webhook_id, "--since", "1h"])
        .await
        .ok();
    assert!(
        recovered.stdout.contains("re-queued 1 delivery"),
        "{recovered:?}"
    );
    assert!(
        recovered.stdout.contains("1 succeeded, 0 failed"),
        "{recovered:?}"
    );
    assert_eq!(receiver.count(), 4);
    let (_, detail) = server
        .get(&format!("/v1/projects/rec/deliveries/{delivery}"))
        .await;
    assert_eq!(detail["status"], "succeeded");
}

#[tokio::test]
async fn tokens_are_created_listed_used_and_revoked() {
    let server = Server::start().await;
    server.create_project("tok").await;
    let cli = Cli::new(&server, "tok");

    let created = cli
        .run(&[
            "tokens",
            "create",
            "--name",
            "dashboards",
            "--kind",
            "read",
            "--output",
            "json",
        ])
        .await
        .ok()
        .json();
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();

    let table = cli.run(&["tokens", "list"]).await.ok();
    let table_rows = rows(&table.stdout);
    assert_eq!(
        table_rows[0],
        ["ID", "PREFIX", "KIND", "NAME", "CREATED", "REVOKED"]
    );
    let row = table_rows
        .iter()
        .find(|r| r[0] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {}", table.stdout));
    assert_eq!(row[2..4], ["read", "dashboards"]);
    assert!(token.starts_with(row[1]), "the prefix is the token's start");
    assert_eq!(row[5], "-");

    // The new token works on its own (read: a GET).
    let mut as_reader = cli.bare();
    as_reader.args(["--url", &server.base, "--token", &token, "--project", "tok"]);
    as_reader.args(["webhooks", "list", "--output", "json"]);
    assert_eq!(run(as_reader, None).await.ok().json()["data"], json!([]));

    let revoked = cli.run(&["tokens", "revoke", &id]).await.ok();
    assert!(revoked.stdout.contains(&id));
    let listed = cli
        .run(&["tokens", "list", "--output", "json"])
        .await
        .ok()
        .json();
    let entry = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(entry["revoked_at"].is_string(), "{entry}");
    let mut refused = cli.bare();
    refused.args(["--url", &server.base, "--token", &token, "--project", "tok"]);
    refused.args(["webhooks", "list"]);
    let refused = run(refused, None).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("401"), "{refused:?}");

    let again = cli.run(&["tokens", "revoke", "tok_nope"]).await;
    assert_eq!(again.code, 1, "{again:?}");
}

#[tokio::test]
async fn sources_are_created_listed_shown_updated_logged_and_deleted() {
    let server = Server::start().await;
    server.create_project("inbound").await;
    let cli = Cli::new(&server, "inbound");
    let secret = "a-shared-mlflow-secret-of-some-length";
    let created = cli
        .run_input(
            &[
                "sources",
                "create",
                "--name",
                "mlflow prod",
                "--secret",
                "-",
                "--output",
                "json",
            ],
            Some(&format!("{secret}\n")),
        )
        .await
        .ok()
        .json();
    assert_eq!(created["secret_set"], true, "{created}");
    assert!(
        !created.to_string().contains(secret),
        "the secret is never shown: {created}"
    );
    let id = created["id"].as_str().unwrap().to_string();
    let url = created["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/sources/{id}/mlflow")), "{url}");

    let listed = cli.run(&["sources", "list"]).await.ok().stdout;
    assert!(
        listed.contains(&id) && listed.contains("mlflow prod"),
        "{listed}"
    );

    // A request MLflow would never send is refused and logged.
    let refused = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let log = cli.run(&["sources", "log", &id]).await.ok().stdout;
    assert!(log.contains("missing_header"), "{log}");
    let shown = cli.run(&["sources", "show", &id]).await.ok().stdout;
    assert!(shown.contains("rejections_logged"), "{shown}");

    let updated = cli
        .run_input(
            &[
                "sources",
                "update",
                &id,
                "--name",
                "mlflow primary",
                "--secret",
                "-",
                "--grace-period",
                "5m",
                "--output",
                "json",
            ],
            Some("the-next-shared-mlflow-secret\n"),
        )
        .await
        .ok()
        .json();
    assert_eq!(updated["name"], "mlflow primary", "{updated}");
    assert!(
        updated["previous_secret_expires_at"].is_string(),
        "{updated}"
    );
    assert!(
        !updated.to_string().contains("the-next-shared"),
        "{updated}"
    );

    let unsigned_without_saying = cli.run(&["sources", "create", "--name", "open"]).await;
    assert_eq!(
        unsigned_without_saying.code, 1,
        "the API refuses it: {unsigned_without_saying:?}"
    );
    cli.run(&["sources", "delete", &id]).await.ok();
    let gone = cli.run(&["sources", "show", &id]).await;
    assert_eq!(gone.code, 1, "{gone:?}");
}

#[tokio::test]
async fn the_mlflow_shape_is_set_on_create_and_changed_on_update() {
    let server = Server::start().await;
    server.create_project("shapes").await;
    let cli = Cli::new(&server, "shapes");
    let created = cli
        .run(&[
            "webhooks",
            "create",
            "--endpoint",
            "http://127.0.0.1:1/",
            "--event",
            "*",
            "--mlflow-shape",
            "both",
            "--output",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(created["mlflow_shape"], "both", "{created}");
    let id = created["id"].as_str().unwrap();
    let updated = cli
        .run(&[
            "webhooks",
            "update",
            id,
            "--mlflow-shape",
            "comet",
            "--output",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(updated["mlflow_shape"], "comet", "{updated}");
    let refused = cli
        .run(&["webhooks", "update", id, "--mlflow-shape", "twice"])
        .await;
    assert_eq!(
        refused.code, 2,
        "a value clap refuses is a usage error: {refused:?}"
    );
}

#[tokio::test]
async fn listen_verifies_ed25519_signatures_with_the_public_key_and_rotation_changes_the_key() {
    let server = Server::start().await;
    server.create_project("ed").await;
    let cli = Cli::new(&server, "ed");
    let created = cli
        .run(&[
            "webhooks",
            "create",
            "--endpoint",
            "http://127.0.0.1:1/",
            "--event",
            "MODEL_VERSION_CREATED",
            "--signing-scheme",
            "ed25519",
            "--output",
            "json",
        ])
        .await
        .ok()
        .json();
    let webhook_id = created["id"].as_str().unwrap();
    let public_key = cli
        .run(&["webhooks", "signing-secret", webhook_id])
        .await
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(public_key.starts_with("whpk_"), "{public_key}");

    let listen = Listen::start(&cli, &["--secret", &public_key]).await;
    let endpoint = format!("{}/ed", listen.url);
    cli.run(&["webhooks", "update", webhook_id, "--endpoint", &endpoint])
        .await
        .ok();
    server
        .send_event("ed", "MODEL_VERSION_CREATED", version_created("5"))
        .await;
    let reports = listen.wait_for(1).await;
    assert_eq!(line(&reports[0], "signature:"), "valid", "{}", reports[0]);
    assert!(reports[0].contains("→ answered 200"));

    // A rotation without grace: a new key, and the old one no longer verifies.
    let rotated = cli
        .run(&[
            "webhooks",
            "signing-secret",
            webhook_id,
            "--rotate",
            "--grace-period",
            "0s",
        ])
        .await
        .ok();
    let new_key = rotated.stdout.trim();
    assert!(
        new_key.starts_with("whpk_") && new_key != public_key,
        "{rotated:?}"
    );
    server
        .send_event("ed", "MODEL_VERSION_CREATED", version_created("6"))
        .await;
    let reports = listen.wait_for(2).await;
    assert!(
        line(&reports[1], "signature:").starts_with("invalid"),
        "{}",
        reports[1]
    );
}

#[tokio::test]
async fn listen_forwards_requests_and_answers_what_came_back() {
    let server = Server::start().await;
    let cli = Cli::new(&server, "unused");
    let upstream = Receiver::start_with(|_, _| Reply {
        body: "from upstream".into(),
        ..Reply::status(201)
    })
    .await;
    let forward_to = format!("{}/up", upstream.url);
    let listen = Listen::start(&cli, &["--forward-to", &forward_to]).await;

    let answer = reqwest::Client::new()
        .put(format!("{}/anything", listen.url))
        .header("x-custom", "kept")
        .header("connection", "keep-alive")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.text().await.unwrap(), "from upstream");

    let got = upstream.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].path, "/up");
    assert_eq!(got[0].header("x-custom"), "kept");
    assert_eq!(&got[0].body[..], b"not json");
    let reports = listen.wait_for(1).await;
    assert!(reports[0].contains("PUT /anything"), "{}", reports[0]);
    assert_eq!(line(&reports[0], "event:"), "-");
    assert_eq!(line(&reports[0], "signature:"), "absent");
    assert!(reports[0].contains("body:\nnot json"), "{}", reports[0]);
    assert!(
        reports[0].contains(&format!("→ forwarded to {forward_to}: answered 201")),
        "{}",
        reports[0]
    );
}
