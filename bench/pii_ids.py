# ruff: noqa: RUF001
"""Identifier values for the per-type figures of ``bench/pii.py``: for every national, tax and
company identifier type, values that pass their check and look-alikes written the same way that
fail it, each after a label in one of the country's languages; and the same in lower or mixed
case for the types written with letters (and the IBAN), as forms and chat have them.

Values are drawn at random from the type's written form until they pass (or fail) the engine's
own validator, which wraps python-stdnum wherever it has the type; deterministic by seed.

    python bench/pii_ids.py --seed 1 --per-type 3   # print a few
    python bench/pii_ids.py --seed 1 --per-type 3 --cased
"""

from __future__ import annotations

import argparse
import random
import string

from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii.validators import compact, is_iban, is_national_id

# type -> (written forms: d digit, L upper-case letter, A digit or upper-case letter, anything
# else literal; labels before the value)
FORMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    t.US_SSN: (("ddd-dd-dddd",), ("SSN:", "Social Security number")),
    t.FR_NIR: (("1 dd dd dd ddd ddd dd", "2dddddddddddddd"), ("N° de sécurité sociale :",)),
    t.DE_TAX_ID: (("ddddddddddd", "dd ddd ddd ddd"), ("Steuer-ID:", "IdNr.")),
    t.IT_FISCAL_CODE: (("LLLLLLddLddLdddL",), ("Codice fiscale:", "C.F.", "")),
    t.ES_DNI: (("ddddddddL", "dd.ddd.ddd-L"), ("DNI:",)),
    t.ES_NIE: (("XdddddddL", "YdddddddL"), ("NIE:",)),
    t.GB_NINO: (("LL dd dd dd L", "LLddddddL"), ("NI number:",)),
    t.BR_CPF: (("ddd.ddd.ddd-dd",), ("CPF:",)),
    t.IN_AADHAAR: (("dddd dddd dddd",), ("Aadhaar:", "UID No.")),
    t.JP_MY_NUMBER: (("dddd dddd dddd",), ("マイナンバー：",)),
    t.NL_BSN: (("ddddddddd",), ("BSN:",)),
    t.PL_PESEL: (("ddddddddddd",), ("PESEL:",)),
    t.SE_PERSONNUMMER: (("dddddd-dddd",), ("Personnummer:",)),
    t.US_ITIN: (("9dd-dd-dddd", "9dd dd dddd"), ("ITIN:", "Individual Taxpayer Identification")),
    t.US_ABA_ROUTING: (("ddddddddd",), ("ABA routing number:", "Routing no.", "RTN")),
    t.US_EIN: (("dd-ddddddd",), ("EIN:", "Employer Identification Number", "FEIN")),
    t.GB_NHS: (("ddd ddd dddd", "dddddddddd"), ("NHS number:", "NHS No.")),
    t.GB_UTR: (
        ("dddddddddd", "ddddd ddddd", "ddddddddddK"),
        ("UTR:", "Unique Taxpayer Reference"),
    ),
    t.DE_TAX_NUMBER: (("ddd/ddd/ddddd", "dd/ddd/ddddd", "ddddddddddddd"), ("Steuernummer:",)),
    t.DE_VAT_ID: (("DEddddddddd", "DE ddddddddd"), ("USt-IdNr.:", "VAT:", "")),
    t.DE_HEALTH_INSURANCE: (("Lddddddddd",), ("Krankenversichertennummer:", "KVNR")),
    t.CA_SIN: (("ddd-ddd-ddd", "ddd ddd ddd"), ("SIN:", "Numéro d'assurance sociale :")),
    t.AU_ABN: (("dd ddd ddd ddd", "ddddddddddd"), ("ABN:", "Australian Business Number")),
    t.AU_ACN: (("ddd ddd ddd",), ("ACN:", "Australian Company Number")),
    t.AU_TFN: (("ddd ddd ddd",), ("TFN:", "Tax File Number")),
    t.AU_MEDICARE: (("dddd ddddd d", "dddddddddd"), ("Medicare card:", "Medicare No.")),
    t.FI_HETU: (("dddddd-dddL", "ddddddAdddL"), ("Henkilötunnus:", "HETU")),
    t.KR_RRN: (("dddddd-ddddddd",), ("주민등록번호:", "RRN")),
    t.KR_BRN: (("ddd-dd-ddddd",), ("사업자등록번호:", "BRN")),
    t.IN_PAN: (("LLLPLddddL", "LLLCLddddL"), ("PAN:", "Permanent Account Number")),
    t.IN_GSTIN: (("ddLLLPLddddLdZA", "ddLLLCLddddLdZA"), ("GSTIN:", "")),
    t.IN_VOTER_ID: (("LLLddddddd",), ("Voter ID:", "EPIC No.")),
    t.IT_VAT: (("ddddddddddd", "ITddddddddddd"), ("Partita IVA:", "P.IVA")),
    t.ES_CIF: (("Bdddddddd", "QdddddddL", "B-ddddddd-d"), ("CIF:", "NIF")),
    t.SE_ORGNR: (("55dddd-dddd",), ("Organisationsnummer:", "Org.nr")),
    t.SG_NRIC: (("SdddddddL", "TdddddddL", "FdddddddL", "MdddddddL"), ("NRIC:", "FIN No.")),
    t.SG_UEN: (
        ("ddddddddL", "19dddddddL", "20dddddddL", "TddLLddddL", "SddLLddddL", "RddLLddddL"),
        ("UEN:", "Unique Entity Number", "Co. Reg. No.", "GST Reg. No."),
    ),
    t.ZA_ID: (("ddddddddddddd",), ("ID number:", "Identiteitsnommer:")),
    t.TR_TC_KIMLIK: (("ddddddddddd",), ("T.C. Kimlik No:", "TCKN")),
}


#: The IBAN in lower or mixed case only (its upper-case form is in the labelled corpus of
#: ``bench/pii_corpus.py``): German, British and Dutch account numbers, grouped or not.
IBAN_FORMS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("DEdd dddd dddd dddd dddd dd", "GBddLLLLdddddddddddddd", "NLdd LLLL dddd dddd dd"),
    ("IBAN:", "Bankverbindung:", "Rekeningnummer:", "Account number"),
)

# Upper-case letters written as themselves in a form ("L" and "A" stand for any letter).
_LITERAL_LETTERS = string.ascii_uppercase.replace("L", "").replace("A", "")


def _fill(rng: random.Random, form: str) -> str:
    out = []
    for ch in form:
        if ch == "d":
            out.append(rng.choice(string.digits))
        elif ch == "L":
            out.append(rng.choice(string.ascii_uppercase))
        elif ch == "A":
            out.append(rng.choice(string.digits + string.ascii_uppercase))
        else:
            out.append(ch)
    return "".join(out)


def _checked(pii_type: str, value: str) -> str:
    return value.replace(" ", "") if pii_type == t.FI_HETU else compact(value)


def _passes(pii_type: str, value: str) -> bool:
    if pii_type == t.IBAN:
        return is_iban(compact(value))
    return is_national_id(pii_type, _checked(pii_type, value))


def values(
    pii_type: str,
    rng: random.Random,
    *,
    valid: bool,
    tries: int = 200_000,
    forms: tuple[str, ...] = (),
) -> str:
    """One value of the type's written forms (or of ``forms``) that passes (``valid``) or fails
    its check; a failing one differs from a passing one in one character."""
    forms = forms or FORMS[pii_type][0]
    for _ in range(tries):
        form = rng.choice(forms)
        value = _fill(rng, form)
        if not _passes(pii_type, value):
            continue
        if valid:
            return value
        # The same value with one character changed, the last one first (a check digit, as a
        # typo would); a type without a check digit fails on another part (an ITIN group, an
        # EIN prefix, a PAN holder letter). A letter the form ends with (the "K" of a UTR
        # payment reference) is kept: the value before it is what fails.
        suffix = len(form) - len(form.rstrip(_LITERAL_LETTERS))
        for i in range(len(value) - 1 - suffix, -1, -1):
            if not value[i].isalnum():
                continue
            pool = string.digits if value[i].isdigit() else string.ascii_uppercase
            for ch in rng.sample(pool, len(pool)):
                wrong = value[:i] + ch + value[i + 1 :]
                if ch != value[i] and not _passes(pii_type, wrong):
                    return wrong
    raise RuntimeError(f"no {'valid' if valid else 'invalid'} {pii_type} drawn")


def sheet(seed: int, per_type: int) -> list[tuple[str, str, str, bool]]:
    """``(type, label, value, valid)`` rows: ``per_type`` values that pass and as many
    look-alikes that fail, for every identifier type."""
    rng = random.Random(seed)
    rows = []
    for pii_type, (_, labels) in FORMS.items():
        for i in range(2 * per_type):
            valid = i % 2 == 0
            rows.append((pii_type, rng.choice(labels), values(pii_type, rng, valid=valid), valid))
    return rows


def _recase(rng: random.Random, value: str) -> str:
    """The value in lower case, or in a random mix of cases with at least one lower-case
    letter."""
    if rng.random() < 0.5:
        return value.lower()
    mixed = "".join(ch.lower() if rng.random() < 0.5 else ch for ch in value)
    if mixed.isupper():
        k = next(i for i, ch in enumerate(mixed) if ch.isalpha())
        mixed = mixed[:k] + mixed[k].lower() + mixed[k + 1 :]
    return mixed


def cased_forms() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """The types written with letters, each with its forms that hold one and its labels: the
    letter-led and trailing-letter identifiers of ``FORMS``, and the IBAN."""
    out = {t.IBAN: IBAN_FORMS}
    for pii_type, (forms, labels) in FORMS.items():
        lettered = tuple(f for f in forms if any(ch.isupper() for ch in f))
        if lettered:
            out[pii_type] = (lettered, tuple(label for label in labels if label))
    return out


def cased_sheet(seed: int, per_type: int) -> list[tuple[str, str, str, bool]]:
    """``(type, label, value, valid)`` rows of the types written with letters, their values in
    lower or mixed case (the check holds, or fails, on the value upper-cased) after a label,
    itself in lower case half of the time: ``per_type`` values that pass and as many
    look-alikes that fail."""
    rng = random.Random(seed)
    rows = []
    for pii_type, (forms, labels) in cased_forms().items():
        for i in range(2 * per_type):
            valid = i % 2 == 0
            label = rng.choice(labels)
            label = label.lower() if rng.random() < 0.5 else label
            value = _recase(rng, values(pii_type, rng, valid=valid, forms=forms))
            rows.append((pii_type, label, value, valid))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-type", type=int, default=2)
    parser.add_argument("--cased", action="store_true", help="lower and mixed case")
    args = parser.parse_args()
    for row in (cased_sheet if args.cased else sheet)(args.seed, args.per_type):
        print(*row, sep="\t")


if __name__ == "__main__":
    main()
