"""Turning proxy URLs into something safe to print.

Every log line, stats key, report and exception of the suite that mentions a proxy goes through
:func:`redact_url`, so a password (or a user name that encodes an account) never leaves the
process. Keeping it in one tiny module makes it easy to test and hard to bypass.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_text", "redact_url"]

# The user-info of any URL-looking token, with or without a (well-formed) scheme:
# "http://user:pw@host", "user:pw@host:port" (the usual proxy-list format), "http//u:pw@host".
# Everything from the token's start (after a "scheme://") up to its last "@" is masked.
_USERINFO_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?(?P<userinfo>[^\s'\"<>@]*)@(?=[^\s'\"<>@]*)"
)


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
    """Replace the user-info part of every URL-like token in ``text`` with ``***@``.

    Deliberately broad: any ``something@`` inside a token is masked, because a proxy written
    without a scheme (``user:pw@host:port``) or with a broken one still carries its password.
    """
    return _USERINFO_RE.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    scheme = match.group("scheme") or ""
    return f"{scheme}***@"
