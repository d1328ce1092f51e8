"""Which locale (country) a request must leave from.

Plain module (no Scrapy import). The rules, in order: the request's own ``proxystack_locale``,
the YAML ``domains`` rule of its host, the ``PROXYSTACK_TLD_LOCALES`` map, the YAML default.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy_proxystack.config import ProxyConfig

__all__ = ["LocaleDecision", "LocaleResolver"]


@dataclass(frozen=True, slots=True)
class LocaleDecision:
    """Which locale a request must leave from, and which rule said so (for stats)."""

    locale: str | None
    source: str  # "meta" | "domain" | "tld" | "default" | "none"


class LocaleResolver:
    """Resolves a host (and an optional asked-for locale) to a :class:`LocaleDecision`.

    Host decisions are cached: a crawl asks about the same few hosts millions of times.
    """

    def __init__(self, config: ProxyConfig, tld_locales: Mapping[str, str]) -> None:
        self.config = config
        self.tld_locales = dict(tld_locales)
        self._host = lru_cache(maxsize=65536)(self._resolve_host)

    def resolve(self, host: str, asked: object) -> LocaleDecision:
        """Locale for a request: ``asked`` (meta), then YAML ``domains``, TLD map, default."""
        if asked is not None:
            return LocaleDecision(str(asked), "meta")
        return self._host(host)

    def _resolve_host(self, host: str) -> LocaleDecision:
        rule = self.config.domain_rule(host)
        if rule is not None and rule.locale is not None:
            return LocaleDecision(rule.locale, "domain")
        if self.tld_locales:
            labels = host.lower().rstrip(".").split(".")
            for i in range(1, len(labels)):
                locale = self.tld_locales.get(".".join(labels[i:]))
                if locale is not None:
                    return LocaleDecision(locale, "tld")
        if self.config.default_locale is not None:
            return LocaleDecision(self.config.default_locale, "default")
        return LocaleDecision(None, "none")
