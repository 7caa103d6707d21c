"""`client.formats`: the body formats a webhook can send (json, slack, …)
with their settings, and a preview of the body a configuration would send."""

from __future__ import annotations

from typing import Any

from typing_extensions import Unpack

from . import _operations as ops
from ._transport import AsyncTransport, Call, SyncTransport, data_answer, json_answer
from .models import Preview, PreviewInput

FormatDescriptions = list[dict[str, Any]]


def _list() -> Call[FormatDescriptions]:
    return Call(ops.FORMATS_LIST, data_answer)


def _preview(fields: PreviewInput) -> Call[Preview]:
    return Call(ops.FORMATS_PREVIEW, json_answer, json=dict(fields))


class Formats:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(self) -> FormatDescriptions:
        return self._t.execute(_list())

    def preview(self, **fields: Unpack[PreviewInput]) -> Preview:
        """The body a format and its settings would send for an example event."""
        return self._t.execute(_preview(fields))


class AsyncFormats:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def list(self) -> FormatDescriptions:
        return await self._t.execute(_list())

    async def preview(self, **fields: Unpack[PreviewInput]) -> Preview:
        return await self._t.execute(_preview(fields))
