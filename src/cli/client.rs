//! The HTTP side of the client commands: one request to the API, its JSON
//! answer or its error, and the exit code each outcome means.

use reqwest::Method;
use serde_json::Value;

/// Why a command failed; each kind has its exit code (see `docs/cli.md`).
#[derive(Debug)]
pub enum CliError {
    /// The API answered 4xx or 5xx: exit 1.
    Api {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
        details: Vec<(String, String)>,
        /// A hint of our own, e.g. where a token comes from after a 401.
        hint: Option<&'static str>,
    },
    /// Bad flags or input (an unreadable payload file, no project): exit 2.
    Usage(String),
    /// The server could not be reached: exit 3.
    Connect(String),
    /// Anything else (an answer that is not JSON, a local I/O error): exit 1.
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api { .. } | CliError::Other(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Connect(_) => 3,
        }
    }

    /// The message for stderr: the API's own message, its field and details.
    pub fn report(&self) -> String {
        match self {
            CliError::Api {
                status,
                code,
                message,
                field,
                details,
                hint,
            } => {
                // The message of several problems lists them all: list them below instead.
                let mut out = if details.len() > 1 {
                    format!(
                        "error: {} problems in the request ({status} {code})",
                        details.len()
                    )
                } else {
                    format!("error: {message} ({status} {code})")
                };
                if let Some(field) = field {
                    out.push_str(&format!("\n  field: {field}"));
                }
                if details.len() > 1 {
                    for (field, message) in details {
                        out.push_str(&format!("\n  - {field}: {message}"));
                    }
                }
                if let Some(hint) = hint {
                    out.push_str(&format!("\n  hint: {hint}"));
                }
                out
            }
            CliError::Usage(message) => format!("error: {message}"),
            CliError::Connect(message) => format!("error: cannot connect: {message}"),
            CliError::Other(message) => format!("error: {message}"),
        }
    }

    /// A 4xx/5xx answer in the API's error shape (or whatever text came).
    fn from_answer(status: u16, text: &str, had_token: bool) -> CliError {
        let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let error = &body["error"];
        let string = |v: &Value| v.as_str().map(str::to_string);
        let details = error["details"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|d| {
                        (
                            string(&d["field"]).unwrap_or_default(),
                            string(&d["message"]).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let hint = (status == 401 && !had_token)
            .then_some("no token given: pass --token, set MLHOOK_TOKEN or run `mlhook login`");
        CliError::Api {
            status,
            code: string(&error["code"]).unwrap_or_else(|| "error".into()),
            message: string(&error["message"]).unwrap_or_else(|| {
                let text = text.trim();
                if text.is_empty() {
                    format!("the server answered {status}")
                } else {
                    text.chars().take(500).collect()
                }
            }),
            field: string(&error["field"]),
            details,
            hint,
        }
    }
}

/// One server, one token: every client command's way to the API.
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Result<Client, CliError> {
        let base = url::Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| CliError::Usage(format!("--url {base:?} is not an http(s) URL")))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("mlhook-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| CliError::Other(e.to_string()))?;
        Ok(Client { http, base, token })
    }

    /// The URL of `segments` (each percent-encoded) under the base, with `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> url::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked to be a base URL")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    pub async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CliError> {
        self.send(Method::GET, self.url(segments, query), None)
            .await
    }

    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> Result<Value, CliError> {
        self.send(Method::POST, self.url(segments, &[]), body).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value, CliError> {
        self.send(Method::PATCH, self.url(segments, &[]), Some(body))
            .await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value, CliError> {
        self.send(Method::DELETE, self.url(segments, &[]), None)
            .await
    }

    /// Sends one request; a 2xx answers its JSON (`Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        Ok(self.send_for_headers(method, url, body).await?.0)
    }

    /// `send`, answering the answer's headers too.
    pub async fn send_for_headers(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<(Value, reqwest::header::HeaderMap), CliError> {
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(CliError::from_answer(
                status.as_u16(),
                &text,
                self.token.is_some(),
            ));
        }
        if text.trim().is_empty() {
            return Ok((Value::Null, headers));
        }
        let value = serde_json::from_str(&text)
            .map_err(|e| CliError::Other(format!("the server's answer is not JSON: {e}")))?;
        Ok((value, headers))
    }

    fn transport(&self, e: reqwest::Error) -> CliError {
        // The innermost cause says what happened ("Connection refused").
        let mut cause: &dyn std::error::Error = &e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        if e.is_connect() {
            CliError::Connect(format!("{}: {cause}", self.base))
        } else {
            CliError::Other(format!("{e}: {cause}"))
        }
    }
}
