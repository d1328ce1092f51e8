"""Where an answer sends the client: a challenge endpoint, a login wall, a URL the site names.

A ``Location`` (3xx), a ``Refresh`` header, the final URL of a followed redirect and a
``<meta http-equiv="refresh">`` in the document head are all judged the same way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from urllib.parse import urljoin

from scrapy_proxystack.bans.vendors import CHALLENGE_URL_RE, LOGIN_URL_RE
from scrapy_proxystack.bans.verdicts import CHALLENGE_REDIRECT, LOGIN_REDIRECT, URL_PATTERN

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scrapy_proxystack.bans.verdicts import Verdict

_REFRESH_URL_RE: Final = re.compile(
    r"""^\s*[\d.]*\s*[;,]\s*(?:url\s*=\s*)?["']?\s*([^"'\s>]+)""", re.IGNORECASE
)
_CONTENT_ATTR_RE: Final = re.compile(
    r"""\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)
#: A ``<meta http-equiv="refresh">`` is looked for in the document head only.
_REFRESH_SCAN: Final = 4096


def _join(base: str, target: str) -> str:
    try:
        return urljoin(base, target.strip())
    except ValueError:  # a malformed base (e.g. "http://[") still leaves the target to judge
        return target


def _is_login(url: str) -> bool:
    return LOGIN_URL_RE.search(url.lower()) is not None


def redirect_targets(
    status: int,
    headers: dict[str, str],
    url: str,
    request_url: str | None,
    redirect_location: str | None,
) -> list[str]:
    """Every URL the answer sends the client to: its redirect, the end of a followed redirect,
    its ``Refresh`` header. ``headers`` has lower-case names."""
    targets = []
    if redirect_location:
        targets.append(_join(url, redirect_location))
    elif 300 <= status < 400 and headers.get("location"):
        targets.append(_join(url, headers["location"]))
    if request_url is not None and url != request_url:
        targets.append(url)
    refresh = headers.get("refresh")
    if refresh:
        found = _REFRESH_URL_RE.match(refresh)
        if found is not None:
            targets.append(_join(url, found.group(1)))
    return targets


def judge_targets(
    targets: list[str],
    url: str,
    request_url: str | None,
    site_urls: Sequence[re.Pattern[str]],
    final: str | None,
) -> Verdict | None:
    """A challenge endpoint, a login wall (unless the request itself was for a login page) or
    a URL the site's ``url_patterns`` name; ``final`` is also matched against those."""
    lowered = [t.lower() for t in targets]
    if any(CHALLENGE_URL_RE.search(t) for t in lowered):
        return CHALLENGE_REDIRECT
    if any(LOGIN_URL_RE.search(t) for t in lowered) and not _is_login(
        request_url if request_url is not None else url
    ):
        return LOGIN_REDIRECT
    if site_urls:
        candidates = [*targets, final] if final is not None else targets
        if any(p.search(c) for p in site_urls for c in candidates):
            return URL_PATTERN
    return None


def judge_meta_refresh(
    low: bytes,
    head: bytes,
    url: str,
    request_url: str | None,
    site_urls: Sequence[re.Pattern[str]],
) -> Verdict | None:
    """``<meta http-equiv="refresh" content="0;url=...">`` in the document head is a
    redirect too (SiteGround's captcha and several WAFs send one)."""
    pos = low.find(b"refresh", 0, _REFRESH_SCAN)
    while pos != -1:
        tag_start = low.rfind(b"<meta", max(0, pos - 256), pos)
        tag_end = low.find(b">", pos, pos + 1024)
        if tag_start != -1 and tag_end != -1 and b"http-equiv" in low[tag_start:tag_end]:
            tag = head[tag_start:tag_end].decode("latin-1")
            content = _CONTENT_ATTR_RE.search(tag)
            value = next((g for g in content.groups() if g is not None), "") if content else ""
            found = _REFRESH_URL_RE.match(value)
            if found is not None:
                target = [_join(url, found.group(1))]
                verdict = judge_targets(target, url, request_url, site_urls, final=None)
                if verdict is not None:
                    return verdict
        pos = low.find(b"refresh", pos + 7, _REFRESH_SCAN)
    return None
