"""Just enough HTTP/1.1 for the loopback sites and proxies.

Every exchange is one request and one response with ``Connection: close``: no keep-alive, no
pipelining, no chunked request bodies. That keeps the servers short and obviously correct, and
Scrapy (like every HTTP/1.1 client) copes with a server that closes after each response.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "HOP_BY_HOP",
    "MAX_BODY",
    "MAX_HEAD",
    "BadRequest",
    "RequestHead",
    "build_response",
    "loopback_literal",
    "parse_absolute",
    "parse_authority",
    "parse_head",
    "read_body",
    "read_head",
]

#: Largest request or response head accepted (also the stream buffer limit).
MAX_HEAD = 64 * 1024
#: Largest request body accepted; the test servers never need more.
MAX_BODY = 16 * 1024 * 1024

#: Headers that concern one connection only (RFC 9110 section 7.6.1) and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)


class BadRequest(Exception):
    """The client sent something the servers refuse to interpret; answered with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RequestHead:
    """A parsed request line and header block; header names keep their original case."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_dict(self) -> dict[str, str]:
        """Headers keyed by lower-case name; repeated headers are joined with ``, ``."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            low = key.lower()
            out[low] = f"{out[low]}, {value}" if low in out else value
        return out


def parse_head(raw: bytes) -> RequestHead:
    """Parse a request head ending with an empty line. Raises :class:`BadRequest`."""
    # latin-1 maps every byte to a code point, so odd bytes survive a round trip when forwarded.
    text = raw.decode("latin-1").lstrip("\r\n")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    if not version.startswith("HTTP/1."):
        raise BadRequest(505, f"unsupported protocol version {version[:20]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise BadRequest(400, f"malformed header line {line[:100]!r}")
        headers.append((name, value.strip()))
    return RequestHead(method.upper(), target, version, tuple(headers))


async def read_head(reader: asyncio.StreamReader) -> RequestHead | None:
    """Read and parse one request head; None when the client closed without sending one."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest(400, "incomplete request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadRequest(431, "request head too large") from exc
    return parse_head(raw)


async def read_body(reader: asyncio.StreamReader, head: RequestHead) -> bytes:
    """Read the Content-Length body of a request.

    Reading it even when it is ignored matters: closing a socket with unread input makes the
    kernel send a reset, which can destroy the response still in flight.
    """
    if head.header("transfer-encoding") is not None:
        raise BadRequest(411, "chunked request bodies are not supported; send Content-Length")
    value = head.header("content-length")
    if value is None:
        return b""
    try:
        length = int(value)
    except ValueError:
        raise BadRequest(400, f"invalid Content-Length {value[:40]!r}") from None
    if length < 0:
        raise BadRequest(400, f"invalid Content-Length {value[:40]!r}")
    if length > MAX_BODY:
        raise BadRequest(413, f"request body over {MAX_BODY} bytes")
    return await reader.readexactly(length) if length else b""


def build_response(
    status: int,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    *,
    content_type: str | None = "text/html; charset=utf-8",
    head_only: bool = False,
    server: str = "loopback",
) -> bytes:
    """Serialize a complete ``Connection: close`` response."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Server: {server}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return out if head_only else out + body


def loopback_literal(host: str) -> str | None:
    """``host`` normalized if it is an IPv4 literal inside 127.0.0.0/8, else None.

    Only a dotted quad is accepted (no ``127.1``, no hex, no names), so that deciding whether a
    destination is allowed never involves a resolver: no DNS lookup can leak out of the world.
    """
    try:
        addr = ipaddress.IPv4Address(host)
    except ValueError:
        return None
    return str(addr) if addr.is_loopback else None


def parse_authority(authority: str) -> tuple[str, int]:
    """Split a CONNECT target ``host:port``. Raises :class:`BadRequest` when malformed."""
    host, sep, port_text = authority.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadRequest(400, f"CONNECT target must be host:port, got {authority[:100]!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def parse_absolute(target: str) -> tuple[str, int, str]:
    """Split an absolute-form ``http://host:port/path?query`` into host, port, origin-form."""
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        raise BadRequest(400, f"malformed request target {target[:100]!r}") from None
    scheme = parts.scheme.lower()
    if scheme == "https":
        raise BadRequest(400, "https:// targets go through CONNECT")
    if scheme != "http" or not parts.hostname:
        raise BadRequest(400, f"a proxy needs an absolute http:// target, got {target[:100]!r}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.hostname, port if port is not None else 80, path
