//! Start-up without MLHOOK_ADMIN_TOKEN: the admin token is generated once,
//! written 0600, stored hashed; a second process on the same data directory
//! is refused.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

/// Starts `mlhook serve` on `dir` without an admin token in the environment;
/// answers the child, its base URL and the lines printed before listening.
fn start(dir: &std::path::Path) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("MLHOOK_ADMIN_TOKEN")
        .env("MLHOOK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("mlhook printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("mlhook listening on ") {
            break addr.to_string();
        }
        printed.push(line);
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, base, printed)
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn the_admin_token_is_generated_once_written_0600_and_stored_hashed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (child, base, printed) = start(&dir);
    let path = dir.join("admin-token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(token.starts_with("mlh_") && token.len() > 40, "{token}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Not a terminal: the path is printed, the token is not.
    assert!(
        printed.iter().any(|l| l.contains("admin-token")),
        "{printed:?}"
    );
    assert!(!printed.iter().any(|l| l.contains(&token)), "{printed:?}");

    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{base}/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = client
        .get(format!("{base}/v1/projects"))
        .bearer_auth("mlh_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    // A second process on the same directory is refused: it would send twice.
    let second = Command::new(env!("CARGO_BIN_EXE_mlhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("MLHOOK_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another mlhook process"),
        "{second:?}"
    );
    stop(child);

    // The clear token is nowhere in the database files.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("mlhook.db") {
            let bytes = std::fs::read(entry.path()).unwrap();
            let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
            assert!(!found, "clear token in {:?}", entry.path());
        }
    }

    // A restart keeps the token and does not make a new one.
    let (child, base, printed) = start(&dir);
    assert!(printed.is_empty(), "{printed:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    let again = client
        .get(format!("{base}/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    stop(child);
}
