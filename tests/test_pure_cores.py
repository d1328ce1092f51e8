"""The plain cores import nothing from Scrapy: they are unit-tested and reused on their own."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "scrapy_proxystack.config",
    "scrapy_proxystack.default_settings",
    "scrapy_proxystack.pool",
    "scrapy_proxystack.canary",
    "scrapy_proxystack.canary.controller",
    "scrapy_proxystack.parking",
    "scrapy_proxystack.throttle",
    "scrapy_proxystack.locales",
    "scrapy_proxystack.languages",
    "scrapy_proxystack.bans",
    "scrapy_proxystack.redact",
    "scrapy_proxystack.socks_replies",
    "scrapy_proxystack.testing",
    "scrapy_proxystack.pii",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_imports_nothing_from_scrapy(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "sys.exit(any(m == 'scrapy' or m.startswith('scrapy.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
