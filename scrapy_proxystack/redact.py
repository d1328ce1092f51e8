"""Turning proxy URLs into something safe to print.

Every log line, stats key, report and exception of the suite that mentions a proxy goes through
:func:`redact_url`, so a password (or a user name that encodes an account) never leaves the
process. Keeping it in one tiny module makes it easy to test and hard to bypass.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_text", "redact_url"]

# userinfo in any URL-looking token: scheme://user[:pass]@host
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def redact_url(url: str) -> str:
    """Return ``scheme://host:port`` for a proxy URL, dropping any user name and password.

    Unparseable input is reduced with :func:`redact_text` rather than echoed, because a broken
    URL can still contain a password.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return redact_text(url)
    if not parts.scheme or not host:
        return redact_text(url)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}" if port is not None else f"{parts.scheme}://{host}"


def redact_text(text: str) -> str:
    """Replace the user-info part of every URL inside ``text`` with ``***@``."""
    return _USERINFO_RE.sub(r"\g<scheme>***@", text)
