"""A listening endpoint on the world's event loop, with every connection tracked.

Sites and proxies share this base. It binds its socket as soon as it is created (so the port,
hence the URL, is known before the world starts) and it keeps every transport and handler task
it owns, because Python 3.10/3.11 ``Server.close()`` leaves accepted connections open: without
the bookkeeping, stopping a world would leak sockets and pending tasks, which the test suite
turns into errors (``filterwarnings = error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

from scrapy_proxystack.testing._http import MAX_HEAD, BadRequest, build_response

if TYPE_CHECKING:
    import ssl

logger = logging.getLogger(__name__)

_LISTEN_BACKLOG = 2048
#: How long a stopping endpoint waits for its cancelled handlers.
_CANCEL_GRACE = 5.0


def bind_socket(ip: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(ip, port)``, not yet listening.

    SO_REUSEADDR lets a killed proxy be revived on the same port while connections it closed
    are still in TIME_WAIT.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


def abort_transport(transport: asyncio.BaseTransport, *, reset: bool = False) -> None:
    """Close ``transport`` now, dropping buffered data; with ``reset``, send a TCP RST.

    A reset (SO_LINGER 0) is what a client sees when a proxy process crashes, which is the
    failure the flaky and killed proxies imitate.
    """
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


class _TrackedProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that registers its transport with the endpoint for its whole life."""

    def __init__(self, endpoint: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEAD, loop=loop)
        super().__init__(reader, endpoint._connected, loop=loop)
        self._endpoint = endpoint
        self._tracked: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tracked = transport
        self._endpoint._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tracked is not None:
            self._endpoint._transports.discard(self._tracked)
            self._tracked = None
        super().connection_lost(exc)


class Endpoint:
    """Base of sites and proxies: one address, one listening socket, tracked connections.

    Everything but ``__init__`` and :meth:`_discard_socket` runs on the world's loop thread.
    """

    def __init__(self, ip: str, port: int = 0) -> None:
        self.ip = ip
        self._sock: socket.socket | None = bind_socket(ip, port)
        self.port: int = self._sock.getsockname()[1]
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ip}:{self.port}>"

    # -- hooks -------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def _ssl_context(self) -> ssl.SSLContext | None:
        return None

    def _should_listen(self) -> bool:
        return True

    # -- lifecycle (loop thread) -------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is not None:
            return
        sock = self._sock if self._sock is not None else bind_socket(self.ip, self.port)
        self._sock = None
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._make_protocol, sock=sock, ssl=self._ssl_context(), backlog=_LISTEN_BACKLOG
            )
        except BaseException:
            sock.close()
            raise

    def _stop_listening(self) -> None:
        """Refuse new connections; the open ones carry on."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._discard_socket()

    def _discard_socket(self) -> None:
        """Close the socket bound at creation if no server took it over."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def _close(self, *, reset: bool = False) -> None:
        """Stop listening, drop every open connection and wait for the handlers to finish."""
        self._stop_listening()
        for transport in list(self._transports):
            abort_transport(transport, reset=reset)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CANCEL_GRACE)

    # -- connections -------------------------------------------------------------------------

    def _make_protocol(self) -> asyncio.BaseProtocol:
        return _TrackedProtocol(self)

    def _track(self, transport: asyncio.BaseTransport) -> None:
        """Own an outgoing connection too, so that closing the endpoint closes it."""
        self._transports.add(transport)

    def _untrack(self, transport: asyncio.BaseTransport) -> None:
        self._transports.discard(transport)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except BadRequest as exc:
            writer.write(
                build_response(exc.status, exc.message.encode(), content_type="text/plain")
            )
            with contextlib.suppress(OSError):
                await writer.drain()
        except (OSError, EOFError, asyncio.TimeoutError) as exc:
            # Clients hanging up, resets and TLS errors are routine for a test server.
            logger.debug("%r: connection ended: %r", self, exc)
        except asyncio.CancelledError:
            # The world is stopping or the proxy was killed. Ending normally matters: Python
            # 3.11's StreamReaderProtocol reports a handler task that ends cancelled as an
            # unhandled error.
            pass
        except Exception:
            logger.exception("%r: unexpected error while serving a connection", self)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
