"""A seeded model of a crawl of one site through a candidate and a baseline pool, for bounds.

The crawl tests derive what they assert (the candidate attempts before a rollback, before each
promotion) from their own parameters by running the same judge over this model many times:
each attempt goes to the candidate with its current share, and is a ban with its pool's rate.
"""

from __future__ import annotations

import random

from scrapy_proxystack.canary.judge import BASELINE, CANDIDATE, CanaryJudge, CanarySpec


def attempts_until(
    spec: CanarySpec,
    weights: tuple[float, float],
    rates: tuple[float, float],
    *,
    state: str,
    runs: int = 500,
    limit: int = 20_000,
    seed: int = 7,
) -> list[tuple[int, int] | None]:
    """Per run, the (candidate, all) attempts until the judge reached ``state`` (None: not
    within ``limit`` attempts)."""
    rng = random.Random(seed)
    out: list[tuple[int, int] | None] = []
    for _ in range(runs):
        judge = CanaryJudge(spec, weights, clock=lambda: 0.0)
        reached = None
        for n in range(limit):
            side = CANDIDATE if rng.random() * 100.0 < judge.share else BASELINE
            kind = "ban" if rng.random() < rates[side] else "success"
            judge.observe(side, "site", kind, 0.05)
            if judge.state == state:
                reached = (judge.attempts[CANDIDATE], n + 1)
                break
            if judge.state != "watching":
                break
        out.append(reached)
    return out
