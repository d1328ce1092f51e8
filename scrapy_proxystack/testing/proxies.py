"""Loopback forward proxies: plain HTTP forwarding and CONNECT tunnels, with failure modes.

A proxy listens on 127.0.R.N and opens every outgoing connection from that same address, so
the target site sees a distinct client IP per proxy and maps it to the proxy's country. The
proxies only ever connect to IPv4 literals inside 127.0.0.0/8: any other destination, host names
included, is refused with 403 before anything is resolved or connected, so nothing a test does
can reach the outside network.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import random
import socket
import threading
import time
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args
from urllib.parse import quote

from scrapy_proxystack.config.schema import exit_id
from scrapy_proxystack.testing._http import (
    HOP_BY_HOP,
    MAX_HEAD,
    RequestHead,
    build_response,
    loopback_literal,
    parse_absolute,
    parse_authority,
    read_body,
    read_head,
)
from scrapy_proxystack.testing._server import Endpoint, abort_transport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["ANONYMITY_LEVELS", "PROXY_MODES", "Anonymity", "Proxy", "ProxyMode", "ProxyRequest"]

logger = logging.getLogger(__name__)

ProxyMode = Literal["ok", "dead", "blackhole", "slow", "flaky", "die_after"]
#: Behaviours a proxy can be created with.
PROXY_MODES: tuple[str, ...] = get_args(ProxyMode)
Anonymity = Literal["transparent", "anonymous", "elite"]
#: What a proxy reveals to the site: client IP and Via, Via only, or nothing.
ANONYMITY_LEVELS: tuple[str, ...] = get_args(Anonymity)

#: Seconds allowed to open an upstream connection before answering 504.
CONNECT_TIMEOUT = 10.0
#: Seconds a tunnel stays open for the client once the site has closed its side.
TUNNEL_LINGER = 5.0
_CHUNK = 64 * 1024
_VIA = "1.1 loopback-proxy"
# Lets connect() pick the source port, so a busy proxy is not limited by bind()'s port search.
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", None)


class ProxyRequest(NamedTuple):
    """One request as a proxy received it."""

    time: float  # time.monotonic()
    method: str
    target: str


class Proxy(Endpoint):
    """A forward proxy on its own loopback address. Create it with ``LoopbackWorld.add_proxy``."""

    #: The scheme of its URL in a proxy list.
    scheme = "http"

    def __init__(
        self,
        ip: str,
        *,
        region: int,
        country: str,
        submit: Callable[[Callable[[], Awaitable[None]]], None],
        mode: ProxyMode = "ok",
        auth: tuple[str, str] | None = None,
        anonymity: Anonymity = "elite",
        delay: float = 0.0,
        fail_rate: float = 0.0,
        die_after: int | None = None,
        seed: int = 0,
        auth_encoding: str = "utf-8",
        port: int = 0,
    ) -> None:
        if mode not in PROXY_MODES:
            raise ValueError(f"proxy mode {mode!r} is not one of {', '.join(PROXY_MODES)}")
        if anonymity not in ANONYMITY_LEVELS:
            raise ValueError(f"anonymity {anonymity!r} is not one of {', '.join(ANONYMITY_LEVELS)}")
        if delay < 0:
            raise ValueError(f"delay={delay!r} must be >= 0")
        if mode == "slow" and delay <= 0:
            raise ValueError("mode 'slow' needs delay > 0 (seconds to wait before forwarding)")
        if not 0.0 <= fail_rate <= 1.0:
            raise ValueError(f"fail_rate={fail_rate!r} must be between 0 and 1")
        if mode == "flaky" and fail_rate <= 0:
            raise ValueError("mode 'flaky' needs fail_rate > 0")
        if die_after is not None and die_after < 0:
            raise ValueError(f"die_after={die_after!r} must be >= 0")
        if mode == "die_after" and die_after is None:
            raise ValueError("mode 'die_after' needs die_after=N (requests served before dying)")
        if auth is not None and (len(auth) != 2 or not all(isinstance(a, str) for a in auth)):
            raise ValueError("auth must be a (user, password) pair of strings")
        super().__init__(ip, port)
        self.region = region
        self.country = country
        self.mode: ProxyMode = mode
        self.auth = auth
        self.anonymity: Anonymity = anonymity
        self.delay = delay
        self.fail_rate = fail_rate
        self.die_after = die_after
        self.seed = seed
        self._submit = submit
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: list[ProxyRequest] = []
        self._served = 0
        self._upstream_connections = 0
        self._want_alive = mode != "dead" and die_after != 0
        self._expected_auth: bytes | None = None
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode(auth_encoding)).decode()
            self._expected_auth = token.encode("ascii")
        if mode == "dead":
            # Reserve the port, then free it: connecting is refused, yet the URL is stable and
            # revive() can listen on it later.
            self._discard_socket()

    # -- public ------------------------------------------------------------------------------

    @property
    def url_without_auth(self) -> str:
        return f"{self.scheme}://{self.ip}:{self.port}"

    @property
    def url(self) -> str:
        """``scheme://user:pass@ip:port`` (percent-encoded) when the proxy needs credentials,
        else without them."""
        if self.auth is None:
            return self.url_without_auth
        user, password = (quote(part, safe="") for part in self.auth)
        return f"{self.scheme}://{user}:{password}@{self.ip}:{self.port}"

    @property
    def exit_id(self) -> str:
        """The suite's id of this proxy when configured by :attr:`url`."""
        return exit_id(self.scheme, self.ip, self.port, self.auth[0] if self.auth else None)

    @property
    def requests(self) -> list[ProxyRequest]:
        """A copy of every request received so far (including refused ones), oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        """Number of requests received so far."""
        with self._lock:
            return len(self._requests)

    @property
    def upstream_connections(self) -> int:
        """Outgoing connections attempted so far (proves refused destinations were not tried)."""
        with self._lock:
            return self._upstream_connections

    @property
    def alive(self) -> bool:
        """Whether the proxy currently accepts connections."""
        return self._server is not None

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self._requests.clear()

    def kill(self) -> None:
        """Stop listening and reset every open connection, as if the proxy process crashed."""
        with self._lock:
            self._want_alive = False
        self._submit(self._apply_state)

    def revive(self) -> None:
        """Listen again on the same address and port (a ``die_after`` budget starts over)."""
        with self._lock:
            self._want_alive = True
            self._served = 0
        self._submit(self._apply_state)

    # -- lifecycle (loop thread) -------------------------------------------------------------

    def _should_listen(self) -> bool:
        with self._lock:
            return self._want_alive

    async def _apply_state(self) -> None:
        if self._should_listen():
            await self._listen()
        else:
            await self._close(reset=True)

    # -- serving (loop thread) ---------------------------------------------------------------

    def _record(self, head: RequestHead) -> None:
        with self._lock:
            self._requests.append(ProxyRequest(time.monotonic(), head.method, head.target))

    def _budget_exhausted(self) -> bool:
        """Count one request against ``die_after``; True once the budget is spent."""
        if self.die_after is None:
            return False
        with self._lock:
            exhausted = self._served >= self.die_after
            if not exhausted:
                self._served += 1
            dying = self._served >= self.die_after
            if dying:
                self._want_alive = False
        if dying and self._server is not None:
            logger.debug("%r: served %d requests, no longer listening", self, self.die_after)
            self._stop_listening()
        return exhausted

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if head is None:
            return
        self._record(head)
        if self.mode == "blackhole":
            while await reader.read(_CHUNK):
                pass
            return
        if self._budget_exhausted() or (self.fail_rate > 0 and self._rng.random() < self.fail_rate):
            abort_transport(writer.transport, reset=True)
            return
        body = b"" if head.method == "CONNECT" else await read_body(reader, head)
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else "?"
        # The destination is checked before anything else, authentication included, so that
        # the loopback-only rule holds whatever the client sends.
        if head.method == "CONNECT":
            host, port = parse_authority(head.target)
            path = ""
        else:
            host, port, path = parse_absolute(head.target)
        dest = loopback_literal(host)
        if dest is None:
            logger.debug("%r: refused destination %r", self, host)
            await self._reply(
                writer,
                403,
                b"Forbidden: this proxy only connects to IPv4 literals in 127.0.0.0/8.\n",
            )
            return
        if not self._authorized(head):
            await self._reply(
                writer,
                407,
                b"Proxy authentication required.\n",
                (("Proxy-Authenticate", 'Basic realm="loopback"'),),
            )
            return
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        if head.method == "CONNECT":
            await self._tunnel(reader, writer, dest, port)
        else:
            await self._forward(writer, head, body, dest, port, path, client_ip)

    def _authorized(self, head: RequestHead) -> bool:
        if self._expected_auth is None:
            return True
        value = head.header("proxy-authorization")
        if value is None:
            return False
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64encode(base64.b64decode(token.strip(), validate=True))
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected_auth)

    async def _reply(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        writer.write(
            build_response(
                status, body, headers, content_type="text/plain", server="loopback-proxy"
            )
        )
        await writer.drain()

    async def _open_upstream(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``host:port`` from this proxy's own address; ``host`` is a checked literal."""
        if loopback_literal(host) != host:  # the loopback-only rule, enforced where it matters
            raise PermissionError(f"refusing to connect to {host!r}: not a 127.0.0.0/8 literal")
        with self._lock:
            self._upstream_connections += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if _IP_BIND_ADDRESS_NO_PORT is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((self.ip, 0))
            loop = asyncio.get_running_loop()
            # An explicit socket and an IP tuple: nothing here can trigger a name lookup.
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), CONNECT_TIMEOUT)
            return await asyncio.open_connection(sock=sock, limit=MAX_HEAD)
        except BaseException:
            sock.close()
            raise

    async def _connect_or_reply(
        self, writer: asyncio.StreamWriter, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await self._open_upstream(host, port)
        except asyncio.TimeoutError:
            await self._reply(writer, 504, b"Gateway timeout: the site did not accept.\n")
        except OSError as exc:
            logger.debug("%r: cannot reach %s:%d: %r", self, host, port, exc)
            await self._reply(writer, 502, b"Bad gateway: the site refused the connection.\n")
        return None

    def _forward_head(
        self, head: RequestHead, host: str, port: int, path: str, client_ip: str
    ) -> bytes:
        connection_tokens = {
            token.strip().lower()
            for name, value in head.headers
            if name.lower() in ("connection", "proxy-connection")
            for token in value.split(",")
        }
        headers = [
            (name, value)
            for name, value in head.headers
            if name.lower() not in HOP_BY_HOP and name.lower() not in connection_tokens
        ]
        if not any(name.lower() == "host" for name, _ in headers):
            headers.insert(0, ("Host", f"{host}:{port}" if port != 80 else host))
        if self.anonymity == "transparent":
            headers = _append_header(headers, "X-Forwarded-For", client_ip)
        if self.anonymity in ("transparent", "anonymous"):
            headers = _append_header(headers, "Via", _VIA)
        headers.append(("Connection", "close"))
        lines = [f"{head.method} {path} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _forward(
        self,
        writer: asyncio.StreamWriter,
        head: RequestHead,
        body: bytes,
        host: str,
        port: int,
        path: str,
        client_ip: str,
    ) -> None:
        upstream = await self._connect_or_reply(writer, host, port)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        self._track(up_writer.transport)
        try:
            up_writer.write(self._forward_head(head, host, port, path, client_ip) + body)
            await up_writer.drain()
            try:
                response_head = await up_reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await self._reply(writer, 502, b"Bad gateway: invalid response from the site.\n")
                return
            writer.write(_close_response_head(response_head))
            while data := await up_reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        finally:
            self._untrack(up_writer.transport)
            up_writer.close()

    async def _tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        upstream = await self._connect_or_reply(writer, host, port)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        self._track(up_writer.transport)
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            outbound = asyncio.ensure_future(_pipe(reader, up_writer))
            inbound = asyncio.ensure_future(_pipe(up_reader, writer))
            try:
                # The site closing ends the exchange; give the client a moment to finish its side.
                await inbound
                await asyncio.wait({outbound}, timeout=TUNNEL_LINGER)
            finally:
                for task in (outbound, inbound):
                    task.cancel()
                await asyncio.gather(outbound, inbound, return_exceptions=True)
        finally:
            self._untrack(up_writer.transport)
            up_writer.close()


def _append_header(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    """Add ``value`` to header ``name``, extending an existing list the way proxies chain."""
    low = name.lower()
    for i, (key, existing) in enumerate(headers):
        if key.lower() == low:
            headers[i] = (key, f"{existing}, {value}")
            return headers
    headers.append((name, value))
    return headers


def _close_response_head(raw: bytes) -> bytes:
    """The site's response head with connection headers replaced by ``Connection: close``."""
    lines = raw.decode("latin-1").split("\r\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        name = line.partition(":")[0].strip().lower()
        if name not in ("connection", "keep-alive", "proxy-connection"):
            kept.append(line)
    kept.append("Connection: close")
    return ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until end of stream, then half-close the other side."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        if not writer.is_closing():
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()
            else:
                writer.close()
