"""One helper for every ``proxystack/`` stats key.

Keys are ``proxystack/<area>/<metric>[/<detail>]``. Details are low-cardinality labels (a locale,
a reason, a status code, a PII type): never a proxy URL, a credential or an item value. Going
through one helper keeps the naming uniform and makes that rule enforceable in one place.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

__all__ = ["PREFIX", "StatsRecorder", "stat_key"]

PREFIX = "proxystack"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:#~+-]+")


def _label(part: object) -> str:
    """A key segment: slashes and odd characters folded to ``_`` so a label cannot forge a key."""
    text = str(part) if part is not None else "none"
    return _UNSAFE.sub("_", text) or "_"


def stat_key(*parts: object) -> str:
    """``stat_key("bans", "reason", "captcha")`` -> ``"proxystack/bans/reason/captcha"``."""
    return "/".join((PREFIX, *(_label(p) for p in parts)))


class StatsRecorder:
    """Thin wrapper over Scrapy's stats collector that builds ``proxystack/`` keys."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats

    def inc(self, *parts: object, count: int = 1) -> None:
        self.stats.inc_value(stat_key(*parts), count)

    def set(self, *parts: object, value: Any) -> None:
        self.stats.set_value(stat_key(*parts), value)

    def max(self, *parts: object, value: float) -> None:
        self.stats.max_value(stat_key(*parts), value)

    def get(self, *parts: object, default: Any = None) -> Any:
        return self.stats.get_value(stat_key(*parts), default)
