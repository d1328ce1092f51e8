"""The proxy configuration's frozen types: what the YAML (or ``PROXYSTACK_PROXIES``) yields.

Plain module (no Scrapy import); built by :mod:`scrapy_proxystack.config.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "ANONYMITY_GRADES",
    "SOCKS_SCHEMES",
    "STRATEGIES",
    "CanaryConfig",
    "ConfigError",
    "DomainRule",
    "LocaleConfig",
    "PoolConfig",
    "ProxyConfig",
    "ProxyEntry",
]

#: Exit-choice strategies accepted by ``PROXYSTACK_STRATEGY`` and ``locales.<name>.strategy``.
STRATEGIES = ("latency", "round_robin", "least_connections", "weighted", "random")
#: Proxy anonymity grades, weakest first (see the ``check`` command).
ANONYMITY_GRADES = ("transparent", "anonymous", "elite")

DEFAULT_POOL = "default"
#: Proxy schemes downloaded through the SOCKS handler. Both let the exit resolve names.
SOCKS_SCHEMES = frozenset({"socks5", "socks5h"})


class ConfigError(ValueError):
    """A proxy configuration (or a setting) is invalid. The message lists every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} {self.subject}:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(message)

    @property
    def subject(self) -> str:
        """What the problems are in: settings (``setting NAME: ...``), the proxy file, or both."""
        settings = sum(p.startswith("setting ") for p in self.problems)
        if settings == len(self.problems):
            return "problems in the settings"
        if not settings:
            return "problems in the proxy configuration"
        return "problems in the settings and the proxy configuration"


@dataclass(frozen=True)
class ProxyEntry:
    """One exit: a proxy URL as configured. Its identity is the whole entry, user name included.

    ``url`` carries the credentials and must only ever be handed to Scrapy's
    ``HttpProxyMiddleware`` (through ``meta["proxy"]``), or for a SOCKS exit to the SOCKS
    download handler; everything that is printed uses ``id``.
    """

    id: str
    url: str = field(repr=False)
    scheme: str
    host: str
    port: int
    username: str | None = field(repr=False)
    locale: str | None
    pool: str
    weight: float

    @property
    def has_credentials(self) -> bool:
        return self.username is not None


@dataclass(frozen=True)
class CanaryConfig:
    """A pool's ``canary:`` block: judge it against ``baseline`` (another pool of its locale).

    ``None`` means "not given": the ``PROXYSTACK_CANARY_*`` setting of the same name applies.
    ``latency_margin`` ``None`` leaves latency unjudged; ``steps`` (percentages of the two
    pools' traffic, increasing) enable progressive promotion.
    """

    baseline: str
    alpha: float | None = None
    margin: float | None = None
    latency_margin: float | None = None
    steps: tuple[float, ...] = ()
    promote_after: int | None = None


@dataclass(frozen=True)
class PoolConfig:
    """A named group of proxies inside one locale (a vendor, say), with its share of traffic."""

    name: str
    weight: float
    proxies: tuple[ProxyEntry, ...]
    canary: CanaryConfig | None = None


@dataclass(frozen=True)
class LocaleConfig:
    name: str
    pools: tuple[PoolConfig, ...]
    fallback: tuple[str, ...] = ()
    strategy: str | None = None
    accept_language: str | None = None
    min_anonymity: str | None = None

    @property
    def proxies(self) -> tuple[ProxyEntry, ...]:
        return tuple(p for pool in self.pools for p in pool.proxies)


@dataclass(frozen=True)
class BanRules:
    """Per-domain overrides of the ban classifier (all optional)."""

    status: tuple[int, ...] = ()
    content_status: tuple[int, ...] = ()
    body_patterns: tuple[str, ...] = ()
    url_patterns: tuple[str, ...] = ()
    min_body_size: int | None = None


@dataclass(frozen=True)
class DomainRule:
    """What the ``domains`` section says about one site (exact host or ``*.suffix``)."""

    pattern: str
    locale: str | None
    rate: float | None = None
    burst: int | None = None
    exit_delay: float | None = None
    bans: BanRules = field(default_factory=BanRules)
    #: The site's own languages (``lang:``): a page in any other is a geo-block at once.
    lang: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProxyConfig:
    """The whole validated proxy configuration."""

    source: str
    locales: Mapping[str, LocaleConfig]
    domains: Mapping[str, DomainRule]
    default_locale: str | None = None
    unlocalized: tuple[ProxyEntry, ...] = ()

    @cached_property
    def all_proxies(self) -> tuple[ProxyEntry, ...]:
        """Every exit, each once: the pool used by requests that resolve to no locale."""
        out = [p for loc in self.locales.values() for p in loc.proxies]
        out.extend(self.unlocalized)
        return tuple(out)

    def fallback_chain(self, locale: str) -> tuple[str, ...]:
        """``locale`` followed by its fallbacks, depth first, each locale once.

        Iterative, with a set: a chain of thousands of locales neither hits the recursion
        limit nor rescans the chain for every name.
        """
        chain: list[str] = []
        seen: set[str] = set()
        stack = [locale]
        while stack:
            name = stack.pop()
            if name in seen or name not in self.locales:
                continue
            seen.add(name)
            chain.append(name)
            stack.extend(reversed(self.locales[name].fallback))
        return tuple(chain)

    def domain_rule(self, host: str) -> DomainRule | None:
        """The rule for ``host``: an exact match first, then the longest matching ``*.suffix``."""
        host = host.lower().rstrip(".")
        rule = self.domains.get(host)
        if rule is not None:
            return rule
        parts = host.split(".")
        for i in range(1, len(parts)):
            rule = self.domains.get("*." + ".".join(parts[i:]))
            if rule is not None:
                return rule
        return None
