"""Per-site politeness over all exits: a GCRA rate limiter and an adaptive per-exit pacer.

Plain module (no Scrapy import). Both structures are sparse and self-expiring so that memory stays
bounded with millions of sites: a site whose budget is fully recovered holds no state at all.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy_proxystack.config import DomainRule

__all__ = ["DomainRateLimiter", "ExitPacer", "RateRule", "SiteThrottle"]


@dataclass(frozen=True, slots=True)
class RateRule:
    """A site's budget: ``rate`` requests per second with bursts of ``burst`` back to back."""

    rate: float | None  # None: no rate limit (a crawl-delay floor may still apply)
    burst: int = 1
    min_interval: float = 0.0  # robots Crawl-delay, seconds between two requests

    @property
    def interval(self) -> float:
        by_rate = 1.0 / self.rate if self.rate else 0.0
        return max(by_rate, self.min_interval)

    @property
    def tolerance(self) -> float:
        """How far ahead of its slot a request may go: ``burst - 1`` intervals.

        A robots ``Crawl-delay`` means "one at a time, this far apart", so it allows no burst.
        """
        if self.min_interval > 0:
            return 0.0
        return (self.burst - 1) * self.interval


class DomainRateLimiter:
    """Generic Cell Rate Algorithm (the leaky bucket as a meter) keyed by site.

    ``reserve`` books the next slot for a request and says how long to wait for it. One float per
    active site (the theoretical arrival time); a site whose TAT is in the past is the same as an
    unknown one, so those entries are dropped by :meth:`expire`.
    """

    def __init__(self, default: RateRule | None = None) -> None:
        self.default = default
        self._rules: dict[str, RateRule] = {}
        self._floors: dict[str, float] = {}
        self._tat: dict[str, float] = {}
        #: The same meter over the times requests really left (see :meth:`confirm`).
        self._sent: dict[str, float] = {}
        self._calls = 0

    def set_rule(self, domain: str, rule: RateRule) -> None:
        self._rules[domain] = rule

    def set_min_interval(self, domain: str, seconds: float) -> None:
        """Apply a robots ``Crawl-delay`` (or any floor) to ``domain``."""
        if seconds > 0:
            self._floors[domain] = seconds
        else:
            self._floors.pop(domain, None)

    def rule_for(self, domain: str) -> RateRule | None:
        rule = self._rules.get(domain, self.default)
        floor = self._floors.get(domain)
        if floor is None:
            return rule if rule is not None and rule.interval > 0 else None
        if rule is None:
            return RateRule(rate=None, burst=1, min_interval=floor)
        return RateRule(
            rate=rule.rate, burst=rule.burst, min_interval=max(floor, rule.min_interval)
        )

    def reserve(self, domain: str, now: float) -> float:
        """Book a slot for one request to ``domain``; return the seconds to wait for it (>= 0)."""
        rule = self.rule_for(domain)
        if rule is None:
            return 0.0
        self._calls += 1
        if self._calls & 0x3FF == 0:
            self.expire(now)
        interval = rule.interval
        tat = self._tat.get(domain, now)
        if tat < now:
            tat = now
        wait = tat - rule.tolerance - now
        self._tat[domain] = tat + interval
        return wait if wait > 0.0 else 0.0

    def booked_until(self, domain: str) -> float:
        """The end of the slots booked for ``domain`` (0.0 when none)."""
        return self._tat.get(domain, 0.0)

    def book_until(self, domain: str, t: float) -> None:
        """Slots up to ``t`` are taken (by other workers): book after them."""
        if t > self._tat.get(domain, 0.0):
            self._tat[domain] = t

    def confirm(self, domain: str, now: float) -> float:
        """Record that a request to ``domain`` leaves now, if that keeps to the rule.

        :meth:`reserve` books slots ahead; a timer that fires late (a loaded machine) sends
        one request late and the next on time, closer together than the rule allows. This
        meter runs over the real departure times: it returns 0.0 and records the departure
        when it conforms, else the seconds still to wait (call again after waiting).
        """
        rule = self.rule_for(domain)
        if rule is None:
            return 0.0
        tat = self._sent.get(domain, now)
        if tat < now:
            tat = now
        wait = tat - rule.tolerance - now
        if wait > 1e-6:
            return wait
        self._sent[domain] = tat + rule.interval
        return 0.0

    def expire(self, now: float) -> int:
        """Forget sites whose budget is fully recovered; return how many were dropped."""
        stale = [d for d, tat in self._tat.items() if tat <= now]
        for d in stale:
            del self._tat[d]
        for d in [d for d, tat in self._sent.items() if tat <= now]:
            del self._sent[d]
        return len(stale)

    def __len__(self) -> int:
        return len(self._tat)


class ExitPacer:
    """The adaptive minimum delay between two requests of one exit to one site.

    It starts at the site's base delay and only deviates where a site pushed back. A 429 or a
    rate-limit page (:meth:`on_throttle`) is multiplicative decrease of the pair's rate, as TCP
    does with a congestion window: the delay becomes twice the pair's recent interval between
    requests (or twice the current delay), and that interval is remembered as too fast. Each
    success then takes the delay back: quickly (``fast_recovery``) down to ``margin`` times the
    interval that was too fast (three quarters of that rate by default), then slowly
    (``recovery``), probing, as TCP CUBIC does near its last loss. So the pair settles just under
    the rate the site tolerates from one client address without a storm of 429s. A ban
    (:meth:`on_pushback`) doubles the delay. ``Retry-After`` is a floor of the next wait (the
    pool's not-before time), not of the interval. Only pairs that deviate from their base are
    stored, in an LRU bounded by ``max_entries``; so are the recent intervals of pairs.
    """

    def __init__(
        self,
        *,
        maximum: float = 60.0,
        factor: float = 2.0,
        recovery: float = 0.995,
        fast_recovery: float = 0.95,
        margin: float = 4.0 / 3.0,
        max_entries: int = 200_000,
    ) -> None:
        self.maximum = maximum
        self.factor = factor
        self.recovery = recovery
        self.fast_recovery = fast_recovery
        self.margin = margin
        self.max_entries = max_entries
        #: (exit, site) -> the interval between requests that last drew a 429.
        self._too_fast: OrderedDict[tuple[str, str], float] = OrderedDict()
        # Only pairs that deviate from their base are stored.
        self._delays: OrderedDict[tuple[str, str], float] = OrderedDict()
        #: (exit, site) -> (last departure, smoothed interval between departures).
        self._gaps: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def delay(self, exit_id: str, domain: str, base: float) -> float:
        return self._delays.get((exit_id, domain), base)

    def on_send(self, exit_id: str, domain: str, now: float) -> None:
        """A request to ``domain`` leaves through ``exit_id``: learn the pair's interval."""
        key = (exit_id, domain)
        gaps = self._gaps
        previous = gaps.get(key)
        if previous is None:
            gaps[key] = (now, -1.0)
            if len(gaps) > self.max_entries:
                gaps.popitem(last=False)
            return
        last, smooth = previous
        gap = now - last
        gaps[key] = (now, gap if smooth < 0.0 else smooth + 0.3 * (gap - smooth))
        gaps.move_to_end(key)

    def interval(self, exit_id: str, domain: str) -> float | None:
        """The pair's recent interval between requests, or None before two of them."""
        previous = self._gaps.get((exit_id, domain))
        return previous[1] if previous is not None and previous[1] >= 0.0 else None

    def on_throttle(self, exit_id: str, domain: str, base: float) -> float:
        """A 429 or rate-limit page: halve the pair's rate (multiplicative decrease)."""
        key = (exit_id, domain)
        current = self._delays.get(key, base)
        recent = self.interval(exit_id, domain) or current
        too_fast = self._too_fast
        too_fast[key] = max(too_fast.get(key, 0.0), min(recent, current) if current else recent)
        too_fast.move_to_end(key)
        if len(too_fast) > self.max_entries:
            too_fast.popitem(last=False)
        new = min(
            max(self.maximum, base),
            max(current * self.factor, recent * self.factor, base, 0.1),
        )
        self._store(key, new)
        return new

    def on_pushback(
        self, exit_id: str, domain: str, base: float, retry_after: float | None = None
    ) -> float:
        """A ban from ``domain`` through ``exit_id``: slow that pair down."""
        key = (exit_id, domain)
        current = self._delays.get(key, base)
        new = min(max(self.maximum, base), max(current * self.factor, base, 0.1))
        if retry_after is not None and retry_after > new:
            new = min(retry_after, max(self.maximum, base))
        self._store(key, new)
        return new

    def on_success(self, exit_id: str, domain: str, base: float) -> None:
        key = (exit_id, domain)
        current = self._delays.get(key)
        if current is None:
            return
        floor = self._too_fast.get(key, 0.0) * self.margin
        new = current * (self.fast_recovery if current > floor else self.recovery)
        if new <= base * 1.01:
            del self._delays[key]
        else:
            self._delays[key] = new

    def export_state(self) -> list[list[object]]:
        """Learned delays as ``[exit, site, delay, too_fast]`` rows (JSON-able)."""
        too_fast = self._too_fast
        return [[e, d, v, too_fast.get((e, d), 0.0)] for (e, d), v in self._delays.items()]

    def import_state(self, rows: list[list[object]]) -> int:
        for exit_id, domain, delay, fast in rows:
            key = (str(exit_id), str(domain))
            self._store(key, float(delay))  # type: ignore[arg-type]
            if fast:
                self._too_fast[key] = float(fast)  # type: ignore[arg-type]
        return len(rows)

    def _store(self, key: tuple[str, str], value: float) -> None:
        self._delays[key] = value
        self._delays.move_to_end(key)
        while len(self._delays) > self.max_entries:
            self._delays.popitem(last=False)

    def __len__(self) -> int:
        return len(self._delays)


class SiteThrottle:
    """A crawl's politeness: the site budgets, the per-exit pacing, and each site's own rules.

    A site's YAML ``rate``/``burst``/``exit_delay`` are applied the first time it is seen;
    ``PROXYSTACK_DOMAIN_RATE`` and ``PROXYSTACK_EXIT_DELAY`` hold for every other site.
    """

    _MAX_SITES = 1_000_000

    def __init__(
        self,
        *,
        rule_for: Callable[[str], DomainRule | None],
        domain_rate: float | None,
        domain_burst: int,
        exit_delay: float,
        exit_delay_max: float,
    ) -> None:
        self._rule_for = rule_for
        self.domain_burst = domain_burst
        self.exit_delay = exit_delay
        self.limiter = DomainRateLimiter(
            RateRule(rate=domain_rate, burst=domain_burst) if domain_rate else None
        )
        self.pacer = ExitPacer(maximum=exit_delay_max)
        #: site -> its base delay between two requests of one exit; presence = rules applied.
        self._base: dict[str, float] = {}

    def limiter_for(self, domain: str) -> DomainRateLimiter:
        """The rate limiter, with ``domain``'s YAML ``rate``/``burst`` applied on first sight."""
        if domain not in self._base:
            rule = self._rule_for(domain)
            if rule is not None and rule.rate is not None:
                burst = rule.burst or self.domain_burst
                self.limiter.set_rule(domain, RateRule(rate=rule.rate, burst=burst))
            self._base[domain] = (
                rule.exit_delay
                if rule is not None and rule.exit_delay is not None
                else self.exit_delay
            )
            if len(self._base) > self._MAX_SITES:  # bounded: forget the oldest sites
                self._base.pop(next(iter(self._base)))
        return self.limiter

    def base_delay(self, domain: str) -> float:
        return self._base.get(domain, self.exit_delay)

    def exit_delay_for(self, exit_id: str, domain: str) -> float:
        return self.pacer.delay(exit_id, domain, self.base_delay(domain))

    def exit_sent(self, exit_id: str, domain: str, now: float) -> None:
        self.pacer.on_send(exit_id, domain, now)

    def exit_pushed_back(self, exit_id: str, domain: str, retry_after: float | None) -> None:
        """A ban through ``exit_id``: slow the pair down (when the site is paced at all)."""
        base = self.base_delay(domain)
        if base > 0 or retry_after:
            self.pacer.on_pushback(exit_id, domain, base, retry_after)

    def exit_throttled(self, exit_id: str, domain: str) -> float:
        """A 429 or rate-limit page through ``exit_id``: the pair's new, halved-rate delay."""
        return self.pacer.on_throttle(exit_id, domain, self.base_delay(domain))

    def exit_succeeded(self, exit_id: str, domain: str) -> None:
        self.pacer.on_success(exit_id, domain, self.base_delay(domain))
