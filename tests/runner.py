"""Run one Scrapy crawl in this process and write its items and stats to a JSON file.

Tests start it as a subprocess (one reactor per process), while the loopback world runs in the
test process. Usage: ``python -m tests.runner spec.json out.json``.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.utils.misc import load_object


def main(spec_path: str, out_path: str) -> int:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    settings: dict[str, Any] = {
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        **spec.get("settings", {}),
    }
    lookups: list[str] = []
    if spec.get("record_lookups"):
        # Every name resolved on this machine (asyncio, Twisted and httpx all end up here).
        real_getaddrinfo = socket.getaddrinfo

        def recording_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            lookups.append(host.decode() if isinstance(host, bytes) else str(host))
            return real_getaddrinfo(host, *args, **kwargs)

        socket.getaddrinfo = recording_getaddrinfo
    process = CrawlerProcess(settings)
    spidercls = load_object(spec.get("spider", "tests.spiders.WorldSpider"))
    crawler = process.create_crawler(spidercls)
    items: list[Any] = []
    result: dict[str, Any] = {
        "items": items,
        "stats": {},
        "close_reason": None,
        "lookups": lookups,
    }

    def on_item(item: Any) -> None:
        items.append(dict(item) if not isinstance(item, dict) else item)

    def on_closed(spider: Any, reason: str) -> None:
        result["close_reason"] = reason
        result["stats"] = {
            k: (v if isinstance(v, int | float | str) else str(v))
            for k, v in crawler.stats.get_stats().items()  # type: ignore[union-attr]
        }

    def on_stopped() -> None:
        # Components that check invariants when the engine stops write their stats then.
        result["stats"].update(
            (k, v if isinstance(v, int | float | str) else str(v))
            for k, v in crawler.stats.get_stats().items()  # type: ignore[union-attr]
            if k.startswith("proxystack/exits/in_flight")
        )

    crawler.signals.connect(on_item, signal=signals.item_scraped)
    crawler.signals.connect(on_closed, signal=signals.spider_closed)
    crawler.signals.connect(on_stopped, signal=signals.engine_stopped)
    process.crawl(crawler, **spec.get("spider_kwargs", {}))
    process.start()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
