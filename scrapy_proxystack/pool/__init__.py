"""The exit pool: which exit a request leaves from, now, and what the pool learns from how it went.

Plain package (no Scrapy import): ``types`` (parameters, answers, reasons), ``fenwick``
(weighted choice), ``groups`` (per-pool, per-locale and per-site state) and ``exits`` (the
pool itself, see its docstring for how it is built).
"""

from __future__ import annotations

from scrapy_proxystack.pool.exits import ExitPool
from scrapy_proxystack.pool.types import (
    FAILURE_OUTCOMES,
    NO_EXIT_REASONS,
    Choice,
    HealthParams,
    NoExit,
    PoolCounts,
    PoolListener,
    SessionLost,
)

__all__ = [
    "FAILURE_OUTCOMES",
    "NO_EXIT_REASONS",
    "Choice",
    "ExitPool",
    "HealthParams",
    "NoExit",
    "PoolCounts",
    "PoolListener",
    "SessionLost",
]
