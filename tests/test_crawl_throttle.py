"""Real crawls through the loopback world: per-site politeness holds over all exits."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tests.crawl import run_crawl

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_proxystack.testing import LoopbackWorld, Site

# What the suite promises is exact at departure: no request leaves closer to the previous one
# than the budget allows, even when a timer fires late (tests/test_dispatch.py checks that with
# an injected clock). Each answer's route says when its request left (``sent_at``): the tests
# below hold departures to the promise within DEPARTURE_SLACK (the clock read a few lines after
# the check). The site sees arrivals, and the loopback path (crawler -> proxy -> site, the
# world's thread recording them) adds jitter to each one: on a loaded 2-core machine up to
# ~40 ms for one request and ~140 ms for the first connections of a burst, more beside CPU
# hogs. So the site's own view is checked too, but only over spans of a second or so, where
# jitter counts once (up to SITE_SLACK beside CPU hogs) and an unpaced crawl shows about nothing.
DEPARTURE_SLACK = 0.005
SITE_SLACK = 0.5
GAP_SLACK = 0.06
SPAN_SLACK = 0.2


def page_times(site: Site) -> list[float]:
    return sorted(r.time for r in site.requests if r.path.startswith("/page"))


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def assert_bucket(sent: list[float], interval: float, burst: int) -> None:
    """Departures within a token bucket's envelope: any ``k`` consecutive ones span at least
    ``k - burst`` intervals (a late start leaves tokens for later, so single gaps may be
    shorter after a burst)."""
    for i in range(len(sent)):
        for j in range(i + burst, len(sent)):
            assert sent[j] - sent[i] >= (j - i + 1 - burst) * interval - DEPARTURE_SLACK, (i, j)


def departures(result: Any, site: Site, exit_id: str | None = None) -> list[float]:
    """When the crawl's requests to ``site`` left (through ``exit_id`` only, if given)."""
    return sorted(
        item["sent_at"]
        for item in result.pages
        if item["url"].startswith(site.base_url) and exit_id in (None, item["exit"])
    )


def test_domain_rate_holds_over_all_exits(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("polite", pages=20)
    exits = [world.add_proxy(5) for _ in range(5)]
    config = {
        "locales": {"us": [p.url for p in exits]},
        "domains": {site.host: {"locale": "us", "rate": 10, "burst": 1}},
    }
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 21)],
        settings={"PROXYSTACK_PROXIES": config, "CONCURRENT_REQUESTS": 16},
    )
    assert len(result.pages) == 20
    assert len({r.client_ip for r in site.requests}) == 5  # spread over the exits ...
    sent = departures(result, site)
    assert min(gaps(sent)) >= 0.1 - DEPARTURE_SLACK  # ... and still 10 requests/s
    times = page_times(site)  # as the site sees it
    assert (times[-1] - times[0]) >= 19 * 0.1 - SITE_SLACK
    assert result.stat("proxystack/throttle/waits") >= 18


def test_burst_then_rate(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("bursty", pages=8)
    exits = [world.add_proxy(5) for _ in range(4)]
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 9)],
        settings={
            "PROXYSTACK_PROXIES": {"locales": {"us": [p.url for p in exits]}},
            "PROXYSTACK_DOMAIN_RATE": 5.0,
            "PROXYSTACK_DOMAIN_BURST": 4,
        },
    )
    assert len(result.pages) == 8
    sent = departures(result, site)
    # Four go without waiting for the rate (paced, they would span 3 intervals: 0.6 s), then
    # the rate holds as a token bucket's: the 8th leaves at least 4 intervals after the 1st.
    assert sent[3] - sent[0] < 0.4
    assert_bucket(sent, 0.2, 4)
    times = page_times(site)
    assert times[7] - times[0] >= 4 * 0.2 - SITE_SLACK


def test_exit_delay_paces_each_exit_per_site(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("paced", pages=12)
    other = world.add_site("other", pages=6)
    exits = [world.add_proxy(5) for _ in range(3)]
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 13)]
        + [other.url(f"/page/{i}") for i in range(1, 7)],
        settings={
            "PROXYSTACK_PROXIES": {"locales": {"us": [p.url for p in exits]}},
            "PROXYSTACK_EXIT_DELAY": 0.3,
        },
    )
    assert len(result.pages) == 18
    per_exit: dict[str, list[float]] = defaultdict(list)
    for r in site.requests:
        per_exit[r.client_ip].append(r.time)
    assert len(per_exit) == 3
    for exit_id in {item["exit"] for item in result.pages if "paced" in item["url"]}:
        assert min(gaps(departures(result, site, exit_id))) >= 0.3 - DEPARTURE_SLACK
    for times in per_exit.values():
        # The site's view: each exit's four requests span three delays (unpaced: about 0).
        assert max(times) - min(times) >= 3 * 0.3 - SITE_SLACK
    # Twelve requests, three exits, 0.3 s apart each: about 1.2 s, not 12 x 0.3 s.
    assert page_times(site)[-1] - page_times(site)[0] < 2.5


def test_robots_crawl_delay_is_applied(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("robots", pages=5, crawl_delay=0.25)
    exits = [world.add_proxy(5) for _ in range(3)]
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 6)],
        settings={
            "PROXYSTACK_PROXIES": {"locales": {"us": [p.url for p in exits]}},
            "ROBOTSTXT_OBEY": True,
        },
    )
    assert len(result.pages) == 5
    assert min(gaps(departures(result, site))) >= 0.25 - DEPARTURE_SLACK
    times = page_times(site)
    assert times[-1] - times[0] >= 4 * 0.25 - SITE_SLACK
    assert result.stat("proxystack/throttle/crawl_delay_applied") == 1
    assert "Honouring Crawl-delay" in result.log


def test_throttled_site_does_not_slow_another(world: LoopbackWorld, tmp_path: Path) -> None:
    slow = world.add_site("slow", pages=12)
    fast = world.add_site("fast", pages=40)
    exits = [world.add_proxy(5) for _ in range(4)]
    config = {
        "locales": {"us": [p.url for p in exits]},
        "domains": {slow.host: {"locale": "us", "rate": 4}},
    }
    urls = [slow.url(f"/page/{i}") for i in range(1, 13)] + [
        fast.url(f"/page/{i}") for i in range(1, 41)
    ]
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={"PROXYSTACK_PROXIES": config, "CONCURRENT_REQUESTS": 8},
    )
    assert len(result.pages) == 52
    slow_times, fast_times = departures(result, slow), departures(result, fast)
    # The slow site takes ~2.75 s at 4 requests/s; the fast one is done long before that.
    assert slow_times[-1] - slow_times[0] >= 11 * 0.25 - DEPARTURE_SLACK
    assert fast_times[-1] < slow_times[len(slow_times) // 2]


def test_a_long_crawl_delay_does_not_hold_the_crawl_open(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    import time

    site = world.add_site("sleepy", pages=6, crawl_delay=20)
    exits = [world.add_proxy(5) for _ in range(2)]
    started = time.monotonic()
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 7)],
        settings={
            "PROXYSTACK_PROXIES": {"locales": {"us": [p.url for p in exits]}},
            "ROBOTSTXT_OBEY": True,
            "CLOSESPIDER_TIMEOUT": 2,
        },
    )
    assert result.close_reason == "closespider_timeout"
    assert len(result.pages) == 1  # one page, then 20 s until the next
    assert time.monotonic() - started < 15  # not 100 s of queued Crawl-delay waits
