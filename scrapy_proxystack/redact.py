"""Turning proxy URLs into something safe to print.

Every log line, stats key, report and exception of the suite that mentions a proxy goes through
:func:`redact_url` (or names a parsed proxy by its id, built from host and port), so a
password (or a user name that encodes an account) never leaves the process. Keeping it in one
tiny module makes it easy to test and hard to bypass.

Everything here is linear in its input: the texts come from configuration files and URLs that
an attacker may shape.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["mask_credentials", "mask_userinfo", "redact_text", "redact_url", "shorten"]

#: A token of free text: a run without whitespace, quotes or angle brackets. Matched once per
#: token (no backtracking over the text), so redacting a megabyte costs milliseconds.
_TOKEN_RE = re.compile(r"[^\s'\"<>]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: Longest excerpt of a configured value that a message quotes: a 10 MB value must not become
#: a 10 MB error, and a cut must not be what reveals a secret (mask first, then shorten).
MAX_SHOWN = 80


def mask_userinfo(value: str) -> str:
    """``value`` with everything before its last ``@`` replaced by ``***`` (scheme kept).

    For one value known to be a URL (a configured proxy): the whole value is one token, so a
    space, tab or quote inside the password cannot split it, and a password holding ``@`` is
    masked up to the real separator.
    """
    if "@" not in value:
        return value
    tail = value.rpartition("@")[2]
    scheme = _SCHEME_RE.match(value)
    prefix = scheme.group() if scheme is not None else ""
    return f"{prefix}***@{tail}"


def mask_credentials(value: str) -> str:
    """``value`` with anything that may be a credential masked, decided on the whole value.

    For configured values quoted in messages. Everything up to the last ``@`` is user-info
    (:func:`mask_userinfo`). What names the host (after that ``@``, after ``scheme://``, or the
    whole value) must read as ``host``, ``host:port`` or ``[v6]:port``; anything else may be
    credentials with the host forgotten or in a vendor's ``host:port:user:password`` form, and is
    masked whole.
    """
    if "@" in value:
        head, _, tail = mask_userinfo(value).rpartition("@")
        return f"{head}@{_mask_authority(tail)}"
    scheme, sep, rest = value.partition("://")
    if not sep:
        return _mask_authority(value)
    return f"{scheme}://{_mask_authority(rest)}"


def _mask_authority(rest: str) -> str:
    """``rest`` (an authority, maybe followed by a path) with the authority masked unless it is
    a plain ``host[:port]``."""
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if authority.startswith("["):  # an IPv6 literal: only a port may follow it
        after = authority.partition("]")[2]
        port = after[1:] if after.startswith(":") else after
    elif authority.count(":") > 1:
        return f"***{rest[end:]}"
    else:
        port = authority.partition(":")[2]
    if port and not (port.isascii() and port.isdigit()):
        return f"***{rest[end:]}"
    return rest


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was. Mask before shortening."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def redact_url(url: str) -> str:
    """Return ``scheme://host:port`` for a proxy URL, dropping any user name and password.

    Unparseable input is reduced with :func:`mask_userinfo` rather than echoed, because a
    broken URL can still contain a password.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return mask_userinfo(url)
    if not parts.scheme or not host:
        return mask_userinfo(url)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}" if port is not None else f"{parts.scheme}://{host}"


def redact_text(text: str) -> str:
    """Replace the user-info of every URL-like token in ``text`` with ``***@``.

    Deliberately broad: any ``something@`` inside a token is masked, because a proxy written
    without a scheme (``user:pw@host:port``) or with a broken one still carries its password.
    Free text cannot say where a password with spaces ends: values known to be URLs go through
    :func:`mask_userinfo` instead.
    """
    if "@" not in text:
        return text
    return _TOKEN_RE.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    return mask_userinfo(match.group())
