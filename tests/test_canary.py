"""Canary analysis without a crawl: the sequential test, the judge, the controller, the YAML."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from scrapy_proxystack.canary.controller import CanaryController, CanaryDefaults
from scrapy_proxystack.canary.judge import (
    BASELINE,
    CANDIDATE,
    MAX_GAP,
    CanaryJudge,
    CanarySpec,
)
from scrapy_proxystack.canary.sequential import ALTERNATIVES, MixtureSPRT
from scrapy_proxystack.config import ConfigError, parse_proxy_config
from scrapy_proxystack.pool import ExitPool
from scrapy_proxystack.signals import ExitOutcome


def spec(**changes: Any) -> CanarySpec:
    base: dict[str, Any] = {
        "locale": "fr",
        "candidate": "candidate",
        "baseline": "stable",
        "alpha": 0.01,
        "margin": 0.1,
        "latency_margin": None,
        "steps": (),
        "promote_after": 500,
    }
    return CanarySpec(**{**base, **changes})


class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def inc(self, *parts: object, count: int = 1) -> None:
        key = "/".join(map(str, parts))
        self.values[key] = self.values.get(key, 0) + count

    def set(self, *parts: object, value: Any) -> None:
        self.values["/".join(map(str, parts))] = value


# --- the sequential test ------------------------------------------------------------------------


def test_evidence_starts_at_one_and_follows_the_bits() -> None:
    test = MixtureSPRT(1.1)
    assert test.evidence == 1.0
    assert test.p_value == 1.0
    for _ in range(20):
        test.add(True)
    assert test.evidence > 1.0
    assert test.p_value == pytest.approx(1.0 / test.evidence)
    for _ in range(200):
        test.add(False)
    assert test.evidence < 1.0
    assert test.p_value < 1.0  # the best evidence ever seen is kept


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_ones_only_reject_after_the_computed_number_of_bits(alpha: float) -> None:
    """With only ones, the best alternative (10x the null odds) dominates the mixture: the
    rejection comes within the bits that alternative alone needs at threshold len/alpha."""
    test = MixtureSPRT(1.1)
    theta0 = 1.1 / 2.1
    theta_max = 11.0 / 12.0
    bound = math.ceil(math.log(len(ALTERNATIVES) / alpha) / math.log(theta_max / theta0))
    n = 0
    while not test.rejects(alpha):
        test.add(True)
        n += 1
    assert n <= bound


@pytest.mark.parametrize(("theta", "alpha"), [(1.1 / 2.1, 0.05), (0.5, 0.05)])
def test_false_alarms_stay_below_alpha_however_often_it_is_looked_at(
    theta: float, alpha: float
) -> None:
    """Ville's inequality: under the null (at its boundary, or inside it) the evidence ever
    reaching 1/alpha, looked at after every bit, has probability at most alpha."""
    rng = random.Random(3)
    runs, bits = 600, 200
    alarms = 0
    for _ in range(runs):
        test = MixtureSPRT(1.1)
        for _ in range(bits):
            test.add(rng.random() < theta)
            if test.rejects(alpha):
                alarms += 1
                break
    assert alarms / runs <= alpha


def test_null_odds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="null_odds"):
        MixtureSPRT(0.0)


# --- the judge --------------------------------------------------------------------------------


def test_matched_pairs_roll_a_worse_candidate_back_and_move_its_weight() -> None:
    judge = CanaryJudge(spec(), (5.0, 95.0), clock=lambda: 0.0)
    decision = None
    n = 0
    while decision is None:
        n += 1
        judge.observe(CANDIDATE, "a.example", "ban", None)
        decision = judge.observe(BASELINE, "a.example", "success", 0.1)
        assert n < 100
    assert decision.action == "rollback"
    assert decision.criterion == "bans"
    assert (judge.candidate_weight, judge.baseline_weight) == (0.0, 100.0)
    assert (decision.share_from, decision.share_to) == (5.0, 0.0)
    assert judge.state == "rolled_back"
    assert decision.figures["bans"]["candidate_rate"] == 1.0
    # Decided: nothing more is judged.
    assert judge.observe(CANDIDATE, "a.example", "ban", None) is None


def test_pairs_are_per_site_and_close_in_time() -> None:
    now = [0.0]
    judge = CanaryJudge(spec(), (50.0, 50.0), clock=lambda: now[0])
    judge.observe(CANDIDATE, "a.example", "ban", None)
    judge.observe(BASELINE, "b.example", "success", 0.1)  # another site: no pair
    assert judge.criteria["bans"].pairs == 0
    now[0] = MAX_GAP + 1.0
    judge.observe(BASELINE, "a.example", "success", 0.1)  # too late: no pair, it waits
    assert judge.criteria["bans"].pairs == 0
    judge.observe(CANDIDATE, "a.example", "success", 0.1)
    assert judge.criteria["bans"].pairs == 1
    assert judge.criteria["failures"].pairs == 1


def test_transport_failures_and_latency_are_their_own_criteria() -> None:
    judge = CanaryJudge(spec(latency_margin=0.5), (50.0, 50.0), clock=lambda: 0.0)
    assert judge.criteria["bans"].alpha == pytest.approx(0.01 / 3)
    judge.observe(CANDIDATE, "a", "transport_failure", None)
    judge.observe(BASELINE, "a", "ban", None)
    bans, failures = judge.criteria["bans"], judge.criteria["failures"]
    assert (bans.pairs, failures.pairs, failures.cand_bad) == (0, 1, 1)
    decision = None
    while decision is None:
        judge.observe(CANDIDATE, "a", "success", 0.4)
        decision = judge.observe(BASELINE, "a", "success", 0.1)
    assert decision.criterion == "latency"
    assert decision.figures["latency"]["candidate_mean_ms"] == 400


def test_an_equal_candidate_is_promoted_step_by_step_keeping_the_total() -> None:
    judge = CanaryJudge(spec(steps=(25.0, 100.0), promote_after=10), (5.0, 95.0))
    shares = []
    for _ in range(100):
        for side in (CANDIDATE, BASELINE):
            decision = judge.observe(side, "a", "success", 0.1)
            if decision is not None:
                shares.append((decision.share_from, decision.share_to))
                assert judge.candidate_weight + judge.baseline_weight == pytest.approx(100.0)
    assert shares == [(5.0, 25.0), (25.0, 100.0)]
    assert judge.state == "promoted"
    assert judge.baseline_weight == 0.0


def test_promotion_waits_while_the_evidence_leans_towards_worse() -> None:
    judge = CanaryJudge(spec(steps=(50.0,), promote_after=2), (10.0, 90.0))
    judge.observe(CANDIDATE, "a", "ban", None)
    judge.observe(BASELINE, "a", "success", 0.1)
    for _ in range(5):
        assert judge.observe(CANDIDATE, "b", "success", 0.1) is None
    assert judge.criteria["bans"].test.log_evidence > 0
    assert judge.share == pytest.approx(10.0)


def test_state_survives_a_pause_only_onto_the_same_configuration() -> None:
    judge = CanaryJudge(spec(), (5.0, 95.0), clock=lambda: 0.0)
    while judge.state == "watching":
        judge.observe(CANDIDATE, "a", "ban", None)
        judge.observe(BASELINE, "a", "success", 0.1)
    saved = judge.export_state()
    again = CanaryJudge(spec(), (5.0, 95.0))
    assert again.import_state(saved)
    assert (again.state, again.candidate_weight, len(again.decisions)) == ("rolled_back", 0.0, 1)
    assert again.criteria["bans"].test.ones == judge.criteria["bans"].test.ones
    edited = CanaryJudge(spec(), (10.0, 90.0))
    assert not edited.import_state(saved)
    assert edited.state == "watching"


# --- the controller and the pool ---------------------------------------------------------------

YAML: dict[str, Any] = {
    "locales": {
        "fr": {
            "pools": {
                "stable": {"weight": 95, "proxies": ["http://10.0.0.1:80", "http://10.0.0.2:80"]},
                "candidate": {
                    "weight": 5,
                    "proxies": ["http://10.0.0.3:80"],
                    "canary": {"baseline": "stable", "steps": [50, 100], "margin": 0.2},
                },
            }
        },
        "de": ["http://10.0.1.1:80"],
    }
}


def _outcome(pool: str, kind: str) -> ExitOutcome:
    exit_id = "10.0.0.3:80" if pool == "candidate" else "10.0.0.1:80"
    return ExitOutcome(
        time=0.0,
        url="http://a.example/",
        domain="a.example",
        locale="fr",
        exit_locale="fr",
        exit_id=exit_id,
        kind=kind,
        reason="ok",
        latency=0.1 if kind == "success" else None,
        exit_pool=pool,
    )


def test_a_rollback_sets_the_pool_weight_to_zero_and_nothing_goes_there() -> None:
    config = parse_proxy_config(YAML)
    pool = ExitPool(config, strategy="random", rng=random.Random(1))
    stats = _Stats()
    controller = CanaryController.from_config(
        config, CanaryDefaults(alpha=0.01, margin=0.1, promote_after=500), pool, stats
    )
    assert controller is not None
    (judge,) = controller.judges
    assert (judge.spec.margin, judge.spec.promote_after, judge.spec.steps) == (0.2, 500, (50, 100))
    assert stats.values["canary/share_pct/fr:candidate"] == 5.0
    while judge.state == "watching":
        controller.observe(_outcome("candidate", "ban"))
        controller.observe(_outcome("stable", "success"))
    assert pool.pool_weight("fr", "candidate") == 0.0
    assert pool.pool_weight("fr", "stable") == 100.0
    assert stats.values["canary/rollbacks/fr:candidate"] == 1
    assert stats.values["canary/share_pct/fr:candidate"] == 0.0
    chosen = Counter(pool.choose("fr", "a.example").entry.pool for _ in range(2000))
    assert chosen == {"stable": 2000}
    (row,) = controller.report()
    assert row["state"] == "rolled_back"
    assert "rolled back" in row["decisions"][0]["message"]


def test_no_canary_block_means_no_controller() -> None:
    config = parse_proxy_config({"locales": {"fr": ["http://10.0.0.1:80"]}})
    pool = ExitPool(config)
    defaults = CanaryDefaults(alpha=0.01, margin=0.1, promote_after=500)
    assert CanaryController.from_config(config, defaults, pool, _Stats()) is None


def test_set_pool_weight_checks_its_arguments() -> None:
    pool = ExitPool(parse_proxy_config(YAML))
    assert pool.set_pool_weight("fr", "candidate", 20.0) == 5.0
    assert pool.pool_weight("fr", "candidate") == 20.0
    with pytest.raises(KeyError):
        pool.set_pool_weight("fr", "nope", 1.0)
    with pytest.raises(ValueError, match="weight"):
        pool.set_pool_weight("fr", "stable", -1.0)


def test_a_pool_at_weight_zero_is_closed_to_choices_between_pools_only() -> None:
    pool = ExitPool(parse_proxy_config(YAML))
    assert not pool.pool_closed("10.0.0.3:80", "fr")
    pool.set_pool_weight("fr", "candidate", 0.0)
    assert pool.pool_closed("10.0.0.3:80", "fr")
    assert not pool.pool_closed("10.0.0.1:80", "fr")  # its baseline
    assert not pool.pool_closed("10.0.0.3:80", None)  # the pool of all proxies has no weights
    assert not pool.pool_closed("10.0.1.1:80", "de")
    assert not pool.pool_closed("10.9.9.9:80", "fr")  # not an exit


# --- the YAML -----------------------------------------------------------------------------------


def _with_canary(canary: Any) -> dict[str, Any]:
    fr = {
        "pools": {
            "stable": {"weight": 95, "proxies": ["http://10.0.0.1:80"]},
            "other": {"weight": 1, "proxies": ["http://10.0.0.4:80"]},
            "candidate": {"weight": 5, "proxies": ["http://10.0.0.3:80"], "canary": canary},
        }
    }
    return {"locales": {"fr": fr}}


@pytest.mark.parametrize(
    ("canary", "message"),
    [
        ("stable", "locales.fr.pools.candidate.canary: 'stable'; expected a mapping"),
        ({}, "canary.baseline: missing; expected the name of another pool"),
        ({"baseline": "stabel"}, "'stabel' is not a pool of locale fr (did you mean 'stable'?)"),
        ({"baseline": "candidate"}, "'candidate' is the pool itself"),
        ({"baseline": "stable", "alpha": 0}, "canary.alpha: 0 is out of range"),
        ({"baseline": "stable", "alpha": 0.9}, "canary.alpha: 0.9 is too large"),
        ({"baseline": "stable", "margin": -0.1}, "canary.margin: -0.1 is out of range"),
        ({"baseline": "stable", "latency_margin": "x"}, "latency_margin: 'x' is not a number"),
        ({"baseline": "stable", "steps": [50, 25]}, "steps[1]: 25 is not above 50"),
        ({"baseline": "stable", "steps": [150]}, "steps[0]: 150 is too large"),
        ({"baseline": "stable", "steps": 50}, "canary.steps: 50; expected increasing"),
        ({"baseline": "stable", "promote_after": 0}, "promote_after: 0; expected a whole number"),
        ({"baseline": "stable", "stepz": [1]}, "canary.stepz: unknown key (did you mean 'steps'?)"),
    ],
)
def test_canary_block_errors_name_the_key_and_what_was_expected(canary: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_proxy_config(_with_canary(canary))
    assert message in str(info.value)


def test_a_baseline_serves_one_canary_and_is_not_one() -> None:
    data = _with_canary({"baseline": "stable"})
    data["locales"]["fr"]["pools"]["other"]["canary"] = {"baseline": "stable"}
    with pytest.raises(ConfigError, match="is already the baseline of"):
        parse_proxy_config(data)
    data = _with_canary({"baseline": "other"})
    data["locales"]["fr"]["pools"]["other"]["canary"] = {"baseline": "stable"}
    with pytest.raises(ConfigError, match="is itself a canary"):
        parse_proxy_config(data)


# --- the stack: settings, JOBDIR ---------------------------------------------------------------


def _stack(settings: dict[str, Any]) -> Any:
    from scrapy.utils.test import get_crawler

    from scrapy_proxystack.runtime import get_stack

    crawler = get_crawler(settings_dict={"PROXYSTACK_PROXIES": YAML, **settings})
    return get_stack(crawler)


def test_settings_give_what_the_block_does_not_say() -> None:
    stack = _stack({"PROXYSTACK_CANARY_ALPHA": 0.05, "PROXYSTACK_CANARY_PROMOTE_AFTER": 7})
    (judge,) = stack.canary.judges
    assert (judge.spec.alpha, judge.spec.margin, judge.spec.promote_after) == (0.05, 0.2, 7)
    assert _stack({"PROXYSTACK_CANARY_ENABLED": False}).canary is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROXYSTACK_CANARY_ALPHA", 0),
        ("PROXYSTACK_CANARY_ALPHA", 0.7),
        ("PROXYSTACK_CANARY_MARGIN", -1),
        ("PROXYSTACK_CANARY_PROMOTE_AFTER", 0),
        ("PROXYSTACK_CANARY_ENABLED", "maybe"),
    ],
)
def test_bad_canary_settings_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"setting {name}"):
        _stack({name: value})


def test_a_paused_crawl_keeps_its_canary_decisions(tmp_path: Any) -> None:
    stack = _stack({})
    (judge,) = stack.canary.judges
    while judge.state == "watching":
        stack.canary.observe(_outcome("candidate", "ban"))
        stack.canary.observe(_outcome("stable", "success"))
    stack._jobdir(str(tmp_path)).save(None, [])
    resumed = _stack({})
    assert resumed.pool.pool_weight("fr", "candidate") == 5.0
    assert resumed._jobdir(str(tmp_path)).load(None) == []
    assert resumed.pool.pool_weight("fr", "candidate") == 0.0
    (again,) = resumed.canary.report()
    assert again["state"] == "rolled_back"
    assert [d["action"] for d in again["decisions"]] == ["rollback"]


def test_per_pool_stats_are_written_at_close_for_split_locales() -> None:
    from scrapy.utils.test import get_crawler

    from scrapy_proxystack.extensions.exitstats import ExitStatsExtension

    crawler = get_crawler(settings_dict={"PROXYSTACK_PROXIES": YAML})
    extension = ExitStatsExtension.from_crawler(crawler)
    aggregate = extension.observer.aggregate
    for pool, kind in [("candidate", "ban"), ("candidate", "success"), ("stable", "success")]:
        aggregate.add(_outcome(pool, kind))
    aggregate.add(
        ExitOutcome(
            0.0,
            "http://b/",
            "b",
            "de",
            "de",
            "10.0.1.1:80",
            "success",
            "ok",
            200,
            0.2,
            exit_pool="default",
            size=10,
        )
    )
    extension.spider_closed("finished")
    stats = crawler.stats.get_stats()
    assert stats["proxystack/pool/attempts/fr:candidate"] == 2
    assert stats["proxystack/pool/bans/fr:candidate"] == 1
    assert stats["proxystack/pool/successes/fr:stable"] == 1
    assert 87 <= stats["proxystack/pool/p50_ms/fr:stable"] <= 100  # within one 12.5 % bucket
    assert not any(k.startswith("proxystack/pool/") and k.endswith("de:default") for k in stats)


def test_ban_rule_shares_spread_bans_evenly_per_client() -> None:
    from scrapy_proxystack.testing import BanRule

    rule = BanRule("403", shares={"127.0.1.1": 0.25, "127.0.1.2": 0.5})
    assert [n for n in range(12) if rule.hits("127.0.1.1", n)] == [3, 7, 11]
    assert sum(rule.hits("127.0.1.2", n) for n in range(100)) == 50
    assert rule.applies_to("127.0.1.2")
    assert not rule.applies_to("127.0.1.3")
    with pytest.raises(ValueError, match="shares"):
        BanRule("403", shares={"127.0.1.1": 1.5})
