"""The exit pool's vocabulary: its parameters, what it answers, and why it found nothing.

Plain module (no Scrapy import), shared by the pool's other modules and its callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from scrapy_proxystack import default_settings as _D
from scrapy_proxystack.config import STRATEGIES

if TYPE_CHECKING:
    from scrapy_proxystack.config import ProxyEntry

__all__ = [
    "FAILURE_OUTCOMES",
    "NO_EXIT_REASONS",
    "STRATEGY_CODES",
    "Choice",
    "HealthParams",
    "NoExit",
    "PoolCounts",
    "PoolListener",
    "SessionLost",
]

ROUND_ROBIN: Final = 0
RANDOM: Final = 1
LEAST_CONNECTIONS: Final = 2
WEIGHTED: Final = 3
LATENCY: Final = 4
STRATEGY_CODES: Final[dict[str, int]] = {
    "round_robin": ROUND_ROBIN,
    "random": RANDOM,
    "least_connections": LEAST_CONNECTIONS,
    "weighted": WEIGHTED,
    "latency": LATENCY,
}
assert set(STRATEGY_CODES) == set(STRATEGIES)

_INF: Final = math.inf

#: Every ``NoExit.reason``.
NO_EXIT_REASONS: Final = (
    "no_proxies",
    "unknown_locale",
    "all_banned",
    "all_tried",
    "all_ejected",
    "site_down",
)
#: Outcomes of :meth:`ExitPool.record_failure`.
FAILURE_OUTCOMES: Final = ("pair", "ejected", "capped", "site_down")


@dataclass(frozen=True)
class HealthParams:
    """How the pool judges exits. Times are seconds. Defaults that are settings come from
    ``default_settings.py``.

    Ejection time after a transport failure is ``min(backoff_cap, backoff_base *
    2**(streak-1))`` times a jitter in 0.8..1.2, where ``streak`` counts consecutive ejections
    without a success in between; the jitter keeps exits ejected together from all returning in
    the same instant. A ban on (exit, domain) lasts ``min(ban_cooldown_cap, ban_cooldown *
    2**(domain_ban_streak-1))``, or the site's ``Retry-After`` when longer.
    """

    backoff_base: float = _D.PROXYSTACK_BACKOFF_BASE
    backoff_cap: float = _D.PROXYSTACK_BACKOFF_CAP
    failures_to_eject: int = 1
    #: Never eject more than this share of one (locale, pool) at once; further failures are only
    #: counted (``PoolCounts.ejection_capped``). As in Envoy, one exit may always be ejected;
    #: ``0`` disables ejection.
    max_ejection_share: float = _D.PROXYSTACK_MAX_EJECTION_SHARE
    #: The first ban of an (exit, site) pair is short: most refusals are "not now". Repeats
    #: double it; a ban met again right after its cool-down (no success between) quadruples it.
    ban_cooldown: float = _D.PROXYSTACK_BAN_COOLDOWN
    ban_cooldown_cap: float = _D.PROXYSTACK_BAN_COOLDOWN_CAP
    #: Rest of an (exit, site) pair after a failure that may be the exit's or the site's
    #: (bad gateway, reset, timeout); doubles while the pair keeps failing, up to ``backoff_cap``.
    pair_backoff: float = 1.0
    #: Distinct exits that must fail one site in a row (no answer from the site between) before
    #: the site, not the exits, is taken to be down.
    site_down_exits: int = 2
    #: First wait before a site taken to be down is tried again (one probe request); doubles per
    #: failed probe, up to ``backoff_cap``.
    site_backoff: float = _D.PROXYSTACK_SITE_BACKOFF
    #: A sticky session not used for this long is forgotten (its name may start afresh), so
    #: memory stays bounded however many session names a crawl makes up.
    session_max_idle: float = _D.PROXYSTACK_SESSION_MAX_IDLE
    #: Time constant of the per-exit peak-EWMA latency and of the per-locale latency EWMA.
    ewma_decay: float = 10.0
    #: Seconds added to an exit's latency score per recent ban, 429 or transport failure, so that
    #: fast refusals never make an exit look good.
    ban_latency_penalty: float = 5.0
    #: Time constant with which that penalty fades.
    ban_penalty_decay: float = 60.0
    #: Time constant with which an exit's latency estimate, without new samples, drifts back to
    #: its pool's mean: a once-slow exit is tried again instead of being avoided for ever.
    latency_forget: float = 300.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        positive = (
            "backoff_base",
            "ban_cooldown",
            "ewma_decay",
            "ban_penalty_decay",
            "pair_backoff",
            "site_backoff",
        )
        for name in (*positive, "latency_forget"):
            value = getattr(self, name)
            if not value > 0 or value == _INF:
                problems.append(f"{name}={value!r}: expected a finite number > 0")
        if not self.session_max_idle > 0:
            problems.append(f"session_max_idle={self.session_max_idle!r}: expected > 0")
        if not self.backoff_cap >= self.backoff_base:
            problems.append(f"backoff_cap={self.backoff_cap!r}: expected >= backoff_base")
        if not self.ban_cooldown_cap >= self.ban_cooldown:
            problems.append(f"ban_cooldown_cap={self.ban_cooldown_cap!r}: expected >= ban_cooldown")
        if isinstance(self.failures_to_eject, bool) or not (
            isinstance(self.failures_to_eject, int) and self.failures_to_eject >= 1
        ):
            problems.append(f"failures_to_eject={self.failures_to_eject!r}: expected an int >= 1")
        if isinstance(self.site_down_exits, bool) or not (
            isinstance(self.site_down_exits, int) and self.site_down_exits >= 1
        ):
            problems.append(f"site_down_exits={self.site_down_exits!r}: expected an int >= 1")
        if not 0.0 <= self.max_ejection_share <= 1.0:
            problems.append(
                f"max_ejection_share={self.max_ejection_share!r}: expected a share in 0..1"
            )
        if not 0.0 <= self.ban_latency_penalty < _INF:
            problems.append(
                f"ban_latency_penalty={self.ban_latency_penalty!r}: expected a number >= 0"
            )
        if problems:
            raise ValueError("invalid HealthParams: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Choice:
    """The exit a request leaves from.

    ``locale`` is the locale whose pool served: the asked one, or one of its fallbacks
    (``fallback`` is then true); ``None`` means the pool of all proxies. ``panic`` is true when
    every exit of the chain was ejected and the least-bad one was used anyway.
    """

    entry: ProxyEntry
    locale: str | None
    fallback: bool
    panic: bool


@dataclass(frozen=True, slots=True)
class PoolCounts:
    """Exit counts of a locale (``pool`` is ``None``) or of one of its pools, kept incrementally.

    ``usable`` is not ejected (it says nothing about per-site bans); ``ejection_capped`` and
    ``panics`` are totals since start. ``pools`` breaks a locale down by pool; for the pool of
    all proxies (``locale`` ``None``) it lists every (locale, pool).
    """

    locale: str | None
    pool: str | None
    total: int
    usable: int
    ejected: int
    in_flight: int
    ejection_capped: int = 0
    panics: int = 0
    pools: tuple[PoolCounts, ...] = ()
    #: Exits whose last outcome of their own was a failure (ejected or not): when it equals
    #: ``total``, every exit of the locale fails and it has run dry.
    failing: int = 0


class NoExit(Exception):
    """No exit of the locale chain may serve the request now: it must not be sent.

    ``reason`` is one of :data:`NO_EXIT_REASONS`:

    * ``no_proxies``: the chain (or the whole config, for locale ``None``) has no exit;
    * ``unknown_locale``: the locale is not configured;
    * ``all_banned``: every non-ejected exit is banned or paced for this domain (or was already
      tried); ``retry_at`` is when the first of them is ready again (clock time);
    * ``all_tried``: every non-ejected exit is in ``exclude``;
    * ``all_ejected``: every exit is ejected and panic mode is off; ``retry_at`` is when the
      first one returns;
    * ``site_down``: the site failed through several exits in a row and is resting; ``retry_at``
      is when it is tried again.
    """

    def __init__(
        self, reason: str, locale: str | None = None, retry_at: float | None = None
    ) -> None:
        self.reason = reason
        self.locale = locale
        self.retry_at = retry_at
        super().__init__(f"no usable exit for locale {locale!r}: {reason}")


class SessionLost(NoExit):
    """The exit a sticky session is pinned to cannot serve it any more.

    ``reason``: ``banned`` (for this domain), ``ejected``, ``tried`` (the caller excluded it) or
    ``other_locale`` (the session is asked for a locale whose chain does not hold its exit). The
    caller ends the session (:meth:`ExitPool.end_session`) and may start a new one.
    """

    def __init__(self, session: str, reason: str, locale: str | None = None) -> None:
        super().__init__(reason, locale)
        self.session = session
        self.args = (f"sticky session {session!r} lost its exit: {reason}",)


class PoolListener(Protocol):
    """Told of what a pool learns that other workers should honour (a shared-state backend).

    Calls come from the crawl's thread, inside the pool's own methods: they must not block.
    """

    def on_ban(self, exit_id: str, domain: str, seconds: float, reason: str) -> None: ...

    def on_eject(self, exit_id: str, seconds: float) -> None: ...

    def on_pace(self, exit_id: str, domain: str, seconds: float) -> None: ...

    def on_session(self, session: str, exit_id: str) -> None: ...
