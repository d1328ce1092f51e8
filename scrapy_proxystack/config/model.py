"""The proxy configuration's frozen types: what the YAML (or ``PROXYSTACK_PROXIES``) yields.

Plain module (no Scrapy import); built by :mod:`scrapy_proxystack.config.schema`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import TYPE_CHECKING, overload
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ANONYMITY_GRADES",
    "SOCKS_SCHEMES",
    "STRATEGIES",
    "CanaryConfig",
    "ConfigError",
    "DomainRule",
    "ExitTable",
    "LocaleConfig",
    "PoolConfig",
    "ProxyConfig",
    "ProxyEntry",
    "ProxyList",
    "split_proxy_url",
]

#: Exit-choice strategies accepted by ``PROXYSTACK_STRATEGY`` and ``locales.<name>.strategy``.
STRATEGIES = ("latency", "round_robin", "least_connections", "weighted", "random")
#: Proxy anonymity grades, weakest first (see the ``check`` command).
ANONYMITY_GRADES = ("transparent", "anonymous", "elite")

DEFAULT_POOL = "default"
#: Proxy schemes downloaded through the SOCKS handler. Both let the exit resolve names.
SOCKS_SCHEMES = frozenset({"socks5", "socks5h"})
#: Accepted proxy schemes and the port each implies when the URL names none.
DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


#: The usual proxy URL, split by one match: a lower-case scheme and host, user-info without
#: ``%``, ``:`` or ``@`` in either part. Whatever it does not match is split by urllib, which
#: gives the same parts for what it matches, only slower.
PLAIN_URL = re.compile(
    r"(https?|socks5h?)://"
    r"(?:([A-Za-z0-9._~!$&'()*+,;=-]*)(?::([A-Za-z0-9._~!$&'()*+,;=-]*))?@)?"
    r"([a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?)(?::([0-9]{1,5}))?/?"
).fullmatch


def split_proxy_url(url: str) -> tuple[str, str, int, str | None]:
    """(scheme, host, port, user name) of a proxy URL the schema accepted.

    The one definition of what an entry's parts are: the schema builds ids and finds duplicates
    from them, and :class:`ExitTable` rebuilds an entry from its URL alone with it.
    """
    match = PLAIN_URL(url)
    if match is not None:
        scheme, user, _password, host, port = match.groups()
        return scheme, host, int(port) if port is not None else DEFAULT_PORTS[scheme], user
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port
    username = parts.username
    return (
        scheme,
        (parts.hostname or "").lower(),
        port if port is not None else DEFAULT_PORTS[scheme],
        unquote(username) if username is not None else None,
    )


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


@dataclass(frozen=True, slots=True)
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


def _shown_ids(ids: list[str], start: int, stop: int) -> str:
    """``3 exits: a, b, c`` for a repr: ids only (never URLs, which hold passwords), the first
    few of a long list."""
    shown = ", ".join(ids[start : min(stop, start + 5)])
    more = ", ..." if stop - start > 5 else ""
    return f"{stop - start} exits: {shown}{more}" if stop > start else "0 exits"


class ExitTable(Sequence[ProxyEntry]):
    """Every exit of a configuration, stored as columns: what a million exits cost.

    A :class:`ProxyEntry` per exit costs about 400 bytes and a microsecond to build; a gateway
    vendor's list holds a million of them. The table keeps two strings per exit (the URL, with
    its credentials, for the proxy header; the id) and a weight only when one differs from 1.
    Locale and pool are kept per run of consecutive exits, and an entry is rebuilt from its URL
    when asked for (:func:`split_proxy_url`), which the pool does only for exits it chooses.

    Exits are in configuration order: each locale's pools in turn, then the unlocalized ones.
    The ``repr`` shows counts only: the URLs hold passwords.
    """

    __slots__ = ("_locales", "_pools", "_socks", "_starts", "ids", "urls", "weights")

    def __init__(
        self,
        urls: list[str],
        ids: list[str],
        weights: list[float] | None,
        runs: Sequence[tuple[int, str | None, str]],
        *,
        socks: bool | None = None,
    ) -> None:
        """``runs``: (first index, locale, pool) of each run of exits, by first index.
        ``socks``: whether any exit is a SOCKS proxy, when the caller knows (else looked up)."""
        if len(ids) != len(urls) or (weights is not None and len(weights) != len(urls)):
            raise ValueError("ExitTable columns must have one value per exit")
        #: The proxy URLs, credentials included: only ever handed to the downloader.
        self.urls = urls
        self.ids = ids
        #: ``None`` when every weight is 1.
        self.weights = weights
        self._starts = [start for start, _locale, _pool in runs]
        self._locales = [locale for _start, locale, _pool in runs]
        self._pools = [pool for _start, _locale, pool in runs]
        self._socks = socks

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def has_socks(self) -> bool:
        """Whether any exit is a SOCKS proxy."""
        if self._socks is None:
            self._socks = any(url[:5].lower() == "socks" for url in self.urls)
        return self._socks

    @overload
    def __getitem__(self, index: int) -> ProxyEntry: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ProxyEntry, ...]: ...

    def __getitem__(self, index: int | slice) -> ProxyEntry | tuple[ProxyEntry, ...]:
        if isinstance(index, slice):
            return tuple(self.entry(i) for i in range(*index.indices(len(self.urls))))
        if index < 0:
            index += len(self.urls)
        if not 0 <= index < len(self.urls):
            raise IndexError("exit index out of range")
        return self.entry(index)

    def __iter__(self) -> Iterator[ProxyEntry]:
        return (self.entry(i) for i in range(len(self.urls)))

    def __repr__(self) -> str:
        return f"<ExitTable of {_shown_ids(self.ids, 0, len(self.ids))}>"

    def entry(self, i: int) -> ProxyEntry:
        """Exit ``i`` as a :class:`ProxyEntry` (built on each call: callers keep what they need)."""
        url = self.urls[i]
        scheme, host, port, username = split_proxy_url(url)
        run = bisect_right(self._starts, i) - 1
        return ProxyEntry(
            id=self.ids[i],
            url=url,
            scheme=scheme,
            host=host,
            port=port,
            username=username,
            locale=self._locales[run],
            pool=self._pools[run],
            weight=1.0 if self.weights is None else self.weights[i],
        )

    @classmethod
    def of(cls, entries: Sequence[ProxyEntry]) -> ExitTable:
        """A table holding ``entries`` (for a configuration assembled by hand)."""
        runs: list[tuple[int, str | None, str]] = []
        for k, entry in enumerate(entries):
            if not runs or runs[-1][1:] != (entry.locale, entry.pool):
                runs.append((k, entry.locale, entry.pool))
        weights = [e.weight for e in entries]
        return cls(
            [e.url for e in entries],
            [e.id for e in entries],
            None if all(w == 1.0 for w in weights) else weights,
            runs,
        )

    def view(self, start: int, stop: int) -> ProxyList:
        return ProxyList(self, start, stop)


class ProxyList(Sequence[ProxyEntry]):
    """A slice of an :class:`ExitTable` (one pool's or one locale's exits), without copies.

    Compares equal to any sequence of the same entries, so tests and callers may treat it as the
    tuple it replaced.
    """

    __slots__ = ("start", "stop", "table")

    def __init__(self, table: ExitTable, start: int, stop: int) -> None:
        self.table = table
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> ProxyEntry: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ProxyEntry, ...]: ...

    def __getitem__(self, index: int | slice) -> ProxyEntry | tuple[ProxyEntry, ...]:
        size = self.stop - self.start
        if isinstance(index, slice):
            return tuple(self.table.entry(self.start + i) for i in range(*index.indices(size)))
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("exit index out of range")
        return self.table.entry(self.start + index)

    def __iter__(self) -> Iterator[ProxyEntry]:
        return (self.table.entry(i) for i in range(self.start, self.stop))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        # Equal to the tuple of its entries, so hashed as that tuple (configs stay hashable).
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<ProxyList of {_shown_ids(self.table.ids, self.start, self.stop)}>"

    @property
    def ids(self) -> list[str]:
        return self.table.ids[self.start : self.stop]


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
    proxies: Sequence[ProxyEntry]
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
    def proxies(self) -> Sequence[ProxyEntry]:
        """The locale's exits, pool after pool (one slice of the table when built from a file)."""
        views = [pool.proxies for pool in self.pools]
        if views and all(isinstance(v, ProxyList) for v in views):
            lists: list[ProxyList] = views  # type: ignore[assignment]
            table = lists[0].table
            if all(v.table is table and v.start == prev.stop for prev, v in pairwise(lists)):
                return ProxyList(table, lists[0].start, lists[-1].stop)
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
    unlocalized: Sequence[ProxyEntry] = ()
    #: Every exit as columns, when the schema built the config (see :class:`ExitTable`).
    table: ExitTable | None = field(default=None, repr=False, compare=False)

    @cached_property
    def all_proxies(self) -> Sequence[ProxyEntry]:
        """Every exit, each once: the pool used by requests that resolve to no locale."""
        if self.table is not None:
            return self.table
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
