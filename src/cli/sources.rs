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
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), name.into());
            }
            if let Some(secret) = secret {
                body.insert("secret".into(), secret_value(secret)?.into());
            }
            if let Some(grace) = grace_period {
                body.insert("secret_grace_period".into(), grace.into());
            }
            if let Some(seconds) = timestamp_tolerance {
                body.insert("timestamp_tolerance_secs".into(), seconds.into());
            }
            if let Some(workspace) = workspace_name {
                body.insert("workspace_name".into(), workspace.into());
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
    let mut body = Map::new();
    body.insert("name".into(), name.into());
    if let Some(secret) = secret {
        body.insert("secret".into(), secret_value(secret)?.into());
    }
    if unsigned {
        body.insert("unsigned".into(), true.into());
    }
    if let Some(seconds) = timestamp_tolerance {
        body.insert("timestamp_tolerance_secs".into(), seconds.into());
    }
    if let Some(workspace) = workspace_name {
        body.insert("workspace_name".into(), workspace.into());
    }
    Ok(Value::Object(body))
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
