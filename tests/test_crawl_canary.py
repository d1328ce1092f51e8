"""Canary analysis in a real crawl: two vendors for one locale, a site that bans each vendor's
exits on a set share of their requests (evenly spread, so the only chance is in the order the
crawl interleaves them).

What is asserted is derived from the test's own parameters: the judge is run over a seeded
model of the same crawl (tests/canary_sim.py) and the bound is the worst run, with room.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from scrapy_proxystack.canary.judge import CanarySpec
from scrapy_proxystack.testing import BanRule, LoopbackWorld
from tests.canary_sim import attempts_until
from tests.crawl import run_crawl

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from scrapy_proxystack.testing import Proxy

#: Fast bans: a banned (exit, site) pair rests for a few milliseconds, not the default 20 s.
SETTINGS = {
    "CONCURRENT_REQUESTS": 16,
    "LOG_LEVEL": "INFO",
    "PROXYSTACK_BAN_COOLDOWN": 0.005,
    "PROXYSTACK_BAN_COOLDOWN_CAP": 0.01,
    "PROXYSTACK_BAN_MAX_RETRIES": 10,
    "PROXYSTACK_STRATEGY": "round_robin",
}


@pytest.fixture
def world() -> Iterator[LoopbackWorld]:
    with LoopbackWorld(max_lifetime=170.0) as w:
        yield w


def _setup(
    world: LoopbackWorld, pages: int, rates: tuple[float, float]
) -> tuple[list[Proxy], list[Proxy], list[str]]:
    stable = [world.add_proxy(1) for _ in range(3)]
    candidate = [world.add_proxy(1) for _ in range(3)]
    shares = {p.ip: rates[1] for p in stable} | {p.ip: rates[0] for p in candidate}
    site = world.add_site("shop", pages=pages, ban=BanRule("403", shares=shares))
    return stable, candidate, [site.url(f"/page/{i}") for i in range(1, pages + 1)]


def _config(
    stable: list[Proxy],
    candidate: list[Proxy],
    weights: tuple[float, float],
    canary: dict[str, object],
) -> dict[str, object]:
    return {
        "locales": {
            "fr": {
                "pools": {
                    "stable": {"weight": weights[1], "proxies": [p.url for p in stable]},
                    "candidate": {
                        "weight": weights[0],
                        "proxies": [p.url for p in candidate],
                        "canary": canary,
                    },
                }
            }
        },
        "default_locale": "fr",
    }


def _candidate_attempts(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r.get("pool") == "candidate"]


def test_a_candidate_banned_twice_as_often_is_rolled_back(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    rates, weights, alpha = (0.6, 0.3), (50.0, 50.0), 0.05
    spec = CanarySpec("fr", "candidate", "stable", alpha, 0.1, None, (), 500)
    model = [m for m in attempts_until(spec, weights, rates, state="rolled_back") if m]
    assert len(model) == 500
    # The worst of 500 seeded model runs, with half as much again: the candidate attempts
    # before the rollback, and enough pages that the crawl lasts that long.
    bound = int(1.5 * max(m[0] for m in model))
    pages = int(1.5 * max(m[1] for m in model) * (1 - rates[1]))
    stable, candidate, urls = _setup(world, pages, rates)
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={
            **SETTINGS,
            "PROXYSTACK_PROXIES": _config(
                stable, candidate, weights, {"baseline": "stable", "alpha": alpha}
            ),
            "PROXYSTACK_AUDIT_FILE": str(tmp_path / "audit.jsonl"),
            "PROXYSTACK_REPORT_FILE": str(tmp_path / "report.html"),
        },
        timeout=150.0,
    )
    # No page lost, none twice.
    assert sorted(p["url"] for p in result.pages) == sorted(urls)
    assert result.errors == []
    stats = result.proxystack_stats()
    assert stats["proxystack/canary/rollbacks/fr:candidate"] == 1
    assert stats["proxystack/canary/rollback_criterion/bans"] == 1
    assert stats["proxystack/canary/share_pct/fr:candidate"] == 0
    assert "Canary fr:candidate rolled back" in result.log
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (canary,) = report["canary"]
    assert canary["state"] == "rolled_back"
    (decision,) = canary["decisions"]
    assert decision["action"] == "rollback"
    assert decision["at"].startswith(report["start"][:10])
    assert decision["criterion"] == "bans"
    # Within the bound derived from the parameters, and nothing sent to it afterwards but what
    # was already in flight when it was decided.
    at = decision["figures"]["attempts"]["candidate"]
    assert at <= bound
    assert len(_candidate_attempts(tmp_path)) <= at + SETTINGS["CONCURRENT_REQUESTS"]
    assert (
        decision["figures"]["bans"]["candidate_rate"] > decision["figures"]["bans"]["baseline_rate"]
    )


def test_an_equal_candidate_is_promoted_step_by_step(world: LoopbackWorld, tmp_path: Path) -> None:
    rates, weights, alpha = (0.2, 0.2), (25.0, 75.0), 0.001
    canary = {"baseline": "stable", "alpha": alpha, "steps": [50, 100], "promote_after": 40}
    spec = CanarySpec("fr", "candidate", "stable", alpha, 0.1, None, (50.0, 100.0), 40)
    model = [m for m in attempts_until(spec, weights, rates, state="promoted") if m]
    assert len(model) == 500
    bound = int(1.5 * max(m[0] for m in model))
    pages = int(1.5 * max(m[1] for m in model) * (1 - rates[1]))
    stable, candidate, urls = _setup(world, pages, rates)
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={
            **SETTINGS,
            "PROXYSTACK_PROXIES": _config(stable, candidate, weights, canary),
            "PROXYSTACK_REPORT_FILE": str(tmp_path / "report.html"),
            "PROXYSTACK_LOGSTATS_INTERVAL": 0.5,
        },
        timeout=150.0,
    )
    assert sorted(p["url"] for p in result.pages) == sorted(urls)
    stats = result.proxystack_stats()
    assert "proxystack/canary/rollbacks/fr:candidate" not in stats
    assert stats["proxystack/canary/promotions/fr:candidate"] == 2
    assert stats["proxystack/canary/share_pct/fr:candidate"] == 100
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (canary_report,) = report["canary"]
    assert canary_report["state"] == "promoted"
    steps = [(d["action"], d["share_from"], d["share_to"]) for d in canary_report["decisions"]]
    assert steps == [("promote", 25.0, 50.0), ("promote", 50.0, 100.0)]
    assert canary_report["decisions"][-1]["figures"]["attempts"]["candidate"] <= bound
    assert result.log.count("Canary fr:candidate step") == 2
    # The pools side by side: in the periodic line and the report.
    assert "pool fr:stable (weight " in result.log
    rows = {row["pool"]: row for row in report["pools"]}
    assert rows["candidate"]["weight_now"] == 100.0
    assert rows["stable"]["weight_now"] == 0.0
    low, high = rows["candidate"]["ban_rate"]["ci95"]
    assert low <= rows["candidate"]["ban_rate"]["rate"] <= high
