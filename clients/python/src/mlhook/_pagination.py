"""Lists that follow `next_cursor`: iterate the items of every page, or the
pages themselves; a page is fetched only when the iteration reaches it.

A full page comes with a cursor even when nothing follows it; the empty page
that cursor then fetches ends the walk without being yielded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Generic, Iterator, Optional, TypeVar

import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: Optional[str]


def page_answer(response: httpx.Response) -> Page[Any]:
    body = response.json()
    return Page(items=list(body["data"]), next_cursor=body.get("next_cursor"))


class PageIterator(Generic[T]):
    """`for item in client.deliveries.list(...)`; `.pages()` for whole pages."""

    def __init__(self, fetch: Callable[[Optional[str]], Page[T]]) -> None:
        self._fetch = fetch

    def pages(self) -> Iterator[Page[T]]:
        cursor: Optional[str] = None
        while True:
            page = self._fetch(cursor)
            if page.items or cursor is None:
                yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items


class AsyncPageIterator(Generic[T]):
    """`async for item in client.deliveries.list(...)`; `.pages()` for whole pages."""

    def __init__(self, fetch: Callable[[Optional[str]], Awaitable[Page[T]]]) -> None:
        self._fetch = fetch

    async def pages(self) -> AsyncIterator[Page[T]]:
        cursor: Optional[str] = None
        while True:
            page = await self._fetch(cursor)
            if page.items or cursor is None:
                yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item
