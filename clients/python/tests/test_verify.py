"""`mlhook.verify` against real deliveries of the service, both schemes,
across key rotations, and against the PyPI `standardwebhooks` verifier for
`v1` (a cross-check by another implementation, used by tests only)."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
import standardwebhooks

import mlhook
from conftest import Receiver, Received

PAYLOAD = {"project": "churn-training", "data": {"valohai.execution-counter": 7}}


def deliver(admin: Any, project: str, receiver: Receiver) -> Received:
    """Sends an event and answers the request the receiver got for it."""
    before = len(receiver.requests)
    admin.events.send(project, "execution_completed", PAYLOAD)
    return receiver.wait_for(before + 1)[before]


def title_case(headers: dict[str, str]) -> dict[str, str]:
    """`Webhook-Signature`, as some frameworks present names."""
    return {name.title(): value for name, value in headers.items()}


def signatures(request: Received) -> list[str]:
    return request.headers["webhook-signature"].split()


def hook(admin: Any, project: str, receiver: Receiver, **fields: Any) -> Any:
    return admin.webhooks.create(project, url=receiver.url, events=["execution_completed"],
                                 **fields)


def test_hmac_v1_deliveries(admin: Any, project: str, receiver: Receiver) -> None:
    secret = hook(admin, project, receiver)["signing_secret"]
    request = deliver(admin, project, receiver)
    assert [s.split(",")[0] for s in signatures(request)] == ["v1"]

    mlhook.verify(title_case(request.headers), request.body, secret)
    mlhook.verify(request.headers, request.body.decode(), [secret])
    assert standardwebhooks.Webhook(secret).verify(request.body, request.headers) == {
        **PAYLOAD, "title": "Execution finished: churn-training (completed)",
        "type": "execution_completed",
    }

    tampered = request.body.replace(b"churn", b"chirn")
    with pytest.raises(mlhook.WebhookVerificationError, match="no signature"):
        mlhook.verify(request.headers, tampered, secret)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(tampered, request.headers)
    other = "whsec_" + base64.b64encode(b"k" * 32).decode()
    with pytest.raises(mlhook.WebhookVerificationError):
        mlhook.verify(request.headers, request.body, other)


def test_ed25519_v1a_deliveries(admin: Any, project: str, receiver: Receiver) -> None:
    created = hook(admin, project, receiver, signing_scheme="ed25519")
    public = created["signing_public_key"]
    assert public.startswith("whpk_") and created.get("signing_secret") is None
    request = deliver(admin, project, receiver)
    assert [s.split(",")[0] for s in signatures(request)] == ["v1a"]

    mlhook.verify(title_case(request.headers), request.body, public)
    with pytest.raises(mlhook.WebhookVerificationError):
        mlhook.verify(request.headers, request.body + b" ", public)
    # A v1a signature is no HMAC, whatever the secret.
    hmac_secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    with pytest.raises(mlhook.WebhookVerificationError):
        mlhook.verify(request.headers, request.body, hmac_secret)


def test_during_a_rotation_either_key_verifies(
    admin: Any, project: str, receiver: Receiver
) -> None:
    created = hook(admin, project, receiver)
    old = created["signing_secret"]
    admin.webhooks.rotate(project, created["id"], grace_period="1h")
    new = admin.webhooks.signing_secret(project, created["id"])["signing_secret"]
    request = deliver(admin, project, receiver)
    assert len(signatures(request)) == 2
    for key in (old, new):
        mlhook.verify(request.headers, request.body, key)
        standardwebhooks.Webhook(key).verify(request.body, request.headers)

    # Across schemes: the old HMAC secret and the new ed25519 public key.
    public = admin.webhooks.rotate(
        project, created["id"], signing_scheme="ed25519", grace_period="1h"
    )["signing_public_key"]
    request = deliver(admin, project, receiver)
    assert sorted(s.split(",")[0] for s in signatures(request)) == ["v1", "v1a"]
    mlhook.verify(request.headers, request.body, public)
    mlhook.verify(request.headers, request.body, new)
    mlhook.verify(request.headers, request.body, [old, public])

    # No grace period: only the newest key signs.
    admin.webhooks.rotate(project, created["id"], signing_scheme="hmac_sha256", grace_period="0s")
    newest = admin.webhooks.signing_secret(project, created["id"])["signing_secret"]
    request = deliver(admin, project, receiver)
    assert len(signatures(request)) == 1
    mlhook.verify(request.headers, request.body, newest)
    with pytest.raises(mlhook.WebhookVerificationError):
        mlhook.verify(request.headers, request.body, public)


def test_the_timestamp_tolerance(admin: Any, project: str, receiver: Receiver) -> None:
    secret = hook(admin, project, receiver)["signing_secret"]
    request = deliver(admin, project, receiver)
    sent = int(request.headers["webhook-timestamp"])
    assert abs(sent - time.time()) < 60
    mlhook.verify(request.headers, request.body, secret, now=sent + 300)
    with pytest.raises(mlhook.WebhookVerificationError, match="too old"):
        mlhook.verify(request.headers, request.body, secret, now=sent + 301)
    with pytest.raises(mlhook.WebhookVerificationError, match="future"):
        mlhook.verify(request.headers, request.body, secret, now=sent - 301)
    mlhook.verify(request.headers, request.body, secret, now=sent + 3000, tolerance=3600)


def test_missing_headers_and_malformed_keys(
    admin: Any, project: str, receiver: Receiver
) -> None:
    secret = hook(admin, project, receiver)["signing_secret"]
    request = deliver(admin, project, receiver)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = {k: v for k, v in request.headers.items() if k != name}
        with pytest.raises(mlhook.WebhookVerificationError, match=name):
            mlhook.verify(headers, request.body, secret)
    for key in ("not-a-key", "whsec_***", "whpk_" + base64.b64encode(b"short").decode(), []):
        with pytest.raises(ValueError):
            mlhook.verify(request.headers, request.body, key)
