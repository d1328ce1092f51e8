# ruff: noqa: RUF001
"""Unit and property tests of the PII engine (no Scrapy involved)."""

from __future__ import annotations

import ipaddress
import random
import re
import string
import threading

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import ean as stdnum_ean
from stdnum import iban as stdnum_iban
from stdnum import isbn as stdnum_isbn
from stdnum import luhn as stdnum_luhn
from stdnum import numdb

from scrapy_proxystack.pii import ALL_TYPES, DEFAULT_LANGUAGES, LANGUAGE_REGIONS, PiiMasker, PiiSpan
from scrapy_proxystack.pii.phones import is_international_phone, is_national_phone, regions_for
from scrapy_proxystack.pii.validators import (
    _CARD_IIN,
    ip_kind,
    is_card,
    is_iban,
    is_isbn,
    luhn_valid,
)

MASKER = PiiMasker()

POSITIVES = [
    # e-mail, several spellings
    ("email", "Write to jane.roe@mailbox.org today", "jane.roe@mailbox.org"),
    ("email", "contact: john [at] gmail [dot] com, thanks", "john [at] gmail [dot] com"),
    ("email", "Schreiben Sie an max(at)web.de bitte", "max(at)web.de"),
    ("email", "メール：yamada\uff20yahoo.co.jp まで", "yamada\uff20yahoo.co.jp"),
    ("email", "mail: Élodie.Dupont@orange.fr.", "Élodie.Dupont@orange.fr"),
    # phones: international, 00, national with context or typical layout
    ("phone", "Call +33 6 12 34 56 78 now", "+33 6 12 34 56 78"),
    ("phone", "Tel. 0049 30 12345678", "0049 30 12345678"),
    ("phone", "Telefon: 030 1234567", "030 1234567"),
    ("phone", "Office (555) 234-5678", "(555) 234-5678"),
    ("phone", "Téléphone : 01 23 45 67 89", "01 23 45 67 89"),
    ("phone", "電話03-1234-5678", "03-1234-5678"),
    ("phone", "Llámanos al 612 34 56 78", "612 34 56 78"),
    ("phone", "WhatsApp +5511987654321", "+5511987654321"),
    # cards and bank accounts
    ("credit_card", "Card 4111 1111 1111 1111 ok", "4111 1111 1111 1111"),
    ("credit_card", "Paid with 5500-0000-0000-0004", "5500-0000-0000-0004"),
    ("credit_card", "amex 378282246310005", "378282246310005"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX", "DE89 3704 0044 0532 0130 00"),
    ("iban", "IBAN: GB82 WEST 1234 5698 7654 32", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "virement FR1420041010050500013M02606", "FR1420041010050500013M02606"),
    # IPs
    ("ip_address", "Connection from 8.8.8.8 refused", "8.8.8.8"),
    ("ip_address", "client 2a00:1450:4001:82b::200e", "2a00:1450:4001:82b::200e"),
    ("ip_address", "client ip=81.2.69.160", "81.2.69.160"),
    ("ip_address", "Release 3.12.7.62. IP: 11.180.237.63:443 timed out", "11.180.237.63"),
    # national IDs
    ("us_ssn", "SSN 536-90-4399", "536-90-4399"),
    ("us_ssn", "Social Security number: 536904399", "536904399"),
    ("fr_nir", "NIR 1 85 05 78 006 084 91", "1 85 05 78 006 084 91"),
    ("fr_nir", "sécu 185057800608491", "185057800608491"),
    ("de_tax_id", "Steuer-ID: 86095742719", "86095742719"),
    ("es_dni", "DNI 12345678Z", "12345678Z"),
    ("es_nie", "NIE X1234567L", "X1234567L"),
    ("gb_nino", "NI number AB 12 34 56 C", "AB 12 34 56 C"),
    ("gb_nino", "NINO: JG103759A", "JG103759A"),
    ("br_cpf", "CPF 123.456.789-09", "123.456.789-09"),
    ("br_cpf", "Meu CPF é 12345678909", "12345678909"),
    ("in_aadhaar", "Aadhaar: 2345 6789 0124", "2345 6789 0124"),
    ("jp_my_number", "マイナンバー: 1234 5678 9018", "1234 5678 9018"),
    ("it_fiscal_code", "codice fiscale RSSMRA85T10A562S", "RSSMRA85T10A562S"),
    ("nl_bsn", "BSN 111222333", "111222333"),
    ("pl_pesel", "PESEL: 44051401359", "44051401359"),
    ("se_personnummer", "Personnummer: 811228-9874", "811228-9874"),
    # dates of birth, several languages
    ("date_of_birth", "born on 12 March 1985 in Leeds", "12 March 1985"),
    ("date_of_birth", "Date of birth: March 12, 1985", "March 12, 1985"),
    ("date_of_birth", "née le 12/03/1985 à Lyon", "12/03/1985"),
    ("date_of_birth", "geboren am 12. März 1985", "12. März 1985"),
    ("date_of_birth", "nacido el 12 de marzo de 1985", "12 de marzo de 1985"),
    ("date_of_birth", "nacido el 27 de diciembre de 1986", "27 de diciembre de 1986"),
    ("date_of_birth", "data de nascimento: 20 de outubro de 1984", "20 de outubro de 1984"),
    ("date_of_birth", "生年月日：1985年3月12日", "1985年3月12日"),
    ("date_of_birth", "1985年3月12日生まれ", "1985年3月12日"),
    # street addresses
    ("street_address", "Visit 221 Baker Street, London", "221 Baker Street"),
    ("street_address", "au 12 rue de la Paix, Paris", "12 rue de la Paix"),
    ("street_address", "Adresse: Hauptstraße 12, Berlin", "Hauptstraße 12"),
    ("street_address", "en Calle Mayor 5, Madrid", "Calle Mayor 5"),
    ("street_address", "in Via Roma 10, Milano", "Via Roma 10"),
    ("street_address", "na Rua das Flores, 123 - SP", "Rua das Flores, 123"),
    ("street_address", "Kerkstraat 12, Amsterdam", "Kerkstraat 12"),
    ("street_address", "Åströmvägen 146, 28265 Nyköping", "Åströmvägen 146"),
    ("street_address", "Roséngatan 7, Malmö", "Roséngatan 7"),
]

NEGATIVES = [
    "Order no. 4111111111111112 shipped",  # fails Luhn
    "ISBN 978-3-16-148410-0",
    "SKU-48392017 in stock",
    "Invoice INV-2024-000123 paid",
    "request id 550e8400-e29b-41d4-a716-446655440000",
    "commit a3f5c9e1d2b4c6e8f0a1b2c3d4e5f6a7b8c9d0e1",
    "price €1.299,00 or $12.99",
    "upgrade to version 2.4.1.187 today",
    "v2.4.1.187 released",
    "Release 10.0.19041.1 notes",
    "at 2024-01-15T10:23:45Z and [2024-01-15 10:23:45]",
    "ts=1699999999 took 0.25s",
    "posted 15/01/2024",
    "since 1999",
    "final score 3-1",
    "3.14159 * 2 = 6.28318 and 123 * 456 = 56088",
    "write to info@example.com or jane@mail.example",
    "e.g. 192.0.2.1 or 2001:db8::1",
    "gateway 192.168.1.1 and 127.0.0.1",
    "Tracking 1Z9999999999999999",
    "Bestellnummer 4839201745",
    "[EMAIL] and [PHONE:3fa2c1d0] stay",
]


@pytest.mark.parametrize(("pii_type", "text", "value"), POSITIVES)
def test_detects(pii_type: str, text: str, value: str) -> None:
    spans = MASKER.find(text)
    assert [(s.type, s.value) for s in spans] == [(pii_type, value)]
    masked = MASKER.mask(text)
    assert value not in masked
    assert f"[{pii_type.upper()}]" in masked


@pytest.mark.parametrize("text", NEGATIVES)
def test_lookalikes_survive(text: str) -> None:
    assert MASKER.find(text) == []
    assert MASKER.mask(text) == text


def test_spans_are_typed_and_positioned() -> None:
    text = "Mail a@b.io, tel +44 20 7946 0958."
    spans = MASKER.find(text)
    assert spans == [
        PiiSpan("email", 5, 11, "a@b.io"),
        PiiSpan("phone", 17, 33, "+44 20 7946 0958"),
    ]


def test_private_ips_are_configurable() -> None:
    text = "gateway 192.168.1.1 and 10.0.0.7"
    assert PiiMasker().mask(text) == text
    assert PiiMasker(private_ips=True).mask(text) == "gateway [IP_ADDRESS] and [IP_ADDRESS]"


def test_type_selection() -> None:
    m = PiiMasker(types=["email"])
    assert m.mask("a@b.io +33 6 12 34 56 78") == "[EMAIL] +33 6 12 34 56 78"


def test_partial_keeps_last_four() -> None:
    m = PiiMasker(default_operator="partial")
    assert m.mask("Card 4111 1111 1111 1111") == "Card **** **** **** 1111"
    assert m.mask("mail jane@mailbox.org") == "mail ***@mailbox.org"
    assert m.mask(m.mask("Card 4111 1111 1111 1111")) == "Card **** **** **** 1111"


def test_pseudonyms_are_keyed_and_stable() -> None:
    a = PiiMasker(default_operator="pseudonymize", hmac_key="k1")
    b = PiiMasker(default_operator="pseudonymize", hmac_key="k2")
    x = a.mask("jane@mailbox.org")
    assert x.startswith("[EMAIL:")
    assert len(x) == len("[EMAIL:]") + 8
    assert a.mask("JANE@mailbox.org") == x  # same value, same token
    assert a.mask("+33 6 12 34 56 78") == a.mask("+33612345678")
    assert b.mask("jane@mailbox.org") != x
    assert a.mask(x) == x


def test_pseudonymize_needs_a_key() -> None:
    with pytest.raises(ValueError, match="hmac_key"):
        PiiMasker(default_operator="pseudonymize")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"types": ["nope"]},
        {"default_operator": "shred"},
        {"operators": {"email": "shred"}},
        {"operators": {"nope": "mask"}},
        {"languages": ["xx"]},
        {"partial_keep": -1},
    ],
)
def test_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"."):
        PiiMasker(**kwargs)  # type: ignore[arg-type]


def test_person_names_are_optional() -> None:
    text = "My name is Jean Dupont and I live here."
    assert MASKER.find(text) == []
    m = PiiMasker(types=[*MASKER.types, "person"])
    assert m.mask(text) == "My name is [PERSON] and I live here."
    custom = PiiMasker(types=["person"], name_detector=lambda s: [(0, 4)])
    assert custom.mask("Anna went home") == "[PERSON] went home"


def test_all_types_have_placeholders() -> None:
    assert len(set(ALL_TYPES)) == len(ALL_TYPES)


def test_thread_safety() -> None:
    texts = [f"{t} #{i}" for i, (_, t, _) in enumerate(POSITIVES)] * 20
    expected = [MASKER.mask(t) for t in texts]
    results: list[list[str]] = []

    def work() -> None:
        results.append([MASKER.mask(t) for t in texts])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r == expected for r in results)


@pytest.mark.parametrize("tail", ["", " more text", "\n(12 replies)"])
def test_glued_cluster_is_read_whole_wherever_it_ends(tail: str) -> None:
    # "]68.8.8.8 1" is one cluster glued to "]", passed over whole: its last group ("1::", an
    # IPv6 form) is not a candidate of its own, at the end of the text or before more of it.
    assert MASKER.find("]68.8.8.8 1::" * 3 + tail) == []
    assert MASKER.find("1::" + tail) == [PiiSpan("ip_address", 0, 3, "1::")]


def test_long_input_is_linear() -> None:
    text = ("Lorem ipsum 12 dolor, call +33 6 12 34 56 78 or a@b.io. " * 20000)[:1_000_000]
    masked = MASKER.mask(text)
    assert "a@b.io" not in masked


_PII_ALPHABET = st.sampled_from(
    [
        *list("0123456789 +-./()@[]:abcXYZ\n＠é漢,*"),
        *("at", "dot", "Tel:", "SSN ", "IBAN ", "ABN ", "PAN ", "NRIC S", "ID ", "DE", "27AAPFU"),
        *("UEN ", "FIN M", "UTR ", "S16FC", "K"),
    ]
)
_texts = st.one_of(
    st.text(max_size=200),
    st.lists(_PII_ALPHABET, max_size=80).map("".join),
    st.lists(st.sampled_from([t for _, t, _ in POSITIVES] + NEGATIVES), max_size=5).map(" ".join),
)


@settings(max_examples=300, deadline=None)
@given(_texts)
def test_idempotent_and_no_leak(text: str) -> None:
    spans = MASKER.find(text)
    masked = MASKER.mask(text)
    assert MASKER.mask(masked) == masked
    for span in spans:
        assert text[span.start : span.end] == span.value
        assert span.value not in masked


PSEUDONYMS = PiiMasker(default_operator="pseudonymize", hmac_key="k")
PARTIAL = PiiMasker(default_operator="partial")


@settings(max_examples=100, deadline=None)
@given(_texts)
def test_other_operators(text: str) -> None:
    once = PSEUDONYMS.mask(text)
    assert PSEUDONYMS.mask(once) == once
    # "partial" keeps the last characters by design: a kept tail and the text after it
    # ("**** 0100" + " 0000") can make a new candidate on a second pass, so it is not
    # idempotent. No value is left whole.
    result = PARTIAL.scan(text)
    assert all(PARTIAL.replacement(span) != span.value for span in result.spans)


# --- fast validators agree with the libraries they stand in for ---------------------------------

_PHONE_TYPES = [
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP,
]


def _phone_samples(regions: list[str], rng: random.Random) -> set[str]:
    """Digit strings around each example number: national and international forms, with a
    digit changed, one dropped or added, a trunk, IDD or country-code prefix in front."""
    out: set[str] = set()
    for region in regions:
        for kind in _PHONE_TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            national = re.sub(
                r"\D",
                "",
                phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL),
            )
            cc = str(example.country_code)
            for base in (nsn, national, cc + nsn):
                changed = list(base)
                changed[rng.randrange(len(changed))] = rng.choice("0123456789")
                out.update((base, "".join(changed), base[:-1], base + "7"))
                out.update(prefix + base for prefix in ("0", "1", "00", "011", "15", "90", cc))
    return out


def _reference_national(digits: str, region: str) -> bool:
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number_for_region(number, region))


def _reference_international(digits: str) -> bool:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def test_phone_checks_agree_with_phonenumbers() -> None:
    """The direct metadata checks of ``phones`` decide like parse + is_valid_number."""
    rng = random.Random(1)
    regions = list(regions_for(LANGUAGE_REGIONS))
    national = sorted(d for d in _phone_samples(regions, rng) if 6 <= len(d) <= 13)
    for region in regions:
        for digits in national:
            want = _reference_national(digits, region)
            assert is_national_phone(digits, (region,)) == want, (digits, region)
    world = sorted(phonenumbers.SUPPORTED_REGIONS)
    for digits in sorted(_phone_samples(world, rng)):
        if 8 <= len(digits) <= 15:
            assert is_international_phone(digits) == _reference_international(digits), digits


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="0123456789", min_size=6, max_size=13))
def test_national_phone_any_region(digits: str) -> None:
    regions = regions_for(DEFAULT_LANGUAGES)
    want = any(_reference_national(digits, region) for region in regions)
    assert is_national_phone(digits, regions) == want


def test_iban_check_agrees_with_stdnum() -> None:
    """A random, checksum-valid IBAN of every registered country, and broken variants."""
    rng = random.Random(2)
    chars = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + "ABCXYZ"}
    registry = numdb.get("iban")
    samples = ["", "DE89", "XX89370400440532013000", "DE89370400440532013000"]
    for country in (a + b for a in string.ascii_uppercase for b in string.ascii_uppercase):
        structure = registry.info(country)[0][1].get("bban")
        if not structure:
            continue
        for _ in range(8):
            bban = "".join(
                "".join(rng.choice(chars[kind]) for _ in range(int(size)))
                for size, kind in re.findall(r"(\d+)!([nac])", structure)
            )
            iban = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
            samples += [iban, iban[:-1], iban[:4] + bban[::-1], iban[:-1] + "0", iban + "1"]
    assert sum(map(stdnum_iban.is_valid, samples)) > 400
    for value in samples:
        assert is_iban(value) == stdnum_iban.is_valid(value), value


@given(st.text(alphabet="0123456789", min_size=0, max_size=20))
def test_luhn_agrees_with_stdnum(digits: str) -> None:
    assert luhn_valid(digits) == (bool(digits) and stdnum_luhn.is_valid(digits))


def test_card_and_isbn_checks_agree_with_stdnum() -> None:
    """Check digits computed on digits only give stdnum's answers, valid numbers included."""
    rng = random.Random(4)
    samples = ["", "978", "9780000000000", "979000000000X", "4111111111111111"]
    for _ in range(20000):
        size = rng.choice([9, 10, 12, 13, 14, 15, 16, 19])
        body = rng.choice(["978", "979", "4", "5", "37", ""]) + "".join(
            rng.choice(string.digits) for _ in range(size)
        )
        samples += [body, body + stdnum_luhn.calc_check_digit(body)]
        if len(body) == 12:
            samples.append(body + stdnum_ean.calc_check_digit(body))
    assert sum(is_isbn(value) for value in samples) > 100
    assert sum(is_card(value) for value in samples) > 100
    for value in samples:
        isbn = (
            len(value) in (10, 13) and value[:3] in ("978", "979") and stdnum_isbn.is_valid(value)
        )
        assert is_isbn(value) == isbn, value
        card = 13 <= len(value) <= 19 and value.isdigit() and stdnum_luhn.is_valid(value)
        assert is_card(value) == (card and _CARD_IIN.fullmatch(value) is not None), value


_DOCUMENTATION = [
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


def _reference_ip_kind(candidate: str) -> str | None:
    """The classification by ``ipaddress`` alone."""
    try:
        addr = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if addr.is_global:
        return "public"
    if any(addr.version == net.version and addr in net for net in _DOCUMENTATION):
        return None
    if addr.is_unspecified or addr.is_multicast:
        return None
    return "private"


def test_ip_kind_agrees_with_ipaddress() -> None:
    rng = random.Random(3)
    firsts = [0, 1, 8, 10, 100, 127, 169, 172, 192, 198, 203, 224, 240, 255, 256]
    samples = ["1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "8.8.8.8", "0.0.0.0", "::1", "2a00::"]
    for _ in range(4000):
        a = rng.choice([*firsts, rng.randint(0, 255)])
        b = rng.choice([0, 2, 16, 31, 32, 51, 168, 254, rng.randint(0, 300)])
        c = rng.choice([0, 2, 100, 113, rng.randint(0, 255)])
        samples.append(f"{a}.{b}.{c}.{rng.randint(0, 255)}")
        first = rng.choice([0, 0x100, 0x2001, 0x2002, 0x2003, 0x2A00, 0x3FFF, 0xFC00, 0xFE80])
        samples.append(str(ipaddress.IPv6Address((first << 112) | rng.getrandbits(112))))
    for value in samples:
        assert ip_kind(value) == _reference_ip_kind(value), value


# --- a value inside a longer token ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # the year after a written date, glued to the next number
        ("born 12 March 1985 2 children", "born [DATE_OF_BIRTH] 2 children"),
        # a phone number after a date, in the same run of digit groups
        ("posted 15/01/2024 06 12 34 56 78", "posted 15/01/2024 [PHONE]"),
        # a card number followed by another group
        ("Card 4111 1111 1111 1111 2024", "Card [CREDIT_CARD] 2024"),
        # a repeated value inside a number cluster: the rest of the cluster is read again
        (
            "0/01/0000 1900年0月0日生まれ0/01/0000",
            "[DATE_OF_BIRTH] [DATE_OF_BIRTH]生まれ[DATE_OF_BIRTH]",
        ),
    ],
)
def test_values_inside_longer_tokens(text: str, masked: str) -> None:
    assert MASKER.mask(text) == masked
    assert MASKER.mask(masked) == masked
