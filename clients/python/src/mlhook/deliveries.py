"""`client.deliveries`: the delivery log, one delivery with every attempt,
and a manual redelivery."""

from __future__ import annotations

from typing import Optional

from . import _operations as ops
from ._pagination import AsyncPageIterator, Page, PageIterator, page_answer
from ._transport import AsyncTransport, Call, SyncTransport, json_answer
from .events import Since
from .models import DeliveryDetail, DeliveryView, SendOutcome


def _list(
    project: str,
    webhook_id: Optional[str],
    event_id: Optional[str],
    event_type: Optional[str],
    status: Optional[str],
    since: Optional[Since],
    until: Optional[Since],
    page_size: Optional[int],
    cursor: Optional[str],
) -> Call[Page[DeliveryView]]:
    query = {
        "webhook_id": webhook_id,
        "event_id": event_id,
        "event_type": event_type,
        "status": status,
        "since": since,
        "until": until,
        "limit": page_size,
        "cursor": cursor,
    }
    return Call(ops.DELIVERIES_LIST, page_answer, {"project": project}, query=query)


def _get(project: str, delivery_id: str) -> Call[DeliveryDetail]:
    return Call(ops.DELIVERIES_GET, json_answer, {"project": project, "id": delivery_id})


def _redeliver(project: str, delivery_id: str) -> Call[SendOutcome]:
    return Call(ops.DELIVERIES_REDELIVER, json_answer, {"project": project, "id": delivery_id})


class Deliveries:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(
        self,
        project: str,
        *,
        webhook_id: Optional[str] = None,
        event_id: Optional[str] = None,
        event_type: Optional[str] = None,
        status: Optional[str] = None,
        since: Optional[Since] = None,
        until: Optional[Since] = None,
        page_size: Optional[int] = None,
    ) -> PageIterator[DeliveryView]:
        """The delivery log newest first, following `next_cursor` as the
        iteration goes; `page_size` (1–250) is the size of each request."""
        return PageIterator(
            lambda cursor: self._t.execute(
                _list(project, webhook_id, event_id, event_type, status, since, until,
                      page_size, cursor)
            )
        )

    def get(self, project: str, delivery_id: str) -> DeliveryDetail:
        """The delivery with `history`: each attempt's request (secrets masked),
        response and error."""
        return self._t.execute(_get(project, delivery_id))

    def redeliver(self, project: str, delivery_id: str) -> SendOutcome:
        """A manual attempt now, whatever the delivery's state; not retried."""
        return self._t.execute(_redeliver(project, delivery_id))


class AsyncDeliveries:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    def list(
        self,
        project: str,
        *,
        webhook_id: Optional[str] = None,
        event_id: Optional[str] = None,
        event_type: Optional[str] = None,
        status: Optional[str] = None,
        since: Optional[Since] = None,
        until: Optional[Since] = None,
        page_size: Optional[int] = None,
    ) -> AsyncPageIterator[DeliveryView]:
        return AsyncPageIterator(
            lambda cursor: self._t.execute(
                _list(project, webhook_id, event_id, event_type, status, since, until,
                      page_size, cursor)
            )
        )

    async def get(self, project: str, delivery_id: str) -> DeliveryDetail:
        return await self._t.execute(_get(project, delivery_id))

    async def redeliver(self, project: str, delivery_id: str) -> SendOutcome:
        return await self._t.execute(_redeliver(project, delivery_id))
