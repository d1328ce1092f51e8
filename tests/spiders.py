"""Spiders used by the crawl tests (run in a subprocess by :mod:`tests.runner`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.utils.asyncio import sleep

from scrapy_proxystack.routing import route_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response
    from twisted.python.failure import Failure


class WorldSpider(scrapy.Spider):
    """Fetches the start URLs (and follows in-site links when ``follow`` is set).

    Every answer becomes an item, and every failure reaching the errback becomes an item with
    ``error`` set, so tests can account for each request. With ``start_when`` (a path), the
    start requests wait until that file exists (several workers started together).
    """

    name = "world"

    def __init__(
        self,
        urls: list[Any] | None = None,
        follow: bool = False,
        dont_filter: bool = True,
        start_when: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.urls = urls or []
        self.follow = follow
        self.dont_filter = dont_filter
        self.start_when = start_when

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.start_when is not None:
            while not Path(self.start_when).exists():
                await sleep(0.05)
        for spec in self.urls:
            if isinstance(spec, str):
                spec = {"url": spec}
            yield scrapy.Request(
                spec["url"],
                meta=dict(spec.get("meta", {})),
                headers=spec.get("headers"),
                dont_filter=self.dont_filter,
                callback=self.parse,
                errback=self.failed,
            )

    def parse(self, response: Response) -> Iterator[Any]:
        title = response.css("title::text").get() if hasattr(response, "css") else None
        yield {
            "url": response.url,
            "status": response.status,
            "title": title,
            "lang": response.css("html::attr(lang)").get() if hasattr(response, "css") else None,
            "body": response.text[:2000] if hasattr(response, "text") else "",
            "exit": route_of(response).exit_id,
            "exit_locale": route_of(response).exit_locale,
            "sent_at": route_of(response).sent_at,
            "retry_times": response.meta.get("retry_times", 0),
            "session": response.meta.get("proxystack_session"),
        }
        if self.follow and hasattr(response, "css"):
            for href in response.css("a::attr(href)").getall():
                yield response.follow(
                    href, callback=self.parse, errback=self.failed, meta=_public(response.meta)
                )

    def failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        request = failure.request  # type: ignore[attr-defined]
        yield {
            "url": request.url,
            "error": type(failure.value).__name__,
            "reason": getattr(failure.value, "reason", None),
            "message": str(failure.value),
            "session": request.meta.get("proxystack_session"),
            "session_retired": request.meta.get("proxystack_session_retired"),
        }


def _public(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k.startswith("proxystack_")}
