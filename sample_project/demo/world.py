"""An add-on that starts the bundled loopback world for the demo crawl and stops it after.

It writes ``output/proxies.yaml`` (proxies per locale, and which locale each site must be
fetched from) before the suite reads it, and passes the sites' URLs to the spider through the
``DEMO_START_URLS`` setting. Everything listens on 127.0.0.0/8 only. The world itself is
:mod:`scrapy_proxystack.testing.demo`, the one ``python -m scrapy_proxystack.testing`` serves.

When the crawl is over it prints a closing note: the feed, a table per locale built from the
documented ``proxystack/`` stats, and where the HTML report is.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from scrapy import signals

from scrapy_proxystack.testing.demo import DemoWorld, start_demo_world

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)

_COLUMNS = ("locale", "requests", "answers", "bans", "p50 ms", "p95 ms")


class LoopbackWorldAddon:
    """Starts the world when the crawler is set up and stops it when the engine stops."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.demo: DemoWorld | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LoopbackWorldAddon:
        addon = cls(crawler)
        crawler.signals.connect(addon.engine_stopped, signal=signals.engine_stopped)
        return addon

    def update_settings(self, settings: Settings) -> None:
        self.demo = start_demo_world()
        path = Path(settings["PROXYSTACK_PROXIES_FILE"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.demo.config, sort_keys=False), encoding="utf-8")
        settings.set("DEMO_START_URLS", self.demo.start, priority="addon")
        logger.info("Loopback world started: %(world)r", {"world": self.demo.world})

    def engine_stopped(self) -> None:
        """Stop the world, write what each site saw (``output/world_requests.json``), and print
        the closing note."""
        if self.demo is None:
            return
        self.demo.stop()
        seen = {
            site.name: [
                {"path": r.path, "country": r.country, "status": r.status} for r in site.requests
            ]
            for site in self.demo.world.sites
        }
        out = Path(self.crawler.settings["PROXYSTACK_PROXIES_FILE"]).parent
        (out / "world_requests.json").write_text(json.dumps(seen, indent=1), encoding="utf-8")
        print(self.closing_note(), flush=True)

    def closing_note(self) -> str:
        stats = self.crawler.stats.get_stats() if self.crawler.stats is not None else {}
        locales = list(self.demo.config["locales"]) if self.demo is not None else []
        rows = [_COLUMNS] + [
            (
                locale,
                *(
                    str(stats.get(f"proxystack/{key}/{locale}", 0))
                    for key in (
                        "requests/locale",
                        "responses/locale",
                        "bans/locale",
                        "latency/p50_ms",
                        "latency/p95_ms",
                    )
                ),
            )
            for locale in locales
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
        table = [
            "  "
            + "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        lines = [
            "",
            f"Demo crawl finished ({stats.get('finish_reason', '?')}): "
            f"{stats.get('item_scraped_count', 0)} items in output/items.jsonl, each page "
            "fetched through an exit of its site's country, phone numbers masked.",
            "Per locale (from the proxystack/ stats):",
            *table,
        ]
        report = self.crawler.settings.get("PROXYSTACK_REPORT_FILE")
        if report and Path(report).is_file():
            lines.append(f"Report: {Path(report).resolve()} (open it in a browser)")
        # The scrapy the user typed (../.venv/bin/scrapy in the README), for a pasteable line.
        scrapy = sys.argv[0] if Path(sys.argv[0]).name == "scrapy" else "scrapy"
        lines.append(f"Next: {scrapy} proxystack check --world   (probe the proxies of this world)")
        return "\n".join(lines)
