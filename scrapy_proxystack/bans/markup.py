"""Reading an HTML page the way a reader sees it, at a cost bounded by the page's size.

- :func:`condense`: the markup window the heuristics read, with long inline scripts and styles
  cut short, so that a 300 KB script or base64 font before the body cannot hide the page;
- :func:`visible_text`: what a reader sees, without scripts, styles, ``noscript``,
  ``template``, inline SVG, comments, hidden elements (``hidden``, ``display:none``,
  ``visibility:hidden``) and the folded part of a closed ``<details>``;
- :func:`headings`: the title and the first ``h1``; :func:`text_size` and :func:`size_class`:
  how much there is to read;
- charset sniffing, so that all of this works on the bytes as they came.

Every function is linear in its input: each block or hidden element is skipped with forward
searches, and an element that is never closed ends the text (the rest is inside it).
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


# --- The window --------------------------------------------------------------------------------

#: Inline scripts and styles longer than this keep only their first bytes in the window: vendor
#: markers (``window._cf_chl_opt``, ``var dd=``, ``window.gokuProps``) open their script.
BLOB_KEEP: Final = 2048
_BLOB_OPEN_RE = re.compile(rb"<(?:([sS][cC][rR][iI][pP][tT])|[sS][tT][yY][lL][eE])(?=[\s>/])")
_SCRIPT_CLOSE_RE = re.compile(rb"</[sS][cC][rR][iI][pP][tT]")
_STYLE_CLOSE_RE = re.compile(rb"</[sS][tT][yY][lL][eE]")


#: ``ends_inside_long_block`` looks at this much of the window's end.
_TAIL: Final = 8192
#: More ``<`` than this in the tail is markup (or garbage), not a script, style or font.
_TAIL_MAX_LT: Final = 128


def ends_inside_long_block(low: bytes) -> bool:
    """Does the lower-cased window ``low`` end inside an inline script or style that fills at
    least its last ``_TAIL`` bytes?

    Then the page's head is mostly one big block (a base64 font, an inlined bundle) and
    reading past it is worth it. A tail holding a script or style tag, any end tag (markup is
    full of them; base64 data, CSS and minified scripts are not) or many ``<`` is no such
    block: a few searches over the tail decide, whatever the page.
    """
    tail = max(0, len(low) - _TAIL)
    if low.find(b"</", tail) != -1 or low.count(b"<", tail) > _TAIL_MAX_LT:
        return False
    return low.rfind(b"<script", tail) == -1 and low.rfind(b"<style", tail) == -1


def condense(body: bytes, window: int, keep: int = BLOB_KEEP) -> tuple[bytes, bool]:
    """``body``'s markup with every inline script or style longer than ``keep`` bytes cut to
    its first ``keep`` bytes, at most ``window`` bytes of it; and whether it reached the end.

    Challenge pages that embed a big script or a base64 font before their text (a site's own
    error page around a Cloudflare block, an "I'm under attack" page with an inline logo) keep
    their title, markers and text inside the window. One regex search finds each block and one
    finds its end, so the cost is linear in the bytes walked, which ``body``'s length bounds.
    """
    parts: list[bytes] = []
    size = pos = 0
    end = len(body)
    while pos < end and size < window:
        budget = min(end, pos + window - size)
        found = _BLOB_OPEN_RE.search(body, pos, budget)
        content = -1 if found is None else body.find(b">", found.end())
        if found is None or content == -1:
            parts.append(body[pos:budget])
            size += budget - pos
            pos = budget
            continue
        content += 1
        closing = (_SCRIPT_CLOSE_RE if found.group(1) else _STYLE_CLOSE_RE).search(body, content)
        close = end if closing is None else closing.start()
        stop = content + keep if close - content > keep else close
        parts.append(body[pos:stop])
        size += stop - pos
        pos = close
    view = b"".join(parts)
    return view[:window], pos >= end and len(view) <= window


# --- Visible text ------------------------------------------------------------------------------
# Everything here works on the raw bytes (``head``) and their ASCII lower-casing (``low``, same
# offsets): markup is ASCII in every charset a page may declare (UTF-16 is re-encoded first),
# and ``bytes`` searches cost a fraction of ``str`` ones on non-ASCII text.

_INNER_TAG_RE = re.compile(rb"<[^<>]*>")
_BLOCK_START_RE = re.compile(rb"<(?:(script|style|template|svg|noscript|details)(?=[\s/>])|!--)")
_BLOCK_END_RE: Final = {
    name: re.compile(rb"</" + name + rb"\s*>")
    for name in (b"script", b"style", b"template", b"svg", b"noscript")
}
_TAG_NAME_RE = re.compile(rb"<([a-z][a-z0-9-]*)")
_OPEN_ATTR_RE = re.compile(rb"\sopen(?=[\s=>/])")
_SUMMARY_RE = re.compile(rb"<summary\b[^>]*>(.*?)</summary\s*>", re.DOTALL)
#: How far back from a hiding attribute its tag may start.
_TAG_REACH: Final = 512
_VOID_ELEMENTS: Final = frozenset(
    {b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta"}
    | {b"param", b"source", b"track", b"wbr"}
)
#: Anti-flicker snippets hide the whole page until a script shows it: that is no hidden part.
_NEVER_HIDDEN: Final = frozenset({b"html", b"head", b"body", b"main"})
#: Elements whose end tag may be left out: the next one of the same name ends them.
_SELF_ENDING: Final = frozenset({b"p", b"li", b"option", b"dt", b"dd", b"tr", b"td", b"th"})
_AFTER_HIDDEN_ATTR: Final = frozenset(b" \t\r\n\f=>/\"'")
_BLANKS: Final = frozenset(b" \t")
_Ranges = list[tuple[int, int]]


@functools.lru_cache(maxsize=128)
def _tag_re(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"<(/?)" + re.escape(name) + rb"(?=[\s/>])")


def _element_end(low: bytes, name: bytes, start: int) -> int:
    """Where the element whose start tag ends at ``start`` ends (same-name nesting counted)."""
    depth = 1
    for tag in _tag_re(name).finditer(low, start):
        if not tag.group(1):
            if name in _SELF_ENDING:
                return tag.start()
            depth += 1
            continue
        depth -= 1
        if depth == 0:
            close = low.find(b">", tag.end())
            return len(low) if close == -1 else close + 1
    return len(low)


def _skip_block(low: bytes, block: re.Match[bytes], kept: _Ranges) -> int:
    """Where the script, style, comment... that ``block`` opens ends. A closed ``<details>``
    shows only its ``<summary>``, whose range goes to ``kept``; an open one is just markup."""
    name = block.group(1)
    if name is None:
        close = low.find(b"-->", block.end())
        return len(low) if close == -1 else close + 3
    if name == b"details":
        tag_end = low.find(b">", block.end())
        if tag_end == -1:
            return len(low)
        if _OPEN_ATTR_RE.search(low, block.end(), tag_end + 1):
            return tag_end + 1
        end = _element_end(low, b"details", tag_end + 1)
        summary = _SUMMARY_RE.search(low, tag_end + 1, end)
        if summary is not None:
            kept.append(summary.span(1))
        return end
    found = _BLOCK_END_RE[name].search(low, block.end())
    return len(low) if found is None else found.end()


def _without_blocks(low: bytes) -> _Ranges:
    """The ranges of ``low`` outside scripts, styles, templates, ``noscript``, inline SVG,
    comments and the folded part of closed ``<details>``; tags and text are kept."""
    kept: _Ranges = []
    pos, size = 0, len(low)
    while pos < size:
        block = _BLOCK_START_RE.search(low, pos)
        if block is None:
            kept.append((pos, size))
            break
        kept.append((pos, block.start()))
        pos = _skip_block(low, block, kept)
    return kept


def _hides(low: bytes, at: int, word: bytes) -> bool:
    """Does ``word`` ("hidden" or "none") at ``at`` hide an element? ``hidden`` as an attribute
    or class token (whitespace before it), or ``display: none`` / ``visibility: hidden``."""
    after = at + len(word)
    if word == b"hidden" and at > 0 and low[at - 1 : at].isspace():
        return after >= len(low) or low[after] in _AFTER_HIDDEN_ATTR
    colon = at - 1
    while colon > 0 and low[colon] in _BLANKS:
        colon -= 1
    if colon <= 0 or low[colon] != ord(":"):
        return False
    name_end = colon
    while name_end > 0 and low[name_end - 1] in _BLANKS:
        name_end -= 1
    return low.endswith(b"visibility" if word == b"hidden" else b"display", 0, name_end)


def _hidden_element(low: bytes, at: int, pos: int) -> tuple[int, int] | None:
    """(start, end) of the element whose start tag holds the hiding attribute at ``at``, or
    None when ``at`` is not in a start tag (prose, an end tag) or hides nothing that shows."""
    lt = low.rfind(b"<", max(pos, at - _TAG_REACH), at)
    name = _TAG_NAME_RE.match(low, lt) if lt != -1 else None
    if name is None or low.rfind(b">", lt, at) != -1:
        return None
    tag = name.group(1)
    if tag in _NEVER_HIDDEN or tag in _VOID_ELEMENTS:
        return None
    close = low.find(b">", at)
    if close == -1:
        return lt, len(low)
    if low[close - 1] == ord("/"):
        return None
    return lt, _element_end(low, tag, close + 1)


def _without_hidden(low: bytes) -> _Ranges:
    """The ranges of ``low`` outside hidden elements. ``bytes.find`` looks for the two words
    that hide (a regex alternation without a literal prefix would cost ten times more); each
    hit is then checked in context, and a hidden element is skipped whole."""
    kept: _Ranges = []
    pos = 0
    cursors = {b"hidden": low.find(b"hidden"), b"none": low.find(b"none")}
    while True:
        live = [(at, word) for word, at in cursors.items() if at != -1]
        if not live:
            break
        at, word = min(live)
        cursors[word] = low.find(word, at + len(word))
        if at < pos or not _hides(low, at, word):
            continue
        element = _hidden_element(low, at, pos)
        if element is not None:
            kept.append((pos, element[0]))
            pos = element[1]
            for other, where in cursors.items():
                if where != -1 and where < pos:
                    cursors[other] = low.find(other, pos)
    kept.append((pos, len(low)))
    return kept


def _join(data: bytes, ranges: _Ranges) -> bytes:
    return b" ".join(data[start:end] for start, end in ranges)


def visible_text(head: bytes, low: bytes, charset: str) -> str:
    """What a reader sees, whitespace left as is (see the module docstring for what is not).

    Blocks go first, so that the words that hide elements are only looked for in markup and
    text, not in scripts and styles; then hidden elements; then the remaining tags.
    """
    blocks = _without_blocks(low)
    head, low = _join(head, blocks), _join(low, blocks)
    shown = _join(head, _without_hidden(low))
    # A window may end inside a tag (a long base64 ``src``): that is no text either.
    last = shown.rfind(b"<")
    if last != -1 and shown.find(b">", last) == -1:
        shown = shown[:last]
    return decode(_INNER_TAG_RE.sub(b" ", shown), charset)


# --- Headings and size -------------------------------------------------------------------------

_HEADING_BYTES: Final = 1024
#: The first ``h1`` is looked for this far into the window; the title anywhere in it.
_H1_SCAN: Final = 16384


@functools.lru_cache(maxsize=16)
def _tag_start_re(name: bytes) -> re.Pattern[bytes]:
    return re.compile(re.escape(name) + rb"(?=[ \t\r\n\f>/])")


def find_tag(low: bytes, name: bytes, start: int = 0, stop: int | None = None) -> int:
    """Index of the first ``<name`` tag (not ``<names``) in ``low[start:stop]``, or -1.

    A regex with the tag as literal prefix: one C-speed pass, however many ``<names`` come
    first."""
    found = _tag_start_re(name).search(low, start, len(low) if stop is None else stop)
    return -1 if found is None else found.start()


def headings(low: bytes, head: bytes, charset: str) -> list[str]:
    """The normalised text of the title (wherever it is in the window) and the first ``h1``.

    The window is bounded and ``find`` runs at memory speed, so the title costs little even
    when a page puts it after a big inline script.
    """
    out = []
    for name, close, stop in ((b"<title", b"</title", len(low)), (b"<h1", b"</h1", _H1_SCAN)):
        start = find_tag(low, name, 0, stop)
        if start == -1:
            continue
        gt = low.find(b">", start, start + 512)
        if gt == -1:
            continue
        end = low.find(close, gt, gt + _HEADING_BYTES)
        if end == -1:
            continue
        text = decode(_INNER_TAG_RE.sub(b" ", head[gt + 1 : end]), charset)
        if text.strip():
            out.append(normalise(text))
    return out


_PASSWORD_RE = re.compile(rb"""type\s*=\s*["']?password""")


def has_password_field(low: bytes) -> bool:
    """A login form: challenge interstitials never ask for a password."""
    return _PASSWORD_RE.search(low) is not None


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
