"""Every method of both clients once, against the real service."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import mlhook
from conftest import ADMIN, ClientFactory, Receiver, Service, eventually

EXECUTION = {"project": "churn-training", "data": {"valohai.execution-counter": 7}}


def webhook_for(admin: Any, project: str, receiver: Receiver, **fields: Any) -> Any:
    fields.setdefault("events", ["execution_completed"])
    return admin.webhooks.create(project, url=f"{receiver.url}/hooks", **fields)


def test_projects(admin: Any, project: str) -> None:
    assert admin.projects.get(project)["id"] == project
    assert project in [p["id"] for p in admin.projects.list()]
    renamed = admin.projects.update(project, name="Renamed", link_base_url="https://app.example")
    assert (renamed["name"], renamed["link_base_url"]) == ("Renamed", "https://app.example")
    assert admin.projects.update(project, link_base_url=None).get("link_base_url") is None
    actions = [entry["action"] for entry in admin.projects.audit(project)]
    assert actions[-1] == "project.created" and "project.updated" in actions
    admin.projects.delete(project)
    with pytest.raises(mlhook.NotFoundError) as missing:
        admin.projects.get(project)
    assert missing.value.code == "not_found" and missing.value.status == 404


def test_tokens(admin: Any, project: str, service: Service, make_client: ClientFactory) -> None:
    created = admin.tokens.create(project, name="ci", kind="read")
    assert created["kind"] == "read" and created["token"].startswith(created["prefix"])
    listed = {t["id"]: t for t in admin.tokens.list(project)}
    assert listed[created["id"]]["name"] == "ci" and "token" not in listed[created["id"]]

    reader = make_client(service.base, created["token"])
    assert reader.webhooks.list(project) == []
    with pytest.raises(mlhook.PermissionDeniedError) as denied:
        reader.events.send(project, "execution_completed", EXECUTION)
    assert denied.value.code == "forbidden"

    admin.tokens.revoke(project, created["id"])
    with pytest.raises(mlhook.AuthenticationError) as revoked:
        reader.webhooks.list(project)
    assert revoked.value.code == "unauthorized" and revoked.value.status == 401


def test_event_types(admin: Any) -> None:
    names = [t["name"] for t in admin.event_types.list()]
    assert {"MODEL_VERSION_CREATED", "execution_completed"} <= set(names)
    kind = admin.event_types.get("execution_completed")
    assert kind["family"] == "executions" and kind["schema"]["required"] == ["project", "data"]
    assert admin.event_types.validate("execution_completed", kind["example"])["valid"] is True
    check = admin.event_types.validate("execution_completed", {"data": {}})
    assert check["valid"] is False
    assert [v["field"] for v in check["violations"]] == ["/payload"]
    assert "project" in check["violations"][0]["message"]
    with pytest.raises(mlhook.NotFoundError):
        admin.event_types.get("NO_SUCH_TYPE")


def test_webhooks(admin: Any, project: str, receiver: Receiver) -> None:
    created = webhook_for(
        admin, project, receiver, name="training runs",
        headers=[{"key": "X-Api-Key", "value": "k-secret", "protected": True}],
    )
    hook = created["id"]
    assert created["signing_secret"].startswith("whsec_")
    assert created["headers"] == [{"key": "X-Api-Key", "protected": True}]
    assert admin.webhooks.get(project, hook)["name"] == "training runs"
    assert [w["id"] for w in admin.webhooks.list(project)] == [hook]
    key = admin.webhooks.signing_secret(project, hook)
    assert key["signing_secret"] == created["signing_secret"]

    updated = admin.webhooks.update(project, hook, description="every run", enabled=False)
    assert (updated["description"], updated["enabled"]) == ("every run", False)

    tested = admin.webhooks.test(project, hook)
    assert tested["valid"] is True and tested["delivery_id"]
    assert tested["request"]["headers"]["x-api-key"] == "********"
    unsaved = admin.webhooks.validate(project, url=f"{receiver.url}/new", events=["TEST"])
    assert unsaved["valid"] is True and unsaved["delivery_id"] is None
    changed = admin.webhooks.validate_changes(project, hook, url=f"{receiver.url}/edited")
    assert changed["valid"] is True
    paths = [r.path for r in receiver.wait_for(3)]
    assert paths == ["/hooks", "/new", "/edited"]
    assert receiver.requests[0].headers["x-api-key"] == "k-secret"

    rotated = admin.webhooks.rotate(project, hook, grace_period="1h")
    # The rotation answer holds no secret: the new one is asked for.
    assert "signing_secret" not in rotated
    assert rotated["previous_key_expires_at"]
    new_secret = admin.webhooks.signing_secret(project, hook)["signing_secret"]
    assert new_secret not in (None, created["signing_secret"])
    to_ed25519 = admin.webhooks.rotate(project, hook, signing_scheme="ed25519", grace_period="0s")
    assert to_ed25519["signing_scheme"] == "ed25519"
    assert to_ed25519["signing_public_key"].startswith("whpk_")

    stats = admin.webhooks.stats(project, hook)
    assert stats["webhook_id"] == hook and stats["last_day"]["succeeded"] >= 0
    with pytest.raises(mlhook.ConflictError, match="disabled"):
        admin.webhooks.recover(project, hook, since="1h")
    admin.webhooks.update(project, hook, enabled=True)
    assert admin.webhooks.recover(project, hook, since="1h")["recovered"] == 0
    admin.webhooks.delete(project, hook)
    with pytest.raises(mlhook.NotFoundError):
        admin.webhooks.get(project, hook)


def test_events(admin: Any, project: str, receiver: Receiver) -> None:
    hook = webhook_for(admin, project, receiver)["id"]
    sent = admin.events.send(project, "execution_completed", EXECUTION, idempotency_key="run-7")
    assert sent["id"].startswith("evt_") and len(sent["deliveries"]) == 1
    assert sent["replayed"] is False
    again = admin.events.send(project, "execution_completed", EXECUTION, idempotency_key="run-7")
    assert (again["id"], again["replayed"]) == (sent["id"], True)
    assert json.loads(receiver.wait_for(1)[0].body)["data"] == EXECUTION["data"]
    other = {**EXECUTION, "data": {"valohai.execution-counter": 8}}
    with pytest.raises(mlhook.UnprocessableError) as reused:
        admin.events.send(project, "execution_completed", other, idempotency_key="run-7")
    assert (reused.value.status, reused.value.code) == (422, "idempotency_key_reused")
    assert reused.value.field == "/idempotency_key"

    detail = admin.events.get(project, sent["id"])
    assert detail["type"] == "execution_completed"
    assert [d["webhook_id"] for d in detail["deliveries"]] == [hook]

    batch = admin.events.send_batch(
        project, [{"type": "execution_completed", "payload": EXECUTION}] * 3
    )
    assert len(batch["events"]) == 3
    listed = [e["id"] for e in admin.events.list(project, event_type="execution_completed")]
    assert listed[-1] == sent["id"] and len(listed) == 4

    replayed = admin.events.replay(project, sent["id"])
    assert replayed["id"] == sent["id"] and replayed["deliveries"] != sent["deliveries"]
    receiver.wait_for(5)


def test_events_refused_name_the_field(admin: Any, project: str) -> None:
    with pytest.raises(mlhook.BadRequestError) as bad:
        admin.events.send(project, "execution_completed", {"project": 3, "data": {}})
    assert bad.value.code == "validation_failed" and bad.value.field == "/payload/project"
    assert bad.value.details[0]["field"] == "/payload/project"
    assert "string" in bad.value.message
    with pytest.raises(mlhook.BadRequestError) as batch:
        admin.events.send_batch(project, [
            {"type": "execution_completed", "payload": EXECUTION},
            {"type": "execution_completed", "payload": {"project": 3, "data": {}}},
        ])
    assert batch.value.field == "/events/1/payload/project"
    assert list(admin.events.list(project)) == []


def test_deliveries(admin: Any, project: str, receiver: Receiver) -> None:
    hook = webhook_for(
        admin, project, receiver,
        headers=[{"key": "X-Api-Key", "value": "k-secret", "protected": True}],
    )["id"]
    sent = admin.events.send(project, "execution_completed", EXECUTION)
    receiver.wait_for(1)
    delivery = sent["deliveries"][0]
    listed = list(admin.deliveries.list(project, webhook_id=hook, event_id=sent["id"]))
    assert [d["id"] for d in listed] == [delivery]
    detail = eventually(
        lambda: admin.deliveries.get(project, delivery), lambda d: d["status"] == "succeeded"
    )
    assert detail["history"][0]["request"]["headers"]["x-api-key"] == "********"
    outcome = admin.deliveries.redeliver(project, delivery)
    assert outcome["valid"] is True and outcome["response"]["status"] == 204
    assert len(receiver.wait_for(2)) == 2
    assert list(admin.deliveries.list(project, status="failed")) == []


def test_sources(admin: Any, project: str) -> None:
    created = admin.sources.create(project, name="registry", secret="mlflow-secret-0123456789")
    assert created["secret_set"] is True and created["url"].endswith(f"{created['id']}/mlflow")
    assert "secret" not in admin.sources.get(project, created["id"])
    assert [s["id"] for s in admin.sources.list(project)] == [created["id"]]
    assert admin.sources.log(project, created["id"], limit=10) == []
    changed = admin.sources.update(
        project, created["id"], name="registry prod", secret="mlflow-secret-9876543210",
        secret_grace_period="5m",
    )
    assert changed["name"] == "registry prod"
    assert changed.get("previous_secret_expires_at")
    assert "mlflow-secret" not in str(changed)
    admin.sources.delete(project, created["id"])
    with pytest.raises(mlhook.NotFoundError):
        admin.sources.get(project, created["id"])


def test_formats(admin: Any) -> None:
    assert "slack" in [f["format"] for f in admin.formats.list()]
    preview = admin.formats.preview(format="slack", events=["MODEL_VERSION_CREATED"])
    assert preview["event_type"] == "MODEL_VERSION_CREATED" and json.loads(preview["body"])


def test_url_and_token_from_the_environment(
    service: Service, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLHOOK_URL", service.base)
    monkeypatch.setenv("MLHOOK_TOKEN", ADMIN)
    assert "MODEL_VERSION_CREATED" in [t["name"] for t in make_client().event_types.list()]
    monkeypatch.delenv("MLHOOK_TOKEN")
    with pytest.raises(mlhook.ConfigurationError, match="MLHOOK_TOKEN"):
        make_client()


def test_the_clients_as_context_managers(service: Service) -> None:
    with mlhook.Client(service.base, ADMIN) as client:
        assert client.url == service.base
        assert client.event_types.get("TEST")["family"] == "test"

    async def main() -> list[str]:
        async with mlhook.AsyncClient(service.base, ADMIN) as client:
            name = f"py-async-{client.url.rsplit(':', 1)[1]}"
            await client.projects.create(name, "Async")
            sent = await client.events.send(name, "execution_completed", EXECUTION)
            events = [e["id"] async for e in client.events.list(name)]
            await client.projects.delete(name)
            return [sent["id"]] + events

    sent, *listed = asyncio.run(main())
    assert listed == [sent]
