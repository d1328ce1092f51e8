"""The end-of-crawl report: a self-contained HTML page and the same data as JSON.

It answers, after the fact and at a glance, whether the crawl was healthy: attempts, bans and
latency per locale, the pools of each locale side by side (vendors, canaries) and what the canary
analysis decided, bans per site and reason over time, exits by health, the slowest and
most-banned exits (by id), traffic per site, and how much personal data was masked.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from scrapy import signals
from scrapy.exceptions import NotConfigured

from scrapy_proxystack.extensions._aggregate import OTHER
from scrapy_proxystack.extensions._base import observe
from scrapy_proxystack.extensions._html import render_html
from scrapy_proxystack.extensions._pools import pool_rows, pool_site_differences
from scrapy_proxystack.stats import stat_key

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from scrapy_proxystack.extensions._aggregate import (
        CrawlAggregate,
        ExitAggregate,
        LatencyHistogram,
    )
    from scrapy_proxystack.extensions._observer import CrawlObserver

__all__ = ["ReportExtension", "build_report", "json_path_for"]

logger = logging.getLogger(__name__)

#: Share of attempts that were bans, failures or refusals above which a crawl is "degraded",
#: and above which it is "unhealthy".
DEGRADED_RATE: Final = 0.10
UNHEALTHY_RATE: Final = 0.50
_TOP_SITES: Final = 50


def json_path_for(html_path: Path) -> Path:
    """``report.html`` -> ``report.json``; any other name gets ``.json`` appended."""
    if html_path.suffix.lower() in (".html", ".htm"):
        return html_path.with_suffix(".json")
    return html_path.with_name(html_path.name + ".json")


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _latency(hist: LatencyHistogram) -> dict[str, Any]:
    return {
        "count": hist.count,
        "p50_ms": _ms(hist.quantile(0.5)),
        "p95_ms": _ms(hist.quantile(0.95)),
        "p99_ms": _ms(hist.quantile(0.99)),
        "mean_ms": _ms(hist.mean),
        "max_ms": _ms(hist.max) if hist.count else None,
        "buckets": [[round(upper * 1000, 3), n] for upper, n in hist.buckets()],
    }


def _exit_row(exit_id: str, ex: ExitAggregate) -> dict[str, Any]:
    return {
        "exit": exit_id,
        "locale": ex.locale if ex.locale is not None else "none",
        "attempts": ex.attempts,
        "successes": ex.successes,
        "bans": ex.bans,
        "failures": ex.failures,
        "mean_latency_ms": _ms(ex.mean_latency),
        "max_latency_ms": _ms(ex.latency_max) if ex.latency_n else None,
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _health(totals: dict[str, Any], dry: list[str], panics: int) -> dict[str, Any]:
    tried = totals["attempts"] + totals["no_exit"]
    bad = totals["bans"] + totals["transport_failures"] + totals["no_exit"]
    rate = bad / tried if tried else 0.0
    reasons: list[str] = []
    status = "healthy"
    if dry:
        status = "unhealthy"
        reasons.append(f"locales that ran dry: {', '.join(dry)}")
    if rate >= UNHEALTHY_RATE:
        status = "unhealthy"
    elif rate >= DEGRADED_RATE and status == "healthy":
        status = "degraded"
    if rate >= DEGRADED_RATE:
        reasons.append(f"{100 * rate:.1f}% of attempts were bans, failures or refused")
    if tried and not totals["successes"]:
        status = "unhealthy"
        reasons.append("no usable answer at all")
    if panics:
        if status == "healthy":
            status = "degraded"
        reasons.append(f"{panics} requests sent in panic mode")
    return {"status": status, "problem_rate": round(rate, 4), "reasons": reasons}


def build_report(
    observer: CrawlObserver,
    *,
    spider: str,
    close_reason: str | None,
    stats: dict[str, Any],
    top: int = 10,
    finish: float | None = None,
) -> dict[str, Any]:
    """The report's data, from the observer's aggregates, the pool's state and the stats."""
    agg: CrawlAggregate = observer.aggregate
    finish = time.time() if finish is None else finish
    locales = _locale_rows(observer)
    totals = _totals(locales)
    panics = sum(loc["panic"] for loc in locales)
    canary = observer.stack.canary
    return {
        "version": 1,
        "spider": spider,
        "start": _iso(agg.start),
        "finish": _iso(finish),
        "duration_s": round(finish - agg.start, 3),
        "close_reason": close_reason,
        "health": _health(totals, sorted(observer.dry), panics),
        "totals": totals,
        "locales": locales,
        "pools": pool_rows(observer),
        "pool_sites": pool_site_differences(observer),
        "canary": canary.report() if canary is not None else [],
        "bans": _bans(agg),
        "sites": _sites(agg),
        "exits": _exits(agg, top),
        "pii": _pii(stats),
    }


def _locale_rows(observer: CrawlObserver) -> list[dict[str, Any]]:
    """One row per configured locale (and any other seen), with its exits' state."""
    agg = observer.aggregate
    banned = observer.banned_exits()
    names = [n if n is not None else "none" for n in observer.locale_names]
    names += sorted(n for n in agg.locales if n not in names)
    rows: list[dict[str, Any]] = []
    for label in names:
        la = agg.locales.get(label)
        outcomes = la.outcomes if la else {}
        counts = observer.counts(None if label == "none" else label)
        attempts = la.attempts if la else 0
        bans = outcomes.get("ban", 0)
        rows.append(
            {
                "locale": label,
                "attempts": attempts,
                "successes": outcomes.get("success", 0),
                "bans": bans,
                "ban_rate": round(bans / attempts, 4) if attempts else None,
                "transport_failures": outcomes.get("transport_failure", 0),
                "no_exit": outcomes.get("no_exit", 0),
                "session_retired": outcomes.get("session_retired", 0),
                "fallback": la.fallback if la else 0,
                "panic": la.panic if la else 0,
                "latency": _latency(la.latency) if la else _latency_empty(),
                "exits": {
                    "total": counts.total if counts else 0,
                    "usable": counts.usable if counts else 0,
                    "ejected": counts.ejected if counts else 0,
                    "in_flight": counts.in_flight if counts else 0,
                    "banned": banned.get(label, 0),
                },
                "ran_dry": label in observer.dry,
                # Times its requests had to wait for an exit (outside the downloader), and how
                # many are waiting right now (0 once the crawl has closed).
                "waits_for_an_exit": observer.stack.stats.get(
                    "requests", "parked", label, default=0
                ),
                "waiting_now": observer.stack.lot.waiting(None if label == "none" else label),
            }
        )
    return rows


def _totals(locales: list[dict[str, Any]]) -> dict[str, Any]:
    totals: dict[str, Any] = {
        key: sum(loc[key] for loc in locales)
        for key in ("attempts", "successes", "bans", "transport_failures", "no_exit")
    }
    totals["ban_rate"] = (
        round(totals["bans"] / totals["attempts"], 4) if totals["attempts"] else None
    )
    return totals


def _bans(agg: CrawlAggregate) -> dict[str, Any]:
    """Bans over time by reason, by reason, and per site and reason."""
    series = {
        reason: values[: max((i + 1 for i, v in enumerate(values) if v), default=0)]
        for reason, values in sorted(agg.ban_series.items())
    }
    longest = max((len(v) for v in series.values()), default=0)
    series = {r: v + [0] * (longest - len(v)) for r, v in series.items()}
    by_reason: dict[str, int] = {}
    for row in agg.site_bans.data.values():
        for reason, n in row.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    by_reason = dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
    by_site: list[dict[str, Any]] = sorted(
        (
            {"site": site, "total": sum(row.values()), "reasons": dict(sorted(row.items()))}
            for site, row in agg.site_bans.data.items()
        ),
        key=lambda s: (-int(s["total"]), s["site"] == OTHER, str(s["site"])),
    )
    return {
        "bucket_seconds": agg.bucket_width,
        "series": series,
        "by_reason": by_reason,
        "by_site": by_site,
    }


def _sites(agg: CrawlAggregate) -> list[dict[str, Any]]:
    """Traffic per site, busiest first, at most :data:`_TOP_SITES`."""
    sites: list[dict[str, Any]] = [
        {
            "site": site,
            "requests": sum(n for k, n in row.items() if k != "no_exit"),
            "successes": row.get("success", 0),
            "bans": row.get("ban", 0),
            "failures": row.get("transport_failure", 0),
            "no_exit": row.get("no_exit", 0),
        }
        for site, row in agg.sites.data.items()
    ]
    sites.sort(key=lambda s: (-s["requests"], s["site"]))
    return sites[:_TOP_SITES]


def _exits(agg: CrawlAggregate, top: int) -> dict[str, Any]:
    exits = agg.exits.items()
    slowest = sorted(
        ((i, e) for i, e in exits if e.latency_n),
        key=lambda ie: (-(ie[1].mean_latency or 0.0), ie[0]),
    )[:top]
    most_banned = sorted(((i, e) for i, e in exits if e.bans), key=lambda ie: (-ie[1].bans, ie[0]))[
        :top
    ]
    return {
        "slowest": [_exit_row(i, e) for i, e in slowest],
        "most_banned": [_exit_row(i, e) for i, e in most_banned],
        # Exits whose figures were dropped to keep memory bounded (ordinary ones only).
        "forgotten": agg.exits_forgotten,
    }


def _pii(stats: dict[str, Any]) -> dict[str, Any]:
    pii_prefix = stat_key("pii", "masked") + "/"
    masked = {
        key[len(pii_prefix) :]: int(value)
        for key, value in sorted(stats.items())
        if key.startswith(pii_prefix)
    }
    return {
        "masked": masked,
        "items_scanned": int(stats.get(stat_key("pii", "items_scanned"), 0)),
        "items_with_pii": int(stats.get(stat_key("pii", "items_with_pii"), 0)),
    }


def _latency_empty() -> dict[str, Any]:
    return {
        "count": 0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "mean_ms": None,
        "max_ms": None,
        "buckets": [],
    }


class ReportExtension:
    """Writes ``PROXYSTACK_REPORT_FILE`` (HTML) and its ``.json`` twin when the spider closes."""

    def __init__(self, crawler: Crawler) -> None:
        self.settings, self.observer = observe(crawler)
        if not self.settings.report_file:
            raise NotConfigured  # off by default: nothing to say
        self.crawler = crawler
        self.path = Path(self.settings.report_file)
        # Before the other spider_closed handlers that may still count (e.g. the PII pipeline
        # closing), the stats are complete enough; the report reads them last thing.
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReportExtension:
        return cls(crawler)

    def spider_closed(self, reason: str) -> None:
        stats = self.crawler.stats.get_stats() if self.crawler.stats is not None else {}
        spider = self.crawler.spider
        data = build_report(
            self.observer,
            spider=spider.name if spider is not None else "?",
            close_reason=reason,
            stats=stats,
            top=self.settings.report_top_exits,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(render_html(data), encoding="utf-8")
        json_path = json_path_for(self.path)
        json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        logger.info(
            "Crawl report (%(health)s): %(html)s and %(json)s",
            {"health": data["health"]["status"], "html": str(self.path), "json": str(json_path)},
            extra={"crawler": self.crawler},
        )
