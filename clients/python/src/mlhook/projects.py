"""`client.projects`: the namespaces of webhooks and events (creating and
deleting them needs the admin token), and each project's audit log."""

from __future__ import annotations

from typing import Optional

from typing_extensions import Unpack

from . import _operations as ops
from ._pagination import AsyncPageIterator, Page, PageIterator, page_answer
from ._transport import AsyncTransport, Call, SyncTransport, data_answer, json_answer, no_answer
from .models import AuditView, ProjectInput, ProjectPatch, ProjectView

ProjectViews = list[ProjectView]


def _create(id: str, name: str, link_base_url: Optional[str]) -> Call[ProjectView]:
    body: ProjectInput = {"id": id, "name": name}
    if link_base_url is not None:
        body["link_base_url"] = link_base_url
    return Call(ops.PROJECTS_CREATE, json_answer, json=body)


def _list() -> Call[ProjectViews]:
    return Call(ops.PROJECTS_LIST, data_answer)


def _get(project: str) -> Call[ProjectView]:
    return Call(ops.PROJECTS_GET, json_answer, {"project": project})


def _update(project: str, changes: ProjectPatch) -> Call[ProjectView]:
    return Call(ops.PROJECTS_UPDATE, json_answer, {"project": project}, json=dict(changes))


def _delete(project: str) -> Call[None]:
    return Call(ops.PROJECTS_DELETE, no_answer, {"project": project})


def _audit(
    project: str, page_size: Optional[int], cursor: Optional[str]
) -> Call[Page[AuditView]]:
    query = {"limit": page_size, "cursor": cursor}
    return Call(ops.PROJECTS_AUDIT, page_answer, {"project": project}, query=query)


class Projects:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create(self, id: str, name: str, *, link_base_url: Optional[str] = None) -> ProjectView:
        """`id` is a lowercase slug (`fraud-team`); admin token only."""
        return self._t.execute(_create(id, name, link_base_url))

    def list(self) -> ProjectViews:
        """The projects the token may see."""
        return self._t.execute(_list())

    def get(self, project: str) -> ProjectView:
        return self._t.execute(_get(project))

    def update(self, project: str, **changes: Unpack[ProjectPatch]) -> ProjectView:
        """Renames or sets the link base; `link_base_url=None` removes it."""
        return self._t.execute(_update(project, changes))

    def delete(self, project: str) -> None:
        """Deletes the project with everything in it; admin token only."""
        self._t.execute(_delete(project))

    def audit(self, project: str, *, page_size: Optional[int] = None) -> PageIterator[AuditView]:
        """Changes to the project, its tokens and webhooks, newest first."""
        return PageIterator(lambda cursor: self._t.execute(_audit(project, page_size, cursor)))


class AsyncProjects:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def create(
        self, id: str, name: str, *, link_base_url: Optional[str] = None
    ) -> ProjectView:
        return await self._t.execute(_create(id, name, link_base_url))

    async def list(self) -> ProjectViews:
        return await self._t.execute(_list())

    async def get(self, project: str) -> ProjectView:
        return await self._t.execute(_get(project))

    async def update(self, project: str, **changes: Unpack[ProjectPatch]) -> ProjectView:
        return await self._t.execute(_update(project, changes))

    async def delete(self, project: str) -> None:
        await self._t.execute(_delete(project))

    def audit(
        self, project: str, *, page_size: Optional[int] = None
    ) -> AsyncPageIterator[AuditView]:
        return AsyncPageIterator(
            lambda cursor: self._t.execute(_audit(project, page_size, cursor))
        )
