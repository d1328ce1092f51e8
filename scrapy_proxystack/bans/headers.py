"""Response headers as the classifier reads them, and ``Retry-After``."""

from __future__ import annotations

import math
import re
import time
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The only headers the classifier looks at.
WANTED_HEADERS: Final = frozenset(
    {
        "content-type",
        "location",
        "retry-after",
        "refresh",
        "cf-mitigated",
        "x-amzn-waf-action",
        "www-authenticate",
    }
)
_SECONDS_RE = re.compile(r"[+-]?\d{1,12}(?:\.\d{1,9})?")


def header_text(value: object) -> str:
    """Header values as ``str``, whatever the caller had (``str``, ``bytes``, a list of them)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else ""


def wanted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of :data:`WANTED_HEADERS`, names lower-cased, values as ``str``."""
    wanted: dict[str, str] = {}
    for key, value in headers.items():
        name = header_text(key).strip().lower()
        if name in WANTED_HEADERS:
            wanted[name] = header_text(value)
    return wanted


def parse_retry_after(value: str | bytes | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date.

    Dates in the past and negative delays give ``0.0`` (the server has nothing against an
    immediate retry); anything unparsable gives ``None`` rather than a guess. ``now`` (epoch
    seconds) is for tests.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if _SECONDS_RE.fullmatch(text):
        return max(0.0, float(text))
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000" and asctime dates: RFC 9110 says they are UTC
            when = when.replace(tzinfo=timezone.utc)
        delta = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, delta) if math.isfinite(delta) else None
