"""State shared by the workers of one crawl (several Scrapy processes, e.g. with scrapy-redis).

Each worker keeps choosing exits locally, from its own pool (a mirror of what every worker
learns); what must hold across workers goes through a :class:`SharedState`:

* the per-site rate budget and the per-(exit, site) pacing, booked atomically at send time (one
  round trip per request, :meth:`SharedState.reserve`);
* what a worker learns about exits (bans, ejections, a site's "slow down", sticky-session
  owners), told to every other worker at once (:class:`~scrapy_proxystack.pool.PoolListener`);
* the requests each worker has in flight through each exit (least-connections), under a lease.

The default is no shared state at all: one worker, everything in memory. The Redis backend is
:class:`scrapy_proxystack.state.redis_state.RedisState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scrapy_proxystack.pool import PoolListener

__all__ = ["BACKENDS", "SharedState", "StateLost"]

#: Values of ``PROXYSTACK_STATE_BACKEND``.
BACKENDS = ("memory", "redis")


class StateLost(Exception):
    """The shared state cannot be reached now: the worker goes on with its local state."""


class SharedState(Protocol):
    """What the download handler and the pool need from a shared-state backend."""

    @property
    def healthy(self) -> bool:
        """Whether the shared state answers now (else the worker runs on local state)."""

    @property
    def workers(self) -> int:
        """Workers seen alive lately, this one included (divides a site's budget while the
        shared state is lost)."""

    @property
    def rank(self) -> int:
        """This worker's place among the workers seen (0-based): while the shared state is
        lost, their schedules of a site start that many slots apart, so they interleave."""

    @property
    def share(self) -> int:
        """By how much to divide a site's budget booked in the shared state now (more than 1
        for a while after a reconnection, when other workers may still be on their own)."""

    @property
    def lookahead(self) -> float:
        """How far ahead a worker books a site's slots: the next one only once its previous
        one leaves within this many seconds (the download handler waits for that), so the
        shared schedule never holds more than one slot per worker leaving later than that."""

    @property
    def lost_at(self) -> float:
        """When this worker last found the shared state gone (monotonic; 0.0: never)."""

    @property
    def listener(self) -> PoolListener:
        """Where the local pool tells what it learns."""

    async def reserve(
        self,
        domain: str,
        exit_id: str | None,
        interval: float,
        tolerance: float,
        delay: float,
        floor: float = 0.0,
    ) -> tuple[float, float, float]:
        """Book a slot of ``domain``'s budget (one request per ``interval`` seconds, up to
        ``tolerance`` seconds ahead, none before ``floor`` seconds from now) and, with
        ``exit_id``, the pair's next ``delay`` seconds.

        Returns ``(busy, wait, ahead)``: ``busy`` > 0 when another worker holds the pair for
        that long (nothing was booked); else the seconds to ``wait`` for the booked slot, and
        how far ahead the site's schedule is now booked. Raises :class:`StateLost` when the
        shared state cannot answer in time.
        """
