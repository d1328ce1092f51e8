"""Probing proxies before a crawl: reachability, latency, exit country and anonymity grade.

Plain asyncio streams, no Scrapy and no reactor: the check runs before any crawl, and probing
hundreds of proxies concurrently only needs sockets. The proxy URL (with its credentials) is
used to connect and to build the ``Proxy-Authorization`` header, and nowhere else: results name
the exit by its id, and error notes are built from exception classes, never from messages that
could echo a URL.

Anonymity grades, from the headers the echo endpoint received through the proxy:

* **transparent**: a client-address header (``X-Forwarded-For``, ``Forwarded: for=``,
  ``X-Real-IP``, ``Client-IP``, ``X-Client-IP``, ``True-Client-IP``, ``X-Originating-IP``)
  holds an address that is not the exit's own address as the echo saw it, or is the prober's
  local address: the site learns where the request really came from;
* **anonymous**: no such address, but the proxy announces itself (``Via``, ``Forwarded``,
  ``X-Forwarded-For`` naming only the exit itself, ``Proxy-Connection``, ``X-Proxy-ID``,
  ``X-BlueCoat-Via``, ``Proxy-Agent``);
* **elite**: neither.

Only plain-HTTP echo URLs let a proxy add headers; through a CONNECT tunnel (``https://``)
a proxy cannot, so the grade there is ``elite`` unless the echo (behind the tunnel) says
otherwise.

SOCKS5 exits relay bytes and cannot add a header either: they are probed through httpx (the
client the crawl uses for them), names resolved by the exit, and graded from the echo's view of
the client address (the prober's own address there means the exit hides nothing:
*transparent*). Without an echo URL, a SOCKS exit is reachable when it completes the SOCKS5
greeting and, with credentials, accepts them (RFC 1929).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit

import httpx
import phonenumbers
import socksio
import socksio.exceptions

from scrapy_proxystack.config import ANONYMITY_GRADES, SOCKS_SCHEMES
from scrapy_proxystack.redact import redact_url
from scrapy_proxystack.socks_replies import classify

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from scrapy_proxystack.config import ProxyEntry

#: ISO 3166 alpha-2 codes (the phonenumbers library's list of regions; it has no "EU" or "UK").
_ISO_COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)

__all__ = [
    "CLIENT_ADDRESS_HEADERS",
    "PROXY_HEADERS",
    "ProbeResult",
    "expected_country",
    "grade_anonymity",
    "probe_all",
    "probe_one",
]

#: Headers through which proxies pass on the client's address.
CLIENT_ADDRESS_HEADERS: Final = (
    "x-forwarded-for",
    "x-real-ip",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-originating-ip",
)
#: Headers that reveal a proxy without revealing the client.
PROXY_HEADERS: Final = (
    "via",
    "forwarded",
    "x-forwarded-for",
    "proxy-connection",
    "x-proxy-id",
    "x-bluecoat-via",
    "proxy-agent",
)
_MAX_BODY: Final = 1 << 20


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found. ``ok`` means the exit works for its locale."""

    locale: str | None
    exit_id: str
    ok: bool
    latency_ms: int | None = None
    country: str | None = None
    anonymity: str | None = None
    note: str = ""
    left_out: bool = False

    @property
    def status(self) -> str:
        if self.left_out:
            return "left out"
        return "ok" if self.ok else "fail"


def expected_country(locale: str | None, countries: Mapping[str, str]) -> str | None:
    """The countries (comma-separated) a locale's exits may leave from, or None: no check.

    ``PROXYSTACK_LOCALE_COUNTRIES`` first (``{"eu": "de,fr,es"}``; an empty value turns the
    check off); else a locale named by an ISO 3166 country code is that country (``fr``, ``jp``)
    and a ``language-REGION`` name gives its region (``fr-CA`` -> ``ca``). Other names (``eu``,
    ``uk``, ``us-east``) are not checked.
    """
    if locale is None:
        return None
    key = locale.lower()
    if key in countries:
        return countries[key].lower().replace(" ", "") or None
    if len(key) == 2 and key.upper() in _ISO_COUNTRIES:
        return key
    head, sep, region = key.partition("-")
    if sep and head.isalpha() and region.upper() in _ISO_COUNTRIES:
        return region
    return None


def _addresses(value: str) -> list[str]:
    """IP addresses in a header value (``a, b``; ``for=a;proto=http, for="[b]:1"``)."""
    found: list[str] = []
    for raw_part in value.split(","):
        for raw_token in raw_part.split(";"):
            token = raw_token.strip()
            if token.lower().startswith("for="):
                token = token[4:]
            token = token.strip('"').strip()
            if token.startswith("["):
                token = token[1:].partition("]")[0]
            elif token.count(":") == 1:
                token = token.partition(":")[0]
            with contextlib.suppress(ValueError):
                found.append(str(ipaddress.ip_address(token)))
    return found


def grade_anonymity(
    headers: Mapping[str, str], exit_ip: str | None, own_ips: Iterable[str] = ()
) -> str:
    """``transparent``, ``anonymous`` or ``elite`` (see the module docstring)."""
    lower = {k.lower(): v for k, v in headers.items()}
    own = set(own_ips)
    for name in (*CLIENT_ADDRESS_HEADERS, "forwarded"):
        value = lower.get(name)
        if value is None:
            continue
        for address in _addresses(value):
            if address in own or address != exit_ip:
                return "transparent"
    if any(name in lower for name in PROXY_HEADERS):
        return "anonymous"
    return "elite"


def _auth_header(entry: ProxyEntry, encoding: str) -> str:
    """The header Scrapy's HttpProxyMiddleware would send: ``user:password`` in ``encoding``.

    ``encoding`` is the crawl's ``HTTPPROXY_AUTH_ENCODING``: a check that encoded otherwise
    could pass a proxy that answers 407 to the crawl. (The config loader has already refused
    credentials the encoding cannot represent.)
    """
    parts = urlsplit(entry.url)
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode(encoding)).decode("ascii")
    return f"Proxy-Authorization: Basic {token}\r\n"


async def _read_response(
    reader: asyncio.StreamReader,
) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif length is not None and length.isdigit():
        body = await reader.readexactly(min(int(length), _MAX_BODY))
    else:
        body = await reader.read(_MAX_BODY)
    return status, headers, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (RFC 9112, 7.1), up to ``_MAX_BODY`` bytes; trailers are ignored."""
    body = bytearray()
    while len(body) < _MAX_BODY:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)  # ValueError: invalid answer
        if size == 0:
            break
        body += await reader.readexactly(min(size, _MAX_BODY - len(body)))
        if len(body) < _MAX_BODY:
            await reader.readexactly(2)  # the CRLF after each chunk
    return bytes(body)


def _fail_note(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | asyncio.IncompleteReadError | EOFError):
        return "connection closed by the proxy"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, ValueError | IndexError | asyncio.LimitOverrunError):
        return "invalid HTTP answer"
    if isinstance(exc, OSError):
        return f"network error ({type(exc).__name__})"
    return f"error ({type(exc).__name__})"


async def _exchange(
    entry: ProxyEntry, echo_url: str | None, timeout: float, auth_encoding: str = "latin-1"
) -> tuple[int, dict[str, str], bytes, str | None]:
    """One request through ``entry``; returns status, headers, body and our local address."""
    auth = _auth_header(entry, auth_encoding) if entry.has_credentials else ""
    proxy_tls = ssl.create_default_context() if entry.scheme == "https" else None
    target = urlsplit(echo_url) if echo_url else None
    reader, writer = await asyncio.open_connection(
        entry.host, entry.port, ssl=proxy_tls, server_hostname=entry.host if proxy_tls else None
    )
    try:
        local = writer.get_extra_info("sockname")
        local_ip = str(local[0]) if local else None
        if target is not None and target.scheme == "https":
            host = target.hostname or ""
            port = target.port or 443
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            writer.write(
                f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{auth}\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(None, 2)[1])
            if status != 200:
                return status, {}, b"", local_ip
            start_tls = getattr(writer, "start_tls", None)
            if start_tls is None:  # Python 3.10: no TLS upgrade of a stream
                raise ssl.SSLError("an https echo URL needs Python 3.11+")
            await start_tls(ssl.create_default_context(), server_hostname=host)
            path = target.path or "/"
            if target.query:
                path += "?" + target.query
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
                "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
            )
        else:
            url = echo_url or f"http://{entry.host}:{entry.port}/"
            host_header = target.netloc if target is not None else f"{entry.host}:{entry.port}"
            method = "GET" if echo_url else "HEAD"
            writer.write(
                f"{method} {url} HTTP/1.1\r\nHost: {host_header}\r\n{auth}"
                "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
            )
        await writer.drain()
        status, headers, body = await _read_response(reader)
        return status, headers, body, local_ip
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


def _credentials(entry: ProxyEntry) -> tuple[str, str] | None:
    if not entry.has_credentials:
        return None
    parts = urlsplit(entry.url)
    return unquote(parts.username or ""), unquote(parts.password or "")


async def _socks_greeting(entry: ProxyEntry) -> tuple[int, dict[str, str], bytes, str | None]:
    """SOCKS5 method negotiation, then the RFC 1929 login: 200 when the exit lets us in, 407
    when it refuses the credentials (or wants some and the entry has none)."""
    auth = _credentials(entry)
    reader, writer = await asyncio.open_connection(entry.host, entry.port)
    try:
        local = writer.get_extra_info("sockname")
        local_ip = str(local[0]) if local else None
        conn = socksio.socks5.SOCKS5Connection()
        method = (
            socksio.socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED
            if auth is None
            else socksio.socks5.SOCKS5AuthMethod.USERNAME_PASSWORD
        )
        conn.send(socksio.socks5.SOCKS5AuthMethodsRequest([method]))
        writer.write(conn.data_to_send())
        await writer.drain()
        reply = conn.receive_data(await reader.readexactly(2))
        if not isinstance(reply, socksio.socks5.SOCKS5AuthReply) or reply.method != method:
            return 407, {}, b"", local_ip
        if auth is not None:
            user, password = (part.encode("utf-8") for part in auth)
            conn.send(socksio.socks5.SOCKS5UsernamePasswordRequest(user, password))
            writer.write(conn.data_to_send())
            await writer.drain()
            login = conn.receive_data(await reader.readexactly(2))
            if not isinstance(login, socksio.socks5.SOCKS5UsernamePasswordReply) or not (
                login.success
            ):
                return 407, {}, b"", local_ip
        return 200, {}, b"", local_ip
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _socks_exchange(
    entry: ProxyEntry, echo_url: str | None, timeout: float
) -> tuple[int, dict[str, str], bytes, str | None]:
    """One request through a SOCKS5 exit; returns status, headers, body and our address."""
    if echo_url is None:
        return await _socks_greeting(entry)
    bare = redact_url(entry.url)
    if urlsplit(entry.url).port is None:
        bare += f":{entry.port}"
    proxy = httpx.Proxy(bare, auth=_credentials(entry))
    try:
        async with httpx.AsyncClient(proxy=proxy, trust_env=False, timeout=timeout) as client:
            local: list[str] = []

            async def trace(name: str, info: dict[str, Any]) -> None:
                # Our end of the connection to the exit: the prober's own address.
                if name == "socks.connect_tcp.complete":
                    address = info["return_value"].get_extra_info("client_addr")
                    if address:
                        local.append(str(address[0]))

            response = await client.get(
                echo_url, headers={"Accept": "application/json"}, extensions={"trace": trace}
            )
            seen = {k.lower(): v for k, v in response.headers.items()}
            return response.status_code, seen, response.content, local[0] if local else None
    except httpx.ProxyError as exc:
        failure = classify(str(exc))
        if failure.reason in ("socks_auth_refused", "socks_auth_method"):
            return 407, {}, b"", None
        raise _SocksRefusal(f"SOCKS {failure.reason}: {failure.detail}") from None


class _SocksRefusal(Exception):
    """A SOCKS exit refused the echo's address (the note is safe to print)."""


def _socks_fail_note(exc: BaseException) -> str:
    if isinstance(exc, _SocksRefusal):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, socksio.exceptions.ProtocolError):
        return "not a SOCKS5 server"
    if isinstance(exc, httpx.HTTPError):
        return f"error ({type(exc).__name__})"
    return _fail_note(exc)


async def probe_one(
    entry: ProxyEntry,
    *,
    echo_url: str | None,
    timeout: float,
    expected: str | None,
    min_anonymity: str | None,
    auth_encoding: str = "latin-1",
) -> ProbeResult:
    """Probe one exit (see the module docstring for what is judged)."""
    started = time.perf_counter()
    socks = entry.scheme in SOCKS_SCHEMES
    try:
        exchange = (
            _socks_exchange(entry, echo_url, timeout)
            if socks
            else _exchange(entry, echo_url, timeout, auth_encoding)
        )
        status, _headers, body, local_ip = await asyncio.wait_for(exchange, timeout)
    except (OSError, asyncio.TimeoutError, ValueError, IndexError, EOFError) as exc:
        return ProbeResult(entry.locale, entry.id, ok=False, note=_fail_note(exc))
    except (httpx.HTTPError, socksio.exceptions.ProtocolError, _SocksRefusal) as exc:
        return ProbeResult(entry.locale, entry.id, ok=False, note=_socks_fail_note(exc))
    latency = round((time.perf_counter() - started) * 1000)
    if status == 407:
        note = (
            "SOCKS exit rejected the credentials"
            if socks
            else "407: proxy rejected the credentials"
        )
        return ProbeResult(entry.locale, entry.id, False, latency, note=note)
    if status >= 500:
        return ProbeResult(entry.locale, entry.id, False, latency, note=f"proxy answered {status}")
    if echo_url is None:
        return ProbeResult(entry.locale, entry.id, True, latency, note="reachable")
    if status != 200:
        return ProbeResult(entry.locale, entry.id, False, latency, note=f"echo answered {status}")
    try:
        echo: Any = json.loads(body.decode("utf-8"))
        if not isinstance(echo, dict):
            raise TypeError
    except (ValueError, TypeError):
        return ProbeResult(entry.locale, entry.id, False, latency, note="echo did not answer JSON")
    country = echo.get("country")
    country = str(country).lower() if country else None
    seen = echo.get("headers")
    grade = None
    if isinstance(seen, dict):
        exit_ip = echo.get("client_ip")
        grade = grade_anonymity(
            {str(k): str(v) for k, v in seen.items()},
            str(exit_ip) if exit_ip else None,
            (local_ip,) if local_ip else (),
        )
        if socks and exit_ip is not None and str(exit_ip) == local_ip:
            grade = "transparent"  # the site sees the prober's own address
    result = ProbeResult(entry.locale, entry.id, True, latency, country, grade)
    if expected is not None and country is not None and country not in expected.split(","):
        return ProbeResult(
            entry.locale,
            entry.id,
            False,
            latency,
            country,
            grade,
            note=f"exits from {country}, expected {expected}",
        )
    if (
        min_anonymity is not None
        and grade is not None
        and ANONYMITY_GRADES.index(grade) < ANONYMITY_GRADES.index(min_anonymity)
    ):
        return ProbeResult(
            entry.locale,
            entry.id,
            False,
            latency,
            country,
            grade,
            note=f"{grade} is below the locale's min_anonymity {min_anonymity}",
            left_out=True,
        )
    return result


async def probe_all(
    entries: Iterable[tuple[ProxyEntry, str | None, str | None]],
    *,
    echo_url: str | None,
    timeout: float,
    concurrency: int,
    on_done: Callable[[ProbeResult], None] | None = None,
    auth_encoding: str = "latin-1",
) -> list[ProbeResult]:
    """Probe ``(entry, expected country, min anonymity)`` triples, ``concurrency`` at a time.

    Results come back in the order of ``entries``; ``on_done`` is called as each finishes
    (for a progress bar).
    """
    semaphore = asyncio.Semaphore(concurrency)

    async def run(entry: ProxyEntry, expected: str | None, grade: str | None) -> ProbeResult:
        async with semaphore:
            result = await probe_one(
                entry,
                echo_url=echo_url,
                timeout=timeout,
                expected=expected,
                min_anonymity=grade,
                auth_encoding=auth_encoding,
            )
        if on_done is not None:
            on_done(result)
        return result

    return list(await asyncio.gather(*(run(e, c, g) for e, c, g in entries)))
