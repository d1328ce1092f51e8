"""The exit pool: which exit a request leaves from, now, and what the pool learns from how it went.

Why this module is whole (about 1,400 lines): the per-exit state is a dozen parallel lists read
directly by the choice loops, and every ``record_*`` method updates the same lists and the same
per-site maps that the loops read. Split by method, each part would need the others' private
lists (an import cycle, or attribute access through another object on the hot path, where one
choice costs about a microsecond). The data that stands alone is split out: the vocabulary
(``types``), the Fenwick tree (``fenwick``), the groups (``groups``).

This module imports nothing from Scrapy: the middlewares are thin adapters over it, and it can be
unit-tested and benchmarked on its own. It is not thread-safe; Scrapy calls it from one thread.

How it is built, and whose behaviour it follows:

* **Layout.** Exits are integer indices into parallel lists (in-flight count, latency estimate,
  ejection deadline, ...). Each ``(locale, pool)`` of the configuration, and the pool of all
  proxies used by requests with no locale, keeps its non-ejected exits in an *indexable set* (a
  list plus a position array): O(1) add, remove and uniform pick, no allocation per request, no
  scan of all exits on the hot path. scrapy-rotating-proxies builds ``list(good | unchecked)``
  on every request instead, which is O(n) and costs milliseconds at 100,000 proxies.
* **Strategies.** ``round_robin`` walks a cursor like HAProxy's ``roundrobin``; ``random`` is
  uniform; ``least_connections`` is Envoy's ``LEAST_REQUEST`` (power of two random choices,
  HAProxy's ``random(2)``); ``weighted`` samples a Fenwick tree over integer weights in
  O(log n); ``latency`` is power of two choices over a peak-EWMA score (Finagle, Linkerd,
  tower), with a decaying penalty for recent bans because a ban answer is fast (Linkerd's trap).
  A locale with several pools (vendors, canaries) first picks a pool by weight among those that
  can serve, then an exit inside it.
* **Health.** Transport failures eject the *exit* for everyone, the way Envoy's outlier detection
  does: after ``failures_to_eject`` consecutive failures, for an exponentially growing, capped,
  jittered time; never more than ``max_ejection_share`` of a ``(locale, pool)`` at once (but, as
  in Envoy, one exit can always be ejected); a success heals. Ejected exits wait in a min-heap
  keyed by return time and come back lazily, amortised O(log n).
* **Bans are per (exit, site).** A ban, a 429 or a pacing delay makes the exit not ready *for
  that domain* until a time; the exit stays good for every other site. Per-domain maps are
  created lazily and expired entries dropped, so memory stays bounded with millions of domains.
* **Fail closed.** A request walks its locale's fallback chain in order and never leaves it. When
  every exit of the chain is ejected, the least-bad one is used (Envoy's panic mode, but only at
  0 % healthy and flagged on the :class:`Choice`), or, with panic disabled, nothing is.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from typing import TYPE_CHECKING, Final, cast

from scrapy_proxystack.config import STRATEGIES, ExitTable, PoolConfig, ProxyEntry, ProxyList
from scrapy_proxystack.pool.groups import ExitGroup, LocaleGroup, SiteState
from scrapy_proxystack.pool.types import (
    LEAST_CONNECTIONS,
    RANDOM,
    ROUND_ROBIN,
    STRATEGY_CODES,
    WEIGHTED,
    Choice,
    HealthParams,
    NoExit,
    PoolCounts,
    SessionLost,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from scrapy_proxystack.config import ProxyConfig
    from scrapy_proxystack.pool.types import PoolListener

__all__ = ["ExitPool"]

#: Rejection-sampling draws before a pool is scanned. A draw that lands on an exit not ready for
#: the domain costs a fraction of a µs, a scan about as much per usable exit of the pool: with b
#: the share of the pool banned or paced for a site, all 16 draws miss with probability b**16
#: (3 % at b = 0.8, 18 % at b = 0.9). A site that refuses the whole pool is cached after one scan.
_TRIES: Final = 16
#: Integer weight units per unit of configured weight. Integers keep the Fenwick tree exact
#: however often an exit is zeroed and restored; floats would drift.
_WEIGHT_SCALE: Final = 1_000_000
#: Latency assumed when neither an exit nor its pool has a sample yet (seconds). Any positive
#: value works: it only has to let in-flight counts and ban penalties matter.
_PRIOR_LATENCY: Final = 1.0
_MAX_DOUBLINGS: Final = 62
#: A ban penalty decayed below this (seconds of latency) is forgotten.
_NEGLIGIBLE_PENALTY: Final = 1e-6
#: Choices kept per kind (own locale, fallback, pool of all); past it the cache starts over, so
#: a million exits in rotation cost no more than this many objects.
_CHOICE_CACHE: Final = 65_536
_INF: Final = math.inf
_DEFAULT_HEALTH: Final = HealthParams()


class ExitPool:
    """Chooses exits per locale and domain, and keeps their health. See the module docstring.

    ``clock`` is any monotonic clock in seconds (tests pass a fake one); every time the pool
    returns (``retry_at``, :meth:`ejected_until`) is on that clock. ``rng`` makes choices
    reproducible. ``panic`` enables the least-bad fallback when a whole chain is ejected.
    """

    def __init__(
        self,
        config: ProxyConfig,
        *,
        strategy: str = "latency",
        health: HealthParams = _DEFAULT_HEALTH,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        panic: bool = True,
    ) -> None:
        if strategy not in STRATEGY_CODES:
            raise ValueError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
        self.config = config
        self.health = health
        self.strategy = strategy
        self.panic = panic
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._random = self._rng.random
        self._decay = health.ewma_decay
        self._forget = health.latency_forget
        self._pen_decay = health.ban_penalty_decay

        self._init_exits(config)

        self._build_groups(config, strategy)
        self._ready: dict[str, dict[int, float]] = {}
        #: domain -> exit -> (ban streak, cool-down end, reason, success since).
        self._bans: dict[str, dict[int, tuple[int, float, str, bool]]] = {}
        #: domain -> exit -> (failures in a row, rest end): failures of the pair, not yet
        #: blamed on the exit (it may be the site).
        self._pfail: dict[str, dict[int, tuple[int, float]]] = {}
        self._sites: dict[str, SiteState] = {}
        #: domain -> pool uid -> (pool version, first not-before time, its exit): "nothing of
        #: this pool is ready for this domain before that time".
        self._blocked: dict[str, dict[int, tuple[int, float, int]]] = {}
        self._sessions: dict[str, int] = {}
        #: Sessions by last use, oldest first (dicts keep insertion order; a use re-inserts).
        self._session_used: dict[str, float] = {}
        #: When the walk of a chain in progress finds nothing, the first time an exit it
        #: skipped will be ready: written by the scans, read when :class:`NoExit` is raised. An
        #: instance field rather than a returned pair, so a choice allocates nothing.
        self._why_retry = _INF
        #: Told of what this worker learns, when the state is shared with other workers.
        self.listener: PoolListener | None = None
        self._applying = False
        #: Requests in flight through each exit in other workers (least-connections, latency);
        #: only exits with some.
        self._remote: dict[int, int] = {}

    def _init_exits(self, config: ProxyConfig) -> None:
        """The per-exit state: columns indexed by exit for what every exit has, dicts of the
        exits concerned for what only some have (a million exits cost a few lists)."""
        table = config.table if config.table is not None else ExitTable.of(config.all_proxies)
        n = len(table)
        self._table = table
        #: Exit ids by index (the table's own list, not a copy).
        self._id_of = table.ids
        #: The exit indices as int objects, made once: every list of indices below shares them
        #: (a million exits would otherwise cost 28 bytes per index per list).
        self._idx = list(range(n))
        self._ids: dict[str, int] = dict(zip(table.ids, self._idx, strict=True))
        #: Requests in flight through each exit, for the exits with some (a million exits in
        #: rotation have a few dozen busy at a time; the shared state mirrors only those).
        self._inflight: dict[int, int] = {}
        #: Ejection deadline; 0.0 = not ejected.
        self._until = [0.0] * n
        # Sparse per-exit state (only exits with something to remember), kept in dicts: a
        # million exits cost nothing here until they fail.
        #: Consecutive transport failures of the exit's own.
        self._fails: dict[int, int] = {}
        #: Ejections in a row (the backoff's exponent).
        self._streak: dict[int, int] = {}
        #: Peak-EWMA latency; -1.0 = no sample yet.
        self._lat = [-1.0] * n
        self._lat_t = [0.0] * n
        #: Ban penalty on the latency score: (size, when), decaying; dropped once negligible.
        self._pen: dict[int, tuple[float, float]] = {}
        # Weights repeat (most are 1): share the int objects.
        if table.weights is None:
            self._wint = [_WEIGHT_SCALE] * n
        else:
            interned: dict[int, int] = {}
            self._wint = [
                interned.setdefault(w, w)
                for w in (max(1, round(weight * _WEIGHT_SCALE)) for weight in table.weights)
            ]
        #: Choices are immutable: one per (exit, kind) serves every request, kept for the
        #: exits in use (see :data:`_CHOICE_CACHE`).
        self._choice_own: dict[int, Choice] = {}
        self._choice_fallback: dict[int, Choice] = {}
        self._choice_all: dict[int, Choice] = {}
        self._heap: list[tuple[float, int]] = []
        #: The site an exit last failed on, since its last success: failing on a second site
        #: blames the exit.
        self._fail_dom: dict[int, str] = {}
        self._sick = bytearray(n)
        #: The exit has carried a request to a site and back at least once.
        self._proven = bytearray(n)

    def _build_groups(self, config: ProxyConfig, strategy: str) -> None:
        """One group per (locale, pool) of the config, one for the unlocalized proxies, and
        the group of all exits; then each locale's fallback chain of groups."""
        n = len(self._table)
        default_code = STRATEGY_CODES[strategy]
        group_pos = [-1] * n
        #: Member offsets, for pools that are not runs of the table (hand-built configs only).
        group_off: list[int] | None = None
        groups: list[ExitGroup] = []
        group_of: list[ExitGroup | None] = [None] * n
        self._locales: dict[str, LocaleGroup] = {}
        pooled: list[tuple[str | None, str | None, tuple[PoolConfig, ...]]] = [
            (name, lc.strategy, lc.pools) for name, lc in config.locales.items()
        ]
        if config.unlocalized:
            unlocalized = PoolConfig(config.unlocalized[0].pool, 1.0, config.unlocalized)
            pooled.append((None, None, (unlocalized,)))
        for name, own_strategy, pool_configs in pooled:
            code = STRATEGY_CODES[own_strategy or strategy]
            pools: list[ExitGroup] = []
            for pool_config in pool_configs:
                members = self._members(pool_config.proxies)
                if not isinstance(members, range) and group_off is None:
                    group_off = [0] * n
                pool = ExitGroup(
                    len(groups),
                    name,
                    pool_config.name,
                    pool_config.weight if name is not None else 1.0,
                    code,
                    members,
                    group_pos,
                    group_off,
                    self._wint,
                    [],
                    self._idx,
                )
                groups.append(pool)
                pools.append(pool)
                if isinstance(members, range):
                    group_of[members.start : members.stop] = [pool] * len(members)
                else:
                    for i in members:
                        group_of[i] = pool
            if name is not None:
                locale = LocaleGroup(name, tuple(pools))
                self._locales[name] = locale
                for pool in pools:
                    pool.loc = locale
        self._groups = tuple(groups)
        if None in group_of:
            raise ValueError(f"{config.source}: every exit must belong to exactly one pool")
        self._grp = cast("list[ExitGroup]", group_of)
        self._all = ExitGroup(
            len(groups),
            None,
            None,
            1.0,
            default_code,
            range(n),
            [-1] * n,
            None,
            self._wint,
            self._heap,
            self._idx,
        )
        self._all_locale = LocaleGroup(None, (self._all,))
        self._chains: dict[str | None, tuple[LocaleGroup, ...]] = {None: (self._all_locale,)}
        for name in config.locales:
            self._chains[name] = tuple(self._locales[x] for x in config.fallback_chain(name))

    def _members(self, proxies: Sequence[ProxyEntry]) -> list[int] | range:
        """The indices of a pool's exits: a range when the pool is a run of the table (always,
        for a config the schema built)."""
        if isinstance(proxies, ProxyList) and proxies.table is self._table:
            return range(proxies.start, proxies.stop)
        return [self._ids[p.id] for p in proxies]

    # -- choosing -------------------------------------------------------------------------------

    def choose(
        self,
        locale: str | None,
        domain: str,
        *,
        exclude: Collection[str] = (),
        session: str | None = None,
    ) -> Choice:
        """The exit for a request to ``domain`` that must leave from ``locale``, now.

        ``locale`` ``None`` uses the pool of all proxies; otherwise the locale's fallback chain
        is walked in order and the first locale with an exit usable for ``domain`` serves. An
        exit is usable when it is not ejected, ready for the domain (no ban or pacing delay
        running) and not in ``exclude`` (ids the request already tried). The chosen exit's
        in-flight count goes up by one: end it with a ``record_*`` call or :meth:`release`.

        ``session`` pins a sticky session to the exit it first got; when that exit can no
        longer serve it, :class:`SessionLost` is raised. Raises :class:`NoExit` when nothing
        of the chain may be used: the request must not leave at all.
        """
        now = self._clock()
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._reap(now)
        excl = self._exclude(exclude) if exclude else None
        site = self._sites.get(domain)
        if site is not None and site.down:
            self._site_gate(site, locale, now)
        if session is not None:
            return self._choose_session(session, locale, domain, excl, now)
        return self._choose(locale, domain, excl, now)

    def _site_gate(self, site: SiteState, locale: str | None, now: float) -> None:
        """A site taken to be down lets one probe through per rest period (a circuit breaker's
        half-open state); everything else waits for it."""
        if now < site.until:
            raise NoExit("site_down", locale, retry_at=site.until)
        site.probing = True
        site.until = now + self._site_rest(site.streak)

    def _choose(self, locale: str | None, domain: str, excl: set[int] | None, now: float) -> Choice:
        chain = self._chains.get(locale)
        if chain is None:
            raise NoExit("unknown_locale", locale)
        ready = self._ready.get(domain)
        self._why_retry = _INF
        first = chain[0]
        for loc in chain:
            pools = loc.pools
            if len(pools) == 1:
                i = self._pick(pools[0], domain, ready, excl, now)
            else:
                i = self._pick_canary(pools, domain, ready, excl, now)
            if i >= 0:
                self._inflight[i] = self._inflight.get(i, 0) + 1
                self._grp[i].in_flight += 1
                self._all.in_flight += 1
                return self._choice(i, loc, loc is not first)
        return self._no_usable(chain, locale, ready, excl, now)

    def _choose_session(
        self, session: str, locale: str | None, domain: str, excl: set[int] | None, now: float
    ) -> Choice:
        i = self._sessions.get(session)
        used = self._session_used
        used.pop(session, None)
        used[session] = now
        if i is None:
            choice = self._choose(locale, domain, excl, now)
            self._sessions[session] = self._ids[choice.entry.id]
            if self.listener is not None:
                self.listener.on_session(session, choice.entry.id)
            return choice
        chain = self._chains.get(locale)
        if chain is None:
            raise NoExit("unknown_locale", locale)
        if locale is None:
            loc = self._all_locale
        else:
            own = self._grp[i].loc
            if own is None or own not in chain:
                raise SessionLost(session, "other_locale", locale)
            loc = own
        if self._until[i] > 0.0:
            raise SessionLost(session, "ejected", locale)
        if excl is not None and i in excl:
            raise SessionLost(session, "tried", locale)
        ready = self._ready.get(domain)
        if ready is not None:
            t = ready.get(i)
            if t is not None and t > now:
                bans = self._bans.get(domain)
                ban = bans.get(i) if bans is not None else None
                if ban is not None and ban[1] > now:
                    raise SessionLost(session, "banned", locale)
                # Only paced: the session keeps its exit, the caller waits until retry_at.
                raise NoExit("all_banned", locale, retry_at=t)
        self._inflight[i] = self._inflight.get(i, 0) + 1
        self._grp[i].in_flight += 1
        self._all.in_flight += 1
        return self._choice(i, loc, loc is not chain[0])

    def _choice(self, i: int, loc: LocaleGroup, fallback: bool) -> Choice:
        # Choices are immutable, so one object per (exit, kind) is shared by all requests.
        if loc is self._all_locale:
            cache = self._choice_all
        elif fallback:
            cache = self._choice_fallback
        else:
            cache = self._choice_own
        choice = cache.get(i)
        if choice is None:
            if len(cache) >= _CHOICE_CACHE:
                cache.clear()
            choice = cache[i] = Choice(self._table.entry(i), loc.name, fallback, False)
        return choice

    def _exclude(self, exclude: Collection[str]) -> set[int] | None:
        ids = self._ids
        found = {ids[x] for x in exclude if x in ids}
        return found or None

    def _pick_canary(
        self,
        pools: tuple[ExitGroup, ...],
        domain: str,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
    ) -> int:
        """Pick a pool by weight among those with a non-ejected exit, then an exit in it.

        A pool that cannot serve this domain is dropped and the draw repeated among the rest, so
        the configured split holds over the pools that can serve.
        """
        rand = self._random
        skipped = 0
        while True:
            total = 0.0
            for k, pool in enumerate(pools):
                if pool.usable and not (skipped >> k) & 1:
                    total += pool.weight
            if total <= 0.0:
                return -1
            u = rand() * total
            chosen = -1
            for k, pool in enumerate(pools):
                # A pool at weight 0 (a canary rolled back) is never chosen, not even when
                # rounding leaves u just above the total.
                if pool.usable and pool.weight > 0.0 and not (skipped >> k) & 1:
                    chosen = k
                    u -= pool.weight
                    if u < 0.0:
                        break
            i = self._pick(pools[chosen], domain, ready, excl, now)
            if i >= 0:
                return i
            skipped |= 1 << chosen

    def _pick(
        self,
        pool: ExitGroup,
        domain: str,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
    ) -> int:
        """An exit of ``pool`` usable for the domain, by the pool's strategy; -1 if none."""
        items = pool.usable
        n = len(items)
        if not n:
            return -1
        strategy = pool.strategy
        if strategy == ROUND_ROBIN:
            return self._pick_round_robin(pool, domain, ready, excl, now)
        if strategy == WEIGHTED:
            i = self._sample_weighted(pool, ready, excl, now)
            return i if i >= 0 else self._scan(pool, domain, ready, excl, now)
        rand = self._random
        fast = ready is None and excl is None
        # int(random() * n) < n for every n < 2**53: no bound check needed.
        if fast:
            ja = int(rand() * n)
        else:
            ja = self._sample(items, n, ready, excl, now, -1)
            if ja < 0:
                return self._scan(pool, domain, ready, excl, now)
        a = items[ja]
        if strategy == RANDOM or n == 1:
            return a
        # Power of two choices: a second, distinct exit (Envoy LEAST_REQUEST, choice_count 2).
        if fast:
            jb = int(rand() * (n - 1))
            if jb >= ja:
                jb += 1
        else:
            jb = self._sample(items, n, ready, excl, now, ja)
            if jb < 0:
                return a
        b = items[jb]
        if strategy == LEAST_CONNECTIONS:
            inflight, remote = self._inflight.get, self._remote.get
            return a if inflight(a, 0) + remote(a, 0) <= inflight(b, 0) + remote(b, 0) else b
        return a if self._score(a, pool, now) <= self._score(b, pool, now) else b

    def _sample(
        self,
        items: list[int],
        n: int,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
        avoid: int,
    ) -> int:
        """Position of a uniformly drawn usable exit, other than position ``avoid``; -1 if
        ``_TRIES`` draws all miss."""
        rand = self._random
        m = n if avoid < 0 else n - 1
        if m <= 0:
            return -1
        for _ in range(_TRIES):
            j = int(rand() * m)
            if 0 <= avoid <= j:
                j += 1
            i = items[j]
            if excl is not None and i in excl:
                continue
            if ready is not None:
                t = ready.get(i)
                if t is not None:
                    if t > now:
                        continue
                    del ready[i]
            return j
        return -1

    def _sample_weighted(
        self, pool: ExitGroup, ready: dict[int, float] | None, excl: set[int] | None, now: float
    ) -> int:
        fen = pool.fen
        if fen is None or fen.total <= 0:
            return -1
        total = fen.total
        members = pool.members
        rand = self._random
        for _ in range(_TRIES):
            i = members[fen.find(int(rand() * total))]
            if excl is not None and i in excl:
                continue
            if ready is not None:
                t = ready.get(i)
                if t is not None:
                    if t > now:
                        continue
                    del ready[i]
            return i
        return -1

    def _pick_round_robin(
        self,
        pool: ExitGroup,
        domain: str,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
    ) -> int:
        """The next usable exit after the cursor. Skipping unready exits walks the list, so a
        site that bans most of the pool costs O(pool) per request here (cached once nothing is
        ready)."""
        items = pool.usable
        n = len(items)
        c = pool.cursor
        if ready is None and excl is None:
            c += 1
            if c >= n:
                c = 0
            pool.cursor = c
            return items[c]
        if self._blocked_hit(pool, domain, excl, now):
            return -1
        min_t = _INF
        min_i = -1
        tried = False
        for _ in range(n):
            c += 1
            if c >= n:
                c = 0
            i = items[c]
            if excl is not None and i in excl:
                tried = True
                continue
            if ready is not None:
                t = ready.get(i)
                if t is not None:
                    if t > now:
                        if t < min_t:
                            min_t, min_i = t, i
                        continue
                    del ready[i]
            pool.cursor = c
            return i
        self._nothing_ready(pool, domain, min_t, min_i, tried)
        return -1

    def _scan(
        self,
        pool: ExitGroup,
        domain: str,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
    ) -> int:
        """Fallback after the draws missed: one pass over the pool's usable exits, O(pool).

        Picks by the pool's strategy among the ready ones (weighted or uniform reservoir
        sampling, or the better of a uniform pair) without building a list. When nothing is
        ready, the answer is cached per (domain, pool) until the first not-before time passes or
        an exit joins the pool, so a site that bans a whole pool costs O(1) per request after
        the first scan.
        """
        if self._blocked_hit(pool, domain, excl, now):
            return -1
        strategy = pool.strategy
        rand = self._random
        wint = self._wint
        best = second = -1
        seen = 0
        weight_sum = 0
        min_t = _INF
        min_i = -1
        tried = False
        for i in pool.usable:
            if excl is not None and i in excl:
                tried = True
                continue
            if ready is not None:
                t = ready.get(i)
                if t is not None:
                    if t > now:
                        if t < min_t:
                            min_t, min_i = t, i
                        continue
                    del ready[i]
            seen += 1
            if strategy == WEIGHTED:
                w = wint[i]
                weight_sum += w
                if rand() * weight_sum < w:
                    best = i
            elif strategy == RANDOM:
                if rand() * seen < 1.0:
                    best = i
            elif seen == 1:
                best = i
            elif seen == 2:
                second = i
            else:
                r = int(rand() * seen)
                if r == 0:
                    best = i
                elif r == 1:
                    second = i
        if best >= 0:
            if second >= 0:
                if strategy == LEAST_CONNECTIONS:
                    inflight, remote = self._inflight.get, self._remote.get
                    if inflight(second, 0) + remote(second, 0) < inflight(best, 0) + remote(
                        best, 0
                    ):
                        return second
                elif self._score(second, pool, now) < self._score(best, pool, now):
                    return second
            return best
        self._nothing_ready(pool, domain, min_t, min_i, tried)
        return -1

    def _blocked_hit(self, pool: ExitGroup, domain: str, excl: set[int] | None, now: float) -> bool:
        blocked = self._blocked.get(domain)
        if blocked is None:
            return False
        hit = blocked.get(pool.uid)
        if hit is None or hit[0] != pool.version or hit[1] <= now:
            return False
        if excl is not None and hit[2] in excl:
            return False  # rescan, so that retry_at is about an exit the request may use
        if hit[1] < self._why_retry:
            self._why_retry = hit[1]
        return True

    def _nothing_ready(
        self, pool: ExitGroup, domain: str, min_t: float, min_i: int, tried: bool
    ) -> None:
        if min_t < self._why_retry:
            self._why_retry = min_t
        if not tried and min_t < _INF:
            # Every usable exit is banned or paced for the domain, the first until min_t. Bans
            # and pacing only push times later, so this holds until the pool changes (version)
            # or min_i's time moves (_not_before drops the entry).
            blocked = self._blocked.get(domain)
            if blocked is None:
                blocked = self._blocked[domain] = {}
            blocked[pool.uid] = (pool.version, min_t, min_i)

    def _score(self, i: int, pool: ExitGroup, now: float) -> float:
        """Peak-EWMA cost: (latency estimate + recent-ban penalty) x (in-flight + 1)."""
        mean = pool.lat_sum / pool.lat_n if pool.lat_n else _PRIOR_LATENCY
        lat = self._lat[i]
        if lat < 0.0:
            lat = mean
        else:
            lat = mean + (lat - mean) * math.exp((self._lat_t[i] - now) / self._forget)
        pen = self._pen.get(i)
        if pen is not None:
            extra = pen[0] * math.exp((pen[1] - now) / self._pen_decay)
            if extra < _NEGLIGIBLE_PENALTY:
                del self._pen[i]
            else:
                lat += extra
        return lat * (self._inflight.get(i, 0) + self._remote.get(i, 0) + 1)

    def _no_usable(
        self,
        chain: tuple[LocaleGroup, ...],
        locale: str | None,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
    ) -> Choice:
        total = non_ejected = 0
        for loc in chain:
            for pool in loc.pools:
                total += pool.size
                non_ejected += len(pool.usable)
        if not total:
            raise NoExit("no_proxies", locale)
        if non_ejected:
            if self._why_retry < _INF:
                raise NoExit("all_banned", locale, retry_at=self._why_retry)
            raise NoExit("all_tried", locale)
        if not self.panic:
            first_return = min(self._earliest_return(p) for loc in chain for p in loc.pools)
            raise NoExit("all_ejected", locale, retry_at=first_return)
        return self._panic(chain, locale, ready, excl, now)

    def _panic(
        self,
        chain: tuple[LocaleGroup, ...],
        locale: str | None,
        ready: dict[int, float] | None,
        excl: set[int] | None,
        now: float,
    ) -> Choice:
        """Every exit of the chain is ejected: use the one due back first.

        Envoy's panic mode spreads traffic over every host instead; the exit due back first has
        sat out its ejection longest, and one success brings it back at once
        (:meth:`record_success`), so the chain recovers one exit at a time.
        """
        best_t = _INF
        best = -1
        best_loc = chain[0]
        for loc in chain:
            for pool in loc.pools:
                t, i = self._least_bad(pool, ready, excl, now)
                if i >= 0 and t < best_t:
                    best_t, best, best_loc = t, i, loc
        if best < 0:
            if self._why_retry < _INF:
                raise NoExit("all_banned", locale, retry_at=self._why_retry)
            raise NoExit("all_tried", locale)
        self._inflight[best] = self._inflight.get(best, 0) + 1
        group = self._grp[best]
        group.in_flight += 1
        group.panics += 1
        self._all.in_flight += 1
        self._all.panics += 1
        return Choice(self._table.entry(best), best_loc.name, best_loc is not chain[0], True)

    def _earliest_return(self, pool: ExitGroup) -> float:
        heap = pool.heap
        until = self._until
        while heap and until[heap[0][1]] != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else _INF

    def _least_bad(
        self, pool: ExitGroup, ready: dict[int, float] | None, excl: set[int] | None, now: float
    ) -> tuple[float, int]:
        """The ejected member due back first that may serve the domain. O(1) when the first is
        ready for it, else one pass over the pool's ejected exits (panic mode only)."""
        first_t = self._earliest_return(pool)
        if first_t == _INF:
            return _INF, -1
        heap = pool.heap
        first = heap[0][1]
        if self._usable_for(first, ready, excl, now):
            return first_t, first
        until = self._until
        best_t = _INF
        best = -1
        for t, i in heap:
            if until[i] != t:
                continue
            if excl is not None and i in excl:
                continue
            if ready is not None:
                r = ready.get(i)
                if r is not None and r > now:
                    if r < self._why_retry:
                        self._why_retry = r
                    continue
            if t < best_t:
                best_t, best = t, i
        return best_t, best

    @staticmethod
    def _usable_for(
        i: int, ready: dict[int, float] | None, excl: set[int] | None, now: float
    ) -> bool:
        if excl is not None and i in excl:
            return False
        if ready is None:
            return True
        t = ready.get(i)
        return t is None or t <= now

    # -- outcomes -------------------------------------------------------------------------------

    def release(self, exit_id: str) -> None:
        """End a request through ``exit_id`` without an outcome (cancelled, dropped, ...)."""
        i = self._ids.get(exit_id)
        if i is not None:
            self._release(i)

    def _release(self, i: int) -> None:
        busy = self._inflight.get(i, 0)
        if busy > 0:
            if busy == 1:
                del self._inflight[i]
            else:
                self._inflight[i] = busy - 1
            self._grp[i].in_flight -= 1
            self._all.in_flight -= 1

    def record_success(self, exit_id: str, domain: str, latency: float) -> bool:
        """A request through the exit got a genuine answer in ``latency`` seconds.

        Releases the request and heals the exit: its failure and ejection streaks reset, and an
        ejected exit (used in panic mode) returns to service at once, as an Envoy host does
        after a successful active health check. A running ban of (exit, ``domain``) is marked
        as followed by a success, so a later ban counts as a repeat, not as one it outlived.
        A latency that is not a positive number is not a sample.

        Returns True when ``domain`` had been taken to be down and answered again: requests
        waiting for it may go now.
        """
        i = self._ids.get(exit_id)
        if i is None:
            return False
        now = self._clock()
        self._release(i)
        self._streak.pop(i, None)
        self._heal(i)
        if self._until[i] > 0.0:
            self._restore(i)
        bans = self._bans.get(domain)
        if bans is not None:
            ban = bans.get(i)
            if ban is not None and not ban[3]:
                bans[i] = (ban[0], ban[1], ban[2], True)
        pfail = self._pfail.get(domain)
        if pfail is not None:
            pfail.pop(i, None)
        if 0.0 < latency < _INF:
            self._observe(i, latency, now)
            loc = self._grp[i].loc
            if loc is not None:
                loc.observe(latency, now, self._decay)
            self._all_locale.observe(latency, now, self._decay)
        return self._site_answered(domain)

    def _heal(self, i: int) -> None:
        """The exit carried a request to a site and back: it works."""
        self._proven[i] = True
        self._fails.pop(i, None)
        self._fail_dom.pop(i, None)
        if self._sick[i]:
            self._sick[i] = False
            self._grp[i].sick -= 1

    def _mark_sick(self, i: int) -> None:
        if not self._sick[i]:
            self._sick[i] = True
            self._grp[i].sick += 1

    def record_transport_failure(self, exit_id: str, domain: str, reason: str) -> bool:
        """The exit itself failed, in a way only a proxy can (connection to it refused, 407,
        tunnel refused): it is unwell for everyone. Releases the request. ``domain`` and
        ``reason`` are for the caller's records; every reason counts the same here.

        Returns True when this call ejected the exit. An exit already ejected (a request sent
        before the ejection) is not ejected again. When ejecting would exceed
        ``max_ejection_share`` of the exit's (locale, pool), the failure is only counted in
        ``PoolCounts.ejection_capped`` and the exit stays usable.
        """
        i = self._ids.get(exit_id)
        if i is None:
            return False
        now = self._failed_attempt(i)
        self._mark_sick(i)
        return self._exit_failed(i, now)

    def _failed_attempt(self, i: int) -> float:
        """Release a failed attempt and penalise its exit's score; returns the time."""
        now = self._clock()
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._reap(now)
        self._release(i)
        self._penalize(i, now)
        return now

    def _exit_failed(self, i: int, now: float) -> bool:
        if self._until[i] > 0.0:
            return False
        fails = self._fails.get(i, 0) + 1
        self._fails[i] = fails
        if fails < self.health.failures_to_eject:
            return False
        group = self._grp[i]
        share = self.health.max_ejection_share
        # Envoy: eject when no host is ejected yet, or when one more stays within the share.
        if share <= 0.0 or (group.ejected and group.ejected + 1 > share * group.size + 1e-9):
            group.capped += 1
            self._all.capped += 1
            return False
        self._eject(i, now)
        return True

    def record_failure(self, exit_id: str, domain: str, reason: str) -> str:
        """A request through the exit to ``domain`` failed in a way that may be the site's as
        well as the exit's (bad gateway, reset, timeout, a malformed answer). Releases it.

        Blame goes to the right party, as in DESIGN's health model:

        * the (exit, site) pair rests first (``pair_backoff``, doubling while it keeps
          failing): the exit keeps serving other sites;
        * an exit that fails on a second site before any success is unwell: it is ejected (as
          :meth:`record_transport_failure`, share cap included);
        * a site that fails through ``site_down_exits`` distinct exits in a row, each known to
          work (it answered before, and has not failed since), is down: it rests
          (``site_backoff``, doubling per failed probe) and the exits that failed on it are
          cleared of it.

        Returns one of :data:`FAILURE_OUTCOMES`: ``"site_down"`` when this failure took the
        site down (or a probe of a down site failed), ``"ejected"`` or ``"capped"`` when the
        exit was blamed, else ``"pair"``.
        """
        i = self._ids.get(exit_id)
        if i is None:
            return "pair"
        now = self._failed_attempt(i)
        health = self.health
        site = self._sites.get(domain)
        if site is None:
            site = self._sites[domain] = SiteState()
        if site.down:
            if site.probing:
                site.probing = False
                site.streak += 1
                site.until = now + self._site_rest(site.streak)
                return "site_down"
            return "pair"  # sent before the site was taken down: already counted
        previous = self._fail_dom.get(i)
        if self._proven[i] and previous is None:
            # Only an exit known to work, with no failure since, testifies against the site:
            # two broken exits failing in a row must not take a working site down.
            site.failing.add(i)
            if len(site.failing) >= health.site_down_exits:
                self._site_down(domain, site, now)
                return "site_down"
        if previous is not None and previous != domain:
            self._mark_sick(i)
            return "ejected" if self._exit_failed(i, now) else "capped"
        self._fail_dom[i] = domain
        pfail = self._pfail.get(domain)
        if pfail is None:
            pfail = self._pfail[domain] = {}
        count = pfail.get(i, (0, 0.0))[0] + 1
        rest = min(health.backoff_cap, health.pair_backoff * 2.0 ** min(count - 1, _MAX_DOUBLINGS))
        pfail[i] = (count, now + rest)
        self._not_before(i, domain, now + rest)
        return "pair"

    def _site_down(self, domain: str, site: SiteState, now: float) -> None:
        site.down = True
        site.probing = False
        site.streak = 1
        site.until = now + self._site_rest(1)
        # The exits were not at fault: clear the rests and suspicions the site caused.
        pfail = self._pfail.pop(domain, None)
        ready = self._ready.get(domain)
        for k in site.failing:
            if self._fail_dom.get(k) == domain:
                del self._fail_dom[k]
            if pfail is not None and k in pfail and ready is not None:
                ban = self._bans.get(domain, {}).get(k)
                if ban is None or ban[1] <= now:
                    ready.pop(k, None)
        site.failing.clear()
        blocked = self._blocked.get(domain)
        if blocked is not None:
            blocked.clear()

    def _site_rest(self, streak: int) -> float:
        health = self.health
        return min(
            health.backoff_cap, health.site_backoff * 2.0 ** min(max(streak, 1) - 1, _MAX_DOUBLINGS)
        )

    def _site_answered(self, domain: str) -> bool:
        """The site answered (even with a refusal): it is up. True if it was taken to be down."""
        site = self._sites.pop(domain, None)
        return site is not None and site.down

    def record_throttle(self, exit_id: str, domain: str, retry_after: float | None = None) -> bool:
        """``domain`` asked the exit to slow down (429, a rate-limit page). Releases it.

        Not a ban: the pair is only paced (the caller sets the delay with :meth:`pace`), and
        not before ``retry_after`` seconds when the site said so. The site and the exit both
        answered, so both are alive. Returns True when the site had been taken to be down.
        """
        i = self._ids.get(exit_id)
        if i is None:
            return False
        now = self._clock()
        self._release(i)
        self._heal(i)
        if retry_after is not None and 0.0 < retry_after < _INF:
            self._not_before(i, domain, now + retry_after)
            if self.listener is not None:
                self.listener.on_pace(exit_id, domain, retry_after)
        return self._site_answered(domain)

    def record_ban(
        self,
        exit_id: str,
        domain: str,
        reason: str,
        retry_after: float | None = None,
        latency: float | None = None,
    ) -> float:
        """``domain`` refused the exit (403, challenge, geo-block, ...). Releases the request.

        The exit is not ready for ``domain`` until now + cool-down (returned); it stays usable
        for every other site. The cool-down starts at ``ban_cooldown`` and grows with each ban
        of this (exit, domain) that follows the end of the previous one without a success
        between: doubling, or quadrupling when the ban outlived its cool-down (the first
        attempt after it was banned again), up to ``ban_cooldown_cap``; a longer
        ``retry_after`` (seconds) wins. Bans landing while one is running (requests sent before
        it) do not grow the streak. The exit's latency score gets a decaying penalty, and
        ``latency`` only counts when it is worse than the exit's estimate: a ban is fast, and a
        fast answer must not make a banned exit look good. The site answered, so it is up.
        """
        i = self._ids.get(exit_id)
        if i is None:
            return 0.0
        now = self._clock()
        self._release(i)
        self._heal(i)
        self._site_answered(domain)
        health = self.health
        bans = self._bans.get(domain)
        if bans is None:
            bans = self._bans[domain] = {}
        previous = bans.get(i)
        streak = 1
        running_until = 0.0
        if previous is not None:
            prev_streak, prev_until, _reason, healed = previous
            if now < prev_until:
                streak = prev_streak
                running_until = prev_until
            elif now <= prev_until + health.ban_cooldown_cap:
                # A repeat doubles; with no success since that ban, the ban outlived its
                # cool-down: the site still refuses this exit, so the next wait is longer.
                streak = prev_streak + (1 if healed else 2)
        cooldown = min(
            health.ban_cooldown_cap,
            health.ban_cooldown * 2.0 ** min(streak - 1, _MAX_DOUBLINGS),
        )
        if retry_after is not None and cooldown < retry_after < _INF:
            cooldown = float(retry_after)
        until = max(now + cooldown, running_until)
        bans[i] = (streak, until, reason, False)
        self._not_before(i, domain, until)
        self._penalize(i, now)
        if self.listener is not None and until > running_until:
            self.listener.on_ban(exit_id, domain, until - now, reason)
        if latency is not None and 0.0 < latency < _INF:
            known = self._lat[i]
            if latency > (known if known >= 0.0 else self._mean(self._grp[i])):
                self._observe(i, latency, now)
        return cooldown

    def pace(self, exit_id: str, domain: str, delay: float, *, learned: bool = False) -> None:
        """Do not use the exit for ``domain`` again before now + ``delay`` (per-exit politeness
        per site). Never shortens a running ban or delay. One dict write. ``learned``: the site
        asked for it (a 429), so other workers sharing state are told too."""
        if not delay > 0.0:
            return
        i = self._ids.get(exit_id)
        if i is not None:
            self._not_before(i, domain, self._clock() + delay)
            if learned and self.listener is not None:
                self.listener.on_pace(exit_id, domain, delay)

    def _not_before(self, i: int, domain: str, t: float) -> None:
        ready = self._ready.get(domain)
        if ready is None:
            ready = self._ready[domain] = {}
        current = ready.get(i)
        if current is None or current < t:
            ready[i] = t
            blocked = self._blocked.get(domain)
            if blocked is not None:
                for uid in (self._grp[i].uid, self._all.uid):
                    hit = blocked.get(uid)
                    if hit is not None and hit[2] == i:
                        del blocked[uid]

    def end_session(self, session: str) -> None:
        """Forget a sticky session; the next request with that name picks and pins afresh."""
        self._sessions.pop(session, None)
        self._session_used.pop(session, None)

    def _observe(self, i: int, latency: float, now: float) -> None:
        """Peak EWMA (Finagle, tower): a sample above the estimate replaces it at once; lower
        ones pull it down with a weight that grows with the time since the last sample."""
        lat = self._lat
        old = lat[i]
        if old < 0.0 or latency >= old:
            new = latency
        else:
            new = latency + (old - latency) * math.exp((self._lat_t[i] - now) / self._decay)
        lat[i] = new
        self._lat_t[i] = now
        group = self._grp[i]
        every = self._all
        if old < 0.0:
            group.lat_n += 1
            group.lat_sum += new
            every.lat_n += 1
            every.lat_sum += new
        else:
            group.lat_sum += new - old
            every.lat_sum += new - old

    def _penalize(self, i: int, now: float) -> None:
        penalty = self.health.ban_latency_penalty
        if penalty <= 0.0:
            return
        current = 0.0
        pen = self._pen.get(i)
        if pen is not None:
            current = pen[0] * math.exp((pen[1] - now) / self._pen_decay)
        self._pen[i] = (current + penalty, now)

    @staticmethod
    def _mean(pool: ExitGroup) -> float:
        return pool.lat_sum / pool.lat_n if pool.lat_n else _PRIOR_LATENCY

    # -- ejection -------------------------------------------------------------------------------

    def _eject(self, i: int, now: float) -> None:
        health = self.health
        streak = self._streak.get(i, 0) + 1
        self._streak[i] = streak
        duration = min(
            health.backoff_cap, health.backoff_base * 2.0 ** min(streak - 1, _MAX_DOUBLINGS)
        )
        until = now + duration * self._rng.uniform(0.8, 1.2)
        self._until[i] = until
        if self.listener is not None and not self._applying:
            self.listener.on_eject(self._id_of[i], until - now)
        self._fails.pop(i, None)
        group = self._grp[i]
        group.remove(i)
        group.ejected += 1
        every = self._all
        every.remove(i)
        every.ejected += 1
        heapq.heappush(self._heap, (until, i))
        group_heap = group.heap
        heapq.heappush(group_heap, (until, i))
        if len(group_heap) > 2 * group.ejected + 32:
            # Drop entries of exits that came back early (healed in panic mode): amortised O(1).
            fresh = [(t, k) for t, k in group_heap if self._until[k] == t]
            heapq.heapify(fresh)
            group_heap[:] = fresh

    def _reap(self, now: float) -> None:
        """Return every exit whose ejection is over (lazily, from the min-heap)."""
        heap = self._heap
        until = self._until
        while heap and heap[0][0] <= now:
            t, i = heapq.heappop(heap)
            if until[i] == t:
                self._restore(i)

    def _restore(self, i: int) -> None:
        self._until[i] = 0.0
        self._fails.pop(i, None)
        wint = self._wint
        group = self._grp[i]
        group.add(i, wint)
        group.ejected -= 1
        every = self._all
        every.add(i, wint)
        every.ejected -= 1

    # -- run-time weights (canary analysis) -----------------------------------------------------

    def _group(self, locale: str, pool: str) -> ExitGroup:
        loc = self._locales.get(locale)
        found = None if loc is None else next((g for g in loc.pools if g.name == pool), None)
        if found is None:
            raise KeyError(f"no pool {pool!r} in locale {locale!r}")
        return found

    def pool_weight(self, locale: str, pool: str) -> float:
        """The current weight of one (locale, pool), as configured or as last set."""
        return self._group(locale, pool).weight

    def set_pool_weight(self, locale: str, pool: str, weight: float) -> float:
        """Change the share of traffic a (locale, pool) gets among its locale's pools, now;
        returns the previous weight. ``0`` sends it nothing: its in-flight requests finish,
        and a request bound to it that has not left yet is bound again when sent
        (:meth:`pool_closed`). Only the choice between pools reads it: O(1)."""
        if not (0.0 <= weight < _INF):
            raise ValueError(f"weight={weight!r}: expected a finite number >= 0")
        group = self._group(locale, pool)
        previous = group.weight
        group.weight = weight
        return previous

    def pool_closed(self, exit_id: str, locale: str | None) -> bool:
        """Whether a choice for ``locale`` no longer draws ``exit_id``'s pool: one of several
        pools of that locale, at weight 0 (a canary rolled back, or the baseline of one
        promoted to 100 %). A choice of the pool of all proxies ignores pool weights."""
        i = self._ids.get(exit_id)
        if i is None:
            return False
        group = self._grp[i]
        loc = group.loc
        return group.weight <= 0.0 and loc is not None and loc.name == locale and len(loc.pools) > 1

    # -- state learned by other workers ----------------------------------------------------------

    def apply_ban(self, exit_id: str, domain: str, seconds: float, reason: str) -> bool:
        """Another worker saw ``domain`` ban ``exit_id`` for ``seconds``: honour it here."""
        i = self._ids.get(exit_id)
        if i is None or not 0.0 < seconds < _INF:
            return False
        until = self._clock() + seconds
        bans = self._bans.setdefault(domain, {})
        previous = bans.get(i)
        if previous is not None and previous[1] >= until:
            return False
        bans[i] = (previous[0] if previous is not None else 1, until, reason, False)
        self._not_before(i, domain, until)
        return True

    def apply_ejection(self, exit_id: str, seconds: float) -> bool:
        """Another worker ejected ``exit_id`` for ``seconds``: eject it here too."""
        i = self._ids.get(exit_id)
        if i is None or not 0.0 < seconds < _INF or self._until[i] > 0.0:
            return False
        now = self._clock()
        self._applying = True
        try:
            self._eject(i, now)
        finally:
            self._applying = False
        self._until[i] = now + seconds
        heapq.heappush(self._heap, (self._until[i], i))
        heapq.heappush(self._grp[i].heap, (self._until[i], i))
        return True

    def adopt_session(self, session: str, exit_id: str) -> bool:
        """Another worker owns sticky session ``session`` on ``exit_id``: pin it here too."""
        i = self._ids.get(exit_id)
        if i is None or self._sessions.get(session) == i:
            return False
        self._sessions[session] = i
        self._session_used.pop(session, None)
        self._session_used[session] = self._clock()
        return True

    def set_remote_in_flight(self, counts: Mapping[str, int]) -> None:
        """Requests in flight through each exit in the other workers (replaces the last)."""
        remote: dict[int, int] = {}
        ids = self._ids
        for exit_id, n in counts.items():
            i = ids.get(exit_id)
            if i is not None and n > 0:
                remote[i] = n
        self._remote = remote

    def in_flight_by_exit(self) -> dict[str, int]:
        """This worker's requests in flight, by exit (only exits with some)."""
        id_of = self._id_of
        return {id_of[i]: n for i, n in self._inflight.items()}

    # -- reading --------------------------------------------------------------------------------

    def counts(self, locale: str | None = None) -> PoolCounts:
        """Counts of a locale (broken down by pool), or of all exits for ``None``.

        O(number of pools): the counters are kept as exits change state.
        """
        now = self._clock()
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._reap(now)
        if locale is None:
            every = self._all
            return PoolCounts(
                locale=None,
                pool=None,
                total=every.size,
                usable=len(every.usable),
                ejected=every.ejected,
                in_flight=every.in_flight,
                ejection_capped=every.capped,
                panics=every.panics,
                pools=tuple(g.counts() for g in self._groups),
                failing=sum(g.sick for g in self._groups),
            )
        loc = self._locales.get(locale)
        if loc is None:
            raise KeyError(f"unknown locale {locale!r}")
        parts = tuple(p.counts() for p in loc.pools)
        return PoolCounts(
            locale=locale,
            pool=None,
            total=sum(p.total for p in parts),
            usable=sum(p.usable for p in parts),
            ejected=sum(p.ejected for p in parts),
            in_flight=sum(p.in_flight for p in parts),
            ejection_capped=sum(p.ejection_capped for p in parts),
            panics=sum(p.panics for p in parts),
            pools=parts,
            failing=sum(p.failing for p in parts),
        )

    def blocked_reasons(
        self, locale: str | None, domain: str, limit: int = 10_000
    ) -> dict[str, int]:
        """Why the exits of ``locale``'s chain cannot carry a request to ``domain`` now, counted
        by reason: a ban reason (``status_403``, ``lang_mismatch``, ...), ``transport`` (the
        pair rests after failures), ``paced``, ``ejected``, ``site_down``; ``ready`` for those
        that could. For messages and summaries: O(chain), at most ``limit`` exits looked at.
        """
        now = self._clock()
        out: dict[str, int] = {}
        site = self._sites.get(domain)
        chain = self._chains.get(locale, ())
        ready = self._ready.get(domain, {})
        bans = self._bans.get(domain, {})
        pfail = self._pfail.get(domain, {})
        seen = 0
        for loc in chain:
            for pool in loc.pools:
                for i in pool.members:
                    seen += 1
                    if seen > limit:
                        return out
                    if site is not None and site.down and now < site.until:
                        why = "site_down"
                    elif self._until[i] > 0.0:
                        why = "ejected"
                    elif ready.get(i, 0.0) > now:
                        ban = bans.get(i)
                        if ban is not None and ban[1] > now:
                            why = ban[2]
                        elif i in pfail and pfail[i][1] > now:
                            why = "transport"
                        else:
                            why = "paced"
                    else:
                        why = "ready"
                    out[why] = out.get(why, 0) + 1
        return out

    def banned_exits(self, locale: str | None) -> int:
        """Exits of ``locale`` (all exits for None) banned by at least one site right now.
        O(running bans): for summaries."""
        now = self._clock()
        banned: set[int] = set()
        loc = self._all_locale if locale is None else self._locales.get(locale)
        for bans in self._bans.values():
            for i, ban in bans.items():
                if ban[1] > now and (loc is self._all_locale or self._grp[i].loc is loc):
                    banned.add(i)
        return len(banned)

    def site_down_until(self, domain: str) -> float | None:
        """When a site taken to be down is tried again (clock time), or None if it is not."""
        site = self._sites.get(domain)
        return site.until if site is not None and site.down else None

    def latency_of(self, exit_id: str) -> float | None:
        """The exit's peak-EWMA latency in seconds, or None before its first sample."""
        i = self._ids.get(exit_id)
        if i is None or self._lat[i] < 0.0:
            return None
        return self._lat[i]

    def locale_latency(self, locale: str | None) -> float | None:
        """EWMA latency of successful requests through a locale's exits (all exits for None),
        for adaptive timeouts; None before the first sample or for an unknown locale."""
        loc = self._all_locale if locale is None else self._locales.get(locale)
        if loc is None or loc.lat < 0.0:
            return None
        return loc.lat

    def ejected_until(self, exit_id: str) -> float | None:
        """When the ejected exit returns (clock time), or None if it is not ejected."""
        i = self._ids.get(exit_id)
        if i is None:
            return None
        now = self._clock()
        heap = self._heap
        if heap and heap[0][0] <= now:
            self._reap(now)
        until = self._until[i]
        return until if until > 0.0 else None

    def ready_at(self, exit_id: str, domain: str) -> float | None:
        """When the exit may be used for ``domain`` again (clock time), or None if it may now."""
        i = self._ids.get(exit_id)
        ready = self._ready.get(domain)
        if i is None or ready is None:
            return None
        t = ready.get(i)
        return t if t is not None and t > self._clock() else None

    def entry_of(self, exit_id: str) -> ProxyEntry | None:
        """The configured entry of an exit (built from the table: callers keep what they need)."""
        i = self._ids.get(exit_id)
        return None if i is None else self._table.entry(i)

    @property
    def has_socks(self) -> bool:
        """Whether any exit is a SOCKS proxy (the dispatch handler then needs its SOCKS path)."""
        return self._table.has_socks

    def session_exit(self, session: str) -> str | None:
        """The id of the exit a sticky session is pinned to, if any."""
        i = self._sessions.get(session)
        return None if i is None else self._id_of[i]

    def expire(self, now: float | None = None) -> int:
        """Drop per-domain state that no longer matters; returns the entries removed.

        Not-before times that passed go (the hot path drops the ones it meets, but a site that is
        never asked again would keep its map), ban streaks ``ban_cooldown_cap`` after their ban
        ended, then whole domain maps left empty. O(entries): call it periodically (every
        minute, say) so memory stays bounded with millions of domains.
        """
        if now is None:
            now = self._clock()
        removed = 0
        for domain in list(self._ready):
            ready = self._ready[domain]
            for i, t in list(ready.items()):
                if t <= now:
                    del ready[i]
                    removed += 1
            if not ready:
                del self._ready[domain]
        for domain in list(self._blocked):
            blocked = self._blocked[domain]
            for uid, (_version, t, _i) in list(blocked.items()):
                if t <= now:
                    del blocked[uid]
                    removed += 1
            if not blocked:
                del self._blocked[domain]
        idle = self.health.session_max_idle
        used = self._session_used
        while used:
            oldest = next(iter(used))
            if used[oldest] + idle > now:
                break
            del used[oldest]
            self._sessions.pop(oldest, None)
            removed += 1
        memory = self.health.ban_cooldown_cap
        for domain in list(self._bans):
            bans = self._bans[domain]
            for i, (_streak, until, _reason, _healed) in list(bans.items()):
                if until + memory < now:
                    del bans[i]
                    removed += 1
            if not bans:
                del self._bans[domain]
        for domain in list(self._pfail):
            pfail = self._pfail[domain]
            for i, (_count, until) in list(pfail.items()):
                if until + memory < now:
                    del pfail[i]
                    removed += 1
            if not pfail:
                del self._pfail[domain]
        for domain, site in list(self._sites.items()):
            # Failures of a site that is not down are forgotten here; a down one after its
            # rest has long passed without a probe.
            if not site.down or site.until + memory < now:
                del self._sites[domain]
                removed += 1
        # Ban penalties decay on the latency score; other strategies never read them, so the
        # ones that decayed to nothing are dropped here.
        decay = self._pen_decay
        for i, (size, since) in list(self._pen.items()):
            if size * math.exp((since - now) / decay) < _NEGLIGIBLE_PENALTY:
                del self._pen[i]
                removed += 1
        return removed

    # -- persistence ----------------------------------------------------------------------------

    def export_state(self, wall_now: float) -> dict[str, object]:
        """What a paused crawl must not forget, by exit id, deadlines on the wall clock:
        running ejections (with their streaks), running (exit, site) bans (streak, reason),
        not-before times and sticky sessions. Plain data (JSON-able); O(state), plus one pass
        over the ejection deadlines (about 0.1 s for a million exits, once per pause)."""
        now = self._clock()

        def wall(t: float) -> float:
            return t - now + wall_now

        id_of = self._id_of
        ejected = {
            id_of[i]: [wall(t), self._streak.get(i, 0)]
            for i, t in enumerate(self._until)
            if t > now
        }
        bans = {
            domain: {id_of[i]: [s, wall(u), r, h] for i, (s, u, r, h) in m.items() if u > now}
            for domain, m in self._bans.items()
        }
        ready = {
            domain: {id_of[i]: wall(t) for i, t in m.items() if t > now}
            for domain, m in self._ready.items()
        }
        return {
            "ejected": ejected,
            "bans": {d: m for d, m in bans.items() if m},
            "ready": {d: m for d, m in ready.items() if m},
            "sessions": {name: id_of[i] for name, i in self._sessions.items()},
        }

    def import_state(self, state: dict[str, object], wall_now: float) -> int:
        """Restore :meth:`export_state` output; exits no longer configured are skipped.
        Returns how many entries were restored."""
        now = self._clock()
        ids = self._ids
        restored = 0

        def mono(t: float) -> float:
            return float(t) - wall_now + now

        ejected = state.get("ejected", {})
        assert isinstance(ejected, dict)
        for exit_id, (until, streak) in ejected.items():
            i = ids.get(exit_id)
            if i is None or mono(until) <= now or self._until[i] > 0.0:
                continue
            self._streak[i] = max(int(streak) - 1, 0)
            if not self._streak[i]:
                del self._streak[i]
            self._eject(i, now)
            self._until[i] = mono(until)
            heapq.heappush(self._heap, (self._until[i], i))
            heapq.heappush(self._grp[i].heap, (self._until[i], i))
            restored += 1
        bans = state.get("bans", {})
        assert isinstance(bans, dict)
        for domain, m in bans.items():
            for exit_id, (streak, until, reason, healed) in m.items():
                i = ids.get(exit_id)
                if i is None or mono(until) <= now:
                    continue
                self._bans.setdefault(domain, {})[i] = (
                    int(streak),
                    mono(until),
                    str(reason),
                    bool(healed),
                )
                restored += 1
        ready = state.get("ready", {})
        assert isinstance(ready, dict)
        for domain, m in ready.items():
            for exit_id, t in m.items():
                i = ids.get(exit_id)
                if i is not None and mono(t) > now:
                    self._not_before(i, domain, mono(t))
                    restored += 1
        sessions = state.get("sessions", {})
        assert isinstance(sessions, dict)
        for name, exit_id in sessions.items():
            i = ids.get(exit_id)
            if i is not None:
                self._sessions[name] = i
                self._session_used[name] = now
                restored += 1
        return restored

    def __len__(self) -> int:
        return len(self._table)
