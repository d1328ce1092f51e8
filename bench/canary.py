"""Canary analysis over many seeded simulated crawls: false rollbacks and detection delay.

Each simulated crawl sends requests to sites of different difficulty (each site's ban rate is the
pool's rate times a site factor, log-normal, so some sites ban five times more than others), with
a ban wave in the middle that triples every ban rate for a while, and a small transport-failure
rate. A request goes to the candidate pool with its current share (5 % to start), otherwise to
the baseline; the outcomes go, in order, to the same :class:`CanaryJudge` the crawl uses.

Figures:

1. an equal candidate (same ban rate as the baseline): how often it is rolled back (false
   alarms), and how often it reaches 100 % when promotion steps are configured;
2. a candidate exactly at the margin (the worst one the null allows): the false-alarm rate the
   test is built to bound by ``alpha``;
3. candidates 1.5x, 2x and 5x as often banned: the share rolled back, and the candidate attempts
   until the rollback (median, 90th percentile, max).

    python bench/canary.py [--runs 400] [--requests 100000] [--base-rate 0.05] [--seed 1]
                           [--wave 3] [--cases equal at_margin ...]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxystack import default_settings as D  # noqa: E402
from scrapy_proxystack.canary.judge import BASELINE, CANDIDATE, CanaryJudge, CanarySpec  # noqa: E402

SITES = 20
FAILURE_RATE = 0.01
#: Requests per second of the simulated crawl (pairs are at most MAX_GAP seconds apart).
RATE = 50.0


def simulate(
    rng: random.Random,
    *,
    worse: float,
    base_rate: float,
    requests: int,
    spec: CanarySpec,
    wave_factor: float = 3.0,
) -> tuple[str, int, float]:
    """One crawl: (final state, candidate attempts when it ended, candidate share at the end)."""
    factors = [math.exp(rng.gauss(0.0, 0.6)) for _ in range(SITES)]
    mean = sum(factors) / SITES
    factors = [f / mean for f in factors]
    clock = [0.0]
    judge = CanaryJudge(spec, (5.0, 95.0), clock=lambda: clock[0])
    wave = (int(requests * 0.3), int(requests * 0.4))
    for n in range(requests):
        clock[0] = n / RATE
        share = judge.share / 100.0
        side = CANDIDATE if rng.random() < share else BASELINE
        site = rng.randrange(SITES)
        rate = base_rate * factors[site] * (wave_factor if wave[0] <= n < wave[1] else 1.0)
        if side == CANDIDATE:
            rate *= worse
        if rng.random() < FAILURE_RATE:
            kind = "transport_failure"
        elif rng.random() < min(rate, 0.95):
            kind = "ban"
        else:
            kind = "success"
        judge.observe(side, f"site{site}", kind, 0.2 if kind == "success" else None)
        if judge.state != "watching":
            break
    return judge.state, judge.attempts[CANDIDATE], judge.share


def _quantile(values: list[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(options: argparse.Namespace) -> dict[str, Any]:
    alpha, margin = options.alpha, options.margin
    watch = CanarySpec(
        locale="fr",
        candidate="candidate",
        baseline="stable",
        alpha=alpha,
        margin=margin,
        latency_margin=None,
        steps=(),
        promote_after=D.PROXYSTACK_CANARY_PROMOTE_AFTER,
    )
    progressive = CanarySpec(**{**watch.__dict__, "steps": (25.0, 50.0, 100.0)})
    out: dict[str, Any] = {
        "runs": options.runs,
        "requests_per_run": options.requests,
        "baseline_ban_rate": options.base_rate,
        "alpha": alpha,
        "margin": margin,
        "start_share_pct": 5.0,
        "wave_factor": options.wave,
    }
    cases: list[tuple[str, float, CanarySpec]] = [
        ("equal", 1.0, watch),
        ("equal_promoted", 1.0, progressive),
        ("at_margin", 1.0 + margin, watch),
        ("worse_1.5x", 1.5, watch),
        ("worse_2x", 2.0, watch),
        ("worse_5x", 5.0, watch),
        ("worse_2x_promoted", 2.0, progressive),
    ]
    for name, worse, spec in cases:
        if options.cases and name not in options.cases:
            continue
        rng = random.Random(f"{options.seed}:{name}")
        started = time.perf_counter()
        rolled: list[int] = []
        promoted = 0
        for _ in range(options.runs):
            state, attempts, _share = simulate(
                rng,
                worse=worse,
                base_rate=options.base_rate,
                requests=options.requests,
                spec=spec,
                wave_factor=options.wave,
            )
            if state == "rolled_back":
                rolled.append(attempts)
            elif state == "promoted":
                promoted += 1
        out[name] = {
            "candidate_ban_rate": round(options.base_rate * worse, 4),
            "rolled_back": round(len(rolled) / options.runs, 4),
            "promoted_to_100": round(promoted / options.runs, 4),
            "attempts_to_rollback_median": _quantile(rolled, 0.5),
            "attempts_to_rollback_p90": _quantile(rolled, 0.9),
            "attempts_to_rollback_max": max(rolled, default=None),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(name, json.dumps(out[name]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--base-rate", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=D.PROXYSTACK_CANARY_ALPHA)
    parser.add_argument("--margin", type=float, default=D.PROXYSTACK_CANARY_MARGIN)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--wave", type=float, default=3.0, help="ban rates during the wave (1: no wave)"
    )
    parser.add_argument("--cases", nargs="*", default=None, help="only these cases (names)")
    options = parser.parse_args()
    print("python bench/canary.py " + " ".join(sys.argv[1:]))
    print(json.dumps(run(options)))


if __name__ == "__main__":
    main()
