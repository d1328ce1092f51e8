"""Phone number confirmation through the ``phonenumbers`` library (Google's libphonenumber data).

International numbers (``+CC`` or ``00CC``) are checked against the country they name. National
numbers carry no country, so they are tried against the regions of the configured languages, in
order; that is why the language list matters for recall and for speed.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import phonenumbers

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


@lru_cache(maxsize=65536)
def is_international_phone(digits: str) -> bool:
    """``digits`` are the number after ``+`` or ``00`` (country code first)."""
    if not 8 <= len(digits) <= 15:
        return False
    try:
        num = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(num))


@cache
def _region_filter(region: str) -> tuple[str, frozenset[int], re.Pattern[str]] | None:
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if md is None or md.general_desc is None or not md.general_desc.national_number_pattern:
        return None
    pattern = re.compile(md.general_desc.national_number_pattern)
    return md.national_prefix or "", frozenset(md.general_desc.possible_length), pattern


def _may_be(digits: str, region: str) -> bool:
    """A cheap pre-check with the region's length and general pattern: ``parse`` costs tens of
    microseconds, and most regions of a long list can be ruled out without it."""
    f = _region_filter(region)
    if f is None:
        return True
    prefix, lengths, pattern = f
    nsn = digits[len(prefix) :] if prefix and digits.startswith(prefix) else digits
    return (len(nsn) in lengths and pattern.fullmatch(nsn) is not None) or (
        len(digits) in lengths and pattern.fullmatch(digits) is not None
    )


@lru_cache(maxsize=65536)
def is_national_phone(digits: str, regions: tuple[str, ...]) -> bool:
    """Whether the national-format digits are a valid number in one of the regions."""
    if not 6 <= len(digits) <= 13:
        return False
    for region in regions:
        if not _may_be(digits, region):
            continue
        try:
            num = phonenumbers.parse(digits, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number_for_region(num, region):
            return True
    return False
