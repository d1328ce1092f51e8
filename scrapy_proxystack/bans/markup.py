"""Reading an HTML page the way a reader sees it, at a cost bounded by the page's size.

- :func:`visible_text`: what a reader sees, without tags, scripts, styles, templates, inline
  SVG and comments;
- :func:`headings`: the title and the first ``h1``; :func:`text_size` and :func:`size_class`:
  how much there is to read;
- charset sniffing, so that all of this works on the bytes as they came.

Every function is linear in its input: each block is skipped with one forward search, and an
unclosed block ends the text (the rest is not visible either).
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import Final

from scrapy_proxystack.bans.phrases import normalise

# --- Charsets ----------------------------------------------------------------------------------

_CT_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?([a-z0-9_.:-]{1,40})""")
_META_CHARSET_RE = re.compile(rb"""<meta[^<>]{0,200}?charset\s*=\s*["']?([a-z0-9_.:-]{1,40})""")


@functools.lru_cache(maxsize=64)
def codec(name: str) -> str:
    """The Python codec for a declared charset, or ``utf-8`` when it is unknown or unusable."""
    try:
        info = codecs.lookup(name)
        b"<p>\xff\xfe</p>".decode(info.name, "replace")  # text codec that accepts "replace"?
    except (LookupError, UnicodeError, TypeError, ValueError):
        return "utf-8"
    return info.name


def declared_charset(content_type: str) -> str | None:
    found = _CT_CHARSET_RE.search(content_type)
    return found.group(1) if found is not None else None


def sniffed_charset(low_head: bytes) -> str:
    """``<meta charset>`` or ``<meta http-equiv content="...; charset=...">``; else UTF-8."""
    found = _META_CHARSET_RE.search(low_head)
    return found.group(1).decode("ascii") if found is not None else "utf-8"


def decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        return data.decode("utf-8", "replace")


_NON_HTML_MARKERS: Final = (
    "json",
    "javascript",
    "ecmascript",
    "css",
    "csv",
    "xml",
    "image/",
    "audio/",
    "video/",
    "font/",
    "pdf",
    "zip",
    "protobuf",
    "msgpack",
)


def is_html(content_type: str, head: bytes) -> bool:
    """Declared HTML; or no useful type and a body that starts like markup."""
    if "html" in content_type:
        return True
    if any(marker in content_type for marker in _NON_HTML_MARKERS):
        return False
    start = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")) or (
        start.startswith(b"<") and b"<html" in head[:2048].lower()
    )


# --- Visible text ------------------------------------------------------------------------------

_INNER_TAG_RE = re.compile(r"<[^<>]*>")
_BLOCK_START_RE = re.compile(r"<(?:(script|style|template|svg)\b|!--)", re.IGNORECASE)
_BLOCK_END_RE: Final = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE)
    for name in ("script", "style", "template", "svg")
}


def visible_text(text: str) -> str:
    """What a reader sees, whitespace left as is: no tags, scripts, styles, templates, inline
    SVG or comments.

    Linear time whatever the input: each block is skipped with one forward search, and an
    unclosed block ends the text (the rest is not visible either).
    """
    parts = []
    pos, size = 0, len(text)
    while pos < size:
        match = _BLOCK_START_RE.search(text, pos)
        if match is None:
            parts.append(text[pos:])
            break
        parts.append(text[pos : match.start()])
        name = match.group(1)
        if name is None:
            close = text.find("-->", match.end())
            pos = size if close == -1 else close + 3
        else:
            end = _BLOCK_END_RE[name.lower()].search(text, match.end())
            pos = size if end is None else end.end()
    return _INNER_TAG_RE.sub(" ", " ".join(parts))


# --- Headings and size -------------------------------------------------------------------------

_HEADING_BYTES: Final = 1024
_HEADING_SCAN: Final = 16384


_TAG_BOUNDARY: Final = frozenset(b" \t\r\n\f>/")


def find_tag(low: bytes, name: bytes, start: int = 0, stop: int | None = None) -> int:
    """Index of the first ``<name`` tag (not ``<names``) in ``low[start:stop]``, or -1."""
    stop = len(low) if stop is None else stop
    pos = low.find(name, start, stop)
    while pos != -1:
        after = pos + len(name)
        if after < len(low) and low[after] in _TAG_BOUNDARY:
            return pos
        pos = low.find(name, after, stop)
    return -1


def headings(low: bytes, head: bytes, charset: str) -> list[str]:
    """The normalised text of the title and the first ``h1``.

    Both are looked for in the first ``_HEADING_SCAN`` bytes only: that is where an
    interstitial has them, and it bounds the cost on long pages.
    """
    out = []
    for name, close in ((b"<title", b"</title"), (b"<h1", b"</h1")):
        start = find_tag(low, name, 0, _HEADING_SCAN)
        if start == -1:
            continue
        gt = low.find(b">", start, start + 512)
        if gt == -1:
            continue
        end = low.find(close, gt, gt + _HEADING_BYTES)
        if end == -1:
            continue
        text = _INNER_TAG_RE.sub(" ", decode(head[gt + 1 : end], charset))
        if text.strip():
            out.append(normalise(text))
    return out


_CJK_RUN_RE = re.compile("[\u3000-\u9fff\uac00-\ud7af\uf900-\uffef]+")
_URL_TOKEN_RE = re.compile(r"\S*://\S*")

#: Visible-text size classes, in characters other than whitespace (see text_size).
TINY_TEXT: Final = 400
SHORT_TEXT: Final = 1000
MEDIUM_TEXT: Final = 6500
TINY, SHORT, MEDIUM, LONG = range(4)


def text_size(visible: str) -> int:
    """How much there is to read: the visible characters other than whitespace.

    URLs do not count (block pages print the blocked URL, sometimes twice), and a CJK character
    counts twice, as it carries about as much as a short word. Only ``str`` methods run over
    the whole text: this is measured on every page that shows a marker.
    """
    size = len(visible) - sum(visible.count(space) for space in " \n\t\r")
    pos = visible.find("://")
    while pos != -1:
        start = pos
        while start > 0 and not visible[start - 1].isspace():
            start -= 1
        url = _URL_TOKEN_RE.match(visible, start)
        end = url.end() if url is not None else pos + 3
        size -= end - start
        pos = visible.find("://", end)
    if not visible.isascii():
        size += sum(map(len, _CJK_RUN_RE.findall(visible)))
    return size


def size_class(size: int, truncated: bool) -> int:
    if size > MEDIUM_TEXT:
        return LONG
    if truncated or size > SHORT_TEXT:
        return MEDIUM
    return SHORT if size > TINY_TEXT else TINY
