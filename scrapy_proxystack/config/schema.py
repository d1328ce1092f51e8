"""Validating the proxy configuration against its schema, and building the frozen config.

One pass over the loaded document (the YAML file, the ``PROXYSTACK_PROXIES`` dict, the legacy
list): every problem is collected with its key path and reported at once. The types it builds
live in :mod:`scrapy_proxystack.config.model`.

The work is linear in the document as written, whatever its shape: fallback cycles are found by
one depth-first search, a container met twice (a YAML alias) is refused where it makes no sense
or parsed once, values are quoted masked and shortened, and "did you mean" hints are bounded.
Proxy URLs are judged on the parsed entry; urllib's own error texts, which quote passwords,
never reach a message. This module stays whole (it is longer than most) because the checks of
one key, its message and the value it builds belong together; the data types are elsewhere.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import ipaddress
import math
import os
import re
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import SplitResult, quote, unquote, urlsplit

from scrapy_proxystack.config.model import (
    ANONYMITY_GRADES,
    DEFAULT_POOL,
    DEFAULT_PORTS,
    PLAIN_URL,
    SOCKS_SCHEMES,
    STRATEGIES,
    BanRules,
    CanaryConfig,
    ConfigError,
    DomainRule,
    ExitTable,
    LocaleConfig,
    PoolConfig,
    ProxyConfig,
    split_proxy_url,
)
from scrapy_proxystack.redact import mask_credentials, shorten

__all__ = ["parse"]

_SCHEMES = DEFAULT_PORTS
_UNSUPPORTED_SCHEMES = {"socks4", "socks4a", "socks"}
#: RFC 1929: a SOCKS5 user name or password is at most 255 bytes.
_SOCKS_MAX_CREDENTIAL = 255
_TOP_KEYS = ("locales", "domains", "default_locale")
_LOCALE_KEYS = (
    "proxies",
    "proxies_file",
    "pools",
    "fallback",
    "strategy",
    "accept_language",
    "min_anonymity",
)
_POOL_KEYS = ("proxies", "proxies_file", "weight", "canary")
_CANARY_KEYS = ("baseline", "alpha", "margin", "latency_margin", "steps", "promote_after")
#: Largest ``margin`` / ``latency_margin`` (10 = "up to eleven times worse is tolerated") and
#: ``promote_after``; ``alpha`` is a probability below one half.
_MAX_MARGIN = 10.0
_MAX_ALPHA = 0.5
_MAX_PROMOTE_AFTER = 10**9
_PROXY_KEYS = ("url", "weight", "id")
_DOMAIN_KEYS = ("locale", "rate", "burst", "exit_delay", "lang", "bans")
_LANG_TAG_RE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_BAN_RULE_KEYS = ("status", "content_status", "body_patterns", "url_patterns", "min_body_size")
#: Longest text handed to difflib for a "did you mean" hint (messages are capped by shorten).
_MAX_SHOWN = 80
#: How many names an "expected one of ..." lists before summarising.
_MAX_LISTED = 20
#: A ``fallback`` (or ``lang``) list this short may be shared by many locales (sites): a YAML
#: alias, or one Python list in ``PROXYSTACK_PROXIES``. A longer one may be used once, so that an
#: alias cannot multiply the fallback graph (and the work of checking it) beyond the file's size.
_MAX_SHARED_LIST = 16
#: How many fallback cycles are spelled out; more are counted.
_MAX_CYCLES = 10
#: Largest ``weight`` (a share, not a count: ``95`` and ``5`` are typical) and ``burst``.
_MAX_WEIGHT = 1e9
_MAX_BURST = 1_000_000
#: The largest number a float holds: beyond it a number is infinite or float() fails.
_LARGEST_FLOAT = sys.float_info.max
#: A host name: letters, digits, ``-``, ``_`` and dots (international names in punycode).
_HOST_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
_HOST_MATCH = _HOST_RE.fullmatch
#: The usual proxy URL, checked by one match (see PLAIN_URL); whatever it does not match takes
#: the full check, which accepts the same URLs with the same parts, only slower.
_PLAIN_URL = PLAIN_URL
#: A proxy list line in a vendor's ``host:port:user:password`` form (no scheme, no ``@``).
_VENDOR_LINE = re.compile(r"([A-Za-z0-9_.-]+):([0-9]{1,5}):([^:@/\s]+):(\S+)").fullmatch
#: Characters a user name or password keeps as they are when put in a URL.
_SAFE = "!$&'()*+,;=-._~"
#: Problems listed per list of proxies; more are counted in one line (a wrong-format file of a
#: million lines must not make a million messages).
_MAX_LIST_PROBLEMS = 50
#: Duplicates named with the place of the entry they repeat; past this, "an earlier entry"
#: (finding the first costs a scan of the list).
_MAX_PLACED_DUPLICATES = 50
#: Characters that end the user-info of a URL early: a password holding them unencoded is
#: split by every URL parser (and by Scrapy's), so it is refused with a hint instead.
_RESERVED_IN_USERINFO = frozenset("/?#")


def _shown_str(value: str) -> str:
    """A configured string as a message shows it: credentials masked first, then capped.

    Masking works on the whole value (see :func:`mask_credentials`), so neither a space nor a quote
    inside a password, nor the cut, can leave part of it visible.
    """
    return repr(shorten(mask_credentials(value)))


def _shown_key(key: Any) -> str:
    """A mapping key inside a key path: strings as written, other scalars by their repr."""
    if isinstance(key, str):
        return shorten(mask_credentials(key))
    if isinstance(key, bool | int | float) or key is None:
        text = repr(key) if not isinstance(key, int) or abs(key) < 10**40 else "a huge number"
        return shorten(text)
    return f"a {type(key).__name__}"


def _describe(value: Any) -> str:
    """A value as a message shows it, without ever walking a container (it may be an alias)."""
    if isinstance(value, str):
        return _shown_str(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool | float) or value is None:
        return repr(value)
    if isinstance(value, int):
        # (str() of an int past 4,300 digits raises: its size is estimated from its bits.)
        return repr(value) if abs(value) < 10**40 else f"a number of {value.bit_length()} bits"
    return f"a value of type {type(value).__name__}"


def _one_of(names: Any) -> str:
    """``a, b, c`` for an "expected one of" list, summarised past :data:`_MAX_LISTED` names."""
    shown = sorted(_shown_key(n) for n in names)
    if not shown:
        return "(no locales)"
    if len(shown) > _MAX_LISTED:
        return f"{', '.join(shown[:_MAX_LISTED])}, ... ({len(shown)} in all)"
    return ", ".join(shown)


def _hint(value: Any, choices: Any) -> str:
    """`` (did you mean 'x'?)`` for a short string close to one of ``choices``, else ``""``."""
    # difflib compares with every choice: past a thousand, a typo hint is not worth the time.
    if not isinstance(value, str) or len(value) > _MAX_SHOWN or len(choices) > 1000:
        return ""
    names = [c for c in choices if isinstance(c, str)]
    hint = difflib.get_close_matches(value, names, n=1)
    return f" (did you mean {_shown_key(hint[0])!r}?)" if hint else ""


def _unknown_keys(
    problems: list[str], source: str, path: str, mapping: Mapping[Any, Any], allowed: Sequence[str]
) -> None:
    for key in mapping:
        if key in allowed:
            continue
        suggestion = _hint(key, allowed)
        where = f"{path}.{_shown_key(key)}" if path else _shown_key(key)
        problems.append(
            f"{source}: {where}: unknown key{suggestion}; expected one of {', '.join(allowed)}"
        )


class _Run(NamedTuple):
    """Consecutive exits read from one list: a YAML ``proxies`` list or a ``proxies_file``."""

    start: int  # index of its first exit in the parser's columns
    locale: str | None
    pool: str
    source: str  # the file the messages name
    path: str  # the key path of the list
    lines: bool  # a proxies_file: places are line numbers
    #: Each exit's place in the list (its index) or in the file (its line number).
    places: array[int]


#: An exit id given in the YAML: printable, short, and nothing that reads as a credential.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~+-]{0,63}")


def exit_id(scheme: str, host: str, port: int, username: str | None) -> str:
    """The id of an exit that has none in the YAML: stable whatever else the file holds.

    ``host:port`` for a plain HTTP proxy; with a user name (gateways encode a country or a
    session in it) or another scheme, a short hash of (scheme, host, port, user name) follows,
    so the id never shows the user name and never changes when lines are added or moved.
    """
    shown_host = f"[{host}]" if ":" in host else host
    base = f"{shown_host}:{port}"
    if username is None and scheme == "http":
        return base
    digest = hashlib.blake2b(
        f"{scheme}\0{host}\0{port}\0{username or ''}".encode(errors="surrogatepass"),
        digest_size=8,
    ).hexdigest()
    return f"{base}~{digest}"


def _valid_host(host: str) -> bool:
    """A DNS name of letters, digits, ``-``, ``_`` and dots, or an IP address (v4 or v6)."""
    if ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and _HOST_RE.fullmatch(host) is not None


def _file_lines(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    """(line number, URL) of each line of a proxy list file that is not blank or a comment.

    A line without a scheme is an HTTP proxy: ``host:port`` as scrapy-rotating-proxies reads
    its ``ROTATING_PROXY_LIST_PATH`` files, or ``host:port:user:password`` as many vendors
    export their lists (the password may hold ``:``).
    """
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        vendor = _VENDOR_LINE(text)
        if vendor is not None:
            host, port, user, password = vendor.groups()
            text = f"http://{quote(user, safe=_SAFE)}:{quote(password, safe=_SAFE)}@{host}:{port}"
        elif "://" not in text:
            text = f"http://{text}"
        yield number, text


def _first_undecodable(file: Path) -> int:
    """The number of the first line of ``file`` that is not UTF-8 (text is decoded by blocks,
    so the error itself does not say); read again only when there is such a line."""
    with open(file, "rb") as raw:
        for number, line in enumerate(raw.read().splitlines(), 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


class _Parser:
    def __init__(self, source: str, auth_encoding: str, base_dir: Path | None = None) -> None:
        self.source = source
        #: Where a relative ``proxies_file`` is looked for: the YAML file's directory.
        self.base_dir = base_dir
        self.problems: list[str] = []
        # The exits read so far, as columns (see ExitTable): a million entries are two strings
        # each. ``ids`` holds each entry's own id (exit_id), which also finds duplicates.
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.seen: set[str] = set()
        self.weights: dict[int, float] = {}
        self.given_ids: dict[int, str] = {}
        self.runs: list[_Run] = []
        self.placed_duplicates = 0
        #: Whether a SOCKS exit was read (the dispatch handler then needs its SOCKS path).
        self.socks = False
        self.auth_encoding = auth_encoding
        try:
            # ASCII credentials need no check under an ASCII-compatible encoding (the usual
            # case): the per-entry cost of the check is then one isascii() call.
            self.ascii_safe = codecs.lookup(auth_encoding).encode("a:b")[0] == b"a:b"
        except (LookupError, UnicodeError):
            self.ascii_safe = False
        #: Where each container of the ``locales`` section was first met (by object identity):
        #: met again means a YAML alias, which would make one exit two exits.
        self.blocks: dict[int, str] = {}
        #: (locale, pool) -> (key path, its ``canary:`` block), checked once all pools are read.
        self.canaries: dict[tuple[str, str], tuple[str, CanaryConfig]] = {}
        #: "Did you mean" hints left: each costs a difflib scan of the choices.
        self.hints_left = 50
        #: While a list has had its share of messages, how many more problems it has.
        self.muted: int | None = None
        self._locale_names: str | None = None

    def error(self, path: str, message: str) -> None:
        if self.muted is not None:
            self.muted += 1  # past a list's share of messages: counted, not written
            return
        self.problems.append(f"{self.source}: {path}: {message}")

    def hint(self, value: Any, choices: Any) -> str:
        if self.hints_left <= 0:
            return ""
        self.hints_left -= 1
        return _hint(value, choices)

    def once(self, path: str, block: Any) -> bool:
        """Whether ``block`` is met for the first time; else report it as an alias."""
        first = self.blocks.setdefault(id(block), path)
        if first == path:
            return True
        self.error(
            path,
            f"is the same YAML block as {first} (an alias); expected it written out here "
            "(a proxy belongs to one place; a shared fallback or lang list has at most "
            f"{_MAX_SHARED_LIST} entries)",
        )
        return False

    def locale_names(self, raw_locales: Mapping[Any, Any]) -> str:
        if self._locale_names is None:
            self._locale_names = _one_of(raw_locales)
        return self._locale_names

    def number(
        self,
        path: str,
        value: Any,
        *,
        minimum: float = 0.0,
        strict: bool = True,
        maximum: float = math.inf,
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.error(path, f"{_describe(value)} is not a number; expected a number")
            return None
        # The usual case first, cheaply: 100,000 weights are checked at start-up. (Comparisons
        # only, never math.isnan/isinf: an int of 400 digits is a Python value float() refuses.)
        above = value > minimum if strict else value >= minimum
        if above and value <= min(maximum, _LARGEST_FLOAT):
            return float(value)
        bounds = f"{'>' if strict else '>='} {minimum}"
        if maximum < math.inf:
            bounds += f" and <= {maximum:g}"
        if isinstance(value, float) and math.isinf(value):
            self.error(path, f"{value!r} is not a finite number; expected a number {bounds}")
            return None
        if (value <= minimum) if strict else (value < minimum):
            self.error(path, f"{_describe(value)} is out of range; expected a number {bounds}")
            return None
        self.error(path, f"{_describe(value)} is too large; expected a number {bounds}")
        return None

    def place(self, k: int) -> tuple[str, str]:
        """(file, key path or line) of exit ``k`` read so far, for a message."""
        run = self.runs[bisect_right([r.start for r in self.runs], k) - 1]
        where = run.places[k - run.start]
        return run.source, f"line {where}" if run.lines else f"{run.path}[{where}]"

    def _duplicate(self, path: str, url: str, entry_id: str) -> None:
        if self.placed_duplicates < _MAX_PLACED_DUPLICATES:
            self.placed_duplicates += 1
            source, first = self.place(self.ids.index(entry_id))
            first = first if source == self.source else f"{source} {first}"
        else:
            first = "an earlier entry"
        self.error(
            path,
            f"{_shown_str(url)} duplicates {first}; expected each proxy once "
            "(the same URL in two places would be two votes for one exit)",
        )

    def proxy(self, path: str, raw: Any) -> bool:
        """Read one entry of a list (a URL, or a mapping with ``url``); False if refused."""
        weight = 1.0
        given_id: str | None = None
        if isinstance(raw, Mapping):
            _unknown_keys(self.problems, self.source, path, raw, _PROXY_KEYS)
            if "url" not in raw:
                self.error(path, "missing key 'url'; expected {url: http://host:port, weight: 1}")
                return False
            if "weight" in raw:
                parsed = self.number(f"{path}.weight", raw["weight"], maximum=_MAX_WEIGHT)
                if parsed is None:
                    return False
                weight = parsed
            if "id" in raw:
                given_id = raw["id"]
                if not isinstance(given_id, str) or not _ID_RE.fullmatch(given_id):
                    self.error(
                        f"{path}.id",
                        f"{_describe(given_id)}; expected up to 64 letters, digits and "
                        "'.', '_', ':', '~', '+', '-' (starting with a letter or digit)",
                    )
                    return False
            raw = raw["url"]
        if not isinstance(raw, str):
            self.error(path, f"{_describe(raw)} is not a proxy URL; expected http://host:port")
            return False
        url = raw.strip()
        parts = self._split_url(path, url)
        if parts is None:
            return False
        scheme = parts.scheme.lower()
        username = unquote(parts.username) if parts.username is not None else None
        if username is not None:
            if scheme in SOCKS_SCHEMES:
                fits = self.socks_credentials(path, url, username, unquote(parts.password or ""))
            else:
                fits = self._credentials_encode(path, url, parts, username)
            if not fits:
                return False
        entry_id = exit_id(*split_proxy_url(url))
        if entry_id in self.seen:
            self._duplicate(path, url, entry_id)
            return False
        k = len(self.urls)
        self.socks = self.socks or scheme in SOCKS_SCHEMES
        self.seen.add(entry_id)
        self.urls.append(url)
        self.ids.append(entry_id)
        if weight != 1.0:
            self.weights[k] = weight
        if given_id is not None:
            self.given_ids[k] = given_id
        return True

    def plain_urls(
        self, items: Iterable[tuple[int, Any]], places: array[int], path_of: Any
    ) -> None:
        """Read the entries of one list: the usual URL by one match, anything else in full.

        ``items`` yields (place, entry) pairs; ``path_of(place)`` names an entry in a message.
        """
        fast = self.ascii_safe
        before = len(self.problems)
        blake2b = hashlib.blake2b
        urls, ids, seen = self.urls, self.ids, self.seen
        add_url, add_id, add_seen, add_place = urls.append, ids.append, seen.add, places.append
        for place, raw in items:
            match = _PLAIN_URL(raw) if fast and type(raw) is str else None
            if match is not None:
                scheme, user, password, host, port_text = match.groups()
                port = int(port_text) if port_text is not None else _SCHEMES[scheme]
                if 0 < port < 65536 and (
                    user is None
                    or scheme not in SOCKS_SCHEMES
                    or (
                        0 < len(user) <= _SOCKS_MAX_CREDENTIAL
                        and len(password or "") <= _SOCKS_MAX_CREDENTIAL
                    )
                ):
                    if scheme[0] == "s":
                        self.socks = True
                    # exit_id(), inlined: a million calls are a second of start-up.
                    if user is None and scheme == "http":
                        entry_id = f"{host}:{port}"
                    else:
                        key = f"{scheme}\0{host}\0{port}\0{user or ''}".encode()
                        entry_id = f"{host}:{port}~{blake2b(key, digest_size=8).hexdigest()}"
                    if entry_id in seen:
                        self._duplicate(path_of(place), raw, entry_id)
                        continue
                    add_seen(entry_id)
                    add_url(raw)
                    add_id(entry_id)
                    add_place(place)
                    continue
            if self.proxy(path_of(place), raw):
                add_place(place)
            if self.muted is None and len(self.problems) - before >= _MAX_LIST_PROBLEMS:
                self.muted = 0
        if self.muted is not None:
            if self.muted:
                self.problems.append(
                    f"{self.source}: {self.muted} more problems in this list, not listed; "
                    "expected one proxy URL per entry (fix the ones above first)"
                )
            self.muted = None

    def proxy_list(self, path: str, raw: Any, locale: str | None, pool: str) -> None:
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            self.error(path, f"{_describe(raw)} is not a list; expected a list of proxy URLs")
            return
        if not raw:
            self.error(path, "is empty; expected at least one proxy URL")
            return
        if not self.once(path, raw):
            return
        places: array[int] = array("I")
        self.runs.append(_Run(len(self.urls), locale, pool, self.source, path, False, places))
        self.plain_urls(enumerate(raw), places, lambda i: f"{path}[{i}]")

    def proxies_file(self, path: str, raw: Any, locale: str | None, pool: str) -> None:
        """``proxies_file: fr.txt``: one proxy URL per line, blank lines and ``#`` comments
        skipped, relative to the YAML file. Read line by line: a million lines are never one
        string. Messages name the text file and the line."""
        if not isinstance(raw, str) or not raw.strip():
            self.error(path, f"{_describe(raw)}; expected the path of a text file of proxy URLs")
            return
        name = raw.strip()
        file = Path(name).expanduser()
        if not file.is_absolute() and self.base_dir is not None:
            file = self.base_dir / file
        places: array[int] = array("I")
        saved, self.source = self.source, str(file)
        self.runs.append(_Run(len(self.urls), locale, pool, self.source, path, True, places))
        before = len(self.problems)
        try:
            # utf-8-sig: a file saved by Notepad or PowerShell starts with a byte-order mark.
            with open(file, encoding="utf-8-sig") as lines:
                self.plain_urls(_file_lines(lines), places, lambda n: f"line {n}")
        except FileNotFoundError:
            self.source = saved
            self.error(
                path,
                f"{_shown_str(name)}: file not found (looked at "
                f"{_shown_str(os.path.abspath(file))}); expected a text file of proxy URLs, "
                "one per line, relative to the YAML file",
            )
            return
        except UnicodeDecodeError:
            self.error(f"line {_first_undecodable(file)}", "is not UTF-8 text; expected UTF-8")
        except OSError as exc:
            self.source = saved
            self.error(
                path,
                f"{_shown_str(name)} cannot be read ({exc.strerror or type(exc).__name__}); "
                "expected a text file of proxy URLs",
            )
        finally:
            self.source = saved
        if not places and len(self.problems) == before:
            self.error(path, f"{_shown_str(name)} holds no proxy URL; expected one per line")

    def _split_url(self, path: str, url: str) -> SplitResult | None:
        """The parts of a proxy URL, or None after recording why it is not one."""
        # Every message below shows the URL with everything up to its last "@" masked, decided
        # on the whole value: urllib's own error texts (which quote the password) are never used.
        if "@" in url:
            head = url.rpartition("@")[0]
            userinfo = head.partition("://")[2] if "://" in head else head
            if not _RESERVED_IN_USERINFO.isdisjoint(userinfo):
                self.error(
                    path,
                    f"{_shown_str(url)} has '/', '?' or '#' in its user name or password; "
                    "expected them percent-encoded (%2F, %3F, %23), as in "
                    "http://user:p%2Fss@host:port",
                )
                return None
        if not url.isprintable():
            self.error(
                path,
                f"{_shown_str(url)} contains a control character (tab, line break...); "
                "expected it percent-encoded (a tab in a password is %09)",
            )
            return None
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port
        except ValueError:
            self.error(
                path,
                f"{_shown_str(url)} is not a valid URL (the port is not a number from 1 to "
                "65535, or an IPv6 address is malformed); expected http://host:port",
            )
            return None
        scheme = parts.scheme.lower()
        if scheme in _UNSUPPORTED_SCHEMES:
            self.error(
                path,
                f"{_shown_str(url)} uses {scheme}://, which the suite cannot use (SOCKS4 has no "
                "password and resolves names locally); expected socks5h://host:port, "
                "socks5://host:port, http://host:port or https://host:port",
            )
            return None
        if scheme not in _SCHEMES:
            self.error(
                path,
                f"{_shown_str(url)} has no supported scheme; expected http://host:port, "
                "https://host:port or socks5h://host:port",
            )
            return None
        if not host:
            self.error(path, f"{_shown_str(url)} has no host; expected http://host:port")
            return None
        if not (_HOST_MATCH(host) if len(host) <= 253 else None) and not _valid_host(host):
            self.error(
                path,
                f"{_shown_str(url)} has an invalid host {_shown_key(host)!r}; expected a host "
                "name (letters, digits, '-', '.'; international names in punycode) or an IP",
            )
            return None
        if port == 0:
            self.error(path, f"{_shown_str(url)} has port 0; expected a port from 1 to 65535")
            return None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            self.error(
                path, f"{_shown_str(url)} has a path or query; expected only scheme://host:port"
            )
            return None
        return parts

    def _credentials_encode(self, path: str, url: str, parts: SplitResult, username: str) -> bool:
        """Whether the URL's credentials fit ``HTTPPROXY_AUTH_ENCODING`` (recorded if not)."""
        if self.ascii_safe and url.isascii() and "%" not in url:
            return True
        credentials = f"{username}:{unquote(parts.password or '')}"
        try:
            credentials.encode(self.auth_encoding)
        except (UnicodeError, LookupError):
            self.error(
                path,
                f"{_shown_str(url)} has a user name or password that "
                f"HTTPPROXY_AUTH_ENCODING ({self.auth_encoding!r}) cannot encode; expected "
                "characters of that encoding (or set HTTPPROXY_AUTH_ENCODING to the "
                "proxy's, e.g. 'utf-8')",
            )
            return False
        return True

    def socks_credentials(self, path: str, url: str, username: str, password: str) -> bool:
        """RFC 1929 user name (1 to 255 bytes) and password (up to 255), sent as UTF-8: the
        SOCKS handler never goes through ``HTTPPROXY_AUTH_ENCODING``. An empty password is
        let through (some vendors put a token in the user name only)."""
        for part, value, least in (("user name", username, 1), ("password", password, 0)):
            try:
                size = len(value.encode("utf-8"))
            except UnicodeError:
                size = -1  # a lone surrogate
            if not least <= size <= _SOCKS_MAX_CREDENTIAL:
                self.error(
                    path,
                    f"{_shown_str(url)} has a {part} SOCKS5 cannot send; expected {least} to "
                    f"{_SOCKS_MAX_CREDENTIAL} bytes of UTF-8 (RFC 1929)",
                )
                return False
        return True


def parse(
    data: Any,
    *,
    source: str,
    extra_unlocalized: Sequence[str],
    extra_source: str,
    auth_encoding: str,
    base_dir: Path | None = None,
) -> ProxyConfig:
    """Validate an already-loaded mapping: see :func:`scrapy_proxystack.config.parse_proxy_config`.

    The work is linear in the size of ``data`` as written: a container met twice (a YAML
    alias) is refused or parsed once, never walked again, and no message holds more than a
    capped excerpt of any value.
    """
    p = _Parser(source, auth_encoding, base_dir)
    if not isinstance(data, Mapping):
        raise ConfigError(
            [f"{source}: the top level is {_describe(data)}; expected a mapping with 'locales'"]
        )
    _unknown_keys(p.problems, source, "", data, _TOP_KEYS)
    if not p.ascii_safe:
        try:
            codecs.lookup(auth_encoding)
        except LookupError:
            raise ConfigError(
                [
                    f"setting HTTPPROXY_AUTH_ENCODING: {_describe(auth_encoding)} is not an "
                    "encoding; expected a Python codec name such as 'latin-1' or 'utf-8'"
                ]
            ) from None

    raw_locales = data.get("locales", {})
    if raw_locales is None:
        raw_locales = {}
    if not isinstance(raw_locales, Mapping):
        p.error("locales", f"{_describe(raw_locales)}; expected a mapping of locale name to pool")
        raw_locales = {}
    locale_meta: dict[str, dict[str, Any]] = {}
    pool_weights: dict[str, dict[str, float]] = {}
    for name, raw in raw_locales.items():
        meta = _parse_locale(p, name, raw, pool_weights)
        if meta is not None:
            locale_meta[name] = meta
    _check_fallbacks(p, locale_meta, raw_locales)
    _check_canaries(p, pool_weights)

    # Unlocalized proxies (migration from scrapy-rotating-proxies).
    if extra_unlocalized:
        saved_source = p.source
        p.source = extra_source
        places: array[int] = array("I")
        p.runs.append(_Run(len(p.urls), None, DEFAULT_POOL, extra_source, "", False, places))
        p.plain_urls(enumerate(extra_unlocalized), places, lambda i: f"[{i}]")
        p.source = saved_source

    domains: dict[str, DomainRule] = {}
    raw_domains = data.get("domains", {}) or {}
    if not isinstance(raw_domains, Mapping):
        p.error("domains", f"{_describe(raw_domains)}; expected a mapping of host to locale")
        raw_domains = {}
    parsed_rules: dict[int, DomainRule | None] = {}
    for host, raw in raw_domains.items():
        rule = _parse_domain(p, host, raw, raw_locales, parsed_rules)
        if rule is not None:
            domains[rule.pattern] = rule

    default_locale = data.get("default_locale")
    if default_locale is not None and (
        not isinstance(default_locale, str) or default_locale not in raw_locales
    ):
        p.error(
            "default_locale",
            f"{_describe(default_locale)} is not a configured locale"
            f"{p.hint(default_locale, raw_locales)}; "
            f"expected one of {p.locale_names(raw_locales)}",
        )
        default_locale = None
    if p.problems:
        raise ConfigError(p.problems)
    return _build(p, locale_meta, pool_weights, domains, default_locale)


def _parse_locale(
    p: _Parser, name: Any, raw: Any, pool_weights: dict[str, dict[str, float]]
) -> dict[str, Any] | None:
    """One entry of ``locales``: its proxies and pools (recorded in ``p`` and
    ``pool_weights``) and its options, or None when it cannot be read at all."""
    path = f"locales.{_shown_key(name)}"
    if not isinstance(name, str) or not name:
        p.error(path, "locale names must be non-empty strings")
        return None
    if isinstance(raw, Mapping) and not p.once(path, raw):
        return None
    if isinstance(raw, list):  # shorthand: `fr: [url, url]`
        raw = {"proxies": raw}
    if not isinstance(raw, Mapping):
        # `fr:` with nothing after it is the usual slip: show both forms the key accepts.
        shown = _shown_key(name)
        p.error(
            path,
            f"{'empty (None)' if raw is None else _describe(raw)}; expected a list of proxy URLs "
            f"(`{shown}: [http://host:port, ...]`) or a mapping with 'proxies' "
            f"(`{shown}: {{proxies: [...], fallback: [...]}}`)",
        )
        return None
    _unknown_keys(p.problems, p.source, path, raw, _LOCALE_KEYS)
    weights = pool_weights.setdefault(name, {})
    if "proxies" not in raw and "pools" not in raw and "proxies_file" not in raw:
        p.error(
            path,
            "has no proxies; expected 'proxies: [...]', 'proxies_file: list.txt' or 'pools: {...}'",
        )
    if _own_list(p, path, raw, name, DEFAULT_POOL):
        weights[DEFAULT_POOL] = 1.0
    if "pools" in raw:
        _parse_pools(p, path, raw, name, weights)
    return _parse_locale_options(p, path, raw)


def _parse_pools(
    p: _Parser, path: str, raw: Mapping[Any, Any], name: str, weights: dict[str, float]
) -> None:
    """``locales.<name>.pools``: weighted groups of proxies (vendors, a canary)."""
    pools = raw["pools"]
    if not isinstance(pools, Mapping) or not pools:
        p.error(
            f"{path}.pools",
            f"{_describe(pools)}; expected a mapping of pool name to "
            "{weight: 95, proxies: [...]}",
        )
        return
    if not p.once(f"{path}.pools", pools):
        return
    for pool_key, pool_raw in pools.items():
        pool_name = pool_key if isinstance(pool_key, str) else _shown_key(pool_key)
        ppath = f"{path}.pools.{_shown_key(pool_key)}"
        if not isinstance(pool_raw, Mapping):
            p.error(ppath, f"{_describe(pool_raw)}; expected {{weight, proxies}}")
            continue
        if not p.once(ppath, pool_raw):
            continue
        if pool_name == DEFAULT_POOL and ("proxies" in raw or "proxies_file" in raw):
            p.error(ppath, "clashes with the locale's own 'proxies' list")
            continue
        if pool_name in weights:
            p.error(
                ppath,
                f"names pool {pool_name!r} again (keys {pool_name!r} and "
                f"{_shown_key(pool_key)} read as one name); expected each pool name once",
            )
            continue
        _unknown_keys(p.problems, p.source, ppath, pool_raw, _POOL_KEYS)
        weight = 1.0
        if "weight" in pool_raw:
            parsed = p.number(f"{ppath}.weight", pool_raw["weight"], maximum=_MAX_WEIGHT)
            weight = parsed if parsed is not None else 1.0
        if "proxies" not in pool_raw and "proxies_file" not in pool_raw:
            p.error(
                ppath,
                "missing key 'proxies'; expected a list of proxy URLs (or 'proxies_file')",
            )
            continue
        if not _own_list(p, ppath, pool_raw, name, pool_name):
            continue
        weights[pool_name] = weight
        if "canary" in pool_raw:
            canary = _parse_canary(p, f"{ppath}.canary", pool_raw["canary"])
            if canary is not None:
                p.canaries[(name, pool_name)] = (f"{ppath}.canary", canary)


def _own_list(p: _Parser, path: str, raw: Mapping[Any, Any], locale: str, pool: str) -> bool:
    """A locale's or a pool's ``proxies`` list or ``proxies_file``: whether it has one."""
    if "proxies" in raw and "proxies_file" in raw:
        p.error(
            path,
            "has both 'proxies' and 'proxies_file'; expected one of them (or split the exits "
            "into two pools)",
        )
        return False
    if "proxies" in raw:
        p.proxy_list(f"{path}.proxies", raw["proxies"], locale, pool)
        return True
    if "proxies_file" in raw:
        p.proxies_file(f"{path}.proxies_file", raw["proxies_file"], locale, pool)
        return True
    return False


def _parse_canary(p: _Parser, path: str, raw: Any) -> CanaryConfig | None:
    """A pool's ``canary:`` block; its baseline is checked by :func:`_check_canaries`."""
    if not isinstance(raw, Mapping):
        p.error(path, f"{_describe(raw)}; expected a mapping such as {{baseline: stable}}")
        return None
    _unknown_keys(p.problems, p.source, path, raw, _CANARY_KEYS)
    baseline = raw.get("baseline")
    if not isinstance(baseline, str) or not baseline:
        shown = "missing" if "baseline" not in raw else _describe(baseline)
        p.error(f"{path}.baseline", f"{shown}; expected the name of another pool of this locale")
        return None
    values: dict[str, Any] = {}
    for key, low, strict, high in (
        ("alpha", 0.0, True, _MAX_ALPHA),
        ("margin", 0.0, False, _MAX_MARGIN),
        ("latency_margin", 0.0, False, _MAX_MARGIN),
    ):
        if key in raw:
            values[key] = p.number(
                f"{path}.{key}", raw[key], minimum=low, strict=strict, maximum=high
            )
    if "promote_after" in raw:
        n = raw["promote_after"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_PROMOTE_AFTER:
            p.error(
                f"{path}.promote_after",
                f"{_describe(n)}; expected a whole number of attempts from 1 to "
                f"{_MAX_PROMOTE_AFTER:g}",
            )
        else:
            values["promote_after"] = n
    steps = _parse_steps(p, f"{path}.steps", raw["steps"]) if "steps" in raw else ()
    # A bad value is already reported: the block is still returned so its baseline is checked.
    return CanaryConfig(baseline=baseline, steps=steps or (), **values)


def _parse_steps(p: _Parser, path: str, raw: Any) -> tuple[float, ...] | None:
    """``steps: [25, 50, 100]``: the candidate's successive shares, in percent, increasing."""
    expected = "expected increasing percentages above 0 and at most 100, such as [25, 50, 100]"
    if not isinstance(raw, list) or len(raw) > 100:
        p.error(path, f"{_describe(raw)}; {expected}")
        return None
    steps: list[float] = []
    for i, value in enumerate(raw):
        step = p.number(f"{path}[{i}]", value, maximum=100.0)
        if step is None:
            return None
        if steps and step <= steps[-1]:
            p.error(f"{path}[{i}]", f"{_describe(value)} is not above {steps[-1]:g}; {expected}")
            return None
        steps.append(step)
    return tuple(steps)


def _check_canaries(p: _Parser, pool_weights: Mapping[str, dict[str, float]]) -> None:
    """Each canary's baseline is another pool of its locale, neither a canary itself nor the
    baseline of another canary (two judges would move the same weights)."""
    taken: dict[tuple[str, str], str] = {}
    for (locale, pool), (path, canary) in list(p.canaries.items()):
        pools = pool_weights.get(locale, {})
        where = f"{path}.baseline"
        problem = None
        if canary.baseline == pool:
            problem = "is the pool itself"
        elif canary.baseline not in pools:
            problem = (
                f"is not a pool of locale {_shown_key(locale)}{p.hint(canary.baseline, pools)}"
            )
        elif (locale, canary.baseline) in p.canaries:
            problem = "is itself a canary"
        elif (locale, canary.baseline) in taken:
            problem = f"is already the baseline of {taken[(locale, canary.baseline)]}"
        if problem is not None:
            others = [n for n in pools if n != pool]
            p.error(
                where,
                f"{_shown_str(canary.baseline)} {problem}; expected one of "
                f"{_one_of(others) if others else '(no other pool)'} that no other canary uses",
            )
            del p.canaries[(locale, pool)]
            continue
        taken[(locale, canary.baseline)] = f"locales.{_shown_key(locale)}.pools.{_shown_key(pool)}"


def _parse_locale_options(p: _Parser, path: str, raw: Mapping[Any, Any]) -> dict[str, Any]:
    """A locale's ``fallback``, ``strategy``, ``accept_language`` and ``min_anonymity``."""
    meta: dict[str, Any] = {
        "fallback": (),
        "strategy": None,
        "accept_language": None,
        "min_anonymity": None,
    }
    if "fallback" in raw:
        fb = raw["fallback"]
        if isinstance(fb, str):
            fb = [fb]
        if not isinstance(fb, list) or not all(isinstance(x, str) for x in fb):
            p.error(f"{path}.fallback", f"{_describe(fb)}; expected a list of locale names")
        elif len(fb) <= _MAX_SHARED_LIST or p.once(f"{path}.fallback", fb):
            meta["fallback"] = tuple(fb)
    if "strategy" in raw:
        strategy = raw["strategy"]
        if not isinstance(strategy, str) or strategy not in STRATEGIES:
            p.error(
                f"{path}.strategy",
                f"{_describe(strategy)} is not a strategy{p.hint(strategy, STRATEGIES)}; "
                f"expected one of {', '.join(STRATEGIES)}",
            )
        else:
            meta["strategy"] = strategy
    if "accept_language" in raw:
        al = raw["accept_language"]
        if not isinstance(al, str) or not al.strip() or not al.isprintable():
            p.error(f"{path}.accept_language", f"{_describe(al)}; expected a header value")
        else:
            meta["accept_language"] = al.strip()
    if "min_anonymity" in raw:
        grade = raw["min_anonymity"]
        if not isinstance(grade, str) or grade not in ANONYMITY_GRADES:
            p.error(
                f"{path}.min_anonymity",
                f"{_describe(grade)} is not an anonymity grade"
                f"{p.hint(grade, ANONYMITY_GRADES)}; expected one of {', '.join(ANONYMITY_GRADES)}",
            )
        else:
            meta["min_anonymity"] = grade
    return meta


def _check_fallbacks(
    p: _Parser, locale_meta: Mapping[str, dict[str, Any]], raw_locales: Mapping[Any, Any]
) -> None:
    for name, meta in locale_meta.items():
        for i, target in enumerate(meta["fallback"]):
            if target not in locale_meta and target not in raw_locales:
                p.error(
                    f"locales.{_shown_key(name)}.fallback[{i}]",
                    f"{_shown_str(target)} is not a configured locale"
                    f"{p.hint(target, raw_locales)}; "
                    f"expected one of {p.locale_names(raw_locales)}",
                )
    _check_cycles(p, {name: meta["fallback"] for name, meta in locale_meta.items()})


def _build(
    p: _Parser,
    locale_meta: Mapping[str, dict[str, Any]],
    pool_weights: Mapping[str, dict[str, float]],
    domains: dict[str, DomainRule],
    default_locale: str | None,
) -> ProxyConfig:
    """The frozen objects. Exit ids are the YAML's ``id:`` or :func:`exit_id`: they do not depend
    on an entry's position, so per-exit stats, the audit log and shared state keep their
    meaning when the file changes. The exits stay in the parser's columns (an
    :class:`ExitTable`); each pool is a slice of it."""
    ids = p.ids
    if p.given_ids:
        ids = _given_ids(p)
    if p.problems:
        raise ConfigError(p.problems)
    urls = p.urls
    weights: list[float] | None = None
    if p.weights:
        weights = [1.0] * len(urls)
        for k, weight in p.weights.items():
            weights[k] = weight
    # Runs in table order: each locale's pools in turn, then the unlocalized exits, the order
    # parsing reads them in.
    spans: dict[tuple[str | None, str], tuple[int, int]] = {}
    ends = [run.start for run in p.runs[1:]] + ([len(urls)] if p.runs else [])
    for run, stop in zip(p.runs, ends, strict=True):
        spans[(run.locale, run.pool)] = (run.start, stop)
    order: list[tuple[str | None, str]] = [
        (name, pool) for name in locale_meta for pool in pool_weights.get(name, {})
    ]
    if (None, DEFAULT_POOL) in spans:
        order.append((None, DEFAULT_POOL))
    if [spans[key][0] for key in order] != sorted(spans[key][0] for key in order):
        raise ValueError(f"{p.source}: proxies read out of table order")  # a parser bug
    table_runs: list[tuple[int, str | None, str]] = []
    views: dict[tuple[str | None, str], tuple[int, int]] = {}
    at = 0
    for locale, pool in order:
        start, stop = spans[(locale, pool)]
        table_runs.append((at, locale, pool))
        views[(locale, pool)] = (at, at + stop - start)
        at += stop - start
    table = ExitTable(urls, ids, weights, table_runs, socks=p.socks)

    canary_of = {key: canary for key, (_path, canary) in p.canaries.items()}
    locales: dict[str, LocaleConfig] = {}
    for name, meta in locale_meta.items():
        pools = tuple(
            PoolConfig(
                name=pool,
                weight=weight,
                proxies=table.view(*views[(name, pool)]),
                canary=canary_of.get((name, pool)),
            )
            for pool, weight in pool_weights.get(name, {}).items()
        )
        locales[name] = LocaleConfig(
            name=name,
            pools=pools,
            fallback=meta["fallback"],
            strategy=meta["strategy"],
            accept_language=meta["accept_language"],
            min_anonymity=meta["min_anonymity"],
        )
    unlocalized = views.get((None, DEFAULT_POOL))
    return ProxyConfig(
        source=p.source,
        locales=locales,
        domains=domains,
        default_locale=default_locale,
        unlocalized=table.view(*unlocalized) if unlocalized is not None else (),
        table=table,
    )


def _given_ids(p: _Parser) -> list[str]:
    """The ids with the YAML's ``id:`` in place, each checked against every other id.

    Computed ids are unique already (they found the duplicates), so only a given id can
    clash: with another given one, or with the computed id of another entry.
    """
    ids = list(p.ids)
    given_at: dict[str, int] = {}
    for k, given in sorted(p.given_ids.items()):
        ids[k] = given
        other = given_at.get(given)
        if other is None and given in p.seen:
            j = p.ids.index(given)
            other = j if j != k and j not in p.given_ids else None
        if other is None:
            given_at[given] = k
            continue
        source, where = p.place(max(other, k))
        first_source, first = p.place(min(other, k))
        if first_source != source:
            first = f"{first_source} {first}"
        if max(other, k) in p.given_ids:
            where += ".id"
        p.problems.append(
            f"{source}: {where}: its exit id {given!r} is also the id of {first}; "
            "expected each id once (give one of them another 'id:')"
        )
    return ids


def _check_cycles(p: _Parser, graph: Mapping[str, tuple[str, ...]]) -> None:
    """Report fallback cycles: one depth-first search, each locale and each edge once.

    (Walking every path from every locale, as a naive check does, is exponential for
    "ladder" fallbacks and quadratic for long chains.) Each back edge closes one cycle; the
    first :data:`_MAX_CYCLES` are spelled out, shortened when long, and the rest are counted.
    """
    done: set[str] = set()
    found = 0
    for start in graph:
        if start in done:
            continue
        path = [start]
        position = {start: 0}
        stack = [(start, 0)]
        while stack:
            node, i = stack[-1]
            targets = graph[node]
            if i == len(targets):
                stack.pop()
                path.pop()
                del position[node]
                done.add(node)
                continue
            stack[-1] = (node, i + 1)
            nxt = targets[i]
            if nxt in done or nxt not in graph:
                continue
            if nxt not in position:
                position[nxt] = len(path)
                path.append(nxt)
                stack.append((nxt, 0))
                continue
            found += 1
            if found > _MAX_CYCLES:
                continue
            if nxt == node:
                p.error(
                    f"locales.{_shown_key(node)}.fallback[{i}]",
                    "a locale cannot fall back to itself; expected another locale",
                )
                continue
            first = position[nxt]
            length = len(path) - first
            names = path[first : first + 5] if length > 10 else path[first:]
            shown = [_shown_key(n) for n in names]
            if length > 10:
                shown += [f"... ({length} locales)", *(_shown_key(n) for n in path[-4:])]
            p.error(
                f"locales.{_shown_key(nxt)}.fallback",
                f"fallback cycle {' -> '.join((*shown, _shown_key(nxt)))}; "
                "expected chains that end (e.g. fr-CA -> fr -> eu)",
            )
    if found > _MAX_CYCLES:
        p.error("locales", f"{found - _MAX_CYCLES} more fallback cycles; expected chains that end")


def _parse_domain(
    p: _Parser,
    host: Any,
    raw: Any,
    raw_locales: Mapping[str, Any],
    parsed: dict[int, DomainRule | None],
) -> DomainRule | None:
    path = f"domains.{_shown_key(host)}"
    pattern = host.lower().rstrip(".") if isinstance(host, str) else ""
    body = pattern[2:] if pattern.startswith("*.") else pattern
    if not body or not _valid_host(body) or ":" in body:
        p.error(
            path,
            f"{_describe(host)} is not a host pattern; expected 'example.com' or '*.example.com'",
        )
        return None
    if isinstance(raw, str) or raw is None:
        return _parse_domain_body(p, path, pattern, {"locale": raw}, raw_locales)
    if not isinstance(raw, Mapping):
        p.error(path, f"{_describe(raw)}; expected a locale name or {{locale: ..., rate: ...}}")
        return None
    # A rule shared through a YAML alias (one block for many sites) is validated once. (Only
    # blocks of ``data`` are remembered by identity: they stay alive while it is parsed.)
    if id(raw) in parsed:
        shared = parsed[id(raw)]
        return None if shared is None else _replace_pattern(shared, pattern)
    rule = _parse_domain_body(p, path, pattern, raw, raw_locales)
    parsed[id(raw)] = rule
    return rule


def _replace_pattern(rule: DomainRule, pattern: str) -> DomainRule:
    return DomainRule(
        pattern=pattern,
        locale=rule.locale,
        rate=rule.rate,
        burst=rule.burst,
        exit_delay=rule.exit_delay,
        bans=rule.bans,
        lang=rule.lang,
    )


def _parse_domain_body(
    p: _Parser, path: str, pattern: str, raw: Mapping[Any, Any], raw_locales: Mapping[str, Any]
) -> DomainRule | None:
    _unknown_keys(p.problems, p.source, path, raw, _DOMAIN_KEYS)
    locale = raw.get("locale")
    if locale is not None and (not isinstance(locale, str) or locale not in raw_locales):
        p.error(
            f"{path}.locale" if len(raw) > 1 else path,
            f"{_describe(locale)} is not a configured locale{p.hint(locale, raw_locales)}; "
            f"expected one of {p.locale_names(raw_locales)}",
        )
        return None
    rate = p.number(f"{path}.rate", raw["rate"]) if "rate" in raw else None
    burst_raw = raw.get("burst")
    burst: int | None = None
    if burst_raw is not None:
        if (
            isinstance(burst_raw, bool)
            or not isinstance(burst_raw, int)
            or not 1 <= burst_raw <= _MAX_BURST
        ):
            p.error(
                f"{path}.burst",
                f"{_describe(burst_raw)}; expected a whole number from 1 to {_MAX_BURST}",
            )
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
    if len(tags) > _MAX_SHARED_LIST and not p.once(path, tags):
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
            except (re.error, RecursionError, OverflowError) as exc:
                reason = shorten(str(exc)) if isinstance(exc, re.error) else "too deeply nested"
                p.error(
                    f"{path}.{key}[{i}]",
                    f"{_shown_str(pattern)} is not a valid regex ({reason}); "
                    "expected a Python regular expression",
                )
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
