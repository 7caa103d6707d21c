#!/usr/bin/env python3
"""A slow-client flood against a real `mlhook serve`, at full size, printing figures.

The test suite's `faults_slow_clients` opens 4,000 partial requests (a test
process's descriptors and CI's time bound it); this opens as many as asked
(20,000 by default) against the binary given, typically a release build:

    cargo build --release --bins
    python3 scripts/slow-clients.py target/release/mlhook [count]

Each client sends a request head that never ends. The service runs with a
long header-read timeout, so its connection cap alone must hold the line.
Printed: /healthz latency beside the flood (five calls), the service's RSS
and peak RSS, and how many slow connections the service still keeps open.
Traffic stays on 127.0.0.1.
"""

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: mlhook\r\nX-Slow: "


def start(binary: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
         "--header-read-timeout", "5m"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "MLHOOK_ADMIN_TOKEN": "slow-clients-admin-token-0123456789"},
    )
    for line in server.stdout:
        if line.startswith("mlhook listening on "):
            return server, line.removeprefix("mlhook listening on ").strip().removeprefix("http://")
    raise SystemExit("mlhook did not start")


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def healthz(address: str) -> tuple[int, float]:
    host, port = address.rsplit(":", 1)
    began = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: mlhook\r\nConnection: close\r\n\r\n")
        answer = conn.recv(64)
    took = time.perf_counter() - began
    return int(answer.split()[1]), took


def still_open(clients: list[socket.socket]) -> int:
    count = 0
    for client in clients:
        client.setblocking(False)
        try:
            if client.recv(1, socket.MSG_PEEK) == b"":
                continue  # closed by the service
        except BlockingIOError:
            pass  # nothing to read: still open
        except OSError:
            continue  # reset by the service
        count += 1
    return count


HOLDERS_PER_PROCESS = 10_000  # a process's descriptors are bounded (often 20,000)


def hold(address: str, count: int) -> None:
    """A child: opens `count` slow clients, says so, and on any input line
    prints how many the service still keeps open."""
    host, port = address.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
    clients = []
    for _ in range(count):
        client = socket.create_connection((host, int(port)))
        client.sendall(SLOW_HEAD)
        clients.append(client)
    print("ready", flush=True)
    sys.stdin.readline()
    print(still_open(clients), flush=True)


def main() -> None:
    if sys.argv[1] == "--hold":
        return hold(sys.argv[2], int(sys.argv[3]))
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    with tempfile.TemporaryDirectory() as data_dir:
        server, address = start(binary, data_dir)
        holders = []
        try:
            time.sleep(0.5)
            idle = status_kib(server.pid, "VmRSS")
            left = count
            while left > 0:
                share = min(left, HOLDERS_PER_PROCESS)
                holder = subprocess.Popen(
                    [sys.executable, __file__, "--hold", address, str(share)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )
                if holder.stdout.readline().strip() != "ready":
                    raise SystemExit("a holder could not open its slow clients")
                holders.append(holder)
                left -= share
            time.sleep(1)
            calls = [healthz(address) for _ in range(5)]
            rss = status_kib(server.pid, "VmRSS")
            peak = status_kib(server.pid, "VmHWM")
            open_now = 0
            for holder in holders:
                holder.stdin.write("count\n")
                holder.stdin.flush()
                open_now += int(holder.stdout.readline())
            print(f"slow clients opened        {count}")
            print(f"/healthz beside them       {', '.join(f'{s} in {t * 1000:.1f} ms' for s, t in calls)}")
            print(f"service RSS idle / now     {idle / 1024:.1f} / {rss / 1024:.1f} MiB")
            print(f"service peak RSS (VmHWM)   {peak / 1024:.1f} MiB")
            print(f"slow connections kept open {open_now}")
        finally:
            for holder in holders:
                holder.kill()
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
