"""`client.sources`: endpoints where other platforms (MLflow) post their own
webhooks, which mlhook turns into events; the secret is write-only."""

from __future__ import annotations

from typing import Optional

from typing_extensions import Unpack

from . import _operations as ops
from ._transport import AsyncTransport, Call, SyncTransport, data_answer, json_answer, no_answer
from .models import SourceAnswer, SourceInput, SourcePatch, SourceRejection, SourceView

SourceViews = list[SourceView]
Rejections = list[SourceRejection]


def _ids(project: str, source_id: str) -> dict[str, str]:
    return {"project": project, "id": source_id}


def _create(project: str, fields: SourceInput) -> Call[SourceAnswer]:
    return Call(ops.SOURCES_CREATE, json_answer, {"project": project}, json=dict(fields))


def _list(project: str) -> Call[SourceViews]:
    return Call(ops.SOURCES_LIST, data_answer, {"project": project})


def _get(project: str, source_id: str) -> Call[SourceAnswer]:
    return Call(ops.SOURCES_GET, json_answer, _ids(project, source_id))


def _update(project: str, source_id: str, changes: SourcePatch) -> Call[SourceAnswer]:
    return Call(ops.SOURCES_UPDATE, json_answer, _ids(project, source_id), json=dict(changes))


def _delete(project: str, source_id: str) -> Call[None]:
    return Call(ops.SOURCES_DELETE, no_answer, _ids(project, source_id))


def _log(project: str, source_id: str, limit: Optional[int]) -> Call[Rejections]:
    return Call(ops.SOURCES_LOG, data_answer, _ids(project, source_id), query={"limit": limit})


class Sources:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(self, project: str, **fields: Unpack[SourceInput]) -> SourceAnswer:
        """A source; its `url` is what to give MLflow as the webhook URL."""
        return self._t.execute(_create(project, fields))

    def list(self, project: str) -> SourceViews:
        return self._t.execute(_list(project))

    def get(self, project: str, source_id: str) -> SourceAnswer:
        return self._t.execute(_get(project, source_id))

    def update(self, project: str, source_id: str, **changes: Unpack[SourcePatch]) -> SourceAnswer:
        """Changes the fields named; a new `secret` keeps the old one verifying
        for `secret_grace_period`, so MLflow is not refused while it catches up."""
        return self._t.execute(_update(project, source_id, changes))

    def delete(self, project: str, source_id: str) -> None:
        self._t.execute(_delete(project, source_id))

    def log(self, project: str, source_id: str, *, limit: Optional[int] = None) -> Rejections:
        """The last requests the source refused, with their reason."""
        return self._t.execute(_log(project, source_id, limit))


class AsyncSources:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def create(self, project: str, **fields: Unpack[SourceInput]) -> SourceAnswer:
        return await self._t.execute(_create(project, fields))

    async def list(self, project: str) -> SourceViews:
        return await self._t.execute(_list(project))

    async def get(self, project: str, source_id: str) -> SourceAnswer:
        return await self._t.execute(_get(project, source_id))

    async def update(
        self, project: str, source_id: str, **changes: Unpack[SourcePatch]
    ) -> SourceAnswer:
        return await self._t.execute(_update(project, source_id, changes))

    async def delete(self, project: str, source_id: str) -> None:
        await self._t.execute(_delete(project, source_id))

    async def log(
        self, project: str, source_id: str, *, limit: Optional[int] = None
    ) -> Rejections:
        return await self._t.execute(_log(project, source_id, limit))
