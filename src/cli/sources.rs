//! `mlhook sources`: the inbound side. A source is the URL an ML platform
//! (MLflow today) posts its own webhooks to; mlhook checks, stores and routes
//! what arrives. See docs/mlflow.md.

use clap::Subcommand;
use serde_json::{Map, Value};

use super::client::CliError;
use super::commands::Ctx;
use super::output::{self, fields};

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// The project's sources (never their secrets).
    #[command(after_help = "Example: mlhook sources list")]
    List,
    /// One source, with the URL to give MLflow and its recent activity.
    #[command(after_help = "Example: mlhook sources show src_0193…")]
    Show { id: String },
    /// Create an MLflow source; the answer holds the URL to give MLflow's webhook.
    #[command(
        after_help = "Example: mlhook sources create --name 'mlflow prod' --secret - < secret.txt"
    )]
    Create {
        #[arg(long)]
        name: String,
        /// The secret MLflow's webhook signs with: the value, or - to read one line of
        /// standard input (keeps it out of the shell's history and the process list).
        #[arg(long, conflicts_with = "unsigned")]
        secret: Option<String>,
        /// Accept unsigned requests: the URL alone authenticates them.
        #[arg(long)]
        unsigned: bool,
        /// How far X-MLflow-Timestamp may be from mlhook's clock, in seconds [default: 300].
        #[arg(long, value_name = "SECONDS")]
        timestamp_tolerance: Option<u32>,
        /// The Comet workspaceName of events MLflow sends without a workspace
        /// [default: the source's name].
        #[arg(long)]
        workspace_name: Option<String>,
    },
    /// Change a source. A new secret replaces the old one, which keeps verifying for
    /// --grace-period (MLflow caches its webhook settings for a minute).
    #[command(
        after_help = "Example: mlhook sources update src_0193… --secret - --grace-period 10m < new-secret.txt"
    )]
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// The new secret: the value, or - to read one line of standard input.
        #[arg(long)]
        secret: Option<String>,
        /// How long the replaced secret still verifies [default: 10m; at most 7d].
        #[arg(long, value_name = "DURATION", requires = "secret")]
        grace_period: Option<String>,
        /// How far X-MLflow-Timestamp may be from mlhook's clock, in seconds.
        #[arg(long, value_name = "SECONDS")]
        timestamp_tolerance: Option<u32>,
        /// The Comet workspaceName of events MLflow sends without a workspace.
        #[arg(long)]
        workspace_name: Option<String>,
    },
    /// The requests the source refused, newest first, each with its reason.
    #[command(after_help = "Example: mlhook sources log src_0193…")]
    Log { id: String },
    /// Delete a source: its URL answers 404 from then on.
    #[command(after_help = "Example: mlhook sources delete src_0193…")]
    Delete { id: String },
}

pub async fn run(ctx: &Ctx, command: SourcesCommand) -> Result<(), CliError> {
    match command {
        SourcesCommand::List => {
            let answer = ctx.api.get(&ctx.in_project(&["sources"])?, &[]).await?;
            ctx.show(&answer, |v| {
                output::page(
                    v,
                    &[
                        ("ID", "/id"),
                        ("NAME", "/name"),
                        ("KIND", "/kind"),
                        ("SIGNED", "/secret_set"),
                        ("PATH", "/path"),
                    ],
                )
            });
        }
        SourcesCommand::Show { id } => {
            let answer = ctx
                .api
                .get(&ctx.in_project(&["sources", &id])?, &[])
                .await?;
            ctx.show(&answer, |v| print!("{}", fields(v, &[])));
        }
        SourcesCommand::Create {
            name,
            secret,
            unsigned,
            timestamp_tolerance,
            workspace_name,
        } => {
            let body = create_body(name, secret, unsigned, timestamp_tolerance, workspace_name)?;
            let answer = ctx
                .api
                .post(&ctx.in_project(&["sources"])?, Some(&body))
                .await?;
            ctx.show(&answer, |v| {
                print!("{}", fields(v, &[]));
                eprintln!("Give MLflow's webhook this url and the same secret.");
            });
        }
        SourcesCommand::Update {
            id,
            name,
            secret,
            grace_period,
            timestamp_tolerance,
            workspace_name,
        } => {
            let mut body = source_fields(name, secret, timestamp_tolerance, workspace_name)?;
            if let Some(grace) = grace_period {
                body.insert("secret_grace_period".into(), grace.into());
            }
            let answer = ctx
                .api
                .patch(&ctx.in_project(&["sources", &id])?, &Value::Object(body))
                .await?;
            ctx.show(&answer, |v| print!("{}", fields(v, &[])));
        }
        SourcesCommand::Log { id } => {
            let answer = ctx
                .api
                .get(&ctx.in_project(&["sources", &id, "log"])?, &[])
                .await?;
            ctx.show(&answer, |v| {
                output::page(
                    v,
                    &[
                        ("AT", "/at"),
                        ("STATUS", "/status"),
                        ("CODE", "/code"),
                        ("EVENT", "/event_type"),
                        ("REASON", "/reason"),
                    ],
                )
            });
        }
        SourcesCommand::Delete { id } => {
            ctx.api.delete(&ctx.in_project(&["sources", &id])?).await?;
            ctx.show(&Value::Null, |_| println!("deleted source {id}"));
        }
    }
    Ok(())
}

/// The create body; the secret read from standard input when given as `-`.
fn create_body(
    name: String,
    secret: Option<String>,
    unsigned: bool,
    timestamp_tolerance: Option<u32>,
    workspace_name: Option<String>,
) -> Result<Value, CliError> {
    let mut body = source_fields(Some(name), secret, timestamp_tolerance, workspace_name)?;
    if unsigned {
        body.insert("unsigned".into(), true.into());
    }
    Ok(Value::Object(body))
}

/// The fields create and update share, as the API names them; only those
/// given, the secret read from standard input when given as `-`.
fn source_fields(
    name: Option<String>,
    secret: Option<String>,
    timestamp_tolerance: Option<u32>,
    workspace_name: Option<String>,
) -> Result<Map<String, Value>, CliError> {
    let secret = secret.map(secret_value).transpose()?;
    let fields = [
        ("name", name.map(Value::from)),
        ("secret", secret.map(Value::from)),
        (
            "timestamp_tolerance_secs",
            timestamp_tolerance.map(Value::from),
        ),
        ("workspace_name", workspace_name.map(Value::from)),
    ];
    Ok(fields
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_string(), value?)))
        .collect())
}

/// A secret flag's value; `-` reads it from standard input.
fn secret_value(flag_value: String) -> Result<String, CliError> {
    if flag_value == "-" {
        read_line_of_stdin("--secret")
    } else {
        Ok(flag_value)
    }
}

fn read_line_of_stdin(flag: &str) -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("{flag}: cannot read standard input: {e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
