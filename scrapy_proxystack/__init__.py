"""scrapy-proxystack: locale-aware proxy rotation, ban detection, per-site throttling and PII
masking for Scrapy, enabled with one add-on line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Addon", "__version__"]

if TYPE_CHECKING:
    from scrapy_proxystack.addon import Addon


def __getattr__(name: str) -> Any:
    # Imported lazily so that the Scrapy-free modules (config, pool, pii, ...) can be used
    # without importing Scrapy.
    if name == "Addon":
        from scrapy_proxystack.addon import Addon

        return Addon
    raise AttributeError(name)
