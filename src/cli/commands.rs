//! The resource commands: one API call each (a few for `recover`), printed
//! as a table or `key: value` list, or as the API's JSON with `--output json`.

use serde_json::{Map, Value, json};

use super::client::{CliError, Client};
use super::output::{self, Output, fields, pretty, table};
use super::{
    Command, DeliveriesCommand, EventTypesCommand, EventsCommand, Global, PageArgs,
    ProjectsCommand, TokensCommand, WebhookFields, WebhooksCommand, profile, read_json,
};

/// What every command needs: the client, the project, the output mode.
pub struct Ctx {
    pub api: Client,
    pub project: Option<String>,
    pub output: Output,
}

impl Ctx {
    pub fn project(&self) -> Result<&str, CliError> {
        self.project.as_deref().ok_or_else(|| {
            CliError::Usage(
                "no project: pass --project, set MLHOOK_PROJECT or save one with `mlhook login --project`"
                    .into(),
            )
        })
    }

    /// `["v1", "projects", <project>, rest…]`
    pub fn in_project<'a>(&'a self, rest: &[&'a str]) -> Result<Vec<&'a str>, CliError> {
        let mut segments = vec!["v1", "projects", self.project()?];
        segments.extend_from_slice(rest);
        Ok(segments)
    }

    /// The answer as JSON, or `human` of it.
    pub fn show(&self, answer: &Value, human: impl FnOnce(&Value)) {
        match self.output {
            Output::Json => {
                if !answer.is_null() {
                    println!("{}", pretty(answer))
                }
            }
            Output::Table => human(answer),
        }
    }
}

pub async fn dispatch(global: Global, command: Command) -> Result<(), CliError> {
    if let Command::Login(args) = &command {
        return login(&global, args.no_verify).await;
    }
    let conn = profile::resolve(&global)?;
    let ctx = Ctx {
        api: Client::new(&conn.url, conn.token)?,
        project: conn.project,
        output: global.output,
    };
    match command {
        Command::Projects(c) => projects(&ctx, c).await,
        Command::Tokens(c) => tokens(&ctx, c).await,
        Command::Webhooks(c) => webhooks(&ctx, c).await,
        Command::Sources(c) => super::sources::run(&ctx, c).await,
        Command::EventTypes(c) => event_types(&ctx, c).await,
        Command::Events(c) => events(&ctx, c).await,
        Command::Deliveries(c) => deliveries(&ctx, c).await,
        Command::Recover(args) => super::recover::run(&ctx, args).await,
        Command::Login(_) | Command::Listen(_) | Command::Completions { .. } => {
            unreachable!("handled before")
        }
    }
}

/// Saves the resolved URL, token and project under the profile's name.
async fn login(global: &Global, no_verify: bool) -> Result<(), CliError> {
    let name = global
        .profile
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| profile::DEFAULT_PROFILE.to_string());
    let mut file = profile::load()?;
    let old = file.profiles.get(&name).cloned().unwrap_or_default();
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let url = given(&global.url)
        .or(old.url)
        .unwrap_or_else(|| profile::DEFAULT_URL.to_string());
    let token = match given(&global.token) {
        Some(token) => token,
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("Token: ");
            }
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| CliError::Usage(format!("cannot read the token: {e}")))?;
            line.trim().to_string()
        }
    };
    if token.is_empty() {
        return Err(CliError::Usage(
            "no token: pass --token, set MLHOOK_TOKEN or type it on standard input".into(),
        ));
    }
    let project = given(&global.project).or(old.project);
    let api = Client::new(&url, Some(token.clone()))?;
    if !no_verify {
        // The token must work; the project may not exist yet (created next).
        let visible = api.get(&["v1", "projects"], &[]).await?;
        if let Some(p) = &project {
            let known = visible["data"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["id"] == p.as_str());
            if !known {
                eprintln!("note: project {p:?} does not exist yet, or this token cannot see it");
            }
        }
    }
    file.profiles.insert(
        name.clone(),
        profile::Profile {
            url: Some(url.clone()),
            token: Some(token),
            project: project.clone(),
        },
    );
    let path = profile::save(&file)?;
    eprintln!(
        "saved profile {name:?} ({url}{}) in {}",
        project
            .map(|p| format!(", project {p}"))
            .unwrap_or_default(),
        path.display()
    );
    Ok(())
}

const PROJECT_COLUMNS: [(&str, &str); 4] = [
    ("ID", "/id"),
    ("NAME", "/name"),
    ("LINK BASE", "/link_base_url"),
    ("CREATED", "/created_at"),
];

async fn projects(ctx: &Ctx, command: ProjectsCommand) -> Result<(), CliError> {
    let named = |id: Option<String>| -> Result<String, CliError> {
        id.map(Ok)
            .unwrap_or_else(|| ctx.project().map(str::to_string))
    };
    let show = |v: &Value| print!("{}", fields(v, &[]));
    match command {
        ProjectsCommand::List => {
            let answer = ctx.api.get(&["v1", "projects"], &[]).await?;
            ctx.show(&answer, |v| output::page(v, &PROJECT_COLUMNS));
        }
        ProjectsCommand::Show { id } => {
            let id = named(id)?;
            let answer = ctx.api.get(&["v1", "projects", &id], &[]).await?;
            ctx.show(&answer, show);
        }
        ProjectsCommand::Create {
            id,
            name,
            link_base_url,
        } => {
            let mut body = json!({"id": id, "name": name});
            if let Some(url) = link_base_url {
                body["link_base_url"] = url.into();
            }
            let answer = ctx.api.post(&["v1", "projects"], Some(&body)).await?;
            ctx.show(&answer, show);
        }
        ProjectsCommand::Update {
            id,
            name,
            link_base_url,
            no_link_base_url,
        } => {
            let id = named(id)?;
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), name.into());
            }
            if let Some(url) = link_base_url {
                body.insert("link_base_url".into(), url.into());
            }
            if no_link_base_url {
                body.insert("link_base_url".into(), Value::Null);
            }
            let answer = ctx
                .api
                .patch(&["v1", "projects", &id], &Value::Object(body))
                .await?;
            ctx.show(&answer, show);
        }
        ProjectsCommand::Delete { id } => {
            ctx.api.delete(&["v1", "projects", &id]).await?;
            ctx.show(&Value::Null, |_| println!("deleted project {id}"));
        }
    }
    Ok(())
}

async fn tokens(ctx: &Ctx, command: TokensCommand) -> Result<(), CliError> {
    match command {
        TokensCommand::List => {
            let answer = ctx.api.get(&ctx.in_project(&["tokens"])?, &[]).await?;
            ctx.show(&answer, |v| {
                output::page(
                    v,
                    &[
                        ("ID", "/id"),
                        ("PREFIX", "/prefix"),
                        ("KIND", "/kind"),
                        ("NAME", "/name"),
                        ("CREATED", "/created_at"),
                        ("REVOKED", "/revoked_at"),
                    ],
                )
            });
        }
        TokensCommand::Create { name, kind } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), name.into());
            }
            if let Some(kind) = kind {
                body.insert("kind".into(), kind.into());
            }
            let answer = ctx
                .api
                .post(&ctx.in_project(&["tokens"])?, Some(&Value::Object(body)))
                .await?;
            ctx.show(&answer, |v| {
                print!("{}", fields(v, &[]));
                eprintln!("The token is shown this once: store it now.");
            });
        }
        TokensCommand::Revoke { token_id } => {
            ctx.api
                .delete(&ctx.in_project(&["tokens", &token_id])?)
                .await?;
            ctx.show(&Value::Null, |_| println!("revoked token {token_id}"));
        }
    }
    Ok(())
}

/// `KEY=VALUE` into a header entry.
fn header(text: &str, protected: bool) -> Result<Value, CliError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| CliError::Usage(format!("header {text:?}: write it KEY=VALUE")))?;
    Ok(json!({"key": key.trim(), "value": value, "protected": protected}))
}

/// `5/s` or `100/m` into `{"per_second": 5}` / `{"per_minute": 100}`.
fn rate_limit(text: &str) -> Result<Value, CliError> {
    let bad = || CliError::Usage(format!("--rate-limit {text:?}: write it N/s or N/m"));
    let (n, unit) = text.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    match unit.trim() {
        "s" | "sec" | "second" => Ok(json!({"per_second": n})),
        "m" | "min" | "minute" => Ok(json!({"per_minute": n})),
        _ => Err(bad()),
    }
}

/// The webhook body the flags describe, over `--data` when given.
fn webhook_body(f: WebhookFields) -> Result<Map<String, Value>, CliError> {
    let mut body = match f.data {
        Some(data) => match read_json("--data", &data)? {
            Value::Object(map) => map,
            _ => return Err(CliError::Usage("--data: must be a JSON object".into())),
        },
        None => Map::new(),
    };
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.to_string(), value);
        }
    };
    set("url", f.endpoint.map(Value::from));
    set("name", f.name.map(Value::from));
    set("description", f.description.map(Value::from));
    set("format", f.format.map(Value::from));
    set("secret", f.secret.map(Value::from));
    set(
        "rate_limit",
        f.rate_limit.as_deref().map(rate_limit).transpose()?,
    );
    set("signing_scheme", f.signing_scheme.map(Value::from));
    set("mlflow_shape", f.mlflow_shape.map(Value::from));
    if !f.events.is_empty() {
        set("events", Some(f.events.into()));
    }
    if f.allow_unknown {
        set("allow_unknown", Some(Value::Bool(true)));
    }
    if f.scope_type.is_some() || f.scope_name.is_some() || f.scope_version.is_some() {
        let mut scope = Map::new();
        for (key, value) in [
            ("object_type", f.scope_type),
            ("object_name", f.scope_name),
            ("version", f.scope_version),
        ] {
            if let Some(value) = value {
                scope.insert(key.into(), value.into());
            }
        }
        set("scope", Some(Value::Object(scope)));
    }
    if !f.headers.is_empty() || !f.protected_headers.is_empty() {
        let mut list = Vec::new();
        for h in &f.headers {
            list.push(header(h, false)?);
        }
        for h in &f.protected_headers {
            list.push(header(h, true)?);
        }
        set("headers", Some(list.into()));
    }
    Ok(body)
}

const WEBHOOK_COLUMNS: [(&str, &str); 6] = [
    ("ID", "/id"),
    ("NAME", "/name"),
    ("URL", "/url"),
    ("FORMAT", "/format"),
    ("EVENTS", "/events"),
    ("ENABLED", "/enabled"),
];

async fn webhooks(ctx: &Ctx, command: WebhooksCommand) -> Result<(), CliError> {
    let show = |v: &Value| print!("{}", fields(v, &[]));
    match command {
        WebhooksCommand::List => {
            let answer = ctx.api.get(&ctx.in_project(&["webhooks"])?, &[]).await?;
            ctx.show(&answer, |v| output::page(v, &WEBHOOK_COLUMNS));
        }
        WebhooksCommand::Show { id } => {
            let answer = ctx
                .api
                .get(&ctx.in_project(&["webhooks", &id])?, &[])
                .await?;
            ctx.show(&answer, show);
        }
        WebhooksCommand::Create(f) => {
            let body = Value::Object(webhook_body(f)?);
            let answer = ctx
                .api
                .post(&ctx.in_project(&["webhooks"])?, Some(&body))
                .await?;
            ctx.show(&answer, show);
        }
        WebhooksCommand::Update {
            id,
            fields: f,
            enable,
            disable,
            no_secret,
            no_rate_limit,
        } => {
            let mut body = webhook_body(f)?;
            if enable || disable {
                body.insert("enabled".into(), enable.into());
            }
            if no_secret {
                body.insert("secret".into(), Value::Null);
            }
            if no_rate_limit {
                body.insert("rate_limit".into(), Value::Null);
            }
            if body.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give a flag such as --name or --enable (see --help)".into(),
                ));
            }
            let answer = ctx
                .api
                .patch(&ctx.in_project(&["webhooks", &id])?, &Value::Object(body))
                .await?;
            ctx.show(&answer, show);
        }
        WebhooksCommand::Delete { id } => {
            ctx.api.delete(&ctx.in_project(&["webhooks", &id])?).await?;
            ctx.show(&Value::Null, |_| println!("deleted webhook {id}"));
        }
        WebhooksCommand::Test { id, event_type } => {
            let body = event_type.map(|t| json!({"event_type": t}));
            let answer = ctx
                .api
                .post(&ctx.in_project(&["webhooks", &id, "test"])?, body.as_ref())
                .await?;
            ctx.show(&answer, print_outcome);
        }
        WebhooksCommand::Validate(f) => {
            let body = Value::Object(webhook_body(f)?);
            let answer = ctx
                .api
                .post(&ctx.in_project(&["webhooks", "validate"])?, Some(&body))
                .await?;
            ctx.show(&answer, print_outcome);
        }
        WebhooksCommand::SigningSecret {
            id,
            rotate,
            scheme,
            grace_period,
        } => {
            if rotate {
                let mut body = Map::new();
                if let Some(scheme) = scheme {
                    body.insert("signing_scheme".into(), scheme.into());
                }
                if let Some(grace) = grace_period {
                    body.insert("grace_period".into(), grace.into());
                }
                ctx.api
                    .post(
                        &ctx.in_project(&["webhooks", &id, "signing-secret", "rotate"])?,
                        Some(&Value::Object(body)),
                    )
                    .await?;
            }
            // The rotation answer holds no secret: the new key is read as always.
            let answer = ctx
                .api
                .get(&ctx.in_project(&["webhooks", &id, "signing-secret"])?, &[])
                .await?;
            // The key alone, so that `$(mlhook webhooks signing-secret …)` is the key;
            // the rest (scheme, end of the old key's grace) on stderr.
            ctx.show(&answer, |v| {
                let key = v["signing_secret"]
                    .as_str()
                    .or(v["signing_public_key"].as_str());
                match key {
                    Some(key) => {
                        println!("{key}");
                        eprint!("{}", fields(v, &["signing_secret", "signing_public_key"]));
                    }
                    None => print!("{}", fields(v, &[])),
                }
            });
        }
    }
    Ok(())
}

/// What a test, validate or redeliver answered: the send, synchronously.
fn print_outcome(v: &Value) {
    let verdict = if v["valid"] == true {
        "yes: the destination accepted it"
    } else {
        "no"
    };
    println!("valid:    {verdict}");
    if let Some(id) = v["delivery_id"].as_str() {
        println!("delivery: {id}");
    }
    println!(
        "request:  {} {}",
        output::cell(&v["request"]["method"]),
        output::cell(&v["request"]["url"])
    );
    match v["response"].as_object() {
        Some(response) => println!(
            "response: {} ({} ms)",
            output::cell(&response["status"]),
            output::cell(&v["duration_ms"])
        ),
        None => println!("response: - ({} ms)", output::cell(&v["duration_ms"])),
    }
    if let Some(body) = v["response"]["body"].as_str().filter(|b| !b.is_empty()) {
        println!("body:     {body}");
    }
    if v["error"].is_object() {
        println!(
            "error:    {}: {}",
            output::cell(&v["error"]["kind"]),
            output::cell(&v["error"]["message"])
        );
    }
}

async fn event_types(ctx: &Ctx, command: EventTypesCommand) -> Result<(), CliError> {
    match command {
        EventTypesCommand::List => {
            let answer = ctx.api.get(&["v1", "event-types"], &[]).await?;
            ctx.show(&answer, |v| {
                output::page(
                    v,
                    &[
                        ("NAME", "/name"),
                        ("FAMILY", "/family"),
                        ("DESCRIPTION", "/description"),
                    ],
                )
            });
        }
        EventTypesCommand::Show { name } => {
            let answer = ctx.api.get(&["v1", "event-types", &name], &[]).await?;
            ctx.show(&answer, |v| {
                print!("{}", fields(v, &["schema", "example", "test_payload"]));
                println!("example:\n{}", pretty(&v["example"]));
            });
        }
    }
    Ok(())
}

/// The query of a list page.
fn page_query(
    page: PageArgs,
    mut query: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let PageArgs {
        since,
        until,
        limit,
        cursor,
    } = page;
    for (key, value) in [
        ("since", since),
        ("until", until),
        ("limit", limit.map(|l| l.to_string())),
        ("cursor", cursor),
    ] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    query
}

const DELIVERY_STATE_COLUMNS: [(&str, &str); 6] = [
    ("DELIVERY", "/id"),
    ("WEBHOOK", "/webhook_id"),
    ("STATUS", "/status"),
    ("ATTEMPTS", "/attempts"),
    ("LAST CODE", "/last_status_code"),
    ("NEXT ATTEMPT", "/next_attempt_at"),
];

async fn events(ctx: &Ctx, command: EventsCommand) -> Result<(), CliError> {
    match command {
        EventsCommand::Send {
            event_type,
            payload,
            object_type,
            object_name,
            object_version,
            idempotency_key,
        } => {
            let payload = read_json("--payload", &payload)?;
            let mut body = json!({"type": event_type, "payload": payload});
            if let Some(object_type) = object_type {
                let mut object = json!({"type": object_type});
                if let Some(name) = object_name {
                    object["name"] = name.into();
                }
                if let Some(version) = object_version {
                    object["version"] = version.into();
                }
                body["object"] = object;
            }
            if let Some(key) = idempotency_key {
                body["idempotency_key"] = key.into();
            }
            let url = ctx.api.url(&ctx.in_project(&["events"])?, &[]);
            let (answer, headers) = ctx
                .api
                .send_for_headers(reqwest::Method::POST, url, Some(&body))
                .await
                .map_err(with_idempotency_hint)?;
            let replayed = headers
                .get("idempotent-replayed")
                .is_some_and(|v| v == "true");
            ctx.show(&answer, |v| {
                print_accepted(v);
                if replayed {
                    println!(
                        "(a repeat: this --idempotency-key was sent with this event before; nothing new was stored)"
                    );
                }
            });
        }
        EventsCommand::List { event_type, page } => {
            let filters = event_type
                .map(|t| vec![("event_type", t)])
                .unwrap_or_default();
            let answer = ctx
                .api
                .get(&ctx.in_project(&["events"])?, &page_query(page, filters))
                .await?;
            ctx.show(&answer, |v| {
                output::page(
                    v,
                    &[
                        ("ID", "/id"),
                        ("TYPE", "/type"),
                        ("OBJECT", "/object/type"),
                        ("NAME", "/object/name"),
                        ("TEST", "/is_test"),
                        ("CREATED", "/created_at"),
                    ],
                )
            });
        }
        EventsCommand::Show { id } => {
            let answer = ctx.api.get(&ctx.in_project(&["events", &id])?, &[]).await?;
            ctx.show(&answer, |v| {
                print!("{}", fields(v, &["payload", "deliveries"]));
                println!("payload:\n{}", pretty(&v["payload"]));
                let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
                if !deliveries.is_empty() {
                    println!();
                    print!("{}", table(&deliveries, &DELIVERY_STATE_COLUMNS));
                }
            });
        }
        EventsCommand::Replay { id } => {
            let answer = ctx
                .api
                .post(&ctx.in_project(&["events", &id, "replay"])?, None)
                .await?;
            ctx.show(&answer, print_accepted);
        }
    }
    Ok(())
}

/// What to do about a key refused for another request.
fn with_idempotency_hint(mut error: CliError) -> CliError {
    if let CliError::Api { code, hint, .. } = &mut error
        && code == "idempotency_key_reused"
    {
        *hint = Some(
            "the key was sent before with a different type, object or payload: pick a new --idempotency-key for a new event",
        );
    }
    error
}

fn print_accepted(v: &Value) {
    let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
    println!(
        "event {}: {} {}",
        output::cell(&v["id"]),
        deliveries.len(),
        if deliveries.len() == 1 {
            "delivery"
        } else {
            "deliveries"
        }
    );
    for d in deliveries {
        println!("  {}", output::cell(&d));
    }
}

pub const DELIVERY_COLUMNS: [(&str, &str); 8] = [
    ("ID", "/id"),
    ("EVENT TYPE", "/event_type"),
    ("WEBHOOK", "/webhook_id"),
    ("STATUS", "/status"),
    ("ATTEMPTS", "/attempts"),
    ("LAST CODE", "/last_status_code"),
    ("NEXT ATTEMPT", "/next_attempt_at"),
    ("CREATED", "/created_at"),
];

async fn deliveries(ctx: &Ctx, command: DeliveriesCommand) -> Result<(), CliError> {
    match command {
        DeliveriesCommand::List {
            webhook,
            event,
            event_type,
            status,
            page,
        } => {
            let mut filters = Vec::new();
            for (key, value) in [
                ("webhook_id", webhook),
                ("event_id", event),
                ("event_type", event_type),
                ("status", status),
            ] {
                if let Some(value) = value {
                    filters.push((key, value));
                }
            }
            let answer = ctx
                .api
                .get(
                    &ctx.in_project(&["deliveries"])?,
                    &page_query(page, filters),
                )
                .await?;
            ctx.show(&answer, |v| output::page(v, &DELIVERY_COLUMNS));
        }
        DeliveriesCommand::Show { id } => {
            let answer = ctx
                .api
                .get(&ctx.in_project(&["deliveries", &id])?, &[])
                .await?;
            ctx.show(&answer, |v| {
                print!("{}", fields(v, &["history"]));
                let history = v["history"].as_array().cloned().unwrap_or_default();
                if !history.is_empty() {
                    println!();
                    print!(
                        "{}",
                        table(
                            &history,
                            &[
                                ("ATTEMPT", "/attempt"),
                                ("MANUAL", "/manual"),
                                ("STARTED", "/started_at"),
                                ("MS", "/duration_ms"),
                                ("STATUS", "/response/status"),
                                ("ERROR", "/error/message"),
                            ],
                        )
                    );
                }
            });
        }
        DeliveriesCommand::Redeliver { id } => {
            let answer = ctx
                .api
                .post(&ctx.in_project(&["deliveries", &id, "redeliver"])?, None)
                .await?;
            ctx.show(&answer, print_outcome);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_read_per_second_or_minute() {
        assert_eq!(rate_limit("5/s").unwrap(), json!({"per_second": 5}));
        assert_eq!(rate_limit("100/m").unwrap(), json!({"per_minute": 100}));
        assert!(rate_limit("5").is_err());
        assert!(rate_limit("x/s").is_err());
    }

    #[test]
    fn flags_override_the_data_body() {
        let body = webhook_body(WebhookFields {
            data: Some(r#"{"url": "http://a", "name": "from data", "events": ["*"]}"#.into()),
            name: Some("from flag".into()),
            headers: vec!["X-A=1=2".into()],
            protected_headers: vec!["X-Key=s".into()],
            scope_type: Some("model".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "url": "http://a", "name": "from flag", "events": ["*"],
                "scope": {"object_type": "model"},
                "headers": [{"key": "X-A", "value": "1=2", "protected": false},
                            {"key": "X-Key", "value": "s", "protected": true}]
            })
        );
    }
}
