"""Every canary of a crawl: feeds each judge its pools' attempts and applies what it decides.

Plain module (no Scrapy import). A decision changes the two pools' weights in the exit pool
(:meth:`~scrapy_proxystack.pool.ExitPool.set_pool_weight`), is logged (a rollback at WARNING
with its figures, a promotion step at INFO), counted in the stats, and kept for the report and,
with ``JOBDIR``, for the next run of a paused crawl.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from scrapy_proxystack.canary.judge import (
    BASELINE,
    CANDIDATE,
    CanaryJudge,
    CanarySpec,
    Decision,
    decision_record,
    describe,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy_proxystack.config import ProxyConfig
    from scrapy_proxystack.signals import ExitOutcome

__all__ = ["CanaryController", "CanaryDefaults"]

logger = logging.getLogger(__name__)


class _Weights(Protocol):
    def pool_weight(self, locale: str, pool: str) -> float: ...

    def set_pool_weight(self, locale: str, pool: str, weight: float) -> float: ...


class _Stats(Protocol):
    def inc(self, *parts: object, count: int = 1) -> None: ...

    def set(self, *parts: object, value: Any) -> None: ...


@dataclass(frozen=True)
class CanaryDefaults:
    """The ``PROXYSTACK_CANARY_*`` settings: what a ``canary:`` block does not say itself."""

    alpha: float
    margin: float
    promote_after: int


class CanaryController:
    """The crawl's canaries, by (locale, pool) of either side; see the module docstring."""

    def __init__(
        self,
        judges: list[CanaryJudge],
        pool: _Weights,
        stats: _Stats,
        *,
        log_extra: dict[str, Any] | None = None,
    ) -> None:
        self.judges = judges
        self.pool = pool
        self.stats = stats
        self.log_extra = log_extra or {}
        self._sides: dict[tuple[str | None, str | None], tuple[CanaryJudge, int]] = {}
        for judge in judges:
            spec = judge.spec
            self._sides[(spec.locale, spec.candidate)] = (judge, CANDIDATE)
            self._sides[(spec.locale, spec.baseline)] = (judge, BASELINE)
            self._publish(judge)

    @classmethod
    def from_config(
        cls,
        config: ProxyConfig,
        defaults: CanaryDefaults,
        pool: _Weights,
        stats: _Stats,
        *,
        clock: Callable[[], float] = time.time,
        log_extra: dict[str, Any] | None = None,
    ) -> CanaryController | None:
        """The controller for every ``canary:`` block of ``config``; None when there is none."""
        judges = []
        for name, locale in config.locales.items():
            for pool_config in locale.pools:
                canary = pool_config.canary
                if canary is None:
                    continue
                spec = CanarySpec(
                    locale=name,
                    candidate=pool_config.name,
                    baseline=canary.baseline,
                    alpha=canary.alpha if canary.alpha is not None else defaults.alpha,
                    margin=canary.margin if canary.margin is not None else defaults.margin,
                    latency_margin=canary.latency_margin,
                    steps=canary.steps,
                    promote_after=(
                        canary.promote_after
                        if canary.promote_after is not None
                        else defaults.promote_after
                    ),
                )
                weights = (
                    pool.pool_weight(name, spec.candidate),
                    pool.pool_weight(name, spec.baseline),
                )
                judges.append(CanaryJudge(spec, weights, clock=clock))
        return cls(judges, pool, stats, log_extra=log_extra) if judges else None

    # -- events ---------------------------------------------------------------------------------

    def observe(self, outcome: ExitOutcome) -> Decision | None:
        """One attempt's outcome: handed to the judge of its pool, if any."""
        found = self._sides.get((outcome.exit_locale, outcome.exit_pool))
        if found is None:
            return None
        judge, side = found
        decision = judge.observe(side, outcome.domain, outcome.kind, outcome.latency)
        if decision is not None:
            self._apply(judge, decision)
        return decision

    def _apply(self, judge: CanaryJudge, decision: Decision) -> None:
        spec = judge.spec
        self.pool.set_pool_weight(spec.locale, spec.candidate, judge.candidate_weight)
        self.pool.set_pool_weight(spec.locale, spec.baseline, judge.baseline_weight)
        self._publish(judge)
        if decision.action == "rollback":
            self.stats.inc("canary", "rollbacks", spec.label)
            self.stats.inc("canary", "rollback_criterion", decision.criterion)
            logger.warning(
                "Canary %(label)s rolled back: %(why)s",
                {"label": spec.label, "why": describe(spec, decision)},
                extra=self.log_extra,
            )
        else:
            self.stats.inc("canary", "promotions", spec.label)
            logger.info(
                "Canary %(label)s step: %(why)s",
                {"label": spec.label, "why": describe(spec, decision)},
                extra=self.log_extra,
            )

    def _publish(self, judge: CanaryJudge) -> None:
        self.stats.set("canary", "share_pct", judge.spec.label, value=round(judge.share, 3))

    # -- reading --------------------------------------------------------------------------------

    def report(self) -> list[dict[str, Any]]:
        """Every canary: its parameters, state, figures and decisions (for the report)."""
        out = []
        for judge in self.judges:
            spec = judge.spec
            out.append(
                {
                    "locale": spec.locale,
                    "candidate": spec.candidate,
                    "baseline": spec.baseline,
                    "state": judge.state,
                    "started": judge.started,
                    "share_pct": round(judge.share, 3),
                    "weights": {
                        "candidate": judge.candidate_weight,
                        "baseline": judge.baseline_weight,
                    },
                    "alpha": spec.alpha,
                    "margin": spec.margin,
                    "latency_margin": spec.latency_margin,
                    "steps": list(spec.steps),
                    "promote_after": spec.promote_after,
                    "attempts": {
                        "candidate": judge.attempts[CANDIDATE],
                        "baseline": judge.attempts[BASELINE],
                    },
                    "criteria": judge.figures(),
                    "decisions": [
                        {**decision_record(d), "at": _iso(d.time), "message": describe(spec, d)}
                        for d in judge.decisions
                    ],
                }
            )
        return out

    # -- persistence (JOBDIR) -------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        return {judge.spec.label: judge.export_state() for judge in self.judges}

    def import_state(self, state: dict[str, Any]) -> int:
        """Restore a paused crawl's judges (weights, counts, decisions); returns how many."""
        restored = 0
        for judge in self.judges:
            data = state.get(judge.spec.label)
            if not isinstance(data, dict) or not judge.import_state(data):
                continue
            spec = judge.spec
            self.pool.set_pool_weight(spec.locale, spec.candidate, judge.candidate_weight)
            self.pool.set_pool_weight(spec.locale, spec.baseline, judge.baseline_weight)
            self._publish(judge)
            restored += 1
        return restored


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
