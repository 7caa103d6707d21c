"""`client.events`: send ML events (one, or a batch stored all or nothing),
read them with their deliveries, and replay them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional, Sequence, Union

import httpx

from . import _operations as ops
from ._pagination import AsyncPageIterator, Page, PageIterator, page_answer
from ._transport import AsyncTransport, Call, SyncTransport, json_answer
from .models import (
    AcceptedView,
    BatchAccepted,
    EventDetail,
    EventInput,
    EventView,
    ObjectRef,
    SentEvent,
)

#: An RFC 3339 time, a duration ago (`"2h"`) or a datetime.
Since = Union[str, datetime]


def _send(
    project: str,
    type: str,
    payload: Any,
    idempotency_key: Optional[str],
    object: Optional[ObjectRef],
) -> Call[SentEvent]:
    body: EventInput = {"type": type, "payload": payload}
    if object is not None:
        body["object"] = object
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    return Call(ops.EVENTS_SEND, _sent, {"project": project}, json=body)


def _sent(response: httpx.Response) -> SentEvent:
    body = response.json()
    replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
    return {"id": body["id"], "deliveries": body["deliveries"], "replayed": replayed}


def _send_batch(project: str, events: Sequence[EventInput]) -> Call[BatchAccepted]:
    body = {"events": list(events)}
    return Call(ops.EVENTS_SEND_BATCH, json_answer, {"project": project}, json=body)


def _list(
    project: str,
    event_type: Optional[str],
    since: Optional[Since],
    until: Optional[Since],
    page_size: Optional[int],
    cursor: Optional[str],
) -> Call[Page[EventView]]:
    query = {
        "event_type": event_type,
        "since": since,
        "until": until,
        "limit": page_size,
        "cursor": cursor,
    }
    return Call(ops.EVENTS_LIST, page_answer, {"project": project}, query=query)


def _get(project: str, event_id: str) -> Call[EventDetail]:
    return Call(ops.EVENTS_GET, json_answer, {"project": project, "id": event_id})


def _replay(project: str, event_id: str) -> Call[AcceptedView]:
    return Call(ops.EVENTS_REPLAY, json_answer, {"project": project, "id": event_id})


class Events:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def send(
        self,
        project: str,
        type: str,
        payload: Any,
        idempotency_key: Optional[str] = None,
        *,
        object: Optional[ObjectRef] = None,
    ) -> SentEvent:
        """Stores the event with one delivery per matching webhook before it
        answers. The same `idempotency_key` within 24 hours answers the first
        event again (`replayed` is true) instead of storing a second one."""
        return self._t.execute(_send(project, type, payload, idempotency_key, object))

    def send_batch(self, project: str, events: Sequence[EventInput]) -> BatchAccepted:
        """1 to 1,000 events, all stored or none (a 400 names `/events/<i>/…`)."""
        return self._t.execute(_send_batch(project, events))

    def list(
        self,
        project: str,
        *,
        event_type: Optional[str] = None,
        since: Optional[Since] = None,
        until: Optional[Since] = None,
        page_size: Optional[int] = None,
    ) -> PageIterator[EventView]:
        """Events newest first, fetching page after page as the iteration goes."""
        return PageIterator(
            lambda cursor: self._t.execute(
                _list(project, event_type, since, until, page_size, cursor)
            )
        )

    def get(self, project: str, event_id: str) -> EventDetail:
        return self._t.execute(_get(project, event_id))

    def replay(self, project: str, event_id: str) -> AcceptedView:
        """Delivers the event again to the webhooks that match it now."""
        return self._t.execute(_replay(project, event_id))


class AsyncEvents:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def send(
        self,
        project: str,
        type: str,
        payload: Any,
        idempotency_key: Optional[str] = None,
        *,
        object: Optional[ObjectRef] = None,
    ) -> SentEvent:
        return await self._t.execute(_send(project, type, payload, idempotency_key, object))

    async def send_batch(self, project: str, events: Sequence[EventInput]) -> BatchAccepted:
        return await self._t.execute(_send_batch(project, events))

    def list(
        self,
        project: str,
        *,
        event_type: Optional[str] = None,
        since: Optional[Since] = None,
        until: Optional[Since] = None,
        page_size: Optional[int] = None,
    ) -> AsyncPageIterator[EventView]:
        return AsyncPageIterator(
            lambda cursor: self._t.execute(
                _list(project, event_type, since, until, page_size, cursor)
            )
        )

    async def get(self, project: str, event_id: str) -> EventDetail:
        return await self._t.execute(_get(project, event_id))

    async def replay(self, project: str, event_id: str) -> AcceptedView:
        return await self._t.execute(_replay(project, event_id))
