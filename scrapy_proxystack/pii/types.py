"""PII type names, the span record and the operator names shared by the engine and the pipeline.

The type names are part of the public vocabulary: they appear in settings
(``PROXYSTACK_PII_TYPES``, ``PROXYSTACK_PII_POLICY``), in stats keys and in placeholders, so they
never change once released.
"""

from __future__ import annotations

from dataclasses import dataclass

EMAIL = "email"
PHONE = "phone"
CREDIT_CARD = "credit_card"
IBAN = "iban"
IP_ADDRESS = "ip_address"
US_SSN = "us_ssn"
FR_NIR = "fr_nir"
DE_TAX_ID = "de_tax_id"
ES_DNI = "es_dni"
ES_NIE = "es_nie"
GB_NINO = "gb_nino"
BR_CPF = "br_cpf"
IN_AADHAAR = "in_aadhaar"
JP_MY_NUMBER = "jp_my_number"
IT_FISCAL_CODE = "it_fiscal_code"
NL_BSN = "nl_bsn"
PL_PESEL = "pl_pesel"
SE_PERSONNUMMER = "se_personnummer"
US_ITIN = "us_itin"
US_ABA_ROUTING = "us_aba_routing"
US_EIN = "us_ein"
GB_NHS = "gb_nhs"
GB_UTR = "gb_utr"
DE_TAX_NUMBER = "de_tax_number"
DE_VAT_ID = "de_vat_id"
DE_HEALTH_INSURANCE = "de_health_insurance"
CA_SIN = "ca_sin"
AU_ABN = "au_abn"
AU_ACN = "au_acn"
AU_TFN = "au_tfn"
AU_MEDICARE = "au_medicare"
FI_HETU = "fi_hetu"
KR_RRN = "kr_rrn"
KR_BRN = "kr_brn"
IN_PAN = "in_pan"
IN_GSTIN = "in_gstin"
IN_VOTER_ID = "in_voter_id"
IT_VAT = "it_vat"
ES_CIF = "es_cif"
SE_ORGNR = "se_orgnr"
SG_NRIC = "sg_nric"
SG_UEN = "sg_uen"
ZA_ID = "za_id"
TR_TC_KIMLIK = "tr_tc_kimlik"
CRYPTO_WALLET = "crypto_wallet"
MAC_ADDRESS = "mac_address"
DATE_OF_BIRTH = "date_of_birth"
STREET_ADDRESS = "street_address"
PERSON = "person"

#: National, tax and company identifiers, each confirmed by its official checksum (the Indian
#: PAN, which has none published, by its format) and, where the format alone is weak, by a
#: context word in one of the country's languages.
NATIONAL_ID_TYPES: tuple[str, ...] = (
    US_SSN,
    FR_NIR,
    DE_TAX_ID,
    ES_DNI,
    ES_NIE,
    GB_NINO,
    BR_CPF,
    IN_AADHAAR,
    JP_MY_NUMBER,
    IT_FISCAL_CODE,
    NL_BSN,
    PL_PESEL,
    SE_PERSONNUMMER,
    US_ITIN,
    US_ABA_ROUTING,
    US_EIN,
    GB_NHS,
    GB_UTR,
    DE_TAX_NUMBER,
    DE_VAT_ID,
    DE_HEALTH_INSURANCE,
    CA_SIN,
    AU_ABN,
    AU_ACN,
    AU_TFN,
    AU_MEDICARE,
    FI_HETU,
    KR_RRN,
    KR_BRN,
    IN_PAN,
    IN_GSTIN,
    IN_VOTER_ID,
    IT_VAT,
    ES_CIF,
    SE_ORGNR,
    SG_NRIC,
    SG_UEN,
    ZA_ID,
    TR_TC_KIMLIK,
)

#: Every type the engine knows. ``person`` needs a name detector (see ``PiiMasker``).
ALL_TYPES: tuple[str, ...] = (
    EMAIL,
    PHONE,
    CREDIT_CARD,
    IBAN,
    IP_ADDRESS,
    *NATIONAL_ID_TYPES,
    CRYPTO_WALLET,
    MAC_ADDRESS,
    DATE_OF_BIRTH,
    STREET_ADDRESS,
    PERSON,
)

#: Types detected when the caller does not choose: all rule-based ones.
DEFAULT_TYPES: tuple[str, ...] = tuple(t for t in ALL_TYPES if t != PERSON)

MASK = "mask"
PARTIAL = "partial"
PSEUDONYMIZE = "pseudonymize"
REMOVE_FIELD = "remove_field"
DROP_ITEM = "drop_item"

#: Operators understood by the engine. ``remove_field`` and ``drop_item`` act on whole items in
#: the pipeline; on plain text the engine falls back to the typed placeholder for them, so text
#: that leaves the engine is always masked.
OPERATORS: tuple[str, ...] = (MASK, PARTIAL, PSEUDONYMIZE, REMOVE_FIELD, DROP_ITEM)


#: Entries of each per-value validation cache (phone numbers, cards, IBANs, IDs, IPs): enough
#: for the values a site repeats on every page (a footer's phone number), and a bound on memory
#: however long the crawl.
CACHE_SIZE = 8192


def placeholder(pii_type: str) -> str:
    """The typed placeholder that replaces a value, e.g. ``[EMAIL]``."""
    return f"[{pii_type.upper()}]"


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One detected value: its type and where it sits in the scanned text."""

    type: str
    start: int
    end: int
    value: str
