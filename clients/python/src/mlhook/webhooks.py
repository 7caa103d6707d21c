"""`client.webhooks`: create, read, change and delete webhooks; test them
(saved or not); their signing key and its rotation; stats and recovery."""

from __future__ import annotations

from typing import Optional

from typing_extensions import Unpack

from . import _operations as ops
from ._transport import AsyncTransport, Call, SyncTransport, data_answer, json_answer, no_answer
from .models import (
    CreatedWebhook,
    Recovered,
    RecoverInput,
    RotateInput,
    Scheme,
    SendOutcome,
    SigningKey,
    StatsView,
    TestInput,
    WebhookInput,
    WebhookPatch,
    WebhookView,
)


WebhookViews = list[WebhookView]


def _ids(project: str, webhook_id: str) -> dict[str, str]:
    return {"project": project, "id": webhook_id}


def _create(project: str, fields: WebhookInput) -> Call[CreatedWebhook]:
    return Call(ops.WEBHOOKS_CREATE, json_answer, {"project": project}, json=dict(fields))


def _list(project: str) -> Call[WebhookViews]:
    return Call(ops.WEBHOOKS_LIST, data_answer, {"project": project})


def _get(project: str, webhook_id: str) -> Call[WebhookView]:
    return Call(ops.WEBHOOKS_GET, json_answer, _ids(project, webhook_id))


def _update(project: str, webhook_id: str, changes: WebhookPatch) -> Call[WebhookView]:
    return Call(ops.WEBHOOKS_UPDATE, json_answer, _ids(project, webhook_id), json=dict(changes))


def _delete(project: str, webhook_id: str) -> Call[None]:
    return Call(ops.WEBHOOKS_DELETE, no_answer, _ids(project, webhook_id))


def _test(project: str, webhook_id: str, event_type: Optional[str]) -> Call[SendOutcome]:
    body: TestInput = {} if event_type is None else {"event_type": event_type}
    return Call(ops.WEBHOOKS_TEST, json_answer, _ids(project, webhook_id), json=body)


def _validate(project: str, fields: WebhookInput) -> Call[SendOutcome]:
    return Call(ops.WEBHOOKS_VALIDATE, json_answer, {"project": project}, json=dict(fields))


def _validate_changes(
    project: str, webhook_id: str, changes: WebhookPatch
) -> Call[SendOutcome]:
    return Call(
        ops.WEBHOOKS_VALIDATE_CHANGES, json_answer, _ids(project, webhook_id), json=dict(changes)
    )


def _signing_secret(project: str, webhook_id: str) -> Call[SigningKey]:
    return Call(ops.WEBHOOKS_SIGNING_SECRET, json_answer, _ids(project, webhook_id))


def _rotate(
    project: str, webhook_id: str, signing_scheme: Optional[Scheme], grace_period: Optional[str]
) -> Call[SigningKey]:
    body: RotateInput = {}
    if signing_scheme is not None:
        body["signing_scheme"] = signing_scheme
    if grace_period is not None:
        body["grace_period"] = grace_period
    return Call(ops.WEBHOOKS_ROTATE, json_answer, _ids(project, webhook_id), json=body)


def _stats(project: str, webhook_id: str) -> Call[StatsView]:
    return Call(ops.WEBHOOKS_STATS, json_answer, _ids(project, webhook_id))


def _recover(project: str, webhook_id: str, since: str, until: Optional[str]) -> Call[Recovered]:
    body: RecoverInput = {"since": since}
    if until is not None:
        body["until"] = until
    return Call(ops.WEBHOOKS_RECOVER, json_answer, _ids(project, webhook_id), json=body)


class Webhooks:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(self, project: str, **fields: Unpack[WebhookInput]) -> CreatedWebhook:
        """A webhook; the answer holds its `signing_secret` (`whsec_`, HMAC) or
        `signing_public_key` (`whpk_`, ed25519) for receivers to verify with."""
        return self._t.execute(_create(project, fields))

    def list(self, project: str) -> WebhookViews:
        return self._t.execute(_list(project))

    def get(self, project: str, webhook_id: str) -> WebhookView:
        return self._t.execute(_get(project, webhook_id))

    def update(self, project: str, webhook_id: str, **changes: Unpack[WebhookPatch]) -> WebhookView:
        """Changes the fields named; `secret=None` removes the secret."""
        return self._t.execute(_update(project, webhook_id, changes))

    def delete(self, project: str, webhook_id: str) -> None:
        self._t.execute(_delete(project, webhook_id))

    def test(
        self, project: str, webhook_id: str, event_type: Optional[str] = None
    ) -> SendOutcome:
        """Sends the family's test payload now; answers what was sent and got."""
        return self._t.execute(_test(project, webhook_id, event_type))

    def validate(self, project: str, **fields: Unpack[WebhookInput]) -> SendOutcome:
        """`test` for a configuration not saved yet; nothing is stored."""
        return self._t.execute(_validate(project, fields))

    def validate_changes(
        self, project: str, webhook_id: str, **changes: Unpack[WebhookPatch]
    ) -> SendOutcome:
        """`test` for the stored webhook with `changes` applied; nothing is stored."""
        return self._t.execute(_validate_changes(project, webhook_id, changes))

    def signing_secret(self, project: str, webhook_id: str) -> SigningKey:
        return self._t.execute(_signing_secret(project, webhook_id))

    def rotate(
        self,
        project: str,
        webhook_id: str,
        *,
        signing_scheme: Optional[Scheme] = None,
        grace_period: Optional[str] = None,
    ) -> SigningKey:
        """A new signing key; the old one signs too until `grace_period` ends."""
        return self._t.execute(_rotate(project, webhook_id, signing_scheme, grace_period))

    def stats(self, project: str, webhook_id: str) -> StatsView:
        return self._t.execute(_stats(project, webhook_id))

    def recover(
        self, project: str, webhook_id: str, since: str, until: Optional[str] = None
    ) -> Recovered:
        """Queues failed, exhausted and paused deliveries since then again."""
        return self._t.execute(_recover(project, webhook_id, since, until))


class AsyncWebhooks:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def create(self, project: str, **fields: Unpack[WebhookInput]) -> CreatedWebhook:
        return await self._t.execute(_create(project, fields))

    async def list(self, project: str) -> WebhookViews:
        return await self._t.execute(_list(project))

    async def get(self, project: str, webhook_id: str) -> WebhookView:
        return await self._t.execute(_get(project, webhook_id))

    async def update(
        self, project: str, webhook_id: str, **changes: Unpack[WebhookPatch]
    ) -> WebhookView:
        return await self._t.execute(_update(project, webhook_id, changes))

    async def delete(self, project: str, webhook_id: str) -> None:
        await self._t.execute(_delete(project, webhook_id))

    async def test(
        self, project: str, webhook_id: str, event_type: Optional[str] = None
    ) -> SendOutcome:
        return await self._t.execute(_test(project, webhook_id, event_type))

    async def validate(self, project: str, **fields: Unpack[WebhookInput]) -> SendOutcome:
        return await self._t.execute(_validate(project, fields))

    async def validate_changes(
        self, project: str, webhook_id: str, **changes: Unpack[WebhookPatch]
    ) -> SendOutcome:
        return await self._t.execute(_validate_changes(project, webhook_id, changes))

    async def signing_secret(self, project: str, webhook_id: str) -> SigningKey:
        return await self._t.execute(_signing_secret(project, webhook_id))

    async def rotate(
        self,
        project: str,
        webhook_id: str,
        *,
        signing_scheme: Optional[Scheme] = None,
        grace_period: Optional[str] = None,
    ) -> SigningKey:
        return await self._t.execute(_rotate(project, webhook_id, signing_scheme, grace_period))

    async def stats(self, project: str, webhook_id: str) -> StatsView:
        return await self._t.execute(_stats(project, webhook_id))

    async def recover(
        self, project: str, webhook_id: str, since: str, until: Optional[str] = None
    ) -> Recovered:
        return await self._t.execute(_recover(project, webhook_id, since, until))
