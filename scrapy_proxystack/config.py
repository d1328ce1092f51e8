"""The proxy configuration: the YAML schema, its validation, and the frozen objects it yields.

The YAML file (``PROXYSTACK_PROXIES_FILE``) or the equivalent dict (``PROXYSTACK_PROXIES``) is
read once, at start-up, before any request. Every problem found is reported at once, each line
naming the file, the key path (``locales.fr.proxies[2]``), the offending value with credentials
redacted, and what was expected, because a crawl that starts on a broken proxy list burns hours
of proxy budget before anyone notices.

This module holds the frozen types and the two entry points; reading YAML strictly lives in
:mod:`scrapy_proxystack._yaml`, the schema's checks in :mod:`scrapy_proxystack._schema`. None of
them imports anything from Scrapy, so that they can be reused by tools and tested quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy_proxystack._yaml import YamlRefused, read_yaml

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence

__all__ = [
    "ANONYMITY_GRADES",
    "STRATEGIES",
    "ConfigError",
    "DomainRule",
    "LocaleConfig",
    "PoolConfig",
    "ProxyConfig",
    "ProxyEntry",
    "load_proxy_config",
    "parse_proxy_config",
]

#: Exit-choice strategies accepted by ``PROXYSTACK_STRATEGY`` and ``locales.<name>.strategy``.
STRATEGIES = ("latency", "round_robin", "least_connections", "weighted", "random")
#: Proxy anonymity grades, weakest first (see the ``check`` command).
ANONYMITY_GRADES = ("transparent", "anonymous", "elite")

DEFAULT_POOL = "default"


class ConfigError(ValueError):
    """A proxy configuration (or a setting) is invalid. The message lists every problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems in the proxy configuration:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(message)


@dataclass(frozen=True)
class ProxyEntry:
    """One exit: a proxy URL as configured. Its identity is the whole entry, user name included.

    ``url`` carries the credentials and must only ever be handed to Scrapy's
    ``HttpProxyMiddleware`` (through ``meta["proxy"]``); everything that is printed uses ``id``.
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
    def redacted(self) -> str:
        """``scheme://host:port``: safe to print (built from the parsed fields, not the URL)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def has_credentials(self) -> bool:
        return self.username is not None


@dataclass(frozen=True)
class PoolConfig:
    """A named group of proxies inside one locale (a vendor, say), with its share of traffic."""

    name: str
    weight: float
    proxies: tuple[ProxyEntry, ...]


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


def load_proxy_config(
    path: str | os.PathLike[str] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    extra_unlocalized: Sequence[str] = (),
    extra_source: str = "ROTATING_PROXY_LIST",
    auth_encoding: str = "latin-1",
) -> ProxyConfig:
    """Read the YAML file at ``path`` and/or the ``data`` dict, validate, and return the config.

    ``extra_unlocalized`` are proxy URLs that belong to no locale (the scrapy-rotating-proxies
    list of a project that is migrating). ``auth_encoding`` is the crawl's
    ``HTTPPROXY_AUTH_ENCODING`` (Scrapy's default is latin-1): credentials it cannot encode are
    refused here rather than failing on every request sent through that exit.
    """
    if path is not None and data is not None:
        raise ConfigError(
            [
                "PROXYSTACK_PROXIES_FILE and PROXYSTACK_PROXIES are both set; "
                "expected one source of proxies (remove one of the two settings)"
            ]
        )
    if path is not None:
        source = str(path)
        resolved = Path(path).expanduser()
        try:
            text = resolved.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                [
                    f"{source}: file not found (looked at {resolved.resolve()}); "
                    "expected a YAML proxy file (check PROXYSTACK_PROXIES_FILE)"
                ]
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{source}: cannot be read: {exc}"]) from None
        try:
            loaded = read_yaml(text, source)
        except YamlRefused as exc:
            raise ConfigError(exc.problems) from None
        if loaded is None:
            loaded = {}
    elif data is not None:
        source = "PROXYSTACK_PROXIES"
        loaded = data
    else:
        source = extra_source
        loaded = {}
    return parse_proxy_config(
        loaded,
        source=source,
        extra_unlocalized=extra_unlocalized,
        extra_source=extra_source,
        auth_encoding=auth_encoding,
    )


def parse_proxy_config(
    data: Any,
    *,
    source: str = "PROXYSTACK_PROXIES",
    extra_unlocalized: Sequence[str] = (),
    extra_source: str = "ROTATING_PROXY_LIST",
    auth_encoding: str = "latin-1",
) -> ProxyConfig:
    """Validate an already-loaded mapping (see :func:`load_proxy_config`)."""
    # Imported here: the checks build this module's types, so they import it in turn.
    from scrapy_proxystack._schema import parse

    return parse(
        data,
        source=source,
        extra_unlocalized=extra_unlocalized,
        extra_source=extra_source,
        auth_encoding=auth_encoding,
    )
