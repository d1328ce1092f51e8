"""The pools of each locale side by side, with confidence intervals, for the report.

Vendors (and canaries) are compared on what a buyer of proxy traffic cares about: attempts,
usable answers, ban and transport-failure rates, latency percentiles and bytes, each rate with a
95 % Wilson score interval and each percentile with a distribution-free interval (the order
statistics whose ranks bound the quantile's rank with 95 % confidence, read from the histogram).
These intervals are for reading one report; the rollback decisions use the sequential test of
:mod:`scrapy_proxystack.canary`, which stays valid however often it is looked at.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from scrapy_proxystack.extensions._aggregate import LatencyHistogram, PoolAggregate
    from scrapy_proxystack.extensions._observer import CrawlObserver

__all__ = ["pool_rows", "pool_site_differences", "quantile_interval", "wilson"]

#: The normal quantile of a two-sided 95 % interval.
_Z: Final = 1.959964
#: Sites listed per locale in "where the pools differ most".
_TOP_DIFFERENT_SITES: Final = 5
#: Attempts a pool needs at a site before its rate there is compared.
_MIN_SITE_ATTEMPTS: Final = 10


def wilson(k: int, n: int) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion ``k / n`` (None without trials)."""
    if n <= 0:
        return None
    p = k / n
    denom = 1.0 + _Z * _Z / n
    centre = (p + _Z * _Z / (2 * n)) / denom
    half = _Z * math.sqrt(p * (1.0 - p) / n + _Z * _Z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def quantile_interval(hist: LatencyHistogram, q: float) -> tuple[float, float] | None:
    """A 95 % interval of the ``q`` quantile (seconds): the quantiles at the ranks
    ``n q -/+ 1.96 sqrt(n q (1 - q))``, which bracket the true one with that confidence."""
    n = hist.count
    if n < 2:
        return None
    spread = _Z * math.sqrt(q * (1.0 - q) / n)
    low = hist.quantile(max(0.0, q - spread))
    high = hist.quantile(min(1.0, q + spread))
    if low is None or high is None:
        return None
    return (low, high)


def _rate(k: int, n: int) -> dict[str, Any]:
    interval = wilson(k, n)
    return {
        "rate": round(k / n, 4) if n else None,
        "ci95": [round(interval[0], 4), round(interval[1], 4)] if interval else None,
    }


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _percentile(hist: LatencyHistogram, q: float) -> dict[str, Any]:
    interval = quantile_interval(hist, q)
    return {
        "ms": _ms(hist.quantile(q)),
        "ci95_ms": [_ms(interval[0]), _ms(interval[1])] if interval else None,
    }


def _row(
    locale: str, pool: str, weight: float, now: float, agg: PoolAggregate | None
) -> dict[str, Any]:
    n = agg.attempts if agg else 0
    reached = n - (agg.failures if agg else 0)
    return {
        "locale": locale,
        "pool": pool,
        "weight": weight,
        "weight_now": now,
        "attempts": n,
        "successes": agg.successes if agg else 0,
        "bans": agg.bans if agg else 0,
        "transport_failures": agg.failures if agg else 0,
        # Bans among the attempts that reached the site; failures among all attempts.
        "ban_rate": _rate(agg.bans if agg else 0, reached),
        "failure_rate": _rate(agg.failures if agg else 0, n),
        "p50": _percentile(agg.latency, 0.5) if agg else _percentile_empty(),
        "p95": _percentile(agg.latency, 0.95) if agg else _percentile_empty(),
        "bytes": agg.bytes if agg else 0,
    }


def _percentile_empty() -> dict[str, Any]:
    return {"ms": None, "ci95_ms": None}


def pool_rows(observer: CrawlObserver) -> list[dict[str, Any]]:
    """One row per configured (locale, pool), in configuration order: the weight it was given,
    the weight it has now (a canary decision may have changed it), and its figures."""
    stack = observer.stack
    rows = []
    for name, locale in stack.config.locales.items():
        for pool_config in locale.pools:
            agg = observer.aggregate.pools.get((name, pool_config.name))
            now = stack.pool.pool_weight(name, pool_config.name)
            rows.append(_row(name, pool_config.name, pool_config.weight, now, agg))
    return rows


def pool_site_differences(observer: CrawlObserver) -> list[dict[str, Any]]:
    """Per locale with several pools: the sites where their ban rates differ most (by the
    difference's z score, so a gap on 10 attempts does not outrank one on 10,000)."""
    out = []
    pools = observer.aggregate.pools
    for name, locale in observer.stack.config.locales.items():
        names = [p.name for p in locale.pools if (name, p.name) in pools]
        if len(names) < 2:
            continue
        scored = []
        sites = {site for p in names for site in pools[(name, p)].sites}
        for site in sites:
            per_pool = {p: pools[(name, p)].sites.get(site, [0, 0, 0]) for p in names}
            rates = {p: _site_rate(row) for p, row in per_pool.items()}
            known = {p: r for p, r in rates.items() if r is not None}
            if len(known) < 2:
                continue
            score = _z_gap(per_pool, known)
            scored.append((score, site, per_pool))
        scored.sort(key=lambda t: (-t[0], t[1]))
        out.append(
            {
                "locale": name,
                "pools": names,
                "sites": [
                    {
                        "site": site,
                        "z": round(score, 2),
                        "pools": {
                            p: {"attempts": row[0], "bans": row[1], "failures": row[2]}
                            for p, row in per_pool.items()
                        },
                    }
                    for score, site, per_pool in scored[:_TOP_DIFFERENT_SITES]
                ],
            }
        )
    return out


def _site_rate(row: list[int]) -> float | None:
    reached = row[0] - row[2]
    return row[1] / reached if reached >= _MIN_SITE_ATTEMPTS else None


def _z_gap(per_pool: dict[str, list[int]], known: dict[str, float]) -> float:
    """The largest gap between two pools' ban rates at a site, in standard errors."""
    hi = max(known, key=lambda p: known[p])
    lo = min(known, key=lambda p: known[p])
    n_hi = per_pool[hi][0] - per_pool[hi][2]
    n_lo = per_pool[lo][0] - per_pool[lo][2]
    pooled = (per_pool[hi][1] + per_pool[lo][1]) / (n_hi + n_lo)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n_hi + 1 / n_lo))
    return (known[hi] - known[lo]) / se
