"""Checksum and structure validators that confirm candidates found by the scanner.

Checksums come from python-stdnum wherever it has them, so that the rules (excluded ranges,
check-digit algorithms, date parts) are the maintained ones rather than our own copies. The
identifiers stdnum does not cover are checked here by their published rules: the British NINO
(format), the Australian Medicare number, the Singapore NRIC/FIN and the German health-insurance
number (check digits); and
the IBAN's mod-97 is computed here (with stdnum's registry and national checks): the general
path of ``stdnum.iban`` looks the registry up for every candidate. The Luhn digit of cards and
the check digits of ISBNs (a hard negative tried on every long number) are computed here too,
on digits only, at a fraction of stdnum's cost; a test compares them with stdnum. IP addresses
outside special ranges are classified without ``ipaddress``, which tests every special network
in turn.

Every function takes a *compact* value (digits and letters only, upper case) and never raises.
"""

from __future__ import annotations

import ipaddress
import re
import string
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from stdnum import bitcoin as _bitcoin
from stdnum import mac as _mac
from stdnum import numdb
from stdnum.au import abn as _abn
from stdnum.au import acn as _acn
from stdnum.au import tfn as _tfn
from stdnum.br import cpf as _cpf
from stdnum.ca import sin as _sin
from stdnum.de import idnr as _idnr
from stdnum.de import stnr as _stnr
from stdnum.de import vat as _de_vat
from stdnum.es import cif as _cif
from stdnum.es import dni as _dni
from stdnum.es import nie as _nie
from stdnum.fi import hetu as _hetu
from stdnum.fr import nir as _nir
from stdnum.gb import nhs as _nhs
from stdnum.gb import utr as _utr
from stdnum.in_ import aadhaar as _aadhaar
from stdnum.in_ import epic as _epic
from stdnum.in_ import gstin as _gstin
from stdnum.in_ import pan as _pan
from stdnum.it import codicefiscale as _cf
from stdnum.it import iva as _iva
from stdnum.jp import in_ as _jp_in
from stdnum.kr import brn as _brn
from stdnum.kr import rrn as _rrn
from stdnum.nl import bsn as _bsn
from stdnum.pl import pesel as _pesel
from stdnum.se import orgnr as _orgnr
from stdnum.se import personnummer as _pnr
from stdnum.sg import uen as _uen
from stdnum.tr import tckimlik as _tckimlik
from stdnum.us import ein as _ein
from stdnum.us import itin as _itin
from stdnum.us import rtn as _rtn
from stdnum.us import ssn as _ssn
from stdnum.util import get_cc_module
from stdnum.za import idnr as _za_idnr

from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii.types import CACHE_SIZE

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


# The Luhn sum of a digit in an even place from the right: the digits of its double.
_LUHN_DOUBLED = bytes(sum(divmod(2 * (b - 48), 10)) if 48 <= b <= 57 else 0 for b in range(256))
_ZERO = ord("0")


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn check (``stdnum.luhn.is_valid``)."""
    b = digits.encode()
    odd = b[-1::-2]
    return (
        bool(b)
        and (sum(odd) - _ZERO * len(odd) + sum(b[-2::-2].translate(_LUHN_DOUBLED))) % 10 == 0
    )


@lru_cache(maxsize=CACHE_SIZE)
def is_card(c: str) -> bool:
    """A payment card: 13-19 digits, a known network prefix and a valid Luhn digit."""
    return 13 <= len(c) <= 19 and _CARD_IIN.fullmatch(c) is not None and luhn_valid(c)


@lru_cache(maxsize=CACHE_SIZE)
def is_bitcoin(value: str) -> bool:
    """A Bitcoin address whose base58check or bech32 checksum holds (python-stdnum)."""
    return _ok(_bitcoin, value)


def is_ethereum(value: str) -> bool:
    """An Ethereum address: ``0x`` and 40 hex digits. Its EIP-55 mixed-case checksum needs
    Keccak-256, which the standard library does not have, so only the format is checked; a
    value of one case only (no checksum written) is accepted, mixed case too."""
    return len(value) == 42 and value[:2] in ("0x", "0X") and value[2:].isalnum()


@lru_cache(maxsize=CACHE_SIZE)
def is_mac(value: str) -> bool:
    """A unicast MAC address (python-stdnum: multicast and broadcast addresses are refused);
    six groups of two digits joined by dashes must hold a hex letter to count (otherwise they
    are more often a date or a reference)."""
    if ":" not in value and not any(ch in "abcdefABCDEF" for ch in value):
        return False
    return _ok(_mac, value)


def is_isbn(c: str) -> bool:
    """ISBN-10/13 starting 978 or 979 (a hard negative: never masked, and stops the phone
    check); ``c`` is digits only. The check digits of ``stdnum.isbn``: weights 1 to 9 mod 11
    for ten digits, EAN-13's 1 and 3 for thirteen."""
    n = len(c)
    if (n != 10 and n != 13) or c[:3] not in ("978", "979") or not c.isdigit():
        return False
    values = [int(d) for d in c]
    if n == 10:
        return sum(i * v for i, v in enumerate(values[:9], 1)) % 11 == values[9]
    return (sum(values[0::2]) + 3 * sum(values[1::2])) % 10 == 0


_BASE36 = str.maketrans({ch: str(int(ch, 36)) for ch in string.ascii_uppercase})
_BBAN_FIELD = re.compile(r"([1-9][0-9]*)!([nac])")
_BBAN_CHARS = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}


@cache
def _iban_country(cc: str) -> tuple[re.Pattern[str] | None, Any]:
    """The BBAN structure of a country (from python-stdnum's IBAN registry) and its national
    check module, if stdnum has one."""
    info = numdb.get("iban").info(cc)[0][1]
    if not info:
        return None, None
    bban = _BBAN_FIELD.sub(
        lambda m: f"{_BBAN_CHARS[m.group(2)]}{{{m.group(1)}}}", info.get("bban", "")
    )
    return re.compile(f"^{bban}$"), get_cc_module(cc, "iban")


@lru_cache(maxsize=CACHE_SIZE)
def is_iban(c: str) -> bool:
    """IBAN: the ISO 7064 mod-97 check, the country's BBAN structure and, where python-stdnum
    has one, the national check (BE, ES, ME, NO).

    These are the checks of ``stdnum.iban.is_valid``, with the per-country registry entry looked
    up once rather than for every candidate (which made it the costliest validator).
    """
    if len(c) < 5 or not (c.isascii() and c.isalnum()):
        return False
    if int((c[4:] + c[:4]).translate(_BASE36)) % 97 != 1:
        return False
    structure, module = _iban_country(c[:2])
    if structure is None or structure.match(c[4:]) is None:
        return False
    return module is None or _ok(module, c)


# ``ipaddress`` answers ``is_global`` by testing a list of networks, tens of microseconds per
# address. First octets of every IPv4 range with a special purpose (IANA registry: private,
# shared, loopback, link-local, documentation, benchmarking, multicast, reserved): an address
# outside them is global whatever the Python version's tables, so it needs no lookup.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # what ipaddress accepts
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_SPECIAL_FIRST_OCTETS = frozenset([0, 10, 100, 127, 169, 172, 192, 198, 203, *range(224, 256)])


def ip_kind(candidate: str) -> str | None:
    """``"public"``, ``"private"`` (private, loopback, link-local, ...) or None when not an IP.

    Documentation ranges (RFC 5737, RFC 3849) are reported as None: they are the ``example.com``
    of addresses.
    """
    if ":" in candidate:
        try:
            first = int(ipaddress.IPv6Address(candidate)) >> 112
        except ValueError:
            return None
        # Global unicast outside 2001::/23, 2002::/16 (6to4) and 3fff::/20 (documentation),
        # the only special ranges of 2000::/3 in any Python version's tables.
        if 0x2003 <= first <= 0x3FFE:
            return "public"
        return _ip_kind(candidate)
    if _IPV4.fullmatch(candidate):
        a, b, c, _ = (int(x) for x in candidate.split("."))
        if a not in _SPECIAL_FIRST_OCTETS:
            return "public"
        # Ranges whose meaning every Python version agrees on; the rest goes to ipaddress.
        if a in (10, 127) or (a, b) in ((169, 254), (192, 168)) or (a == 172 and 16 <= b <= 31):
            return "private"
        if (a, b, c) in ((192, 0, 2), (198, 51, 100), (203, 0, 113)):
            return None
    return _ip_kind(candidate)


@lru_cache(maxsize=CACHE_SIZE)
def _ip_kind(candidate: str) -> str | None:
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


def is_au_medicare(c: str) -> bool:
    """Australian Medicare card number: 10 digits (11 with the individual reference number),
    the first 2-6, the ninth a check digit (weights 1, 3, 7, 9 over the first eight, mod 10)."""
    if len(c) not in (10, 11) or not c.isdigit() or c[0] not in "23456":
        return False
    total = sum(int(d) * w for d, w in zip(c[:8], (1, 3, 7, 9, 1, 3, 7, 9), strict=True))
    return total % 10 == int(c[8]) and (len(c) == 10 or c[10] != "0")


_NRIC_WEIGHTS = (2, 7, 6, 5, 4, 3, 2)
# Per prefix: the check letters indexed by the weighted sum mod 11, and what is added to the
# sum first. The M series (FINs issued since 2022) adds 3 and has its own table, which differs
# from the F/G one at remainder 8 only (J, not M): the rule of FormSG's validator
# (``isMFinSeriesValid`` in ``shared/utils/nric-validation.ts``), letter "KLJNPQRTUWX"[P - 1]
# for P = 11 - (sum mod 11), written here as a table indexed by the remainder.
_NRIC_LETTERS = {
    "S": ("JZIHGFEDCBA", 0),
    "T": ("JZIHGFEDCBA", 4),
    "F": ("XWUTRQPNMLK", 0),
    "G": ("XWUTRQPNMLK", 4),
    "M": ("XWUTRQPNJLK", 3),
}


def is_sg_nric(c: str) -> bool:
    """Singapore NRIC (S, T) or FIN (F, G, and M since 2022): a prefix letter, seven digits and
    a check letter (weights 2, 7, 6, 5, 4, 3, 2, plus 4 for T and G, 3 for M, mod 11)."""
    table = _NRIC_LETTERS.get(c[:1])
    if table is None or len(c) != 9 or not c[1:8].isdigit():
        return False
    letters, offset = table
    total = sum(int(d) * w for d, w in zip(c[1:8], _NRIC_WEIGHTS, strict=True))
    return letters[(total + offset) % 11] == c[8]


def is_gb_utr(c: str) -> bool:
    """UK Unique Taxpayer Reference (python-stdnum: ten digits, the first a check digit), also
    with the "K" that follows it in a Self Assessment payment reference (``1955839661K``)."""
    return _ok(_utr, c[:-1] if c[-1:] == "K" else c)


def is_de_health_insurance(c: str) -> bool:
    """German health-insurance number (Krankenversichertennummer, the 10-character part that
    never changes): a letter and nine digits; the letter as its two-digit position (A = 01)
    and the next eight digits, weighted 1, 2, 1, 2, ..., with the digits of each product
    summed, give the last digit mod 10."""
    if len(c) != 10 or not ("A" <= c[0] <= "Z") or not c[1:].isdigit():
        return False
    digits = f"{ord(c[0]) - 64:02d}" + c[1:9]
    total = 0
    for i, d in enumerate(digits):
        product = int(d) * (2 if i % 2 else 1)
        total += product // 10 + product % 10
    return total % 10 == int(c[9])


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
    t.US_ITIN: lambda c: _ok(_itin, c),
    t.US_ABA_ROUTING: lambda c: _ok(_rtn, c),
    t.US_EIN: lambda c: _ok(_ein, c),
    t.GB_NHS: lambda c: _ok(_nhs, c),
    t.GB_UTR: is_gb_utr,
    t.DE_TAX_NUMBER: lambda c: _ok(_stnr, c),
    t.DE_VAT_ID: lambda c: _ok(_de_vat, c),
    t.DE_HEALTH_INSURANCE: is_de_health_insurance,
    t.CA_SIN: lambda c: _ok(_sin, c),
    t.AU_ABN: lambda c: _ok(_abn, c),
    t.AU_ACN: lambda c: _ok(_acn, c),
    t.AU_TFN: lambda c: _ok(_tfn, c),
    t.AU_MEDICARE: is_au_medicare,
    t.FI_HETU: lambda c: _ok(_hetu, c),
    t.KR_RRN: lambda c: _ok(_rrn, c),
    t.KR_BRN: lambda c: _ok(_brn, c),
    t.IN_PAN: lambda c: _ok(_pan, c),
    t.IN_GSTIN: lambda c: _ok(_gstin, c),
    t.IN_VOTER_ID: lambda c: _ok(_epic, c),
    t.IT_VAT: lambda c: _ok(_iva, c),
    t.ES_CIF: lambda c: _ok(_cif, c),
    t.SE_ORGNR: lambda c: _ok(_orgnr, c),
    t.SG_NRIC: is_sg_nric,
    t.SG_UEN: lambda c: _ok(_uen, c),
    t.ZA_ID: lambda c: _ok(_za_idnr, c),
    t.TR_TC_KIMLIK: lambda c: _ok(_tckimlik, c),
}


@lru_cache(maxsize=CACHE_SIZE)
def is_national_id(pii_type: str, c: str) -> bool:
    """Whether the compact value passes the checksum of that national identifier."""
    check = _CHECKS.get(pii_type)
    return check is not None and check(c)
