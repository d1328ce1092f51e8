"""The Fenwick tree behind weighted choice (scrapy_proxystack/pool/fenwick.py)."""

from __future__ import annotations

import random

from scrapy_proxystack.pool.fenwick import Fenwick


def test_fenwick_matches_brute_force() -> None:
    rng = random.Random(4)
    weights = [rng.randrange(0, 5) for _ in range(37)]
    fen = Fenwick(list(weights))
    for _ in range(300):
        k = rng.randrange(37)
        weights[k] = rng.randrange(0, 5)
        fen.set(k, weights[k])
        assert fen.total == sum(weights)
        if fen.total:
            u = rng.randrange(fen.total)
            p = fen.find(u)
            assert sum(weights[:p]) <= u < sum(weights[: p + 1])


def test_an_empty_tree_has_nothing_to_find() -> None:
    fen = Fenwick([])
    assert fen.total == 0
    assert fen.find(0) == 0
