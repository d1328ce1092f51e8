"""Regular expressions of the engine: the one-pass scanner, the shapes of each type and the
context words that confirm weak candidates.

The scanner's first element is a single character class. CPython's ``re`` then skips every
character outside that class in a tight C loop, which is what makes the one pass run at over
100 MB/s on prose; every branch after it is tried only at those characters.
"""

from __future__ import annotations

import re
from functools import lru_cache

from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii.types import CACHE_SIZE

# A run of digit groups joined by one separator (space, no-break space, - . /) or parentheses.
# Every repetition is bounded. An unbounded run made one cluster of a whole megabyte of
# "1 0 0 " or "1.2.3.4.": each value found in it restarted the scan on the rest of the run
# (quadratic), and ``re`` kept one backtracking frame per group (hundreds of bytes per input
# byte). No personal value is longer than a few groups, so a run is read in windows of at most
# ``MAX_GROUPS`` groups (and ``MAX_DIGITS`` digits per group): each window costs a bounded
# amount, and the next one starts where the scan resumes.
MAX_GROUPS = 16
MAX_DIGITS = 40
_D = rf"\d{{0,{MAX_DIGITS}}}"
_D1 = rf"\d{{1,{MAX_DIGITS}}}"
_NUM_REST = rf"{_D}\)?{_D}(?:[ \u00a0\-./]\(?{_D1}\)?{_D}|\({_D1}\){_D}){{0,{MAX_GROUPS}}}"

# Characters that hide an ``@`` from a plain search but not from a reader: zero-width space,
# non-joiner, joiner, word joiner, byte-order mark.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
_LOCAL_CHARS = r"A-Za-z0-9À-ÖØ-öø-ÿ._%+'\-"
_LABEL_CHARS = "A-Za-z0-9À-ÖØ-öø-ÿ"

_START = "[0-9@\uff20\\[(<{+\uff0b%&]"
_NOT_START = "[^0-9@\uff20\\[(<{+\uff0b%&]"
# What can follow each character of _START at a candidate, with the character consumed
# (one named group per kind of candidate).
_TAILS = (
    r"(?<=\[)(?P<ph>[A-Z][A-Z0-9_]{1,30}(?::[0-9a-f]{4,32})?\])"
    r"|(?<=[\[(<{])(?P<oat>\s?(?:at|AT|At)\s?[\])>}])"
    # An @ (or its URL or HTML encoding) between what can end a local part and start a domain:
    # any other @ ("@@@@", "@user", "a @ ") is passed over by the regex engine itself.
    f"|(?<=[{_LOCAL_CHARS}\\s{ZERO_WIDTH}][@\uff20])(?=[\\s{ZERO_WIDTH}]?[{_LABEL_CHARS}])(?P<at>)"
    f"|(?<=[{_LOCAL_CHARS}]%)(?P<pct>40)(?=[{_LABEL_CHARS}])"
    f"|(?<=[{_LOCAL_CHARS}]&)(?P<ent>#64;|#[xX]40;|commat;)(?=[{_LABEL_CHARS}])"
    "|(?<=[+\uff0b(])(?P<pnum>\\(?\\d" + _NUM_REST + r")"
    r"|(?<=\d)(?P<num>" + _NUM_REST + r")"
)

#: Every candidate: a character of _START and what follows it. Its matches are the places
#: where the scan stops (the benchmark counts them).
SCAN = re.compile(f"{_START}(?:{_TAILS})", re.ASCII)


# --- e-mail -------------------------------------------------------------------------------------
LOCAL_TAIL = re.compile(rf"(?<![{_LOCAL_CHARS}])[{_LOCAL_CHARS}]{{1,64}}\s?\Z")
_LABEL = r"[A-Za-z0-9À-ÖØ-öø-ÿ](?:[A-Za-z0-9À-ÖØ-öø-ÿ\-]{0,61}[A-Za-z0-9À-ÖØ-öø-ÿ])?"
# At most 16 labels: a domain has a handful, and an unbounded repetition let "a@b.b.b.b..."
# cost (and keep a backtracking frame for) every label of a megabyte-long run.
# A top-level domain: letters, or an internationalised one in its ASCII form (xn--p1ai).
_TLD = r"(?:[A-Za-z]{2,24}|xn--[A-Za-z0-9\-]{1,59}[A-Za-z0-9])"
DOMAIN = re.compile(rf"(?:{_LABEL}\.){{1,16}}{_TLD}(?![A-Za-z0-9\-])")
_ODOT = r"(?:\s?[\[(<{]\s?(?:dot|DOT|Dot|\.)\s?[\])>}]\s?|\s(?:dot|DOT)\s|\.)"
OBF_DOMAIN = re.compile(rf"\s?(?:{_LABEL}{_ODOT}){{1,16}}{_TLD}(?![A-Za-z0-9\-])")
# An address spelled out in words: "jane AT mailbox DOT org" (upper case, any user name) or
# "jane.roe at mailbox dot org" (lower case: only when the user name has a dot, digit, _, + or
# -, as in "look at the dot com bubble" it has not). The last label must be a real top-level
# domain (see WORDED_TLDS).
WORDED_EMAIL = re.compile(
    r"(?<![\w.@+\-])(?P<local>[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63})"
    r" (?P<at>at|AT) "
    r"(?P<domain>[A-Za-z0-9][A-Za-z0-9\-]{0,62}"
    r"(?: (?:dot|DOT) [A-Za-z0-9][A-Za-z0-9\-]{0,62}){1,4})"
    r"(?![\w@])"
)
WORDED_DOT = re.compile(r" (?:dot|DOT) ")
#: Top-level domains accepted at the end of an address spelled out in words.
WORDED_TLDS = frozenset(
    " ".join(
        (
            "com org net edu gov mil int info biz io co me ai app dev uk de fr es it nl be ch",
            "at se no dk fi pl pt br mx ar cl pe ca us au nz jp cn kr in ru ua tr gr ie cz sk",
            "hu ro bg hr si lt lv ee is lu za sg hk tw my th vn id ph il ae sa eu",
        )
    ).split(" ")
)
EXAMPLE_DOMAINS: frozenset[str] = frozenset({"example.com", "example.net", "example.org"})
EXAMPLE_TLDS = frozenset({"example", "test", "invalid", "localhost"})

# --- wallets and hardware addresses ------------------------------------------------------------
# Bitcoin: base58 (P2PKH 1..., P2SH 3...) or bech32 (bc1...); Ethereum: 0x and 40 hex digits.
BTC_BASE58 = re.compile(r"[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![0-9A-Za-z])", re.ASCII)
BTC_BECH32 = re.compile(r"bc1[02-9ac-hj-np-z]{11,71}(?![0-9A-Za-z])", re.ASCII)
ETH = re.compile(r"0[xX][0-9a-fA-F]{40}(?![0-9A-Za-z])", re.ASCII)
# Six hex pairs joined by one separator, matched at a cluster that starts with a digit.
MAC = re.compile(
    r"[0-9][0-9A-Fa-f](?P<sep>[:\-])[0-9A-Fa-f]{2}(?:(?P=sep)[0-9A-Fa-f]{2}){4}(?![0-9A-Za-z:\-])",
    re.ASCII,
)

# --- shapes inside a digit cluster --------------------------------------------------------------
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)", re.ASCII)
IPV6 = re.compile(r"[0-9][0-9a-fA-F]{0,3}(?::[0-9a-fA-F]{0,4}){2,7}(?![0-9a-zA-Z])", re.ASCII)
# An interface name after an address: 8.8.8.8@eth0, fe80::1@wlan0.
IFACE = re.compile(r"@[a-z]{2,8}[0-9]{0,3}(?![\w.@\-])", re.ASCII)
CARD = re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,18}(?!\d)", re.ASCII)
NUM_DATE = re.compile(
    r"(?:\d{1,2}[./\-]\d{1,2}[./\-](?:\d{4}|\d{2})|\d{4}[./\-]\d{1,2}[./\-]\d{1,2})(?![\d])",
    re.ASCII,
)
YEAR = re.compile(r"(?:19|20)\d\d", re.ASCII)

# (type, shape, needs a context word unless the shape is the formatted one)
ID_SHAPES: tuple[tuple[str, re.Pattern[str], re.Pattern[str] | None], ...] = (
    (
        t.FR_NIR,
        re.compile(r"(?<!\d)[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}(?!\d)", re.ASCII),
        None,
    ),
    (
        t.US_SSN,
        re.compile(r"(?<!\d)\d{3}(?P<ssn_sep>[\- ]?)\d{2}(?P=ssn_sep)\d{4}(?!\d)", re.ASCII),
        re.compile(r"\d{3}([\- ])\d{2}\1\d{4}"),
    ),
    (
        t.BR_CPF,
        re.compile(r"(?<!\d)\d{3}\.?\d{3}\.?\d{3}-?\d{2}(?!\d)", re.ASCII),
        re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}"),
    ),
    (t.DE_TAX_ID, re.compile(r"(?<!\d)\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)", re.ASCII), None),
    (t.PL_PESEL, re.compile(r"(?<!\d)\d{11}(?!\d)", re.ASCII), None),
    (t.IN_AADHAAR, re.compile(r"(?<!\d)[2-9]\d{3}[ \-]?\d{4}[ \-]?\d{4}(?!\d)", re.ASCII), None),
    (t.JP_MY_NUMBER, re.compile(r"(?<!\d)\d{4}[ \-]?\d{4}[ \-]?\d{4}(?!\d)", re.ASCII), None),
    (t.NL_BSN, re.compile(r"(?<!\d)\d{4}\.?\d{2}\.?\d{3}(?!\d)", re.ASCII), None),
    (t.SE_PERSONNUMMER, re.compile(r"(?<!\d)(?:\d{2})?\d{6}[\-+]?\d{4}(?!\d)", re.ASCII), None),
)

#: The identifier shapes with every digit class widened to ``\d``: they match a cluster's
#: layout (every digit written ``0``) wherever the real shape can match the cluster.
LOOSE_ID_SHAPES: dict[str, re.Pattern[str]] = {
    pii_type: re.compile(shape.pattern.replace("[12]", r"\d").replace("[2-9]", r"\d"), re.ASCII)
    for pii_type, shape, _ in ID_SHAPES
}

# Letter-led identifiers, matched at a position just before a digit cluster.
IBAN = re.compile(
    r"[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]{4}){2,7}(?:[ \-]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])", re.ASCII
)
NINO = re.compile(r"[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d](?![A-Za-z0-9])", re.ASCII)
FISCAL_CODE = re.compile(r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z](?![A-Za-z0-9])", re.ASCII)
NIE = re.compile(r"[XYZxyz][\- ]?\d{7}[\- ]?[A-Za-z](?![A-Za-z0-9])", re.ASCII)
DNI = re.compile(r"(?:\d{8}|\d{2}\.\d{3}\.\d{3})[\- ]?[A-Za-z](?![A-Za-z0-9])", re.ASCII)


# Markup counts as punctuation: a label in its own table cell or list item ("<td>bsn</td>")
# starts a word as it does after a space.
_TO_SPACE = str.maketrans(dict.fromkeys("\n\r\t:;,()[]{}\"'«»|/*_<>=\u2013-", " "))


def context_window(text: str, pos: int, window: int = 60) -> str:
    """The text on the same line, at most ``window`` characters before ``pos`` (a label on the
    previous line belongs to the previous value).

    The window also stops at a ``]``: masking shortens text, and a context word must not come
    into reach once an earlier value became a placeholder (idempotence).
    """
    start = max(0, pos - window)
    nl = max(text.rfind("\n", start, pos), text.rfind("]", start, pos))
    return text[nl + 1 if nl >= 0 else start : pos]


class Keywords:
    """Context words looked up in the text just before a candidate.

    Plain substring tests on a lower-cased window are several times faster than a
    case-insensitive alternation (which ``re`` can only try position by position). A word that
    starts with a space must start a word; punctuation in the window counts as a space.
    ``acronyms`` are matched as whole words in their case only: ``SIN`` is a label, "sin" a
    Spanish word.
    """

    __slots__ = ("acronyms", "fragments", "words")

    acronyms: frozenset[str]

    def __init__(self, *words: str, acronyms: tuple[str, ...] = ()) -> None:
        self.words = tuple(words)
        # The longest space-free part of each word: it occurs in the lower-cased window
        # whenever the word occurs in the normalized one, and testing it first spares the
        # normalization (str.translate, the costliest step) for most windows.
        self.fragments = tuple(dict.fromkeys(max(w.split(" "), key=len) for w in words))
        self.acronyms = frozenset(acronyms)

    def before(self, text: str, pos: int, window: int = 60) -> bool:
        """Whether one of the words occurs in ``context_window(text, pos, window)``."""
        return self.in_window(context_window(text, pos, window))

    def in_window(self, raw: str) -> bool:
        """Whether one of the words occurs in the window ``raw`` (cached: a page repeats its
        labels, "Tel.: ", "Order no. ", so most windows have been read before)."""
        return _words_in(self, raw)

    def within(self, raw: str, lowered: str, upper: frozenset[str]) -> bool:
        """Whether one of the words occurs in a window: ``lowered`` is ``raw.lower()`` and
        ``upper`` its ``upper_words``, computed once when several types look at one window."""
        if any(f in lowered for f in self.fragments):
            w = " " + lowered.translate(_TO_SPACE)
            if any(k in w for k in self.words):
                return True
        return not self.acronyms.isdisjoint(upper)


_UPPER_WORD = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2,5}(?![A-Za-z])")


def upper_words(raw: str) -> frozenset[str]:
    """The upper-case words of two to five letters in a window (``SIN``, ``PAN``, ``ID``)."""
    return frozenset(_UPPER_WORD.findall(raw))


@lru_cache(maxsize=CACHE_SIZE)
def _words_in(words: Keywords, raw: str) -> bool:
    lowered = raw.lower()
    # Without a capital letter the window has no upper-case words: no regex search needed.
    upper = upper_words(raw) if words.acronyms and lowered != raw else frozenset()
    return words.within(raw, lowered, upper)


#: Words that make a NINO written in lower case ("hh 01 02 03 d") one: in lower case the shape
#: alone is too close to prose ("on 12 34 56 a").
NINO_CONTEXT = Keywords(" nino", "national insurance", " ni number", " ni no", " ni:", "n.i.")

#: Context words that must precede (within ~60 characters) a weakly checked identifier.
ID_CONTEXT: dict[str, Keywords] = {
    t.US_SSN: Keywords(" ssn", "social security", "seguro social", "ss#", "número de seguro"),
    t.FR_NIR: Keywords(" nir", "sécurité sociale", "securite sociale", "insee", "n° ss"),
    t.DE_TAX_ID: Keywords("steuer", "idnr", "identifikationsnummer", "tax id", " tin "),
    t.BR_CPF: Keywords(" cpf", "cadastro de pessoas", "cpf/mf"),
    t.IN_AADHAAR: Keywords("aadhaar", "aadhar", "uidai", " uid", "आधार", "यूआईडी", "ஆதார்"),
    t.JP_MY_NUMBER: Keywords("マイナンバー", "個人番号", "my number", "mynumber"),
    t.NL_BSN: Keywords(" bsn", "burgerservicenummer", "sofinummer", "sofi nummer"),
    t.PL_PESEL: Keywords(
        "pesel",
    ),
    t.SE_PERSONNUMMER: Keywords("personnummer", "personnr", "person nr", " pnr"),
}

PHONE_CONTEXT = Keywords(
    " tel",
    "phone",
    " call",
    "mobil",
    " cell",
    " fax",
    "whatsapp",
    "whats app",
    "contact",
    "téléphone",
    " tél",
    "portable",
    "telef",
    "handy",
    "rufnummer",
    "móvil",
    "movil",
    "celular",
    "telemóvel",
    "cellulare",
    "電話",
    "携帯",
    " mob",
    " gsm",
    " ring ",
    "appel",
    "anrufen",
    " llam",
    " llám",
    "ligue",
    "joindre",
    "erreichbar",
    "kontakt",
)

#: A label right before an address ("IP: ", "client ip=") makes it one, whatever came before it
#: on the line ("Release 3.12.7.62. IP: 11.180.237.63").
IP_LABEL = re.compile(r"(?i:\bip(?:v4)?(?: ?addr(?:ess)?)?) ?[:=]? ?\Z")

VERSION_CONTEXT = Keywords(
    "version",
    " ver ",
    " ver.",
    " v.",
    "release",
    " build",
    "firmware",
    "kernel",
    "update",
    "upgrade",
    "patch",
    "versão",
    "versao",
    "versión",
    "バージョン",
    "==",
    ">=",
    "<=",
    "~=",
)

BIRTH_CONTEXT = Keywords(
    " born",
    "birth",
    " dob",
    " d.o.b",
    " né ",
    " née ",
    "naissance",
    "geboren",
    " geb. ",
    " geb ",
    "geburts",
    "nacid",
    "nacimiento",
    "nascid",
    "nascimento",
    " nato ",
    " nata ",
    "nascita",
    "生年月日",
    "生まれ",
    "誕生日",
    "geboortedatum",
    "urodz",
    "född",
    "födelse",
)

_MONTHS = (
    r"jan(?:uary|vier|uar|eiro)?|feb(?:ruary|ruar|rero|braio)?|f[ée]v(?:rier)?|fevereiro"
    r"|mar(?:ch|s|zo|ço|co)?|märz|maart|apr(?:il|ile)?|avr(?:il)?|abr(?:il)?"
    r"|ma[iy]|mai|mayo|maggio|mei|jun[ei]?|juin|junio|junho|giugno|juni"
    r"|jul[iy]?|juil(?:let)?|julio|julho|luglio|juli|aug(?:ust|ustus)?|ao[uû]t|agosto"
    r"|sep(?:t(?:ember|iembre)?)?|septembre|setembro|settembre|setiembre"
    r"|o[ck]t(?:ober|obre|ubre|ubro)?|ottobre|nov(?:ember|embre|iembre|embro)?"
    r"|de[cz](?:ember|embre|iembre|embro)?|d[ée]cembre|dicembre|diciembre|gen(?:naio)?|ene(?:ro)?"
    r"|januari|februari|augustus|dezember|janeiro|maio|outubro"
)
MONTH = re.compile(_MONTHS, re.IGNORECASE)
# A written date that ends at a year (searched backwards from the year).
WRITTEN_DATE_BEFORE = re.compile(
    rf"(?:\b\d{{1,2}}(?:st|nd|rd|th|er|º|°|\.)?\s+(?:de\s+)?(?:{_MONTHS})\.?,?\s+(?:de\s+)?"
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+)\Z",
    re.IGNORECASE,
)
JA_DATE = re.compile(r"\d{4}\s?年\s?\d{1,2}\s?月\s?\d{1,2}\s?日")

# --- street addresses ---------------------------------------------------------------------------
_EN_STREET = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Close|Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy"
)
ADDRESS_AFTER = re.compile(
    rf"[a-zA-Z]?,?\s(?:(?:rue|avenue|av\.|boulevard|bd|chemin|all[ée]e|impasse|place|quai|route"
    rf"|cours|square)\s[^\n,;:()]{{2,40}}?(?=[\n,;:()]|\s\d|$)"
    rf"|(?:[NSEW]\.?\s)?(?:[A-Z][a-z]{{1,30}}\s){{1,3}}(?:{_EN_STREET})\b\.?)",
)
ADDRESS_BEFORE = re.compile(
    r"(?:\b(?:Calle|C/|Avda\.|Avenida|Paseo|Plaza|Camino|Carrer|Rua|Travessa|Alameda|Praça"
    r"|Via|Viale|Piazza|Corso|Largo|Vicolo)\s[^\n\d,;:()]{2,40}?"
    r"|\b[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ\-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer"
    r"|straat|laan|gracht|plein|singel|kade|dijk|gatan|vägen|v[aä]g|gränd)"
    r"|\b(?:ul|al|os|pl)\. [^\n\d,;:()]{2,40}?)(?:,\s?|\s)(?:nº\s?|n\.\s?|no\.?\s?)?\Z",
)

# --- the scan that passes over candidates --------------------------------------------------------
# Candidates the engine passes over whatever surrounds them, resuming right after them: a
# character of _START that starts no candidate, a placeholder, a digit cluster glued to what is
# before it (a digit, a lower-case letter up to w, _ or ]: a word, a longer number, a hash;
# "bc1", a Bitcoin address, is left to the engine, and so is a token in the shape of a
# letter-led identifier in lower case, see ``scan_passing``), and a short number in brackets
# that no street follows ("(12 replies)", "(3x)", "(9%)": see PiiMasker._scan). Each consumes
# exactly what its candidate does, and is atomic in the scan: at the end of the text, a glued
# cluster cut short ("]68.8.8.8" of "]68.8.8.8 1::") would let its last group be read alone.
_PASSED = (
    r"(?<=[0-9a-w_\]][0-9])(?<!bc1)(?!{stops})" + _NUM_REST + "|"
    r"(?<=\()\d{1,4}(?![\d()]|[ \u00a0\-./]\(?\d)"
    rf"(?!(?=[ ,a-zAB])(?=[\s\S]{{3}})(?u:{ADDRESS_AFTER.pattern}))"
    r"|(?<=\[)[A-Z][A-Z0-9_]{1,30}(?::[0-9a-f]{4,32})?\]"
    # A digit always starts a candidate: only the other characters are looked at again.
    r"|(?<![0-9])(?!" + re.sub(r"\(\?P<\w+>", "(?:", _TAILS) + ")"
)


def scan_passing(stops: str) -> re.Pattern[str]:
    """``SCAN`` for the engine: a match runs over the candidates it passes over (and the text
    between them) and ends with the next candidate the engine reads, whose kind names its group
    (it starts one character before that group); or with the end of the text (group ``end``).
    The per-candidate work left to Python is then that of the candidates that need it: on dense
    pages half the candidates are glued to a word or a longer number.

    ``stops`` is tried right after the first digit of a cluster glued to a word: where it
    matches, the scan stops there all the same (a lower-case identifier, ``de136695976``, whose
    digits are glued to its letters; see ``identifiers.CASED_STOPS``). It runs in the regex
    engine, so the glued clusters of prose and code (``mp3``, ``h264``, hashes) still cost no
    Python.
    """
    passed = _PASSED.replace("{stops}", stops)
    return re.compile(
        f"{_START}(?>(?>{passed}){_NOT_START}*+{_START})*+(?:{_TAILS}|(?P<end>{_NOT_START}*+\\Z))",
        re.ASCII,
    )


# --- person names (optional, rule based) --------------------------------------------------------
_NAME = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'\-]{1,40}(?:\s[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'\-]{1,40}){1,2}"
PERSON_CONTEXT = re.compile(
    rf"(?:\b(?:[Mm]y name is|[Nn]ame:|[Cc]ontact:|Mr\.?|Mrs\.?|Ms\.?|Dr\.?|Mme|Mlle|Herr|Frau"
    rf"|Sr\.|Sra\.|Sig\.|Sig\.ra|[Jj]e m'appelle|[Ii]ch heiße|[Mm]e llamo|[Mm]eu nome é"
    rf"|[Mm]i chiamo|[Nn]om\s?:|[Nn]ombre\s?:|[Nn]ome\s?:)\s)(?P<name>{_NAME})"
)
