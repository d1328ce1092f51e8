"""Canary analysis in a real crawl: two vendors for one locale, a site that bans each vendor's
exits on a set share of their requests (evenly spread, so the only chance is in the order the
crawl interleaves them).

What is asserted is derived from the test's own parameters: the judge is run over a seeded
model of the same crawl (tests/canary_sim.py) and the bound is the worst run, with room.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import pytest

from scrapy_proxystack.canary.judge import CanarySpec
from scrapy_proxystack.testing import BanRule, LoopbackWorld
from tests.canary_sim import attempts_until
from tests.crawl import run_crawl

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from scrapy_proxystack.testing import Proxy
    from tests.crawl import CrawlResult

#: Fast bans: a banned (exit, site) pair rests for a few milliseconds, not the default 20 s.
#: PROXYSTACK_BAN_MAX_RETRIES comes from each test's parameters (:func:`_ban_retries`).
SETTINGS = {
    "CONCURRENT_REQUESTS": 16,
    "LOG_LEVEL": "INFO",
    "PROXYSTACK_BAN_COOLDOWN": 0.005,
    "PROXYSTACK_BAN_COOLDOWN_CAP": 0.01,
    "PROXYSTACK_STRATEGY": "round_robin",
}
#: The chance, per crawl, that some page is refused on every attempt and lost.
LOSS_RISK = 1e-4


def _ban_retries(pages: int, rates: tuple[float, float]) -> int:
    """The retries after a ban that lose no page of the crawl but with ``LOSS_RISK``.

    A page is lost when all its ``retries + 1`` attempts are refused. Each attempt goes to a
    pool by weight (a retry avoids the exits it tried; after a rollback it goes to the
    baseline only) and is refused about as often as that pool's share: over 30 crawls on a
    loaded machine, a page's attempt after k bans (k = 1 to 6) was refused in 25-32 % of cases
    through the 30 % baseline and 44-67 % through the 60 % candidate. Taking the worse share
    for every attempt, ``pages * max(rates) ** (retries + 1) <= LOSS_RISK``. Ten retries, set
    by hand, gave 951 * 0.6 ** 11 > 1: in 60 loaded crawls a page refused 11 times in a row
    before the rollback was lost once, and another was refused 10 times.
    """
    return math.ceil(math.log(LOSS_RISK / pages) / math.log(max(rates))) - 1


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


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _report(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _explain(result: CrawlResult, report: dict[str, Any], audit: list[dict[str, Any]]) -> str:
    """The figures a failed assertion needs: the decisions, the attempts in the audit after
    each, what was lost, and the crawl's stats."""
    lines = []
    judged = ("success/", "ban/", "transport_failure/")
    for canary in report.get("canary", []):
        lines.append(f"canary state {canary['state']}, attempts {canary['attempts']}")
        for d in canary["decisions"]:
            at = d["figures"]["attempts"]["candidate"]
            # The audit is written in the order the judge sees outcomes: the decision follows
            # the candidate's at-th judged attempt.
            seen, position = 0, len(audit)
            for k, r in enumerate(audit):
                if r.get("pool") == "candidate" and str(r["verdict"]).startswith(judged):
                    seen += 1
                    if seen == at:
                        position = k + 1
                        break
            after = [r for r in audit[position:] if r.get("pool") == "candidate"]
            lines.append(
                f"decision {d['action']} {d['share_from']}->{d['share_to']} criterion "
                f"{d['criterion']} at {d['at']}: candidate attempts {at}, after it in the "
                f"audit {len(after)} ({[r['verdict'] for r in after]}); figures {d['figures']}"
            )
    pages = sorted(p["url"] for p in result.pages)
    dupes = sorted({u for u in pages if pages.count(u) > 1})
    lines.append(f"pages {len(pages)}, twice {dupes}, errors {result.errors[:5]}")
    lines.append(f"close reason {result.close_reason}, exit {result.returncode}")
    lines.append(f"stats {json.dumps(result.proxystack_stats(), sort_keys=True)}")
    lines.append(f"retries { {k: v for k, v in result.stats.items() if 'retry' in k} }")
    return "\n".join(lines)


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
            "PROXYSTACK_BAN_MAX_RETRIES": _ban_retries(pages, rates),
            "PROXYSTACK_PROXIES": _config(
                stable, candidate, weights, {"baseline": "stable", "alpha": alpha}
            ),
            "PROXYSTACK_AUDIT_FILE": str(tmp_path / "audit.jsonl"),
            "PROXYSTACK_REPORT_FILE": str(tmp_path / "report.html"),
        },
        timeout=150.0,
    )
    report = _report(tmp_path)
    audit = _audit(tmp_path)
    why = f"bound {bound} candidate attempts, {pages} pages\n" + _explain(result, report, audit)
    # No page lost, none twice.
    missing = sorted(set(urls) - {p["url"] for p in result.pages})
    assert sorted(p["url"] for p in result.pages) == sorted(urls), f"missing {missing[:5]}; {why}"
    assert result.errors == [], why
    stats = result.proxystack_stats()
    assert stats.get("proxystack/canary/rollbacks/fr:candidate") == 1, why
    assert stats.get("proxystack/canary/rollback_criterion/bans") == 1, why
    assert stats.get("proxystack/canary/share_pct/fr:candidate") == 0, why
    assert "Canary fr:candidate rolled back" in result.log, why
    (canary,) = report["canary"]
    assert canary["state"] == "rolled_back", why
    (decision,) = canary["decisions"]
    assert decision["action"] == "rollback", why
    assert decision["at"].startswith(report["start"][:10]), why
    assert decision["criterion"] == "bans", why
    # Within the bound derived from the parameters, and nothing sent to it afterwards but what
    # was already in flight when it was decided.
    at = decision["figures"]["attempts"]["candidate"]
    assert at <= bound, why
    candidate_attempts = [r for r in audit if r.get("pool") == "candidate"]
    assert len(candidate_attempts) <= at + SETTINGS["CONCURRENT_REQUESTS"], why
    bans = decision["figures"]["bans"]
    assert bans["candidate_rate"] > bans["baseline_rate"], why


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
            "PROXYSTACK_BAN_MAX_RETRIES": _ban_retries(pages, rates),
            "PROXYSTACK_PROXIES": _config(stable, candidate, weights, canary),
            "PROXYSTACK_REPORT_FILE": str(tmp_path / "report.html"),
            "PROXYSTACK_LOGSTATS_INTERVAL": 0.5,
        },
        timeout=150.0,
    )
    report = _report(tmp_path)
    why = f"bound {bound} candidate attempts, {pages} pages\n" + _explain(result, report, [])
    missing = sorted(set(urls) - {p["url"] for p in result.pages})
    assert sorted(p["url"] for p in result.pages) == sorted(urls), f"missing {missing[:5]}; {why}"
    stats = result.proxystack_stats()
    assert "proxystack/canary/rollbacks/fr:candidate" not in stats, why
    assert stats.get("proxystack/canary/promotions/fr:candidate") == 2, why
    assert stats.get("proxystack/canary/share_pct/fr:candidate") == 100, why
    (canary_report,) = report["canary"]
    assert canary_report["state"] == "promoted", why
    steps = [(d["action"], d["share_from"], d["share_to"]) for d in canary_report["decisions"]]
    assert steps == [("promote", 25.0, 50.0), ("promote", 50.0, 100.0)], why
    assert canary_report["decisions"][-1]["figures"]["attempts"]["candidate"] <= bound, why
    assert result.log.count("Canary fr:candidate step") == 2, why
    # The pools side by side: in the periodic line and the report.
    assert "pool fr:stable (weight " in result.log, why
    rows = {row["pool"]: row for row in report["pools"]}
    assert rows["candidate"]["weight_now"] == 100.0, why
    assert rows["stable"]["weight_now"] == 0.0, why
    low, high = rows["candidate"]["ban_rate"]["ci95"]
    assert low <= rows["candidate"]["ban_rate"]["rate"] <= high, why
