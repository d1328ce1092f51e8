"""The pool's health under temporary refusals: who is blamed for a failure, idle sessions, and
the state a pause keeps (scrapy_proxystack/pool/exits.py). No crawler, injected clocks."""

from __future__ import annotations

import pytest

from scrapy_proxystack.pool import NoExit
from tests.test_pool import config, ids, make, proxies


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
