//! Where the client finds its server, token and project: flags, then
//! `MLHOOK_URL`/`MLHOOK_TOKEN`/`MLHOOK_PROJECT`, then a profile saved by
//! `mlhook login` in `<config dir>/mlhook/config.toml` (mode 0600), then the
//! quick-start default.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Global;
use super::client::CliError;

/// The address `mlhook serve` listens on by default (`config::ServeConfig`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_PROFILE: &str = "default";

/// The profile file: `[profiles.NAME]` tables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// What a command talks to, resolved.
#[derive(Debug, Clone)]
pub struct Connection {
    pub url: String,
    pub token: Option<String>,
    pub project: Option<String>,
}

pub fn path() -> Result<PathBuf, CliError> {
    dirs::config_dir()
        .map(|dir| dir.join("mlhook").join("config.toml"))
        .ok_or_else(|| CliError::Usage("no configuration directory for this user".into()))
}

/// The profile file, or an empty one when there is none yet.
pub fn load() -> Result<ProfileFile, CliError> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileFile::default()),
        Err(e) => return Err(CliError::Other(format!("{}: {e}", path.display()))),
    };
    toml::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// Writes the file readable by its owner only: it holds tokens.
pub fn save(file: &ProfileFile) -> Result<PathBuf, CliError> {
    let path = path()?;
    let io = |e: std::io::Error| CliError::Other(format!("{}: {e}", path.display()));
    let text = toml::to_string(file).map_err(|e| CliError::Other(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode on open: narrow it first.
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    let mut out = options.open(&path).map_err(io)?;
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(path)
}

/// The profile `--profile` names (default "default"); naming one that does
/// not exist is an error, lacking the default one is not.
pub fn selected(global: &Global) -> Result<Profile, CliError> {
    let named = global.profile.as_deref().filter(|s| !s.is_empty());
    let name = named.unwrap_or(DEFAULT_PROFILE);
    let mut file = load()?;
    match file.profiles.remove(name) {
        Some(profile) => Ok(profile),
        None if named.is_none() => Ok(Profile::default()),
        None => Err(CliError::Usage(format!(
            "no profile {name:?} in {}: create it with `mlhook login --profile {name}`",
            path()?.display()
        ))),
    }
}

/// Flag > environment (both given by clap) > profile > default.
pub fn resolve(global: &Global) -> Result<Connection, CliError> {
    let profile = selected(global)?;
    // An empty flag or variable (MLHOOK_TOKEN=) counts as not given.
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    Ok(Connection {
        url: given(&global.url)
            .or(profile.url)
            .unwrap_or_else(|| DEFAULT_URL.to_string()),
        token: given(&global.token).or(profile.token),
        project: given(&global.project).or(profile.project),
    })
}
