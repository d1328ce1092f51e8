"""Loopback target sites: real HTTP(S) servers with geo-blocking, bans and rate limits.

Each site decides what to answer from the address the request comes from. Proxies connect out
from their own 127.0.R.N address, so a site sees which proxy (hence which country) a request
went through, exactly the signal real geo-blocks and anti-bot systems use.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args
from urllib.parse import parse_qs, quote, urlsplit

from scrapy_proxystack.testing import content
from scrapy_proxystack.testing._http import RequestHead, build_response, read_body, read_head
from scrapy_proxystack.testing._server import Endpoint

if TYPE_CHECKING:
    import asyncio
    import ssl
    from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping

__all__ = ["BAN_FORMS", "GEO_BLOCKS", "BanForm", "BanRule", "GeoBlock", "RecordedRequest", "Site"]

logger = logging.getLogger(__name__)

BanForm = Literal["403", "503", "429", "captcha", "redirect", "empty", "region_page", "451"]
#: Every way a site can answer a banned client.
BAN_FORMS: tuple[str, ...] = get_args(BanForm)
GeoBlock = Literal["451", "page"]
#: How a site answers a client from a country it does not serve.
GEO_BLOCKS: tuple[str, ...] = get_args(GeoBlock)

_HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class BanRule:
    """Ban ``clients`` (client IPs; None = everyone) once each made ``after`` successful requests.

    A banned client gets ``form`` on every later request: an explicit block (``"403"``,
    ``"451"``, ``"429"`` with ``Retry-After: retry_after``), an anti-bot interstitial
    (``"503"``, ``"captcha"``, ``"redirect"`` to ``/challenge``) or a disguised one that
    answers 200 (``"empty"``, ``"region_page"``), which is what ban detection has to see through.
    """

    form: BanForm
    clients: Collection[str] | None = None
    after: int = 0
    retry_after: float = 2.0
    #: client IP -> share of its requests that get ``form`` (spread evenly: 0.25 bans every
    #: fourth request), instead of every request once banned: a vendor whose exits are refused
    #: more often than another's. Clients not listed are never banned; ``clients`` is ignored.
    shares: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        form = str(self.form)
        if form not in BAN_FORMS:
            raise ValueError(f"BanRule form {self.form!r} is not one of {', '.join(BAN_FORMS)}")
        object.__setattr__(self, "form", form)
        if self.after < 0:
            raise ValueError(f"BanRule after={self.after!r} must be >= 0")
        if self.retry_after < 0:
            raise ValueError(f"BanRule retry_after={self.retry_after!r} must be >= 0")
        if self.clients is not None:
            clients = (self.clients,) if isinstance(self.clients, str) else self.clients
            object.__setattr__(self, "clients", frozenset(clients))
        if self.shares is not None:
            for ip, share in self.shares.items():
                if not 0.0 <= share <= 1.0:
                    raise ValueError(f"BanRule shares[{ip!r}]={share!r} must be in 0..1")
            object.__setattr__(self, "shares", dict(self.shares))

    def applies_to(self, client_ip: str) -> bool:
        """Whether this rule targets ``client_ip`` at all (regardless of ``after``)."""
        if self.shares is not None:
            return client_ip in self.shares
        return self.clients is None or client_ip in self.clients

    def hits(self, client_ip: str, count: int) -> bool:
        """Whether the ``count``-th request (0-based) of ``client_ip`` gets the ban."""
        if self.shares is None:
            return True
        share = self.shares.get(client_ip, 0.0)
        return math.floor((count + 1) * share) > math.floor(count * share)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as a site received it, with the status it answered."""

    time: float  # time.monotonic()
    client_ip: str
    country: str | None
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    status: int


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = _HTML


class Site(Endpoint):
    """A web site on its own loopback address. Create it with ``LoopbackWorld.add_site``."""

    def __init__(
        self,
        name: str,
        host: str,
        *,
        country_of: Callable[[str], str | None],
        lang: str = "en",
        countries: Iterable[str] | None = None,
        geo_block: GeoBlock | None = None,
        pages: int = 5,
        tls_context: ssl.SSLContext | None = None,
        ban: BanRule | None = None,
        rate_limit: tuple[int, float] | None = None,
        crawl_delay: float | None = None,
        page_size: int | None = None,
        strikes: tuple[int, float, float] | None = None,
        down: bool = False,
        submit: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
        port: int = 0,
    ) -> None:
        content.normalize_lang(lang)  # fail early on a language without text
        if strikes is not None:
            count, window, ban_for = strikes
            if rate_limit is None or count < 1 or window <= 0 or ban_for <= 0:
                raise ValueError(
                    f"strikes {strikes!r} must be (429s >= 1, seconds > 0, ban seconds > 0) "
                    "and needs a rate_limit"
                )
        if countries is not None:
            if isinstance(countries, str):
                countries = (countries,)
            countries = frozenset(c.lower() for c in countries)
        if geo_block is not None and geo_block not in GEO_BLOCKS:
            raise ValueError(f"geo_block {geo_block!r} must be None, '451' or 'page'")
        if pages < 0:
            raise ValueError(f"pages={pages!r} must be >= 0")
        if rate_limit is not None:
            max_requests, window = rate_limit
            if max_requests < 1 or window <= 0:
                raise ValueError(
                    f"rate_limit {rate_limit!r} must be (max_requests >= 1, seconds > 0)"
                )
        if crawl_delay is not None and crawl_delay < 0:
            raise ValueError(f"crawl_delay={crawl_delay!r} must be >= 0")
        if page_size is not None and page_size < 0:
            raise ValueError(f"page_size={page_size!r} must be >= 0")
        if ban is not None and not isinstance(ban, BanRule):
            raise TypeError(f"ban must be a BanRule or None, got {ban!r}")
        super().__init__(host, port)
        self.name = name
        self.lang = lang
        self.countries: frozenset[str] | None = countries
        self.geo_block: GeoBlock = geo_block or "451"
        self.pages = pages
        self.tls = tls_context is not None
        self.rate_limit = rate_limit
        self.crawl_delay = crawl_delay
        self.page_size = page_size
        self._tls_context = tls_context
        self._country_of = country_of
        self._lock = threading.Lock()
        self._ban = ban
        self._requests: list[RecordedRequest] = []
        self._successes: defaultdict[str, int] = defaultdict(int)
        #: Requests per client the ban rule looked at (for ``BanRule.shares``).
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._windows: dict[str, deque[float]] = {}
        self._cache: dict[str, bytes] = {}
        self.strikes = strikes
        self._strikes: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._down = down
        self._submit = submit

    # -- public ------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The site's own address (127.0.100.K): a distinct host name for Scrapy."""
        return self.ip

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.ip}:{self.port}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on this site."""
        if not path.startswith("/"):
            path = "/" + path
        return self.base_url + path

    @property
    def email(self) -> str:
        """The contact address printed on every page (PII for the masking pipeline)."""
        return content.contact_email(self.name)

    @property
    def phone(self) -> str:
        """The phone number printed on every page, in national format."""
        return content.phone_number(self.lang)[0]

    @property
    def ban(self) -> BanRule | None:
        return self._ban

    @ban.setter
    def ban(self, rule: BanRule | None) -> None:
        """Change the ban rule while the world runs; takes effect on the next request."""
        if rule is not None and not isinstance(rule, BanRule):
            raise TypeError(f"ban must be a BanRule or None, got {rule!r}")
        with self._lock:
            self._ban = rule

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and per-client state (ban counters, rate-limit windows)."""
        with self._lock:
            self._requests.clear()
            self._successes.clear()
            self._counts.clear()
            self._windows.clear()
            self._strikes.clear()
            self._banned_until.clear()

    @property
    def down(self) -> bool:
        """Whether the site refuses connections (proxies then answer 502)."""
        with self._lock:
            return self._down

    def take_down(self) -> None:
        """Stop listening, as a site whose server crashed."""
        self._set_down(True)

    def bring_up(self) -> None:
        """Listen again on the same address and port."""
        self._set_down(False)

    def _set_down(self, down: bool) -> None:
        with self._lock:
            self._down = down
        if self._submit is not None:
            self._submit(self._apply_state)

    def _should_listen(self) -> bool:
        with self._lock:
            return not self._down

    async def _apply_state(self) -> None:
        if self._should_listen():
            await self._listen()
        else:
            self._stop_listening()

    # -- serving (loop thread) ---------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        return self._tls_context

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if head is None:
            return
        await read_body(reader, head)
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else "?"
        answer = self._answer(head, client_ip)
        writer.write(
            build_response(
                answer.status,
                answer.body,
                answer.headers,
                content_type=answer.content_type,
                head_only=head.method == "HEAD",
                server="loopback-site",
            )
        )
        await writer.drain()

    def _answer(self, head: RequestHead, client_ip: str) -> _Answer:
        now = time.monotonic()
        country = self._country_of(client_ip)
        parts = urlsplit(head.target)
        path = parts.path or "/"
        target = f"{path}?{parts.query}" if parts.query else path
        with self._lock:
            answer = self._route(head, path, parts.query, client_ip, country, now)
            self._requests.append(
                RecordedRequest(
                    time=now,
                    client_ip=client_ip,
                    country=country,
                    method=head.method,
                    path=target,
                    headers=head.header_dict(),
                    status=answer.status,
                )
            )
        logger.debug(
            "%s %s %s from %s -> %d", self.name, head.method, target, client_ip, answer.status
        )
        return answer

    def _route(
        self,
        head: RequestHead,
        path: str,
        query: str,
        client_ip: str,
        country: str | None,
        now: float,
    ) -> _Answer:
        # Checks in the order a real edge applies them: exempt paths, geography, bans, rate.
        if path == "/robots.txt":
            return _Answer(
                200, content.robots_txt(self.crawl_delay), (), "text/plain; charset=utf-8"
            )
        if path == "/challenge":
            return_to = parse_qs(query).get("return", ["/"])[0]
            return _Answer(200, content.challenge_page(return_to))
        if self.countries is not None and (country is None or country not in self.countries):
            return self._geo_blocked()
        ban = self._ban
        if (
            ban is not None
            and ban.applies_to(client_ip)
            and self._successes[client_ip] >= ban.after
            and ban.hits(client_ip, self._next_count(client_ip))
        ):
            return self._banned(ban, path, query)
        if self.strikes is not None and self._banned_until.get(client_ip, 0.0) > now:
            return _Answer(
                403,
                content.ban_page(
                    "Access denied", "Too many requests from your address: blocked for a while."
                ),
            )
        if self.rate_limit is not None:
            limited = self._rate_limited(client_ip, now)
            if limited is not None:
                self._strike(client_ip, now)
                return limited
        answer = self._content(head, path, client_ip, country)
        if answer.status == 200:
            self._successes[client_ip] += 1
        return answer

    def _next_count(self, client_ip: str) -> int:
        count = self._counts[client_ip]
        self._counts[client_ip] = count + 1
        return count

    def _cached(self, key: str, render: Callable[[], bytes]) -> bytes:
        body = self._cache.get(key)
        if body is None:
            body = self._cache[key] = render()
        return body

    def _content(
        self, head: RequestHead, path: str, client_ip: str, country: str | None
    ) -> _Answer:
        if path == "/":
            return _Answer(
                200,
                self._cached(
                    "/",
                    lambda: content.index_page(self.name, self.lang, self.pages, self.page_size),
                ),
            )
        if path.startswith("/page/"):
            number = path[len("/page/") :]
            if number.isdigit() and 1 <= int(number) <= self.pages:
                n = int(number)
                return _Answer(
                    200,
                    self._cached(
                        path,
                        lambda: content.page(self.name, self.lang, n, self.pages, self.page_size),
                    ),
                )
        if path == "/echo":
            payload = {
                "client_ip": client_ip,
                "country": country,
                "headers": head.header_dict(),
                "method": head.method,
                "path": head.target,
            }
            return _Answer(200, json.dumps(payload).encode(), (), "application/json")
        return _Answer(404, content.ban_page("Not Found", "The requested page does not exist."))

    def _geo_blocked(self) -> _Answer:
        if self.geo_block == "page":
            return _Answer(
                200, self._cached("region", lambda: content.region_page(self.name, self.lang))
            )
        return _Answer(
            451,
            content.ban_page(
                "Unavailable For Legal Reasons", "This content is not available in your country."
            ),
        )

    def _banned(self, ban: BanRule, path: str, query: str) -> _Answer:
        form = ban.form
        if form == "403":
            return _Answer(
                403,
                content.ban_page(
                    "Access denied", "You don't have permission to access this resource."
                ),
            )
        if form == "503":
            return _Answer(503, content.challenge_page(path))
        if form == "429":
            return _Answer(
                429,
                content.ban_page("Too Many Requests", "Slow down and try again later."),
                (("Retry-After", str(max(0, math.ceil(ban.retry_after)))),),
            )
        if form == "captcha":
            return _Answer(200, content.captcha_page())
        if form == "redirect":
            target = f"{path}?{query}" if query else path
            location = self.url("/challenge?return=" + quote(target, safe=""))
            return _Answer(302, b"", (("Location", location),))
        if form == "empty":
            return _Answer(200, b"")
        if form == "region_page":
            return _Answer(
                200, self._cached("region", lambda: content.region_page(self.name, self.lang))
            )
        return _Answer(
            451,
            content.ban_page(
                "Unavailable For Legal Reasons", "This content is not available in your country."
            ),
        )

    def _strike(self, client_ip: str, now: float) -> None:
        """A 429 is a strike; enough of them in the window ban the client address."""
        if self.strikes is None:
            return
        count, window, ban_for = self.strikes
        times = self._strikes.setdefault(client_ip, deque())
        while times and times[0] <= now - window:
            times.popleft()
        times.append(now)
        if len(times) >= count:
            self._banned_until[client_ip] = now + ban_for
            times.clear()

    def _rate_limited(self, client_ip: str, now: float) -> _Answer | None:
        assert self.rate_limit is not None
        max_requests, window = self.rate_limit
        times = self._windows.setdefault(client_ip, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) < max_requests:
            times.append(now)
            return None
        retry_after = max(1, math.ceil(times[0] + window - now))
        return _Answer(
            429,
            content.ban_page("Too Many Requests", "Rate limit exceeded; try again later."),
            (("Retry-After", str(retry_after)),),
        )
