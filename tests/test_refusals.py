"""Temporary refusals, unit by unit: who is blamed for a failure, the parking lot, the pacer's
AIMD, the departure meter and the site-language evidence. No crawler, injected clocks."""

from __future__ import annotations

import pytest

from scrapy_proxystack.bans import declared_language, language_set
from scrapy_proxystack.languages import SiteLanguages
from scrapy_proxystack.parking import ParkingLot
from scrapy_proxystack.pool import NoExit
from scrapy_proxystack.throttle import DomainRateLimiter, ExitPacer, RateRule
from tests.test_pool import config, ids, make, proxies

# -- blame -----------------------------------------------------------------------------------


def test_an_ambiguous_failure_rests_the_pair_not_the_exit() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, clock = make(cfg)
    a, b, _c = ids(cfg, "us")
    assert pool.record_failure(a, "shop.com", "status_502") == "pair"
    assert pool.ejected_until(a) is None
    assert pool.ready_at(a, "shop.com") == clock() + 1.0  # rests for this site only
    assert pool.ready_at(a, "blog.com") is None
    assert pool.record_failure(a, "shop.com", "status_502") == "pair"
    assert pool.ready_at(a, "shop.com") == clock() + 2.0  # doubling while it keeps failing
    pool.record_success(b, "shop.com", 0.1)  # the site works through another exit
    assert pool.site_down_until("shop.com") is None


def test_an_exit_failing_on_a_second_site_is_ejected() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, _clock = make(cfg)
    a = ids(cfg, "us")[0]
    assert pool.record_failure(a, "shop.com", "DownloadFailedError") == "pair"
    assert pool.record_failure(a, "blog.com", "DownloadFailedError") == "ejected"
    assert pool.ejected_until(a) is not None
    assert pool.counts("us").failing == 1


def test_a_site_failing_through_working_exits_is_down_and_probed() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, clock = make(cfg, site_backoff=5.0)
    a, b, c = ids(cfg, "us")
    for exit_id in (a, b, c):
        pool.record_success(exit_id, "blog.com", 0.1)  # all three known to work
    assert pool.record_failure(a, "shop.com", "status_502") == "pair"
    assert pool.record_failure(b, "shop.com", "status_502") == "site_down"
    # The exits are not blamed: no ejection, no rest left over for the site that failed.
    assert all(pool.ejected_until(x) is None for x in (a, b, c))
    with pytest.raises(NoExit) as info:
        pool.choose("us", "shop.com")
    assert info.value.reason == "site_down"
    assert info.value.retry_at == clock() + 5.0
    assert pool.choose("us", "blog.com").entry.id in {a, b, c}  # other sites carry on
    clock.advance(5.0)
    probe = pool.choose("us", "shop.com")  # one probe goes through
    with pytest.raises(NoExit):
        pool.choose("us", "shop.com")  # the others wait for it
    assert pool.record_failure(probe.entry.id, "shop.com", "status_502") == "site_down"
    assert pool.site_down_until("shop.com") == clock() + 10.0  # a failed probe doubles it
    clock.advance(10.0)
    probe = pool.choose("us", "shop.com")
    assert pool.record_success(probe.entry.id, "shop.com", 0.1) is True  # back up
    assert pool.site_down_until("shop.com") is None
    assert pool.blocked_reasons("us", "shop.com") == {"ready": 3}


def test_unknown_exits_failing_together_do_not_take_a_site_down() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, _clock = make(cfg)
    a, b, _c = ids(cfg, "us")
    # Neither has ever worked: two broken exits, not a broken site.
    assert pool.record_failure(a, "shop.com", "status_502") == "pair"
    assert pool.record_failure(b, "shop.com", "status_502") == "pair"
    assert pool.site_down_until("shop.com") is None


def test_a_refusal_proves_the_site_and_the_exit_alive() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg)
    a, b = ids(cfg, "us")
    pool.record_success(a, "x.com", 0.1)
    pool.record_success(b, "x.com", 0.1)
    pool.record_failure(a, "shop.com", "status_502")
    assert pool.record_throttle(b, "shop.com", retry_after=3.0) is False
    assert pool.ready_at(b, "shop.com") == clock() + 3.0
    # a's failure no longer counts against the site: b's answer reset it.
    pool.record_failure(b, "blog.com", "status_502")
    assert pool.site_down_until("blog.com") is None


def test_blocked_reasons_name_what_holds_each_exit() -> None:
    cfg = config({"us": {"proxies": proxies(4)}})
    pool, _clock = make(cfg)
    a, b, c, d = ids(cfg, "us")
    pool.record_ban(a, "shop.com", "status_403")
    pool.record_ban(b, "shop.com", "lang_mismatch")
    pool.pace(c, "shop.com", 5.0)
    pool.record_transport_failure(d, "shop.com", "DownloadConnectionRefusedError")
    assert pool.blocked_reasons("us", "shop.com") == {
        "status_403": 1,
        "lang_mismatch": 1,
        "paced": 1,
        "ejected": 1,
    }
    assert pool.banned_exits("us") == 2


# -- the parking lot -------------------------------------------------------------------------


def test_parking_lot_releases_one_per_group_and_keeps_the_line() -> None:
    lot: ParkingLot[str] = ParkingLot(feedback_timeout=2.0)
    for k in range(3):
        lot.park("fr", "a.com", f"a{k}", ready_at=10.0)
    lot.park("fr", "b.com", "b0", ready_at=12.0)
    assert len(lot) == 4
    assert lot.waiting("fr") == 4
    assert lot.next_wake() == 10.0
    assert lot.due(9.9) == []
    assert lot.due(10.0) == [("fr", "a.com", "a0")]  # one per group
    lot.park("fr", "a.com", "a0", ready_at=11.0, front=True)  # found no exit: back in front
    assert lot.due(10.5) == []
    assert lot.due(11.0) == [("fr", "a.com", "a0")]
    lot.bound("fr", "a.com", 11.0)  # it found one: the next goes at once
    assert lot.due(11.0) == [("fr", "a.com", "a1")]
    # A released request never reported back does not stall its group.
    assert sorted(x for _, _, x in lot.due(13.0)) == ["a2", "b0"]
    assert len(lot) == 0
    assert lot.next_wake() is None


def test_parking_lot_wakes_a_site_and_drains() -> None:
    lot: ParkingLot[int] = ParkingLot()
    for k in range(5):
        lot.park("fr" if k % 2 else "ca", "down.com", k, ready_at=100.0)
    assert lot.wake_domain("down.com", 1.0) == 2
    assert sorted(x for _, _, x in lot.due(1.0)) == [0, 1]
    assert sorted(x for _, _, x in lot.drain()) == [2, 3, 4]
    assert len(lot) == 0
    assert lot.waiting_by_locale() == {}


def test_parking_lot_heap_stays_bounded_when_groups_are_retimed() -> None:
    lot: ParkingLot[int] = ParkingLot()
    lot.park("fr", "a.com", 1, ready_at=1000.0)
    for k in range(10_000):
        lot.wake("fr", "a.com", float(k))
    assert len(lot._heap) <= 4 * len(lot._groups) + 65


# -- pacing ----------------------------------------------------------------------------------


def test_pacer_halves_the_pairs_rate_on_429_and_recovers_slowly() -> None:
    pacer = ExitPacer(maximum=60.0)
    for t in (0.0, 0.3, 0.6, 0.9):
        pacer.on_send("e1", "shop.com", t)
    assert pacer.interval("e1", "shop.com") == pytest.approx(0.3)
    assert pacer.on_throttle("e1", "shop.com", 0.0) == pytest.approx(0.6)
    assert pacer.on_throttle("e1", "shop.com", 0.0) == pytest.approx(1.2)
    # Back quickly to 4/3 of the interval that drew the 429 (three quarters of that rate) ...
    for _ in range(22):
        pacer.on_success("e1", "shop.com", 0.0)
    assert 0.38 <= pacer.delay("e1", "shop.com", 0.0) <= 0.4
    # ... then slowly, probing.
    for _ in range(10):
        pacer.on_success("e1", "shop.com", 0.0)
    assert 0.36 <= pacer.delay("e1", "shop.com", 0.0) < 0.38
    assert pacer.delay("e2", "shop.com", 0.0) == 0.0  # other pairs untouched


def test_departures_keep_their_distance_when_a_timer_fires_late() -> None:
    limiter = DomainRateLimiter(RateRule(rate=10.0))
    assert limiter.reserve("a.com", 0.0) == 0.0
    assert limiter.reserve("a.com", 0.0) == pytest.approx(0.1)
    assert limiter.confirm("a.com", 0.0) == 0.0
    # The second request's timer fired 40 ms late; the third woke on time.
    assert limiter.confirm("a.com", 0.14) == 0.0
    assert limiter.reserve("a.com", 0.2) == pytest.approx(0.0)
    assert limiter.confirm("a.com", 0.2) == pytest.approx(0.04)
    assert limiter.confirm("a.com", 0.24) == 0.0


# -- languages -------------------------------------------------------------------------------


def test_a_locale_expects_every_language_of_its_accept_language() -> None:
    assert language_set("en-CA,fr-CA;q=0.9,en;q=0.8") == {"en", "fr"}
    assert language_set(["de", "fr-CH", "it"]) == {"de", "fr", "it"}
    assert declared_language(b'<!doctype html><html lang="fr-CA"><head>') == "fr"
    assert declared_language(b"<html><body>no declaration") is None


def test_a_language_is_learned_from_several_exits_and_a_block_needs_evidence() -> None:
    langs = SiteLanguages()
    assert langs.judge("en-only.fr", "en", "exit-1") == "pending"
    assert langs.judge("en-only.fr", "en", "exit-1") == "pending"  # same exit: no new evidence
    assert langs.judge("en-only.fr", "en", "exit-2") == "learned"
    assert langs.judge("en-only.fr", "en", "exit-3") == "site_language"
    assert langs.learned("en-only.fr") == "en"
    # A site that showed its locale's language: another one is a geo-block at once.
    langs.saw_expected("news.fr")
    assert langs.judge("news.fr", "en", "exit-1") == "geo_block"
    # A locale with a single exit learns from pages.
    assert [langs.judge("solo.fr", "de", "only") for _ in range(3)] == [
        "pending",
        "pending",
        "learned",
    ]


def test_idle_sticky_sessions_are_forgotten() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, clock = make(cfg, session_max_idle=60.0)
    for k in range(10_000):
        pool.release(pool.choose("us", "shop.com", session=f"s{k}").entry.id)
    kept = pool.choose("us", "shop.com", session="s0").entry.id  # used again, at the start
    pool.release(kept)
    clock.advance(30)
    pool.release(pool.choose("us", "shop.com", session="s1").entry.id)
    clock.advance(31)
    pool.expire()
    assert set(pool._sessions) == {"s1"}
    assert pool.session_exit("s1") is not None
    assert pool.session_exit("s5") is None


def test_exit_state_survives_a_pause_on_the_wall_clock() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, clock = make(cfg, max_ejection_share=1.0)
    a, b, c = ids(cfg, "us")
    pool.record_ban(a, "shop.com", "status_403")  # 20 s
    pool.pace(b, "shop.com", 5.0)
    pool.record_transport_failure(c, "x.com", "DownloadConnectionRefusedError")
    pool.release(pool.choose("us", "blog.com", session="cart").entry.id)
    state = pool.export_state(wall_now=50_000.0)
    # The next run starts 8 s later (wall clock) with a monotonic clock of its own.
    later, later_clock = make(cfg, max_ejection_share=1.0, clock=type(clock)(7.0))
    assert later.import_state(state, wall_now=50_008.0) >= 4
    assert later.ready_at(a, "shop.com") == pytest.approx(later_clock() + 12.0)
    assert later.ready_at(b, "shop.com") is None  # its 5 s were over during the pause
    assert later.ejected_until(c) is not None
    assert later.session_exit("cart") == pool.session_exit("cart")
    assert later.record_ban(a, "shop.com", "status_403") == 20.0  # running: streak kept
    pacer = ExitPacer()
    pacer.on_send("e", "s", 0.0)
    pacer.on_send("e", "s", 0.5)
    pacer.on_throttle("e", "s", 0.0)
    restored = ExitPacer()
    restored.import_state(pacer.export_state())
    assert restored.delay("e", "s", 0.0) == pacer.delay("e", "s", 0.0) == 1.0


def test_a_request_back_in_front_does_not_delay_one_already_released() -> None:
    lot: ParkingLot[str] = ParkingLot(feedback_timeout=2.0)
    for name in ("a", "b", "c"):
        lot.park("fr", "x.com", name, ready_at=1.0)
    assert lot.due(1.0) == [("fr", "x.com", "a")]
    lot.bound("fr", "x.com", 1.5)  # "a" found an exit: "b" may go now ...
    lot.park("fr", "x.com", "late", ready_at=300.0, front=True)  # ... whatever another says
    assert lot.due(1.5) == [("fr", "x.com", "late")]
