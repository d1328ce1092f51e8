"""What a SOCKS5 exit's refusal means: its reply code, and whether only the exit can be at fault.

Plain module (no Scrapy): the SOCKS download handler and ``scrapy proxystack check`` both read
httpcore's ``ProxyError`` texts through it.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["REPLY_TEXTS", "SocksFailure", "classify"]

#: RFC 1928 reply codes, with the text httpcore puts in its ``ProxyError``.
REPLY_TEXTS: dict[int, str] = {
    0x01: "General SOCKS server failure",
    0x02: "Connection not allowed by ruleset",
    0x03: "Network unreachable",
    0x04: "Host unreachable",
    0x05: "Connection refused",
    0x06: "TTL expired",
    0x07: "Command not supported",
    0x08: "Address type not supported",
}
#: Replies saying the exit could not reach the *site*: as ambiguous as an HTTP proxy's 502 (the
#: site may be down), so charged to the (exit, site) pair, not to the exit alone.
TARGET_REPLIES = frozenset({0x03, 0x04, 0x05, 0x06})
_BY_TEXT = {text: code for code, text in REPLY_TEXTS.items()}
_CONNECT_FAILED = "Proxy Server could not connect: "


class SocksFailure(NamedTuple):
    """``reason`` for stats (``socks_reply_05``), a ``detail`` safe to print, the reply code."""

    reason: str
    detail: str
    reply: int | None
    proxy_only: bool


def classify(message: str) -> SocksFailure:
    """The failure httpcore's ``ProxyError`` text describes (it holds no credential)."""
    if message.startswith(_CONNECT_FAILED):
        text = message[len(_CONNECT_FAILED) :].rstrip(".")
        code = _BY_TEXT.get(text)
        if code is None:
            return SocksFailure("socks_reply_unknown", "an unknown reply code", None, True)
        return SocksFailure(
            f"socks_reply_{code:02x}",
            f"reply {code:#04x} ({text})",
            code,
            code not in TARGET_REPLIES,
        )
    if message == "Invalid username/password":
        return SocksFailure(
            "socks_auth_refused", "the exit refused the user name or password", None, True
        )
    if message.startswith("Requested "):
        return SocksFailure(
            "socks_auth_method", "the exit wants another authentication method", None, True
        )
    return SocksFailure("socks_error", "the exit refused the request", None, True)
