"""Fixtures: the real mlhook binary (path in MLHOOK_BIN) serving on a free
loopback port with a fresh data directory for the test run, loopback HTTP
receivers for its deliveries, and both clients (sync, and async driven from
these synchronous tests) so every test runs against each."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import httpx
import pytest

import mlhook

ADMIN = "python-client-test-admin-token"


@dataclass
class Service:
    base: str
    data_dir: Path

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    binary = os.environ.get("MLHOOK_BIN")
    if not binary:
        pytest.fail("MLHOOK_BIN must name the mlhook binary (tests/it/python_client.rs sets it)")
    data_dir = tmp_path_factory.mktemp("mlhook") / "data"
    data_dir.mkdir()
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
         "--allow-network", "127.0.0.0/8", "--retry-schedule", "100ms,200ms",
         "--retry-jitter", "0"],
        env={**os.environ, "MLHOOK_ADMIN_TOKEN": ADMIN, "MLHOOK_LOG": "info"},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
    )
    try:
        service = Service(_listening_address(process), data_dir)
        _wait_ready(service.base)
        yield service
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _listening_address(process: subprocess.Popen[bytes]) -> str:
    """The address the service prints; stdout is drained after it."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("mlhook listening on "):
                found.put(line.removeprefix("mlhook listening on "))

    threading.Thread(target=read, daemon=True).start()
    try:
        return found.get(timeout=30)
    except queue.Empty:
        raise RuntimeError("mlhook did not print its address within 30 s") from None


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("mlhook never became ready")


# ---- the clients ----


class Blocking:
    """An `AsyncClient` (or one of its resources) called from synchronous
    tests: coroutines run on a private loop, async page iterators are read to
    the end. It goes through the async code paths for real."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return lambda *a, **k: self._loop.run_until_complete(value(*a, **k))
        if inspect.ismethod(value):
            return lambda *a, **k: self._wrap(value(*a, **k))
        return self._wrap(value)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, mlhook.AsyncPageIterator):
            return BlockingPages(value, self._loop)
        if hasattr(value, "_t"):
            return Blocking(value, self._loop)
        return value


class BlockingPages:
    def __init__(self, pages: mlhook.AsyncPageIterator[Any], loop: asyncio.AbstractEventLoop):
        self._pages = pages
        self._loop = loop

    def pages(self) -> Iterator[mlhook.Page[Any]]:
        async def collect() -> list[mlhook.Page[Any]]:
            return [page async for page in self._pages.pages()]

        return iter(self._loop.run_until_complete(collect()))

    def __iter__(self) -> Iterator[Any]:
        async def collect() -> list[Any]:
            return [item async for item in self._pages]

        return iter(self._loop.run_until_complete(collect()))


ClientFactory = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """Builds clients of the parametrized kind; closes them afterwards."""
    made: list[Any] = []
    loop = asyncio.new_event_loop()

    def make(url: Optional[str] = None, token: Optional[str] = None, **options: Any) -> Any:
        if request.param == "sync":
            client = mlhook.Client(url, token, **options)
            made.append(client.close)
            return client
        async_client = mlhook.AsyncClient(url, token, **options)
        made.append(lambda: loop.run_until_complete(async_client.close()))
        return Blocking(async_client, loop)

    yield make
    for close in made:
        close()
    loop.close()


@pytest.fixture
def admin(service: Service, make_client: ClientFactory) -> Any:
    return make_client(service.base, ADMIN)


@pytest.fixture
def project(admin: Any) -> str:
    name = f"py-{uuid.uuid4().hex[:12]}"
    admin.projects.create(name, f"Python client test {name}")
    return name


# ---- loopback receivers ----


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


def _lowered(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


class Receiver:
    """A loopback HTTP server that records each request and answers from a
    script (`replies`, one per request, then `default`)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._changed:
                    receiver.requests.append(
                        Received(self.command, self.path, _lowered(self.headers.items()), body)
                    )
                    reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                    receiver._changed.notify_all()
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} requests received, {count} expected")
            return list(self.requests)

    def json_reply(self, status: int, body: Any, headers: Optional[dict[str, str]] = None) -> Reply:
        all_headers = {"content-type": "application/json", **(headers or {})}
        return Reply(status, all_headers, json.dumps(body).encode())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def stub() -> Iterator[Receiver]:
    """A stand-in for the service, for answers it cannot be made to give."""
    r = Receiver()
    yield r
    r.close()


def eventually(read: Callable[[], Any], accept: Callable[[Any], bool], timeout: float = 15) -> Any:
    """`read()` again until `accept` takes its result (the service records an
    attempt just after the receiver has answered it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not as expected after {timeout} s: {value!r}")
        time.sleep(0.05)
