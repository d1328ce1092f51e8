"""The observability settings, read once into a frozen object and validated there.

Defaults live in ``scrapy_proxystack/default_settings.py``; the values repeated here are what a
crawl gets when the add-on is not used and the extensions are listed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scrapy_proxystack.config import ConfigError
from scrapy_proxystack.settings import _Reader

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy.settings import BaseSettings

__all__ = ["AUDIT_URL_MODES", "ObservabilitySettings"]

AUDIT_URL_MODES = ("full", "host")


@dataclass(frozen=True)
class ObservabilitySettings:
    """Every observability ``PROXYSTACK_*`` setting, validated."""

    enabled: bool = True
    stats_per_exit: bool = False
    logstats_interval: float = 60.0
    report_file: str | None = None
    report_top_exits: int = 10
    prometheus_port: int | None = None
    prometheus_bind: str = "127.0.0.1"
    audit_file: str | None = None
    audit_urls: str = "full"
    check_url: str | None = None
    check_timeout: float = 10.0
    check_concurrency: int = 50
    locale_countries: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> ObservabilitySettings:
        r = _Reader(settings)
        port: int | None = None
        raw_port = settings.get("PROXYSTACK_PROMETHEUS_PORT")
        if raw_port is not None and raw_port != "":
            port = r.integer("PROXYSTACK_PROMETHEUS_PORT", 0)
            if port > 65535:
                r._err("PROXYSTACK_PROMETHEUS_PORT", raw_port, "a port in 0..65535 or None")
        result = cls(
            enabled=r.boolean("PROXYSTACK_ENABLED", True),
            stats_per_exit=r.boolean("PROXYSTACK_STATS_PER_EXIT", False),
            logstats_interval=r.number("PROXYSTACK_LOGSTATS_INTERVAL", 60.0),
            report_file=r.optional_str("PROXYSTACK_REPORT_FILE"),
            report_top_exits=r.integer("PROXYSTACK_REPORT_TOP_EXITS", 10, minimum=1),
            prometheus_port=port,
            prometheus_bind=r.optional_str("PROXYSTACK_PROMETHEUS_BIND") or "127.0.0.1",
            audit_file=r.optional_str("PROXYSTACK_AUDIT_FILE"),
            audit_urls=r.choice("PROXYSTACK_AUDIT_URLS", "full", AUDIT_URL_MODES),
            check_url=r.optional_str("PROXYSTACK_CHECK_URL"),
            check_timeout=r.number("PROXYSTACK_CHECK_TIMEOUT", 10.0, strict=True),
            check_concurrency=r.integer("PROXYSTACK_CHECK_CONCURRENCY", 50, minimum=1),
            locale_countries=r.str_map("PROXYSTACK_LOCALE_COUNTRIES"),
        )
        if r.problems:
            raise ConfigError(r.problems)
        return result
