"""The table of national, tax and company identifiers added to the first thirteen: how each one
is written, the context words (in its country's languages) that must precede it when its format
alone is weak, and where the scan meets it.

Three kinds, by the character the value starts with and what follows its digits:

* ``DIGIT_RULES``: digits only (with spaces, dashes, dots or slashes between groups), read in a
  digit cluster like the first national identifiers (see ``_patterns.ID_SHAPES``). Shapes use
  ``\\d`` only: the engine matches them against a cluster's layout, where every digit is ``0``,
  before it reads the digits, so constraints on digit values belong to the validators.
* ``LETTER_RULES``: a value that starts with letters before the digits (``DE136695976``,
  ``ABCPE1234F``), tried when the scan stops at a digit right after an upper-case letter.
* ``TRAILING_LETTER_RULES``: digits followed by letters (``131052-308T``, ``27AAPFU0939F1ZV``),
  tried when a digit cluster is glued to an upper-case letter and has one of the rule's lengths
  (a cluster of any other length is never looked at for them).

A rule with ``context=None`` is confirmed by its checksum and format alone; every other one needs
one of its words on the same line within 60 characters before the value, then its checksum.

The rules are written in upper case, as the identifiers are printed. Forms and chat have them in
lower or mixed case too (``de136695976``, ``rssmra85t10a562s``, ``27aapfu0939f1zv``):
``CASED_LETTER_RULES`` and ``CASED_TRAILING_RULES`` read those, always after a label (the
type's context words, its acronyms in any case, or ``STRONG_LABELS`` for the types whose upper
case form needs none), and check the value upper-cased. In lower case a shape alone is too close
to the tokens of code and markup (``h264``, hashes, class names), where a label never precedes
them. The scan passes over digits glued to a lower-case letter without looking (see
``_patterns.scan_passing``); ``CASED_STOPS`` says where it stops all the same.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii._patterns import FISCAL_CODE, IBAN, NINO, NINO_CONTEXT, Keywords


class DigitRule(NamedTuple):
    """An identifier written with digits only."""

    type: str
    shape: re.Pattern[str]
    min_digits: int
    context: Keywords


class LetterRule(NamedTuple):
    """An identifier that starts with letters; ``back`` is how many characters before the
    first digit it starts."""

    type: str
    shape: re.Pattern[str]
    back: int
    context: Keywords | None


class TrailingRule(NamedTuple):
    """An identifier whose digits are followed by letters; ``clusters`` are the lengths of the
    digit cluster the scan reads before its first letter (separators included)."""

    type: str
    shape: re.Pattern[str]
    clusters: tuple[int, ...]
    context: Keywords | None


def _digits(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\d){pattern}(?!\d)", re.ASCII)


def _token(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"{pattern}(?![A-Za-z0-9])", re.ASCII)


_ITIN = Keywords(
    " itin ",
    "individual taxpayer",
    "taxpayer identification",
    "identificación personal del contribuyente",
    "identificacion personal del contribuyente",
    acronyms=("ITIN",),
)
_ABA = Keywords(
    "routing",
    "aba number",
    "transit number",
    "número de ruta",
    "numero de ruta",
    "número de tránsito",
    acronyms=("ABA", "RTN"),
)
_EIN = Keywords(
    "employer identification",
    "federal tax id",
    "tax id",
    "número de identificación patronal",
    "número de identificación del empleador",
    acronyms=("EIN", "FEIN"),
)
_NHS = Keywords(" nhs", "national health service", "rhif gig", acronyms=("GIG",))
_UTR = Keywords(
    "unique taxpayer reference",
    "taxpayer reference",
    "self assessment",
    "cyfeirnod trethdalwr",
    acronyms=("UTR",),
)
# HMRC's Self Assessment payment reference is the UTR followed by "K": it is labelled so too.
_UTR_PAYMENT = Keywords(
    *_UTR.words, "payment reference", "payment ref", acronyms=(*_UTR.acronyms, "HMRC")
)
_STNR = Keywords(
    "steuernummer", "steuer nr", "st. nr", "st.nr", " stnr", "tax number", "numéro fiscal"
)
_KVNR = Keywords(
    "krankenversicherten",
    "versichertennummer",
    "versicherten nr",
    "versicherten id",
    "krankenkasse",
    "gesundheitskarte",
    "health insurance",
    acronyms=("KVNR",),
)
_SIN = Keywords(
    "social insurance",
    "assurance sociale",
    acronyms=("SIN", "NAS"),
)
_ABN = Keywords("australian business number", "business number", acronyms=("ABN",))
_ACN = Keywords("australian company number", "company number", acronyms=("ACN",))
_TFN = Keywords("tax file number", "tax file no", acronyms=("TFN",))
_MEDICARE = Keywords("medicare")
_HETU = Keywords(
    "henkilötunnus",
    " hetu",
    " sotu",
    "personbeteckning",
    "personal identity code",
    "social security",
)
_RRN = Keywords(
    "주민등록번호", "주민번호", "외국인등록번호", "resident registration", acronyms=("RRN",)
)
_BRN = Keywords(
    "사업자등록번호", "사업자 등록 번호", "사업자번호", "business registration", acronyms=("BRN",)
)
_PAN = Keywords(
    "permanent account number",
    "pan card",
    "pan number",
    "pan no",
    "पैन",
    "स्थायी खाता",
    acronyms=("PAN",),
)
_EPIC = Keywords(
    "voter",
    "electoral photo",
    "epic no",
    "epic number",
    "मतदाता",
    "निर्वाचक",
    acronyms=("EPIC",),
)
_IVA = Keywords(
    "partita iva",
    "p.iva",
    "p. iva",
    " piva",
    "codice iva",
    "numero iva",
    "vat number",
    "vat no",
    acronyms=("IVA", "VAT"),
)
_CIF = Keywords(
    "código de identificación fiscal",
    "codigo de identificacion fiscal",
    "identificación fiscal",
    "identificació fiscal",
    "identificación tributaria",
    acronyms=("CIF", "NIF"),
)
_ORGNR = Keywords(
    "organisationsnummer",
    "organisationsnr",
    "org.nr",
    "org. nr",
    " orgnr",
    " org nr",
    "organisation number",
    "organization number",
)
_NRIC = Keywords(
    "nric",
    "identity card",
    "ic number",
    "ic no",
    "fin number",
    "fin no",
    "kad pengenalan",
    "身份证",
    "அடையாள அட்டை",
    acronyms=("NRIC", "FIN", "IC"),
)
# The Unique Entity Number is printed after "UEN", or as the company's or business's
# registration number ("Co. Reg. No."; "GST Reg. No." too, as an entity's GST number is most
# often its UEN).
_UEN = Keywords(
    "unique entity",
    "registration no",
    "registration number",
    "reg no",
    "reg. no",
    "company reg",
    "co. reg",
    " co reg",
    "gst reg",
    "roc no",
    "nombor pendaftaran",
    "公司注册",
    "注册号",
    "注册编号",
    acronyms=("UEN", "ACRA"),
)
_ZA_ID = Keywords(
    "id number",
    "identity number",
    "id no",
    "identity document",
    "identiteitsnommer",
    "id nommer",
    "south african id",
    " rsa id",
    acronyms=("ID",),
)
_TCKN = Keywords(
    "kimlik",
    "tckn",
    "t.c. no",
    " tc no",
    "turkish id",
    "nüfus",
    acronyms=("TCKN", "TC"),
)

DIGIT_RULES: tuple[DigitRule, ...] = (
    DigitRule(t.US_ITIN, _digits(r"\d{3}(?P<sep>[\- ]?)\d{2}(?P=sep)\d{4}"), 9, _ITIN),
    DigitRule(t.US_ABA_ROUTING, _digits(r"\d{4}[\- ]?\d{4}[\- ]?\d|\d{9}"), 9, _ABA),
    DigitRule(t.US_EIN, _digits(r"\d{2}-?\d{7}"), 9, _EIN),
    DigitRule(t.GB_NHS, _digits(r"\d{3}(?P<sep>[\- ]?)\d{3}(?P=sep)\d{4}"), 10, _NHS),
    DigitRule(t.GB_UTR, _digits(r"\d{5} ?\d{5}"), 10, _UTR),
    DigitRule(
        t.DE_TAX_NUMBER,
        _digits(r"\d{2,3}/\d{3,4}/\d{4,5}|\d{5}/\d{5}|\d{10,13}"),
        10,
        _STNR,
    ),
    DigitRule(t.CA_SIN, _digits(r"\d{3}(?P<sep>[\- ]?)\d{3}(?P=sep)\d{3}"), 9, _SIN),
    DigitRule(t.AU_ABN, _digits(r"\d{2} ?\d{3} ?\d{3} ?\d{3}"), 11, _ABN),
    DigitRule(t.AU_ACN, _digits(r"\d{3} ?\d{3} ?\d{3}"), 9, _ACN),
    DigitRule(t.AU_TFN, _digits(r"\d{3} ?\d{3} ?\d{2,3}"), 8, _TFN),
    DigitRule(t.AU_MEDICARE, _digits(r"\d{4} ?\d{5} ?\d(?:[ /\-]?\d)?"), 10, _MEDICARE),
    DigitRule(t.FI_HETU, _digits(r"\d{6}[\-+]\d{4}"), 10, _HETU),
    DigitRule(t.KR_RRN, _digits(r"\d{6}[\- ]?\d{7}"), 13, _RRN),
    DigitRule(t.KR_BRN, _digits(r"\d{3}(?P<sep>[\- ]?)\d{2}(?P=sep)\d{5}"), 10, _BRN),
    DigitRule(t.IT_VAT, _digits(r"\d{11}"), 11, _IVA),
    DigitRule(t.SE_ORGNR, _digits(r"\d{6}-?\d{4}"), 10, _ORGNR),
    DigitRule(t.ZA_ID, _digits(r"\d{6} ?\d{4} ?\d{2} ?\d"), 13, _ZA_ID),
    DigitRule(t.TR_TC_KIMLIK, _digits(r"\d{11}"), 11, _TCKN),
)

LETTER_RULES: tuple[LetterRule, ...] = (
    # A VAT id with its country prefix is confirmed by the prefix and its check digit.
    LetterRule(t.DE_VAT_ID, _token(r"DE ?\d{9}"), 2, None),
    LetterRule(t.DE_VAT_ID, _token(r"DE ?\d{9}"), 3, None),
    LetterRule(t.IT_VAT, _token(r"IT ?\d{11}"), 2, None),
    LetterRule(t.IT_VAT, _token(r"IT ?\d{11}"), 3, None),
    LetterRule(t.DE_HEALTH_INSURANCE, _token(r"[A-Z]\d{9}"), 1, _KVNR),
    LetterRule(t.IN_PAN, _token(r"[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]"), 5, _PAN),
    LetterRule(t.IN_VOTER_ID, _token(r"[A-Z]{3}\d{7}"), 3, _EPIC),
    LetterRule(t.ES_CIF, _token(r"[A-HJNP-SUVW][\- ]?\d{7}[\- ]?[0-9A-J]"), 1, _CIF),
    LetterRule(t.ES_CIF, _token(r"[A-HJNP-SUVW][\- ]?\d{7}[\- ]?[0-9A-J]"), 2, _CIF),
    LetterRule(t.SG_NRIC, _token(r"[STFGM]\d{7}[A-Z]"), 1, _NRIC),
    # A UEN of the other entities: R, S or T and the year's last two digits, an entity-type
    # code, four digits and a check letter; the code and the check letter confirm it
    # (python-stdnum), no label needed.
    LetterRule(t.SG_UEN, _token(r"[RST]\d{2}[A-Z]{2}\d{4}[A-Z]"), 1, None),
)

TRAILING_LETTER_RULES: tuple[TrailingRule, ...] = (
    # A state code, a PAN, an entity digit, "Z" and a mod-36 check character.
    TrailingRule(t.IN_GSTIN, _token(r"\d{2}[A-Z]{5}\d{4}[A-Z][0-9A-Z]Z[0-9A-Z]"), (2,), None),
    # Date, century sign, serial number and a check character (a letter here). A dash is a
    # separator of the cluster (131052-308), a letter ends it (100853).
    TrailingRule(t.FI_HETU, _token(r"\d{6}[\-+A-FU-Y]\d{3}[A-Y]"), (6, 10), _HETU),
    # A UTR as the Self Assessment payment reference, "K" after its ten digits (the K is
    # masked with it).
    TrailingRule(t.GB_UTR, _token(r"\d{5} ?\d{5}K"), (10, 11), _UTR_PAYMENT),
    # A Singapore UEN of a business (eight digits) or a local company (the year and five
    # digits) and its check letter: nine or ten characters ending in a letter are common, so
    # it needs its label.
    TrailingRule(t.SG_UEN, _token(r"\d{8,9}[A-Z]"), (8, 9), _UEN),
)

#: Identifiers validated in the form they are written (a separator is part of the value).
KEEP_FORM = frozenset({t.FI_HETU})


# --- lower and mixed case ---------------------------------------------------------------------

# Labels of the types whose upper-case form is confirmed by its format and checksum alone.
_IBAN_LABEL = Keywords(
    " iban",
    "bank account",
    "account number",
    "account no",
    "bankverbindung",
    "kontoverbindung",
    "kontonummer",
    "bankkonto",
    " konto",
    "compte bancaire",
    "numéro de compte",
    "coordonnées bancaires",
    " rib ",
    "cuenta bancaria",
    "número de cuenta",
    "numero de cuenta",
    "conto corrente",
    "coordinate bancarie",
    "conta bancária",
    "número da conta",
    "rekeningnummer",
    "bankrekening",
    "numer konta",
    "rachunek",
    acronyms=("IBAN",),
)
_CODICE_FISCALE = Keywords(
    "codice fiscale",
    "cod. fisc",
    "cod.fisc",
    "cod fisc",
    "c.f.",
    " cf ",
    "fiscal code",
    "tax code",
    "tessera sanitaria",
    acronyms=("CF",),
)
_DE_VAT = Keywords(
    "ust id",
    "ust. id",
    "ustid",
    " ust ",
    "umsatzsteuer",
    " mwst",
    " vat",
    "tax id",
    acronyms=("VAT",),
)
_GSTIN = Keywords(
    "gstin",
    "gst no",
    "gst number",
    "gst reg",
    "gstn",
    "goods and services tax",
    "जीएसटी",
    acronyms=("GSTIN", "GST"),
)

#: The label of a value written in lower or mixed case, for the types whose upper-case form
#: needs none.
STRONG_LABELS: dict[str, Keywords] = {
    t.IBAN: _IBAN_LABEL,
    t.IT_FISCAL_CODE: _CODICE_FISCALE,
    t.DE_VAT_ID: _DE_VAT,
    t.IT_VAT: _IVA,
    t.SG_UEN: _UEN,
    t.IN_GSTIN: _GSTIN,
}


def _any_case(shape: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(shape.pattern, re.ASCII | re.IGNORECASE)


#: The countries of the IBAN registry (python-stdnum's; a test compares the two).
IBAN_COUNTRIES = frozenset(
    " ".join(
        (
            "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR",
            "GB GE GI GL GR GT HN HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME",
            "MK MN MR MT MU NI NL NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK SM SO ST SV",
            "TL TN TR UA VA VG XK YE",
        )
    ).split(" ")
)


def _country_led(shape: re.Pattern[str]) -> re.Pattern[str]:
    """``shape`` in any case, starting with the code of an IBAN country: in lower case, two
    letters and two digits also start many a UUID or hash (ba873091-a075-...)."""
    first: dict[str, str] = {}
    for cc in sorted(IBAN_COUNTRIES):
        first[cc[0]] = first.get(cc[0], "") + cc[1]
    countries = "|".join(f"{a}[{rest}]" for a, rest in first.items())
    return re.compile(f"(?=(?:{countries})){shape.pattern}", re.ASCII | re.IGNORECASE)


def _label(pii_type: str, context: Keywords | None) -> Keywords:
    """The words that label a value in lower or mixed case: the type's context words (or its
    ``STRONG_LABELS``) and its acronyms in any case, as whole words: "nric: s1234567d",
    "pan abcpe1234f" (in upper case only "PAN" is a label, "pan" a word; a lower-case value
    in the shape of a PAN after it is one all the same)."""
    words = STRONG_LABELS[pii_type] if context is None else context
    acronyms = sorted(words.acronyms)
    lowered = (f" {a.lower()} " for a in acronyms)
    return Keywords(*words.words, *lowered, acronyms=tuple(acronyms))


#: Letter-led identifiers in lower or mixed case (``CASED_STOPS`` must cover each shape). The
#: Spanish NIE is left out: its rule reads every case already (x9613851n), and so does the
#: NINO's with spaces (hh 01 02 03 d, after a NINO word); glued (hh010203d) it is here.
CASED_LETTER_RULES: tuple[LetterRule, ...] = (
    LetterRule(t.IBAN, _country_led(IBAN), 2, _label(t.IBAN, None)),
    LetterRule(t.GB_NINO, NINO, 2, NINO_CONTEXT),
    LetterRule(t.IT_FISCAL_CODE, _any_case(FISCAL_CODE), 6, _label(t.IT_FISCAL_CODE, None)),
    *(
        LetterRule(r.type, _any_case(r.shape), r.back, _label(r.type, r.context))
        for r in LETTER_RULES
    ),
)

#: Identifiers whose digits are followed by letters, in lower or mixed case.
CASED_TRAILING_RULES: tuple[TrailingRule, ...] = tuple(
    TrailingRule(r.type, _any_case(r.shape), r.clusters, _label(r.type, r.context))
    for r in TRAILING_LETTER_RULES
)


def _stops(rules: tuple[LetterRule, ...]) -> str:
    """A pattern matched right after the first digit of a cluster: whether the token around it
    has the shape of one of ``rules`` in any case, from ``back`` characters before that digit,
    where no letter or digit precedes it. Tokens too short for any of them (``mp3``, ``h264``)
    fail on the first test."""
    by_back: dict[int, list[str]] = {}
    for rule in rules:
        by_back.setdefault(rule.back, []).append(rule.shape.pattern)
    alternatives = "|".join(
        rf"(?<=(?<![A-Za-z0-9])(?=(?i:{'|'.join(shapes)}))[\s\S]{{{back}}}[0-9])"
        for back, shapes in sorted(by_back.items())
    )
    return rf"(?=[0-9][ \-]?[0-9A-Za-z]{{2}})(?:{alternatives})"


#: Where the scan stops at a digit cluster glued to a lower-case letter (which it otherwise
#: passes over without a look): a token in the shape of a letter-led identifier in lower or
#: mixed case. Matched right after the cluster's first digit.
CASED_STOPS = _stops(CASED_LETTER_RULES)
CASED_AT = re.compile(CASED_STOPS, re.ASCII)
