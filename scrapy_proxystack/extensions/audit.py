"""An audit log: one JSON line per request attempt, saying where the traffic went out.

Compliance reviews ask "which country did we fetch this site from, through which exit, and
what happened". The log answers it line by line, and holds nothing else: never a credential
(exits are named by id, user-info in URLs is masked), never item content.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from scrapy_proxystack.extensions._base import observe
from scrapy_proxystack.redact import redact_text
from scrapy_proxystack.signals import exit_outcome

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.utils.asyncio import AsyncioLoopingCall
    from twisted.internet.task import LoopingCall

    from scrapy_proxystack.signals import ExitOutcome

__all__ = ["AuditLogExtension", "audit_record"]

logger = logging.getLogger(__name__)

#: Seconds between flushes: a crash loses at most this much of the log.
FLUSH_INTERVAL: Final = 1.0


def audit_record(outcome: ExitOutcome, *, urls: str = "full") -> dict[str, Any]:
    """The audit line of one outcome (``urls``: ``"full"`` or ``"host"``)."""
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(outcome.time, timezone.utc).isoformat(
            timespec="milliseconds"
        )
    }
    if urls == "host":
        record["host"] = outcome.domain
    else:
        record["url"] = redact_text(outcome.url)
    record.update(
        {
            "locale": outcome.locale,
            "exit_locale": outcome.exit_locale,
            "pool": outcome.exit_pool,
            "exit": outcome.exit_id,
            "status": outcome.status,
            "verdict": f"{outcome.kind}/{outcome.reason}",
            "retries": outcome.retries,
            "latency_ms": round(outcome.latency * 1000) if outcome.latency is not None else None,
        }
    )
    return record


class AuditLogExtension:
    """Appends one JSON line per ``exit_outcome`` to ``PROXYSTACK_AUDIT_FILE``.

    The file is opened in append mode, so successive crawls add to one log; lines are flushed
    every second and at close.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.settings, self.observer = observe(crawler)
        if not self.settings.audit_file:
            raise NotConfigured  # off by default: nothing to say
        self.crawler = crawler
        self.path = Path(self.settings.audit_file)
        self.urls = self.settings.audit_urls
        self.file: IO[str] | None = None
        self.lines = 0
        self.task: AsyncioLoopingCall | LoopingCall | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.on_outcome, signal=exit_outcome)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AuditLogExtension:
        return cls(crawler)

    def spider_opened(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a", encoding="utf-8")
        self.task = create_looping_call(self.flush)
        self.task.start(FLUSH_INTERVAL, now=False)
        logger.info(
            "Audit log: %(path)s", {"path": str(self.path)}, extra={"crawler": self.crawler}
        )

    def on_outcome(self, outcome: ExitOutcome, request: Request, **kwargs: Any) -> None:
        if self.file is None:
            return
        record = audit_record(outcome, urls=self.urls)
        self.file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.lines += 1

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def spider_closed(self) -> None:
        if self.task is not None and self.task.running:
            self.task.stop()
        if self.file is not None:
            self.file.close()
            self.file = None
        self.observer.stack.stats.set("audit", "lines", value=self.lines)
