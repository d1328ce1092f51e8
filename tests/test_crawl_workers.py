"""Three crawler processes, one crawl: scrapy-redis shares the queue, the suite's Redis state
shares each site's budget. Real processes, real redis-servers, the loopback world."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from scrapy_proxystack.testing.hostile import max_in_window
from scrapy_proxystack.testing.redis_server import RedisServer
from tests.crawl import finish_crawl, start_crawl
from tests.test_crawl_throttle import SPAN_SLACK, page_times

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_proxystack.testing import LoopbackWorld, Site

PAGES = 30
RATE = 8.0


def worker_settings(
    queue: RedisServer, state: RedisServer, config: dict[str, Any]
) -> dict[str, Any]:
    return {
        "PROXYSTACK_PROXIES": config,
        "PROXYSTACK_STATE_BACKEND": "redis",
        "PROXYSTACK_REDIS_URL": state.url,
        "PROXYSTACK_REDIS_TIMEOUT": 0.2,
        "PROXYSTACK_REDIS_MIRROR_INTERVAL": 0.2,
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": queue.url,
        "CONCURRENT_REQUESTS": 8,
        # Monotonic-comparable times in the log (see timeline).
        "LOG_FORMAT": "%(created).3f [%(name)s] %(levelname)s: %(message)s",
    }


def three_workers(
    tmp_path: Path,
    site: Site,
    settings: dict[str, Any],
    *,
    during: Any = None,
    start_when: Path | None = None,
) -> list[Any]:
    urls = [site.url(f"/page/{i}") for i in range(1, PAGES + 1)]
    spider_kwargs: dict[str, Any] = {"dont_filter": False}
    if start_when is not None:
        spider_kwargs["start_when"] = str(start_when)
    crawls = [
        start_crawl(
            tmp_path / f"worker{k}",
            urls=urls,
            settings=settings,
            spider_kwargs=spider_kwargs,
            timeout=120.0,
        )
        for k in range(3)
    ]
    try:
        if during is not None:
            during()
    except BaseException:
        for crawl in crawls:  # none is left waiting behind a failed test
            crawl.proc.kill()
            crawl.proc.communicate()
        raise
    return [finish_crawl(c) for c in crawls]


def polite_world(world: LoopbackWorld) -> tuple[Site, dict[str, Any]]:
    site = world.add_site("shared", pages=PAGES)
    exits = [world.add_proxy(7) for _ in range(4)]
    config = {
        "locales": {"us": [p.url for p in exits]},
        "domains": {site.host: {"locale": "us", "rate": RATE, "burst": 1}},
    }
    return site, config


def timeline(site: Site, results: list[Any], events: dict[str, float] | None = None) -> str:
    """What the site saw and what each worker sent, on one clock (seconds from the first
    arrival; ``sent_at`` and the site's times are both ``time.monotonic()``): printed when a
    rate assertion fails."""
    times = page_times(site)
    if not times:
        return "the site saw no page"
    t0 = times[0]
    wall = time.time() - time.monotonic()  # the log's times are wall-clock
    arrivals = sorted((r.time, r.path) for r in site.requests if r.path.startswith("/page"))
    lines = ["site: " + " ".join(f"{t - t0:.3f}{path[5:]}" for t, path in arrivals)]
    for k, result in enumerate(results):
        sent = sorted(
            (i["sent_at"], i["url"].rsplit("/", 1)[-1]) for i in result.pages if i["sent_at"]
        )
        redis_stats = {
            key.removeprefix("proxystack/redis/"): value
            for key, value in sorted(result.stats.items())
            if key.startswith("proxystack/redis/")
        }
        lines.append(f"worker{k} {redis_stats}")
        lines.append("  sent: " + " ".join(f"{t - t0:.3f}/{page}" for t, page in sent))
        for line in result.log.splitlines():
            created, _, rest = line.partition(" ")
            if "Redis at" in rest and created.replace(".", "").isdigit():
                lines.append(f"  {float(created) - wall - t0:.3f} {rest[:120]}")
    lines.extend(f"{name}: {t - t0:.3f}" for name, t in sorted((events or {}).items()))
    return "\n".join(lines)


def assert_rate_holds(times: list[float], *, outage: bool = False, why: str = "") -> None:
    """The site's view: its stated rate over the whole crawl and over any two seconds.

    What the suite books is exact on Redis's clock; the site sees each arrival shifted by the
    crawler's own timer and the loopback path (up to GAP_SLACK each on a loaded 2-core
    machine, see tests/test_crawl_throttle.py), so a window may hold one request more on
    each of its edges.
    """
    # Without the shared state each worker keeps a schedule of its own at a third of the rate
    # (3 / RATE apart), starting after every slot the shared schedule may still hold; when it
    # comes back, the workers that rejoined share one schedule at a third of the rate until
    # the others may have rejoined too (README, "Several workers"). So the site's requests
    # are at most three chains 3 / RATE apart, not always in phase (they interleave when the
    # workers lose it at once): n of them span at least (n - 3) / RATE, two intervals less
    # than one shared schedule ...
    overlap = 2 / RATE if outage else 0.0
    assert times[-1] - times[0] >= (PAGES - 1) / RATE - SPAN_SLACK - overlap, why
    # ... and a window of 2 s holds at most 2 * RATE + 3 of them, two more than one schedule.
    extra = 2 if outage else 0
    assert max_in_window(times, 2.0) <= 2 * RATE + 2 + extra, why


def wait_until_sharing(state: RedisServer, workers: int, seconds: float = 60.0) -> None:
    """Wait until ``workers`` workers joined the shared state and each counted them all: it
    renewed its lease (which reads the set of workers) since the last one joined.

    A lease's end (Redis's clock plus the key's TTL) only moves when it is renewed, by a
    mirror interval (0.2 s here) each time.
    """
    client = state.client()
    try:
        deadline = time.monotonic() + seconds
        ends: dict[bytes, int] = {}
        renewed: set[bytes] = set()
        while time.monotonic() < deadline:
            key = next(iter(client.scan_iter(match="*:workers")), None)
            members = sorted(client.smembers(key)) if key is not None else []
            if key is not None and len(members) >= workers:
                prefix = key[: -len(b"workers")]
                pipe = client.pipeline(transaction=True)
                pipe.time()
                for member in members:
                    pipe.pttl(prefix + b"inflight|" + member)
                (seconds_now, micros), *ttls = pipe.execute()
                now_ms = seconds_now * 1000 + micros // 1000
                for member, ttl in zip(members, ttls, strict=True):
                    end = now_ms + ttl
                    if ends.setdefault(member, end) + 50 < end:
                        renewed.add(member)
                if renewed >= set(members):
                    return
            time.sleep(0.02)
    finally:
        client.close()
    raise AssertionError(f"{workers} workers did not share the state within {seconds} s")


def assert_each_page_once(site: Site, results: list[Any]) -> None:
    pages = [i["url"] for r in results for i in r.pages]
    assert sorted(pages) == sorted(site.url(f"/page/{i}") for i in range(1, PAGES + 1))
    fetched = Counter(r.path for r in site.requests if r.path.startswith("/page"))
    assert set(fetched.values()) == {1}, "a page was fetched twice"
    assert not [i for r in results for i in r.errors]


def test_a_sites_rate_holds_over_three_workers(world: LoopbackWorld, tmp_path: Path) -> None:
    queue = RedisServer(tmp_path).start()
    try:
        site, config = polite_world(world)
        results = three_workers(tmp_path, site, worker_settings(queue, queue, config))
    finally:
        queue.stop()
    assert_each_page_once(site, results)
    assert all(r.stat("proxystack/redis/workers") >= 1 for r in results)
    assert sum(1 for r in results if r.pages) >= 2, "the workers did not share the crawl"
    assert_rate_holds(page_times(site), why=timeline(site, results))
    assert not any(r.stat("proxystack/redis/lost") for r in results)


def test_without_shared_state_three_workers_triple_the_rate(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    """The baseline: the same crawl with each worker on its own state."""
    queue = RedisServer(tmp_path).start()
    try:
        site, config = polite_world(world)
        settings = worker_settings(queue, queue, config)
        settings["PROXYSTACK_STATE_BACKEND"] = "memory"
        results = three_workers(tmp_path, site, settings)
    finally:
        queue.stop()
    assert_each_page_once(site, results)
    with pytest.raises(AssertionError):  # the site sees more than its stated rate
        assert_rate_holds(page_times(site))


def test_losing_the_shared_state_mid_crawl_loses_no_page(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    (tmp_path / "queue").mkdir()
    (tmp_path / "state").mkdir()
    queue = RedisServer(tmp_path / "queue").start()
    state = RedisServer(tmp_path / "state").start()
    site, config = polite_world(world)

    def pages_seen() -> int:
        return len(page_times(site))

    def wait_for(n: int, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while pages_seen() < n and time.monotonic() < deadline:
            time.sleep(0.02)

    events: dict[str, float] = {}

    go = tmp_path / "go"

    def outage() -> None:
        # Each worker divides the site's budget by the workers it has seen: the premise is
        # three workers that have seen each other, so they start crawling together (on a
        # loaded machine one may start seconds after the others have crawled the site).
        wait_until_sharing(state, 3)
        go.touch()
        events["sharing"] = time.monotonic()
        wait_for(5)
        state.stop()  # the suite's Redis goes away mid-crawl ...
        events["redis stopped"] = time.monotonic()
        wait_for(pages_seen() + 6, seconds=5.0)
        state.start()  # ... and comes back, empty
        events["redis started"] = time.monotonic()

    try:
        results = three_workers(
            tmp_path, site, worker_settings(queue, state, config), during=outage, start_when=go
        )
    finally:
        queue.stop()
        state.stop()
    assert_each_page_once(site, results)
    assert sum(r.stat("proxystack/redis/lost") for r in results) >= 1
    assert sum(r.stat("proxystack/redis/local_budget") for r in results) >= 1
    assert "does not answer" in "".join(r.log for r in results)
    # While it was away each worker took a third of the site's budget: the rate still holds.
    assert_rate_holds(page_times(site), outage=True, why=timeline(site, results, events))
