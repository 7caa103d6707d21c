"""`client.event_types`: the catalog of built-in event types with their
schemas and examples, and a dry run of a payload against one."""

from __future__ import annotations

from typing import Any, Optional


from . import _operations as ops
from ._transport import AsyncTransport, Call, SyncTransport, data_answer, json_answer
from .models import EventType, PayloadCheck, PayloadInput

EventTypes_ = list[EventType]


def _list() -> Call[EventTypes_]:
    return Call(ops.EVENT_TYPES_LIST, data_answer)


def _get(name: str) -> Call[EventType]:
    return Call(ops.EVENT_TYPES_GET, json_answer, {"event_type": name})


def _validate(name: str, payload: Any, project: Optional[str]) -> Call[PayloadCheck]:
    body: PayloadInput = {"payload": payload}
    if project is not None:
        body["project"] = project
    return Call(ops.EVENT_TYPES_VALIDATE, json_answer, {"event_type": name}, json=body)


class EventTypes:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(self) -> EventTypes_:
        return self._t.execute(_list())

    def get(self, event_type: str) -> EventType:
        """Name, family, description, JSON Schema, example and test payload."""
        return self._t.execute(_get(event_type))

    def validate(
        self, event_type: str, payload: Any, *, project: Optional[str] = None
    ) -> PayloadCheck:
        """Would `events.send` accept this payload? Every violation, nothing stored."""
        return self._t.execute(_validate(event_type, payload, project))


class AsyncEventTypes:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def list(self) -> EventTypes_:
        return await self._t.execute(_list())

    async def get(self, event_type: str) -> EventType:
        return await self._t.execute(_get(event_type))

    async def validate(
        self, event_type: str, payload: Any, *, project: Optional[str] = None
    ) -> PayloadCheck:
        return await self._t.execute(_validate(event_type, payload, project))
