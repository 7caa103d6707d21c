"""Sending requests: one description of a call (`Call`), built by the
resource modules, executed by a sync or an async transport that share the
configuration, the request building, the retry decision and the error
mapping; only the waiting and the I/O differ."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Generic, Mapping, Optional, TypeVar, Union

import httpx

from . import __version__
from ._operations import Operation
from ._retry import RetryPolicy
from .errors import ApiError, ConfigurationError, RequestTimeoutError, TransportError

T = TypeVar("T")

#: `timeout` accepts seconds or an `httpx.Timeout` (connect, read, write, pool).
TimeoutTypes = Union[float, httpx.Timeout]
DEFAULT_TIMEOUT = 30.0


class _NoBody:
    """Marks a call without a body (`None` would send JSON `null`)."""


NO_BODY = _NoBody()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of an operation and how to read its answer."""

    operation: Operation
    parse: Callable[[httpx.Response], T]
    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    json: Any = NO_BODY
    headers: Mapping[str, str] = field(default_factory=dict)


def json_answer(response: httpx.Response) -> Any:
    return response.json()


def data_answer(response: httpx.Response) -> Any:
    """The `data` list of a list answer that has no pages."""
    return response.json()["data"]


def no_answer(response: httpx.Response) -> None:
    return None


def query_value(value: Union[str, int, datetime]) -> str:
    """A query parameter: datetimes as RFC 3339 (naive ones taken as UTC)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text if value.tzinfo is not None else text + "Z"
    return str(value)


@dataclass(frozen=True)
class Settings:
    url: str
    #: Kept out of reprs, so that a logged client or traceback never shows it.
    token: str = field(repr=False)
    timeout: TimeoutTypes
    retry: RetryPolicy

    @staticmethod
    def resolve(
        url: Optional[str], token: Optional[str], timeout: TimeoutTypes, max_retries: int
    ) -> Settings:
        url = url or os.environ.get("MLHOOK_URL")
        token = token or os.environ.get("MLHOOK_TOKEN")
        if not url:
            raise ConfigurationError("no service URL: pass url= or set MLHOOK_URL")
        if not token:
            raise ConfigurationError("no token: pass token= or set MLHOOK_TOKEN")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        return Settings(url.rstrip("/"), token, timeout, RetryPolicy(max_retries=max_retries))

    def client_options(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "timeout": self.timeout,
            "headers": {
                "authorization": f"Bearer {self.token}",
                "user-agent": f"mlhook-python/{__version__}",
            },
        }


def build_request(http: Union[httpx.Client, httpx.AsyncClient], call: Call[Any]) -> httpx.Request:
    query = {k: query_value(v) for k, v in call.query.items() if v is not None}
    options: dict[str, Any] = {"params": query, "headers": dict(call.headers)}
    if not isinstance(call.json, _NoBody):
        options["json"] = call.json
    return http.build_request(
        call.operation.method, call.operation.url(**call.path_params), **options
    )


def finish(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer, or the `ApiError` it carries."""
    if response.is_success:
        return call.parse(response)
    raise ApiError.from_response(response)


def retry_delay(settings: Settings, response: httpx.Response, retries_done: int) -> Optional[float]:
    return settings.retry.delay(
        response.status_code, response.headers.get("retry-after"), retries_done
    )


def transport_error(error: httpx.TransportError, call: Call[Any]) -> TransportError:
    what = f"{call.operation.method} {call.operation.path}"
    if isinstance(error, httpx.TimeoutException):
        return RequestTimeoutError(f"{what}: no answer within the timeout ({error})")
    return TransportError(f"{what}: {error}")


class SyncTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.Client(**settings.client_options())

    def execute(self, call: Call[T]) -> T:
        request = build_request(self.http, call)
        retries = 0
        while True:
            try:
                response = self.http.send(request)
            except httpx.TransportError as error:
                raise transport_error(error, call) from error
            delay = retry_delay(self.settings, response, retries)
            if delay is None:
                return finish(call, response)
            time.sleep(delay)
            retries += 1

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(**settings.client_options())

    async def execute(self, call: Call[T]) -> T:
        request = build_request(self.http, call)
        retries = 0
        while True:
            try:
                response = await self.http.send(request)
            except httpx.TransportError as error:
                raise transport_error(error, call) from error
            delay = retry_delay(self.settings, response, retries)
            if delay is None:
                return finish(call, response)
            await asyncio.sleep(delay)
            retries += 1

    async def close(self) -> None:
        await self.http.aclose()
