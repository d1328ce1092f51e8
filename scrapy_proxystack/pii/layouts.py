"""What the layout of a digit cluster allows, worked out once per layout.

A cluster's *layout* is the cluster with every digit written ``0`` ("000-00-0000"). Dates,
addresses, cards, identifiers and phone numbers are told apart by how many digits sit where and
what separates them, which the layout says; only checksums and a few leading-digit rules read
the digits themselves. A page holds a few dozen layouts for hundreds of clusters, so the shape
regexes run once per layout, and what is left per cluster is reading the digits the layout
points at and checking them.

Everything here is exact: a shape that uses only ``\\d``, separators and back-references to
separators matches a layout exactly where it matches the cluster. The two identifier shapes
with a leading-digit rule (``[12]``, ``[2-9]``) are marked ``raw_shape`` and matched against
the cluster itself.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from scrapy_proxystack.pii import _patterns as p
from scrapy_proxystack.pii import identifiers as ids
from scrapy_proxystack.pii import types as t

#: Every digit becomes 0: the layout of a cluster.
LAYOUT = str.maketrans("123456789", "000000000")

# The identifier shapes whose digit classes are narrower than ``\d``.
_DIGIT_RULED = frozenset({t.FR_NIR, t.IN_AADHAAR})
# Deletes what separates the digit groups of a cluster: what is left are its digits.
DROP_SEPARATORS = str.maketrans(dict.fromkeys(" \u00a0-./()+\uff0b"))
_MAX_PHONE_DIGITS = 17
_NANP_LOOSE = re.compile(r"(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")

MIN_DIGITS = {
    t.FR_NIR: 15,
    t.US_SSN: 9,
    t.BR_CPF: 11,
    t.DE_TAX_ID: 11,
    t.PL_PESEL: 11,
    t.IN_AADHAAR: 12,
    t.JP_MY_NUMBER: 12,
    t.NL_BSN: 9,
    t.SE_PERSONNUMMER: 10,
    **{rule.type: rule.min_digits for rule in ids.DIGIT_RULES},
}
#: Identifiers in digit clusters: (type, shape, the written form that needs no context word).
ID_SHAPES: tuple[tuple[str, re.Pattern[str], re.Pattern[str] | None], ...] = (
    *p.ID_SHAPES,
    *((rule.type, rule.shape, None) for rule in ids.DIGIT_RULES),
)
#: Context words that must precede a weakly checked identifier, by type.
ID_CONTEXT: dict[str, p.Keywords] = {
    **p.ID_CONTEXT,
    **{rule.type: rule.context for rule in ids.DIGIT_RULES},
}
_LOOSE_ID_SHAPES: dict[str, re.Pattern[str]] = {
    **p.LOOSE_ID_SHAPES,
    **{rule.type: rule.shape for rule in ids.DIGIT_RULES},
}


class IdShape(NamedTuple):
    """An identifier shape that occurs in a layout, and where."""

    type: str
    raw_shape: re.Pattern[str] | None  # matched on the cluster itself (a leading-digit rule)
    strong: re.Pattern[str] | None  # the written form that needs no context word
    spans: tuple[tuple[int, int, bool], ...]  # (start, end, written in the strong form)


class PhoneVariant(NamedTuple):
    """The cluster, or a prefix of it with trailing groups dropped, as a phone number."""

    length: int  # characters of the cluster
    digits: int  # digits in them
    grouped: bool  # holds a space, dash, dot or closing bracket
    nanp: bool  # may be a NANP 3-3-4 number (its digits decide)


class Layout(NamedTuple):
    """What a cluster's layout allows (see the module docstring)."""

    date_end: int  # end of a leading numeric date (followed by the end or a space), or 0
    ipv4: bool  # holds a dotted quad
    cards: tuple[tuple[int, tuple[int, ...]], ...]  # (start, lengths to try, longest first)
    ids: tuple[IdShape, ...]  # identifier shapes that occur, in the order they are tried
    phone: tuple[PhoneVariant, ...]  # phone readings, longest first, while >= 7 digits
    digits: int  # digits in the cluster
    # The context words of all its identifier types at once: when none of them is before the
    # cluster (most clusters), no type needs its own lookup.
    id_words: p.Keywords | None


def analyse(
    key: str, id_shapes: tuple[tuple[str, re.Pattern[str], re.Pattern[str] | None], ...]
) -> Layout:
    """The layout ``key`` (a cluster with every digit ``0``) read for the identifier shapes
    ``id_shapes`` (those of the types a masker detects)."""
    nd = key.count("0")
    dm = p.NUM_DATE.match(key)
    date_end = dm.end() if dm is not None and (dm.end() == len(key) or key[dm.end()] == " ") else 0
    if date_end:
        return Layout(date_end, False, (), (), (), nd, None)
    if key.count(".") >= 3 and p.IPV4.search(key):
        return Layout(0, True, (), (), (), nd, None)
    cards = (
        tuple(_card_cuts(m.start(), m.group()) for m in p.CARD.finditer(key))
        if len(key) >= 13
        else ()
    )
    shapes = []
    for pii_type, shape, strong in id_shapes:
        if nd < MIN_DIGITS[pii_type] or _LOOSE_ID_SHAPES[pii_type].search(key) is None:
            continue
        if pii_type in _DIGIT_RULED:
            shapes.append(IdShape(pii_type, shape, strong, ()))
            continue
        spans = tuple(
            (m.start(), m.end(), strong is not None and strong.fullmatch(m.group()) is not None)
            for m in shape.finditer(key)
        )
        shapes.append(IdShape(pii_type, None, strong, spans))
    words = [ID_CONTEXT[shape.type] for shape in shapes if shape.type != t.FR_NIR]
    id_words = (
        p.Keywords(
            *(w for k in words for w in k.words),
            acronyms=tuple(a for k in words for a in k.acronyms),
        )
        if words
        else None
    )
    return Layout(0, False, cards, tuple(shapes), _phone_variants(key, nd), nd, id_words)


def _card_cuts(start: int, value: str) -> tuple[int, tuple[int, ...]]:
    # The card shape is greedy ("4111 1111 1111 1111 2024"): trailing groups are dropped until
    # the number checks, as long as it has the digits of a card.
    lengths = []
    while True:
        lengths.append(len(value))
        cut = max(value.rfind(" "), value.rfind("-"))
        value = value[:cut] if cut > 0 else ""
        if len(value) < 13:
            return start, tuple(lengths)


def _phone_variants(key: str, nd: int) -> tuple[PhoneVariant, ...]:
    # Trailing groups are dropped one by one until the rest is a valid number (see
    # ``PiiMasker._phone``); variants with more digits than any phone number are skipped there.
    out = []
    variant = key
    while nd >= 7:
        grouped = (
            variant.count(" ") + variant.count("-") + variant.count(".") + variant.count(")") >= 1
        )
        nanp = len(variant) <= 16 and _NANP_LOOSE.fullmatch(variant) is not None
        out.append(PhoneVariant(len(variant), nd, grouped, nanp))
        cut = variant.rfind(" ")
        if cut <= 0:
            break
        nd -= len(variant[cut:].translate(DROP_SEPARATORS))
        variant = variant[:cut].rstrip(" -./(")
    return tuple(out)
