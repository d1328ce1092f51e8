# ruff: noqa: RUF001
"""Unit and property tests of the PII engine (no Scrapy involved)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxystack.pii import ALL_TYPES, PiiMasker, PiiSpan

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


def test_long_input_is_linear() -> None:
    text = ("Lorem ipsum 12 dolor, call +33 6 12 34 56 78 or a@b.io. " * 20000)[:1_000_000]
    masked = MASKER.mask(text)
    assert "a@b.io" not in masked


_PII_ALPHABET = st.sampled_from(
    [*list("0123456789 +-./()@[]:abcXYZ\n＠é漢"), "at", "dot", "Tel:", "SSN ", "IBAN "]
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


@settings(max_examples=100, deadline=None)
@given(_texts)
def test_other_operators_idempotent(text: str) -> None:
    for m in (
        PiiMasker(default_operator="pseudonymize", hmac_key="k"),
        PiiMasker(default_operator="partial"),
    ):
        once = m.mask(text)
        assert m.mask(once) == once
