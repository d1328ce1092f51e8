"""The forms real pages use: dotted and lower-case identifiers, context words in the country's
languages, e-mail addresses spelled out or encoded, internationalised domains, dashed IBANs,
addresses outside 2000::/3 and with an interface name; and look-alikes that fail their own check
staying whole instead of being taken by a looser rule of another type."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxystack.pii import PiiMasker

MASKER = PiiMasker()
DATA = Path(__file__).parent / "data"

FORMS = [
    ("es_dni", "DNI 12.345.678-Z, gracias", "12.345.678-Z"),
    ("es_dni", "DNI: 12.345.678Z.", "12.345.678Z"),
    ("es_dni", "mi dni es 12345678z.", "12345678z"),
    ("es_nie", "NIE x9613851n ok", "x9613851n"),
    ("es_nie", "NIE x-9613851-n ok", "x-9613851-n"),
    ("gb_nino", "NI number hh 01 02 03 d", "hh 01 02 03 d"),
    ("gb_nino", "national insurance: hh 010203 d", "hh 010203 d"),
    ("in_aadhaar", "UID No. 2345 6789 0124", "2345 6789 0124"),
    ("in_aadhaar", "UID: 234567890124", "234567890124"),
    ("in_aadhaar", "आधार संख्या 2345 6789 0124", "2345 6789 0124"),
    ("us_ssn", "número de seguro social: 536904399", "536904399"),
    ("email", "write to jane AT mailbox DOT org today", "jane AT mailbox DOT org"),
    ("email", "JANE.ROE AT MAILBOX DOT CO DOT UK", "JANE.ROE AT MAILBOX DOT CO DOT UK"),
    ("email", "mail jane.roe at mailbox dot org please", "jane.roe at mailbox dot org"),
    ("email", "contact j_doe42 at web dot de", "j_doe42 at web dot de"),
    ("email", "пишите a@xn--d1acufc.xn--p1ai сегодня", "a@xn--d1acufc.xn--p1ai"),
    ("email", "mail jane.roe@mailbox.xn--p1ai", "jane.roe@mailbox.xn--p1ai"),
    ("iban", "IBAN DE89-3704-0044-0532-0130-00 BIC", "DE89-3704-0044-0532-0130-00"),
    ("iban", "IBAN NL91-ABNA-0417-1643-00", "NL91-ABNA-0417-1643-00"),
    ("ip_address", "peer 4000::1 connected", "4000::1"),
    ("ip_address", "translated from 64:ff9b::808:808 here", "64:ff9b::808:808"),
    ("ip_address", "bound to 8.8.8.8@eth0 now", "8.8.8.8"),
    ("ip_address", "via 2a00:1450:4001:82b::200e@wlan0", "2a00:1450:4001:82b::200e"),
]

LOOKALIKES = [
    # an invalid IBAN's digit groups are not phone numbers
    "IBAN NL91 ABNA 0417 1643 01",
    "IBAN NL91-ABNA-0417-1643-01",
    "IBAN DE89 3704 0044 0532 0130 01",
    # an invalid SSN (area 078-05 is the famous advertising number) is not a phone number
    "SSN: 078-05-1120",
    "ref 078-05-1120",
    "social security 666-12-3456",
    # wrong control letters, lower case too
    "DNI 12.345.678-A",
    "dni 12345678a",
    "NIE x9613851a",
    # a lower-case NINO shape without its label is prose
    "on 12 34 56 a walk",
    # times of day, not addresses
    "at 10:30:00 and 23:59:59",
    "x86 and y2k and z80",
    # reserved names spelled out
    "bob_1 at mail dot example dot com",
    "jane.roe at mailbox dot test",
]

# Ordinary prose with "at" and "dot" in it: the spelled-out e-mail rule must find nothing.
PROSE = [
    "Look at the dot com bubble of 2000.",
    "Meet me at noon dot five, or at the cafe.",
    "He looked at it. Dot matrix printers were loud.",
    "Arrive at gate B dot 12 at 10:30.",
    "I am at home dot com is a site I like.",
    "Version 1.2 at build dot net was released.",
    "We met at the Dot Com party at Jane's.",
    "Polka dot dresses at Gap dot com are on sale.",
    "AT&T DOT COM is a brand, at least it was.",
    "x at y dot z",
    "Click at the red dot, then at the blue dot on the map.",
    "Le rendez-vous est at home, dot final.",
    "Score: 3 at half time, dot ball next.",
    "The cursor sits at position 4 dot 2 of the grid.",
]


@pytest.mark.parametrize(("pii_type", "text", "value"), FORMS)
def test_forms_real_pages_use(pii_type: str, text: str, value: str) -> None:
    spans = MASKER.find(text)
    assert [(s.type, s.value) for s in spans] == [(pii_type, value)]
    masked = MASKER.mask(text)
    assert value not in masked
    assert MASKER.mask(masked) == masked


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_stay_whole(text: str) -> None:
    assert MASKER.find(text) == []


@pytest.mark.parametrize("text", PROSE)
def test_spelled_out_rule_finds_nothing_in_prose(text: str) -> None:
    assert MASKER.find(text) == []


def test_a_phone_word_still_makes_a_phone() -> None:
    # written the way an SSN is, but after a phone word and not after an SSN label
    assert MASKER.mask("call 078-05-1120") == "call [PHONE]"


_words = st.sampled_from(
    ["at", "AT", "dot", "DOT", "the", "com", "org", "jane", "j.doe", "home", "5", "Dot", ".", ","]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_words, max_size=14).map(" ".join))
def test_spelled_out_rule_is_idempotent(text: str) -> None:
    masked = MASKER.mask(text)
    assert MASKER.mask(masked) == masked


# --- wallets and hardware addresses -----------------------------------------------------------

NEW_TYPES = [
    (
        "crypto_wallet",
        "send to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 now",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    ),
    (
        "crypto_wallet",
        "btc: 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy.",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    ),
    (
        "crypto_wallet",
        "tips bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq thanks",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    ),
    (
        "crypto_wallet",
        "eth 0x52908400098527886E0F7030069857D2E4169EE7 ok",
        "0x52908400098527886E0F7030069857D2E4169EE7",
    ),
    ("mac_address", "ether 00:1A:2B:3C:4D:5E up", "00:1A:2B:3C:4D:5E"),
    ("mac_address", "hw 00-1a-2b-3c-4d-5e", "00-1a-2b-3c-4d-5e"),
]

NEW_TYPE_LOOKALIKES = [
    "bad 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",  # base58check failure
    "bad bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp",  # bech32 checksum failure
    "xbc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",  # glued to a word
    "tx 0x52908400098527886E0F7030069857D2E4169EE752908400098527886E0F7030",  # a hash, not 40
    "mcast 01:00:5e:00:00:fb",  # multicast
    "ref 12-34-56-78-90-12",  # digits and dashes only
    "at 10:30:00, 3px, 1st, 0xff",
]


@pytest.mark.parametrize(("pii_type", "text", "value"), NEW_TYPES)
def test_wallets_and_mac_addresses(pii_type: str, text: str, value: str) -> None:
    spans = MASKER.find(text)
    assert [(s.type, s.value) for s in spans] == [(pii_type, value)]
    masked = MASKER.mask(text)
    assert MASKER.mask(masked) == masked


@pytest.mark.parametrize("text", NEW_TYPE_LOOKALIKES)
def test_wallet_and_mac_lookalikes(text: str) -> None:
    assert MASKER.find(text) == []


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # an identifier that starts inside a cluster of digit groups: once it is masked, the
        # groups before it are a cluster of their own (here a phone number)
        ("AADHAR:010000 0/401111111111", "AADHAR:[PHONE]/[IN_AADHAAR]"),
        ("x 010000 0)4111111111111111", "x [PHONE][CREDIT_CARD]"),
        # a value glued to the next token: once it is masked, the token is no longer a tail
        ("010000 0,4111111111111111", "[PHONE],[CREDIT_CARD]"),
        ("4111111111111111-(010000 0", "[CREDIT_CARD]-[PHONE]"),
    ],
)
def test_the_rest_of_a_token_reads_as_it_will_once_masked(text: str, masked: str) -> None:
    assert MASKER.mask(text) == masked
    assert MASKER.mask(masked) == masked


def test_a_prose_corpus_keeps_everything() -> None:
    # Pages of prose in the twelve locales of bench/pii_corpus.py (prose_pages, seed 2027),
    # with the everyday numbers of web pages (counts, ratings, years, percentages) and no
    # personal data, plus the sentences above: every rule, every type, finds nothing.
    corpus = (DATA / "pii_prose.txt").read_text(encoding="utf-8")
    text = corpus + "\n" + "\n".join(PROSE)
    assert len(text) > 50_000
    assert MASKER.find(text) == []
    for paragraph in text.split("\n"):
        assert MASKER.find(paragraph) == []
