"""Operations on sorted, disjoint span lists: adding a span, merging two lists, and adding every
other occurrence of the detected values."""

from __future__ import annotations

from bisect import bisect_left

from scrapy_proxystack.pii import types as t

_REPEAT_FACTOR = 16
_REPEAT_MIN_REACH = 256


def push(out: list[t.PiiSpan], span: t.PiiSpan) -> None:
    # A later, longer match (an e-mail whose local part held digits) replaces what it covers.
    while out and out[-1].end > span.start:
        out.pop()
    out.append(span)


def merge(spans: list[t.PiiSpan], extra: list[t.PiiSpan]) -> list[t.PiiSpan]:
    """Add the ``extra`` spans that overlap no span of ``spans`` (sorted, disjoint; they win)."""
    if not extra:
        return spans
    starts = [x.start for x in spans]
    keep = []
    for x in extra:
        # Sorted and disjoint: if any span overlaps x, the last one starting before x.end does.
        k = bisect_left(starts, x.end)
        if k == 0 or spans[k - 1].end <= x.start:
            keep.append(x)
    out: list[t.PiiSpan] = []
    for x in sorted([*spans, *keep], key=lambda x: x.start):
        if out and x.start < out[-1].end:
            continue
        out.append(x)
    return out


def repeats(text: str, spans: list[t.PiiSpan]) -> list[t.PiiSpan]:
    """Add every other occurrence of a detected value (even one the rules would not confirm
    there, such as a phone number glued to a word), so no detected value survives in the
    output.

    Each distinct value is looked for in the whole text while that costs at most
    ``_REPEAT_FACTOR`` characters searched per character of text; beyond that (a large text
    with many distinct values), in a window around its first occurrence that shrinks with the
    number of values. The search stays linear in the text whatever it holds.
    """
    firsts: dict[str, t.PiiSpan] = {}
    for span in spans:
        firsts.setdefault(span.value, span)
    n = len(text)
    reach = max(_REPEAT_MIN_REACH, _REPEAT_FACTOR * n // (2 * len(firsts) or 1))
    extra: list[t.PiiSpan] = []
    starts: list[int] | None = None
    for value, span in firsts.items():
        lo, hi = (0, n) if reach >= n else (max(0, span.start - reach), min(n, span.end + reach))
        i = text.find(value, lo, hi)
        if i == span.start:
            i = text.find(value, span.start + 1, hi)
        if i < 0:
            continue  # the usual case: the value occurs once
        if starts is None:
            starts = [x.start for x in spans]
        i = text.find(value, lo, hi)
        while i >= 0:
            j = i + len(value)
            # An occurrence that overlaps a span found is left out here rather than by merge():
            # a text holding one value thousands of times would otherwise make a span of each
            # occurrence again on every call.
            k = bisect_left(starts, j)
            if k == 0 or spans[k - 1].end <= i:
                extra.append(t.PiiSpan(span.type, i, j, value))
            i = text.find(value, j, hi)
    return merge(spans, extra)
