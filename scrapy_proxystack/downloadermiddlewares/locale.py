"""Decide which locale (country) each request must leave from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy_proxystack.runtime import enabled_stack

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from scrapy_proxystack.routing import Router
    from scrapy_proxystack.stats import StatsRecorder

__all__ = ["LocaleMiddleware"]


class LocaleMiddleware:
    """Resolves ``meta["proxystack_locale"]``, YAML ``domains``, the TLD map and the default.

    A separate, early step so that other middlewares (and the spider, through
    :func:`~scrapy_proxystack.routing.route_of`) can see which locale a request was routed by,
    and why.
    """

    def __init__(self, router: Router, stats: StatsRecorder) -> None:
        self.router = router
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LocaleMiddleware:
        stack = enabled_stack(crawler)
        return cls(stack.router, stack.stats)

    def process_request(self, request: Request) -> None:
        if self.router.decided(request):
            return  # a retry or redirect: decided (and counted) already
        decision = self.router.decide(request)
        self.stats.inc("locale", "source", decision.source)
