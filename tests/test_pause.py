"""A crawl paused with JOBDIR and resumed loses no page and forgets no ban."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from scrapy_proxystack.testing import BanRule
from tests.crawl import run_crawl

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_proxystack.testing import LoopbackWorld


def test_pause_and_resume_fetch_every_page_once(world: LoopbackWorld, tmp_path: Path) -> None:
    a, b = world.add_proxy(5), world.add_proxy(5)
    polite = world.add_site("polite", pages=16)
    picky = world.add_site("picky", pages=6, ban=BanRule("403", clients={a.ip}))
    config = {
        "locales": {"us": [a.url, b.url]},
        "domains": {
            polite.host: {"locale": "us", "rate": 4},
            picky.host: {"locale": "us", "rate": 2},
        },
    }
    urls = [picky.url(f"/page/{n}") for n in range(1, 7)]
    urls += [polite.url(f"/page/{n}") for n in range(1, 17)]
    settings = {
        "PROXYSTACK_PROXIES": config,
        "PROXYSTACK_STRATEGY": "round_robin",
        "JOBDIR": str(tmp_path / "job"),
        "CONCURRENT_REQUESTS": 8,
    }
    first_dir, second_dir = tmp_path / "run1", tmp_path / "run2"
    first_dir.mkdir()
    second_dir.mkdir()
    # The first run is cut short while requests wait for the polite site's budget.
    first = run_crawl(
        first_dir,
        urls=urls,
        settings={**settings, "CLOSESPIDER_TIMEOUT": 1.5},
        spider_kwargs={"dont_filter": False},
    )
    assert first.close_reason == "closespider_timeout"
    # (The harness reads stats before the suite's close handler runs: the log says it.)
    assert "waiting for an exit are kept in JOBDIR for the next run" in first.log
    assert len(first.pages) < 22
    picky_seen = len(picky.requests)
    assert a.ip in {r.client_ip for r in picky.requests}  # banned there in the first run
    second = run_crawl(
        second_dir, urls=urls, settings=settings, spider_kwargs={"dont_filter": False}
    )
    assert second.stat("proxystack/requests/resumed") >= 1
    assert second.stat("proxystack/exits/state_restored") >= 1
    # Every page delivered once over the two runs; the sites saw each page once (no ban page
    # among the deliveries, and the polite site's requests were not sent twice).
    delivered = Counter(p["url"] for p in (*first.pages, *second.pages))
    assert set(delivered) == set(urls)
    assert max(delivered.values()) == 1
    assert Counter(r.path for r in polite.requests) == {f"/page/{n}": 1 for n in range(1, 17)}
    assert first.errors == second.errors == []
    # The exit the picky site banned in the first run was not tried there again in the second.
    assert len(picky.requests) > picky_seen  # the second run had pages of it left ...
    assert a.ip not in {r.client_ip for r in picky.requests[picky_seen:]}  # ... not through a


DOWNLOAD_SPIDER = """
import scrapy
from tests.spiders import WorldSpider


class DirectDownload(WorldSpider):
    name = "direct"

    async def start(self):
        yield scrapy.Request(self.urls[0], callback=self.child, errback=self.failed)

    async def child(self, response):
        # A request fetched straight through the engine, with meta copied from a response.
        request = scrapy.Request(self.urls[1], meta=dict(response.meta), dont_filter=True)
        try:
            answer = await self.crawler.engine.download_async(request)
            yield {"url": answer.url, "status": answer.status}
        except Exception as exc:
            yield {"url": request.url, "error": type(exc).__name__}
"""


def test_a_direct_download_never_loops_on_waiting(world: LoopbackWorld, tmp_path: Path) -> None:
    exit_ = world.add_proxy(5)
    ok = world.add_site("ok", pages=1)
    wall = world.add_site("wall", pages=1, ban=BanRule("403"))
    (tmp_path / "direct_spider.py").write_text(DOWNLOAD_SPIDER, encoding="utf-8")
    result = run_crawl(
        tmp_path,
        urls=[ok.url("/page/1"), wall.url("/page/1")],
        settings={"PROXYSTACK_PROXIES": {"locales": {"us": [exit_.url]}}},
        spider="direct_spider.DirectDownload",
    )
    # Banned through the only exit, it cannot wait in the lot (it never passes the scheduler):
    # it fails closed at once, counted, instead of cycling through the middlewares.
    assert result.errors == [
        {**result.errors[0], "url": wall.url("/page/1"), "error": "ExitUnavailable"}
    ]
    assert result.stat("proxystack/requests/parked/us") <= 1
    assert result.stat("proxystack/requests/dropped/no_exit") == 1
