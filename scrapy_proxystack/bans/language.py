"""Languages: what a locale expects and what a page declares in its ``<html lang>``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from scrapy_proxystack.bans.markup import find_tag

if TYPE_CHECKING:
    from collections.abc import Collection

_LANG_RE = re.compile(rb"""[\s"'/](?:xml:)?lang\s*=\s*["']?\s*([a-z]{2,3})(?![a-z])""")

#: Primary language subtags that name the same language (deprecated ISO 639 codes, macro
#: languages, ISO 639-2 codes some sites use).
_LANG_ALIASES: Final = {
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "mo": "ro",
    "nb": "no",
    "nn": "no",
    "fil": "tl",
    "cmn": "zh",
    "yue": "zh",
    "eng": "en",
    "fra": "fr",
    "fre": "fr",
    "deu": "de",
    "ger": "de",
    "spa": "es",
    "por": "pt",
    "ita": "it",
    "jpn": "ja",
    "rus": "ru",
    "zho": "zh",
    "chi": "zh",
    "nld": "nl",
    "dut": "nl",
    "pol": "pl",
    "kor": "ko",
}
_NO_LANGUAGE: Final = frozenset({"und", "mul", "zxx", "mis"})


def _primary_subtag(tag: str) -> str | None:
    primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    if not (2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha()):
        return None
    if primary in _NO_LANGUAGE:
        return None
    return _LANG_ALIASES.get(primary, primary)


def language_set(value: str | Collection[str]) -> frozenset[str]:
    """Primary language subtags of an ``Accept-Language`` value or of a list of tags:
    ``"en-CA,fr-CA;q=0.9,en;q=0.8"`` is ``{"en", "fr"}``. A bilingual country expects both."""
    if isinstance(value, frozenset):
        return value  # already a set of primary subtags
    tags = value.split(",") if isinstance(value, str) else value
    out = set()
    for tag in tags:
        primary = _primary_subtag(tag.split(";")[0])
        if primary is not None:
            out.add(primary)
    return frozenset(out)


def _declared_primary(low: bytes) -> str | None:
    start = find_tag(low, b"<html", 0, 8192)
    if start == -1:
        return None
    end = low.find(b">", start, start + 2048)
    if end == -1:
        return None
    found = _LANG_RE.search(low, start + 5, end)
    if found is None:
        return None
    return _primary_subtag(found.group(1).decode("ascii"))


def declared_language(body: bytes) -> str | None:
    """The primary subtag of the page's ``<html lang>`` (``fr`` for ``fr-CA``), or None."""
    return _declared_primary(body[:8192].lower())


def lang_mismatch(low: bytes, expected_lang: str | Collection[str]) -> bool:
    """``<html lang>`` (or ``xml:lang``) against the expected languages, primary subtags only:
    ``fr-CA`` accepts ``fr`` and ``fr-FR``. No declaration, no verdict."""
    expected = language_set(expected_lang)
    if not expected:
        return False
    declared = _declared_primary(low)
    return declared is not None and declared not in expected
