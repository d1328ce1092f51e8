"""The proxy configuration: the YAML schema, its validation, and the frozen objects it yields.

The YAML file (``PROXYSTACK_PROXIES_FILE``) or the equivalent dict (``PROXYSTACK_PROXIES``) is
read once, at start-up, before any request. Every problem found is reported at once, each line
naming the file, the key path (``locales.fr.proxies[2]``), the offending value with credentials
redacted, and what was expected, because a crawl that starts on a broken proxy list burns hours
of proxy budget before anyone notices.

This module imports nothing from Scrapy so that it can be reused by tools and tested quickly.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

import yaml

from scrapy_proxystack.redact import redact_text, redact_url

if TYPE_CHECKING:
    import os

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

_SCHEMES = {"http": 80, "https": 443}
_UNSUPPORTED_SCHEMES = {"socks4", "socks4a", "socks5", "socks5h", "socks"}
_TOP_KEYS = ("locales", "domains", "default_locale")
_LOCALE_KEYS = ("proxies", "pools", "fallback", "strategy", "accept_language", "min_anonymity")
_POOL_KEYS = ("proxies", "weight")
_PROXY_KEYS = ("url", "weight")
_DOMAIN_KEYS = ("locale", "rate", "burst", "exit_delay", "lang", "bans")
_LANG_TAG_RE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_BAN_RULE_KEYS = ("status", "content_status", "body_patterns", "url_patterns", "min_body_size")
DEFAULT_POOL = "default"
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        """``scheme://host:port``: safe to print."""
        return redact_url(self.url)

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
        """``locale`` followed by its fallbacks, depth first, each locale once."""
        chain: list[str] = []

        def visit(name: str) -> None:
            if name in chain or name not in self.locales:
                return
            chain.append(name)
            for nxt in self.locales[name].fallback:
                visit(nxt)

        visit(locale)
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
) -> ProxyConfig:
    """Read the YAML file at ``path`` and/or the ``data`` dict, validate, and return the config.

    ``extra_unlocalized`` are proxy URLs that belong to no locale (the scrapy-rotating-proxies
    list of a project that is migrating).
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
            # The C loader when present (100,000 proxies load in a second); safe either way.
            loaded = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
            problem = redact_text(str(exc.problem or exc.context or "syntax error"))
            raise ConfigError(
                [f"{source}: YAML syntax error at {where}: {problem}; expected valid YAML"]
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError([f"{source}: YAML error: {redact_text(str(exc))}"]) from None
        if loaded is None:
            loaded = {}
    elif data is not None:
        source = "PROXYSTACK_PROXIES"
        loaded = data
    else:
        source = extra_source
        loaded = {}
    return parse_proxy_config(
        loaded, source=source, extra_unlocalized=extra_unlocalized, extra_source=extra_source
    )


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(redact_text(value))
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _unknown_keys(
    problems: list[str], source: str, path: str, mapping: Mapping[Any, Any], allowed: Sequence[str]
) -> None:
    for key in mapping:
        if key in allowed:
            continue
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        where = f"{path}.{key}" if path else str(key)
        problems.append(
            f"{source}: {where}: unknown key{suggestion}; expected one of {', '.join(allowed)}"
        )


class _Redacted:
    """A URL that prints redacted, computed lazily: 100,000 valid proxies never need it."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return repr(redact_text(self.url))


class _RawEntry(NamedTuple):
    url: str
    scheme: str
    host: str
    port: int
    username: str | None
    locale: str | None
    pool: str
    weight: float


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.seen: dict[tuple[str, str, int, str | None], str] = {}
        self.entries: list[_RawEntry] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path}: {message}")

    def number(
        self, path: str, value: Any, *, minimum: float = 0.0, strict: bool = True
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            self.error(path, f"{_describe(value)} is not a number; expected a number")
            return None
        if (value <= minimum) if strict else (value < minimum):
            relation = ">" if strict else ">="
            self.error(path, f"{value!r} is out of range; expected a number {relation} {minimum}")
            return None
        return float(value)

    def proxy(self, path: str, raw: Any, locale: str | None, pool: str) -> None:
        weight = 1.0
        if isinstance(raw, Mapping):
            _unknown_keys(self.problems, self.source, path, raw, _PROXY_KEYS)
            if "url" not in raw:
                self.error(path, "missing key 'url'; expected {url: http://host:port, weight: 1}")
                return
            if "weight" in raw:
                parsed = self.number(f"{path}.weight", raw["weight"])
                if parsed is None:
                    return
                weight = parsed
            raw = raw["url"]
        if not isinstance(raw, str):
            self.error(path, f"{_describe(raw)} is not a proxy URL; expected http://host:port")
            return
        url = raw.strip()
        shown = _Redacted(url)  # formatted only if there is a problem to report
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            self.error(path, f"{shown!r} is not a valid URL ({exc}); expected http://host:port")
            return
        scheme = parts.scheme.lower()
        if scheme in _UNSUPPORTED_SCHEMES:
            self.error(
                path,
                f"{shown!r} uses {scheme}://, which Scrapy cannot use as a proxy; "
                "expected an http:// or https:// proxy (most vendors offer an HTTP endpoint)",
            )
            return
        if scheme not in _SCHEMES:
            self.error(
                path,
                f"{shown!r} has no supported scheme; expected http://host:port or https://host:port",
            )
            return
        if not host:
            self.error(path, f"{shown!r} has no host; expected http://host:port")
            return
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            self.error(path, f"{shown!r} has a path or query; expected only scheme://host:port")
            return
        port = port if port is not None else _SCHEMES[scheme]
        username = unquote(parts.username) if parts.username is not None else None
        key = (scheme, host.lower(), port, username)
        if key in self.seen:
            self.error(
                path,
                f"{shown!r} duplicates {self.seen[key]}; expected each proxy once "
                "(the same URL in two places would be two votes for one exit)",
            )
            return
        self.seen[key] = path
        self.entries.append(
            _RawEntry(url, scheme, host.lower(), port, username, locale, pool, weight)
        )

    def proxy_list(self, path: str, raw: Any, locale: str | None, pool: str) -> None:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            self.error(path, f"{_describe(raw)} is not a list; expected a list of proxy URLs")
            return
        if not raw:
            self.error(path, "is empty; expected at least one proxy URL")
            return
        for i, item in enumerate(raw):
            self.proxy(f"{path}[{i}]", item, locale, pool)


def parse_proxy_config(
    data: Any,
    *,
    source: str = "PROXYSTACK_PROXIES",
    extra_unlocalized: Sequence[str] = (),
    extra_source: str = "ROTATING_PROXY_LIST",
) -> ProxyConfig:
    """Validate an already-loaded mapping (see :func:`load_proxy_config`)."""
    p = _Parser(source)
    problems = p.problems
    if not isinstance(data, Mapping):
        raise ConfigError(
            [f"{source}: the top level is {_describe(data)}; expected a mapping with 'locales'"]
        )
    _unknown_keys(problems, source, "", data, _TOP_KEYS)

    raw_locales = data.get("locales", {})
    if raw_locales is None:
        raw_locales = {}
    if not isinstance(raw_locales, Mapping):
        p.error("locales", f"{_describe(raw_locales)}; expected a mapping of locale name to pool")
        raw_locales = {}

    # First pass: proxies, pool shapes and scalar options.
    locale_meta: dict[str, dict[str, Any]] = {}
    pool_weights: dict[tuple[str, str], float] = {}
    for name, raw in raw_locales.items():
        path = f"locales.{name}"
        if not isinstance(name, str) or not name:
            p.error(path, "locale names must be non-empty strings")
            continue
        if isinstance(raw, list):  # shorthand: `fr: [url, url]`
            raw = {"proxies": raw}
        if not isinstance(raw, Mapping):
            p.error(path, f"{_describe(raw)}; expected a mapping with 'proxies'")
            continue
        _unknown_keys(problems, source, path, raw, _LOCALE_KEYS)
        meta: dict[str, Any] = {"fallback": (), "strategy": None, "accept_language": None}
        meta["min_anonymity"] = None
        if "proxies" not in raw and "pools" not in raw:
            p.error(path, "has no proxies; expected 'proxies: [...]' or 'pools: {...}'")
        if "proxies" in raw:
            p.proxy_list(f"{path}.proxies", raw["proxies"], name, DEFAULT_POOL)
            pool_weights[(name, DEFAULT_POOL)] = 1.0
        if "pools" in raw:
            pools = raw["pools"]
            if not isinstance(pools, Mapping) or not pools:
                p.error(
                    f"{path}.pools",
                    f"{_describe(pools)}; expected a mapping of pool name to "
                    "{weight: 95, proxies: [...]}",
                )
            else:
                for pool_name, pool_raw in pools.items():
                    ppath = f"{path}.pools.{pool_name}"
                    if not isinstance(pool_raw, Mapping):
                        p.error(ppath, f"{_describe(pool_raw)}; expected {{weight, proxies}}")
                        continue
                    if str(pool_name) == DEFAULT_POOL and "proxies" in raw:
                        p.error(ppath, "clashes with the locale's own 'proxies' list")
                        continue
                    _unknown_keys(problems, source, ppath, pool_raw, _POOL_KEYS)
                    weight = 1.0
                    if "weight" in pool_raw:
                        parsed = p.number(f"{ppath}.weight", pool_raw["weight"])
                        weight = parsed if parsed is not None else 1.0
                    if "proxies" not in pool_raw:
                        p.error(ppath, "missing key 'proxies'; expected a list of proxy URLs")
                        continue
                    p.proxy_list(f"{ppath}.proxies", pool_raw["proxies"], name, str(pool_name))
                    pool_weights[(name, str(pool_name))] = weight
        if "fallback" in raw:
            fb = raw["fallback"]
            if isinstance(fb, str):
                fb = [fb]
            if not isinstance(fb, list) or not all(isinstance(x, str) for x in fb):
                p.error(f"{path}.fallback", f"{_describe(fb)}; expected a list of locale names")
            else:
                meta["fallback"] = tuple(fb)
        if "strategy" in raw:
            strategy = raw["strategy"]
            if strategy not in STRATEGIES:
                hint = difflib.get_close_matches(str(strategy), STRATEGIES, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                p.error(
                    f"{path}.strategy",
                    f"{_describe(strategy)} is not a strategy{suggestion}; "
                    f"expected one of {', '.join(STRATEGIES)}",
                )
            else:
                meta["strategy"] = strategy
        if "accept_language" in raw:
            al = raw["accept_language"]
            if not isinstance(al, str) or not al.strip():
                p.error(f"{path}.accept_language", f"{_describe(al)}; expected a header value")
            else:
                meta["accept_language"] = al.strip()
        if "min_anonymity" in raw:
            grade = raw["min_anonymity"]
            if grade not in ANONYMITY_GRADES:
                p.error(
                    f"{path}.min_anonymity",
                    f"{_describe(grade)}; expected one of {', '.join(ANONYMITY_GRADES)}",
                )
            else:
                meta["min_anonymity"] = grade
        locale_meta[name] = meta

    for name, meta in locale_meta.items():
        for i, target in enumerate(meta["fallback"]):
            if target not in locale_meta and target not in raw_locales:
                hint = difflib.get_close_matches(target, list(raw_locales), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                p.error(
                    f"locales.{name}.fallback[{i}]",
                    f"{target!r} is not a configured locale{suggestion}; "
                    f"expected one of {', '.join(sorted(map(str, raw_locales)))}",
                )
            elif target == name:
                p.error(f"locales.{name}.fallback[{i}]", "a locale cannot fall back to itself")
    _check_cycles(p, locale_meta)

    # Unlocalized proxies (migration from scrapy-rotating-proxies).
    saved_source = p.source
    p.source = extra_source
    for i, url in enumerate(extra_unlocalized):
        p.proxy(f"[{i}]", url, None, DEFAULT_POOL)
    p.source = saved_source

    domains: dict[str, DomainRule] = {}
    raw_domains = data.get("domains", {}) or {}
    if not isinstance(raw_domains, Mapping):
        p.error("domains", f"{_describe(raw_domains)}; expected a mapping of host to locale")
        raw_domains = {}
    for host, raw in raw_domains.items():
        rule = _parse_domain(p, str(host), raw, raw_locales)
        if rule is not None:
            domains[rule.pattern] = rule

    default_locale = data.get("default_locale")
    if default_locale is not None and default_locale not in raw_locales:
        hint = difflib.get_close_matches(str(default_locale), list(raw_locales), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        p.error(
            "default_locale",
            f"{_describe(default_locale)} is not a configured locale{suggestion}; "
            f"expected one of {', '.join(sorted(map(str, raw_locales))) or '(no locales)'}",
        )
        default_locale = None

    if problems:
        raise ConfigError(problems)

    # Build the frozen objects, with ids that are stable for a given config and safe to print.
    hostports: dict[tuple[str, int], int] = {}
    for raw_entry in p.entries:
        hp = (raw_entry.host, raw_entry.port)
        hostports[hp] = hostports.get(hp, 0) + 1
    ordinal: dict[tuple[str, int], int] = {}
    built: dict[tuple[str | None, str], list[ProxyEntry]] = {}
    for url, scheme, host, port, username, locale, pool, weight in p.entries:
        shown_host = f"[{host}]" if ":" in host else host
        entry_id = f"{shown_host}:{port}"
        if hostports[(host, port)] > 1:
            ordinal[(host, port)] = ordinal.get((host, port), 0) + 1
            entry_id = f"{entry_id}#{ordinal[(host, port)]}"
        entry = ProxyEntry(
            id=entry_id,
            url=url,
            scheme=scheme,
            host=host,
            port=port,
            username=username,
            locale=locale,
            pool=pool,
            weight=weight,
        )
        built.setdefault((locale, pool), []).append(entry)

    locales: dict[str, LocaleConfig] = {}
    for name, meta in locale_meta.items():
        pools = tuple(
            PoolConfig(name=pool, weight=weight, proxies=tuple(built.get((name, pool), ())))
            for (loc, pool), weight in pool_weights.items()
            if loc == name
        )
        locales[name] = LocaleConfig(
            name=name,
            pools=pools,
            fallback=meta["fallback"],
            strategy=meta["strategy"],
            accept_language=meta["accept_language"],
            min_anonymity=meta["min_anonymity"],
        )
    return ProxyConfig(
        source=source,
        locales=locales,
        domains=domains,
        default_locale=default_locale,
        unlocalized=tuple(built.get((None, DEFAULT_POOL), ())),
    )


def _check_cycles(p: _Parser, locale_meta: Mapping[str, Mapping[str, Any]]) -> None:
    reported: set[frozenset[str]] = set()
    for start in locale_meta:
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        while stack:
            node, trail = stack.pop()
            for nxt in locale_meta.get(node, {}).get("fallback", ()):
                if nxt == start and len(trail) > 1:
                    cycle = frozenset(trail)
                    if cycle not in reported:
                        reported.add(cycle)
                        p.error(
                            f"locales.{start}.fallback",
                            f"fallback cycle {' -> '.join((*trail, start))}; "
                            "expected chains that end (e.g. fr-CA -> fr -> eu)",
                        )
                elif nxt not in trail and nxt in locale_meta:
                    stack.append((nxt, (*trail, nxt)))


def _parse_domain(
    p: _Parser, host: str, raw: Any, raw_locales: Mapping[str, Any]
) -> DomainRule | None:
    path = f"domains.{host}"
    pattern = host.lower().rstrip(".")
    body = pattern[2:] if pattern.startswith("*.") else pattern
    if not body or "*" in body or "/" in body or ":" in body:
        p.error(path, f"{host!r} is not a host pattern; expected 'example.com' or '*.example.com'")
        return None
    if isinstance(raw, str) or raw is None:
        raw = {"locale": raw}
    if not isinstance(raw, Mapping):
        p.error(path, f"{_describe(raw)}; expected a locale name or {{locale: ..., rate: ...}}")
        return None
    _unknown_keys(p.problems, p.source, path, raw, _DOMAIN_KEYS)
    locale = raw.get("locale")
    if locale is not None and locale not in raw_locales:
        hint = difflib.get_close_matches(str(locale), list(map(str, raw_locales)), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        p.error(
            f"{path}.locale" if len(raw) > 1 else path,
            f"{_describe(locale)} is not a configured locale{suggestion}; "
            f"expected one of {', '.join(sorted(map(str, raw_locales))) or '(no locales)'}",
        )
        return None
    rate = p.number(f"{path}.rate", raw["rate"]) if "rate" in raw else None
    burst_raw = raw.get("burst")
    burst: int | None = None
    if burst_raw is not None:
        if isinstance(burst_raw, bool) or not isinstance(burst_raw, int) or burst_raw < 1:
            p.error(f"{path}.burst", f"{_describe(burst_raw)}; expected a whole number >= 1")
        else:
            burst = burst_raw
    exit_delay = (
        p.number(f"{path}.exit_delay", raw["exit_delay"], strict=False)
        if "exit_delay" in raw
        else None
    )
    bans = _parse_ban_rules(p, f"{path}.bans", raw.get("bans"))
    lang = _parse_lang(p, f"{path}.lang", raw.get("lang"))
    return DomainRule(
        pattern=pattern,
        locale=locale,
        rate=rate,
        burst=burst,
        exit_delay=exit_delay,
        bans=bans,
        lang=lang,
    )


def _parse_lang(p: _Parser, path: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    tags = [raw] if isinstance(raw, str) else raw
    if not isinstance(tags, list) or not tags:
        p.error(path, f"{_describe(raw)}; expected a language tag or a list of them (fr, [de, fr])")
        return ()
    out: list[str] = []
    for k, tag in enumerate(tags):
        if not isinstance(tag, str) or not _LANG_TAG_RE.fullmatch(tag):
            where = path if isinstance(raw, str) else f"{path}[{k}]"
            p.error(where, f"{_describe(tag)}; expected a language tag such as 'fr' or 'pt-BR'")
        else:
            out.append(tag)
    return tuple(out)


def _parse_ban_rules(p: _Parser, path: str, raw: Any) -> BanRules:
    if raw is None:
        return BanRules()
    if not isinstance(raw, Mapping):
        p.error(path, f"{_describe(raw)}; expected a mapping of ban rules")
        return BanRules()
    _unknown_keys(p.problems, p.source, path, raw, _BAN_RULE_KEYS)

    def codes(key: str) -> tuple[int, ...]:
        value = raw.get(key, [])
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in value
        ):
            p.error(f"{path}.{key}", f"{_describe(value)}; expected a list of HTTP status codes")
            return ()
        return tuple(value)

    def patterns(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            p.error(f"{path}.{key}", f"{_describe(value)}; expected a list of regular expressions")
            return ()
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                p.error(f"{path}.{key}[{i}]", f"{pattern!r} is not a valid regex ({exc})")
                return ()
        return tuple(value)

    min_size = raw.get("min_body_size")
    if min_size is not None and (
        isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0
    ):
        p.error(f"{path}.min_body_size", f"{_describe(min_size)}; expected a whole number >= 0")
        min_size = None
    return BanRules(
        status=codes("status"),
        content_status=codes("content_status"),
        body_patterns=patterns("body_patterns"),
        url_patterns=patterns("url_patterns"),
        min_body_size=min_size,
    )
