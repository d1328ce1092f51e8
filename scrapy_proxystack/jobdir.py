"""What a paused crawl keeps in ``JOBDIR`` besides Scrapy's own queue.

Scrapy's ``JOBDIR`` keeps the scheduler's queue and the dupefilter; it does not know the
requests waiting for an exit outside the scheduler (in the parking lot), nor what the exits
learned. Both are kept here, deadlines on the wall clock, each file written whole or not at all.
"""

from __future__ import annotations

import json
import logging
import pickle
import time
from typing import TYPE_CHECKING

from scrapy.utils.request import request_from_dict

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from scrapy import Request, Spider

    from scrapy_proxystack.canary.controller import CanaryController
    from scrapy_proxystack.pool import ExitPool
    from scrapy_proxystack.routing import Router
    from scrapy_proxystack.stats import StatsRecorder
    from scrapy_proxystack.throttle import ExitPacer

__all__ = ["Jobdir"]

logger = logging.getLogger(__name__)

_STATE_FILE = "proxystack.state.json"
_WAITING_FILE = "proxystack.waiting.pickle"


class Jobdir:
    """The suite's files in one ``JOBDIR``."""

    def __init__(
        self,
        path: Path,
        *,
        pool: ExitPool,
        pacer: ExitPacer,
        router: Router,
        stats: StatsRecorder,
        warn_once: Callable[..., bool],
        canary: CanaryController | None = None,
    ) -> None:
        self.path = path
        self.pool = pool
        self.pacer = pacer
        self.router = router
        self.stats = stats
        self.warn_once = warn_once
        self.canary = canary

    def save(self, spider: Spider, waiting: list[Request]) -> None:
        """Keep the requests waiting for an exit, and the exits' state (ejections, bans with
        their remaining cool-downs, pacing and learned delays, sticky sessions), and what the
        canary analysis decided (pool weights, evidence, decisions)."""
        self.path.mkdir(parents=True, exist_ok=True)
        now = time.time()
        state = {
            "saved_at": now,
            "pool": self.pool.export_state(now),
            "pacing": self.pacer.export_state(),
            "retired_sessions": self.router.retired_sessions,
            "canary": self.canary.export_state() if self.canary is not None else {},
        }
        _write_atomically(self.path / _STATE_FILE, json.dumps(state).encode())
        kept: list[bytes] = []
        for request in waiting:
            try:
                data = self.router.for_pause(request).to_dict(spider=spider)
                kept.append(pickle.dumps(data, protocol=4))
            except Exception as exc:  # whatever the request holds: counted, logged below
                # Scrapy's disk queue keeps such a request in memory; here it cannot be kept.
                self.router.count_drop(request, "closing")
                self.warn_once(
                    ("unpicklable",),
                    "A request waiting for an exit cannot be kept in JOBDIR (%(error)s): it is "
                    "counted in proxystack/requests/dropped/closing",
                    {"error": type(exc).__name__},
                )
        _write_atomically(self.path / _WAITING_FILE, pickle.dumps(kept, protocol=4))
        if kept:
            self.stats.inc("requests", "persisted", count=len(kept))
            logger.info(
                "%(n)d requests waiting for an exit are kept in JOBDIR for the next run",
                {"n": len(kept)},
            )

    def load(self, spider: Spider) -> list[Request]:
        """Restore what :meth:`save` kept (the files are removed); the waiting requests are
        returned, for the engine to crawl again."""
        state_path, waiting_path = self.path / _STATE_FILE, self.path / _WAITING_FILE
        requests: list[Request] = []
        try:
            if state_path.exists():
                state = json.loads(state_path.read_text(encoding="utf-8"))
                restored = self.pool.import_state(state.get("pool", {}), time.time())
                restored += self.pacer.import_state(state.get("pacing", []))
                self.router.retired_sessions.update(state.get("retired_sessions", {}))
                if self.canary is not None:
                    restored += self.canary.import_state(state.get("canary", {}))
                self.stats.set("exits", "state_restored", value=restored)
            if waiting_path.exists():
                with waiting_path.open("rb") as f:
                    kept = pickle.load(f)  # noqa: S301 - our own file in the user's JOBDIR
                requests = [
                    request_from_dict(pickle.loads(d), spider=spider)  # noqa: S301 - ours too
                    for d in kept
                ]
        except Exception as exc:  # a damaged file must not stop the crawl: counted, logged
            self.stats.inc("exits", "state_restore_failed")
            logger.error(
                "Cannot restore the proxy state kept in JOBDIR (%(error)s); starting without it",
                {"error": type(exc).__name__},
            )
        finally:
            state_path.unlink(missing_ok=True)
            waiting_path.unlink(missing_ok=True)
        return requests


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a crash mid-write leaves the old file, not half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
