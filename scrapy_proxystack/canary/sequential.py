"""An always-valid one-sided sequential test on a stream of "which of the pair was worse" bits.

Plain module (no Scrapy import). The canary analysis turns every matched pair of attempts (one
through the candidate pool, one through its baseline, same site, close in time) into at most one
bit: 1 when only the candidate's attempt went wrong, 0 when only the baseline's did; pairs where
both or neither went wrong say nothing and are dropped (McNemar's test does the same). Under
"the candidate is no worse than the baseline by more than the margin", with odds ratio
``psi <= psi0 = 1 + margin`` at every site and moment, a bit is 1 with probability at most
``theta0 = psi0 / (1 + psi0)``, whatever the baseline's own rate is: the nuisance parameter
cancels, and so do differences between sites and ban waves over time, because both halves of a
pair met the same site at about the same moment.

Why this test (facts, with their sources; the code is ours):

* Fixed-horizon tests looked at after every request do not keep their error rate; Kayenta's
  judge runs a Mann-Whitney U test (default ``confLevel`` 0.95, ``tolerance`` 0.25) once per
  analysis interval over metric time series, and Flagger rolls back after ``threshold`` failed
  interval checks of a ``thresholdRange``: neither states a false-alarm rate for a canary that is
  watched continuously for hours.
* Wald's SPRT stops early with a stated error rate, but for one alternative: a candidate between
  the null and that alternative may never be detected. A mixture over alternatives (Robbins
  1970; the mSPRT of Johari, Pekelis and Walsh, "Always valid inference", 2017) detects any of
  them. For Bernoulli bits each alternative's likelihood ratio is a non-negative supermartingale
  under every ``theta <= theta0`` (its one-step mean is linear in ``theta`` and equals 1 at
  ``theta0``), so is their average, and Ville's inequality bounds the chance that it *ever*
  reaches ``1 / alpha`` by ``alpha``: the test may be looked at after every bit, for ever.
* The mixture is over a fixed grid of odds multipliers (:data:`ALTERNATIVES`), equally weighted:
  exact, O(grid) per look, and the price of not knowing the alternative is ``log(len(grid))``
  nats of evidence (about 1.8), against the ``log(1 / alpha)`` (4.6 at 1 %) every test pays.
* Latency uses the same machinery: a bit says whether the candidate's answer took more than
  ``1 + latency_margin`` times the baseline's in the pair (a paired sign test on the effect
  Mann-Whitney's U estimates, P(X > Y)); under "no slower than that" the bit is 1 with
  probability at most 1/2.

Only counts are kept (bits at 1, bits at 0): the statistic is a function of them, O(1) memory.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["ALTERNATIVES", "MixtureSPRT"]

#: Odds multipliers (relative to the null's boundary) that the mixture averages over: from a
#: candidate a quarter worse than allowed to one ten times worse.
ALTERNATIVES: Final = (1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


class MixtureSPRT:
    """Evidence that bits are 1 more often than ``theta0 = null_odds / (1 + null_odds)``.

    :attr:`evidence` is the mixture likelihood ratio (1 before any bit). Under the null, the
    probability that it ever reaches ``1 / alpha`` is at most ``alpha``; :attr:`p_value` is the
    always-valid p-value ``min(1, 1 / max evidence so far)``.
    """

    __slots__ = ("_down", "_up", "max_log", "null_odds", "ones", "theta0", "zeros")

    def __init__(self, null_odds: float) -> None:
        if not null_odds > 0 or not math.isfinite(null_odds):
            raise ValueError(f"null_odds={null_odds!r}: expected a finite number > 0")
        self.null_odds = null_odds
        self.theta0 = null_odds / (1.0 + null_odds)
        up: list[float] = []
        down: list[float] = []
        for c in ALTERNATIVES:
            odds = null_odds * c
            theta = odds / (1.0 + odds)
            up.append(math.log(theta / self.theta0))
            down.append(math.log((1.0 - theta) / (1.0 - self.theta0)))
        self._up = tuple(up)
        self._down = tuple(down)
        self.ones = 0
        self.zeros = 0
        self.max_log = 0.0

    def add(self, bit: bool) -> float:
        """Count one bit; returns the log evidence after it."""
        if bit:
            self.ones += 1
        else:
            self.zeros += 1
        value = self.log_evidence
        if value > self.max_log:
            self.max_log = value
        return value

    @property
    def log_evidence(self) -> float:
        """``log`` of the mean over alternatives of their likelihood ratios (log-sum-exp)."""
        ones, zeros = self.ones, self.zeros
        logs = [ones * u + zeros * d for u, d in zip(self._up, self._down, strict=True)]
        top = max(logs)
        return top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))

    @property
    def evidence(self) -> float:
        return math.exp(min(self.log_evidence, 700.0))

    @property
    def p_value(self) -> float:
        return min(1.0, math.exp(-self.max_log))

    def rejects(self, alpha: float) -> bool:
        """Whether the evidence has reached ``1 / alpha`` (the null is rejected)."""
        return self.log_evidence >= -math.log(alpha)

    def state(self) -> list[int | float]:
        return [self.ones, self.zeros, self.max_log]

    def restore(self, state: list[int | float]) -> None:
        self.ones, self.zeros = int(state[0]), int(state[1])
        self.max_log = float(state[2])
