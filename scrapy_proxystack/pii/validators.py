"""Checksum and structure validators that confirm candidates found by the scanner.

Checksums come from python-stdnum wherever it has them, so that the rules (excluded ranges,
check-digit algorithms, date parts) are the maintained ones rather than our own copies. Only the
British NINO, which stdnum does not cover, is checked here by its published format rules.

Every function takes a *compact* value (digits and letters only, upper case) and never raises.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from stdnum import iban as _iban
from stdnum import isbn as _isbn
from stdnum import luhn as _luhn
from stdnum.br import cpf as _cpf
from stdnum.de import idnr as _idnr
from stdnum.es import dni as _dni
from stdnum.es import nie as _nie
from stdnum.fr import nir as _nir
from stdnum.in_ import aadhaar as _aadhaar
from stdnum.it import codicefiscale as _cf
from stdnum.jp import in_ as _jp_in
from stdnum.nl import bsn as _bsn
from stdnum.pl import pesel as _pesel
from stdnum.se import personnummer as _pnr
from stdnum.us import ssn as _ssn

from scrapy_proxystack.pii import types as t

if TYPE_CHECKING:
    from collections.abc import Callable

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


def compact(value: str) -> str:
    """Digits and letters only, upper case: the form checksums are computed on."""
    return _NON_ALNUM.sub("", value).upper()


def _ok(module: object, value: str) -> bool:
    try:
        return bool(module.is_valid(value))  # type: ignore[attr-defined]
    except Exception:  # stdnum raises only for odd input; a failed check is simply "not valid"
        return False


# Card networks by issuer prefix (IIN). A Luhn-valid number outside these ranges is far more
# likely an order or tracking number than a card.
_CARD_IIN = re.compile(
    r"4\d{12}(?:\d{3}){0,2}"  # Visa 13/16/19
    r"|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|3(?:0[0-5]|[68]\d)\d{11,16}"  # Diners Club
    r"|(?:6011|65\d{2}|64[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|62\d{14,17}"  # UnionPay
    r"|(?:5[06-9]|6\d)\d{10,17}"  # Maestro
)


@lru_cache(maxsize=65536)
def is_card(c: str) -> bool:
    """A payment card: 13-19 digits, a known network prefix and a valid Luhn digit."""
    return 13 <= len(c) <= 19 and _CARD_IIN.fullmatch(c) is not None and _ok(_luhn, c)


def is_isbn(c: str) -> bool:
    """ISBN-10/13 (a hard negative: never masked, and stops the phone check)."""
    return len(c) in (10, 13) and c[:3] in ("978", "979") and _ok(_isbn, c)


@lru_cache(maxsize=65536)
def is_iban(c: str) -> bool:
    """IBAN: country length and the ISO 7064 mod-97 check."""
    return _ok(_iban, c)


@lru_cache(maxsize=65536)
def ip_kind(candidate: str) -> str | None:
    """``"public"``, ``"private"`` (private, loopback, link-local, ...) or None when not an IP.

    Documentation ranges (RFC 5737, RFC 3849) are reported as None: they are the ``example.com``
    of addresses.
    """
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if addr.is_global:
        return "public"
    if addr.version == 4 and any(addr in net for net in _DOC_NETS_V4):
        return None
    if addr.version == 6 and addr in _DOC_NET_V6:
        return None
    if addr.is_unspecified or addr.is_multicast:
        return None
    return "private"


_DOC_NETS_V4 = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_DOC_NET_V6 = ipaddress.ip_network("2001:db8::/32")

# GB NINO: two prefix letters (D, F, I, Q, U, V never; O not second) and an A-D suffix;
# some prefixes are never issued.
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]")
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def is_gb_nino(c: str) -> bool:
    """UK National Insurance number (format rules; it has no check digit)."""
    return _NINO.fullmatch(c) is not None and c[:2] not in _NINO_BAD_PREFIX


_CHECKS: dict[str, Callable[[str], bool]] = {
    t.US_SSN: lambda c: _ok(_ssn, c),
    t.FR_NIR: lambda c: _ok(_nir, c),
    t.DE_TAX_ID: lambda c: _ok(_idnr, c),
    t.ES_DNI: lambda c: _ok(_dni, c),
    t.ES_NIE: lambda c: _ok(_nie, c),
    t.GB_NINO: is_gb_nino,
    t.BR_CPF: lambda c: _ok(_cpf, c),
    t.IN_AADHAAR: lambda c: _ok(_aadhaar, c),
    t.JP_MY_NUMBER: lambda c: _ok(_jp_in, c),
    t.IT_FISCAL_CODE: lambda c: _ok(_cf, c),
    t.NL_BSN: lambda c: _ok(_bsn, c),
    t.PL_PESEL: lambda c: _ok(_pesel, c),
    t.SE_PERSONNUMMER: lambda c: _ok(_pnr, c),
}


@lru_cache(maxsize=65536)
def is_national_id(pii_type: str, c: str) -> bool:
    """Whether the compact value passes the checksum of that national identifier."""
    check = _CHECKS.get(pii_type)
    return check is not None and check(c)
