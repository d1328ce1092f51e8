# ruff: noqa: RUF001
"""A labelled, multilingual evaluation corpus of web-page-like records for the PII benchmark.

Each record is a forum post, shop page, CV, invoice, bug report with logs or contact page in one of
twelve locales. Personal values are checksum-valid (made with ``phonenumbers``, ``python-stdnum``
and Faker) and labelled with their type and offsets; hard negatives (order numbers failing Luhn,
ISBNs, SKUs, invoice numbers, UUIDs, git hashes, prices, versions, timestamps, plain dates, years,
scores, maths, example.com addresses, documentation and private IPs) are labelled too.

Everything is deterministic by seed: ``generate(seed, n)`` always returns the same records.

    python bench/pii_corpus.py --seed 1 --records 5   # print a few records
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from faker import Faker
from stdnum import ean, luhn, verhoeff
from stdnum import iban as std_iban
from stdnum.br import cpf
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.jp import in_ as jp_in
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn

LOCALES: dict[str, dict[str, Any]] = {
    "en_US": {"region": "US", "id": "us_ssn", "lang": "en"},
    "en_GB": {"region": "GB", "id": "gb_nino", "lang": "en"},
    "fr_FR": {"region": "FR", "id": "fr_nir", "lang": "fr"},
    "de_DE": {"region": "DE", "id": "de_tax_id", "lang": "de"},
    "es_ES": {"region": "ES", "id": "es_dni", "lang": "es"},
    "pt_BR": {"region": "BR", "id": "br_cpf", "lang": "pt"},
    "it_IT": {"region": "IT", "id": "it_fiscal_code", "lang": "it"},
    "nl_NL": {"region": "NL", "id": "nl_bsn", "lang": "nl"},
    "ja_JP": {"region": "JP", "id": "jp_my_number", "lang": "ja"},
    "en_IN": {"region": "IN", "id": "in_aadhaar", "lang": "en"},
    "pl_PL": {"region": "PL", "id": "pl_pesel", "lang": "pl"},
    "sv_SE": {"region": "SE", "id": "se_personnummer", "lang": "sv"},
}

ID_LABELS = {
    "us_ssn": ["SSN:", "Social Security number:", "SSN #"],
    "gb_nino": ["NI number:", "National Insurance No.", "NINO:"],
    "fr_nir": ["N° de sécurité sociale :", "NIR :", "Numéro de sécurité sociale"],
    "de_tax_id": ["Steuer-ID:", "Steuerliche Identifikationsnummer:", "IdNr."],
    "es_dni": ["DNI:", "DNI nº", "Documento (DNI):"],
    "es_nie": ["NIE:", "NIE nº"],
    "br_cpf": ["CPF:", "CPF nº", "Meu CPF é"],
    "it_fiscal_code": ["Codice fiscale:", "C.F.", "Cod. fiscale"],
    "nl_bsn": ["BSN:", "Burgerservicenummer:", "BSN-nummer"],
    "jp_my_number": ["マイナンバー：", "個人番号：", "My Number:"],
    "in_aadhaar": ["Aadhaar:", "Aadhaar No.", "UIDAI number"],
    "pl_pesel": ["PESEL:", "nr PESEL", "PESEL nr"],
    "se_personnummer": ["Personnummer:", "Personnr", "Pnr:"],
}
# Identifiers whose checksum and shape are strong enough to be found without a label.
STRONG_IDS = {"fr_nir", "gb_nino", "es_dni", "es_nie", "it_fiscal_code"}

PHONE_LABELS = {
    "en": ["Phone:", "Call me at", "Tel.", "Mobile:", "WhatsApp"],
    "fr": ["Tél. :", "Téléphone :", "Portable :", "Appelez-nous au"],
    "de": ["Tel.:", "Telefon:", "Handy:", "Mobil:"],
    "es": ["Tel.:", "Teléfono:", "Móvil:", "Llámanos al"],
    "pt": ["Tel:", "Telefone:", "Celular:", "WhatsApp:"],
    "it": ["Tel.", "Telefono:", "Cellulare:"],
    "nl": ["Tel:", "Telefoon:", "Mobiel:"],
    "ja": ["電話：", "TEL:", "携帯："],
    "pl": ["Tel.:", "Telefon:", "tel. kom."],
    "sv": ["Tel:", "Telefon:", "Mobil:"],
}
DOB = {
    "en": ["Date of birth: {d}/{m}/{y}", "born on {M} {d}, {y}", "DOB: {y}-{m}-{d}"],
    "fr": ["né le {d} {M} {y}", "Date de naissance : {d}/{m}/{y}", "née le {d}/{m}/{y}"],
    "de": ["geboren am {d}.{m}.{y}", "Geburtsdatum: {d}. {M} {y}", "geb. {d}.{m}.{y}"],
    "es": ["fecha de nacimiento: {d}/{m}/{y}", "nacido el {d} de {M} de {y}"],
    "pt": ["data de nascimento: {d}/{m}/{y}", "nascida em {d} de {M} de {y}"],
    "it": ["nato il {d}/{m}/{y}", "data di nascita: {d} {M} {y}"],
    "nl": ["geboortedatum: {d}-{m}-{y}", "geboren op {d} {M} {y}"],
    "ja": ["生年月日：{y}年{m}月{d}日", "{y}年{m}月{d}日生まれ"],
    "pl": ["data urodzenia: {d}.{m}.{y}", "urodzony {d}.{m}.{y}"],
    "sv": ["född {y}-{m}-{d}", "födelsedatum: {y}-{m}-{d}"],
}
MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro "
    "dezembro",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre "
    "dicembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
}
ADDRESS = {
    "en_US": ["{n} {N} Street", "{n} {N} Avenue", "{n} {N} Road"],
    "en_GB": ["{n} {N} Road", "{n} {N} Lane", "{n} {N} Close"],
    "en_IN": ["{n} {N} Road", "{n} {N} Street"],
    "fr_FR": ["{n}, rue {N}", "{n} avenue {N}", "{n} boulevard {N}"],
    "de_DE": ["{N}straße {n}", "{N}weg {n}", "{N}str. {n}"],
    "es_ES": ["Calle {N} {n}", "Avenida {N}, {n}", "Plaza {N} {n}"],
    "pt_BR": ["Rua {N}, {n}", "Avenida {N}, {n}"],
    "it_IT": ["Via {N} {n}", "Piazza {N} {n}", "Corso {N} {n}"],
    "nl_NL": ["{N}straat {n}", "{N}laan {n}", "{N}gracht {n}"],
    "pl_PL": ["ul. {N} {n}", "al. {N} {n}"],
    "sv_SE": ["{N}gatan {n}", "{N}vägen {n}"],
}


@dataclass
class Record:
    """One page: its text, labelled PII spans and labelled hard-negative spans."""

    id: str
    locale: str
    kind: str
    text: str
    pii: list[tuple[str, int, int]] = field(default_factory=list)
    negatives: list[tuple[str, int, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "locale": self.locale,
            "kind": self.kind,
            "text": self.text,
            "pii": [[k, s, e, self.text[s:e]] for k, s, e in self.pii],
            "negatives": [[k, s, e, self.text[s:e]] for k, s, e in self.negatives],
        }


class _Builder:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.pii: list[tuple[str, int, int]] = []
        self.neg: list[tuple[str, int, int]] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.size += len(s)

    def pii_value(self, kind: str, value: str) -> None:
        self.pii.append((kind, self.size, self.size + len(value)))
        self.add(value)

    def neg_value(self, kind: str, value: str) -> None:
        self.neg.append((kind, self.size, self.size + len(value)))
        self.add(value)


class Generator:
    """Makes values and records; one instance per seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._it_cities: tuple[str, ...] | None = None
        self.fakers = {}
        for i, loc in enumerate(LOCALES):
            f = Faker(loc)
            f.seed_instance(seed * 1000 + i)
            self.fakers[loc] = f

    # --- values -------------------------------------------------------------------------------
    def city(self, locale: str) -> str:
        """``Faker.city()``, made deterministic: the it_IT provider draws from a list built
        from a set, whose order changes with the interpreter's hash seed. Same draw, sorted
        list."""
        f = self.fakers[locale]
        if locale != "it_IT":
            return str(f.city())
        if self._it_cities is None:
            lists = [p.cities for p in f.get_providers() if hasattr(p, "cities")]
            self._it_cities = tuple(sorted(lists[0])) if lists else ()
        return str(f.random_element(self._it_cities)) if self._it_cities else str(f.city())

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def phone(self, region: str) -> str:
        rng = self.rng
        kind = rng.choice(
            [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
        )
        base = phonenumbers.example_number_for_type(region, kind)
        assert base is not None
        nsn = phonenumbers.national_significant_number(base)
        for _ in range(200):
            cand = nsn[:-4] + self.digits(4)
            num = phonenumbers.parse("+" + str(base.country_code) + cand)
            if phonenumbers.is_valid_number(num):
                break
        else:
            num = base
        style = rng.random()
        if style < 0.4:
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.NATIONAL)
        if style < 0.8:
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if style < 0.9:
            return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        intl = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return "00" + intl[1:]

    def card(self) -> str:
        prefix = self.rng.choice(["4", "51", "52", "55", "37", "6011", "353"])
        length = 15 if prefix == "37" else 16
        body = prefix + self.digits(length - len(prefix) - 1)
        num = body + luhn.calc_check_digit(body)
        style = self.rng.random()
        if style < 0.4:
            return num
        sep = " " if style < 0.8 else "-"
        if length == 15:
            return sep.join([num[:4], num[4:10], num[10:]])
        return sep.join(num[i : i + 4] for i in range(0, 16, 4))

    def iban(self, locale: str) -> str:
        f = self.fakers[locale]
        for _ in range(50):
            value = f.iban()
            if std_iban.is_valid(value):
                break
        else:
            value = "DE89370400440532013000"
        if self.rng.random() < 0.6:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ip(self) -> str:
        while True:
            if self.rng.random() < 0.75:
                addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
                    self.rng.getrandbits(32)
                )
            else:
                addr = ipaddress.IPv6Address((0x2A00 << 112) | self.rng.getrandbits(100))
            if addr.is_global:
                return str(addr)

    def email(self, locale: str) -> str:
        f = self.fakers[locale]
        value = f.free_email() if self.rng.random() < 0.7 else f.company_email()
        if value.split("@")[1] in ("example.com", "example.org", "example.net"):
            value = value.split("@")[0] + "@mailbox.org"
        if not value.isascii():
            value = "user" + self.digits(3) + "@gmail.com"
        r = self.rng.random()
        local, domain = value.split("@")
        if r < 0.08:
            return f"{local} [at] {domain.replace('.', ' [dot] ')}"
        if r < 0.14:
            return f"{local}(at){domain}"
        if r < 0.18:
            return f"{local}＠{domain}"
        return value

    def national_id(self, kind: str) -> str:
        rng = self.rng
        while True:
            if kind == "us_ssn":
                v = f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
                if ssn.is_valid(v):
                    return v if rng.random() < 0.8 else v.replace("-", " ")
            elif kind == "gb_nino":
                a = rng.choice("ABCEGHJKLMNOPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
                if a in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
                    continue
                d = self.digits(6)
                sfx = rng.choice("ABCD")
                if rng.random() < 0.5:
                    return f"{a} {d[:2]} {d[2:4]} {d[4:]} {sfx}"
                return f"{a}{d}{sfx}"
            elif kind == "fr_nir":
                base = (
                    f"{rng.choice('12')}{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
                    f"{rng.randint(1, 95):02d}{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
                )
                v = base + nir.calc_check_digits(base)
                if nir.is_valid(v):
                    if rng.random() < 0.5:
                        return f"{v[0]} {v[1:3]} {v[3:5]} {v[5:7]} {v[7:10]} {v[10:13]} {v[13:]}"
                    return v
            elif kind == "de_tax_id":
                v = self.digits(11)
                if v[0] != "0" and idnr.is_valid(v):
                    return v if rng.random() < 0.7 else f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"
            elif kind == "es_dni":
                body = self.digits(8)
                return body + dni.calc_check_digit(body)
            elif kind == "es_nie":
                p = rng.choice("XYZ")
                body = self.digits(7)
                return p + body + nie.calc_check_digit(p + body)
            elif kind == "br_cpf":
                v = self.digits(11)
                if cpf.is_valid(v):
                    return cpf.format(v) if rng.random() < 0.7 else v
            elif kind == "it_fiscal_code":
                f = self.fakers["it_IT"]
                v = f.ssn()
                if codicefiscale.is_valid(v):
                    return v
            elif kind == "nl_bsn":
                v = self.digits(9)
                if v[0] != "0" and bsn.is_valid(v):
                    return v
            elif kind == "jp_my_number":
                body = self.digits(11)
                v = body + jp_in.calc_check_digit(body)
                if jp_in.is_valid(v):
                    return v if rng.random() < 0.5 else f"{v[:4]} {v[4:8]} {v[8:]}"
            elif kind == "in_aadhaar":
                body = str(rng.randint(2, 9)) + self.digits(10)
                v = body + verhoeff.calc_check_digit(body)
                if v != v[::-1]:
                    return v if rng.random() < 0.3 else f"{v[:4]} {v[4:8]} {v[8:]}"
            elif kind == "pl_pesel":
                v = self.fakers["pl_PL"].pesel()
                if pesel.is_valid(v):
                    return v
            elif kind == "se_personnummer":
                v = self.fakers["sv_SE"].ssn()
                if personnummer.is_valid(v):
                    return v
            else:
                raise ValueError(kind)

    def dob(self, lang: str) -> tuple[str, str, str]:
        """(prefix text, date value, suffix text) of a date of birth in context."""
        tpl = self.rng.choice(DOB[lang])
        y, m, d = self.rng.randint(1940, 2005), self.rng.randint(1, 12), self.rng.randint(1, 28)
        months = MONTHS.get(lang, MONTHS["en"]).split()
        if lang == "ja":
            value = f"{y}年{m}月{d}日"
        else:
            date_tpl = tpl[tpl.index("{") :]
            value = date_tpl.format(d=f"{d:02d}", m=f"{m:02d}", y=y, M=months[m - 1])
            if "{M}" in date_tpl:
                value = date_tpl.format(d=d, m=m, y=y, M=months[m - 1])
        head = tpl[: tpl.index("{")]
        tail = tpl.split("{d}日", 1)[1] if lang == "ja" else ""
        return head, value, tail

    def address(self, locale: str) -> str | None:
        if locale not in ADDRESS:
            return None
        name = self.fakers[locale].last_name()
        if not name.isalpha():
            name = "Linden"
        tpl = self.rng.choice(ADDRESS[locale])
        if "{N}str" in tpl or "{N}weg" in tpl or "{N}laan" in tpl or "{N}gatan" in tpl:
            name = name.capitalize()
        if "{N}" in tpl and tpl.index("{N}") == 0:
            name = name.capitalize()
        return tpl.format(n=self.rng.randint(1, 250), N=name)

    # --- hard negatives -----------------------------------------------------------------------
    def negative(self) -> tuple[str, str, str, str]:
        """(kind, prefix, value, suffix) of one look-alike that must survive."""
        rng = self.rng
        kind = rng.choice(NEGATIVE_KINDS)
        if kind == "order_number":
            while True:
                v = "4" + self.digits(15)
                if not luhn.is_valid(v):
                    return kind, "Order no. ", v, ""
        if kind == "isbn":
            body = "978" + self.digits(9)
            v = body + ean.calc_check_digit(body)
            return kind, "ISBN ", f"{v[:3]}-{v[3]}-{v[4:7]}-{v[7:12]}-{v[12]}", ""
        if kind == "sku":
            return kind, "", f"SKU-{self.digits(8)}", ""
        if kind == "invoice":
            return kind, "Invoice ", f"INV-{rng.randint(2015, 2025)}-{self.digits(6)}", ""
        if kind == "uuid":
            return kind, "request id ", str(_uuid(rng)), ""
        if kind == "git_hash":
            v = "".join(rng.choice("0123456789abcdef") for _ in range(rng.choice([7, 40])))
            return kind, "commit ", v, ""
        if kind == "price":
            return kind, "", rng.choice(["€", "$", "£", "R$ "]) + f"{rng.randint(1, 9999)}.99", ""
        if kind == "version":
            v = ".".join(str(rng.randint(0, 12)) for _ in range(3)) + f".{rng.randint(1, 250)}"
            pre = rng.choice(["version ", "v", "Release ", "build ", "upgrade to "])
            return kind, pre, v, ""
        if kind == "timestamp":
            y, mo, d = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
            h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
            if rng.random() < 0.5:
                return kind, "at ", f"{y}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z", ""
            return kind, "[", f"{y}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}", "]"
        if kind == "unix_time":
            return kind, "ts=", str(rng.randint(1_400_000_000, 1_800_000_000)), ""
        if kind == "date":
            y, mo, d = rng.randint(2000, 2025), rng.randint(1, 12), rng.randint(1, 28)
            return (
                kind,
                "posted ",
                rng.choice([f"{d:02d}/{mo:02d}/{y}", f"{y}-{mo:02d}-{d:02d}"]),
                "",
            )
        if kind == "year":
            return kind, "since ", str(rng.randint(1950, 2025)), ""
        if kind == "score":
            return kind, "final score ", f"{rng.randint(0, 9)}-{rng.randint(0, 9)}", ""
        if kind == "math":
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            return kind, "", f"{a} * {b} = {a * b}", ""
        if kind == "example_email":
            dom = rng.choice(["example.com", "example.org", "mail.example", "test.test"])
            return kind, "e.g. ", f"{rng.choice(['user', 'jane', 'info'])}@{dom}", ""
        if kind == "doc_ip":
            return (
                kind,
                "e.g. ",
                rng.choice(["192.0.2.", "198.51.100.", "203.0.113."]) + str(rng.randint(1, 254)),
                "",
            )
        if kind == "private_ip":
            return kind, "gateway ", f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}", ""
        if kind == "tracking":
            return kind, "Tracking ", f"1Z{self.digits(16)}", ""
        raise ValueError(kind)


NEGATIVE_KINDS = [
    "order_number",
    "isbn",
    "sku",
    "invoice",
    "uuid",
    "git_hash",
    "price",
    "version",
    "timestamp",
    "unix_time",
    "date",
    "year",
    "score",
    "math",
    "example_email",
    "doc_ip",
    "private_ip",
    "tracking",
]


def _uuid(rng: random.Random) -> str:
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


KINDS = ["forum", "shop", "cv", "invoice", "bug_report", "contact"]


_PROSE_NUMBERS = [
    "{n} replies",
    "{n} views",
    "page {k} of {n}",
    "{k}%",
    "{n} items",
    "{k} min read",
    "{n} comments",
    "in {y}",
    "{k}/5 stars",
    "{k}x",
    "{n} km",
]


def _prose(gen: Generator, locale: str, sentences: int) -> str:
    """Locale prose with the small numbers of real pages (counts, ratings, years)."""
    f = gen.fakers[locale]
    rng = gen.rng
    out = []
    for _ in range(sentences):
        sentence = f.sentence(nb_words=rng.randint(8, 22))
        if rng.random() < 0.35:
            num = rng.choice(_PROSE_NUMBERS).format(
                n=rng.randint(2, 4000), k=rng.randint(1, 12), y=rng.randint(1990, 2025)
            )
            sentence = f"{sentence[:-1]} ({num})."
        out.append(sentence)
    return " ".join(out)


def make_record(gen: Generator, idx: int) -> Record:
    """One page of a random kind and locale."""
    rng = gen.rng
    locale = rng.choice(list(LOCALES))
    info = LOCALES[locale]
    lang = info["lang"]
    kind = rng.choice(KINDS)
    f = gen.fakers[locale]
    b = _Builder()
    b.add(f"{f.catch_phrase() if hasattr(f, 'catch_phrase') else f.word()}\n")
    items: list[str] = []
    plan = {
        "forum": ["prose", "email", "prose", "neg", "phone", "prose", "neg", "neg"],
        "shop": ["prose", "neg", "neg", "neg", "prose", "address", "phone", "email", "neg"],
        "cv": ["name", "dob", "address", "phone", "email", "id", "prose", "neg", "iban"],
        "invoice": ["address", "neg", "neg", "iban", "card", "id", "neg", "prose", "email"],
        "bug_report": ["prose", "ip", "neg", "neg", "neg", "ip", "email", "prose", "neg"],
        "contact": ["prose", "phone", "email", "address", "ip", "card", "id", "prose", "neg"],
    }[kind]
    items = list(plan)
    for item in items:
        if item == "prose":
            for _ in range(rng.randint(1, 4)):
                b.add(_prose(gen, locale, rng.randint(3, 9)) + "\n")
        elif item == "name":
            b.add(f"{f.name()}\n")
        elif item == "email":
            b.add(rng.choice(["Contact: ", "E-mail: ", "mail me at ", ""]))
            b.pii_value("email", gen.email(locale))
            b.add(".\n")
        elif item == "phone":
            b.add(rng.choice(PHONE_LABELS[lang]) + " ")
            b.pii_value("phone", gen.phone(info["region"]))
            b.add("\n")
        elif item == "card":
            b.add(rng.choice(["Card: ", "Paid with card ", "CB "]))
            b.pii_value("credit_card", gen.card())
            b.add("\n")
        elif item == "iban":
            b.add("IBAN: ")
            b.pii_value("iban", gen.iban(locale))
            b.add("\n")
        elif item == "ip":
            b.add(rng.choice(["Connection from ", "client ip=", "[error] client ", "IP: "]))
            ip = gen.ip()
            if ":" in ip and rng.random() < 0.5:
                b.add("[")
                b.pii_value("ip_address", ip)
                b.add("]:443 timed out\n")
            else:
                b.pii_value("ip_address", ip)
                b.add(rng.choice([" refused\n", "\n", ":443 timed out\n"]))
        elif item == "id":
            id_kind = info["id"]
            if id_kind == "es_dni" and rng.random() < 0.3:
                id_kind = "es_nie"
            label = rng.choice(ID_LABELS[id_kind])
            if id_kind in STRONG_IDS and rng.random() < 0.2:
                label = rng.choice(["ref", "-", ""])
            b.add(label + " ")
            b.pii_value(id_kind, gen.national_id(id_kind))
            b.add("\n")
        elif item == "dob":
            head, value, tail = gen.dob(lang)
            b.add(head)
            b.pii_value("date_of_birth", value)
            b.add(tail + "\n")
        elif item == "address":
            addr = gen.address(locale)
            if addr is not None:
                b.pii_value("street_address", addr)
                b.add(f", {f.postcode()} {gen.city(locale)}\n")
        elif item == "neg":
            nkind, pre, value, post = gen.negative()
            b.add(pre)
            b.neg_value(nkind, value)
            b.add(post + rng.choice([". ", "\n", " - ", "; "]))
    return Record(f"r{idx}", locale, kind, "".join(b.parts), b.pii, b.neg)


def generate(seed: int, n: int) -> list[Record]:
    """``n`` records, the same for the same seed."""
    gen = Generator(seed)
    return [make_record(gen, i) for i in range(n)]


def prose_pages(seed: int, n: int) -> list[str]:
    """Pages of locale prose with everyday numbers and no personal data: the bulk of a crawl,
    for measuring throughput at a realistic density of candidates."""
    gen = Generator(seed)
    pages = []
    for _ in range(n):
        locale = gen.rng.choice(list(LOCALES))
        pages.append("\n".join(_prose(gen, locale, gen.rng.randint(3, 9)) for _ in range(6)))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--records", type=int, default=5)
    args = parser.parse_args()
    for rec in generate(args.seed, args.records):
        print(json.dumps(rec.to_json(), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
