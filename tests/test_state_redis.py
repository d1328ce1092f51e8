"""The Redis backend of the shared state, against a real redis-server
(scrapy_proxystack/state/redis_state.py). Several "workers" are several RedisState objects,
each with its own exit pool, in one event loop."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING, Any

import pytest

from scrapy_proxystack.config import parse_proxy_config
from scrapy_proxystack.pool import ExitPool
from scrapy_proxystack.state import StateLost
from scrapy_proxystack.state.redis_state import RedisState, StateUnavailable, ping
from scrapy_proxystack.stats import StatsRecorder
from scrapy_proxystack.testing.redis_server import RedisServer
from tests.test_routing import DictStats

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

CONFIG = parse_proxy_config(
    {"locales": {"fr": [f"http://127.0.0.1:{3100 + k}" for k in range(1, 5)]}}
)
E1, E2 = "127.0.0.1:3101", "127.0.0.1:3102"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path).start()
    yield srv
    srv.stop()


def worker(url: str, **kw: Any) -> tuple[RedisState, ExitPool, DictStats]:
    pool = ExitPool(CONFIG)
    stats = DictStats()
    state = RedisState(
        url=url,
        prefix="proxystack:test",
        pool=pool,
        stats=StatsRecorder(stats),  # type: ignore[arg-type]
        mirror_interval=kw.pop("mirror_interval", 0.1),
        **kw,
    )
    pool.listener = state.listener
    return state, pool, stats


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        await asyncio.sleep(0.02)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())  # type: ignore[arg-type]


def test_the_site_budget_holds_over_every_worker(server: RedisServer) -> None:
    async def main() -> None:
        # Not a test of timeouts: a loaded machine may take a while to answer 30 at once.
        workers = [worker(server.url, timeout=5.0)[0] for _ in range(3)]
        for w in workers:
            await w.start()
        start = time.monotonic()

        async def book(w: RedisState, k: int) -> float:
            exit_id = f"127.0.0.1:{3101 + k % 4}"
            _busy, wait, _ahead = await w.reserve("shop.fr", exit_id, 0.1, 0.0, 0.0)
            return time.monotonic() - start + wait

        slots = await asyncio.gather(*(book(workers[k % 3], k) for k in range(30)))
        slots = sorted(slots)
        gaps = [b - a for a, b in itertools.pairwise(slots)]
        # Booked on Redis's clock one interval apart; the replies' own travel adds a little.
        assert min(gaps) >= 0.1 - 0.02
        assert slots[-1] - slots[0] >= 29 * 0.1 - 0.05
        for w in workers:
            await w.close()

    run(main)


def test_a_pair_paced_by_one_worker_is_busy_for_the_others(server: RedisServer) -> None:
    async def main() -> None:
        (a, _, _), (b, _, _) = worker(server.url), worker(server.url)
        await a.start()
        await b.start()
        assert await a.reserve("shop.fr", E1, 0.0, 0.0, 2.0) == (0.0, 0.0, 0.0)
        busy, wait, _ = await b.reserve("shop.fr", E1, 0.0, 0.0, 2.0)
        assert 1.5 < busy <= 2.0
        assert wait == 0.0
        assert await b.reserve("shop.fr", E2, 0.0, 0.0, 2.0) == (0.0, 0.0, 0.0)  # another exit
        assert await b.reserve("blog.fr", E1, 0.0, 0.0, 2.0) == (0.0, 0.0, 0.0)  # another site
        await a.close()
        await b.close()

    run(main)


def test_a_schedule_booked_alone_is_kept_when_redis_comes_back(server: RedisServer) -> None:
    async def main() -> None:
        a, _, _ = worker(server.url)
        await a.start()
        # This worker booked 3 s of the site alone while Redis was away: the shared schedule
        # starts after them, not at once.
        busy, wait, ahead = await a.reserve("shop.fr", E1, 0.5, 0.0, 0.0, floor=3.0)
        assert busy == 0.0
        assert 2.9 <= wait <= 3.0
        assert 3.4 <= ahead <= 3.5
        await a.close()

    run(main)


def test_bans_ejections_and_sessions_reach_the_other_workers(server: RedisServer) -> None:
    async def main() -> None:
        a, pool_a, _ = worker(server.url)
        b, pool_b, stats_b = worker(server.url)
        await a.start()
        await b.start()
        await asyncio.sleep(0.2)  # b is subscribed
        pool_a.record_ban(E1, "shop.fr", "status_403")
        pool_a.record_transport_failure(E2, "shop.fr", "DownloadConnectionRefusedError")
        choice = pool_a.choose("fr", "blog.fr", session="basket")
        pool_a.release(choice.entry.id)
        await until(lambda: pool_b.ready_at(E1, "shop.fr") is not None)
        await until(lambda: pool_b.ejected_until(E2) is not None)
        await until(lambda: pool_b.session_exit("basket") == choice.entry.id)
        assert pool_b.ready_at(E1, "blog.fr") is None  # the ban is the site's only
        assert stats_b.values["proxystack/redis/applied/ban"] == 1
        # A worker that starts later reads what is running.
        c, pool_c, _ = worker(server.url)
        await c.start()
        assert pool_c.ready_at(E1, "shop.fr") is not None
        assert pool_c.ejected_until(E2) is not None
        for w in (a, b, c):
            await w.close()

    run(main)


def test_in_flight_counts_are_shared_under_a_lease(server: RedisServer) -> None:
    async def main() -> None:
        a, pool_a, _ = worker(server.url)
        b, pool_b, stats_b = worker(server.url)
        await a.start()
        await b.start()
        chosen = [pool_a.choose("fr", "shop.fr").entry.id for _ in range(3)]
        expected = {e: chosen.count(e) for e in chosen}
        index = {p.id: k for k, p in enumerate(CONFIG.all_proxies)}
        await until(lambda: all(pool_b._remote.get(index[e]) == n for e, n in expected.items()))
        assert stats_b.values["proxystack/redis/workers"] == 2
        await a.close()  # leaves: its counts go at once
        await until(lambda: not pool_b._remote)
        await until(lambda: stats_b.values["proxystack/redis/workers"] == 1)
        await b.close()

    run(main)


def test_a_dead_workers_lease_runs_out(server: RedisServer) -> None:
    async def main() -> None:
        a, pool_a, _ = worker(server.url)
        b, pool_b, _ = worker(server.url)
        a.lease = 0.3
        await a.start()
        await b.start()
        pool_a.choose("fr", "shop.fr")
        await until(lambda: bool(pool_b._remote))
        for task in a._tasks:  # the worker dies: no more renewals, no goodbye
            task.cancel()
        await until(lambda: not pool_b._remote, seconds=3.0)
        await a.close()
        await b.close()

    run(main)


def test_losing_redis_mid_crawl_falls_back_and_resyncs(server: RedisServer) -> None:
    async def main() -> None:
        a, pool_a, stats_a = worker(server.url, timeout=0.1)
        b, pool_b, _ = worker(server.url, timeout=0.1)
        await a.start()
        await b.start()
        before = time.monotonic()
        server.stop()
        with pytest.raises(StateLost):
            await a.reserve("shop.fr", E1, 0.1, 0.0, 0.0)
        assert not a.healthy
        assert before <= a.lost_at <= time.monotonic()
        assert stats_a.values["proxystack/redis/lost"] == 1
        with pytest.raises(StateLost):  # no new attempt on every request while it is away
            await a.reserve("shop.fr", E1, 0.1, 0.0, 0.0)
        pool_a.record_ban(E1, "shop.fr", "status_403")  # learned while Redis is away
        server.start()  # same port, empty
        await until(lambda: a.healthy and b.healthy, seconds=10.0)
        assert stats_a.values["proxystack/redis/reconnected"] == 1
        await until(lambda: pool_b.ready_at(E1, "shop.fr") is not None)  # told on reconnect
        client = server.client()
        try:
            assert client.pttl(f"proxystack:test:ban|shop.fr|{E1}") > 0
        finally:
            client.close()
        await a.close()
        await b.close()

    run(main)


def test_a_worker_knows_the_others_before_its_first_booking(server: RedisServer) -> None:
    async def main() -> None:
        # Mirror exchanges far apart: what a worker knows, it learned when it joined.
        a, b, c = (worker(server.url, mirror_interval=30.0)[0] for _ in range(3))
        for w in (a, b, c):
            await w.start()
        assert (a.workers, b.workers, c.workers) == (1, 2, 3)
        for w in (a, b, c):
            await w.close()

    run(main)


def test_a_redis_restarted_empty_does_not_make_the_others_forgotten(
    server: RedisServer,
) -> None:
    async def main() -> None:
        a, _, _ = worker(server.url, timeout=0.1)
        others = [worker(server.url, timeout=0.1)[0] for _ in range(2)]
        await a.start()
        for w in others:
            await w.start()
        await until(lambda: a.workers == 3)
        for w in others:  # still on their own state when Redis comes back: they do not rejoin
            for task in w._tasks:
                task.cancel()
        server.stop()
        with pytest.raises(StateLost):
            await a.reserve("shop.fr", E1, 0.1, 0.0, 0.0)
        server.start()  # empty: a is the only worker it knows
        await until(lambda: a.healthy, seconds=10.0)
        await asyncio.sleep(0.3)  # a few lease exchanges
        assert a.workers == 3
        assert a.share == 3  # each site's budget stays divided while the others may be away
        for w in (a, *others):
            await w.close()

    run(main)


def test_an_unreachable_redis_is_named_without_its_password(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path, password="hunter2-secret")  # not started
    with pytest.raises(StateUnavailable) as info:
        ping(srv.url, 0.2)
    message = str(info.value)
    assert f"127.0.0.1:{srv.port}" in message
    assert "hunter2" not in message
    state, _, _ = worker(srv.url)
    assert "hunter2" not in repr(state)


def test_a_password_protected_redis_works(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path, password="hunter2-secret").start()
    try:
        ping(srv.url, 1.0)

        async def main() -> None:
            a, _, _ = worker(srv.url)
            await a.start()
            assert a.healthy
            await a.close()

        run(main)
    finally:
        srv.stop()
