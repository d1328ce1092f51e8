"""A loopback SOCKS5 proxy (RFC 1928) with user/password authentication (RFC 1929).

It shares everything with the HTTP :class:`~scrapy_proxystack.testing.proxies.Proxy` (its own
address 127.0.R.N as the source of outgoing connections, the failure modes, ``kill``/``revive``)
and differs only in the protocol. Each ``CONNECT`` is recorded with the *address type* the
client asked for: a client that resolved the site's name itself sends an IP (type 1), one that
lets the exit resolve it sends the name (type 3). Names are resolved by the world
(``LoopbackWorld.add_name``) as seen from the proxy's country, never by the system resolver, and
the destination must still be a 127.0.0.0/8 literal once resolved.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import TYPE_CHECKING, NamedTuple

from scrapy_proxystack.testing._http import loopback_literal
from scrapy_proxystack.testing._server import abort_transport
from scrapy_proxystack.testing.proxies import Proxy, ProxyRequest, _pipe

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from scrapy_proxystack.testing.proxies import ProxyMode

__all__ = ["ADDRESS_TYPES", "SocksProxy", "SocksRequest"]

logger = logging.getLogger(__name__)

#: SOCKS5 address types, by their code in a request.
ADDRESS_TYPES = {1: "ipv4", 3: "domain", 4: "ipv6"}
#: Seconds a client may take over each step of the handshake.
HANDSHAKE_TIMEOUT = 10.0
TUNNEL_LINGER = 5.0

_VERSION = 5
_NO_AUTH, _USER_PASS, _NO_METHOD = 0x00, 0x02, 0xFF
_CONNECT = 0x01
#: Reply codes (RFC 1928, section 6).
SUCCEEDED, GENERAL_FAILURE, NOT_ALLOWED, NETWORK_UNREACHABLE = 0x00, 0x01, 0x02, 0x03
HOST_UNREACHABLE, CONNECTION_REFUSED, TTL_EXPIRED, COMMAND_NOT_SUPPORTED = 0x04, 0x05, 0x06, 0x07
ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class SocksRequest(NamedTuple):
    """One ``CONNECT`` as the proxy received it, before anything was resolved."""

    time: float  # time.monotonic()
    address_type: str  # "ipv4", "domain" or "ipv6"
    host: str  # the name or the literal, as sent
    port: int
    user: str | None  # the RFC 1929 user name (never the password)


class SocksProxy(Proxy):
    """A SOCKS5 exit on its own loopback address. Create it with
    ``LoopbackWorld.add_socks_proxy``.

    ``reply`` makes every ``CONNECT`` fail with that SOCKS reply code (0 = serve normally);
    ``"blackhole"`` accepts connections and never answers the greeting (a silent exit).
    ``gateway`` accepts any user name and password, as vendors' gateways that read a session
    or a country from the user name do.
    """

    scheme = "socks5h"

    def __init__(
        self,
        ip: str,
        *,
        region: int,
        country: str,
        submit: Callable[[Callable[[], Awaitable[None]]], None],
        resolve: Callable[[str, str], tuple[str, int] | None],
        mode: ProxyMode = "ok",
        auth: tuple[str, str] | None = None,
        delay: float = 0.0,
        fail_rate: float = 0.0,
        die_after: int | None = None,
        seed: int = 0,
        reply: int = SUCCEEDED,
        gateway: bool = False,
    ) -> None:
        if not 0 <= reply <= 0xFF:
            raise ValueError(f"reply={reply!r} must be a SOCKS reply code from 0 to 255")
        super().__init__(
            ip,
            region=region,
            country=country,
            submit=submit,
            mode=mode,
            auth=auth,
            anonymity="elite",  # SOCKS relays bytes: it cannot add a header
            delay=delay,
            fail_rate=fail_rate,
            die_after=die_after,
            seed=seed,
        )
        self.reply = reply
        self.gateway = gateway
        self._resolve = resolve
        self._socks_requests: list[SocksRequest] = []
        self._auth_bytes = (
            (auth[0].encode("utf-8"), auth[1].encode("utf-8")) if auth is not None else None
        )

    @property
    def socks_requests(self) -> list[SocksRequest]:
        """A copy of every ``CONNECT`` received so far (including refused ones), oldest first."""
        with self._lock:
            return list(self._socks_requests)

    def clear(self) -> None:
        with self._lock:
            self._socks_requests.clear()
        super().clear()

    # -- serving (loop thread) ---------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "blackhole":
            while await reader.read(65536):
                pass
            return
        try:
            welcome, user = await asyncio.wait_for(self._greet(reader, writer), HANDSHAKE_TIMEOUT)
            if not welcome:
                return
            request = await asyncio.wait_for(self._read_request(reader), HANDSHAKE_TIMEOUT)
        except asyncio.IncompleteReadError:
            return
        if request is None:
            await self._answer(writer, COMMAND_NOT_SUPPORTED)
            return
        atyp, host, port = request
        with self._lock:
            self._socks_requests.append(
                SocksRequest(time.monotonic(), ADDRESS_TYPES.get(atyp, "?"), host, port, user)
            )
            self._requests.append(ProxyRequest(time.monotonic(), "CONNECT", f"{host}:{port}"))
        if self._budget_exhausted() or (self.fail_rate > 0 and self._rng.random() < self.fail_rate):
            abort_transport(writer.transport, reset=True)
            return
        if self.reply != SUCCEEDED:
            await self._answer(writer, self.reply)
            return
        if atyp == 3:
            resolved = self._resolve(host, self.country)
            if resolved is None:
                await self._answer(writer, HOST_UNREACHABLE)
                return
            host, port = resolved
        dest = loopback_literal(host)
        if dest is None:  # the loopback-only rule, whatever the client sent
            await self._answer(writer, NOT_ALLOWED)
            return
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        try:
            up_reader, up_writer = await self._open_upstream(dest, port)
        except asyncio.TimeoutError:
            await self._answer(writer, TTL_EXPIRED)
            return
        except ConnectionRefusedError:
            await self._answer(writer, CONNECTION_REFUSED)
            return
        except OSError:
            await self._answer(writer, GENERAL_FAILURE)
            return
        self._track(up_writer.transport)
        try:
            await self._answer(writer, SUCCEEDED)
            outbound = asyncio.ensure_future(_pipe(reader, up_writer))
            inbound = asyncio.ensure_future(_pipe(up_reader, writer))
            try:
                await inbound
                await asyncio.wait({outbound}, timeout=TUNNEL_LINGER)
            finally:
                for task in (outbound, inbound):
                    task.cancel()
                await asyncio.gather(outbound, inbound, return_exceptions=True)
        finally:
            self._untrack(up_writer.transport)
            up_writer.close()

    async def _greet(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[bool, str | None]:
        """Method negotiation and RFC 1929 authentication: whether the client may go on, and
        its user name (None without authentication)."""
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        if version != _VERSION:
            return False, None
        wanted = _NO_AUTH if self._auth_bytes is None else _USER_PASS
        if self.gateway:
            wanted = _USER_PASS if _USER_PASS in methods else _NO_AUTH
        if wanted not in methods:
            writer.write(bytes((_VERSION, _NO_METHOD)))
            await writer.drain()
            return False, None
        writer.write(bytes((_VERSION, wanted)))
        await writer.drain()
        if wanted == _NO_AUTH:
            return True, None
        _sub_version, user_len = await reader.readexactly(2)
        user = await reader.readexactly(user_len)
        (password_len,) = await reader.readexactly(1)
        password = await reader.readexactly(password_len)
        if self._auth_bytes is None:  # a gateway: any credentials
            writer.write(bytes((1, 0)))
            await writer.drain()
            return True, user.decode("utf-8", "replace")
        expected_user, expected_password = self._auth_bytes
        # Both compared, always: the time taken says nothing about which one was wrong.
        good = hmac.compare_digest(user, expected_user) & hmac.compare_digest(
            password, expected_password
        )
        writer.write(bytes((1, 0 if good else 1)))
        await writer.drain()
        return bool(good), user.decode("utf-8", "replace")

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[int, str, int] | None:
        """``(address type, host, port)`` of a CONNECT, None for another command."""
        _version, command, _reserved, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        elif atyp == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode("ascii", "replace")
        elif atyp == 4:
            raw = await reader.readexactly(16)
            host = ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))
        else:
            return None
        port = int.from_bytes(await reader.readexactly(2), "big")
        if command != _CONNECT:
            return None
        return atyp, host, port

    async def _answer(self, writer: asyncio.StreamWriter, code: int) -> None:
        """A reply with this proxy's address as the bound address (clients ignore it)."""
        address = bytes(int(part) for part in self.ip.split("."))
        writer.write(bytes((_VERSION, code, 0, 1)) + address + self.port.to_bytes(2, "big"))
        await writer.drain()
