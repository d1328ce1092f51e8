"""Street addresses (a house number and a street word in one of the supported languages) and
written dates of birth (a date after a birth word), both found from a number the scan stopped at."""

from __future__ import annotations

import re

from scrapy_proxystack.pii import _patterns as p
from scrapy_proxystack.pii import types as t

_DIGITS = frozenset("0123456789")
_ADDRESS_NEXT = frozenset(" ,abcdefghijklmnopqrstuvwxyzAB")
_STREET_SUFFIXES = (
    "straße",
    "strasse",
    "str.",
    "weg",
    "gasse",
    "platz",
    "allee",
    "ring",
    "damm",
    "ufer",
    "straat",
    "laan",
    "gracht",
    "plein",
    "singel",
    "kade",
    "dijk",
    "gatan",
    "vägen",
    "väg",
    "gränd",
)
# Street words before a house number. Every alternative of the first pattern starts with a
# capital, so the regex engine skips lower-case prose in its C loop; the Polish abbreviations
# (lower case) are only looked for when the window holds one of their endings.
_STREET_HINT = re.compile(
    r"Calle|C/|Avda|Avenida|Paseo|Plaza|Camino|Carrer|Rua|Travessa|Alameda|Praça|Via|Viale"
    r"|Piazza|Corso|Largo|Vicolo"
)
_STREET_ABBR = re.compile(r"ul\.|al\.|os\.|pl\.")


def street_address(text: str, s: int, e: int, prev: str, nxt: str) -> t.PiiSpan | None:
    """The address around the number ``text[s:e]`` (``prev`` and ``nxt`` are the characters
    around it): before its street (``221 Baker Street``, ``12 rue de la Paix``) or after it
    (``Hauptstraße 12``, ``Calle Mayor 5``, ``ul. Długa 5``)."""
    n = len(text)
    if nxt in _ADDRESS_NEXT and e + 2 < n:
        m = p.ADDRESS_AFTER.match(text, e)
        if m is not None:
            end = m.end()
            return t.PiiSpan(t.STREET_ADDRESS, s, end, text[s:end])
    # A house number after its street starts with a digit (not "(" or "+": "(12 replies)").
    if prev in " ,º" and s >= 4 and text[s] in _DIGITS:
        # Cheap tests first: a street word right before the number, or a street hint
        # within 50 characters. ADDRESS_BEFORE (a search ending at the number) costs more.
        lo = max(0, s - 50)
        if (
            text[max(0, s - 10) : s].rstrip(" ,")[-8:].lower().endswith(_STREET_SUFFIXES)
            or _STREET_HINT.search(text, lo, s)
            or (("l." in (w := text[lo:s]) or "s." in w) and _STREET_ABBR.search(w))
        ):
            m = p.ADDRESS_BEFORE.search(text, max(0, s - 50), s)
            if m is not None:
                end = e
                if end < n and text[end] in "abcdefgh" and not text[end + 1 : end + 2].isalpha():
                    end += 1  # 12a
                return t.PiiSpan(t.STREET_ADDRESS, m.start(), end, text[m.start() : end])
    return None


def written_dob(text: str, s: int, e: int) -> t.PiiSpan | None:
    """A written date of birth that ends with the year ``text[s:e]`` ("born 12 March 1985") or
    a Japanese one that starts with it ("1985年3月12日生まれ")."""
    start = -1
    end = e
    # WRITTEN_DATE_BEFORE ends with a month, a day or "de" before the year: the word there
    # says whether the search (the costly part, on every year of a page) can succeed.
    word = (text[max(0, s - 16) : s].split() or [""])[-1].rstrip(".,").lower()
    m = (
        p.WRITTEN_DATE_BEFORE.search(text, max(0, s - 32), s)
        if word[:1].isdigit() or word == "de" or p.MONTH.fullmatch(word)
        else None
    )
    if m is not None:
        start = m.start()
    else:
        j = p.JA_DATE.match(text, s)
        if j is not None:
            start, end = s, j.end()
            if text.startswith(("生まれ", "生"), end):
                return t.PiiSpan(t.DATE_OF_BIRTH, start, end, text[start:end])
    if start < 0 or not p.BIRTH_CONTEXT.before(text, start):
        return None
    return t.PiiSpan(t.DATE_OF_BIRTH, start, end, text[start:end])


def year_at_edge(text: str, s: int, e: int, raw: str) -> t.PiiSpan | None:
    """A year that starts a cluster can end a written date of birth ("born 12 March 1985
    2 children"), one that ends it can start a Japanese one ("... 1985年3月12日生"): read
    on its own, as it is once the rest of the cluster is masked."""
    if raw[4:5] == " " and p.YEAR.fullmatch(raw, 0, 4):
        span = written_dob(text, s, s + 4)
        if span is not None:
            return span
    if raw[-5:-4] == " " and p.YEAR.fullmatch(raw, len(raw) - 4):
        return written_dob(text, e - 4, e)
    return None
