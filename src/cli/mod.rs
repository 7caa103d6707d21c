//! The `mlhook` client: every command beside `serve`. Resource commands
//! speak the REST API (`docs/api.md`) through [`client`]; `listen` is a local
//! receiver for developing a consumer. See `docs/cli.md`.
//!
//! Exit codes: 0 ok, 1 the API answered an error (or the answer made no
//! sense), 2 a usage error, 3 the server could not be reached.

pub mod client;
mod commands;
pub mod listen;
pub mod output;
pub mod profile;
mod recover;
mod sources;

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use client::CliError;
pub use output::Output;

const GLOBAL: &str = "Client options";

/// Flags every client command takes (`serve` ignores them).
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// Server URL [default: the profile's, else http://127.0.0.1:8080].
    #[arg(long, global = true, env = "MLHOOK_URL", value_name = "URL", help_heading = GLOBAL)]
    pub url: Option<String>,
    /// API token (admin or project) [default: the profile's].
    #[arg(
        long,
        global = true,
        env = "MLHOOK_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
    /// Project the command acts on [default: the profile's].
    #[arg(long, global = true, env = "MLHOOK_PROJECT", value_name = "PROJECT", help_heading = GLOBAL)]
    pub project: Option<String>,
    /// Profile saved by `mlhook login` [default: default].
    #[arg(long, global = true, env = "MLHOOK_PROFILE", value_name = "NAME", help_heading = GLOBAL)]
    pub profile: Option<String>,
    /// Output: table (for people) or json (the API's answer, for scripts).
    #[arg(long, global = true, value_enum, default_value_t = Output::Table, help_heading = GLOBAL)]
    pub output: Output,
}

/// The client commands.
// Parsed once per process: the webhook flags' size costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save a server URL, token and default project as a profile (~/.config/mlhook/config.toml).
    ///
    /// The token is read from --token, MLHOOK_TOKEN, or else one line of standard input.
    /// It is checked against the server first (unless --no-verify).
    #[command(
        after_help = "Example: mlhook login --url http://127.0.0.1:8080 --project fraud-team < mlhook-data/admin-token"
    )]
    Login(LoginArgs),
    /// Projects: namespaces for one team's webhooks and events.
    #[command(subcommand, after_help = "Example: mlhook projects list")]
    Projects(ProjectsCommand),
    /// API tokens of a project.
    #[command(
        subcommand,
        after_help = "Example: mlhook tokens create --name ci --kind read"
    )]
    Tokens(TokensCommand),
    /// Webhooks of a project: where events go.
    #[command(subcommand, after_help = "Example: mlhook webhooks list")]
    Webhooks(WebhooksCommand),
    /// Sources of a project: the URLs MLflow posts its own webhooks to.
    #[command(
        subcommand,
        after_help = "Example: mlhook sources create --name 'mlflow prod' --secret -"
    )]
    Sources(sources::SourcesCommand),
    /// The event catalog: built-in types, schemas and examples.
    #[command(
        subcommand,
        after_help = "Example: mlhook event-types show MODEL_VERSION_CREATED"
    )]
    EventTypes(EventTypesCommand),
    /// Send and inspect events.
    #[command(
        subcommand,
        after_help = "Example: mlhook events send --type MODEL_VERSION_CREATED --payload @event.json"
    )]
    Events(EventsCommand),
    /// The delivery log: every delivery with its attempts; redeliver.
    #[command(
        subcommand,
        after_help = "Example: mlhook deliveries list --status failed --since 1h"
    )]
    Deliveries(DeliveriesCommand),
    /// Re-queue a webhook's failed, exhausted and paused deliveries, and watch them go out.
    #[command(after_help = "Example: mlhook recover --webhook wh_0193… --since 2h")]
    Recover(RecoverArgs),
    /// Receive webhooks locally: print each request, check its signature, answer or forward it.
    #[command(
        after_help = "Example: mlhook listen --port 9000 --secret whsec_…   # then point a webhook at http://127.0.0.1:9000/"
    )]
    Listen(listen::ListenArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example: mlhook completions bash > /etc/bash_completion.d/mlhook")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Save without asking the server whether the token works.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// The projects the token may see.
    #[command(after_help = "Example: mlhook projects list --output json")]
    List,
    /// One project [default: --project].
    #[command(after_help = "Example: mlhook projects show fraud-team")]
    Show { id: Option<String> },
    /// Create a project (admin token).
    #[command(after_help = "Example: mlhook projects create fraud-team --name 'Fraud team'")]
    Create {
        /// A lowercase slug: a-z, 0-9 and '-'.
        id: String,
        #[arg(long)]
        name: String,
        /// Base URL that completes relative links in payloads (chat formats).
        #[arg(long)]
        link_base_url: Option<String>,
    },
    /// Rename a project or set its link base [default: --project].
    #[command(after_help = "Example: mlhook projects update fraud-team --name 'Fraud & risk'")]
    Update {
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "no_link_base_url")]
        link_base_url: Option<String>,
        /// Remove the link base.
        #[arg(long)]
        no_link_base_url: bool,
    },
    /// Delete a project with everything in it (admin token).
    #[command(after_help = "Example: mlhook projects delete old-team")]
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// The project's tokens (never their values).
    #[command(after_help = "Example: mlhook tokens list --project fraud-team")]
    List,
    /// Create a token; its value is shown once.
    #[command(after_help = "Example: mlhook tokens create --name dashboards --kind read")]
    Create {
        #[arg(long)]
        name: Option<String>,
        /// write (default) or read (GET only).
        #[arg(long, value_parser = ["write", "read"])]
        kind: Option<String>,
    },
    /// Revoke a token by its id (tok_…).
    #[command(after_help = "Example: mlhook tokens revoke tok_0193…")]
    Revoke { token_id: String },
}

/// A webhook's settings as flags; `--data` gives the whole JSON body (inline,
/// `@file` or `-` for stdin) and the other flags override its fields.
#[derive(Debug, Clone, Default, Args)]
pub struct WebhookFields {
    /// The body as JSON: inline, @file.json, or - for standard input.
    #[arg(long, value_name = "JSON")]
    pub data: Option<String>,
    /// The receiver's URL.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Name [default: the URL's host].
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Event type or pattern to send (`*` within a name is a wildcard: `execution_*`,
    /// `mlflow.model_version_alias.*`, or `*` for all); repeatable, or comma-separated.
    #[arg(long = "event", value_name = "TYPE", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Keep event types and patterns that no known type matches yet.
    #[arg(long)]
    pub allow_unknown: bool,
    /// json, slack, teams, discord, github_dispatch or template.
    #[arg(long)]
    pub format: Option<String>,
    /// Scope: only events about this kind of object (model, deployment, pipeline, experiment, project).
    #[arg(long, value_name = "TYPE")]
    pub scope_type: Option<String>,
    /// Scope: only events about the object of this name.
    #[arg(long, value_name = "NAME")]
    pub scope_name: Option<String>,
    /// Scope: only events about this version.
    #[arg(long, value_name = "VERSION")]
    pub scope_version: Option<String>,
    /// Header sent with each delivery (repeatable; replaces the list on update).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Header whose value is write-only (repeatable).
    #[arg(long = "protected-header", value_name = "KEY=VALUE")]
    pub protected_headers: Vec<String>,
    /// Secret sent verbatim as Authorization.
    #[arg(long)]
    pub secret: Option<String>,
    /// Most deliveries per second (5/s) or per minute (100/m).
    #[arg(long, value_name = "N/s|N/m")]
    pub rate_limit: Option<String>,
    /// Signature: hmac_sha256 (whsec_ secret) or ed25519 (whpk_ public key); on create only,
    /// `signing-secret --rotate --scheme` changes it later.
    #[arg(long, value_name = "SCHEME", value_parser = ["hmac_sha256", "ed25519"])]
    pub signing_scheme: Option<String>,
    /// For MLflow's changes, when the webhook hears both shapes: native (default), comet or both.
    #[arg(long, value_name = "SHAPE", value_parser = ["native", "comet", "both"])]
    pub mlflow_shape: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// The project's webhooks.
    #[command(after_help = "Example: mlhook webhooks list")]
    List,
    /// One webhook (no secrets).
    #[command(after_help = "Example: mlhook webhooks show wh_0193…")]
    Show { id: String },
    /// Create a webhook; the answer holds its signing secret.
    #[command(
        after_help = "Example: mlhook webhooks create --endpoint http://127.0.0.1:9000/hooks --event MODEL_VERSION_CREATED --scope-type model --scope-name churn"
    )]
    Create(WebhookFields),
    /// Change the fields given; the others keep their values.
    #[command(after_help = "Example: mlhook webhooks update wh_0193… --event '*' --enable")]
    Update {
        id: String,
        #[command(flatten)]
        fields: WebhookFields,
        /// Enable (also clears a disabled state).
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// Remove the secret.
        #[arg(long, conflicts_with = "secret")]
        no_secret: bool,
        /// Return to the format's default pace.
        #[arg(long, conflicts_with = "rate_limit")]
        no_rate_limit: bool,
    },
    /// Delete a webhook and its deliveries.
    #[command(after_help = "Example: mlhook webhooks delete wh_0193…")]
    Delete { id: String },
    /// Send the test payload now; show what was sent and what came back.
    #[command(
        after_help = "Example: mlhook webhooks test wh_0193… --event-type MODEL_STATUS_CHANGED"
    )]
    Test {
        id: String,
        #[arg(long, value_name = "TYPE")]
        event_type: Option<String>,
    },
    /// Send a test for a webhook configuration without saving it.
    #[command(
        after_help = "Example: mlhook webhooks validate --endpoint https://hooks.example.com/ml --event RUN_COMPLETED"
    )]
    Validate(WebhookFields),
    /// Print what receivers verify with: the signing secret (whsec_…) or, for ed25519, the
    /// public key (whpk_…); --rotate makes a new one.
    #[command(
        after_help = "Examples:\n  mlhook listen --secret \"$(mlhook webhooks signing-secret wh_0193…)\"\n  mlhook webhooks signing-secret wh_0193… --rotate --grace-period 24h"
    )]
    SigningSecret {
        id: String,
        /// Replace the key with a new one; the old one keeps signing for the grace period.
        #[arg(long)]
        rotate: bool,
        /// With --rotate: switch to hmac_sha256 or ed25519.
        #[arg(long, requires = "rotate", value_parser = ["hmac_sha256", "ed25519"])]
        scheme: Option<String>,
        /// With --rotate: how long the old key keeps signing, e.g. 1h or 0s [default: the server's].
        #[arg(long, requires = "rotate", value_name = "DURATION")]
        grace_period: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventTypesCommand {
    /// Every built-in event type.
    #[command(after_help = "Example: mlhook event-types list")]
    List,
    /// One type: description, example payload (--output json: the schema too).
    #[command(after_help = "Example: mlhook event-types show RUN_COMPLETED --output json")]
    Show { name: String },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Send an event; it is stored, then delivered to every matching webhook.
    #[command(
        after_help = "Examples:\n  mlhook events send --type MODEL_VERSION_CREATED --payload @event.json\n  cat event.json | mlhook events send --type MODEL_VERSION_CREATED --payload -\n  mlhook events send --type RUN_COMPLETED --payload '{\"model_name\": \"churn\", …}'"
    )]
    Send {
        #[arg(long = "type", value_name = "TYPE")]
        event_type: String,
        /// The payload: inline JSON, @file.json, or - for standard input.
        #[arg(long, value_name = "JSON")]
        payload: String,
        /// The object it is about, when the payload does not say.
        #[arg(long, value_name = "TYPE")]
        object_type: Option<String>,
        #[arg(long, value_name = "NAME", requires = "object_type")]
        object_name: Option<String>,
        #[arg(long, value_name = "VERSION", requires = "object_type")]
        object_version: Option<String>,
        /// Sending again with the same key answers the first event.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Events newest first.
    #[command(after_help = "Example: mlhook events list --type RUN_COMPLETED --since 1d")]
    List {
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One event with the state of each delivery.
    #[command(after_help = "Example: mlhook events show evt_0193…")]
    Show { id: String },
    /// Deliver an event again to the webhooks that match it now.
    #[command(after_help = "Example: mlhook events replay evt_0193…")]
    Replay { id: String },
}

/// Time window and page of a list.
#[derive(Debug, Clone, Default, Args)]
pub struct PageArgs {
    /// Created at or after: RFC 3339 or a duration ago (2h).
    #[arg(long)]
    pub since: Option<String>,
    /// Created before: RFC 3339 or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// Page size, 1 to 250 [default: 50].
    #[arg(long)]
    pub limit: Option<u32>,
    /// Where the next page starts (printed under a full page).
    #[arg(long)]
    pub cursor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// The delivery log, newest first.
    #[command(
        after_help = "Example: mlhook deliveries list --webhook wh_0193… --status failed --since 2h"
    )]
    List {
        #[arg(long, value_name = "ID")]
        webhook: Option<String>,
        #[arg(long, value_name = "ID")]
        event: Option<String>,
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        /// pending, succeeded, failed, exhausted or paused.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One delivery with every attempt (secrets masked).
    #[command(after_help = "Example: mlhook deliveries show msg_0193…")]
    Show { id: String },
    /// Send a delivery again now, whatever its state (not retried).
    #[command(after_help = "Example: mlhook deliveries redeliver msg_0193…")]
    Redeliver { id: String },
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The webhook whose deliveries to re-queue.
    #[arg(long, value_name = "ID")]
    pub webhook: String,
    /// Deliveries created since: RFC 3339 or a duration ago (2h).
    #[arg(long)]
    pub since: String,
    /// Deliveries created before: RFC 3339 or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// Return once re-queued; do not wait for the deliveries to be sent.
    #[arg(long)]
    pub no_wait: bool,
}

/// Runs a client command; `cli` builds the whole command line (for completions).
pub fn run(global: Global, command: Command, cli: impl FnOnce() -> clap::Command) -> ExitCode {
    let result = match command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cli(), "mlhook", &mut script);
            let mut out = std::io::stdout();
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = out.write_all(&script).and_then(|_| out.flush());
            Ok(())
        }
        Command::Listen(args) => listen::run(args),
        command => runtime().and_then(|rt| rt.block_on(commands::dispatch(global, command))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(e.to_string()))
}

/// JSON from `--payload`/`--data`: inline, `@file`, or `-` for stdin.
pub fn read_json(flag: &str, text: &str) -> Result<serde_json::Value, CliError> {
    let (source, content) = if text == "-" {
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
            .map_err(|e| CliError::Usage(format!("{flag}: cannot read standard input: {e}")))?;
        ("standard input".to_string(), buf)
    } else if let Some(path) = text.strip_prefix('@') {
        let content = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("{flag}: cannot read {path}: {e}")))?;
        (path.to_string(), content)
    } else {
        ("the value".to_string(), text.to_string())
    };
    serde_json::from_str(&content)
        .map_err(|e| CliError::Usage(format!("{flag}: {source} is not valid JSON: {e}")))
}
