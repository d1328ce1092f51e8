"""Prefix sums over integer weights, for weighted choice among thousands of exits.

Plain module (no Scrapy import).
"""

from __future__ import annotations

__all__ = ["Fenwick"]


class Fenwick:
    """Prefix sums over integer weights: O(log n) update, O(log n) weighted sampling."""

    __slots__ = ("n", "top", "total", "tree", "weights")

    def __init__(self, weights: list[int]) -> None:
        n = len(weights)
        tree = [0, *weights]
        for k in range(1, n + 1):
            parent = k + (k & -k)
            if parent <= n:
                tree[parent] += tree[k]
        self.n = n
        self.tree = tree
        self.weights = weights
        self.total = sum(weights)
        self.top = 1 << (n.bit_length() - 1) if n else 0

    def set(self, position: int, weight: int) -> None:
        delta = weight - self.weights[position]
        if not delta:
            return
        self.weights[position] = weight
        self.total += delta
        tree = self.tree
        n = self.n
        k = position + 1
        while k <= n:
            tree[k] += delta
            k += k & -k

    def find(self, u: int) -> int:
        """The position p with ``sum(weights[:p]) <= u < sum(weights[:p + 1])``."""
        tree = self.tree
        n = self.n
        position = 0
        step = self.top
        while step:
            nxt = position + step
            if nxt <= n and tree[nxt] <= u:
                position = nxt
                u -= tree[nxt]
            step >>= 1
        return position
