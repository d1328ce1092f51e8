"""The masking engine: one scan over the text, validators only on candidates.

How a text is processed:

1. ``_SCAN_PASSING`` (one compiled pattern whose first element is a character class) visits
   only the characters that can start PII: digits, ``@`` (also full-width), ``+``, brackets.
   Prose in between is skipped by the regex engine's C loop, and so are the candidates that
   need no look whatever surrounds them (a digit cluster glued to a word, "(12 replies)"): a
   match runs over them and stops at the next candidate that needs Python. A cluster glued to
   a word stops it only where the token has the shape of a lower-case identifier
   (``rssmra85t10a562s``), which is then read after its label (see ``identifiers``).
2. Each such candidate is a *cluster*: a run of digit groups, an ``@`` or an obfuscated
   ``[at]``. Cheap tests on the cluster and its neighbours (a date? too short?) reject most of
   them before any validator runs; what its layout allows (cards, identifier shapes, phone
   readings) is worked out once per layout (see ``layouts``).
3. Survivors go to the validators (Luhn, mod-97, stdnum checksums, ``phonenumbers``) and, for
   weakly checked identifiers, to a look-behind for context words.
4. Every other occurrence of a detected value is masked too. When one of them sits inside a
   longer token the scan had read as a whole, the text is read again with the values masked,
   as a second pass over the output would be, so masking stays idempotent.

Nothing here imports Scrapy. A ``PiiMasker`` holds only immutable configuration (and a bounded
table of cluster layouts, see ``_layout``), and the caches it uses are ``functools.lru_cache``
(thread-safe), so one instance can serve many threads.

What the engine reads lives beside it, by data: the patterns and context words in
``_patterns``, the identifier table in ``identifiers``, e-mail forms in ``emails``, addresses and
dates of birth in ``places``, span lists in ``spans``, what the layout of a digit cluster
allows (its dates, cards, identifier shapes and phone readings) in ``layouts``, checksums in
``validators`` and ``phones``. This module stays whole because it is one classifier: the branches of
``_number`` share the cluster, its neighbours and where the scan resumes, and splitting them
would pass that state between modules on every candidate, the hottest path of the engine.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, NamedTuple

from scrapy_proxystack.pii import _patterns as p
from scrapy_proxystack.pii import identifiers as ids
from scrapy_proxystack.pii import layouts as lay
from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii.emails import find_email, worded_emails
from scrapy_proxystack.pii.phones import (
    DEFAULT_LANGUAGES,
    is_international_phone,
    is_national_phone,
    regions_for,
)
from scrapy_proxystack.pii.phones import prepare as prepare_phones
from scrapy_proxystack.pii.places import street_address, written_dob, year_at_edge
from scrapy_proxystack.pii.spans import merge, push, repeats
from scrapy_proxystack.pii.validators import (
    compact,
    ip_kind,
    is_bitcoin,
    is_card,
    is_ethereum,
    is_gb_nino,
    is_iban,
    is_isbn,
    is_mac,
    is_national_id,
)

#: A pluggable person-name detector: returns ``(start, end)`` pairs of names in the text.
NameDetector = Callable[[str], Iterable[tuple[int, int]]]

_NON_DIGITS = re.compile(r"[^0-9]")
_NANP = re.compile(r"(?:\(\d{3}\) ?|\d{3}[ .\-])[2-9]\d{2}[ .\-]\d{4}")
_CONTEXT_WINDOW = 60
_EMAIL_KINDS = frozenset({"at", "oat", "pct", "ent"})
_MAX_PHONE_DIGITS = 17
_SETTLE_ROUNDS = 3
_HEX_LETTERS = frozenset("abcdefABCDEF")
_DIGITS = frozenset("0123456789")
# What separates and ends the groups of a cluster (an IPv6 address's colons included).
_GROUP_SEPARATORS = frozenset(" \u00a0-./():")
_IN_IPV6 = _DIGITS | frozenset("abcdefABCDEF:")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")
_LETTERS = _UPPER | _LOWER
# Letters right before a cluster (or before a space or dash before it) that can start an
# identifier: upper case, and x, y, z for lower-case NIEs.
_LETTER_LED_PREV = _UPPER | frozenset("xyz")
_ASCII_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_TOKEN_START = _ASCII_ALNUM | frozenset("(+")
_GLUE = frozenset("-_/\\.,")
# A cluster right after one of these is part of a word, a longer number or a placeholder.
# (x, y, z are left to _number: they start lower-case NIEs, x9613851n.)
_GLUED = frozenset("0123456789abcdefghijklmnopqrstuvw_]")
# What can follow a house number before its street (see ``places.street_address``).
_ADDRESS_NEXT = frozenset(" ,abcdefghijklmnopqrstuvwxyzAB")


# (type, shape, how many characters before the digits it starts, context words or None)
_LETTER_LED: tuple[tuple[str, re.Pattern[str], int, p.Keywords | None], ...] = (
    (t.IBAN, p.IBAN, 2, None),
    (t.GB_NINO, p.NINO, 2, None),
    (t.GB_NINO, p.NINO, 3, None),
    (t.IT_FISCAL_CODE, p.FISCAL_CODE, 6, None),
    (t.ES_NIE, p.NIE, 1, None),
    (t.ES_NIE, p.NIE, 2, None),
    *((rule.type, rule.shape, rule.back, rule.context) for rule in ids.LETTER_RULES),
)


_MAX_LAYOUTS = 4096
# A lower-case letter-led identifier with a separator after its letters (de 136695976,
# b-0339803-9) has at least seven characters in its cluster, and one or two letters before the
# separator (see _short_word_before).
_MIN_CASED_SEPARATED = 7

#: The one-pass scan (see ``_patterns.scan_passing``), stopping at lower-case identifiers.
_SCAN_PASSING = p.scan_passing(ids.CASED_STOPS)
# Whether a lower-case letter-led identifier can start before the digit at ``pos - 1`` (Final:
# read as a C global by the compiled engine, on its hottest paths).
_CASED_AT: Final = ids.CASED_AT.match


class MaskResult(NamedTuple):
    """The masked text and the spans (in the *original* text) that were replaced."""

    text: str
    spans: list[t.PiiSpan]


class PiiMasker:
    """Find and mask personal data in text.

    ``PiiMasker()`` detects every rule-based type (see ``types.DEFAULT_TYPES``) and replaces each
    value with a typed placeholder such as ``[EMAIL]``.

    :param types: the types to detect (default: ``types.DEFAULT_TYPES``; add ``"person"`` for
        names in context).
    :param operators: per-type operator, overriding ``default_operator``.
    :param default_operator: ``"mask"`` (placeholder), ``"partial"`` (keep the last
        ``partial_keep`` characters, or the domain of an e-mail), ``"pseudonymize"`` (keyed
        HMAC token, e.g. ``[EMAIL:3fa2c1d0]``); ``"remove_field"`` and ``"drop_item"`` are item
        policies and mask like ``"mask"`` on plain text.
    :param languages: languages whose national phone formats are accepted (see
        ``phones.LANGUAGE_REGIONS``).
    :param private_ips: also mask private, loopback and link-local addresses.
    :param hmac_key: key of the pseudonyms; required by ``"pseudonymize"``.
    :param name_detector: optional person-name detector (an NER model, for example); without
        one, ``"person"`` uses built-in rules (a title or "my name is" before a capitalised name).
    """

    def __init__(
        self,
        *,
        types: Iterable[str] | None = None,
        operators: Mapping[str, str] | None = None,
        default_operator: str = t.MASK,
        languages: Iterable[str] | None = None,
        private_ips: bool = False,
        hmac_key: bytes | str | None = None,
        partial_keep: int = 4,
        name_detector: NameDetector | None = None,
    ) -> None:
        chosen = tuple(t.DEFAULT_TYPES if types is None else types)
        unknown = [x for x in chosen if x not in t.ALL_TYPES]
        if unknown:
            raise ValueError(f"unknown PII type(s) {unknown!r}; expected some of {t.ALL_TYPES}")
        self._types = frozenset(chosen)
        ops = dict(operators or {})
        for name, op in [("default", default_operator), *ops.items()]:
            if name != "default" and name not in t.ALL_TYPES:
                raise ValueError(f"operator given for unknown PII type {name!r}")
            if op not in t.OPERATORS:
                raise ValueError(
                    f"unknown operator {op!r} for {name}; expected one of {t.OPERATORS}"
                )
        self._default_op = default_operator
        self._ops = ops
        needs_key = default_operator == t.PSEUDONYMIZE or t.PSEUDONYMIZE in ops.values()
        if isinstance(hmac_key, str):
            hmac_key = hmac_key.encode()
        if needs_key and not hmac_key:
            raise ValueError("the 'pseudonymize' operator needs a non-empty hmac_key")
        self._key = hmac_key or b""
        self._regions = regions_for(DEFAULT_LANGUAGES if languages is None else languages)
        prepare_phones(self._regions)
        self._private_ips = private_ips
        if partial_keep < 0:
            raise ValueError(f"partial_keep must be >= 0, got {partial_keep!r}")
        self._keep = partial_keep
        self._all_placeholders = {x: t.placeholder(x) for x in t.ALL_TYPES}
        # The replacement of every type whose operator writes its placeholder whatever the value.
        self._placeholders = {
            x: self._all_placeholders[x]
            for x in self._types
            if self.operator_for(x) not in (t.PSEUDONYMIZE, t.PARTIAL)
        }
        self._name_detector = name_detector
        self._id_shapes = tuple(s for s in lay.ID_SHAPES if s[0] in self._types)
        # What the layout of a cluster allows, by layout ("000 00 0000"): see _layout.
        self._layouts: dict[str, lay.Layout] = {}
        self._letter_tries = tuple(x for x in _LETTER_LED if x[0] in self._types)
        self._letter_led = bool(self._letter_tries) or t.ES_DNI in self._types
        # Identifiers that end in letters, by the length of their digit cluster: a cluster
        # glued to a letter is looked at only for the rules of its length.
        self._trailing_letter = _by_cluster_length(ids.TRAILING_LETTER_RULES, self._types)
        # The same in lower or mixed case, after a label (see ``identifiers``).
        self._cased_letter = tuple(r for r in ids.CASED_LETTER_RULES if r.type in self._types)
        self._cased_trailing = _by_cluster_length(ids.CASED_TRAILING_RULES, self._types)
        self._want_address = t.STREET_ADDRESS in self._types
        self._want_ip = t.IP_ADDRESS in self._types
        self._want_dni = t.ES_DNI in self._types
        self._want_dob = t.DATE_OF_BIRTH in self._types
        self._want_crypto = t.CRYPTO_WALLET in self._types
        self._want_mac = t.MAC_ADDRESS in self._types
        self._want_card = t.CREDIT_CARD in self._types
        self._want_phone = t.PHONE in self._types

    @property
    def types(self) -> frozenset[str]:
        """The types this masker detects."""
        return self._types

    def operator_for(self, pii_type: str) -> str:
        """The operator applied to values of ``pii_type``."""
        return self._ops.get(pii_type, self._default_op)

    # --- public API ---------------------------------------------------------------------------

    def find(self, text: str) -> list[t.PiiSpan]:
        """Typed, non-overlapping spans of personal data in ``text``, in order."""
        if not text:
            return []
        spans = self._scan(text)
        if t.PERSON in self._types:
            spans = merge(spans, self._persons(text))
        if spans:
            spans = self._settle(text, spans)
        return spans

    def _settle(self, text: str, spans: list[t.PiiSpan]) -> list[t.PiiSpan]:
        """Add the other occurrences of the detected values, then what a second pass over the
        masked text would find: an occurrence inside a longer token (a glued word, a number
        cluster) becomes a placeholder, and the rest of that token reads differently. Looking
        again keeps masking idempotent; it only runs when a value occurs more than once, or
        when one sits inside a longer token ("010000 0/401111111111": once the identifier is
        masked, "010000 0" is a cluster of its own; see ``_inside_token``)."""
        found = repeats(text, spans)
        inside = _inside_token(text, found)
        for _ in range(_SETTLE_ROUNDS):
            if len(found) == len(spans) and not inside:
                break
            inside = False
            spans = merge(found, self._rescan(text, found))
            found = repeats(text, spans)
        return found

    def _rescan(self, text: str, spans: list[t.PiiSpan]) -> list[t.PiiSpan]:
        """Spans found in ``text`` with ``spans`` replaced by placeholders, in the coordinates of
        ``text`` (only those that lie within the original text between placeholders)."""
        # Where each piece of text between spans starts in the masked text, as machine integers
        # (it starts after the previous span in the text): a text holding tens of thousands of
        # values ("1::1::1::...") keeps a small, linear peak memory.
        starts = array("q")
        parts: list[str] = []
        size = last = 0
        placeholders = self._all_placeholders
        for span in spans:
            starts.append(size)
            parts.append(text[last : span.start])
            parts.append(placeholders[span.type])
            size += span.start - last + len(parts[-1])
            last = span.end
        starts.append(size)
        parts.append(text[last:])
        out = []
        for span in self._scan("".join(parts)):
            k = bisect_right(starts, span.start) - 1
            origin = spans[k - 1].end if k else 0
            length = (spans[k].start if k < len(spans) else len(text)) - origin
            if span.end <= starts[k] + length:
                shift = origin - starts[k]
                out.append(t.PiiSpan(span.type, span.start + shift, span.end + shift, span.value))
        return out

    def mask(self, text: str) -> str:
        """``text`` with every detected value replaced by its operator's output."""
        return self.scan(text).text

    def scan(self, text: str) -> MaskResult:
        """Masked text and the spans found, in one pass (what the item pipeline uses)."""
        spans = self.find(text)
        if not spans:
            return MaskResult(text, spans)
        parts: list[str] = []
        last = 0
        fixed = self._placeholders
        for span in spans:
            parts.append(text[last : span.start])
            parts.append(fixed.get(span.type) or self.replacement(span))
            last = span.end
        parts.append(text[last:])
        return MaskResult("".join(parts), spans)

    def replacement(self, span: t.PiiSpan) -> str:
        """What replaces one span under its type's operator."""
        op = self.operator_for(span.type)
        if op == t.PSEUDONYMIZE:
            return f"[{span.type.upper()}:{self.pseudonym(span.type, span.value)}]"
        if op == t.PARTIAL:
            return self._partial(span)
        return t.placeholder(span.type)

    def pseudonym(self, pii_type: str, value: str) -> str:
        """Keyed token of a value: equal values (up to formatting) give equal tokens."""
        norm = value.strip().lower() if pii_type == t.EMAIL else compact(value)
        if pii_type == t.GB_UTR:
            norm = norm.removesuffix("K")  # the payment reference form of the same UTR
        msg = f"{pii_type}\x00{norm}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:8]

    # --- operators ----------------------------------------------------------------------------

    def _partial(self, span: t.PiiSpan) -> str:
        value = span.value
        if span.type == t.EMAIL:
            at = max(value.rfind("@"), value.rfind("\uff20"))
            return "***" + value[at:] if at > 0 else t.placeholder(span.type)
        if span.type in (t.DATE_OF_BIRTH, t.STREET_ADDRESS, t.PERSON) or self._keep == 0:
            return t.placeholder(span.type)
        alnum = sum(ch.isalnum() for ch in value)
        hide = alnum - self._keep
        if hide <= 0:
            return t.placeholder(span.type)
        out = []
        for ch in value:
            if ch.isalnum() and hide > 0:
                out.append("*")
                hide -= 1
            else:
                out.append(ch)
        return "".join(out)

    # --- scanning -----------------------------------------------------------------------------

    def _scan(self, text: str) -> list[t.PiiSpan]:
        out: list[t.PiiSpan] = []
        want_email = t.EMAIL in self._types
        want_address = self._want_address
        n = len(text)
        finditer = _SCAN_PASSING.finditer
        # The matches are read in order while scanning resumes where the last one ended; after
        # a value that ends elsewhere (a phone number followed by a year, an e-mail), from
        # there. A match runs over the candidates that need no look (see _SCAN_PASSING) and
        # ends with one that does, which starts one character before its group.
        resume: int | None = 0
        while resume is not None:
            matches = finditer(text, resume)
            resume = None
            for m in matches:
                kind = m.lastgroup
                if kind == "end" or kind is None or kind == "ph":
                    continue
                s = start = m.start(kind) - 1
                e = m.end()
                if kind in _EMAIL_KINDS:
                    if want_email:
                        span = find_email(text, s, e, encoded=kind[0] in "pe")
                        if span is not None:
                            push(out, span)
                            resume = span.end
                            break
                    continue
                if kind == "pnum" and text[s] == "(":
                    if not text[s + 1 : s + 2].isdigit():
                        s += 1  # "(+33 ...": the bracket is not part of the number
                    elif e - s < 6 and not (
                        want_address
                        and e + 2 < n
                        and text[e] in _ADDRESS_NEXT
                        and p.ADDRESS_AFTER.match(text, e) is not None
                    ):
                        # "(12 replies)", "(3x)", "(9%)": a short number in brackets is only
                        # ever a house number before its street (see _short_number); prose is
                        # full of them, so they are passed over without a call.
                        continue
                elif s and text[s - 1] in _GLUED:
                    if (
                        text[s - 1] == "c"  # the common rejection stays one test: bech32 is rare
                        and text[s] == "1"
                        and s >= 2
                        and text[s - 2] == "b"
                        and (s == 2 or text[s - 3] not in _ASCII_ALNUM)
                        and self._want_crypto
                    ):
                        span = self._wallet(text, s - 2)  # bech32: bc1q...
                        if span is not None:
                            push(out, span)
                            resume = span.end
                            break
                    # The scan stops at a glued cluster only in the shape of a lower-case
                    # identifier (or when no candidate follows it).
                    if (
                        self._cased_letter
                        and text[s - 1] in _LOWER
                        and _CASED_AT(text, s + 1) is not None
                    ):
                        span, end = self._cased_letter_led(text, s, out[-1].end if out else 0)
                        if span is not None:
                            push(out, span)
                        if end > e:
                            resume = end
                            break
                    continue  # the most common rejection, without a call (see _number)
                found, end = self._number(text, s, e, out[-1].end if out else 0)
                for span in found:
                    push(out, span)
                if end != e:
                    resume = end if end > start else start + 1
                    if resume != e:
                        break
                    resume = None
        # Two substring tests (C memchr loops) rather than a regex search: " dot " is rare.
        if want_email and (" dot " in text or " DOT " in text):
            out = merge(out, worded_emails(text))
        return out

    def _number(self, text: str, s: int, e: int, floor: int = 0) -> tuple[Sequence[t.PiiSpan], int]:
        """Classify one digit cluster ``text[s:e]``; returns spans and where scanning resumes.
        ``floor`` is the end of the last value found: a context word before it is read as the
        second pass over the masked text would read it, not at all (see ``_long_number``)."""
        prev = text[s - 1] if s else " "
        # Identifiers that start with letters: IBAN, NINO, codice fiscale, NIE (in lower case
        # too: x9613851n, hh 01 02 03 d).
        if s and (
            prev in _LETTER_LED_PREV
            or (
                prev in "- "
                and s >= 2
                and (
                    text[s - 2] in _LETTER_LED_PREV
                    or (
                        (e - s == 6 or e - s == 8) and prev == " " and _lower_nino_shape(text, s, e)
                    )
                )
            )
        ):
            if self._letter_led:
                span, resume = self._letter_led_id(text, s)
                if span is not None:
                    return (span,), span.end
                if resume > e:
                    return (), resume  # an IBAN-shaped run that failed its checksum
                # De89 3704 ..., RSSMRA85t10a562s
                if self._cased_letter and _CASED_AT(text, s + 1) is not None:
                    span, end = self._cased_letter_led(text, s, floor)
                    if span is not None:
                        return (span,), end
                    if end > e:
                        return (), end
            if prev in _LETTERS or (prev in _GLUE and text[s - 2] in _ASCII_ALNUM):
                return (), e  # glued to a word: a model number, a SKU, a hash
        elif prev in _ASCII_ALNUM or prev == "]":
            return (), e  # glued to a word, or to a placeholder (idempotence)
        elif (
            e - s >= _MIN_CASED_SEPARATED
            and prev in "- "
            and s >= 2
            and text[s - 2] in _LOWER
            and self._cased_letter
            and _short_word_before(text, s)
            and _CASED_AT(text, s + 1) is not None
            and (found := self._cased_letter_led(text, s, floor))[0] is not None
        ):
            return (found[0],), found[1]  # de 136695976, b-0339803-9 after their labels
        elif prev in _GLUE and s >= 2 and text[s - 2] in _ASCII_ALNUM:
            return (), e  # the tail of a token: INV-2024-..., a UUID group, v1.2, a path
        nxt = text[e] if e < len(text) else " "
        # Most clusters end at a space or punctuation: one test keeps them off these paths.
        if nxt in _LETTERS or nxt == ":":
            if text[s] in "013" and nxt != ":" and self._want_crypto:
                span = self._wallet(text, s)
                if span is not None:
                    return (span,), span.end
            if self._want_mac and e - s <= 4 and text[s + 2 : s + 3] in (":", "-"):
                m = p.MAC.match(text, s)
                if m is not None and is_mac(m.group()):
                    return (t.PiiSpan(t.MAC_ADDRESS, s, m.end(), m.group()),), m.end()
        if e - s < 6:
            return self._short_number(text, s, e, prev, nxt)
        if (nxt == ":" or (nxt in _HEX_LETTERS and ":" in text[e : e + 4])) and self._want_ip:
            span_end = self._ipv6(text, s)
            if span_end is not None:
                return span_end
        if nxt == "@" and p.IFACE.match(text, e):
            nxt = " "  # 8.8.8.8@eth0: an interface name, not a glued word
        if nxt in _ASCII_ALNUM or nxt == "@" or nxt == ":":
            # A labelled identifier first: a Singapore business UEN (12345678A) is written as
            # a DNI is, and one that fails its own check is not a DNI either.
            if nxt in _LETTERS:
                if nxt in _UPPER and (rules := self._trailing_letter.get(e - s)):
                    span, labelled = self._trailing_letter_id(text, s, rules, floor)
                    if span is not None:
                        return (span,), span.end
                    if labelled:
                        return (), e
                if rules := self._cased_trailing.get(e - s):
                    span, labelled = self._trailing_letter_id(text, s, rules, floor, cased=True)
                    if span is not None:
                        return (span,), span.end
                    if labelled:
                        return (), e
            if nxt in _LETTERS and self._want_dni:
                m = p.DNI.match(text, s)
                if m and is_national_id(t.ES_DNI, compact(m.group())):
                    return (t.PiiSpan(t.ES_DNI, s, m.end(), m.group()),), m.end()
            if nxt != ":":
                return (), e  # glued to letters: 3px, 2nd, a hash
        if nxt in "-_" and e + 1 < len(text) and text[e + 1] in _ASCII_ALNUM:
            if self._want_dni and text[e + 1] in _LETTERS:
                m = p.DNI.match(text, s)
                if m and is_national_id(t.ES_DNI, compact(m.group())):
                    return (t.PiiSpan(t.ES_DNI, s, m.end(), m.group()),), m.end()
            return (), e  # 2024-abc, 123-ABC: part of a longer token
        return self._long_number(text, s, e, text[s:e], floor)

    def _short_number(
        self, text: str, s: int, e: int, prev: str, nxt: str
    ) -> tuple[Sequence[t.PiiSpan], int]:
        """Clusters of up to five characters: most numbers of any page (counts, prices, years,
        postcodes), so this path is kept short. Only a house number, a birth year or the first
        group of an IPv6 address can start here (a DNI needs eight digits)."""
        if self._want_address:
            span = street_address(text, s, e, prev, nxt)
            if span is not None:
                return (span,), span.end
        if nxt in _LETTERS:
            if nxt in _UPPER and (rules := self._trailing_letter.get(e - s)):
                span, _ = self._trailing_letter_id(text, s, rules, 0)
                if span is not None:
                    return (span,), span.end  # 27AAPFU0939F1ZV
            if rules := self._cased_trailing.get(e - s):
                span, _ = self._trailing_letter_id(text, s, rules, 0, cased=True)
                if span is not None:
                    return (span,), span.end  # 27aapfu0939f1zv after its label
        if nxt == ":" or nxt in _HEX_LETTERS:
            # An address group has at most four hex digits: its colon follows within four.
            if self._want_ip and (nxt == ":" or ":" in text[e : e + 4]):
                span_end = self._ipv6(text, s)
                if span_end is not None:
                    return span_end
            if nxt != ":":
                return (), e
        elif nxt in _ASCII_ALNUM or nxt == "@":
            return (), e  # glued to letters: 3px, 2nd
        elif nxt in "-_" and e + 1 < len(text) and text[e + 1] in _ASCII_ALNUM:
            return (), e  # 2024-abc: part of a longer token
        if e - s == 4 and self._want_dob and p.YEAR.fullmatch(text, s, e):
            span = written_dob(text, s, e)
            if span is not None:
                return (span,), span.end
        return (), e

    def _wallet(self, text: str, s: int) -> t.PiiSpan | None:
        """A Bitcoin (checksum verified) or Ethereum address starting at ``s``."""
        if text[s] == "0":
            m = p.ETH.match(text, s)
            ok = m is not None and is_ethereum(m.group())
        else:
            m = (p.BTC_BECH32 if text[s] == "b" else p.BTC_BASE58).match(text, s)
            ok = m is not None and is_bitcoin(m.group())
        if not ok or m is None:
            return None
        return t.PiiSpan(t.CRYPTO_WALLET, s, m.end(), m.group())

    def _ipv6(self, text: str, s: int) -> tuple[Sequence[t.PiiSpan], int] | None:
        m = p.IPV6.match(text, s)
        if m is None:
            return None
        value = m.group()
        global_unicast = text[s] in "23"
        if not global_unicast and "::" not in value and value.count(":") != 7:
            return None  # a time of day (10:30:00), not an address
        span = self._ip(text, s, m.end(), value)
        if span is None and value.count(":") > 2:  # 2a00:...:1c2d:443, a port
            value = value[: value.rfind(":")]
            span = self._ip(text, s, s + len(value), value)
        if span is None and not global_unicast:
            return None  # read as numbers, as before addresses outside 2000::/3 were known
        return ((span,) if span else ()), m.end()

    def _layout(self, raw: str) -> lay.Layout:
        """What the cluster ``raw`` allows, looked up by its layout (see ``layouts``): a page
        has few layouts, so the shape regexes run once per layout rather than once per cluster.
        The table is bounded (emptied when full)."""
        key = raw.translate(lay.LAYOUT)
        layout = self._layouts.get(key)
        if layout is None:
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.clear()
            layout = self._layouts[key] = lay.analyse(key, self._id_shapes)
        return layout

    def _long_number(
        self, text: str, s: int, e: int, raw: str, floor: int = 0
    ) -> tuple[Sequence[t.PiiSpan], int]:
        layout = self._layout(raw)
        if layout.date_end:
            return self._date(text, s, layout.date_end)
        if layout.ipv4:
            return self._ipv4s(text, s, e, raw)
        cards = self._cards(s, raw, layout.cards) if layout.cards and self._want_card else ()
        found: list[t.PiiSpan] = []
        # An identifier after its label wins over a card number on the same digits (a
        # 13-digit South African ID can pass Luhn with a Visa prefix).
        blocked = bool(layout.ids) and self._ids(text, s, raw, layout, floor, found)
        if cards and not blocked:
            found.extend(
                c for c in cards if not any(f.start < c.end and c.start < f.end for f in found)
            )
        if found:
            found.sort(key=lambda x: x.start)
            return found, found[-1].end
        if layout.phone and self._want_phone and not blocked:
            span = self._phone(text, s, raw, layout.phone)
            if span is not None:
                return [span], span.end
        if self._want_dob:
            span = year_at_edge(text, s, e, raw)
            if span is not None:
                return (span,), span.end
        return (), e

    def _date(self, text: str, s: int, date_end: int) -> tuple[Sequence[t.PiiSpan], int]:
        """A cluster that starts with a numeric date: a date of birth after a birth word."""
        end = s + date_end
        if self._want_dob and _has_context(p.BIRTH_CONTEXT, text, s):
            return [t.PiiSpan(t.DATE_OF_BIRTH, s, end, text[s:end])], end
        # A plain date or timestamp; what follows it in the cluster (a time, a year in a
        # written date) is scanned on its own, as it would be once the date is masked.
        return (), end

    def _ipv4s(self, text: str, s: int, e: int, raw: str) -> tuple[Sequence[t.PiiSpan], int]:
        """A cluster that holds a dotted quad: addresses (scanning resumes after the last one),
        or a version such as 2.4.1.187."""
        found: list[t.PiiSpan] = []
        if self._want_ip:
            for m in p.IPV4.finditer(raw):
                span = self._ip(text, s + m.start(), s + m.end(), m.group())
                if span is not None:
                    found.append(span)
        return found, (found[-1].end if found else e)

    @staticmethod
    def _cards(s: int, raw: str, cuts: tuple[tuple[int, tuple[int, ...]], ...]) -> list[t.PiiSpan]:
        """Card numbers among the card-shaped runs of a cluster: each is tried with trailing
        groups dropped until it checks (``layouts`` lists the lengths)."""
        cards = []
        for start, lengths in cuts:
            for length in lengths:
                value = raw[start : start + length]
                if is_card(value.replace(" ", "").replace("-", "")):
                    cards.append(t.PiiSpan(t.CREDIT_CARD, s + start, s + start + length, value))
                    break
        return cards

    def _ids(
        self,
        text: str,
        s: int,
        raw: str,
        layout: lay.Layout,
        floor: int,
        found: list[t.PiiSpan],
    ) -> bool:
        """Add the identifiers of a cluster to ``found``; True when a labelled look-alike of
        an identifier blocks the looser readings (a card, a phone number) of its digits."""
        ctx: dict[str, bool] = {}
        blocked = False
        window: str | None = None  # read once per cluster
        for pii_type, raw_shape, strong, spans in layout.ids:
            if raw_shape is not None:
                spans = tuple(
                    (
                        m.start(),
                        m.end(),
                        strong is not None and strong.fullmatch(m.group()) is not None,
                    )
                    for m in raw_shape.finditer(raw)
                )
            for a, b, strong_form in spans:
                ms, me = s + a, s + b
                if found and any(f.start < me and ms < f.end for f in found):
                    continue
                value = raw[a:b]
                # The context test is a few substring checks; a checksum costs more, and most
                # candidates (phone numbers, order numbers) fail for want of context.
                if pii_type != t.FR_NIR and not strong_form:
                    if pii_type not in ctx:
                        if window is None:
                            window = _id_window(text, s, floor)
                            if layout.id_words is not None and not layout.id_words.in_window(
                                window
                            ):
                                ctx = dict.fromkeys(lay.ID_CONTEXT, False)
                                continue
                        ctx[pii_type] = lay.ID_CONTEXT[pii_type].in_window(window)
                    if not ctx[pii_type]:
                        continue
                checked = (
                    value.replace(" ", "").upper()
                    if pii_type in ids.KEEP_FORM
                    else _NON_DIGITS.sub("", value)
                )
                if not is_national_id(pii_type, checked):
                    # A labelled identifier that fails its own check is a look-alike of that
                    # type: no looser rule of another type takes it. One only written the
                    # way that type is (123-45-6789) is a phone number only after a phone word.
                    if a == 0 and ctx.get(pii_type):
                        blocked = True
                    elif a == 0 and b == len(raw) and strong is not None:
                        blocked = blocked or not _has_context(p.PHONE_CONTEXT, text, s)
                    continue
                found.append(t.PiiSpan(pii_type, ms, me, value))
        return blocked

    def _phone(
        self, text: str, s: int, raw: str, variants: tuple[lay.PhoneVariant, ...]
    ) -> t.PiiSpan | None:
        digits = _NON_DIGITS.sub("", raw)
        if len(digits) in (10, 13) and digits[:3] in ("978", "979") and is_isbn(digits):
            return None
        intl = raw[0] in "+\uff0b" or raw.startswith(("(+", "00"))
        context: bool | None = None
        # Trailing groups are dropped one by one until the rest is a valid number (the
        # variants come from the layout); one with more digits than any phone number (17, or
        # 15 after "00") is not checked at all.
        for length, nd, grouped, nanp in variants:
            if nd > _MAX_PHONE_DIGITS:
                continue
            if intl:
                vd = digits[:nd]  # the variant is a prefix of raw
                ok = is_international_phone(vd[2:] if raw[0] == "0" else vd)
            else:
                # Without a context word, only the usual shapes of a national number count:
                # a trunk prefix 0, an area code in brackets, or the NANP 3-3-4 layout. Bare
                # or oddly grouped digits are too often order numbers valid in *some* region.
                shaped = grouped and raw[0] in "0("
                shaped = shaped or (nanp and _NANP.fullmatch(raw, 0, length) is not None)
                if not shaped and context is None:
                    context = _has_context(p.PHONE_CONTEXT, text, s)
                ok = (shaped or bool(context)) and is_national_phone(digits[:nd], self._regions)
            if ok:
                return t.PiiSpan(t.PHONE, s, s + length, raw[:length])
        return None

    def _ip(self, text: str, s: int, e: int, value: str) -> t.PiiSpan | None:
        kind = ip_kind(value)
        if kind is None or (kind == "private" and not self._private_ips):
            return None
        if "." in value and ":" not in value:
            after = text[e : e + 2]
            if after[:1] in ("-", "+") or (after[:1] == "." and after[1:].isalnum()):
                return None  # 2.4.1.187-beta
            labelled = p.IP_LABEL.search(text, max(0, s - 16), s) is not None
            if not labelled and _has_context(p.VERSION_CONTEXT, text, s, 24):
                return None
        return t.PiiSpan(t.IP_ADDRESS, s, e, value)

    def _letter_led_id(self, text: str, s: int) -> tuple[t.PiiSpan | None, int]:
        """A letter-led identifier whose digits start at ``s``, and where scanning resumes: after
        it, or after an IBAN-shaped run whose checksum failed (its digit groups are not read
        again as phone numbers), or at ``s``."""
        rejected = s
        for pii_type, rx, back, context in self._letter_tries:
            start = s - back
            if start < 0 or (start and text[start - 1] in _ASCII_ALNUM):
                continue
            m = rx.match(text, start)
            if m is None:
                continue
            if context is not None and not context.before(text, start):
                continue
            value = m.group()
            if pii_type == t.IBAN:
                span = _iban_span(text, start, value)
                if span is not None:
                    return span, span.end
                rejected = max(rejected, m.end())
                continue
            c = compact(value)
            if pii_type == t.GB_NINO:
                ok = is_gb_nino(c) and (
                    value[:2].isupper() or _has_context(p.NINO_CONTEXT, text, start)
                )
            else:
                ok = is_national_id(pii_type, c)
            if ok:
                return t.PiiSpan(pii_type, start, m.end(), value), m.end()
        return None, rejected

    def _cased_letter_led(self, text: str, s: int, floor: int) -> tuple[t.PiiSpan | None, int]:
        """A letter-led identifier in lower or mixed case whose digits start at ``s``, after
        its label (``identifiers.CASED_LETTER_RULES``), and where scanning resumes (as in
        ``_letter_led_id``: after a labelled IBAN-shaped run that failed its checksum too, its
        label read as a second pass would, with the value ending at ``floor`` masked).
        Its check is that of the value in upper case, which has the same length (the shapes
        are ASCII). Called where ``identifiers.CASED_AT`` matches after the first digit (the
        callers test it first: most candidates fail it)."""
        rejected = s
        for rule in self._cased_letter:
            start = s - rule.back
            if start < 0 or (start and text[start - 1] in _ASCII_ALNUM):
                continue
            m = rule.shape.match(text, start)
            if m is None:
                continue
            value = m.group()
            # Upper-case values are the upper-case rules' (with their own context words).
            if value.isupper() or rule.context is None or not rule.context.before(text, start):
                continue
            if rule.type == t.IBAN:
                span = _iban_span(text, start, value)
                if span is not None:
                    return span, span.end
                if rule.context.in_window(_id_window(text, start, floor)):
                    rejected = max(rejected, m.end())
            elif is_national_id(rule.type, compact(value)):
                return t.PiiSpan(rule.type, start, m.end(), value), m.end()
        return None, rejected

    @staticmethod
    def _trailing_letter_id(
        text: str, s: int, rules: tuple[ids.TrailingRule, ...], floor: int, cased: bool = False
    ) -> tuple[t.PiiSpan | None, bool]:
        """An identifier whose digits at ``s`` are followed by letters (a GSTIN, a HETU), among
        the ``rules`` of its cluster's length; and whether a value in the shape of one of them
        after its context word failed its check (a look-alike of that type: its context word
        read as a second pass would, with the value ending at ``floor`` masked, so that the
        verdict is the same on the masked text). ``cased``: the rules of lower and mixed case,
        whose values are checked upper-cased."""
        labelled = False
        for rule in rules:
            m = rule.shape.match(text, s)
            if m is None:
                continue
            value = m.group()
            if cased and value.isupper():
                continue  # the upper-case rules'
            if rule.context is not None and not rule.context.before(text, s):
                continue
            checked = value.upper() if rule.type in ids.KEEP_FORM else compact(value)
            if is_national_id(rule.type, checked):
                return t.PiiSpan(rule.type, s, m.end(), value), False
            labelled = labelled or (
                rule.context is not None and rule.context.in_window(_id_window(text, s, floor))
            )
        return None, labelled

    def _persons(self, text: str) -> list[t.PiiSpan]:
        if self._name_detector is not None:
            pairs: Iterable[tuple[int, int]] = self._name_detector(text)
        else:
            pairs = (m.span("name") for m in p.PERSON_CONTEXT.finditer(text))
        return [t.PiiSpan(t.PERSON, a, b, text[a:b]) for a, b in pairs if 0 <= a < b <= len(text)]


def _by_cluster_length(
    rules: Iterable[ids.TrailingRule], types: frozenset[str]
) -> dict[int, tuple[ids.TrailingRule, ...]]:
    """The rules of the chosen types, by the length of the digit cluster each one reads."""
    out: dict[int, list[ids.TrailingRule]] = {}
    for rule in rules:
        if rule.type in types:
            for length in rule.clusters:
                out.setdefault(length, []).append(rule)
    return {length: tuple(found) for length, found in out.items()}


def _inside_token(text: str, spans: list[t.PiiSpan]) -> bool:
    """Whether a span starts right after a digit group and its separator, or ends right before
    a separator and more of a token: once it is a placeholder, what is around it reads
    differently ("010000 0,4111111111111111": the card is no longer the tail of a token)."""
    n = len(text)
    return any(
        (
            x.start >= 2
            and text[x.start - 2] in (_IN_IPV6 if text[x.start - 1] == ":" else _DIGITS)
            and text[x.start - 1] in _GROUP_SEPARATORS
        )
        or (x.end + 1 < n and text[x.end] in _GLUE and text[x.end + 1] in _TOKEN_START)
        for x in spans
    )


def _lower_nino_shape(text: str, s: int, e: int) -> bool:
    """Whether ``text`` around the cluster ``text[s:e]`` can be a lower-case NINO (two letters,
    a space, ``dd dd dd`` or ``dddddd``, a suffix letter): a cheap test that keeps prose such
    as "in 2024" off the identifier path."""
    return (
        s >= 3
        and text[s - 3] in _LETTERS
        and text[s - 2] in _LETTERS
        and (e - s == 6 or e - s == 8)
        and text[e : e + 1] in ("a", "b", "c", "d", " ")
    )


def _short_word_before(text: str, s: int) -> bool:
    """Whether the word before the separator at ``s - 1`` has one or two letters (the country
    code of a VAT id, the entity letter of a CIF), a cheap test that keeps the numbers of prose
    ("posted 2011-10-24", "from 204.177.197.3") off the lower-case identifier path."""
    if s < 3 or text[s - 3] not in _ASCII_ALNUM:
        return True
    return text[s - 3] in _LETTERS and (s < 4 or text[s - 4] not in _ASCII_ALNUM)


def _id_window(text: str, s: int, floor: int) -> str:
    """The context window of the identifiers of a cluster at ``s``: a label before a value
    found on the same line (ending at ``floor``) is cut off, as the placeholder's "]" cuts it
    off once masked."""
    raw_window = p.context_window(text, s)
    if floor > s - len(raw_window):
        raw_window = text[floor:s]
    return raw_window


def _has_context(words: p.Keywords, text: str, s: int, window: int = _CONTEXT_WINDOW) -> bool:
    return words.before(text, s, window)


def _iban_span(text: str, start: int, value: str) -> t.PiiSpan | None:
    # The shape is greedy ("... 0130 00 BIC"): drop trailing chunks until the checksum holds.
    for _ in range(4):
        if is_iban(compact(value)):
            return t.PiiSpan(t.IBAN, start, start + len(value), value)
        cut = max(value.rfind(" "), value.rfind("-"))
        if cut <= 4:
            return None
        value = value[:cut]
    return None
