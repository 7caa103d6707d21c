"""Errors and retries: the API's errors as exceptions, 429 and 503 retried
after `Retry-After` a bounded number of times, timeouts, unreachable
services. A stub stands in for the service where it cannot be made to give
an answer (a 503 and then a 202)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

import mlhook
from conftest import ClientFactory, Receiver, Reply, Service

UNAVAILABLE = {"error": {"code": "store_unavailable", "message": "the store is busy",
                         "details": []}}
ACCEPTED = {"id": "evt_stub", "deliveries": ["msg_stub"]}
PAYLOAD = {"project": "p", "data": {}}


def test_503_then_202_is_retried_with_the_same_request(
    stub: Receiver, make_client: ClientFactory
) -> None:
    stub.replies = [stub.json_reply(503, UNAVAILABLE, {"retry-after": "0"}),
                    stub.json_reply(202, ACCEPTED)]
    client = make_client(stub.url, "stub-token")
    sent = client.events.send("p", "execution_completed", PAYLOAD, idempotency_key="run-1")
    assert sent == {**ACCEPTED, "replayed": False}
    first, second = stub.wait_for(2)
    assert first.path == second.path == "/v1/projects/p/events"
    assert first.body == second.body
    assert json.loads(second.body)["idempotency_key"] == "run-1"
    assert second.headers["authorization"] == "Bearer stub-token"


def test_retry_after_is_honoured(stub: Receiver, make_client: ClientFactory) -> None:
    limited = {"error": {"code": "too_many_failed_authentications", "message": "slow down",
                         "details": []}}
    stub.replies = [stub.json_reply(429, limited, {"retry-after": "1"}),
                    stub.json_reply(200, {"data": []})]
    started = time.monotonic()
    assert make_client(stub.url, "t").webhooks.list("p") == []
    assert time.monotonic() - started >= 1.0
    assert len(stub.requests) == 2


def test_without_retry_after_the_backoff_waits(stub: Receiver, make_client: ClientFactory) -> None:
    stub.replies = [stub.json_reply(503, UNAVAILABLE), stub.json_reply(200, {"data": []})]
    started = time.monotonic()
    assert make_client(stub.url, "t").projects.list() == []
    assert time.monotonic() - started >= 0.25


def test_retries_are_bounded(stub: Receiver, make_client: ClientFactory) -> None:
    stub.default = stub.json_reply(503, UNAVAILABLE, {"retry-after": "0"})
    with pytest.raises(mlhook.UnavailableError) as error:
        make_client(stub.url, "t", max_retries=2).events.send("p", "TEST", {})
    assert len(stub.requests) == 3
    assert (error.value.status, error.value.code) == (503, "store_unavailable")
    assert error.value.message == "the store is busy" and error.value.retry_after == 0

    stub.requests.clear()
    with pytest.raises(mlhook.UnavailableError):
        make_client(stub.url, "t", max_retries=0).events.send("p", "TEST", {})
    assert len(stub.requests) == 1


def test_a_retry_after_too_long_is_not_waited_for(
    stub: Receiver, make_client: ClientFactory
) -> None:
    stub.default = stub.json_reply(503, UNAVAILABLE, {"retry-after": "3600"})
    started = time.monotonic()
    with pytest.raises(mlhook.UnavailableError) as error:
        make_client(stub.url, "t").events.send("p", "TEST", {})
    assert time.monotonic() - started < 5 and len(stub.requests) == 1
    assert error.value.retry_after == 3600


def test_other_errors_are_not_retried(stub: Receiver, make_client: ClientFactory) -> None:
    stub.default = stub.json_reply(409, {"error": {
        "code": "conflict", "message": "project exists", "field": "/id", "details": []}})
    with pytest.raises(mlhook.ConflictError) as error:
        make_client(stub.url, "t").projects.create("p", "P")
    assert (error.value.code, error.value.field) == ("conflict", "/id")
    assert len(stub.requests) == 1


def test_an_answer_not_in_the_error_shape(stub: Receiver, make_client: ClientFactory) -> None:
    stub.default = Reply(502, {"content-type": "text/html"}, b"<h1>Bad gateway</h1>")
    with pytest.raises(mlhook.ApiError) as error:
        make_client(stub.url, "t").projects.list()
    assert (error.value.status, error.value.code) == (502, "http_502")
    assert "Bad gateway" in error.value.message


def test_timeouts_are_configurable(stub: Receiver, make_client: ClientFactory) -> None:
    stub.default = Reply(200, {"content-type": "application/json"}, b'{"data": []}', delay=2.0)
    started = time.monotonic()
    with pytest.raises(mlhook.RequestTimeoutError):
        make_client(stub.url, "t", timeout=0.3).projects.list()
    assert time.monotonic() - started < 1.5


def test_an_unreachable_service(make_client: ClientFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(mlhook.TransportError) as error:
        make_client(f"http://127.0.0.1:{port}", "t").projects.list()
    assert "/v1/projects" in str(error.value)


def test_errors_of_the_real_service(
    admin: Any, project: str, service: Service, make_client: ClientFactory
) -> None:
    with pytest.raises(mlhook.ConflictError) as exists:
        admin.projects.create(project, "again")
    assert exists.value.code == "conflict" and exists.value.status == 409
    with pytest.raises(mlhook.BadRequestError) as bad:
        admin.webhooks.create(project, url="ftp://example.com/x", events=["TEST"])
    assert (bad.value.code, bad.value.field) == ("validation_failed", "/url")
    with pytest.raises(mlhook.BadRequestError) as unknown_type:
        admin.webhooks.create(project, url="http://127.0.0.1:9/x", events=["training_done"])
    assert unknown_type.value.field == "/events/0"
    later = admin.webhooks.create(
        project, url="http://127.0.0.1:9/x", events=["training_done"], allow_unknown=True
    )
    assert later["events"] == ["training_done"]
    with pytest.raises(mlhook.AuthenticationError) as stranger:
        make_client(service.base, "mlh_not_a_token").projects.list()
    assert stranger.value.code == "unauthorized"
    with pytest.raises(mlhook.NotFoundError):
        admin.events.get(project, "evt_0000")
