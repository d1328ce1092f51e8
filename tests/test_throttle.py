"""Site budgets, per-exit pacing and per-site rules, without a crawler
(scrapy_proxystack/throttle.py)."""

from __future__ import annotations

import pytest

from scrapy_proxystack.config import parse_proxy_config
from scrapy_proxystack.throttle import DomainRateLimiter, ExitPacer, RateRule, SiteThrottle


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


def test_learned_delays_survive_a_pause() -> None:
    pacer = ExitPacer()
    pacer.on_send("e", "s", 0.0)
    pacer.on_send("e", "s", 0.5)
    pacer.on_throttle("e", "s", 0.0)
    restored = ExitPacer()
    restored.import_state(pacer.export_state())
    assert restored.delay("e", "s", 0.0) == pacer.delay("e", "s", 0.0) == 1.0


def site_throttle(**kw: float) -> SiteThrottle:
    config = parse_proxy_config(
        {
            "locales": {"fr": ["http://127.0.0.1:3101"]},
            "domains": {"slow.fr": {"locale": "fr", "rate": 2.0, "burst": 3, "exit_delay": 1.5}},
        }
    )
    return SiteThrottle(
        rule_for=config.domain_rule,
        domain_rate=kw.get("domain_rate"),
        domain_burst=1,
        exit_delay=kw.get("exit_delay", 0.0),
        exit_delay_max=60.0,
    )


def test_a_sites_own_rule_applies_from_its_first_request() -> None:
    throttle = site_throttle(domain_rate=10.0, exit_delay=0.2)
    limiter = throttle.limiter_for("slow.fr")
    assert [limiter.reserve("slow.fr", 0.0) for _ in range(4)] == pytest.approx(
        [0.0, 0.0, 0.0, 0.5]  # burst 3, then one per 1/rate = 0.5 s
    )
    assert throttle.exit_delay_for("e1", "slow.fr") == 1.5
    other = throttle.limiter_for("fast.fr")
    assert [other.reserve("fast.fr", 0.0) for _ in range(2)] == pytest.approx([0.0, 0.1])
    assert throttle.exit_delay_for("e1", "fast.fr") == 0.2


def test_a_429_halves_the_pairs_rate_and_successes_bring_it_back() -> None:
    throttle = site_throttle(exit_delay=0.5)
    throttle.limiter_for("fast.fr")
    assert throttle.exit_throttled("e1", "fast.fr") == pytest.approx(1.0)
    assert throttle.exit_delay_for("e2", "fast.fr") == 0.5  # only that pair
    for _ in range(200):
        throttle.exit_succeeded("e1", "fast.fr")
    assert throttle.exit_delay_for("e1", "fast.fr") == 0.5


def test_a_ban_slows_a_pair_only_where_the_site_is_paced() -> None:
    unpaced = site_throttle()
    unpaced.exit_pushed_back("e1", "fast.fr", None)
    assert unpaced.exit_delay_for("e1", "fast.fr") == 0.0
    unpaced.exit_pushed_back("e1", "fast.fr", 7.0)  # but Retry-After always counts
    assert unpaced.exit_delay_for("e1", "fast.fr") == 7.0
    paced = site_throttle(exit_delay=1.0)
    paced.exit_pushed_back("e1", "fast.fr", None)
    assert paced.exit_delay_for("e1", "fast.fr") == 2.0
