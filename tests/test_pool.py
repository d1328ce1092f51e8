"""The exit pool: strategies, health, bans, fail-closed chains, sessions and counters."""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from scrapy_proxystack.config import STRATEGIES, parse_proxy_config
from scrapy_proxystack.pool import (
    Choice,
    ExitPool,
    HealthParams,
    NoExit,
    PoolCounts,
    SessionLost,
)

if TYPE_CHECKING:
    from scrapy_proxystack.config import ProxyConfig


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


_ports = itertools.count()


def port() -> int:
    return 2000 + next(_ports) % 60000


def proxies(k: int, weights: list[float] | None = None) -> list[Any]:
    """``k`` proxy URLs with distinct ports (ids are then ``127.0.0.1:<port>``)."""
    urls = [f"http://127.0.0.1:{port()}" for _ in range(k)]
    if weights is None:
        return urls
    return [{"url": u, "weight": w} for u, w in zip(urls, weights, strict=True)]


def config(locales: dict[str, Any], unlocalized: int = 0) -> ProxyConfig:
    extra = [f"http://127.0.0.1:{port()}" for _ in range(unlocalized)]
    return parse_proxy_config({"locales": locales}, extra_unlocalized=extra)


def ids(cfg: ProxyConfig, locale: str | None = None) -> list[str]:
    entries = cfg.all_proxies if locale is None else cfg.locales[locale].proxies
    return [e.id for e in entries]


def make(
    cfg: ProxyConfig,
    *,
    strategy: str = "latency",
    clock: FakeClock | None = None,
    seed: int = 1,
    panic: bool = True,
    **health: Any,
) -> tuple[ExitPool, FakeClock]:
    clock = clock or FakeClock()
    pool = ExitPool(
        cfg,
        strategy=strategy,
        health=HealthParams(**health),
        clock=clock,
        rng=random.Random(seed),
        panic=panic,
    )
    return pool, clock


def pick(pool: ExitPool, locale: str | None, domain: str = "example.com", **kw: Any) -> str:
    """Choose and release at once: the exit id."""
    choice = pool.choose(locale, domain, **kw)
    pool.release(choice.entry.id)
    return choice.entry.id


def chi_square(observed: Counter[str], expected: dict[str, float]) -> float:
    return sum((observed[k] - e) ** 2 / e for k, e in expected.items())


# -- strategies -----------------------------------------------------------------------------------


def test_round_robin_cycles_exactly() -> None:
    cfg = config({"us": {"proxies": proxies(5)}})
    pool, _ = make(cfg, strategy="round_robin")
    picks = [pick(pool, "us") for _ in range(15)]
    assert sorted(picks[:5]) == sorted(ids(cfg, "us"))
    assert picks[5:10] == picks[:5]
    assert picks[10:15] == picks[:5]


def test_round_robin_skips_unready_and_keeps_cycling() -> None:
    cfg = config({"us": {"proxies": proxies(4)}})
    pool, _ = make(cfg, strategy="round_robin")
    banned = ids(cfg, "us")[1]
    pool.record_ban(banned, "example.com", "status_403")
    picks = [pick(pool, "us") for _ in range(9)]
    assert banned not in picks
    assert sorted(picks[:3]) == sorted(set(ids(cfg, "us")) - {banned})
    assert picks[3:6] == picks[:3]
    assert banned in {pick(pool, "us", "other.org") for _ in range(4)}


def test_locale_strategy_overrides_the_default() -> None:
    cfg = config({"us": {"proxies": proxies(3), "strategy": "round_robin"}})
    pool, _ = make(cfg, strategy="random")
    picks = [pick(pool, "us") for _ in range(6)]
    assert picks[3:] == picks[:3]
    assert len(set(picks)) == 3


def test_random_is_uniform() -> None:
    cfg = config({"us": {"proxies": proxies(10)}})
    pool, _ = make(cfg, strategy="random", seed=7)
    n = 20_000
    counts = Counter(pick(pool, "us") for _ in range(n))
    # chi-square, 9 degrees of freedom: 27.88 is the 0.1 % critical value.
    assert chi_square(counts, dict.fromkeys(ids(cfg, "us"), n / 10)) < 27.88


def test_weighted_follows_proxy_weights() -> None:
    weights = [1.0, 2.0, 3.0, 4.0, 0.5]
    cfg = config({"us": {"proxies": proxies(5, weights)}})
    pool, _ = make(cfg, strategy="weighted", seed=3)
    n = 20_000
    counts = Counter(pick(pool, "us") for _ in range(n))
    total = sum(weights)
    for exit_id, w in zip(ids(cfg, "us"), weights, strict=True):
        assert abs(counts[exit_id] / n - w / total) < 0.03, (exit_id, counts)
    expected = {k: n * w / total for k, w in zip(ids(cfg, "us"), weights, strict=True)}
    assert chi_square(counts, expected) < 18.47  # 4 dof, 0.1 %


def test_weighted_gives_an_ejected_exit_weight_zero_until_it_returns() -> None:
    cfg = config({"us": {"proxies": proxies(3, [10.0, 1.0, 1.0])}})
    pool, clock = make(cfg, strategy="weighted", max_ejection_share=1.0)
    heavy = ids(cfg, "us")[0]
    assert pool.record_transport_failure(heavy, "example.com", "timeout")
    assert heavy not in {pick(pool, "us") for _ in range(500)}
    clock.advance(40)
    counts = Counter(pick(pool, "us") for _ in range(2000))
    assert counts[heavy] > 1400


def test_weighted_canary_split_between_pools() -> None:
    cfg = config(
        {
            "eu": {
                "pools": {
                    "vendor_a": {"weight": 95, "proxies": proxies(20)},
                    "vendor_b": {"weight": 5, "proxies": proxies(3)},
                }
            }
        }
    )
    pool_names = {e.id: e.pool for e in cfg.all_proxies}
    for strategy in STRATEGIES:
        pool, _ = make(cfg, strategy=strategy, seed=11)
        n = 20_000
        counts = Counter(pool_names[pick(pool, "eu")] for _ in range(n))
        assert abs(counts["vendor_b"] / n - 0.05) < 0.015, (strategy, counts)


def test_canary_pool_without_usable_exit_gets_nothing() -> None:
    a, b = proxies(4), proxies(1)
    cfg = config(
        {"eu": {"pools": {"a": {"weight": 1, "proxies": a}, "b": {"weight": 99, "proxies": b}}}}
    )
    pool, _ = make(cfg, max_ejection_share=1.0)
    b_id = next(e.id for e in cfg.all_proxies if e.pool == "b")
    assert pool.record_transport_failure(b_id, "x", "timeout")
    assert b_id not in {pick(pool, "eu") for _ in range(300)}
    # A pool whose exits are all banned for a site is skipped for that site only.
    pool2, _ = make(cfg)
    pool2.record_ban(b_id, "shop.example", "status_403")
    assert b_id not in {pick(pool2, "eu", "shop.example") for _ in range(300)}
    assert Counter(pick(pool2, "eu", "other.example") for _ in range(300))[b_id] > 250


def test_least_connections_prefers_idle_exits() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, _ = make(cfg, strategy="least_connections")
    busy = pool.choose("us", "a.com", session="s")
    for _ in range(5):
        pool.choose("us", "a.com", session="s")
    idle = next(x for x in ids(cfg, "us") if x != busy.entry.id)
    assert {pick(pool, "us") for _ in range(200)} == {idle}


def test_least_connections_spreads_load_evenly() -> None:
    cfg = config({"us": {"proxies": proxies(10)}})
    pool, _ = make(cfg, strategy="least_connections", seed=5)
    for _ in range(1000):
        pool.choose("us", "a.com")
    per_pool = pool.counts("us")
    assert per_pool.in_flight == 1000
    # Power of two choices keeps the spread tiny; uniform random would be ~±30.
    loads = Counter[str]()
    pool2, _ = make(cfg, strategy="least_connections", seed=5)
    for _ in range(1000):
        loads[pool2.choose("us", "a.com").entry.id] += 1
    assert max(loads.values()) - min(loads.values()) <= 4


def test_latency_prefers_a_fast_healthy_exit() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, clock = make(cfg)
    fast, slow, _new = ids(cfg, "us")
    for _ in range(3):
        pool.record_success(fast, "a.com", 0.1)
        pool.record_success(slow, "a.com", 2.0)
        clock.advance(1)
    counts: Counter[str] = Counter()
    for _ in range(1000):
        choice = pool.choose("us", "b.com")
        counts[choice.entry.id] += 1
        latency = {fast: 0.1, slow: 2.0}.get(choice.entry.id, 0.5)
        pool.record_success(choice.entry.id, "b.com", latency)
        clock.advance(0.01)
    assert counts[fast] > 600
    assert counts[slow] < 50
    assert counts[_new] > 0  # unknown exits are scored at the pool mean: they get tried


def test_latency_does_not_prefer_a_fast_banning_exit() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg)
    banning, healthy = ids(cfg, "us")
    pool.record_success(healthy, "a.com", 0.8)
    pool.record_success(banning, "a.com", 0.8)
    for k in range(3):
        cooldown = pool.record_ban(banning, f"site{k}.com", "status_429", latency=0.02)
        assert cooldown == 20.0
        clock.advance(1)
    assert pool.latency_of(banning) == pytest.approx(0.8)  # a fast ban is not a sample
    counts = Counter(pick(pool, "us", "fresh.com") for _ in range(500))
    assert counts[healthy] == 500
    # The penalty fades: after a quiet spell the exit wins again once it is the faster one.
    clock.advance(1200)
    pool.record_success(healthy, "a.com", 0.9)
    assert Counter(pick(pool, "us", "fresh.com") for _ in range(400))[banning] == 400


def test_slow_ban_answer_counts_as_latency() -> None:
    cfg = config({"us": {"proxies": proxies(1)}})
    pool, _ = make(cfg)
    (only,) = ids(cfg, "us")
    pool.record_success(only, "a.com", 0.5)
    pool.record_ban(only, "b.com", "status_403", latency=4.0)
    assert pool.latency_of(only) == 4.0


def test_peak_ewma_and_locale_latency() -> None:
    cfg = config({"us": {"proxies": proxies(1)}, "fr": {"proxies": proxies(1)}})
    pool, clock = make(cfg, ewma_decay=10.0)
    (us,) = ids(cfg, "us")
    assert pool.latency_of(us) is None
    assert pool.locale_latency("us") is None
    pool.record_success(us, "a.com", 1.0)
    clock.advance(10)
    pool.record_success(us, "a.com", 3.0)  # a peak replaces the estimate at once
    assert pool.latency_of(us) == 3.0
    clock.advance(10)
    pool.record_success(us, "a.com", 1.0)  # lower samples pull it down by exp(-dt/tau)
    assert pool.latency_of(us) == pytest.approx(1.0 + 2.0 * 0.36787944, rel=1e-6)
    assert 1.0 < (pool.locale_latency("us") or 0) < 3.0
    assert pool.locale_latency(None) == pool.locale_latency("us")
    assert pool.locale_latency("fr") is None
    assert pool.locale_latency("nowhere") is None
    pool.record_success(us, "a.com", 0.0)  # not a sample
    pool.record_success(us, "a.com", float("nan"))
    assert pool.latency_of(us) == pytest.approx(1.0 + 2.0 * 0.36787944, rel=1e-6)


# -- ejection -------------------------------------------------------------------------------------


def test_ejection_backoff_grows_caps_and_jitters() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg, backoff_base=30, backoff_cap=600, max_ejection_share=0.5)
    sick, _ = ids(cfg, "us")
    durations = []
    for _ in range(8):
        assert pool.record_transport_failure(sick, "a.com", "timeout")
        until = pool.ejected_until(sick)
        assert until is not None
        durations.append(until - clock())
        assert sick not in {pick(pool, "us") for _ in range(50)}
        clock.t = until  # returns exactly at its time
        assert pool.ejected_until(sick) is None
    for k, d in enumerate(durations):
        nominal = min(600, 30 * 2**k)
        assert 0.8 * nominal <= d <= 1.2 * nominal, (k, d)
    assert len({round(d / min(600, 30 * 2**k), 6) for k, d in enumerate(durations)}) > 1


def test_success_heals_the_streak() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg)
    sick, _ = ids(cfg, "us")
    for _ in range(3):
        assert pool.record_transport_failure(sick, "a.com", "reset")
        clock.advance(700)
    pool.record_success(sick, "a.com", 0.2)
    assert pool.record_transport_failure(sick, "a.com", "reset")
    until = pool.ejected_until(sick)
    assert until is not None
    assert 24 <= until - clock() <= 36


def test_failures_to_eject_counts_consecutive_failures() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, _ = make(cfg, failures_to_eject=3)
    sick, _ = ids(cfg, "us")
    assert not pool.record_transport_failure(sick, "a.com", "timeout")
    assert not pool.record_transport_failure(sick, "a.com", "timeout")
    pool.record_success(sick, "a.com", 0.1)  # breaks the run
    assert not pool.record_transport_failure(sick, "a.com", "timeout")
    assert not pool.record_transport_failure(sick, "a.com", "timeout")
    assert pool.record_transport_failure(sick, "a.com", "timeout")
    assert not pool.record_transport_failure(sick, "a.com", "timeout")  # already ejected


def test_max_ejection_share_per_pool() -> None:
    cfg = config({"us": {"proxies": proxies(4)}, "fr": {"proxies": proxies(2)}})
    pool, _ = make(cfg, strategy="random", max_ejection_share=0.5)
    a, b, c, _ = ids(cfg, "us")
    assert pool.record_transport_failure(a, "x", "timeout")
    assert pool.record_transport_failure(b, "x", "timeout")
    assert not pool.record_transport_failure(c, "x", "timeout")  # would be 3/4 > 50 %
    counts = pool.counts("us")
    assert (counts.ejected, counts.usable, counts.ejection_capped) == (2, 2, 1)
    assert c in {pick(pool, "us") for _ in range(100)}
    # The share is per (locale, pool): fr is not affected by us.
    assert pool.record_transport_failure(ids(cfg, "fr")[0], "x", "timeout")


def test_one_exit_can_always_be_ejected_and_zero_share_disables() -> None:
    cfg = config({"us": {"proxies": proxies(1)}})
    pool, _ = make(cfg, max_ejection_share=0.5)
    assert pool.record_transport_failure(ids(cfg, "us")[0], "x", "timeout")  # as Envoy does
    pool2, _ = make(cfg, max_ejection_share=0.0)
    assert not pool2.record_transport_failure(ids(cfg, "us")[0], "x", "timeout")
    assert pool2.counts("us").ejection_capped == 1


def test_panic_uses_the_least_bad_exit() -> None:
    cfg = config({"fr": {"proxies": proxies(3), "fallback": ["eu"]}, "eu": {"proxies": proxies(1)}})
    pool, clock = make(cfg, max_ejection_share=1.0)
    for exit_id in ids(cfg, "fr"):
        assert pool.record_transport_failure(exit_id, "x", "timeout")
    # A usable exit in the chain: no panic, the fallback serves.
    choice = pool.choose("fr", "a.com")
    assert (choice.locale, choice.fallback, choice.panic) == ("eu", True, False)
    pool.release(choice.entry.id)
    assert pool.record_transport_failure(ids(cfg, "eu")[0], "x", "timeout")
    first_back = min(ids(cfg), key=lambda x: pool.ejected_until(x) or 0)
    choice = pool.choose("fr", "a.com")
    assert choice.panic
    assert choice.entry.id == first_back
    assert pool.counts().panics == 1
    # A success heals at once.
    pool.record_success(choice.entry.id, "a.com", 0.3)
    assert pool.ejected_until(first_back) is None
    assert not pool.choose("fr", "a.com").panic
    clock.advance(1)


def test_panic_disabled_fails_closed() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, _ = make(cfg, max_ejection_share=1.0, panic=False)
    for exit_id in ids(cfg, "us"):
        pool.record_transport_failure(exit_id, "x", "timeout")
    with pytest.raises(NoExit) as info:
        pool.choose("us", "a.com")
    assert info.value.reason == "all_ejected"
    assert info.value.locale == "us"
    assert info.value.retry_at == min(pool.ejected_until(x) or 0 for x in ids(cfg, "us"))


def test_panic_still_respects_bans_and_exclude() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, _ = make(cfg, max_ejection_share=1.0)
    a, b = ids(cfg, "us")
    pool.record_transport_failure(a, "x", "timeout")
    pool.record_transport_failure(b, "x", "timeout")
    pool.record_ban(a, "shop.com", "status_403")
    assert pick(pool, "us", "shop.com") == b
    with pytest.raises(NoExit) as info:
        pool.choose("us", "shop.com", exclude=[b])
    assert info.value.reason == "all_banned"


# -- fail closed, fallbacks -----------------------------------------------------------------------


def chain_config() -> ProxyConfig:
    return config(
        {
            "fr-CA": {"proxies": proxies(2), "fallback": ["fr"]},
            "fr": {"proxies": proxies(2), "fallback": ["eu"]},
            "eu": {"proxies": proxies(2)},
            "us": {"proxies": proxies(2)},
        },
        unlocalized=2,
    )


def test_never_leaves_the_chain() -> None:
    cfg = chain_config()
    pool, _ = make(cfg)
    allowed = {"fr-CA": {"fr-CA", "fr", "eu"}, "fr": {"fr", "eu"}, "eu": {"eu"}, "us": {"us"}}
    for locale, chain in allowed.items():
        for _ in range(200):
            assert pool.choose(locale, "a.com").entry.locale in chain
    everyone = {pick(pool, None) for _ in range(500)}
    assert everyone == set(ids(cfg))
    assert all(pool.choose(None, "a.com").locale is None for _ in range(5))


def test_fallback_order_and_no_exit_reasons() -> None:
    cfg = chain_config()
    pool, clock = make(cfg, ban_cooldown=300)
    site = "shop.fr"
    for exit_id in ids(cfg, "fr-CA"):
        pool.record_ban(exit_id, site, "status_403")
    choice = pool.choose("fr-CA", site)
    assert (choice.locale, choice.fallback) == ("fr", True)  # fr before eu
    pool.release(choice.entry.id)
    for exit_id in ids(cfg, "fr"):
        clock.advance(1)
        pool.record_ban(exit_id, site, "status_403")
    assert pool.choose("fr-CA", site).locale == "eu"
    for exit_id in ids(cfg, "eu"):
        pool.pace(exit_id, site, 20.0)
    with pytest.raises(NoExit) as info:
        pool.choose("fr-CA", site)
    assert info.value.reason == "all_banned"
    assert info.value.retry_at == clock() + 20.0  # the pacing delay ends first
    # Never through another country: us is fine but not in the chain.
    assert pool.choose("us", site).entry.locale == "us"
    with pytest.raises(NoExit) as info:
        pool.choose("mars", site)
    assert info.value.reason == "unknown_locale"
    clock.advance(20.0)
    assert pool.choose("fr-CA", site).locale == "eu"


def test_no_proxies() -> None:
    pool = ExitPool(parse_proxy_config({}))
    with pytest.raises(NoExit) as info:
        pool.choose(None, "a.com")
    assert info.value.reason == "no_proxies"
    assert pool.counts() == PoolCounts(None, None, 0, 0, 0, 0)
    assert len(pool) == 0


def test_exclude() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, _ = make(cfg)
    a, b, c = ids(cfg, "us")
    assert {pick(pool, "us", exclude=[a, "unknown"]) for _ in range(100)} == {b, c}
    assert {pick(pool, "us", exclude=(a, b)) for _ in range(20)} == {c}
    with pytest.raises(NoExit) as info:
        pool.choose("us", "a.com", exclude={a, b, c})
    assert (info.value.reason, info.value.retry_at) == ("all_tried", None)


# -- bans and pacing ------------------------------------------------------------------------------


def test_ban_is_per_domain() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg, strategy="random", ban_cooldown=300)
    a, b = ids(cfg, "us")
    assert pool.record_ban(a, "shop.com", "status_403") == 300.0
    assert pool.ready_at(a, "shop.com") == clock() + 300.0
    assert pool.ready_at(a, "blog.com") is None
    assert {pick(pool, "us", "shop.com") for _ in range(100)} == {b}
    assert {pick(pool, "us", "blog.com") for _ in range(100)} == {a, b}
    assert pool.ejected_until(a) is None
    clock.advance(300)
    assert a in {pick(pool, "us", "shop.com") for _ in range(100)}


def test_first_ban_is_short_and_a_ban_that_outlives_its_cooldown_grows_fast() -> None:
    cfg = config({"us": {"proxies": proxies(1)}})
    pool, clock = make(cfg)
    (a,) = ids(cfg, "us")
    seen = []
    for _ in range(6):
        # The first attempt after each cool-down is banned again: x4 each time, capped.
        cooldown = pool.record_ban(a, "shop.com", "captcha")
        seen.append(cooldown)
        clock.advance(cooldown)
    assert seen == [20, 80, 320, 1280, 3600, 3600]


def test_repeated_bans_between_successes_double() -> None:
    cfg = config({"us": {"proxies": proxies(1)}})
    pool, clock = make(cfg)
    (a,) = ids(cfg, "us")
    seen = []
    for _ in range(4):
        cooldown = pool.record_ban(a, "shop.com", "captcha")
        seen.append(cooldown)
        clock.advance(cooldown)
        pool.record_success(a, "shop.com", 0.2)
        clock.advance(1)
    assert seen == [20, 40, 80, 160]
    clock.advance(160 + 3601)  # a quiet spell longer than the cap: forgotten
    assert pool.record_ban(a, "shop.com", "captcha") == 20


def test_bans_landing_during_a_ban_do_not_grow_the_streak() -> None:
    cfg = config({"us": {"proxies": proxies(1)}})
    pool, clock = make(cfg)
    (a,) = ids(cfg, "us")
    assert [pool.record_ban(a, "shop.com", "status_403") for _ in range(5)] == [20.0] * 5
    clock.advance(20)
    assert pool.record_ban(a, "shop.com", "status_403") == 80.0


def test_ban_streak_is_forgotten_after_a_quiet_spell() -> None:
    cfg = config({"us": {"proxies": proxies(1)}})
    pool, clock = make(cfg, ban_cooldown=300, ban_cooldown_cap=3600)
    (a,) = ids(cfg, "us")
    pool.record_ban(a, "shop.com", "status_403")
    clock.advance(300 + 3601)
    assert pool.record_ban(a, "shop.com", "status_403") == 300.0


def test_retry_after_longer_than_cooldown_is_honoured() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg, ban_cooldown=300)
    a, b = ids(cfg, "us")
    assert pool.record_ban(a, "api.com", "status_429", retry_after=7200) == 7200
    assert pool.ready_at(a, "api.com") == clock() + 7200
    assert pool.record_ban(b, "api.com", "status_429", retry_after=10) == 300  # shorter: cool-down
    with pytest.raises(NoExit) as info:
        pool.choose("us", "api.com")
    assert info.value.retry_at == clock() + 300
    clock.advance(300)
    assert {pick(pool, "us", "api.com") for _ in range(50)} == {b}


def test_pacing_and_its_cost_when_most_of_a_pool_is_busy() -> None:
    cfg = config({"us": {"proxies": proxies(1000)}})
    pool, clock = make(cfg)
    everyone = ids(cfg, "us")
    for exit_id in everyone[:-1]:
        pool.pace(exit_id, "slow.com", 2.0)
    pool.pace(everyone[0], "slow.com", 0.5)  # never shortens
    assert pool.ready_at(everyone[0], "slow.com") == clock() + 2.0
    # Draws miss 999 times out of 1000: the scan finds the last exit.
    assert {pick(pool, "us", "slow.com") for _ in range(20)} == {everyone[-1]}
    pool.pace(everyone[-1], "slow.com", 1.0)
    with pytest.raises(NoExit) as info:
        pool.choose("us", "slow.com")
    assert info.value.retry_at == clock() + 1.0
    with pytest.raises(NoExit):  # the cached answer
        pool.choose("us", "slow.com")
    clock.advance(1.0)
    assert pick(pool, "us", "slow.com") == everyone[-1]
    clock.advance(1.0)
    assert len({pick(pool, "us", "slow.com") for _ in range(50)}) > 40


def test_blocked_cache_is_dropped_when_an_exit_returns() -> None:
    cfg = config({"us": {"proxies": proxies(3)}})
    pool, clock = make(cfg, max_ejection_share=1.0)
    a, b, c = ids(cfg, "us")
    assert pool.record_transport_failure(a, "x", "timeout")
    pool.record_ban(b, "shop.com", "captcha")
    pool.record_ban(c, "shop.com", "captcha")
    with pytest.raises(NoExit):
        pool.choose("us", "shop.com")
    clock.t = pool.ejected_until(a) or 0.0  # a returns long before the bans end
    assert pick(pool, "us", "shop.com") == a


def test_expire_keeps_memory_bounded() -> None:
    cfg = config({"us": {"proxies": proxies(2)}})
    pool, clock = make(cfg, ban_cooldown=300)
    a, b = ids(cfg, "us")
    for k in range(1000):
        pool.pace(a, f"site{k}.com", 1.0)
    pool.record_ban(b, "shop.com", "captcha")
    pool.pace(a, "shop.com", 10.0)
    pool.pace(b, "shop.com", 10.0)
    with pytest.raises(NoExit):
        pool.choose("us", "shop.com")
    clock.advance(2)
    assert pool.expire() == 1000
    assert len(pool._ready) == 1
    clock.advance(300)
    pool.expire()
    assert not pool._ready
    assert not pool._blocked
    assert pool._bans  # the streak is remembered for a while
    clock.advance(3601)
    pool.expire()
    assert not pool._bans
    assert pool.record_ban(b, "shop.com", "captcha") == 300


# -- sessions -------------------------------------------------------------------------------------


def test_sticky_session_pins_an_exit() -> None:
    cfg = config({"us": {"proxies": proxies(5)}})
    pool, _ = make(cfg)
    first = pool.choose("us", "shop.com", session="cart")
    pool.release(first.entry.id)
    for _ in range(20):
        again = pool.choose("us", "shop.com", session="cart")
        assert again.entry.id == first.entry.id
        pool.record_success(again.entry.id, "shop.com", 0.2)
    assert pool.session_exit("cart") == first.entry.id
    assert pool.session_exit("other") is None


def test_session_lost_after_a_ban_and_after_ejection() -> None:
    cfg = config({"us": {"proxies": proxies(5)}})
    pool, _ = make(cfg)
    pinned = pick(pool, "us", "shop.com", session="s1")
    pool.record_ban(pinned, "shop.com", "captcha")
    with pytest.raises(SessionLost) as info:
        pool.choose("us", "shop.com", session="s1")
    assert (info.value.session, info.value.reason) == ("s1", "banned")
    assert isinstance(info.value, NoExit)
    pool.end_session("s1")
    fresh = pick(pool, "us", "shop.com", session="s1")
    assert fresh != pinned

    pinned = pick(pool, "us", "blog.com", session="s2")
    assert pool.record_transport_failure(pinned, "blog.com", "timeout")
    with pytest.raises(SessionLost) as info:
        pool.choose("us", "blog.com", session="s2")
    assert info.value.reason == "ejected"


def test_session_paced_waits_and_other_reasons() -> None:
    cfg = config({"us": {"proxies": proxies(3)}, "fr": {"proxies": proxies(1)}})
    pool, clock = make(cfg)
    pinned = pick(pool, "us", "shop.com", session="s")
    pool.pace(pinned, "shop.com", 2.0)
    with pytest.raises(NoExit) as info:
        pool.choose("us", "shop.com", session="s")
    assert not isinstance(info.value, SessionLost)
    assert info.value.retry_at == clock() + 2.0
    clock.advance(2.0)
    assert pick(pool, "us", "shop.com", session="s") == pinned
    with pytest.raises(SessionLost) as lost:
        pool.choose("us", "shop.com", session="s", exclude=[pinned])
    assert lost.value.reason == "tried"
    with pytest.raises(SessionLost) as lost:
        pool.choose("fr", "shop.com", session="s")
    assert lost.value.reason == "other_locale"
    assert pick(pool, None, "shop.com", session="s") == pinned  # the pool of all holds it


# -- counters -------------------------------------------------------------------------------------


def test_counts_stay_consistent() -> None:
    cfg = config(
        {
            "eu": {
                "pools": {"a": {"weight": 9, "proxies": proxies(4)}, "b": {"proxies": proxies(2)}}
            }
        },
        unlocalized=1,
    )
    pool, clock = make(cfg)
    held = [pool.choose("eu", "a.com") for _ in range(6)]
    counts = pool.counts("eu")
    assert (counts.total, counts.usable, counts.ejected, counts.in_flight) == (6, 6, 0, 6)
    assert {p.pool: p.total for p in counts.pools} == {"a": 4, "b": 2}
    assert pool.record_transport_failure(held[0].entry.id, "a.com", "timeout")
    pool.release(held[1].entry.id)
    pool.release(held[1].entry.id)
    pool.release("no-such-exit")
    pool.record_ban(held[2].entry.id, "a.com", "captcha")
    counts = pool.counts("eu")
    assert (counts.usable, counts.ejected, counts.in_flight) == (5, 1, 3)
    total = pool.counts()
    assert (total.total, total.ejected, total.in_flight) == (7, 1, 3)
    assert {(p.locale, p.pool) for p in total.pools} == {
        ("eu", "a"),
        ("eu", "b"),
        (None, "default"),
    }
    clock.advance(1000)
    assert pool.counts("eu").ejected == 0
    with pytest.raises(KeyError):
        pool.counts("mars")


def test_unknown_exit_ids_are_ignored() -> None:
    pool, _ = make(config({"us": {"proxies": proxies(1)}}))
    pool.record_success("nope", "a.com", 1.0)
    assert pool.record_ban("nope", "a.com", "x") == 0.0
    assert not pool.record_transport_failure("nope", "a.com", "x")
    pool.pace("nope", "a.com", 1.0)
    assert pool.latency_of("nope") is None
    assert pool.ejected_until("nope") is None
    assert pool.ready_at("nope", "a.com") is None


def test_choices_are_shared_immutable_objects() -> None:
    cfg = config({"us": {"proxies": proxies(1)}, "gb": {"proxies": proxies(1), "fallback": ["us"]}})
    pool, _ = make(cfg)
    first = pool.choose("us", "a.com")
    assert pool.choose("us", "a.com") is first
    fallback = pool.choose("gb", "a.com", exclude=ids(cfg, "gb"))
    assert fallback == Choice(first.entry, "us", True, False)
    with pytest.raises(AttributeError):
        first.locale = "gb"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backoff_base": 0}, "backoff_base"),
        ({"backoff_cap": 1}, "backoff_cap"),
        ({"failures_to_eject": 0}, "failures_to_eject"),
        ({"max_ejection_share": 1.5}, "max_ejection_share"),
        ({"ban_cooldown": -1}, "ban_cooldown"),
        ({"ban_cooldown_cap": 10}, "ban_cooldown_cap"),
        ({"ewma_decay": float("nan")}, "ewma_decay"),
        ({"ban_latency_penalty": -1}, "ban_latency_penalty"),
    ],
)
def test_health_params_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthParams(**kwargs)


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="least_connections"):
        ExitPool(config({"us": {"proxies": proxies(1)}}), strategy="fastest")


# -- random operation sequences -------------------------------------------------------------------

DOMAINS = ("a.com", "b.com", "c.com")
LOCALES = (None, "fr-CA", "fr", "eu", "us", "mars")
CHOOSE_LOCALES = (None, None, "fr-CA", "fr-CA", "fr", "eu", "us", "us", "mars")
SESSIONS = (None, None, None, "s1", "s2")


@functools.cache
def machine_config() -> ProxyConfig:
    return config(
        {
            "fr-CA": {"proxies": proxies(2), "fallback": ["fr"]},
            "fr": {"proxies": proxies(2), "fallback": ["eu"]},
            "eu": {
                "pools": {
                    "a": {"weight": 3, "proxies": proxies(3)},
                    "b": {"weight": 1, "proxies": proxies(2)},
                }
            },
            "us": {"proxies": proxies(2), "strategy": "round_robin"},
        },
        unlocalized=1,
    )


class PoolMachine(RuleBasedStateMachine):
    """Drives an ExitPool with random operations and checks it against a brute-force model."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = machine_config()
        self.entries = {e.id: e for e in self.cfg.all_proxies}
        self.ids = list(self.entries)
        self.group = {e.id: (e.locale, e.pool) for e in self.cfg.all_proxies}
        self.group_size = Counter(self.group.values())
        self.pool: ExitPool | None = None
        self.clock = FakeClock()
        self.inflight: Counter[str] = Counter()
        self.until: dict[str, float] = {}  # ejection end, 0 = not ejected
        self.fails: Counter[str] = Counter()
        self.streak: Counter[str] = Counter()
        self.ready: dict[tuple[str, str], float] = {}
        self.bans: dict[tuple[str, str], tuple[int, float, bool]] = {}
        self.sessions: dict[str, str] = {}

    @initialize(
        strategy=st.sampled_from(STRATEGIES),
        share=st.sampled_from([0.0, 0.34, 0.5, 1.0, 1.0, 1.0]),
        failures=st.integers(1, 3),
        panic=st.booleans(),
        seed=st.integers(0, 2**16),
    )
    def start(self, strategy: str, share: float, failures: int, panic: bool, seed: int) -> None:
        # The model has no idle expiry of sticky sessions: the pool must not have one either.
        self.health = HealthParams(
            max_ejection_share=share, failures_to_eject=failures, session_max_idle=math.inf
        )
        self.pool = ExitPool(
            self.cfg,
            strategy=strategy,
            health=self.health,
            clock=self.clock,
            rng=random.Random(seed),
            panic=panic,
        )

    # model helpers
    def ejected(self, exit_id: str) -> bool:
        return self.until.get(exit_id, 0.0) > self.clock()

    def is_ready(self, exit_id: str, domain: str) -> bool:
        return self.ready.get((exit_id, domain), 0.0) <= self.clock()

    def chain(self, locale: str | None) -> list[str]:
        if locale is None:
            return self.ids
        names = self.cfg.fallback_chain(locale)
        return [x for x in self.ids if self.entries[x].locale in names]

    def usable(self, exit_id: str, domain: str, exclude: set[str]) -> bool:
        return (
            not self.ejected(exit_id) and self.is_ready(exit_id, domain) and exit_id not in exclude
        )

    def refresh(self) -> None:
        for exit_id, t in self.until.items():
            if 0.0 < t <= self.clock():
                self.until[exit_id] = 0.0
                self.fails[exit_id] = 0

    def done(self, exit_id: str) -> None:
        if self.inflight[exit_id] > 0:
            self.inflight[exit_id] -= 1

    @rule(
        locale=st.sampled_from(CHOOSE_LOCALES),
        domain=st.sampled_from(DOMAINS),
        exclude=st.sets(st.integers(0, 11), max_size=3),
        session=st.sampled_from(SESSIONS),
    )
    def choose(
        self, locale: str | None, domain: str, exclude: set[int], session: str | None
    ) -> None:
        assert self.pool is not None
        self.refresh()
        excl = {self.ids[k] for k in exclude}
        chain = self.chain(locale)
        pinned = self.sessions.get(session) if session is not None else None
        try:
            choice = self.pool.choose(locale, domain, exclude=excl, session=session)
        except SessionLost as exc:
            event(f"session lost: {exc.reason}")
            self.check_session_lost(exc, locale, domain, excl, pinned)
            self.pool.end_session(exc.session)
            del self.sessions[exc.session]
            return
        except NoExit as exc:
            event(f"no exit: {exc.reason}")
            self.check_no_exit(exc, locale, domain, excl, pinned)
            return
        assert locale != "mars"
        exit_id = choice.entry.id
        assert exit_id in chain, "left the locale chain"
        assert exit_id not in excl
        assert self.is_ready(exit_id, domain), "banned or paced exit chosen"
        if locale is None:
            assert choice.locale is None
            assert not choice.fallback
        else:
            assert choice.locale == choice.entry.locale
            assert choice.fallback == (choice.locale != locale)
        if pinned is not None:
            assert exit_id == pinned
            assert not choice.panic
        event("fallback" if choice.fallback else "own locale")
        if choice.panic:
            event("panic")
            assert all(self.ejected(x) for x in chain), "panic with a non-ejected exit"
            candidates = [x for x in chain if self.is_ready(x, domain) and x not in excl]
            assert self.until[exit_id] == min(self.until[x] for x in candidates)
        else:
            assert not self.ejected(exit_id), "ejected exit chosen outside panic"
        if session is not None:
            self.sessions[session] = exit_id
        self.inflight[exit_id] += 1

    def check_session_lost(
        self, exc: SessionLost, locale: str | None, domain: str, excl: set[str], pinned: str | None
    ) -> None:
        assert pinned is not None
        assert locale != "mars"
        expected = (
            "other_locale"
            if pinned not in self.chain(locale)
            else "ejected"
            if self.ejected(pinned)
            else "tried"
            if pinned in excl
            else "banned"
        )
        assert exc.reason == expected
        if expected == "banned":
            assert self.bans[(pinned, domain)][1] > self.clock()

    def check_no_exit(
        self, exc: NoExit, locale: str | None, domain: str, excl: set[str], pinned: str | None
    ) -> None:
        assert self.pool is not None
        if locale == "mars":
            assert exc.reason == "unknown_locale"
            return
        chain = self.chain(locale)
        if pinned is not None:
            # Only paced: the session keeps its exit and waits.
            assert pinned in chain
            assert not self.ejected(pinned)
            assert pinned not in excl
            assert exc.retry_at == self.ready[(pinned, domain)]
            assert exc.retry_at > self.clock()
            ban = self.bans.get((pinned, domain))
            assert ban is None or ban[1] <= self.clock()
            return
        assert not any(self.usable(x, domain, excl) for x in chain), exc
        all_ejected = all(self.ejected(x) for x in chain)
        if exc.reason == "all_ejected":
            assert all_ejected
            assert not self.pool.panic
        elif exc.reason == "all_banned":
            blocked = [
                self.ready[(x, domain)]
                for x in chain
                if (not self.ejected(x) or all_ejected) and x not in excl
                if not self.is_ready(x, domain)
            ]
            assert exc.retry_at == min(blocked)
            assert exc.retry_at > self.clock()
        else:
            assert exc.reason == "all_tried"
            if all_ejected and self.pool.panic:
                assert all(x in excl for x in chain if self.is_ready(x, domain))

    @rule(k=st.integers(0, 11))
    def release(self, k: int) -> None:
        assert self.pool is not None
        self.pool.release(self.ids[k])
        self.done(self.ids[k])

    @rule(k=st.integers(0, 11), domain=st.sampled_from(DOMAINS), latency=st.floats(0.0, 5.0))
    def success(self, k: int, domain: str, latency: float) -> None:
        assert self.pool is not None
        exit_id = self.ids[k]
        self.pool.record_success(exit_id, domain, latency)
        self.done(exit_id)
        self.refresh()
        self.until[exit_id] = 0.0
        self.fails[exit_id] = 0
        self.streak[exit_id] = 0
        ban = self.bans.get((exit_id, domain))
        if ban is not None:
            self.bans[(exit_id, domain)] = (ban[0], ban[1], True)

    @rule(k=st.integers(0, 11), domain=st.sampled_from(DOMAINS))
    def transport_failure(self, k: int, domain: str) -> None:
        self.fail(self.ids[k], domain)

    @rule(locale=st.sampled_from(LOCALES[1:-1]), rounds=st.integers(1, 3))
    def fail_whole_locale(self, locale: str, rounds: int) -> None:
        for _ in range(rounds):
            for exit_id in self.ids:
                if self.entries[exit_id].locale == locale:
                    self.fail(exit_id, "a.com")
        self.choose(locale, "a.com", set(), None)

    def fail(self, exit_id: str, domain: str) -> None:
        assert self.pool is not None
        self.refresh()
        group = self.group[exit_id]
        group_ejected = sum(1 for x in self.ids if self.group[x] == group and self.ejected(x))
        share = self.health.max_ejection_share
        expected = False
        if not self.ejected(exit_id):
            self.fails[exit_id] += 1
            if self.fails[exit_id] >= self.health.failures_to_eject:
                room = group_ejected == 0 or group_ejected + 1 <= share * self.group_size[group]
                expected = share > 0 and room
        ejected = self.pool.record_transport_failure(exit_id, domain, "timeout")
        self.done(exit_id)
        assert ejected == expected
        if ejected:
            self.streak[exit_id] += 1
            self.fails[exit_id] = 0
            until = self.pool.ejected_until(exit_id)
            assert until is not None
            nominal = min(600.0, 30.0 * 2 ** (self.streak[exit_id] - 1))
            assert 0.8 * nominal <= until - self.clock() <= 1.2 * nominal
            self.until[exit_id] = until

    @rule(
        k=st.integers(0, 11),
        domain=st.sampled_from(DOMAINS),
        retry_after=st.one_of(st.none(), st.floats(0, 5000)),
    )
    def ban(self, k: int, domain: str, retry_after: float | None) -> None:
        self.do_ban(self.ids[k], domain, retry_after)

    @rule(locale=st.sampled_from(LOCALES[1:-1]), domain=st.sampled_from(DOMAINS))
    def ban_whole_locale(self, locale: str, domain: str) -> None:
        for exit_id in self.ids:
            if self.entries[exit_id].locale == locale:
                self.do_ban(exit_id, domain, None)

    def do_ban(self, exit_id: str, domain: str, retry_after: float | None) -> None:
        assert self.pool is not None
        now = self.clock()
        previous = self.bans.get((exit_id, domain))
        streak, running = 1, 0.0
        if previous is not None:
            if now < previous[1]:
                streak, running = previous[0], previous[1]
            elif now <= previous[1] + 3600:
                # A repeat after a success doubles; a ban met again with no success since
                # outlived its cool-down and quadruples.
                streak = previous[0] + (1 if previous[2] else 2)
        cooldown = min(3600.0, 20.0 * 2 ** (streak - 1))
        if retry_after is not None and retry_after > cooldown:
            cooldown = retry_after
        assert self.pool.record_ban(exit_id, domain, "captcha", retry_after) == cooldown
        self.done(exit_id)
        self.fails[exit_id] = 0  # the site answered through the exit: the exit works
        until = max(now + cooldown, running)
        self.bans[(exit_id, domain)] = (streak, until, False)
        self.ready[(exit_id, domain)] = max(self.ready.get((exit_id, domain), 0.0), until)

    @rule(k=st.integers(0, 11), domain=st.sampled_from(DOMAINS), delay=st.floats(0, 30))
    def pace(self, k: int, domain: str, delay: float) -> None:
        assert self.pool is not None
        exit_id = self.ids[k]
        self.pool.pace(exit_id, domain, delay)
        if delay > 0:
            key = (exit_id, domain)
            self.ready[key] = max(self.ready.get(key, 0.0), self.clock() + delay)

    @rule(seconds=st.sampled_from([0.0, 0.5, 5.0, 29.0, 40.0, 200.0, 700.0, 4000.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(session=st.sampled_from(["s1", "s2"]))
    def end_session(self, session: str) -> None:
        assert self.pool is not None
        self.pool.end_session(session)
        self.sessions.pop(session, None)

    @rule()
    def expire(self) -> None:
        assert self.pool is not None
        self.pool.expire()
        for key, (_streak, until, _healed) in list(self.bans.items()):
            if until + 3600 < self.clock():
                del self.bans[key]

    @invariant()
    def counts_match_a_recount(self) -> None:
        if self.pool is None:
            return
        self.refresh()
        for locale in (None, *self.cfg.locales):
            members = (
                self.ids
                if locale is None
                else [x for x in self.ids if self.entries[x].locale == locale]
            )
            counts = self.pool.counts(locale)
            ejected = sum(1 for x in members if self.ejected(x))
            assert counts.total == len(members)
            assert counts.ejected == ejected
            assert counts.usable == len(members) - ejected
            assert counts.in_flight == sum(self.inflight[x] for x in members)
            for part in counts.pools:
                inside = [x for x in members if self.group[x] == (part.locale, part.pool)]
                assert part.total == len(inside)
                assert part.in_flight == sum(self.inflight[x] for x in inside)
        for exit_id in self.ids:
            assert self.pool.ejected_until(exit_id) == (
                self.until[exit_id] if self.ejected(exit_id) else None
            )
            busy = self.pool.in_flight_by_exit().get(exit_id, 0)
            assert busy == self.inflight[exit_id]
            assert busy > 0 or exit_id not in self.pool.in_flight_by_exit()


PoolMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_pool_machine = PoolMachine.TestCase
