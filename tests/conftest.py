"""Shared pytest fixtures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from scrapy_proxystack.testing import LoopbackWorld

if TYPE_CHECKING:
    from collections.abc import Iterator


# --- Loopback world ---------------------------------------------------------------------------
# Real sites and proxies on 127.0.0.0/8 (scrapy_proxystack.testing). A fresh world per test costs
# a few milliseconds; the lifetime cap only matters if a test hangs.


@pytest.fixture
def world() -> Iterator[LoopbackWorld]:
    """A running loopback world with the default regions, stopped after the test."""
    with LoopbackWorld(max_lifetime=120.0) as running_world:
        yield running_world


# --- end of loopback world --------------------------------------------------------------------
