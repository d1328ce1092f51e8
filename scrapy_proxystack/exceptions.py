"""Exceptions the suite raises for requests it refuses to send or to hand to the spider.

All are :class:`~scrapy.exceptions.IgnoreRequest` subclasses, so a request's errback receives
them (with the reason) and Scrapy does not log them as errors.
"""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest

__all__ = ["BannedResponse", "ExitNotReady", "ExitUnavailable", "SessionRetired"]


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
