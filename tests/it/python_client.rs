//! The Python client (`clients/python`) against this build: mypy in strict
//! mode on the package, and the client's pytest suite, whose fixture starts
//! this build's `mlhook serve` on a free loopback port.
//!
//! The Python tools (httpx, cryptography, pytest, mypy, standardwebhooks, as
//! pinned in `clients/python/requirements-test.txt`) live in a virtualenv
//! that `scripts/test` makes: `/opt/mlhook-python-client-venv`, or the one
//! `MLHOOK_TEST_PYTHON_CLIENT_VENV` names. The tests import the client from
//! the source tree, not the copy installed there, so an edit is tested
//! without reinstalling. Without the virtualenv the tests fail, unless
//! `MLHOOK_TEST_PYTHON_CLIENT_SKIP` says why they cannot run (`scripts/test` sets
//! it when PyPI is unreachable); then they say SKIP and pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEFAULT_VENV: &str = "/opt/mlhook-python-client-venv";

/// The virtualenv's python, or why these tests are skipped.
fn venv_python() -> Result<PathBuf, String> {
    let venv = match std::env::var("MLHOOK_TEST_PYTHON_CLIENT_VENV") {
        Ok(venv) => PathBuf::from(venv),
        Err(_) => {
            if let Ok(reason) = std::env::var("MLHOOK_TEST_PYTHON_CLIENT_SKIP") {
                return Err(reason);
            }
            PathBuf::from(DEFAULT_VENV)
        }
    };
    let python = venv.join("bin").join("python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test, which makes the Python client's virtualenv \
         (or set MLHOOK_TEST_PYTHON_CLIENT_SKIP to the reason it cannot exist)",
        python.display()
    );
    Ok(python)
}

/// Said on the terminal itself: libtest captures `println!` of passing tests.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python")
}

/// `python args…` in `clients/python`, importing the client from `src`.
fn run(python: &Path, args: &[&str]) -> Output {
    let source = client_dir().join("src");
    let python_path = match std::env::var_os("PYTHONPATH") {
        Some(old) => std::env::join_paths([source.into_os_string(), old]).unwrap(),
        None => source.into_os_string(),
    };
    Command::new(python)
        .args(args)
        .current_dir(client_dir())
        .env("PYTHONPATH", python_path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("MLHOOK_BIN", env!("CARGO_BIN_EXE_mlhook"))
        .env_remove("MLHOOK_URL")
        .env_remove("MLHOOK_TOKEN")
        .output()
        .expect("the virtualenv's python runs")
}

fn report(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_python_client_type_checks_under_mypy_strict() {
    let python = match venv_python() {
        Ok(python) => python,
        Err(reason) => return say(&format!("SKIP the_python_client_type_checks: {reason}")),
    };
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-client-mypy-cache");
    let output = run(
        &python,
        &[
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            cache.to_str().unwrap(),
            "src/mlhook",
        ],
    );
    assert!(
        output.status.success(),
        "mypy --strict failed\n{}",
        report(&output)
    );
}

#[test]
fn the_python_client_suite_passes_against_this_build() {
    let python = match venv_python() {
        Ok(python) => python,
        Err(reason) => return say(&format!("SKIP the_python_client_suite: {reason}")),
    };
    // The suite must test the source tree, not a copy installed earlier.
    let imported = run(&python, &["-c", "import mlhook; print(mlhook.__file__)"]);
    let location = String::from_utf8_lossy(&imported.stdout);
    assert!(
        location
            .trim()
            .starts_with(client_dir().join("src").to_str().unwrap()),
        "mlhook is imported from {location}\n{}",
        report(&imported)
    );
    let output = run(
        &python,
        &["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
    );
    assert!(
        output.status.success(),
        "pytest failed\n{}",
        report(&output)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains(" passed") && !summary.contains(" skipped"),
        "every test ran\n{summary}"
    );
}
