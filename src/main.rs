//! The `mlhook` command.

use clap::{CommandFactory, Parser, Subcommand};
use mlhook::config::{LogFormat, MigrateArgs, ServeArgs, ServeConfig};
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's allocator: glibc's malloc and free were a fifth of
/// the service's CPU in a delivery drain (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in mimalloc's
/// `mi_option_e` (the crate names only some options; its version is pinned
/// in Cargo.toml).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system this many milliseconds after it
/// was freed. mimalloc 3 waits 1,000 ms, and only purges when it is next
/// busy, so a burst of batch ingest left its pages resident long after;
/// 10 ms is mimalloc 2's default (figures in docs/performance.md).
const PURGE_DELAY_MS: std::os::raw::c_long = 10;

/// Arenas committed on demand, so that memory mimalloc frees goes back to the
/// system: with its default (committed at once, freed memory only marked
/// reusable) the service held 63–73 MB under `deliver` against 30–42 MB with
/// glibc; committed on demand, 33–48 MB. It must be set before the first
/// allocation reserves an arena, so it runs as a constructor, before the Rust
/// runtime starts (which allocates), and reads no environment (which would
/// allocate too).
extern "C" fn tune_allocator() {
    // SAFETY: each writes one entry of mimalloc's static option table; any value is valid.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

#[derive(Parser)]
#[command(
    name = "mlhook",
    version,
    about = "Durable, signed webhooks for machine-learning platforms",
    after_help = "Exit codes: 0 ok, 1 the API answered an error, 2 usage error, 3 cannot connect.\n\
                  Example: mlhook --url http://127.0.0.1:8080 --token \"$TOKEN\" --project fraud-team webhooks list"
)]
struct Cli {
    #[command(flatten)]
    global: mlhook::cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: REST API and delivery workers, on embedded SQLite by default.
    ///
    /// Example: mlhook serve --listen 127.0.0.1:8080 --data-dir ./mlhook-data
    Serve(ServeArgs),
    /// Apply the embedded database migrations and exit (serve applies them at
    /// start unless --skip-migrations).
    ///
    /// Example: mlhook migrate --database-url postgres://mlhook@db:5432/mlhook
    Migrate(MigrateArgs),
    #[command(flatten)]
    Client(mlhook::cli::Command),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Migrate(args) => run_migrate(args),
        Command::Client(command) => mlhook::cli::run(cli.global, command, Cli::command),
    }
}

fn run_serve(args: ServeArgs) -> std::process::ExitCode {
    let config = match ServeConfig::resolve(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(mlhook::server::serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_migrate(args: MigrateArgs) -> std::process::ExitCode {
    use mlhook::store::migrate::{Target, run};
    let url = match mlhook::config::Database::url(args.database_url) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| std::path::PathBuf::from("./mlhook-data"));
    let target = match &url {
        Some(url) => Target::Postgres(url),
        None => {
            if let Err(e) = std::fs::create_dir_all(&data_dir) {
                eprintln!("error: cannot create {}: {e}", data_dir.display());
                return std::process::ExitCode::FAILURE;
            }
            Target::Sqlite(&data_dir)
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(run(target)) {
        Ok(applied) if applied.is_empty() => {
            println!("migrations: up to date");
            std::process::ExitCode::SUCCESS
        }
        Ok(applied) => {
            let list: Vec<String> = applied.iter().map(i64::to_string).collect();
            println!("migrations applied: {}", list.join(", "));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `MLHOOK_LOG` (or `RUST_LOG`) sets the filter, default `info`.
fn init_logging(format: LogFormat) {
    let filter = std::env::var("MLHOOK_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(EnvFilter::new)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        // Each line carries its span's fields (request_id, delivery_id, …)
        // and those of the spans around it.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command a person can run shows, in its --help, how to run it.
    #[test]
    fn every_command_has_an_example_in_its_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let help = [sub.get_after_help(), sub.get_long_about()]
                    .into_iter()
                    .flatten()
                    .map(|text| text.to_string())
                    .collect::<String>();
                if !help.contains("Example") {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "mlhook", &mut missing);
        assert!(missing.is_empty(), "no example in: {missing:?}");
    }
}
