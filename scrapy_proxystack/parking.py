"""Requests waiting for an exit, outside the downloader.

When every exit of a request's locale chain is banned, paced or resting for its site (or the
site itself is resting after failing through several exits), the request is not lost and does
not sit in the downloader holding a ``CONCURRENT_REQUESTS`` unit: it waits here until the first
exit is ready, then goes back through the scheduler.

Plain module (no Scrapy import). Requests wait in *groups*, one per (locale, site), oldest
first. A group releases one request when its wake time comes; the caller reports what became of
it: bound to an exit (:meth:`ParkingLot.bound`, the next one goes at once) or waiting again
(:meth:`ParkingLot.park` with ``front=True``, the group sleeps until the new time). So a backlog
of thousands of requests for a paced site costs one pass per request actually sent, not one
pass over the backlog per exit that frees up. A released request whose fate is never reported
(dropped by another component) does not stall its group: the group wakes again after
``feedback_timeout``.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Final, Generic, TypeVar

__all__ = ["ParkingLot"]

T = TypeVar("T")
_INF: Final = float("inf")


class _Group(Generic[T]):
    __slots__ = ("key", "queue", "wake")

    def __init__(self, key: tuple[str | None, str]) -> None:
        self.key = key
        self.queue: deque[T] = deque()
        self.wake = _INF


class ParkingLot(Generic[T]):
    """Waiting requests by (locale, site), each group released at its own time.

    ``T`` is whatever the caller parks (a Scrapy request). Times are on the caller's clock.
    Memory is one deque entry per waiting request plus one heap entry per wake-up.
    """

    def __init__(self, feedback_timeout: float = 2.0) -> None:
        self.feedback_timeout = feedback_timeout
        self._groups: dict[tuple[str | None, str], _Group[T]] = {}
        self._heap: list[tuple[float, int, tuple[str | None, str]]] = []
        self._seq = itertools.count()
        self._waiting: dict[str | None, int] = {}
        self._size = 0

    def park(
        self, locale: str | None, domain: str, item: T, ready_at: float, *, front: bool = False
    ) -> None:
        """Add ``item`` to its group, to be released no earlier than ``ready_at``.

        ``front`` puts it back at the head (a released request that found no exit keeps its
        place in line); the group then sleeps until ``ready_at``. Otherwise the group wakes at
        the earlier of its current time and ``ready_at``.
        """
        key = (locale, domain)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key)
        if front:
            # Back at the head of the line. Another request of the group that just found an
            # exit may have woken it already: keep the earlier time.
            had_others = bool(group.queue)
            group.queue.appendleft(item)
            self._set_wake(group, min(group.wake, ready_at) if had_others else ready_at)
        else:
            group.queue.append(item)
            if ready_at < group.wake:
                self._set_wake(group, ready_at)
        self._waiting[locale] = self._waiting.get(locale, 0) + 1
        self._size += 1

    def bound(self, locale: str | None, domain: str, now: float) -> None:
        """A released request of the group got an exit: release the next one now."""
        group = self._groups.get((locale, domain))
        if group is not None and group.queue:
            self._set_wake(group, now)

    def wake(self, locale: str | None, domain: str, now: float) -> None:
        """Something changed for the group (the site answered again): release now."""
        self.bound(locale, domain, now)

    def wake_domain(self, domain: str, now: float) -> int:
        """Wake every group of ``domain`` (any locale); returns how many. O(groups)."""
        woken = 0
        for (_locale, site), group in self._groups.items():
            if site == domain and group.queue:
                self._set_wake(group, now)
                woken += 1
        return woken

    def due(self, now: float) -> list[tuple[str | None, str, T]]:
        """Release one request of each group whose time has come."""
        out: list[tuple[str | None, str, T]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            t, _, key = heapq.heappop(heap)
            group = self._groups.get(key)
            if group is None or group.wake != t:
                continue  # stale: the group was re-timed or emptied
            item = group.queue.popleft()
            self._count_out(key[0])
            if group.queue:
                # Until the caller reports back; then bound() or park(front=True) re-times it.
                self._set_wake(group, now + self.feedback_timeout)
            else:
                del self._groups[key]
            out.append((key[0], key[1], item))
        return out

    def drain(self) -> list[tuple[str | None, str, T]]:
        """Take every waiting request out (the crawl is closing)."""
        out = [(key[0], key[1], item) for key, g in self._groups.items() for item in g.queue]
        self._groups.clear()
        self._heap.clear()
        self._waiting.clear()
        self._size = 0
        return out

    def next_wake(self) -> float | None:
        """The earliest time a group wakes, or None when nothing waits."""
        heap = self._heap
        while heap:
            t, _, key = heap[0]
            group = self._groups.get(key)
            if group is not None and group.wake == t:
                return t
            heapq.heappop(heap)
        return None

    def waiting(self, locale: str | None = None) -> int:
        """Requests waiting for ``locale``'s chain."""
        return self._waiting.get(locale, 0)

    def waiting_by_locale(self) -> dict[str | None, int]:
        return {k: v for k, v in self._waiting.items() if v}

    def __len__(self) -> int:
        return self._size

    def _set_wake(self, group: _Group[T], t: float) -> None:
        group.wake = t
        heapq.heappush(self._heap, (t, next(self._seq), group.key))
        if len(self._heap) > 4 * len(self._groups) + 64:
            # Stale entries of re-timed groups: rebuild, amortised O(1) per push.
            self._heap = [
                (g.wake, next(self._seq), g.key) for g in self._groups.values() if g.queue
            ]
            heapq.heapify(self._heap)

    def _count_out(self, locale: str | None) -> None:
        self._waiting[locale] -= 1
        self._size -= 1
