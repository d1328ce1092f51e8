"""Decide which locale (country) each request must leave from."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.utils.httpobj import urlparse_cached

from scrapy_proxystack.runtime import enabled_stack, get_stack

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from scrapy_proxystack.runtime import LocaleDecision

__all__ = ["LOCALE_META_KEY", "LocaleMiddleware", "resolve_request_locale"]

logger = logging.getLogger(__name__)

#: Private meta key holding the resolved :class:`~scrapy_proxystack.runtime.LocaleDecision`.
LOCALE_META_KEY = "_proxystack_locale"


def resolve_request_locale(crawler: Crawler, request: Request) -> LocaleDecision:
    """The locale decision for ``request``, computed once per host and kept in its meta.

    A redirect or a request built from ``response.meta`` copies the old decision; it is made
    again when the host changed (for a rule-based locale) or when ``proxystack_locale`` did.
    """
    host = urlparse_cached(request).hostname or ""
    asked = request.meta.get("proxystack_locale")
    cached: tuple[str, LocaleDecision] | None = request.meta.get(LOCALE_META_KEY)
    if cached is not None:
        decision = cached[1]
        if decision.source == "meta":
            if asked is not None and str(asked) == decision.locale:
                return decision
        elif asked is None and cached[0] == host:
            return decision
    decision = get_stack(crawler).resolve_locale(host, asked)
    request.meta[LOCALE_META_KEY] = (host, decision)
    return decision


class LocaleMiddleware:
    """Resolves ``meta["proxystack_locale"]``, YAML ``domains``, the TLD map and the default.

    A separate, early step so that other middlewares (and the spider, through
    ``response.meta``) can see which locale a request was routed by, and why.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stack = enabled_stack(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LocaleMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if LOCALE_META_KEY in request.meta:
            return  # a retry or redirect: decided (and counted) already
        decision = resolve_request_locale(self.crawler, request)
        self.stack.stats.inc("locale", "source", decision.source)
