"""Exceptions the suite raises for requests it refuses to send or to hand to the spider.

All but :class:`SocksError` are :class:`~scrapy.exceptions.IgnoreRequest` subclasses, so a
request's errback receives them (with the reason) and Scrapy does not log them as errors.
:class:`SocksError` is a download error: a transport failure of a SOCKS exit, retried through
another exit like any other.
"""

from __future__ import annotations

from scrapy.exceptions import DownloadFailedError, IgnoreRequest

__all__ = ["BannedResponse", "ExitNotReady", "ExitUnavailable", "SessionRetired", "SocksError"]


class ExitUnavailable(IgnoreRequest):
    """No exit of the request's locale (or its fallbacks) can serve it: the request fails closed."""

    def __init__(self, locale: str | None, reason: str) -> None:
        self.locale = locale
        self.reason = reason
        super().__init__(f"no usable exit for locale {locale!r} ({reason}); request not sent")


class SessionRetired(IgnoreRequest):
    """The exit of a sticky session was banned or ejected: the session ends as a whole."""

    def __init__(self, session: str, reason: str) -> None:
        self.session = session
        self.reason = reason
        super().__init__(f"sticky session {session!r} retired ({reason})")


class BannedResponse(IgnoreRequest):
    """A ban/block/challenge answer whose retries ran out: dropped instead of parsed."""

    def __init__(self, url: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"ban ({reason}) for {url}: retries exhausted, response dropped")


class ExitNotReady(IgnoreRequest):
    """Raised by the suite's download handler when no exit is ready at the moment of sending.

    Internal: the suite's ProxyMiddleware turns it into ``retry_request``, a copy that waits
    for an exit outside the downloader. It never reaches a spider.
    """

    def __init__(self, retry_request: object) -> None:
        self.retry_request = retry_request
        super().__init__("no exit ready when the request was sent; it waits for one")


class SocksError(DownloadFailedError):
    """A SOCKS5 exit refused or failed the request before any byte reached the site.

    ``reason`` is what stats and logs show (``socks_reply_05``, ``socks_auth_refused``,
    ``socks_handshake_timeout``...); ``reply`` is the SOCKS reply code when the exit sent one.
    ``proxy_only`` says the failure can only be the exit's (it ejects the exit); the others
    (network or host unreachable, connection refused, TTL expired) may just as well be a site
    that is down, and are charged to the (exit, site) pair first. Never holds a credential.
    """

    def __init__(
        self, reason: str, message: str, *, reply: int | None = None, proxy_only: bool = True
    ) -> None:
        self.reason = reason
        self.reply = reply
        self.proxy_only = proxy_only
        super().__init__(f"SOCKS exit failed ({reason}): {message}")
