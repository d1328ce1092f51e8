"""The demo crawl run by several workers: one crawl, N Scrapy processes, one Redis.

scrapy-redis shares the queue and the dupefilter; the suite shares each site's budget, the
exits' pacing, bans, ejections and sticky sessions (``PROXYSTACK_STATE_BACKEND = "redis"``).
The loopback world runs apart, once for every worker::

    redis-server --port 6379 --save '' &
    python -m scrapy_proxystack.testing --proxies-file output/proxies.yaml &
    for i in 1 2 3; do SCRAPY_SETTINGS_MODULE=demo.distributed scrapy crawl multilingual & done

Reset the crawl's queue between runs with ``redis-cli --scan --pattern 'multilingual:*' |
xargs redis-cli del`` (the suite's own keys expire by themselves).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import DontCloseSpider

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

from demo.settings import *  # noqa: F403 - the demo's settings, then what several workers change

# The world is served apart (see above), so only the suite's add-on.
ADDONS = {"scrapy_proxystack.Addon": 300}
PROXYSTACK_PROXIES_FILE = "output/proxies.yaml"
_STARTS = Path("output/start_urls.json")
DEMO_START_URLS = json.loads(_STARTS.read_text(encoding="utf-8")) if _STARTS.exists() else []

SCHEDULER = "scrapy_redis.scheduler.Scheduler"
DUPEFILTER_CLASS = "scrapy_redis.dupefilter.RFPDupeFilter"
# A worker that finishes first must not empty the queue and dupefilter under the others.
SCHEDULER_PERSIST = True
# A worker whose queue is empty for a moment waits for the others' new links before it closes.
# (Not SCHEDULER_IDLE_BEFORE_CLOSE: its blocking pop stops the whole worker meanwhile.)
EXTENSIONS = {"demo.distributed.IdleGrace": 500}
DEMO_IDLE_GRACE = 10.0
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PROXYSTACK_STATE_BACKEND = "redis"  # PROXYSTACK_REDIS_URL defaults to REDIS_URL

# One feed per worker; the report is per worker too, so it is left to the stats and logs here.
FEEDS = {
    "output/items-%(time)s.jsonl": {"format": "jsonlines", "encoding": "utf8"},
}
PROXYSTACK_REPORT_FILE = None


class IdleGrace:
    """Keeps a worker open for ``DEMO_IDLE_GRACE`` seconds of idleness: the shared queue may
    still get links from the other workers' pages."""

    def __init__(self, crawler: Crawler) -> None:
        self.grace = crawler.settings.getfloat("DEMO_IDLE_GRACE", 10.0)
        self.idle_since: float | None = None
        crawler.signals.connect(self.on_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.on_busy, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IdleGrace:
        return cls(crawler)

    def on_busy(self) -> None:
        self.idle_since = None

    def on_idle(self) -> None:
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.grace:
            raise DontCloseSpider
