"""Download requests bound to SOCKS5 exits: Scrapy's httpx handler, with its pitfalls fixed.

Scrapy 2.19's ``HttpxDownloadHandler`` speaks SOCKS through httpx's ``socks`` extra. Used as
is, it has four problems for a proxy suite, each handled here:

* **Credentials.** It rebuilds the proxy URL from the ``Proxy-Authorization`` header with
  ``quote()``, which leaves a ``/`` unescaped (``httpx.InvalidURL`` on every request) and goes
  through ``HTTPPROXY_AUTH_ENCODING`` (a non-Latin password cannot be sent). Here the user name
  and password of an exit come from the configuration (a user's own ``meta["proxy"]`` from the
  header, split once) and go to httpx as a separate ``auth`` pair, sent as UTF-8 (RFC 1929).
  No ``Proxy-Authorization`` header is ever sent, to the exit or to the site.
* **An unbounded handshake.** httpcore reads the SOCKS replies without a timeout: an exit that
  accepts and stays silent holds the request for ever. The whole download is bounded by the
  request's ``download_timeout`` (what Scrapy's default handler does); a timeout during the
  connection to the exit or its handshake is the exit's failure (``socks_handshake_timeout``).
* **Errors.** httpx reports every SOCKS refusal as ``ProxyError`` with a text; Scrapy turns it
  into ``DownloadConnectionRefusedError``. Here it becomes :class:`SocksError` carrying the SOCKS
  reply code, and whether only the exit can be at fault.
* **Memory.** It keeps one client (with its connection pool) per proxy URL, without bound. Here
  the clients form an LRU: idle ones beyond the bound are closed.

Names are always resolved by the exit: httpx sends the host name for ``socks5://`` and
``socks5h://`` alike (address type 3), so nothing is looked up on the crawler's machine.

This subclasses a module Scrapy marks private (``scrapy.core.downloader.handlers._httpx``),
because it brings the body streaming, size limits, data-loss handling and response building of
Scrapy's own handlers; the tests exercise it on the Scrapy version installed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import importlib
import logging
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import unquote, urlsplit

import httpx
import socksio.exceptions
from scrapy.core.downloader.handlers._httpx import HttpxDownloadHandler
from scrapy.exceptions import (
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    UnsupportedURLSchemeError,
)
from scrapy.utils._download_handlers import NullCookieJar

from scrapy_proxystack.config import SOCKS_SCHEMES
from scrapy_proxystack.exceptions import SocksError
from scrapy_proxystack.redact import redact_url
from scrapy_proxystack.socks_replies import classify

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scrapy_proxystack.config import ProxyEntry

__all__ = ["SocksDownloadHandler", "is_socks_proxy"]

logger = logging.getLogger(__name__)

#: Idle clients kept at least (each holds a connection pool); more when CONCURRENT_REQUESTS is
#: larger, so a crawl that cycles through many exits still reuses connections to recent ones.
_MIN_IDLE_CLIENTS = 64
_SOCKS_PORT = 1080
_SETUP_STEP = "socks.setup_socks5_connection"
_HANDSHAKE_STEPS = frozenset({"socks.connect_tcp", _SETUP_STEP})


def is_socks_proxy(proxy: object) -> TypeGuard[str]:
    """Whether a ``meta["proxy"]`` value names a SOCKS5 proxy."""
    return isinstance(proxy, str) and proxy[:8].lower() in ("socks5:/", "socks5h:")


class _Phase:
    """Where a download is, from httpcore's trace events: is it still connecting to the exit
    or waiting for its handshake?

    It also closes the connection of a failed handshake: httpcore 1.0 leaves that socket open
    (it is only reclaimed by the garbage collector, with a ResourceWarning), and a crawl
    through refusing exits would pile them up.
    """

    __slots__ = ("step", "stream")

    def __init__(self) -> None:
        self.step: str | None = None
        self.stream: Any = None

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        step, _, event = name.rpartition(".")
        if event == "started":
            self.step = step
            if step == _SETUP_STEP:
                self.stream = info.get("stream")
        elif event == "complete" and step == self.step:
            self.step = None
            self.stream = None
        elif event == "failed" and step == _SETUP_STEP and self.stream is not None:
            # The step stays recorded: the error handler reads it.
            stream, self.stream = self.stream, None
            await stream.aclose()

    @property
    def at_exit(self) -> bool:
        return self.step in _HANDSHAKE_STEPS


_PHASE: contextvars.ContextVar[_Phase | None] = contextvars.ContextVar(
    "proxystack_socks_phase", default=None
)


class _HideSocksAuth(logging.Filter):
    """httpcore logs each SOCKS handshake at DEBUG with its arguments, the user name and
    password included (``setup_socks5_connection.started ... auth=(b'user', b'password')``):
    cut them out of the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cut = message.find(" auth=")
        if cut != -1:
            record.msg, record.args = message[:cut] + " auth=***", None
        return True


def _hide_socks_auth() -> None:
    target = logging.getLogger("httpcore.socks")
    if not any(isinstance(f, _HideSocksAuth) for f in target.filters):
        target.addFilter(_HideSocksAuth())


@dataclass(frozen=True, slots=True)
class _ExitKey:
    """One client per exit: its address and credentials (never shown in a repr)."""

    url: str
    user: str | None = field(repr=False)
    password: str | None = field(repr=False)


class _Client:
    __slots__ = ("client", "in_flight")

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.in_flight = 0


class SocksDownloadHandler(HttpxDownloadHandler):
    """Downloads requests whose ``meta["proxy"]`` is a ``socks5://`` or ``socks5h://`` URL.

    ``exit_of`` gives the configured exit a request is bound to (its credentials are taken from
    there); a request not bound to one (a user's own ``meta["proxy"]``) uses the proxy URL and
    the ``Proxy-Authorization`` header Scrapy's HttpProxyMiddleware made of its credentials.
    ``max_idle_clients`` bounds the clients kept (one per exit).
    """

    def __init__(
        self,
        crawler: Crawler,
        *,
        exit_of: Callable[[Request], ProxyEntry | None] = lambda _request: None,
        max_idle_clients: int | None = None,
    ) -> None:
        super().__init__(crawler)
        _hide_socks_auth()
        self._exit_of = exit_of
        self._max_idle = (
            max_idle_clients
            if max_idle_clients is not None
            else max(_MIN_IDLE_CLIENTS, 2 * self._pool_size_total)
        )
        self._clients: OrderedDict[_ExitKey, _Client] = OrderedDict()
        self._exit_limits = httpx.Limits(
            max_connections=self._pool_size_total or None,
            # Connections to one exit are per site: a few idle ones per exit are enough.
            max_keepalive_connections=self._pool_size_per_host or None,
        )
        self._closed = False
        # anyio imports its asyncio backend on first use (tens of ms): done now, not while the
        # first request, its slot of the site's rate already taken, waits.
        with contextlib.suppress(ImportError):
            importlib.import_module("anyio._backends._asyncio")
        #: Clients opened and closed by the LRU so far (for benchmarks and tests).
        self.clients_opened = 0
        self.clients_evicted = 0

    @property
    def clients(self) -> int:
        """Clients currently kept (busy or idle)."""
        return len(self._clients)

    # -- the download ---------------------------------------------------------------------------

    async def download_request(self, request: Request) -> Response:
        timeout = float(request.meta.get("download_timeout", self._DEFAULT_CONNECT_TIMEOUT))
        phase = _Phase()
        token = _PHASE.set(phase)
        try:
            return await asyncio.wait_for(super().download_request(request), timeout)
        except asyncio.TimeoutError as exc:
            if phase.at_exit:
                raise SocksError(
                    "socks_handshake_timeout",
                    f"no SOCKS answer within {timeout:g} s",
                ) from exc
            raise DownloadTimeoutError(
                f"Getting {request.url} took longer than {timeout:g} seconds."
            ) from exc
        finally:
            _PHASE.reset(token)

    @asynccontextmanager
    async def _make_request(
        self, request: Request, timeout: float
    ) -> AsyncIterator[httpx.Response]:
        target = self._socks_target(request)
        if target is None:  # no SOCKS proxy: Scrapy's handler, as is
            async with super()._make_request(request, timeout) as response:
                yield response
            return
        slot = await self._client_for(*target)
        phase = _PHASE.get() or _Phase()
        headers = self._request_headers(request).to_tuple_list()  # no Proxy-Authorization
        slot.in_flight += 1
        try:
            async with slot.client.stream(
                request.method,
                request.url,
                content=request.body,
                headers=headers,
                timeout=timeout,
                extensions={"trace": phase.trace},
            ) as response:
                yield response
        except httpx.TimeoutException as exc:
            if phase.at_exit:
                raise SocksError(
                    "socks_handshake_timeout", f"no SOCKS answer within {timeout:g} s"
                ) from exc
            raise DownloadTimeoutError(
                f"Getting {request.url} took longer than {timeout:g} seconds."
            ) from exc
        except httpx.ProxyError as exc:
            raise _socks_error(str(exc)) from exc
        except socksio.exceptions.ProtocolError as exc:
            raise SocksError("socks_protocol_error", "the exit does not speak SOCKS5") from exc
        except httpx.UnsupportedProtocol as exc:
            raise UnsupportedURLSchemeError(str(exc)) from exc
        except httpx.ConnectError as exc:
            if phase.at_exit:  # nothing answers at the exit's address
                raise DownloadConnectionRefusedError(str(exc)) from exc
            # Through the tunnel (TLS with the site, say): not the exit's failure alone.
            raise DownloadFailedError(str(exc)) from exc
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            raise DownloadFailedError(str(exc)) from exc
        finally:
            slot.in_flight -= 1

    # -- proxies and clients --------------------------------------------------------------------

    def _socks_target(self, request: Request) -> tuple[str, str | None, str | None] | None:
        """``(proxy URL without credentials, user, password)`` for a SOCKS request."""
        entry = self._exit_of(request)
        if entry is not None and entry.scheme in SOCKS_SCHEMES:
            return _split_credentials(entry.url)
        proxy = request.meta.get("proxy")
        if not is_socks_proxy(proxy):
            return None
        url, user, password = _split_credentials(proxy)
        if user is None:
            header = request.headers.get(b"Proxy-Authorization")
            if header:
                user, password = self._header_credentials(header)
        return url, user, password

    def _header_credentials(self, header: bytes) -> tuple[str | None, str | None]:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"basic":
            return None, None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode(
                self._proxy_auth_encoding
            )
        except (binascii.Error, ValueError):
            return None, None
        user, _, password = decoded.partition(":")
        return user, password

    async def _client_for(self, url: str, user: str | None, password: str | None) -> _Client:
        key = _ExitKey(url, user, password)
        slot = self._clients.get(key)
        if slot is not None:
            self._clients.move_to_end(key)
            return slot
        auth = (user, password or "") if user is not None else None
        slot = _Client(self._make_socks_client(httpx.Proxy(url, auth=auth)))
        self._clients[key] = slot
        self.clients_opened += 1
        await self._evict()
        return slot

    def _make_socks_client(self, proxy: httpx.Proxy) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            cookies=NullCookieJar(),
            transport=httpx.AsyncHTTPTransport(
                verify=self._ssl_context,
                local_address=self._bind_host,
                http2=self._enable_h2,
                limits=self._exit_limits,
                trust_env=False,
                proxy=proxy,
            ),
        )
        for header_name in ("accept", "accept-encoding", "user-agent"):
            client.headers.pop(header_name, None)  # Scrapy sets its own
        return client

    async def _evict(self) -> None:
        """Close the least recently used idle clients beyond the bound (busy ones stay)."""
        excess = len(self._clients) - self._max_idle
        if excess <= 0:
            return
        victims = []
        for key, slot in self._clients.items():
            if slot.in_flight == 0:
                victims.append(key)
                if len(victims) == excess:
                    break
        for key in victims:
            slot = self._clients.pop(key)
            self.clients_evicted += 1
            await slot.client.aclose()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await super().close()
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for slot in clients:
            await slot.client.aclose()


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(scheme://host:port, user, password)``, the credentials percent-decoded; the port
    is SOCKS's 1080 when the URL has none."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    bare = redact_url(url)
    if parts.port is None:
        bare += f":{_SOCKS_PORT}"
    return bare, user, password


def _socks_error(message: str) -> SocksError:
    """The :class:`SocksError` for httpcore's text of a SOCKS refusal."""
    failure = classify(message)
    return SocksError(
        failure.reason, failure.detail, reply=failure.reply, proxy_only=failure.proxy_only
    )
