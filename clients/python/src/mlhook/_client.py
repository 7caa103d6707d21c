"""`Client` and `AsyncClient`: one resource object per part of the API
(`client.events`, `client.webhooks`, …) over one HTTP connection pool."""

from __future__ import annotations

from types import TracebackType
from typing import Optional

from ._transport import DEFAULT_TIMEOUT, AsyncTransport, Settings, SyncTransport, TimeoutTypes
from .deliveries import AsyncDeliveries, Deliveries
from .event_types import AsyncEventTypes, EventTypes
from .events import AsyncEvents, Events
from .formats import AsyncFormats, Formats
from .projects import AsyncProjects, Projects
from .sources import AsyncSources, Sources
from .tokens import AsyncTokens, Tokens
from .webhooks import AsyncWebhooks, Webhooks

DEFAULT_MAX_RETRIES = 3


class Client:
    """The mlhook API, blocking.

    `url` and `token` default to the MLHOOK_URL and MLHOOK_TOKEN environment
    variables. `timeout` is in seconds (or an `httpx.Timeout`); answers 429
    and 503 are retried up to `max_retries` times, after `Retry-After`.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self._transport = SyncTransport(Settings.resolve(url, token, timeout, max_retries))
        self.events = Events(self._transport)
        self.webhooks = Webhooks(self._transport)
        self.deliveries = Deliveries(self._transport)
        self.event_types = EventTypes(self._transport)
        self.projects = Projects(self._transport)
        self.tokens = Tokens(self._transport)
        self.sources = Sources(self._transport)
        self.formats = Formats(self._transport)

    @property
    def url(self) -> str:
        return self._transport.settings.url

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        error: Optional[BaseException],
        trace: Optional[TracebackType],
    ) -> None:
        self.close()


class AsyncClient:
    """The mlhook API for asyncio; the same resources as `Client`, awaited."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        self._transport = AsyncTransport(Settings.resolve(url, token, timeout, max_retries))
        self.events = AsyncEvents(self._transport)
        self.webhooks = AsyncWebhooks(self._transport)
        self.deliveries = AsyncDeliveries(self._transport)
        self.event_types = AsyncEventTypes(self._transport)
        self.projects = AsyncProjects(self._transport)
        self.tokens = AsyncTokens(self._transport)
        self.sources = AsyncSources(self._transport)
        self.formats = AsyncFormats(self._transport)

    @property
    def url(self) -> str:
        return self._transport.settings.url

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: Optional[type[BaseException]],
        error: Optional[BaseException],
        trace: Optional[TracebackType],
    ) -> None:
        await self.close()
