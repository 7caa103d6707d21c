"""`client.tokens`: a project's API tokens (`write` or `read`); the token
itself is in the creation answer only."""

from __future__ import annotations

from typing import Optional


from . import _operations as ops
from ._transport import AsyncTransport, Call, SyncTransport, data_answer, json_answer, no_answer
from .models import CreatedToken, TokenInput, TokenKind, TokenView

TokenViews = list[TokenView]


def _create(project: str, name: Optional[str], kind: Optional[TokenKind]) -> Call[CreatedToken]:
    body: TokenInput = {}
    if name is not None:
        body["name"] = name
    if kind is not None:
        body["kind"] = kind
    return Call(ops.TOKENS_CREATE, json_answer, {"project": project}, json=body)


def _list(project: str) -> Call[TokenViews]:
    return Call(ops.TOKENS_LIST, data_answer, {"project": project})


def _revoke(project: str, token_id: str) -> Call[None]:
    return Call(ops.TOKENS_REVOKE, no_answer, {"project": project, "id": token_id})


class Tokens:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(
        self, project: str, *, name: Optional[str] = None, kind: Optional[TokenKind] = None
    ) -> CreatedToken:
        """A token for the project (`kind` `write`, the default, or `read`)."""
        return self._t.execute(_create(project, name, kind))

    def list(self, project: str) -> TokenViews:
        """The project's tokens: prefix, kind, name, dates; never the token."""
        return self._t.execute(_list(project))

    def revoke(self, project: str, token_id: str) -> None:
        self._t.execute(_revoke(project, token_id))


class AsyncTokens:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def create(
        self, project: str, *, name: Optional[str] = None, kind: Optional[TokenKind] = None
    ) -> CreatedToken:
        return await self._t.execute(_create(project, name, kind))

    async def list(self, project: str) -> TokenViews:
        return await self._t.execute(_list(project))

    async def revoke(self, project: str, token_id: str) -> None:
        await self._t.execute(_revoke(project, token_id))
