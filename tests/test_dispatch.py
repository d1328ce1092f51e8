"""The checks right before a request leaves, without a crawler
(scrapy_proxystack/downloadhandlers/dispatch.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest

from scrapy_proxystack.downloadhandlers.dispatch import SendGate
from scrapy_proxystack.exceptions import ExitNotReady
from scrapy_proxystack.routing import route_of
from scrapy_proxystack.throttle import SiteThrottle
from tests.test_routing import DE, FR, make


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
