"""National, tax and company identifiers of the US, UK, Germany, Canada, Australia, Finland, Korea,
India, Italy, Spain, Sweden, Singapore, South Africa and Turkey: valid values after a label in the
country's languages, checksum failures (never taken by another type either), values without a
label, and the validators stdnum does not have against published examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxystack.pii import ALL_TYPES, DEFAULT_TYPES, NATIONAL_ID_TYPES, PiiMasker
from scrapy_proxystack.pii import identifiers as ids
from scrapy_proxystack.pii.validators import (
    is_au_medicare,
    is_de_health_insurance,
    is_national_id,
    is_sg_nric,
)

MASKER = PiiMasker()

# Values drawn at random until they passed the check (see bench/pii_ids.py), and the published
# examples of each type.
VALID = [
    ("us_itin", "ITIN: 975-90-6318", "975-90-6318"),
    ("us_itin", "Individual Taxpayer Identification 967-96-2342", "967-96-2342"),
    ("us_aba_routing", "ABA routing number: 420755304", "420755304"),
    ("us_aba_routing", "Routing no. 009905766", "009905766"),
    ("us_aba_routing", "RTN 617358297", "617358297"),
    ("us_ein", "EIN: 91-9215029", "91-9215029"),
    ("us_ein", "Employer Identification Number 46-1160786", "46-1160786"),
    ("us_ein", "FEIN 35-7539138", "35-7539138"),
    ("gb_nhs", "NHS number: 4642396853", "4642396853"),
    ("gb_nhs", "NHS No. 4505578046", "4505578046"),
    ("gb_utr", "UTR: 83349 86994", "83349 86994"),
    ("gb_utr", "Unique Taxpayer Reference 32376 17883", "32376 17883"),
    ("gb_utr", "UTR: 8538429317K", "8538429317K"),
    ("gb_utr", "Unique Taxpayer Reference 11352 06754K", "11352 06754K"),
    ("gb_utr", "Payment reference: 8768079114K.", "8768079114K"),
    ("de_tax_number", "Steuernummer: 835/903/67403", "835/903/67403"),
    ("ca_sin", "SIN: 456 056 761", "456 056 761"),
    ("ca_sin", "Numéro d'assurance sociale : 973-587-686", "973-587-686"),
    ("au_abn", "ABN: 77 536 309 622", "77 536 309 622"),
    ("au_abn", "Australian Business Number 47792141998", "47792141998"),
    ("au_acn", "ACN: 557 757 847", "557 757 847"),
    ("au_acn", "Australian Company Number 488 258 555", "488 258 555"),
    ("au_tfn", "TFN: 106 035 075", "106 035 075"),
    ("au_tfn", "Tax File Number 822 688 961", "822 688 961"),
    ("au_medicare", "Medicare card: 2755345213", "2755345213"),
    ("au_medicare", "Medicare No. 4102 86913 8", "4102 86913 8"),
    ("fi_hetu", "Henkilötunnus: 100853V060H", "100853V060H"),
    ("fi_hetu", "HETU 260858-103H", "260858-103H"),
    ("kr_rrn", "주민등록번호: 460329-5400311", "460329-5400311"),
    ("kr_rrn", "RRN 010926-6011710", "010926-6011710"),
    ("kr_brn", "사업자등록번호: 789-55-20888", "789-55-20888"),
    ("kr_brn", "BRN 588-25-39269", "588-25-39269"),
    ("it_vat", "Partita IVA: IT42083340325", "IT42083340325"),
    ("it_vat", "P.IVA 62066380551", "62066380551"),
    ("se_orgnr", "Organisationsnummer: 556772-9941", "556772-9941"),
    ("se_orgnr", "Org.nr 557185-0253", "557185-0253"),
    ("za_id", "ID number: 1007094748153", "1007094748153"),
    ("za_id", "Identiteitsnommer: 6008048984048", "6008048984048"),
    ("tr_tc_kimlik", "T.C. Kimlik No: 46292650240", "46292650240"),
    ("tr_tc_kimlik", "TCKN 61408995046", "61408995046"),
    ("de_vat_id", "USt-IdNr.: DE 286809965", "DE 286809965"),
    ("de_vat_id", "VAT: DE142563738", "DE142563738"),
    ("de_vat_id", "DE 238417271", "DE 238417271"),
    ("de_health_insurance", "Krankenversichertennummer: F518759603", "F518759603"),
    ("de_health_insurance", "KVNR H224760630", "H224760630"),
    ("in_pan", "PAN: ZVFCO5773T", "ZVFCO5773T"),
    ("in_pan", "Permanent Account Number QSRCZ3435B", "QSRCZ3435B"),
    ("in_voter_id", "Voter ID: GLQ5060926", "GLQ5060926"),
    ("in_voter_id", "EPIC No. EUT7915358", "EUT7915358"),
    ("es_cif", "CIF: Q4145161H", "Q4145161H"),
    ("es_cif", "NIF B-1708125-8", "B-1708125-8"),
    ("sg_nric", "NRIC: T0293249G", "T0293249G"),
    ("sg_nric", "FIN No. S8337865D", "S8337865D"),
    ("sg_nric", "FIN: M6200658N", "M6200658N"),
    ("sg_nric", "FIN No. M8906253L", "M8906253L"),
    ("sg_uen", "UEN: 45159457J", "45159457J"),
    ("sg_uen", "Co. Reg. No. 190864031G", "190864031G"),
    ("sg_uen", "GST Reg. No.: 201081777M", "201081777M"),
    ("sg_uen", "公司注册号：200072948G", "200072948G"),  # noqa: RUF001
    ("sg_uen", "Unique Entity Number T16LL9413D", "T16LL9413D"),
    ("sg_uen", "ACRA R18NB6442A", "R18NB6442A"),
    ("sg_uen", "S48TC3665B", "S48TC3665B"),
    ("in_gstin", "GSTIN: 09CGIPP0836R8ZE", "09CGIPP0836R8ZE"),
    ("in_gstin", "16BWUPW0717N3ZL", "16BWUPW0717N3ZL"),
]
EXAMPLES = [
    ("us_itin", "ITIN: 912-90-3456", "912-90-3456"),
    ("us_aba_routing", "routing number 111000025", "111000025"),
    ("us_ein", "EIN 91-1144442", "91-1144442"),
    ("gb_nhs", "NHS number 943 476 5870", "943 476 5870"),
    ("gb_utr", "UTR: 1955839661", "1955839661"),
    ("gb_utr", "HMRC payment reference 1955839661K", "1955839661K"),
    ("de_tax_number", "Steuernummer: 181/815/08155", "181/815/08155"),
    ("de_vat_id", "USt-IdNr.: DE136695976", "DE136695976"),
    ("de_health_insurance", "Versichertennummer: A123456780", "A123456780"),
    ("ca_sin", "NAS : 123 456 782", "123 456 782"),
    ("au_abn", "ABN 51 824 753 556", "51 824 753 556"),
    ("au_acn", "ACN 004 085 616", "004 085 616"),
    ("au_tfn", "TFN: 123 456 782", "123 456 782"),
    ("au_medicare", "Medicare card 2123 45670 1", "2123 45670 1"),
    ("fi_hetu", "henkilötunnus: 131052-308T", "131052-308T"),
    ("fi_hetu", "personbeteckning 131052-308T", "131052-308T"),
    ("kr_rrn", "주민등록번호 971013-9019902", "971013-9019902"),
    ("kr_brn", "사업자등록번호 116-82-00276", "116-82-00276"),
    ("in_pan", "स्थायी खाता संख्या ACUPA7085R", "ACUPA7085R"),
    ("in_gstin", "27AAPFU0939F1ZV", "27AAPFU0939F1ZV"),
    ("in_voter_id", "मतदाता पहचान पत्र WKH1186253", "WKH1186253"),
    ("it_vat", "Partita IVA: 00743110157", "00743110157"),
    ("it_vat", "P.IVA IT00743110157", "IT00743110157"),
    ("es_cif", "CIF: J99216582", "J99216582"),
    ("se_orgnr", "Org.nr 556036-0793", "556036-0793"),
    ("sg_nric", "NRIC S1234567D", "S1234567D"),
    ("sg_nric", "FIN M1234567K", "M1234567K"),
    ("sg_uen", "UEN 00192200M", "00192200M"),
    ("sg_uen", "UEN: 197401143C", "197401143C"),
    ("sg_uen", "S16FC0121D", "S16FC0121D"),
    ("sg_uen", "T01FC6132D", "T01FC6132D"),
    ("za_id", "Identiteitsnommer: 7503305044089", "7503305044089"),
    ("tr_tc_kimlik", "T.C. Kimlik No: 17291716060", "17291716060"),
]

INVALID = [
    ("us_itin", "ITIN: 930-89-5502"),
    ("us_aba_routing", "ABA routing number: 123663665"),
    ("us_ein", "EIN: 17-6569031"),
    ("gb_nhs", "NHS number: 9412483365"),
    ("gb_utr", "UTR: 17225 31948"),
    ("gb_utr", "UTR: 1185188502K"),
    # a UTR glued to another letter is part of a longer reference, not the payment reference
    ("gb_utr", "UTR: 1955839661X"),
    ("de_tax_number", "Steuernummer: 2380421514826"),
    ("ca_sin", "SIN: 393 949 677"),
    ("au_abn", "ABN: 32 728 552 224"),
    ("au_acn", "ACN: 820 201 055"),
    ("au_tfn", "TFN: 697 802 144"),
    ("au_medicare", "Medicare card: 2279 85227 1"),
    ("fi_hetu", "Henkilötunnus: 130812-062D"),
    ("kr_rrn", "주민등록번호: 640427-7844211"),
    ("kr_brn", "사업자등록번호: 089-22-07411"),
    ("it_vat", "Partita IVA: IT28049720378"),
    ("se_orgnr", "Organisationsnummer: 555259-1293"),
    ("za_id", "ID number: 5911044092193"),
    ("tr_tc_kimlik", "T.C. Kimlik No: 89449798029"),
    ("de_vat_id", "USt-IdNr.: DE 543808821"),
    ("de_health_insurance", "Krankenversichertennummer: N736842973"),
    ("in_pan", "PAN: ETGSY5090E"),
    ("in_voter_id", "Voter ID: VXT2673881"),
    ("es_cif", "CIF: B-9689751-2"),
    ("sg_nric", "NRIC: T3656968K"),
    # the check letter of the F/G table where the M series has its own (remainder 8)
    ("sg_nric", "FIN: M5012345M"),
    ("sg_nric", "FIN: M7696017Q"),
    ("in_gstin", "GSTIN: 23TAHPA3667R1ZY"),
    ("sg_uen", "UEN: 45159457K"),
    ("sg_uen", "Co. Reg. No. 190864031H"),
    ("sg_uen", "T16LL9413E"),
    ("sg_uen", "UEN T16AB9413E"),  # no such entity-type code
    ("sg_uen", "UEN T99LL0001J"),  # a year to come
    ("sg_uen", "UEN 209912345Z"),  # a year to come (its check letter holds)
    # a valid DNI after a UEN label is a UEN look-alike: not taken as a DNI either
    ("sg_uen", "UEN: 65275582H"),
]

# Valid values with no label: the format alone is too weak, except for the VAT id written with
# its country prefix and the GSTIN (a mod-36 check character after a PAN).
BARE = [
    ("us_itin", "ref 981-80-3982 ok"),
    ("us_aba_routing", "ref 585707187 ok"),
    ("us_ein", "ref 01-1924960 ok"),
    ("gb_nhs", "ref 358 495 9837 ok"),
    ("gb_utr", "ref 7349847668 ok"),
    ("gb_utr", "ref 8768079114K ok"),
    ("de_tax_number", "ref 08/858/97561 ok"),
    ("ca_sin", "ref 246-121-057 ok"),
    ("au_abn", "ref 98631500727 ok"),
    ("au_acn", "ref 874 722 746 ok"),
    ("au_tfn", "ref 594 662 758 ok"),
    ("au_medicare", "ref 6370 11673 4 ok"),
    ("fi_hetu", "ref 040958-650S ok"),
    ("kr_rrn", "ref 380101-2720171 ok"),
    ("kr_brn", "ref 543-52-12149 ok"),
    ("it_vat", "ref 56566910735 ok"),
    ("se_orgnr", "ref 554373-6374 ok"),
    ("za_id", "ref 7302141308000 ok"),
    ("tr_tc_kimlik", "ref 22323739696 ok"),
    ("de_health_insurance", "ref R839191547 ok"),
    ("in_pan", "ref KXEPY9842T ok"),
    ("in_voter_id", "ref WAY5053269 ok"),
    ("es_cif", "ref B-0339803-9 ok"),
    ("sg_nric", "ref S6261802G ok"),
    ("sg_nric", "ref M7696017P ok"),
    ("sg_uen", "ref 45159457J ok"),
    ("sg_uen", "ref 190864031G ok"),
]

# Prose in the countries' languages with numbers and the label words used in other senses.
PROSE = [
    "Sin embargo, 123 456 782 personas votaron y 46 454 286 no.",
    "The PAN was 12 cm wide and cost 4.99; order 552866-4187 ships today.",
    "Medicare covers 65 million people.\nTable 2123 45670 1 is below.",
    "Das Routing über Port 8443 dauert 120 ms, Steuer 19 %.",
    "La partita è finita 3 a 1 davanti a 00743 tifosi.",
    "Il y avait 123 456 782 visiteurs au salon, ID de session 42.",
    "Sessió 2024: 1 234 567 890 usuaris, la fiscal va parlar.",
    "Seoul 971013 reports; 9019902 won in total.",
    "Version 2.4.1 ships with kernel 6.8 and 131052 users.",
    "Tc 99m is a tracer; T.C. 17 and TC-2 are roads.",
    "Registration no. 4 opens at 9; 20191234 visitors, 201912345 views, S16 FC bus.",
]


def _types(text: str) -> list[tuple[str, str]]:
    return [(span.type, span.value) for span in MASKER.find(text)]


@pytest.mark.parametrize(("pii_type", "text", "value"), VALID + EXAMPLES)
def test_valid_values_after_a_label(pii_type: str, text: str, value: str) -> None:
    assert _types(text) == [(pii_type, value)]
    masked = MASKER.mask(text)
    assert value not in masked
    assert MASKER.mask(masked) == masked


@pytest.mark.parametrize(("pii_type", "text"), INVALID)
def test_checksum_failures_stay_whole(pii_type: str, text: str) -> None:
    # not this type, and not any other (a card, a phone number) either
    assert _types(text) == []


@pytest.mark.parametrize(("pii_type", "text"), BARE)
def test_no_label_no_identifier(pii_type: str, text: str) -> None:
    assert pii_type not in {span.type for span in MASKER.find(text)}


@pytest.mark.parametrize("text", PROSE)
def test_prose_keeps_its_numbers(text: str) -> None:
    assert _types(text) == []


def test_every_rule_type_is_public_and_on_by_default() -> None:
    rules = [*ids.DIGIT_RULES, *ids.LETTER_RULES, *ids.TRAILING_LETTER_RULES]
    for rule in rules:
        assert rule.type in NATIONAL_ID_TYPES
        assert rule.type in ALL_TYPES
        assert rule.type in DEFAULT_TYPES


def test_a_type_can_be_left_out() -> None:
    masker = PiiMasker(types=["email"])
    assert masker.find("ABN 51 824 753 556, NRIC S1234567D") == []


def test_a_labelled_uen_written_as_a_dni_is_a_uen() -> None:
    # 99095145J passes both checks: the label decides, and a DNI needs none
    assert _types("UEN: 99095145J") == [("sg_uen", "99095145J")]
    assert _types("DNI: 99095145J") == [("es_dni", "99095145J")]
    assert _types("ref 99095145J") == [("es_dni", "99095145J")]
    assert _types("DNI: 65275582H") == [("es_dni", "65275582H")]


def test_a_utr_and_its_payment_reference_have_one_pseudonym() -> None:
    masker = PiiMasker(default_operator="pseudonymize", hmac_key="k")
    assert masker.mask("UTR 1955839661") == masker.mask("UTR 1955839661K")
    assert masker.mask("UTR 1955839661") != masker.mask("UTR 8768079114")


def test_a_label_before_a_card_like_identifier_wins() -> None:
    # a 13-digit South African ID that also passes Luhn with a Visa prefix
    text = "ID number: 4001037792185"
    assert is_national_id("za_id", "4001037792185")
    assert _types(text) == [("za_id", "4001037792185")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2123456701", True),
        ("21234567011", True),
        ("2123456711", False),  # check digit
        ("7123456701", False),  # first digit 2-6
        ("212345670", False),
    ],
)
def test_au_medicare_check(value: str, ok: bool) -> None:
    assert is_au_medicare(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("S1234567D", True),
        ("S1234567E", False),
        ("M1234567K", True),  # M series (FINs issued since 2022)
        ("M5012345J", True),  # remainder 8: J in the M table
        ("M5012345M", False),  # ... M in the F/G one
        ("F5012345Q", True),
        ("X1234567D", False),
    ],
)
def test_sg_nric_check(value: str, ok: bool) -> None:
    assert is_sg_nric(value) is ok


@settings(max_examples=200)
@given(st.text("0123456789", min_size=7, max_size=7))
def test_sg_fin_m_series_follows_the_published_rule(digits: str) -> None:
    # As the rule is published: weights 2, 7, 6, 5, 4, 3, 2, plus 3, P = 11 - (sum mod 11),
    # check letter "KLJNPQRTUWX"[P - 1]; every other letter fails.
    total = 3 + sum(w * int(d) for w, d in zip((2, 7, 6, 5, 4, 3, 2), digits, strict=True))
    letter = "KLJNPQRTUWX"[11 - total % 11 - 1]
    for other in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert is_sg_nric(f"M{digits}{other}") is (other == letter)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("A123456780", True), ("A123456781", False), ("1123456780", False), ("A12345678", False)],
)
def test_de_health_insurance_check(value: str, ok: bool) -> None:
    assert is_de_health_insurance(value) is ok


def test_every_type_is_in_the_readme_table() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("#### Types: what counts and what does not") :]
    cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    documented = {name for cell in cells for name in re.findall(r"`([a-z_0-9]+)`", cell)}
    assert set(ALL_TYPES) <= documented, sorted(set(ALL_TYPES) - documented)
