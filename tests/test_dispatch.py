"""The checks right before a request leaves, without a crawler
(scrapy_proxystack/downloadhandlers/dispatch.py)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest

from scrapy_proxystack.downloadhandlers.dispatch import SendGate
from scrapy_proxystack.exceptions import ExitNotReady
from scrapy_proxystack.routing import route_of
from scrapy_proxystack.state import StateLost
from scrapy_proxystack.throttle import SiteThrottle
from tests.test_routing import DE, FR, make

if TYPE_CHECKING:
    from collections.abc import Coroutine


class FakeTime:
    """A monotonic clock that only moves when the gate sleeps."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.t += seconds


def gate(
    settings: dict[str, Any] | None = None, **kw: Any
) -> tuple[SendGate, Any, FakeTime, list[tuple[Any, ...]]]:
    router, stats, _, clock = make(settings, dispatch_binding=True, locales=kw.pop("locales", None))
    time = FakeTime(clock)
    waits: list[tuple[Any, ...]] = []
    throttle = SiteThrottle(
        rule_for=router.locales.config.domain_rule,
        domain_rate=kw.pop("domain_rate", None),
        domain_burst=1,
        exit_delay=kw.pop("exit_delay", 0.0),
        exit_delay_max=60.0,
    )
    send = SendGate(
        router=router,
        pool=router.pool,
        throttle=throttle,
        stats=router.stats,
        max_wait=10.0,
        on_wait=lambda *args: waits.append(args),
        clock=clock,
        sleep=time.sleep,
        **kw,
    )
    return send, stats, time, waits


def routed(send: SendGate, url: str, *, scheduled: bool = False) -> Request:
    request = Request(url)
    if scheduled:
        send.router.scheduled(request)
    assert send.router.route(request) is None
    return request


def test_the_site_budget_holds_over_every_exit() -> None:
    send, stats, time, waits = gate(domain_rate=2.0)
    for _ in range(3):
        asyncio.run(send.before_send(routed(send, "http://site.fr/a")))
    assert time.clock.t == pytest.approx(1000.0 + 2 * 0.5)  # one request per 0.5 s
    assert [w[3] for w in waits] == ["site_rate", "site_rate"]
    assert stats.values["proxystack/throttle/waits"] == 2
    assert stats.values["proxystack/requests/locale/fr"] == 3  # counted when sent


def test_an_exit_paced_while_queued_is_swapped_for_a_ready_one() -> None:
    send, stats, time, _ = gate()
    request = routed(send, "http://site.fr/a")
    first = route_of(request).exit_id
    assert first is not None
    send.pool.pace(first, "site.fr", 30.0)
    asyncio.run(send.before_send(request))
    assert route_of(request).exit_id not in (None, first)
    assert stats.values["proxystack/exits/rebound"] == 1
    assert time.slept == []
    assert send.pool.counts("fr").in_flight == 1  # the swapped exit's slot was given back


def test_a_request_waits_for_its_only_exit_within_max_wait() -> None:
    send, stats, time, waits = gate()
    request = routed(send, "http://site.de/a")
    exit_id = route_of(request).exit_id
    assert exit_id is not None
    send.pool.pace(exit_id, "site.de", 3.0)
    asyncio.run(send.before_send(request))
    assert route_of(request).exit_id == exit_id
    assert sum(time.slept) == pytest.approx(3.0)
    assert waits[0][3] == "exit_pacing"
    assert stats.values["proxystack/throttle/exit_waits"] == 1


#: Two pools of one locale, as a canary and its baseline have them.
POOLS = {
    "fr": {
        "pools": {
            "stable": {"weight": 1, "proxies": [FR[0]]},
            "candidate": {"weight": 1, "proxies": [FR[1]]},
        }
    },
    "de": DE,
}


@pytest.mark.parametrize("session", [None, "s1"])
def test_a_pool_closed_while_a_request_queued_does_not_carry_it(session: str | None) -> None:
    send, stats, _, _ = gate(locales=POOLS)
    send.pool.set_pool_weight("fr", "stable", 0.0)  # so that the request goes to the candidate
    request = Request("http://site.fr/a", meta={"proxystack_session": session} if session else {})
    assert send.router.route(request) is None
    assert route_of(request).exit_pool == "candidate"
    # The candidate is rolled back while the request waits in the downloader.
    send.pool.set_pool_weight("fr", "candidate", 0.0)
    send.pool.set_pool_weight("fr", "stable", 1.0)
    asyncio.run(send.before_send(request))
    if session is None:
        assert route_of(request).exit_pool == "stable"
        assert stats.values["proxystack/exits/rebound"] == 1
    else:
        # A sticky session keeps the exit it was pinned to.
        assert route_of(request).exit_pool == "candidate"
        assert "proxystack/exits/rebound" not in stats.values
    assert send.pool.counts("fr").in_flight == 1


def test_a_scheduled_request_goes_back_to_wait_outside_the_downloader() -> None:
    send, _, time, _ = gate()
    request = routed(send, "http://site.de/a", scheduled=True)
    send.pool.record_ban("127.0.0.1:3201", "site.de", "status_403")
    with pytest.raises(ExitNotReady) as info:
        asyncio.run(send.before_send(request))
    assert isinstance(info.value.retry_request, Request)
    assert time.slept == []  # it did not sleep in the downloader
    assert send.pool.counts("de").in_flight == 0


def test_each_exit_is_paced_per_site_after_it_sends() -> None:
    send, _, _, _ = gate(exit_delay=2.0)
    request = routed(send, "http://site.de/a")
    asyncio.run(send.before_send(request))
    exit_id = route_of(request).exit_id
    assert exit_id is not None
    assert send.pool.ready_at(exit_id, "site.de") == pytest.approx(send._clock() + 2.0)
    assert send.pool.ready_at(exit_id, "site.fr") is None


@pytest.mark.parametrize("scheduled", [True, False])
def test_closing_ends_a_wait(scheduled: bool) -> None:
    closing = [False]

    def is_closing() -> bool:
        return closing[0]

    send, _, time, _ = gate(domain_rate=0.1, closing=is_closing)
    asyncio.run(send.before_send(routed(send, "http://site.fr/a")))
    request = routed(send, "http://site.fr/b", scheduled=scheduled)
    closing[0] = True
    if scheduled:
        with pytest.raises(ExitNotReady) as info:
            asyncio.run(send.before_send(request))
        held = info.value.retry_request
        assert isinstance(held, Request)
        assert route_of(held).exit_id is None  # it will be routed afresh
    else:
        with pytest.raises(IgnoreRequest, match="closing"):
            asyncio.run(send.before_send(request))
    assert time.slept == [0.5]  # one step of the wait, then it noticed
    assert send.pool.counts("fr").in_flight == 1  # the first one, still out; not the second


def test_a_request_the_suite_did_not_route_only_takes_the_budget() -> None:
    send, stats, _, _ = gate(domain_rate=1.0)
    request = Request("http://site.fr/a", meta={"proxy": "http://127.0.0.1:9"})
    send.router.route(request)  # the user's own proxy: not routed
    asyncio.run(send.before_send(request))
    asyncio.run(send.before_send(request))
    assert stats.values["proxystack/throttle/waits"] == 1
    assert "proxystack/requests/locale/fr" not in stats.values


class VirtualTime:
    """A monotonic clock for several concurrent requests: it moves only when every task
    sleeps, to the earliest wake-up."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.clock.t + seconds, next(self._order), wake))
        await wake

    async def run(self, *coros: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(100):  # every task runs until it sleeps
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                break
            assert self._sleepers, "the tasks wait for each other"
            t, _, wake = heapq.heappop(self._sleepers)
            self.clock.t = max(self.clock.t, t)
            wake.set_result(None)
        for task in tasks:
            task.result()


class SharedSchedule:
    """What the shared state keeps of a site's schedule (the reserve script of
    scrapy_proxystack/state/redis_state.py, on the workers' one clock)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.tat: dict[str, float] = {}


class FakeShared:
    """One worker's side of a :class:`SharedSchedule` (a SharedState without Redis)."""

    def __init__(
        self, schedule: SharedSchedule, workers: int, lookahead: float, rank: int = 0
    ) -> None:
        self.schedule = schedule
        self.healthy = True
        self.workers = workers
        self.rank = rank
        self.share = 1
        self.lookahead = lookahead
        self.lost_at = 0.0
        self.listener = None
        self.booked_at: list[float] = []

    async def reserve(
        self,
        domain: str,
        exit_id: str | None,
        interval: float,
        tolerance: float,
        delay: float,
        floor: float = 0.0,
    ) -> tuple[float, float, float]:
        if not self.healthy:
            raise StateLost("gone")
        now = self.schedule.clock()
        self.booked_at.append(now)
        tat = max(self.schedule.tat.get(domain, 0.0), now + max(floor, 0.0))
        self.schedule.tat[domain] = tat + interval
        return 0.0, max(0.0, tat - tolerance - now), tat + interval - now

    def lose(self) -> None:
        self.healthy = False
        self.lost_at = self.schedule.clock()

    def rejoin(self) -> None:
        self.healthy = True
        self.share = self.workers  # for a while after a reconnection


def worker_gates(
    n: int, rate: float, lookahead: float
) -> tuple[list[SendGate], list[FakeShared], SharedSchedule, VirtualTime]:
    """``n`` workers' gates on one clock, sharing one site schedule."""
    vt = VirtualTime(make()[3])
    schedule = SharedSchedule(vt.clock)
    gates, states = [], []
    for rank in range(n):
        state = FakeShared(schedule, n, lookahead, rank)
        send = gate(domain_rate=rate, shared=state)[0]
        send._clock = vt.clock
        send._sleep = vt.sleep
        gates.append(send)
        states.append(state)
    return gates, states, schedule, vt


@pytest.mark.parametrize("workers", [1, 3])
def test_losing_the_shared_state_and_finding_it_empty_keeps_the_site_rate(workers: int) -> None:
    """Each worker has 8 requests at the site at once; the shared state goes away after 2
    departures (when the workers' last views of the schedule differ most) and comes back
    empty, to one worker at a time, after 6 more. The site sees at most ``workers`` schedules
    1 / rate x workers apart at any time, not in phase: n departures span at least
    (n - workers) intervals."""
    interval = 0.125
    gates, states, schedule, vt = worker_gates(workers, 1 / interval, lookahead=0.2)
    pages = deque(f"http://site.fr/{k}" for k in range(30))
    sent: list[float] = []

    def departed() -> None:
        sent.append(vt.clock.t)
        if len(sent) == 2:
            for state in states:
                state.lose()
        back = len(sent) - 8  # from the 8th departure on, a worker back every second one
        if back >= 0 and back % 2 == 0 and back // 2 < workers:
            if back == 0:
                schedule.tat.clear()  # restarted empty
            states[back // 2].rejoin()

    async def slot(send: SendGate) -> None:
        while pages:
            await send.before_send(routed(send, pages.popleft()))
            departed()

    asyncio.run(vt.run(*(slot(send) for send in gates for _ in range(8))))
    assert len(sent) == 30
    assert all(state.healthy for state in states)  # they came back
    for i, j in itertools.combinations(range(len(sent)), 2):
        assert sent[j] - sent[i] >= (j - i - (workers - 1)) * interval - 1e-9, (i, j, sent)
    # Here they lost it at the same time: their schedules, a slot apart by rank, interleave.
    assert min(b - a for a, b in itertools.pairwise(sent)) >= interval - 1e-9, sent


def test_a_worker_books_a_sites_next_slot_only_once_its_last_one_is_near() -> None:
    (send,), (state,), _, vt = worker_gates(1, 8.0, lookahead=0.2)

    async def request(k: int) -> None:
        await send.before_send(routed(send, f"http://site.fr/{k}"))

    asyncio.run(vt.run(*(request(k) for k in range(8))))
    departures = [1000.0 + k * 0.125 for k in range(8)]
    for booked, previous in zip(state.booked_at[1:], departures, strict=False):
        assert booked >= previous - 0.2 - 1e-9
