//! Fault suite, slow clients: thousands of connections that send part of a
//! request head and then nothing. The cap on connections closes the oldest
//! ones, the header-read timeout the rest, `/healthz` keeps answering fast
//! and the service's memory stays bounded.

use crate::common::*;
use futures::StreamExt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Partial connections opened: a few times the cap, within the test's file
/// descriptors (the service holds at most the cap of them).
const SLOW_CLIENTS: usize = 4000;
/// The default `--max-connections`.
const MAX_CONNECTIONS: usize = 1024;
const SLOW_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: mlhook\r\nX-Slow: ";
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// The service's resident memory, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One `GET /healthz` on a fresh connection: its status and how long it took.
async fn healthz(server: &Server) -> (u16, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let response = client
        .get(format!("{}/healthz", server.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("healthz answers");
    (response.status().as_u16(), started.elapsed())
}

/// A connection that sends `head` (part of a request head) and then nothing.
fn slow_client(address: &str, head: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(head).unwrap();
    stream.set_nonblocking(true).unwrap();
    stream
}

/// Whether the service has closed `stream`: a read sees end of file or a reset.
fn closed(mut stream: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_leave_health_answering_and_memory_bounded() {
    // A long header-read timeout: here the cap alone must hold the line.
    let server = Server::start_with(&flags(&["--header-read-timeout", "5m"])).await;
    let idle_rss = rss_kib(server.pid());
    let address = server.base.trim_start_matches("http://").to_string();
    // Opened many at a time, as a flood comes.
    let slow: Vec<TcpStream> = futures::stream::iter(0..SLOW_CLIENTS)
        .map(|_| {
            let address = address.clone();
            async move {
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                // A request head that never ends.
                stream.write_all(SLOW_HEAD).await.unwrap();
                stream.into_std().unwrap()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    for _ in 0..5 {
        let (status, took) = healthz(&server).await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_millis(100),
            "/healthz took {took:?} beside {SLOW_CLIENTS} slow clients"
        );
    }
    let rss = rss_kib(server.pid());
    assert!(
        rss < RSS_LIMIT_KIB,
        "RSS {rss} KiB (idle: {idle_rss} KiB) beside {SLOW_CLIENTS} slow clients"
    );
    // The cap: the oldest were closed, the newest are still open.
    let still_open = slow.iter().filter(|s| !closed(s)).count();
    assert!(
        still_open <= MAX_CONNECTIONS,
        "{still_open} slow connections open beyond the cap of {MAX_CONNECTIONS}"
    );
    assert!(still_open > 0, "the newest slow clients keep their place");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let server = Server::start_with(&flags(&["--header-read-timeout", "1s"])).await;
    let address = server.base.trim_start_matches("http://").to_string();
    // Connected and never a byte: not even HTTP/1 or HTTP/2 can be told yet.
    let silent = slow_client(&address, b"");
    // A keep-alive connection idle after its answer.
    let mut idle = TcpStream::connect(&address).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: mlhook\r\n\r\n")
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = idle.read(&mut answer).unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    idle.set_nonblocking(true).unwrap();
    // Part of a second request head, sent after the first answer.
    let mut partial = TcpStream::connect(&address).unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: mlhook\r\n\r\nGET /healthz HTTP/1.1\r\n")
        .unwrap();
    partial.set_nonblocking(true).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = [&silent, &idle, &partial];
    assert!(all.iter().all(|s| !closed(s)), "closed before the timeout");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !all.iter().all(|s| closed(s)) {
        assert!(Instant::now() < deadline, "still open after the timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
