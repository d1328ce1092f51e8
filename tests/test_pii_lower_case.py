"""Letter-led and trailing-letter identifiers written in lower or mixed case, as forms and chat
have them: masked after a label of their type on the same line when the value passes its check
upper-cased; left alone without a label, with a failing check, and in prose, markup and code full
of lower-case tokens with digits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import numdb

from scrapy_proxystack.pii import PiiMasker
from scrapy_proxystack.pii import identifiers as ids

MASKER = PiiMasker()

# (type, label, value): each value passes its type's check once upper-cased.
LABELLED = [
    ("iban", "iban:", "de89 3704 0044 0532 0130 00"),
    ("iban", "Bankverbindung", "de89370400440532013000"),
    ("iban", "IBAN", "gb82 west 1234 5698 7654 32"),
    ("iban", "numéro de compte :", "fr14 2004 1010 0505 0001 3m02 606"),
    ("iban", "Iban:", "De89 3704 0044 0532 0130 00"),
    ("iban", "IBAN:", "dE89 3704 0044 0532 0130 00"),
    ("it_fiscal_code", "codice fiscale:", "rssmra85t10a562s"),
    ("it_fiscal_code", "C.F.", "Rssmra85t10a562s"),
    ("it_fiscal_code", "cf", "RSSMRA85t10a562s"),
    ("gb_nino", "nino:", "jg103759a"),
    ("gb_nino", "NI number", "hh010203d"),
    ("de_vat_id", "vat", "de136695976"),
    ("de_vat_id", "ust-idnr.:", "de 286809965"),
    ("de_vat_id", "Umsatzsteuer-ID", "De142563738"),
    ("it_vat", "p.iva", "it00743110157"),
    ("it_vat", "partita iva:", "it 42083340325"),
    ("de_health_insurance", "kvnr", "a123456780"),
    ("de_health_insurance", "Krankenversichertennummer:", "f518759603"),
    ("in_pan", "pan:", "abcpe1234f"),
    ("in_pan", "permanent account number", "acupa7085r"),
    ("in_pan", "PAN", "Zvfco5773t"),
    ("in_voter_id", "voter id:", "wkh1186253"),
    ("in_voter_id", "epic no.", "eut7915358"),
    ("es_cif", "cif:", "b12345674"),
    ("es_cif", "nif", "q4145161h"),
    ("es_cif", "CIF", "b-1708125-8"),
    ("sg_nric", "nric:", "s1234567d"),
    ("sg_nric", "fin", "m1234567k"),
    ("sg_nric", "NRIC", "t0293249g"),
    ("sg_uen", "uen:", "t16ll9413d"),
    ("sg_uen", "acra", "s16fc0121d"),
    ("sg_uen", "uen", "45159457j"),
    ("sg_uen", "co. reg. no.", "197401143c"),
    ("in_gstin", "gstin", "27aapfu0939f1zv"),
    ("in_gstin", "GST no.", "09cgipp0836r8ze"),
    ("fi_hetu", "hetu", "131052-308t"),
    ("fi_hetu", "henkilötunnus:", "100853v060h"),
    ("gb_utr", "utr:", "1955839661k"),
    ("gb_utr", "hmrc payment reference", "8538429317k"),
]

# What may follow a value: the end of the text, more text on the line, another line.
AFTER = ["", ", thanks", " and 3 more", "\nnext line 42"]


@pytest.mark.parametrize("after", AFTER)
@pytest.mark.parametrize(("pii_type", "label", "value"), LABELLED)
def test_lower_case_value_after_its_label(
    pii_type: str, label: str, value: str, after: str
) -> None:
    text = f"{label} {value}{after}"
    spans = MASKER.find(text)
    assert [(s.type, s.value) for s in spans] == [(pii_type, value)]
    # the span covers the original text exactly
    assert [text[s.start : s.end] for s in spans] == [value]
    masked = MASKER.mask(text)
    assert value not in masked
    assert MASKER.mask(masked) == masked


@pytest.mark.parametrize(("pii_type", "label", "value"), LABELLED)
def test_label_further_back_on_the_line(pii_type: str, label: str, value: str) -> None:
    # a form row: the label, then other words, then the value
    text = f"Name: Jane Roe | {label} (as on the card): {value} | ok"
    assert [(s.type, s.value) for s in MASKER.find(text)] == [(pii_type, value)]


@pytest.mark.parametrize(
    ("pii_type", "label", "value"),
    [
        ("iban", "IBAN", "de89 3704 0044 0532 0130 00"),
        ("it_fiscal_code", "Codice fiscale", "rssmra85t10a562s"),
        ("de_vat_id", "USt-IdNr.", "de136695976"),
        ("in_pan", "PAN", "abcpe1234f"),
        ("sg_nric", "NRIC", "s1234567d"),
        ("in_gstin", "GSTIN", "27aapfu0939f1zv"),
    ],
)
def test_label_in_a_table_cell(pii_type: str, label: str, value: str) -> None:
    text = f"<tr><th>{label}</th><td>{value}</td></tr>"
    assert [(s.type, s.value) for s in MASKER.find(text)] == [(pii_type, value)]


@pytest.mark.parametrize(
    ("pii_type", "label", "value"),
    [
        ("iban", "iban", "de89 3704 0044 0532 0130 00"),
        ("in_pan", "pan:", "abcpe1234f"),
        ("sg_nric", "nric", "s1234567d"),
        ("gb_nino", "nino", "jg103759a"),
        ("de_vat_id", "vat", "de136695976"),
        ("es_cif", "cif", "b12345674"),
        ("nl_bsn", "bsn", "859783558"),
        ("fr_nir", "nir", "1 85 05 78 006 084 91"),
        ("in_aadhaar", "uid", "2345 6789 0124"),
        ("se_personnummer", "pnr", "811228-9874"),
    ],
)
@pytest.mark.parametrize(
    "template",
    [
        "<tr><th>{label}</th><td>{value}</td></tr>",
        "<li>{label} {value}</li>",
        '<dt class="k">{label}</dt><dd>{value}</dd>',
        "<label for=x>{label}</label><input value={value}>",
    ],
)
def test_a_lower_case_label_in_markup(pii_type: str, label: str, value: str, template: str) -> None:
    # Markup counts as punctuation: the label starts a word after its tag, as after a space.
    text = template.format(label=label, value=value)
    assert [(s.type, s.value) for s in MASKER.find(text)] == [(pii_type, value)]


@pytest.mark.parametrize(("pii_type", "label", "value"), LABELLED)
def test_no_label_no_identifier(pii_type: str, label: str, value: str) -> None:
    for text in (value, f"ref {value} ok", f"{label}\n{value}"):
        assert MASKER.mask(text) == text


LOOK_ALIKES = [
    "iban: de89 3704 0044 0532 0130 01",
    "iban: gb82 west 1234 5698 7654 33",
    # its digit groups are not read again as a phone number (0287 9498 74 is Dutch)
    "Account number nl44 myja 0287 9498 74",
    "codice fiscale: rssmra85t10a562t",
    "nino: dh010203d",  # a prefix never issued
    "nino: hh010203e",  # suffix after D
    "vat de136695977",
    "p.iva it00743110158",
    "kvnr a123456781",
    "pan: abcxe1234f",  # no such holder type
    "voter id: wkh1186254",
    "cif: b12345675",
    "nric: s1234567e",
    "fin: m5012345m",
    "uen: t16ll9413e",
    "uen: 45159457k",
    "uen: 65275582h",  # a valid DNI after a UEN label: a UEN look-alike, not a DNI
    "gstin 27aapfu0939f1zw",
    "hetu: 131052-308u",
    "utr: 1955839662k",
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_checksum_failures_stay(text: str) -> None:
    assert MASKER.find(text) == []


PROSE = [
    "Encode with h264 or x264 at 320kbps, keep the mp3 and the 2nd take at 10am.",
    "commit a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 (sha256 e3b0c44298fc1c149afbf4c8996fb924)",
    '<div class="col-md-6 mt-3 p2"><span class="abc12345678 s1234567d">utf8</span></div>',
    '<td class="bsn">859783559</td><td id=pan>abcxe1234f</td><a href="/nric">s1234567e</a>',
    "The pan was 28cm wide; pan ab12 is sold out, and so is the ipa1234x.",
    "iban: see the invoice. nric: ask at the desk. vat 19% included, uen pending.",
    "We flew a320neo and b737max; seat 12c, gate b12, flight lh1234, room 1204a.",
    "x9613851 and de13669597 and rssmra85t10a562 are cut short",
    "iban: zz89 3704 0044 0532 0130 00 is no country's",
    "session=s1234567d8 token=de136695976abc id=abc27aapfu0939f1zv",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_markup_and_code_stay(text: str) -> None:
    assert MASKER.find(text) == []


def test_non_ascii_letters_are_not_read_as_ascii() -> None:
    # the long s, the Kelvin sign and the dotless i upper-case to S, K and I: only ASCII
    # letters are read, so a span covers exactly what was checked
    for text in (
        "nric: \u017f1234567d",
        "utr: 1955839661\u212a",
        "codice fiscale: rssmra85t10a562\u017f",
        "pan: \u0131bcpe1234f",
    ):
        assert MASKER.find(text) == []


@pytest.mark.parametrize(
    "text",
    [
        # the UEN label blocks the DNI reading of a UEN look-alike only where a second pass
        # still sees it, once the address is masked ("]" ends a label's reach)
        "uen: jane@x.org 65275582h",
        "UEN: jane@x.org 65275582H",
        # ... and the digit groups of a failing IBAN are skipped on the same terms
        "iban: jane@mail.org nl44 myja 0287 9498 74",
    ],
)
def test_a_label_before_a_masked_value(text: str) -> None:
    masked = MASKER.mask(text)
    assert MASKER.mask(masked) == masked


def test_a_type_left_out_is_left_out_in_lower_case() -> None:
    masker = PiiMasker(types=["email", "iban"])
    assert masker.mask("iban: de89370400440532013000, nric s1234567d") == (
        "iban: [IBAN], nric s1234567d"
    )


def test_upper_case_rules_are_unchanged() -> None:
    # strong in upper case: no label needed there
    assert MASKER.mask("DE136695976 / 27AAPFU0939F1ZV") == "[DE_VAT_ID] / [IN_GSTIN]"
    # the lower-case forms the engine already read without a label
    assert MASKER.mask("12345678z x9613851n") == "[ES_DNI] [ES_NIE]"
    assert MASKER.mask("nino hh 01 02 03 d") == "nino [GB_NINO]"


def test_iban_countries_are_the_registry() -> None:
    registry = numdb.get("iban")
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    countries = {a + b for a in letters for b in letters if registry.info(a + b)[0][1]}
    assert countries == ids.IBAN_COUNTRIES


def test_every_cased_rule_has_a_label() -> None:
    for rule in (*ids.CASED_LETTER_RULES, *ids.CASED_TRAILING_RULES):
        assert rule.context is not None, rule.type
    types = {rule.type for rule in (*ids.LETTER_RULES, *ids.TRAILING_LETTER_RULES)}
    assert types <= {rule.type for rule in ids.CASED_LETTER_RULES + ids.CASED_TRAILING_RULES}


_ATOMS = st.sampled_from(
    [
        *(f"{label} " for _, label, _ in LABELLED[::3]),
        *(value for _, _, value in LABELLED[::2]),
        *("de", "s123", "4567d", "27aapfu", "0939f1zv", "rssmra", "85t10", "a562s"),
        *(" ", "\n", "-", ":", "]", "[", "x", "1", "0", "k", "iban ", "nric s", "uen t16ll"),
        *("jane@x.org ", "+33 6 12 34 56 78 ", "65275582h", "nl44 myja 0287 9498 74"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ATOMS, max_size=30).map("".join))
def test_idempotent_and_exact(text: str) -> None:
    spans = MASKER.find(text)
    masked = MASKER.mask(text)
    assert MASKER.mask(masked) == masked
    for span in spans:
        assert text[span.start : span.end] == span.value
        assert span.value not in masked
