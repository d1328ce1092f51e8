"""An add-on that starts the bundled loopback world for the demo crawl and stops it after.

It writes ``output/proxies.yaml`` (proxies per locale, and which locale each site must be
fetched from) before the suite reads it, and passes the sites' URLs to the spider through the
``DEMO_START_URLS`` setting. Everything listens on 127.0.0.0/8 only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from scrapy import signals

from scrapy_proxystack.testing import BanRule, LoopbackWorld

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import Settings

logger = logging.getLogger(__name__)


def build_world() -> tuple[LoopbackWorld, dict[str, Any], list[dict[str, str]]]:
    """Start the demo world; return it, its proxy config and the spider's start URLs."""
    world = LoopbackWorld(max_lifetime=900).start()
    sites = [
        ("fr", world.add_site("actu-fr", lang="fr", countries={"fr"}, geo_block="page")),
        ("de", world.add_site("zeitung-de", lang="de", countries={"de"}, geo_block="451")),
        ("es", world.add_site("diario-es", lang="es", countries={"es"})),
        ("jp", world.add_site("shimbun-jp", lang="ja", countries={"jp"}, tls=True)),
        # A forum that shows a captcha to any client after its third page: the suite retries
        # those through other US exits and keeps captcha pages out of the feed.
        ("us", world.add_site("forum-us", lang="en", pages=10, ban=BanRule("captcha", after=3))),
    ]
    proxies = {
        "fr": [
            world.add_proxy(1, auth=("demo-fr", "fr-secret")),
            world.add_proxy(1),
            world.add_proxy(1, mode="slow", delay=0.2),
        ],
        "de": [world.add_proxy(2), world.add_proxy(2, mode="dead")],
        "es": [world.add_proxy(3), world.add_proxy(3, mode="flaky", fail_rate=0.3, seed=7)],
        "jp": [world.add_proxy(4), world.add_proxy(4)],
        "us": [world.add_proxy(5) for _ in range(4)],
    }
    config = {
        "locales": {
            locale: {"proxies": [p.url for p in items]} for locale, items in proxies.items()
        },
        "domains": {site.host: locale for locale, site in sites},
    }
    start = [{"url": site.url("/"), "site": site.name} for _, site in sites]
    return world, config, start


class LoopbackWorldAddon:
    """Starts the world when the crawler is set up and stops it when the engine stops."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.world: LoopbackWorld | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LoopbackWorldAddon:
        addon = cls(crawler)
        crawler.signals.connect(addon.engine_stopped, signal=signals.engine_stopped)
        return addon

    def update_settings(self, settings: Settings) -> None:
        self.world, config, start = build_world()
        path = Path(settings["PROXYSTACK_PROXIES_FILE"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        settings.set("DEMO_START_URLS", start, priority="addon")
        logger.info("Loopback world started: %(world)r", {"world": self.world})

    def engine_stopped(self) -> None:
        """Stop the world and write what each site saw (``output/world_requests.json``)."""
        if self.world is None:
            return
        self.world.stop()
        seen = {
            site.name: [
                {"path": r.path, "country": r.country, "status": r.status} for r in site.requests
            ]
            for site in self.world.sites
        }
        out = Path(self.crawler.settings["PROXYSTACK_PROXIES_FILE"]).parent
        (out / "world_requests.json").write_text(json.dumps(seen, indent=1), encoding="utf-8")
