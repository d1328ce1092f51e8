"""The pool's groups of exits: a (locale, pool) of the configuration, a locale, a site.

Plain module (no Scrapy import). These hold the per-group state the choice loops read; the
per-exit state lives in :class:`~scrapy_proxystack.pool.exits.ExitPool`'s parallel lists.
"""

from __future__ import annotations

import math

from scrapy_proxystack.pool.fenwick import Fenwick
from scrapy_proxystack.pool.types import WEIGHTED, PoolCounts

__all__ = ["ExitGroup", "LocaleGroup", "SiteState"]


class ExitGroup:
    """Exits chosen from together: one (locale, pool) of the config, or all exits.

    ``usable`` holds the non-ejected members in any order; ``pos[i]`` is exit ``i``'s place in
    it (-1 when absent). ``pos`` is shared by all pools of one kind: every exit is in exactly
    one (locale, pool) and in the pool of all proxies. ``members`` is a ``range`` when the
    group is a run of consecutive exits (always, for a config the schema built): a million
    exits then cost no member list, and exit ``i`` is member ``i - base``; otherwise ``off[i]``
    says which member it is.
    """

    __slots__ = (
        "base",
        "capped",
        "cursor",
        "ejected",
        "fen",
        "heap",
        "in_flight",
        "lat_n",
        "lat_sum",
        "loc",
        "locale",
        "members",
        "name",
        "off",
        "panics",
        "pos",
        "sick",
        "size",
        "strategy",
        "uid",
        "usable",
        "version",
        "weight",
    )

    def __init__(
        self,
        uid: int,
        locale: str | None,
        name: str | None,
        weight: float,
        strategy: int,
        members: list[int] | range,
        pos: list[int],
        off: list[int] | None,
        wint: list[int],
        heap: list[tuple[float, int]],
        idx: list[int],
    ) -> None:
        """``idx``: the pool's shared index objects (``idx[k] == k``), from which ``usable`` and
        the positions of a run of exits are sliced, so no int is made per exit. ``off`` is only
        needed (and filled) when ``members`` is not a ``range``."""
        self.uid = uid
        self.locale = locale
        #: The locale group this pool belongs to (None for unlocalized exits and for all).
        self.loc: LocaleGroup | None = None
        self.name = name
        self.weight = weight
        self.strategy = strategy
        self.members = members
        self.pos = pos
        size = len(members)
        if isinstance(members, range) and members.step == 1:
            self.base = members.start
            self.off = None
            self.usable = idx[members.start : members.stop]
            pos[members.start : members.stop] = idx[:size]
        else:
            if off is None:
                raise ValueError("ExitGroup: scattered members need an 'off' list")
            self.base = 0
            self.off = off
            self.usable = list(members)
            for k, i in enumerate(members):
                pos[i] = k
                off[i] = k
        self.fen = Fenwick([wint[i] for i in members]) if strategy == WEIGHTED else None
        self.cursor = -1
        #: Bumped whenever ``usable`` changes: cached "nothing ready" answers then expire.
        self.version = 0
        self.size = len(members)
        self.ejected = 0
        #: Members whose last transport outcome was a failure of their own (ejected or not).
        self.sick = 0
        self.in_flight = 0
        self.capped = 0
        self.panics = 0
        self.lat_sum = 0.0
        self.lat_n = 0
        #: Ejected members by return time, for panic mode; may hold stale entries.
        self.heap = heap

    def add(self, i: int, wint: list[int]) -> None:
        pos = self.pos
        if pos[i] >= 0:
            return
        pos[i] = len(self.usable)
        self.usable.append(i)
        self.version += 1
        if self.fen is not None:
            self.fen.set(i - self.base if self.off is None else self.off[i], wint[i])

    def remove(self, i: int) -> None:
        pos = self.pos
        k = pos[i]
        if k < 0:
            return
        usable = self.usable
        last = usable.pop()
        if last != i:
            usable[k] = last
            pos[last] = k
        pos[i] = -1
        self.version += 1
        if self.fen is not None:
            self.fen.set(i - self.base if self.off is None else self.off[i], 0)

    def counts(self) -> PoolCounts:
        return PoolCounts(
            locale=self.locale,
            pool=self.name,
            total=self.size,
            usable=len(self.usable),
            ejected=self.ejected,
            in_flight=self.in_flight,
            ejection_capped=self.capped,
            panics=self.panics,
            failing=self.sick,
        )


class SiteState:
    """A site that failed through several exits in a row (``failing``), and whether it is
    taken to be down: then nothing is sent to it before ``until`` but one probe."""

    __slots__ = ("down", "failing", "probing", "streak", "until")

    def __init__(self) -> None:
        self.failing: set[int] = set()
        self.down = False
        self.streak = 0
        self.until = 0.0
        self.probing = False


class LocaleGroup:
    """A locale's pools and its latency EWMA (plain, time-based) for adaptive timeouts."""

    __slots__ = ("lat", "lat_t", "name", "pools")

    def __init__(self, name: str | None, pools: tuple[ExitGroup, ...]) -> None:
        self.name = name
        self.pools = pools
        self.lat = -1.0
        self.lat_t = 0.0

    def observe(self, latency: float, now: float, decay: float) -> None:
        if self.lat < 0:
            self.lat = latency
        else:
            self.lat = latency + (self.lat - latency) * math.exp((self.lat_t - now) / decay)
        self.lat_t = now
