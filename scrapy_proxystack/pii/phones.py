"""Phone number confirmation with Google's libphonenumber data (the ``phonenumbers`` package).

International numbers (``+CC`` or ``00CC``) are checked against the country they name. National
numbers carry no country, so they are tried against the regions of the configured languages; that
is why the language list matters for recall and for speed.

``phonenumbers.parse`` plus ``is_valid_number`` costs 20-90 microseconds per candidate and region,
most of it in general-purpose work (free-form input, RFC 3966, extensions, vanity letters) that a
run of digits does not need. So the checks below apply the same rules to the same metadata
directly: the country code, the national prefix (stripped, or rewritten by a transform rule), the
length classes and the per-type number patterns, in the order ``parse`` and
``_number_type_helper`` apply them. The rare inputs that take another route (an international
dialling prefix inside a national number, a national prefix inside an international one) go to
``phonenumbers`` itself, and a test compares both paths on thousands of numbers of every region.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING, NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from scrapy_proxystack.pii.types import CACHE_SIZE

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Regions whose national numbering is tried for each language, most populous first.
LANGUAGE_REGIONS: dict[str, tuple[str, ...]] = {
    "en": ("US", "GB", "CA", "AU", "IE", "IN", "NZ", "ZA", "SG"),
    "fr": ("FR", "BE", "CH", "CA", "LU"),
    "de": ("DE", "AT", "CH"),
    "es": ("ES", "MX", "AR", "CO", "CL", "PE"),
    "pt": ("BR", "PT"),
    "it": ("IT", "CH"),
    "nl": ("NL", "BE"),
    "ja": ("JP",),
    "pl": ("PL",),
    "sv": ("SE",),
    "da": ("DK",),
    "fi": ("FI",),
    "no": ("NO",),
    "cs": ("CZ",),
    "ru": ("RU",),
    "tr": ("TR",),
    "zh": ("CN", "TW", "HK"),
    "ko": ("KR",),
    "hi": ("IN",),
}

DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "es", "pt", "it", "nl", "ja", "pl", "sv")

_NON_GEO = "001"  # phonenumbers' region code of global services (+800, +808, +870, ...)
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' bounds on a national significant number


def regions_for(languages: Iterable[str]) -> tuple[str, ...]:
    """The ordered, de-duplicated regions of some languages; unknown languages raise ValueError."""
    regions: list[str] = []
    for lang in languages:
        key = lang.lower().split("-")[0].split("_")[0]
        if key not in LANGUAGE_REGIONS:
            known = ", ".join(sorted(LANGUAGE_REGIONS))
            raise ValueError(f"unknown language {lang!r}; expected one of: {known}")
        regions.extend(r for r in LANGUAGE_REGIONS[key] if r not in regions)
    return tuple(regions)


class _Plan(NamedTuple):
    """The numbering plan of one region, compiled once from the phonenumbers metadata."""

    region: str
    cc: str
    lengths: tuple[int, ...]  # possible lengths of a national significant number
    local_only: tuple[int, ...]  # lengths dialable only locally (no area code)
    general: re.Pattern[str] | None  # every valid number matches it
    types: tuple[tuple[tuple[int, ...], re.Pattern[str]], ...]  # fixed line, mobile, toll free...
    prefix: re.Pattern[str] | None  # national prefix (and carrier code) for parsing
    transform: str  # rewrite of a national prefix that carries digits (AR, BR, JP)
    idd: re.Pattern[str] | None  # international dialling prefix
    leading: re.Pattern[str] | None  # leading digits that pick this region within its code
    gate: re.Pattern[str] | None  # matches (at least) every national number valid here


def _pattern(text: str | None) -> re.Pattern[str] | None:
    return re.compile(text) if text else None


_TYPE_FIELDS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


@cache
def _plan(region: str, cc: int) -> _Plan | None:
    if region == _NON_GEO:
        md = PhoneMetadata.metadata_for_nongeo_region(cc, None)
    else:
        md = PhoneMetadata.metadata_for_region(region, None)
    if md is None:
        return None
    descs = [getattr(md, name) for name in _TYPE_FIELDS]
    if not md.same_mobile_and_fixed_line_pattern:
        descs.append(md.mobile)
    types = tuple(
        (tuple(d.possible_length), re.compile(d.national_number_pattern))
        for d in descs
        if d is not None and d.national_number_pattern
    )
    general = md.general_desc
    general_rx = general.national_number_pattern if general is not None else None
    prefix = md.national_prefix_for_parsing or None
    transform = md.national_prefix_transform_rule or ""
    gate = None
    if general_rx:
        # A national number can be valid only if it is a (prefix +) general-pattern number, or
        # takes one of the rare routes (IDD first, country code first). A transform rule
        # rewrites the digits after its prefix: any number with that prefix passes.
        if not prefix:
            parts = [general_rx]
        elif transform:
            parts = [general_rx, f"(?:{prefix}).*"]
        else:
            parts = [f"(?:{prefix})?(?:{general_rx})"]
        parts.append(f"{md.country_code}.*")
        if md.international_prefix:
            parts.append(f"(?:{md.international_prefix}).*")
        gate = re.compile("|".join(f"(?:{p})" for p in parts))
    return _Plan(
        region=region,
        cc=str(md.country_code),
        lengths=tuple(general.possible_length) if general is not None else (),
        local_only=tuple(general.possible_length_local_only) if general is not None else (),
        general=_pattern(general_rx),
        types=types,
        prefix=_pattern(prefix),
        transform=transform,
        idd=_pattern(md.international_prefix),
        leading=None if md.leading_digits is None else re.compile(md.leading_digits),
        gate=gate,
    )


def _known(nsn: str, plan: _Plan) -> bool:
    """phonenumbers' ``_number_type_helper(nsn, metadata) != UNKNOWN``."""
    n = len(nsn)
    if (plan.lengths and n not in plan.lengths) or plan.general is None:
        return False
    if plan.general.fullmatch(nsn) is None:
        return False
    return any((not lengths or n in lengths) and rx.fullmatch(nsn) for lengths, rx in plan.types)


def _strip_prefix(number: str, plan: _Plan) -> str | None:
    """``_maybe_strip_national_prefix_carrier_code``: the number without its national prefix
    (or rewritten by the region's transform rule), or itself when stripping would make a viable
    number unviable; None when phonenumbers should decide."""
    if plan.prefix is None or not number:
        return number
    m = plan.prefix.match(number)
    if m is None:
        return number
    groups = m.groups()
    if plan.transform and not groups:
        return None
    if plan.transform and groups[-1] is not None:
        result = plan.prefix.sub(plan.transform, number, count=1)
    else:
        result = number[m.end() :]
    if _viable(number, plan) and not _viable(result, plan):
        return number
    return result


def _length(nsn: str, plan: _Plan) -> str:
    """``_test_number_length``: "possible", "local", "short", "long" or "invalid"."""
    n = len(nsn)
    lengths = plan.lengths
    if not lengths:
        return "invalid"
    if n in plan.local_only:
        return "local"
    if n == lengths[0]:
        return "possible"
    if n < lengths[0]:
        return "short"
    if n > lengths[-1]:
        return "long"
    return "possible" if n in lengths[1:] else "invalid"


def _viable(number: str, plan: _Plan) -> bool:
    return plan.general is not None and plan.general.fullmatch(number) is not None


def _reference_international(digits: str) -> bool:
    try:
        num = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(num))


def _reference_national(digits: str, region: str) -> bool:
    try:
        num = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number_for_region(num, region))


@lru_cache(maxsize=CACHE_SIZE)
def is_international_phone(digits: str) -> bool:
    """``digits`` are the number after ``+`` or ``00`` (country code first)."""
    if not 8 <= len(digits) <= 15:
        return False
    return _international(digits)


def _international(digits: str) -> bool:
    """``phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))``."""
    if digits[0] == "0":
        return False
    for size in (1, 2, 3):
        code = int(digits[:size])
        regions = COUNTRY_CODE_TO_REGION_CODE.get(code)
        if regions is not None:
            break
    else:
        return False
    main = _plan(regions[0], code)
    if main is None:
        return _reference_international(digits)
    nsn = digits[size:]
    if main.prefix is not None and main.prefix.match(nsn) is not None:
        return _reference_international(digits)  # a prefix inside an international number
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return False
    plan: _Plan | None = main
    if len(regions) > 1:  # region_code_for_number: leading digits, else the first valid region
        plan = None
        for region in regions:
            candidate = _plan(region, code)
            if candidate is None:
                continue
            if candidate.leading is not None:
                if candidate.leading.match(nsn):
                    plan = candidate
                    break
            elif _known(nsn, candidate):
                plan = candidate
                break
    return plan is not None and _known(nsn, plan)


def _national(digits: str, plan: _Plan) -> bool:
    """``is_valid_number_for_region(parse(digits, region), region)``."""
    if plan.general is None or (plan.gate is not None and plan.gate.fullmatch(digits) is None):
        return False
    m = plan.idd.match(digits) if plan.idd is not None else None
    if m is not None and digits[m.end() : m.end() + 1] != "0":
        # An international dialling prefix (011 from the US, 0[0-3]x from Singapore...):
        # parse reads a country code after it, and only this region's code can be valid here.
        return digits.startswith(plan.cc, m.end()) and _reference_national(digits, plan.region)
    number = digits
    parser = plan
    if digits.startswith(plan.cc):
        # The region's own country code written without "+": parse drops it when the rest
        # looks like a better number, and then reads it with the code's main region.
        rest = _strip_prefix(digits[len(plan.cc) :], plan)
        if rest is None:
            return _reference_national(digits, plan.region)
        if (not _viable(digits, plan) and _viable(rest, plan)) or _length(digits, plan) == "long":
            number = rest
            main = _plan(COUNTRY_CODE_TO_REGION_CODE[int(plan.cc)][0], int(plan.cc))
            if main is None:
                return _reference_national(digits, plan.region)
            parser = main
            if len(number) < _MIN_NSN:
                return False
    stripped = _strip_prefix(number, parser)
    if stripped is None:
        return _reference_national(digits, plan.region)
    if stripped != number and _length(stripped, parser) not in ("short", "local", "invalid"):
        number = stripped
    return _MIN_NSN <= len(number) <= _MAX_NSN and _known(number, plan)


class _Regions(NamedTuple):
    """The plans of a region list, with their gates merged into one regex: most candidates
    match no gate, and one C call says so."""

    plans: tuple[_Plan, ...]
    gate: re.Pattern[str] | None  # alternation of the plans' gates, group "rN" for plans[N]
    missing: tuple[str, ...]  # regions without metadata: left to phonenumbers


@cache
def _regions(regions: tuple[str, ...]) -> _Regions:
    plans: list[_Plan] = []
    missing: list[str] = []
    for region in regions:
        code = phonenumbers.country_code_for_region(region)
        plan = _plan(region, code) if code else None
        if plan is None:
            missing.append(region)
        elif plan.gate is not None:  # no gate: no general pattern, never valid
            plans.append(plan)
    gate = "|".join(f"(?P<r{i}>{plan.gate.pattern})" for i, plan in enumerate(plans) if plan.gate)
    return _Regions(tuple(plans), re.compile(gate) if gate else None, tuple(missing))


def prepare(regions: tuple[str, ...]) -> None:
    """Compile the numbering plans of ``regions`` and their merged gates now (about a tenth
    of a second, once per list of regions) rather than on the first national numbers."""
    for first in range(1, len(_regions(regions).plans)):
        _gate_after(regions, first)


@cache
def _gate_after(regions: tuple[str, ...], first: int) -> re.Pattern[str] | None:
    """The merged gate of the plans from ``first`` on (group "rN" for plans[N])."""
    plans = _regions(regions).plans
    gate = "|".join(
        f"(?P<r{i}>{plan.gate.pattern})"
        for i, plan in enumerate(plans)
        if i >= first and plan.gate is not None
    )
    return re.compile(gate) if gate else None


@lru_cache(maxsize=CACHE_SIZE)
def is_national_phone(digits: str, regions: tuple[str, ...]) -> bool:
    """Whether the national-format digits are a valid number in one of the regions."""
    if not 6 <= len(digits) <= 13:
        return False
    found = _regions(regions)
    if any(_reference_national(digits, region) for region in found.missing):
        return True
    gate = found.gate
    # Only the plans whose gate matches can validate the number: the merged gate of the plans
    # after the last one tried names the next, one C call rather than one per plan.
    while gate is not None:
        m = gate.fullmatch(digits)
        if m is None or m.lastgroup is None:
            return False
        index = int(m.lastgroup[1:])
        if _national(digits, found.plans[index]):
            return True
        gate = _gate_after(regions, index + 1)
    return False
