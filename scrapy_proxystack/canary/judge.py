"""Judging one canary pool against its baseline: matched pairs, three criteria, the decisions.

Plain module (no Scrapy import). :class:`CanaryJudge` is fed every attempt of the two pools
(the pool, the site, what happened, how long it took) and answers with a :class:`Decision` when
the candidate must be rolled back or may take its next traffic step. It never touches the exit
pool itself: :mod:`scrapy_proxystack.canary.controller` applies what it decides.

Pairs, not totals: each attempt waits, per site, for the next attempt of the *other* pool to
the same site, and the two form a pair. Comparing pairs compares the pools on the same sites and
the same moments, the way Kayenta starts baseline and canary together so that time effects
cancel: a site that bans more than the others, or a ban wave at 3 am, hits both halves of a pair
alike. One attempt waits per site (sites beyond :data:`MAX_SITES` forgotten least recently seen
first), so memory is bounded whatever the crawl.

Criteria, each a :class:`~scrapy_proxystack.canary.sequential.MixtureSPRT` at ``alpha`` divided
by the number of criteria (so the chance of any false rollback stays at most ``alpha``):

* ``bans``: of a pair where both attempts reached the site, which one was refused;
* ``failures``: which one failed in transport (refused connection, reset, timeout, 407, ...);
* ``latency`` (optional): of a pair of usable answers, whether the candidate's took more than
  ``1 + latency_margin`` times the baseline's.

Promotion (optional ``steps``): after ``promote_after`` candidate attempts at a step, and while no
criterion leans towards "worse" (every evidence ratio at most 1), the candidate's share of the
two pools' traffic goes to the next step. Promotion is a traffic schedule guarded by the test,
not a verdict of equality: the test keeps running at every step, with the same bound.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from scrapy_proxystack.canary.sequential import MixtureSPRT

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BASELINE",
    "CANDIDATE",
    "CRITERIA",
    "MAX_GAP",
    "MAX_SITES",
    "CanaryJudge",
    "CanarySpec",
    "Criterion",
    "Decision",
]

CANDIDATE: Final = 0
BASELINE: Final = 1
#: Every criterion, in the order they are checked and shown.
CRITERIA: Final = ("bans", "failures", "latency")
#: Seconds an attempt waits for its pair; an older one is dropped, unpaired.
MAX_GAP: Final = 60.0
#: Sites with waiting attempts that are remembered; the least recently seen go first.
MAX_SITES: Final = 10_000
_SIDES: Final = ("candidate", "baseline")


@dataclass(frozen=True)
class CanarySpec:
    """One canary, with every parameter resolved (YAML first, then the project's settings).

    ``steps`` are the candidate's successive shares, in percent, of the two pools' traffic.
    """

    locale: str
    candidate: str
    baseline: str
    alpha: float
    margin: float
    latency_margin: float | None
    steps: tuple[float, ...]
    promote_after: int

    @property
    def criteria(self) -> tuple[str, ...]:
        return CRITERIA if self.latency_margin is not None else CRITERIA[:2]

    @property
    def label(self) -> str:
        return f"{self.locale}:{self.candidate}"


@dataclass(frozen=True)
class Decision:
    """What was decided for a canary, when (wall clock), and on what figures."""

    time: float
    action: str  #: ``rollback`` or ``promote``
    share_from: float  #: the candidate's share of the two pools' traffic before, in percent
    share_to: float
    criterion: str | None  #: what triggered a rollback
    figures: dict[str, Any] = field(default_factory=dict)


class Criterion:
    """Matched-pair counts of one criterion and its sequential test."""

    __slots__ = ("alpha", "base_bad", "cand_bad", "name", "pairs", "sum_base", "sum_cand", "test")

    def __init__(self, name: str, null_odds: float, alpha: float) -> None:
        self.name = name
        self.alpha = alpha
        self.test = MixtureSPRT(null_odds)
        self.pairs = 0
        self.cand_bad = 0
        self.base_bad = 0
        #: Latency only: the paired answers' total seconds, for the figures.
        self.sum_cand = 0.0
        self.sum_base = 0.0

    def add(self, cand_bad: bool, base_bad: bool) -> None:
        self.pairs += 1
        self.cand_bad += cand_bad
        self.base_bad += base_bad
        if cand_bad != base_bad:
            self.test.add(cand_bad)

    def rejects(self) -> bool:
        return self.test.rejects(self.alpha)

    def figures(self) -> dict[str, Any]:
        n = self.pairs
        out: dict[str, Any] = {
            "pairs": n,
            "candidate": self.cand_bad,
            "baseline": self.base_bad,
            "evidence": round(self.test.evidence, 4),
            "threshold": round(1.0 / self.alpha, 2),
            "p_value": round(self.test.p_value, 6),
        }
        if self.name == "latency":
            out["candidate_mean_ms"] = round(1000 * self.sum_cand / n) if n else None
            out["baseline_mean_ms"] = round(1000 * self.sum_base / n) if n else None
        else:
            out["candidate_rate"] = round(self.cand_bad / n, 4) if n else None
            out["baseline_rate"] = round(self.base_bad / n, 4) if n else None
        return out

    def state(self) -> list[Any]:
        return [self.pairs, self.cand_bad, self.base_bad, self.sum_cand, self.sum_base]

    def restore(self, state: list[Any], test: list[Any]) -> None:
        self.pairs, self.cand_bad, self.base_bad = (int(x) for x in state[:3])
        self.sum_cand, self.sum_base = float(state[3]), float(state[4])
        self.test.restore(test)


class _Attempt:
    __slots__ = ("bad", "failed", "latency")

    def __init__(self, kind: str, latency: float | None) -> None:
        self.failed = kind == "transport_failure"
        self.bad = kind == "ban"
        self.latency = latency if kind == "success" else None


class CanaryJudge:
    """Watches one candidate pool against its baseline and decides; see the module docstring.

    ``weights`` are the two pools' configured weights ``(candidate, baseline)``; the judge keeps
    them up to date as it decides (their sum stays the same, so other pools of the locale keep
    their share). ``state`` is ``watching``, ``rolled_back`` or ``promoted`` (at 100 %).
    """

    def __init__(
        self,
        spec: CanarySpec,
        weights: tuple[float, float],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.candidate_weight, self.baseline_weight = weights
        #: The weights the configuration gave: a paused crawl's state is restored only onto
        #: the same configuration.
        self.configured = weights
        self.state = "watching"
        self.started = clock()
        n = len(spec.criteria)
        self.criteria = {
            "bans": Criterion("bans", 1.0 + spec.margin, spec.alpha / n),
            "failures": Criterion("failures", 1.0 + spec.margin, spec.alpha / n),
        }
        if spec.latency_margin is not None:
            self.criteria["latency"] = Criterion("latency", 1.0, spec.alpha / n)
        #: site -> (side waiting, its attempt, when), least recently seen site first
        self._waiting: OrderedDict[str, tuple[int, _Attempt, float]] = OrderedDict()
        self.attempts = [0, 0]
        self.step_attempts = 0
        self.decisions: list[Decision] = []

    # -- figures --------------------------------------------------------------------------------

    @property
    def share(self) -> float:
        """The candidate's share of the two pools' traffic, in percent."""
        total = self.candidate_weight + self.baseline_weight
        return 100.0 * self.candidate_weight / total if total > 0 else 0.0

    def figures(self) -> dict[str, Any]:
        return {name: c.figures() for name, c in self.criteria.items()}

    # -- events ---------------------------------------------------------------------------------

    def observe(self, side: int, site: str, kind: str, latency: float | None) -> Decision | None:
        """One attempt through the candidate (``side`` 0) or the baseline (1): pair it, test,
        and return a decision when one is taken."""
        if self.state != "watching" or kind not in ("success", "ban", "transport_failure"):
            return None
        self.attempts[side] += 1
        attempt = _Attempt(kind, latency)
        other = self._pair(side, site, attempt)
        decision = None
        if other is not None:
            if side == CANDIDATE:
                decision = self._judge(attempt, other)
            else:
                decision = self._judge(other, attempt)
        if decision is None and side == CANDIDATE:
            self.step_attempts += 1
            decision = self._maybe_promote()
        return decision

    def _pair(self, side: int, site: str, attempt: _Attempt) -> _Attempt | None:
        """The other pool's attempt waiting for this site, or None (then this one waits).

        One attempt waits per site, the newest: a pair is always two attempts that met the site
        one right after the other (within :data:`MAX_GAP` seconds). A queue of 32 per site paired
        attempts far apart once the split neared 50/50, and a ban wave between them counted
        against whichever pool came second: 12 % false rollbacks of an equal candidate with
        promotion steps in bench/canary.py, against at most 1 % with one.
        """
        waiting = self._waiting
        now = self.clock()
        entry = waiting.pop(site, None)
        if entry is not None:
            who, other, since = entry
            if who != side and now - since <= MAX_GAP:
                return other
        waiting[site] = (side, attempt, now)
        if len(waiting) > MAX_SITES:
            waiting.popitem(last=False)
        return None

    def _judge(self, cand: _Attempt, base: _Attempt) -> Decision | None:
        criteria = self.criteria
        failures = criteria["failures"]
        failures.add(cand.failed, base.failed)
        if not (cand.failed or base.failed):
            criteria["bans"].add(cand.bad, base.bad)
        latency = criteria.get("latency")
        margin = self.spec.latency_margin
        if latency is not None and margin is not None:
            lc, lb = cand.latency, base.latency
            if lc is not None and lb is not None:
                limit = (1.0 + margin) * lb
                if lc != limit:
                    latency.add(lc > limit, lc < limit)
                    latency.sum_cand += lc
                    latency.sum_base += lb
        for name in self.spec.criteria:
            if criteria[name].rejects():
                return self._rollback(name)
        return None

    def _rollback(self, criterion: str) -> Decision:
        before = self.share
        self.baseline_weight += self.candidate_weight
        self.candidate_weight = 0.0
        self.state = "rolled_back"
        self._waiting.clear()
        return self._decide("rollback", before, criterion)

    def _maybe_promote(self) -> Decision | None:
        spec = self.spec
        if not spec.steps or self.step_attempts < spec.promote_after:
            return None
        if any(c.test.log_evidence > 0.0 for c in self.criteria.values()):
            return None  # the data lean towards "worse": wait for more
        before = self.share
        target = next((s for s in spec.steps if s > before + 1e-9), None)
        if target is None:
            return None
        total = self.candidate_weight + self.baseline_weight
        self.candidate_weight = total * target / 100.0
        self.baseline_weight = total - self.candidate_weight
        self.step_attempts = 0
        if target >= 100.0:
            self.baseline_weight = 0.0
            self.state = "promoted"
            self._waiting.clear()
        return self._decide("promote", before, None)

    def _decide(self, action: str, before: float, criterion: str | None) -> Decision:
        decision = Decision(
            time=self.clock(),
            action=action,
            share_from=round(before, 3),
            share_to=round(self.share, 3),
            criterion=criterion,
            figures={
                "attempts": {"candidate": self.attempts[0], "baseline": self.attempts[1]},
                **self.figures(),
            },
        )
        self.decisions.append(decision)
        return decision

    # -- persistence (JOBDIR) -------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        return {
            "configured": list(self.configured),
            "state": self.state,
            "weights": [self.candidate_weight, self.baseline_weight],
            "attempts": list(self.attempts),
            "step_attempts": self.step_attempts,
            "criteria": {n: [c.state(), c.test.state()] for n, c in self.criteria.items()},
            "decisions": [decision_record(d) for d in self.decisions],
        }

    def import_state(self, data: dict[str, Any]) -> bool:
        """Restore :meth:`export_state` output, unless the configured weights changed since
        (then the new configuration wins); returns whether it was restored."""
        if [float(w) for w in data.get("configured", ())] != list(self.configured):
            return False
        self.state = str(data["state"])
        self.candidate_weight, self.baseline_weight = (float(w) for w in data["weights"])
        self.attempts = [int(x) for x in data["attempts"]]
        self.step_attempts = int(data["step_attempts"])
        for name, (counts, test) in data["criteria"].items():
            if name in self.criteria:
                self.criteria[name].restore(counts, test)
        self.decisions = [
            Decision(
                time=float(d["time"]),
                action=str(d["action"]),
                share_from=float(d["share_from"]),
                share_to=float(d["share_to"]),
                criterion=d.get("criterion"),
                figures=dict(d.get("figures", {})),
            )
            for d in data.get("decisions", [])
        ]
        return True


def decision_record(decision: Decision) -> dict[str, Any]:
    """A decision as plain data (JSON report, JOBDIR)."""
    return {
        "time": decision.time,
        "action": decision.action,
        "share_from": decision.share_from,
        "share_to": decision.share_to,
        "criterion": decision.criterion,
        "figures": decision.figures,
    }


def describe(spec: CanarySpec, decision: Decision) -> str:
    """One sentence with the figures, for the log and the report."""
    if decision.action == "promote":
        return (
            f"canary {spec.candidate} of locale {spec.locale} promoted from "
            f"{decision.share_from:g}% to {decision.share_to:g}% of its and {spec.baseline}'s "
            f"traffic after {decision.figures['attempts']['candidate']} attempts, no criterion "
            "leaning towards worse"
        )
    name = decision.criterion or "bans"
    f = decision.figures[name]
    if name == "latency":
        what = (
            f"its answers took more than {1 + (spec.latency_margin or 0):g}x the baseline's "
            f"in {f['candidate']} of {f['pairs']} matched pairs (baseline slower: "
            f"{f['baseline']}; mean {f['candidate_mean_ms']} ms vs {f['baseline_mean_ms']} ms)"
        )
    else:
        noun = "ban rate" if name == "bans" else "transport-failure rate"
        what = (
            f"its {noun} was {_pct(f['candidate_rate'])} against {_pct(f['baseline_rate'])} "
            f"for {spec.baseline} over {f['pairs']} matched pairs (same sites, same moments; "
            f"margin {spec.margin:g})"
        )
    return (
        f"canary {spec.candidate} of locale {spec.locale} rolled back (weight to 0, "
        f"{decision.share_from:g}% of the pair's traffic back to {spec.baseline}): {what}; "
        f"evidence {f['evidence']:.3g} >= {f['threshold']:g} = 1/alpha for this criterion, a false "
        f"alarm has probability <= {spec.alpha:g} over all criteria"
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None or math.isnan(rate) else f"{100 * rate:.1f}%"
