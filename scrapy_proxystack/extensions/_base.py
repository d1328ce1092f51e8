"""What every observability extension checks before it switches itself on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy_proxystack.extensions._observer import get_observer
from scrapy_proxystack.runtime import config_errors_logged, disabled
from scrapy_proxystack.settings import ObservabilitySettings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from scrapy_proxystack.extensions._observer import CrawlObserver

__all__ = ["observe"]


def observe(crawler: Crawler) -> tuple[ObservabilitySettings, CrawlObserver]:
    """The validated settings and the shared observer, or NotConfigured with nothing to see."""
    with config_errors_logged():
        settings = ObservabilitySettings.from_settings(crawler.settings)
    if not settings.enabled:
        raise disabled(crawler)
    return settings, get_observer(crawler)
