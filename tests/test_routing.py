"""The routing record and the Router, without a crawler (scrapy_proxystack/routing.py)."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request
from scrapy.settings import Settings

from scrapy_proxystack.config import parse_proxy_config
from scrapy_proxystack.exceptions import ExitNotReady, ExitUnavailable, SessionRetired
from scrapy_proxystack.locales import LocaleResolver
from scrapy_proxystack.parking import ParkingLot
from scrapy_proxystack.pool import ExitPool, HealthParams
from scrapy_proxystack.routing import MAX_THROTTLES, Route, Router, route_of
from scrapy_proxystack.settings import ProxyStackSettings
from scrapy_proxystack.stats import StatsRecorder

if TYPE_CHECKING:
    from scrapy_proxystack.signals import ExitOutcome

FR = ["http://127.0.0.1:3101", "http://127.0.0.1:3102"]
DE = ["http://127.0.0.1:3201"]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class DictStats:
    """The four calls StatsRecorder makes, over a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count

    def set_value(self, key: str, value: Any) -> None:
        self.values[key] = value

    def max_value(self, key: str, value: Any) -> None:
        self.values[key] = max(self.values.get(key, value), value)

    def get_value(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


class Sink:
    def __init__(self) -> None:
        self.outcomes: list[ExitOutcome] = []
        self.warnings: list[tuple[str, ...]] = []
        self.armed: list[float] = []
        self.closed: list[str] = []
        self.open = True

    def send_outcome(self, outcome: ExitOutcome, request: Request) -> None:
        self.outcomes.append(outcome)

    def warn_once(
        self, key: tuple[str, ...], msg: str, args: dict[str, object], *, level: int = 30
    ) -> bool:
        if key in self.warnings:
            return False
        self.warnings.append(key)
        return True

    def close(self, reason: str) -> None:
        self.closed.append(reason)

    def arm(self, at: float) -> None:
        self.armed.append(at)

    def is_open(self) -> bool:
        return self.open


def make(
    settings: dict[str, Any] | None = None,
    *,
    dispatch_binding: bool = False,
    locales: dict[str, Any] | None = None,
) -> tuple[Router, DictStats, Sink, Clock]:
    config = parse_proxy_config(
        {
            "locales": locales if locales is not None else {"fr": FR, "de": DE},
            "domains": {"site.fr": {"locale": "fr"}, "site.de": {"locale": "de"}},
        }
    )
    clock = Clock()
    st = ProxyStackSettings.from_settings(Settings(settings or {}))
    pool = ExitPool(config, health=HealthParams(), clock=clock)
    stats, sink = DictStats(), Sink()
    router = Router(
        pool=pool,
        stats=StatsRecorder(stats),  # type: ignore[arg-type]
        settings=st,
        locales=LocaleResolver(config, st.tld_locales),
        lot=ParkingLot(),
        sink=sink,
        accept_language={"fr": "fr-FR,fr;q=0.9", "de": None},
        default_accept_language=None,
        default_timeout=180.0,
        dispatch_binding=dispatch_binding,
        clock=clock,
        wall_clock=clock,
    )
    return router, stats, sink, clock


def test_route_binds_an_exit_of_the_sites_locale_and_records_it() -> None:
    router, stats, _, _ = make()
    request = Request("http://site.fr/a")
    assert router.route(request) is None
    route = route_of(request)
    assert route.decision is not None
    assert route.decision.locale == "fr"
    assert route.decision.source == "domain"
    assert route.exit_locale == "fr"
    assert route.exit_id in {"127.0.0.1:3101", "127.0.0.1:3102"}
    assert route.held == route.exit_id
    assert request.meta["proxy"] in FR
    assert request.headers[b"Accept-Language"] == b"fr-FR,fr;q=0.9"
    assert stats.values["proxystack/requests/locale/fr"] == 1


def test_the_suites_bookkeeping_is_one_record_under_one_key() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a", meta={"proxystack_locale": "de"})
    router.route(request)
    ours = [k for k in request.meta if k.startswith("_proxystack")]
    assert ours == ["_proxystack"]
    assert isinstance(request.meta["_proxystack"], Route)


def test_a_copy_shares_the_record_but_never_changes_the_originals() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a")
    router.route(request)
    bound = route_of(request).exit_id
    retry = request.replace(dont_filter=True)
    router.forget(retry, tried=True)
    assert route_of(retry).exit_id is None
    assert route_of(retry).tried == (bound,)
    assert route_of(request).exit_id == bound  # the original still knows its exit
    assert "proxy" in request.meta
    assert "proxy" not in retry.meta


def test_a_retry_prefers_an_exit_it_has_not_tried() -> None:
    router, _, _, _ = make()
    for _ in range(20):
        request = Request("http://site.fr/a")
        router.route(request)
        first = route_of(request).exit_id
        router.release_held(request)
        router.forget(request)
        router.route(request)
        assert route_of(request).exit_id != first
        router.release_held(request)


def test_the_in_flight_slot_is_released_exactly_once() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a")
    router.route(request)
    assert router.pool.counts("fr").in_flight == 1
    router.release_held(request)
    router.release_held(request)
    copy = request.replace()
    router.release_held(copy)
    assert router.pool.counts("fr").in_flight == 0


def test_a_redirect_to_another_host_decides_the_locale_again() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a")
    router.route(request)
    redirected = request.replace(url="http://site.de/b")
    router.route(redirected)
    assert route_of(redirected).exit_locale == "de"
    assert route_of(redirected).tried == ()  # the hop did not fail through the French exit
    assert router.pool.counts("fr").in_flight == 0  # the hop gave back what it held


def test_a_shortened_timeout_is_restored_when_the_exit_is_forgotten() -> None:
    router, _, _, _ = make()
    for _ in range(3):  # teach the locale a latency of 0.1 s
        r = Request("http://site.fr/x")
        router.route(r)
        exit_id = router.exit_of(r)
        assert exit_id is not None
        router.take_held(r)
        router.pool.record_success(exit_id, "site.fr", 0.1)
    request = Request("http://site.fr/a")
    router.route(request)
    assert request.meta["download_timeout"] == 5.0  # max(ADAPTIVE_TIMEOUT_MIN, 10 x 0.1)
    assert router.timeout_shortened(request)
    router.forget(request)
    assert request.meta["download_timeout"] == 180.0


def test_no_exit_fails_closed_counted_and_said_once() -> None:
    router, stats, sink, _ = make()
    for _ in range(2):
        request = Request("http://elsewhere.test/", meta={"proxystack_locale": "mars"})
        with pytest.raises(ExitUnavailable, match="mars"):
            router.route(request)
    assert stats.values["proxystack/requests/no_exit/unknown_locale"] == 2
    assert stats.values["proxystack/requests/dropped/no_exit"] == 2
    assert router.dropped == {"mars": {"no_exit": 2}}
    assert [o.kind for o in sink.outcomes] == ["no_exit", "no_exit"]
    assert sink.warnings == [("no_exit", "mars", "unknown_locale")]


def test_a_scheduled_request_with_every_exit_banned_waits_in_the_lot() -> None:
    router, stats, sink, clock = make()
    request = Request("http://site.de/a")
    assert router.scheduled(request) is False  # it came through the scheduler
    router.pool.record_ban("127.0.0.1:3201", "site.de", "status_403")
    waiting = router.route(request)
    assert waiting is not None
    assert waiting is not request
    assert waiting.dont_filter
    assert route_of(waiting).park_at is not None
    assert route_of(waiting).waiting_since == clock.t
    assert stats.values["proxystack/requests/parked/de"] == 1
    assert route_of(request).park_at is None  # the original is not the one that waits
    park_at = route_of(waiting).park_at
    assert park_at == clock.t + 20.0  # the ban's first cool-down
    # The engine schedules the copy: it is parked, not downloaded.
    assert router.scheduled(waiting) is True
    assert len(router.lot) == 1
    assert sink.armed == [park_at]
    assert route_of(waiting).park_at is None


def test_an_unscheduled_request_with_every_exit_banned_fails_closed() -> None:
    router, stats, _, _ = make()
    router.pool.record_ban("127.0.0.1:3201", "site.de", "status_403")
    with pytest.raises(ExitUnavailable, match="all_banned"):
        router.route(Request("http://site.de/robots.txt"))
    assert stats.values["proxystack/requests/dropped/no_exit"] == 1


def test_waiting_is_bounded_by_ban_max_wait() -> None:
    router, _, _, clock = make({"PROXYSTACK_BAN_MAX_WAIT": 30.0})
    request = Request("http://site.de/a")
    router.scheduled(request)
    router.pool.record_ban("127.0.0.1:3201", "site.de", "status_403")  # a 20 s cool-down
    waiting = router.route(request)
    assert waiting is not None
    clock.t += 25.0  # it waited 25 s already: another 20 s would pass the bound
    router.scheduled(waiting)
    router.lot.drain()
    router.pool.record_ban("127.0.0.1:3201", "site.de", "status_403")
    with pytest.raises(ExitUnavailable):
        router.route(waiting)


def test_rebind_says_how_long_to_wait_or_fails_past_the_deadline() -> None:
    router, _, _, clock = make(dispatch_binding=True)
    request = Request("http://site.de/robots.txt")
    router.route(request)
    router.release_held(request)
    router.pool.pace("127.0.0.1:3201", "site.de", 2.0)
    wait = router.rebind(request, "site.de", deadline=clock.t + 10.0)
    assert wait == pytest.approx(2.0)
    with pytest.raises(ExitUnavailable):
        router.rebind(request, "site.de", deadline=clock.t + 1.0)
    assert route_of(request).exit_id is None
    assert not router.is_pending(request)


def test_rebind_hands_a_scheduled_request_back_to_wait() -> None:
    router, _, _, _ = make(dispatch_binding=True)
    request = Request("http://site.de/a")
    router.scheduled(request)
    router.route(request)
    router.pool.record_ban("127.0.0.1:3201", "site.de", "status_403")
    with pytest.raises(ExitNotReady) as info:
        router.rebind(request, "site.de", deadline=0.0)
    waiting = info.value.retry_request
    assert isinstance(waiting, Request)
    assert route_of(waiting).park_at is not None
    assert router.pool.counts("de").in_flight == 0


def test_a_retired_session_is_refused() -> None:
    router, stats, _, _ = make()
    request = Request("http://site.de/a", meta={"proxystack_session": "s1"})
    router.route(request)
    router.retire_session(request, "s1", "banned")
    with pytest.raises(SessionRetired, match="s1"):
        router.route(Request("http://site.de/b", meta={"proxystack_session": "s1"}))
    assert stats.values["proxystack/sessions/refused"] == 1


def test_throttled_copies_are_capped() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a")
    router.route(request)
    exit_id = router.exit_of(request)
    assert exit_id is not None
    for times in range(1, MAX_THROTTLES + 1):
        copy = router.throttled_copy(request, exit_id)
        assert copy is not None
        assert route_of(copy).throttled == times
        assert route_of(copy).tried == ()  # paced, not failed
        request = copy
    assert router.throttled_copy(request, exit_id) is None
    assert router.throttled_copy(Request("http://x/", meta={"dont_retry": True}), "e") is None


def test_a_usable_answer_ends_the_wait_clock() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a")
    router.route(request)
    exit_id = router.exit_of(request)
    assert exit_id is not None
    copy = router.throttled_copy(request, exit_id)
    assert copy is not None
    router.answered(copy)
    assert route_of(copy).waiting_since is None
    assert route_of(copy).throttled == 0


def test_the_record_survives_pickling_for_jobdir() -> None:
    router, _, _, _ = make()
    request = Request("http://site.fr/a")
    router.route(request)
    kept = pickle.loads(pickle.dumps(route_of(request)))
    assert kept == route_of(request)
    paused = router.for_pause(request)
    assert route_of(paused).waiting_since is None


def test_emit_describes_the_attempt() -> None:
    router, _, sink, _ = make()
    request = Request("http://site.fr/a", meta={"download_latency": 0.25, "retry_times": 2})
    router.route(request)
    router.emit(request, "success", "ok", status=200)
    outcome = sink.outcomes[-1]
    assert (outcome.locale, outcome.exit_locale, outcome.kind, outcome.status) == (
        "fr",
        "fr",
        "success",
        200,
    )
    assert outcome.exit_id == router.exit_of(request)
    assert outcome.latency == 0.25
    assert outcome.retries == 2
