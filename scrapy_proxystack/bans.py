"""Decide whether an HTTP answer is a ban, a throttle, a geo-block, or real content.

Training crawls must never keep a ban page as content (a captcha page in a training set is
poison), and must not throw away a normal page either. The checks run from the cheapest and
most certain to the most expensive and most heuristic, and the first one that fires decides:

1. **Status.** ``ban_status`` plus the site's extra ``status`` codes, minus its
   ``content_status`` codes. 429 is a throttle and 451 a geo-block; ``Retry-After`` is kept.
2. **Where the answer sends us.** A ``Location`` (3xx), a ``Refresh`` header, the final URL of a
   followed redirect or a ``<meta http-equiv="refresh">``: to a challenge endpoint
   (``challenge_redirect``), to a login wall (``login_redirect``, unless the request itself was
   for a login page), or to a URL the site's ``url_patterns`` name (``url_pattern``).
3. **Vendor headers** that only challenges carry (``cf-mitigated: challenge``,
   ``x-amzn-waf-action``).
4. **Size.** A ``200`` with an empty or too small body. HEAD, 204, 205, 304 and other 3xx have no
   body by design and are never judged on it.
5. **Body patterns** configured for the crawl or the site.
6. **HTML heuristics** (HTML only, first ``max_scan_bytes``), see :class:`BanClassifier`.
7. **Language**: ``<html lang>`` whose primary subtag is not the expected one.

The body heuristics must be fast (training crawls move gigabytes) and precise (an article
*about* captchas is content). Both come from the same idea: a ban page is an *interstitial*, a
page with very little text, and its markers sit in *structure* (tags, scripts, the title), not
in prose. The common case, an ordinary page with no marker at all, costs one ASCII lower-casing
of the head, one regex pass anchored on a single literal byte and a few bounded ``find`` calls;
the visible text is only extracted and measured when something asks for it.

This module imports nothing from Scrapy: the middleware is a thin adapter over it.
"""

from __future__ import annotations

import codecs
import enum
import functools
import html
import math
import re
import time
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final
from urllib.parse import urljoin

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from scrapy_proxystack.config import BanRules

__all__ = [
    "DEFAULT_SETTINGS",
    "OK",
    "REASONS",
    "BanClassifier",
    "BanClassifierSettings",
    "BanKind",
    "Verdict",
    "declared_language",
    "language_set",
    "parse_retry_after",
]


class BanKind(enum.Enum):
    """What kind of refusal an answer is. The pool treats every kind but ``NONE`` as a ban."""

    NONE = "none"
    BAN = "ban"
    #: 429 or a rate-limit page: the exit is fine, it is just going too fast for this site.
    THROTTLE = "throttle"
    #: 451, a "not available in your region" page, or a page in the wrong language.
    GEO_BLOCK = "geo_block"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classifier's answer: a kind, a low-cardinality reason label and ``Retry-After``.

    ``reason`` is used in stats keys, so it is one of :data:`REASONS` or ``status_<code>``;
    never a URL or a piece of the page.
    """

    kind: BanKind
    reason: str
    retry_after: float | None = None

    @property
    def is_ban(self) -> bool:
        return self.kind is not BanKind.NONE


#: The shared "not a ban" verdict.
OK: Final = Verdict(BanKind.NONE, "ok")

#: Every reason label besides ``status_<code>``.
REASONS: Final = frozenset(
    {
        "ok",
        "captcha",
        "challenge_redirect",
        "login_redirect",
        "url_pattern",
        "empty_body",
        "tiny_body",
        "body_pattern",
        "region_page",
        "rate_limit_page",
        "lang_mismatch",
        "policy",
    }
)

_CAPTCHA: Final = Verdict(BanKind.BAN, "captcha")
_CHALLENGE_REDIRECT: Final = Verdict(BanKind.BAN, "challenge_redirect")
_LOGIN_REDIRECT: Final = Verdict(BanKind.BAN, "login_redirect")
_URL_PATTERN: Final = Verdict(BanKind.BAN, "url_pattern")
_EMPTY_BODY: Final = Verdict(BanKind.BAN, "empty_body")
_TINY_BODY: Final = Verdict(BanKind.BAN, "tiny_body")
_BODY_PATTERN: Final = Verdict(BanKind.BAN, "body_pattern")
_REGION_PAGE: Final = Verdict(BanKind.GEO_BLOCK, "region_page")
_LANG_MISMATCH: Final = Verdict(BanKind.GEO_BLOCK, "lang_mismatch")


@functools.lru_cache(maxsize=256)
def _compile_patterns(patterns: tuple[str, ...], where: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except (re.error, TypeError) as exc:
            raise ValueError(
                f"{where}[{i}]: {pattern!r} is not a valid regular expression ({exc})"
            ) from None
    return tuple(compiled)


@dataclass(frozen=True)
class BanClassifierSettings:
    """Crawl-wide knobs of the classifier; per-site changes come from ``BanRules``."""

    ban_status: frozenset[int] = frozenset({403, 429, 451, 503})
    #: A ``200`` body shorter than this is a ban (``empty_body`` at 0 bytes, else ``tiny_body``).
    min_body_size: int = 1
    check_lang: bool = True
    #: Regexes (case-insensitive) that make any textual body a ban (``body_pattern``).
    extra_body_patterns: tuple[str, ...] = ()
    #: Only the head of the body is looked at: the cost stays bounded whatever the page size.
    max_scan_bytes: int = 65536

    def __post_init__(self) -> None:
        codes: object = self.ban_status  # callers pass sets and lists too
        if not isinstance(codes, frozenset | set | list | tuple) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
        ):
            raise ValueError(
                f"BanClassifierSettings.ban_status: {codes!r}; expected HTTP status codes"
            )
        object.__setattr__(self, "ban_status", frozenset(codes))
        object.__setattr__(self, "extra_body_patterns", tuple(self.extra_body_patterns))
        for name, value, minimum in (
            ("min_body_size", self.min_body_size, 0),
            ("max_scan_bytes", self.max_scan_bytes, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"BanClassifierSettings.{name}: {value!r}; expected a whole number >= {minimum}"
                )
        _compile_patterns(self.extra_body_patterns, "BanClassifierSettings.extra_body_patterns")


DEFAULT_SETTINGS: Final = BanClassifierSettings()


# --- Retry-After -------------------------------------------------------------------------------

_SECONDS_RE = re.compile(r"[+-]?\d{1,12}(?:\.\d{1,9})?")


def parse_retry_after(value: str | bytes | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date.

    Dates in the past and negative delays give ``0.0`` (the server has nothing against an
    immediate retry); anything unparsable gives ``None`` rather than a guess. ``now`` (epoch
    seconds) is for tests.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if _SECONDS_RE.fullmatch(text):
        return max(0.0, float(text))
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000" and asctime dates: RFC 9110 says they are UTC
            when = when.replace(tzinfo=timezone.utc)
        delta = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, delta) if math.isfinite(delta) else None


# --- URLs --------------------------------------------------------------------------------------

#: Challenge endpoints of the common vendors and the generic ``/captcha``-style paths. A path
#: word must end the segment (``/captcha``, ``/captcha/``, ``/captcha.html``, ``/captcha?``),
#: so ``/captcha-solving-guide`` or ``/challenges-of-2024`` are not challenges.
_CHALLENGE_URL_RE = re.compile(
    r"/(?:challenge|captcha|captchas|recaptcha|robot-?check|bot-?check|human-?check"
    r"|are-?you-?human|verify-?human|blocked|access-?denied)(?=[/?#.;&]|$)"
    r"|cdn-cgi/challenge-platform|cdn-cgi/l/chk_|/_incapsula_resource|/distil_"
    r"|perimeterx|px-captcha|/sorry/index|/sorry/\?|validate\.perfdrive\.com"
    r"|captcha-delivery\.com|/errors/validatecaptcha|/\.well-known/sgcaptcha"
    r"|/_sec/cp_challenge|hcaptcha\.com|google\.com/recaptcha|challenges\.cloudflare\.com"
)
#: Login walls, in the languages covered; the same segment rule (``/author`` is no ``/auth``).
_LOGIN_URL_RE = re.compile(
    r"/(?:log-?in|log_in|sign-?in|sign_in|signon|logon|auth|authenticate|authorize|oauth2?|sso"
    r"|cas/login|session/new|sessions/new|users/sign_in|accounts?/login|servicelogin"
    r"|wp-login\.php|connexion|se-connecter|anmelden|einloggen|iniciar-sesion|entrar|accedi"
    r"|login\.php|login\.aspx|login\.jsp)(?=[/?#.;&]|$)"
    r"|^[a-z][a-z0-9+.-]*://(?:login|signin|auth|sso|accounts)\."
)
_REFRESH_URL_RE = re.compile(
    r"""^\s*[\d.]*\s*[;,]\s*(?:url\s*=\s*)?["']?\s*([^"'\s>]+)""", re.IGNORECASE
)


_CONTENT_ATTR_RE = re.compile(
    r"""\bcontent\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)


def _join(base: str, target: str) -> str:
    try:
        return urljoin(base, target.strip())
    except ValueError:  # a malformed base (e.g. "http://[") still leaves the target to judge
        return target


def _is_login(url: str) -> bool:
    return _LOGIN_URL_RE.search(url.lower()) is not None


# --- Charsets ----------------------------------------------------------------------------------

_CT_CHARSET_RE = re.compile(r"""charset\s*=\s*["']?([a-z0-9_.:-]{1,40})""")
_META_CHARSET_RE = re.compile(rb"""<meta[^<>]{0,200}?charset\s*=\s*["']?([a-z0-9_.:-]{1,40})""")


@functools.lru_cache(maxsize=64)
def _codec(name: str) -> str:
    """The Python codec for a declared charset, or ``utf-8`` when it is unknown or unusable."""
    try:
        info = codecs.lookup(name)
        b"<p>\xff\xfe</p>".decode(info.name, "replace")  # text codec that accepts "replace"?
    except (LookupError, UnicodeError, TypeError, ValueError):
        return "utf-8"
    return info.name


def _declared_charset(content_type: str) -> str | None:
    found = _CT_CHARSET_RE.search(content_type)
    return found.group(1) if found is not None else None


def _sniffed_charset(low_head: bytes) -> str:
    """``<meta charset>`` or ``<meta http-equiv content="...; charset=...">``; else UTF-8."""
    found = _META_CHARSET_RE.search(low_head)
    return found.group(1).decode("ascii") if found is not None else "utf-8"


def _decode(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        return data.decode("utf-8", "replace")


# --- Phrases -----------------------------------------------------------------------------------
# Written lower-case, with straight apostrophes and single spaces (page text is normalised the
# same way). ``{a|b|}`` lists variants. A phrase is never enough on its own: see BanClassifier.

_CAPTCHA_PHRASES: Final = (
    # en
    "verify {that |}you{ are|'re} {a |}human",
    "confirm {that |}you{ are|'re} {a |}human",
    "prove {that |}you{ are|'re} {a |}human",
    "verifying {that |}you{ are|'re} {a |}human",
    "{verify|confirm|prove} {that |}you{ are|'re} not a robot",
    "{make sure|ensure} you{ are|'re} not a robot",
    "we just need to make sure you're not a robot",
    "i'm not a robot",
    "i am not a robot",
    "not a robot",
    "are you a {robot|human}",
    "are you human",
    "robot or human",
    "unusual traffic",
    "unusual activity",
    "suspicious activity",
    "automated {queries|requests|access|traffic}",
    "our systems have detected",
    "checking your browser",
    "checking if the site connection is secure",
    "needs to review the security of your connection",
    "enable javascript and cookies to continue",
    "please enable js and disable any ad blocker",
    "{please |}complete the security check",
    "security check",
    "human verification",
    "press & hold",
    "press and hold",
    "access denied",
    "access to this page has been {denied|blocked}",
    "you{ have|'ve} been blocked",
    "why have i been blocked",
    "your {ip|ip address|request|access} has been blocked",
    "request {blocked|rejected}",
    "the requested url was rejected",
    "pardon our interruption",
    "incapsula incident id",
    "request unsuccessful",
    "sucuri website firewall",
    "performance & security by cloudflare",
    "ddos protection by",
    "attention required",
    "reference #",
    "enter the characters you see below",
    "type the characters you see in {this|the} image",
    # fr
    "vérifiez que vous êtes {un |}humain",
    "vérifions que vous êtes {un |}humain",
    "confirmez que vous êtes {un |}humain",
    "prouvez que vous êtes {un |}humain",
    "vérification que vous êtes {un |}humain",
    "êtes-vous un robot",
    "êtes-vous humain",
    "je ne suis pas un robot",
    "vous n'êtes pas un robot",
    "trafic inhabituel",
    "activité inhabituelle",
    "activité suspecte",
    "requêtes automatisées",
    "accès {refusé|interdit|bloqué}",
    "vous avez été bloqué",
    "vérification de sécurité",
    "contrôle de sécurité",
    "activez javascript et les cookies pour continuer",
    # de
    "bitte bestätigen sie, dass sie kein roboter sind",
    "bestätigen sie, dass sie kein roboter sind",
    "bestätige, dass du kein roboter bist",
    "bestätigen sie, dass sie ein mensch sind",
    "bestätige, dass du ein mensch bist",
    "sind sie ein roboter",
    "bist du ein roboter",
    "ich bin kein roboter",
    "ungewöhnliche{n|r|} datenverkehr",
    "ungewöhnliche aktivität{en|}",
    "automatisierte anfragen",
    "zugriff verweigert",
    "zugang verweigert",
    "zugriff gesperrt",
    "sie wurden blockiert",
    "ihre anfrage wurde blockiert",
    "sicherheitsüberprüfung",
    "überprüfung ihres browsers",
    # es
    "confirma que eres {un |}humano",
    "confirme que es {un |}humano",
    "verifica que eres {un |}humano",
    "verifique que es {un |}humano",
    "comprueba que eres {un |}humano",
    "demuestra que eres {un |}humano",
    "eres un robot",
    "no soy un robot",
    "tráfico inusual",
    "actividad {inusual|sospechosa}",
    "consultas automatizadas",
    "acceso denegado",
    "has sido bloqueado",
    "verificación de seguridad",
    "comprobación de seguridad",
    # pt
    "confirme que você é {um |}humano",
    "verifique se você é {um |}humano",
    "comprove que você é {um |}humano",
    "você é um robô",
    "não sou um robô",
    "tráfego {incomum|suspeito}",
    "atividade {incomum|suspeita}",
    "acesso negado",
    "você foi bloqueado",
    "verificação de segurança",
    # it
    "conferma di essere {un |}umano",
    "conferma di non essere un robot",
    "verifica di essere {un |}umano",
    "dimostra di essere {un |}umano",
    "sei un robot",
    "non sono un robot",
    "traffico {insolito|anomalo}",
    "attività {insolita|sospetta}",
    "query automatiche",
    "accesso negato",
    "sei stato bloccato",
    "controllo di sicurezza",
    "verifica di sicurezza",
    # ja
    "私はロボットではありません",
    "ロボットではありません",
    "ロボットではないことを確認",
    "人間であることを確認",
    "通常と異なるトラフィック",
    "異常なトラフィック",
    "不審なトラフィック",
    "アクセスが拒否されました",
    "アクセスは拒否されました",
    "アクセスが制限されています",
    "セキュリティチェック",
    # ru
    "подтвердите, что вы не робот",
    "подтвердите, что вы человек",
    "вы не робот",
    "я не робот",
    "необычный трафик",
    "подозрительный трафик",
    "подозрительная активность",
    "похожи на автоматические",
    "доступ {запрещен|запрещён|ограничен|заблокирован}",
    "проверка безопасности",
    # zh (simplified and traditional)
    "请完成安全验证",
    "請完成安全驗證",
    "安全验证",
    "安全驗證",
    "人机验证",
    "人機驗證",
    "我不是机器人",
    "我不是機器人",
    "请证明你不是机器人",
    "异常流量",
    "異常流量",
    "访问被拒绝",
    "訪問被拒絕",
    "拒绝访问",
    "拒絕訪問",
    "存取遭拒",
    # ko
    "로봇이 아닙니다",
    "비정상적인 트래픽",
    "접근이 거부되었습니다",
)
#: Too common in prose to mean anything outside a title or main heading ("just a moment ago").
_CAPTCHA_HEADING_PHRASES: Final = (
    "just a moment",
    "one moment{,|} please",
    "robot check",
    "bot check",
    "blocked",
    "forbidden",
    "403 forbidden",
    "access forbidden",
    "error 403",
    "un instant",
    "einen moment",
    "nur einen moment",
    "un momento",
    "um momento",
    "un attimo",
    "один момент",
    "请稍候",
    "請稍候",
    "しばらくお待ちください",
)
_GEO_PHRASES: Final = (
    # en
    "{is not|isn't|are not|aren't|not|currently not} available in your "
    "{country|region|location|area|territory|jurisdiction|country or region}",
    "{not|isn't} available from your {country|region|location}",
    "unavailable in your {country|region|location|area}",
    "unavailable for legal reasons",
    "access from your {country|region|location}",
    "has banned the country or region your ip address is in",
    # fr
    "{n'est pas|ne sont pas|pas|non} disponible{s|} dans votre {pays|région|zone géographique}",
    "indisponible{s|} dans votre {pays|région}",
    "n'est pas accessible depuis votre {pays|région}",
    # de
    "in {ihrem|deinem} land {leider |}nicht verfügbar",
    "nicht in {ihrem|deinem} land verfügbar",
    "in {ihrer|deiner} region {leider |}nicht verfügbar",
    "nicht in {ihrer|deiner} region verfügbar",
    "in deutschland {leider |}nicht verfügbar",
    # es
    "no está disponible en {tu|su} {país|región|ubicación}",
    "no disponible en {tu|su} {país|región}",
    # pt
    "não está disponível {no seu|em seu} país",
    "não está disponível {na sua|em sua} região",
    "não disponível no seu país",
    "indisponível {no seu país|na sua região}",
    # it
    "non è disponibile nel {tuo|suo} paese",
    "non disponibile nel {tuo|suo} paese",
    "non è disponibile nella {tua|sua} {area geografica|regione|zona}",
    # ja
    "お住まいの{地域|国|国または地域}ではご利用いただけません",
    "お住まいの{地域|国}では利用できません",
    "お住まいの地域では視聴できません",
    "この地域ではご利用いただけません",
    "お客様の{地域|国}ではご利用いただけません",
    # ru
    "{недоступен|недоступно|недоступна|не доступен|не доступно} в вашем регионе",
    "{недоступен|недоступно|недоступна|не доступен|не доступно} в вашей стране",
    # zh
    "在您所在的地区不可用",
    "所在地区不可用",
    "您所在的国家或地区不可用",
    "不支持您所在的地区",
    "您所在的地区无法",
    "您所在的國家或地區無法使用",
    "所在地區無法使用",
    # ko
    "{해당|귀하의} 국가에서는 이용할 수 없습니다",
    "이 지역에서는 사용할 수 없습니다",
)
_THROTTLE_PHRASES: Final = (
    "too many requests",
    "rate limit exceeded",
    "you{ are|'re| have been|'ve been} {being |}rate limited",
    "trop de {requêtes|demandes}",
    "zu viele anfragen",
    "demasiadas {solicitudes|peticiones}",
    "muitas {solicitações|requisições}",
    "troppe richieste",
    "リクエストが多すぎます",
    "слишком много запросов",
    "请求过于频繁",
    "請求過於頻繁",
    "访问过于频繁",
    "訪問過於頻繁",
)

_C_BODY, _C_HEAD, _GEO, _THROTTLE = "captcha", "captcha_heading", "geo", "throttle"
#: Lower-case letters of the scripts whose words are separated by spaces: a phrase written in
#: them must start and end on a word boundary ("blocked" is not in "unblocked").
_WORD_CHARS: Final = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u024f\u0430-\u045f"
_WORD_CHAR_RE = re.compile(f"[{_WORD_CHARS}]")


def _expand(template: str) -> list[str]:
    """``"verify {that |}you"`` -> ``["verify that you", "verify you"]``."""
    pieces = re.split(r"\{([^{}]*)\}", template)
    out = [""]
    for i, piece in enumerate(pieces):
        options = piece.split("|") if i % 2 else [piece]
        out = [prefix + option for prefix in out for option in options]
    return [" ".join(p.split()) for p in out]


_Trie = dict[str, "_Trie"]


def _trie_regex(phrases: Iterable[str]) -> str:
    """One regex for many literals, factored as a trie.

    ``re`` tries alternatives one after the other; a trie makes every position cost a few
    character comparisons instead of one per phrase. At a node where a phrase ends and a longer
    one continues, the longer is tried first, so a match is the leftmost-longest phrase.
    """
    root: _Trie = {}
    for phrase in phrases:
        node = root
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: _Trie, last: str) -> str:
        alternatives = []
        for ch in sorted(node):
            if not ch:
                continue
            prefix = re.escape(ch)
            if not last and _WORD_CHAR_RE.match(ch):
                # The start boundary is checked after the first character has matched, so that
                # ``re`` can skip positions whose character starts no phrase at all.
                prefix += f"(?<![{_WORD_CHARS}].)"
            alternatives.append(prefix + build(node[ch], ch))
        if "" in node:
            alternatives.append(f"(?![{_WORD_CHARS}])" if _WORD_CHAR_RE.match(last) else "")
        if len(alternatives) == 1:
            return alternatives[0]
        return "(?:" + "|".join(alternatives) + ")"

    return build(root, "")


def _phrase_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for category, templates in (
        (_C_BODY, _CAPTCHA_PHRASES),
        (_C_HEAD, _CAPTCHA_HEADING_PHRASES),
        (_GEO, _GEO_PHRASES),
        (_THROTTLE, _THROTTLE_PHRASES),
    ):
        for template in templates:
            for phrase in _expand(template):
                if table.setdefault(phrase, category) != category:
                    raise RuntimeError(f"ban phrase {phrase!r} is in two categories")
    return table


_PHRASE_CATEGORY: Final = _phrase_table()
_PHRASE_RE: Final = re.compile(_trie_regex(_PHRASE_CATEGORY))
#: Scripts written without spaces between words (and Hangul, whose phrases are short).
_CJK_RE = re.compile("[\u3000-\u9fff\uac00-\ud7af\uf900-\uffef]")


#: A word as the keyword check sees it: letters, with inner apostrophes and hyphens.
_WORD_RE = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


def _keywords(phrases: Iterable[str]) -> frozenset[str]:
    """The longest word of every spaced phrase: text without one of them holds no phrase."""
    out = set()
    for phrase in phrases:
        if not _CJK_RE.search(phrase):
            out.add(max(_WORD_RE.findall(phrase), key=len))
    return frozenset(out)


_KEYWORDS: Final = _keywords(_PHRASE_CATEGORY)


def _may_hold_phrase(text: str) -> bool:
    """A cheap test that rules out nearly every normal text before the phrase regex runs.

    ``re`` needs some 70 ns a character for the phrase trie; finding the words and looking
    them up in a set is several times cheaper.
    """
    return _CJK_RE.search(text) is not None or not _KEYWORDS.isdisjoint(_WORD_RE.findall(text))


def _phrases_in(text: str) -> list[str]:
    """The phrases in normalised ``text``, leftmost-longest."""
    return _PHRASE_RE.findall(text) if _may_hold_phrase(text) else []


# --- HTML structure ----------------------------------------------------------------------------

#: Candidate vendor markers, all found through their first ``c`` so that ``re`` can skip to
#: the next ``c`` byte at C speed: this single pass is the whole cost of the vendor check on a
#: normal page. Each hit is then judged in context by :func:`_marker_kind`.
_CANDIDATE_RE = re.compile(
    rb"c(?:a(?:ptcha|psula)|f(?:[-_]chl|-(?:browser-verification|turnstile))"
    rb"|dn-cgi/challenge-platform/|h(?:allenge(?:s\.cloudflare\.com|\.js)|l(?<=jschl))|wudnsai)"
)
_ORCHESTRATE_RE = re.compile(rb"(?:h/[a-z]/)?orchestrate/")
#: Right before ``captcha``: vendor block pages, never a widget on a normal form.
_STRONG_CAPTCHA_PREFIXES: Final = (
    b"px-",  # PerimeterX / HUMAN "Press & Hold" block page: <div id="px-captcha">
    b"_px",  # PerimeterX block page globals (_pxCaptcha...)
    b"distil_r_",  # Distil Networks / Imperva ABP
    b"/errors/validate",  # Amazon robot check form action
    b"/.well-known/sg",  # SiteGround captcha
)
_MAX_CANDIDATES: Final = 64

_STRONG, _WIDGET = 2, 1

_LANG_RE = re.compile(rb"""[\s"'/](?:xml:)?lang\s*=\s*["']?\s*([a-z]{2,3})(?![a-z])""")
_TAG_BOUNDARY: Final = frozenset(b" \t\r\n\f>/")
_INNER_TAG_RE = re.compile(r"<[^<>]*>")
_BLOCK_START_RE = re.compile(r"<(?:(script|style|template|svg)\b|!--)", re.IGNORECASE)
_BLOCK_END_RE: Final = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE)
    for name in ("script", "style", "template", "svg")
}
#: Title separators (``Attention Required! | Cloudflare``, ``Sucuri WebSite Firewall - Access
#: Denied``). A hyphen or colon only separates with spaces around it.
_HEADING_SEPARATOR_RE = re.compile("\\s[-:/]{1,2}\\s|[|\u2013\u2014\u00b7\u00bb]")
_APOSTROPHES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})

#: Visible-text size classes, in characters other than whitespace (see _text_size).
TINY_TEXT: Final = 400
SHORT_TEXT: Final = 1000
MEDIUM_TEXT: Final = 6500
#: Documents up to this many bytes get their visible text measured even without a marker, so
#: that a bare "please verify you are human" page is caught; bigger ones only when a marker
#: or a heading asks for it (measuring costs more than all the other checks together).
SMALL_DOCUMENT: Final = 8192
#: A heading "is" a phrase when it has at most this many characters besides it.
HEADING_SLACK: Final = 16
_HEADING_BYTES: Final = 1024
_HEADING_SCAN: Final = 16384

_TINY, _SHORT, _MEDIUM, _LONG = range(4)

#: Primary language subtags that name the same language (deprecated ISO 639 codes, macro
#: languages, ISO 639-2 codes some sites use).
_LANG_ALIASES: Final = {
    "iw": "he",
    "in": "id",
    "ji": "yi",
    "jw": "jv",
    "mo": "ro",
    "nb": "no",
    "nn": "no",
    "fil": "tl",
    "cmn": "zh",
    "yue": "zh",
    "eng": "en",
    "fra": "fr",
    "fre": "fr",
    "deu": "de",
    "ger": "de",
    "spa": "es",
    "por": "pt",
    "ita": "it",
    "jpn": "ja",
    "rus": "ru",
    "zho": "zh",
    "chi": "zh",
    "nld": "nl",
    "dut": "nl",
    "pol": "pl",
    "kor": "ko",
}
_NO_LANGUAGE: Final = frozenset({"und", "mul", "zxx", "mis"})

_BODYLESS_STATUS: Final = frozenset({204, 205, 304})
_SIZED_STATUS: Final = frozenset({200, 203})
_NON_HTML_MARKERS: Final = (
    "json",
    "javascript",
    "ecmascript",
    "css",
    "csv",
    "xml",
    "image/",
    "audio/",
    "video/",
    "font/",
    "pdf",
    "zip",
    "protobuf",
    "msgpack",
)
_BINARY_MARKERS: Final = ("image/", "audio/", "video/", "font/", "pdf", "zip", "octet-stream")
_WANTED_HEADERS: Final = frozenset(
    {"content-type", "location", "retry-after", "refresh", "cf-mitigated", "x-amzn-waf-action"}
)


def _primary_subtag(tag: str) -> str | None:
    primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    if not (2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha()):
        return None
    if primary in _NO_LANGUAGE:
        return None
    return _LANG_ALIASES.get(primary, primary)


def _header_text(value: object) -> str:
    """Header values as ``str``, whatever the caller had (``str``, ``bytes``, a list of them)."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else ""


def _normalise(text: str) -> str:
    """Lower-cased, entity-decoded, straight apostrophes, single spaces: how phrases are written."""
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.translate(_APOSTROPHES).lower().split())


@dataclass(frozen=True, slots=True)
class _SiteRules:
    """A site's ``BanRules`` with its regexes compiled (once per ``BanRules``, see below)."""

    status: frozenset[int]
    content_status: frozenset[int]
    body: tuple[re.Pattern[str], ...]
    url: tuple[re.Pattern[str], ...]
    min_body_size: int | None


@functools.lru_cache(maxsize=1024)
def _site_rules(rules: BanRules) -> _SiteRules:
    """``BanRules`` are frozen and hashable: one compilation per distinct rule set."""
    return _SiteRules(
        status=frozenset(rules.status),
        content_status=frozenset(rules.content_status),
        body=_compile_patterns(tuple(rules.body_patterns), "bans.body_patterns"),
        url=_compile_patterns(tuple(rules.url_patterns), "bans.url_patterns"),
        min_body_size=rules.min_body_size,
    )


def _in_markup(low: bytes, pos: int) -> bool:
    """Is ``pos`` inside a tag or a script, rather than in text a reader sees?

    Text about a vendor ("the px-captcha div", an escaped code sample) is prose, not a
    challenge. A JSON data island (JSON-LD, ``__NEXT_DATA__``) carries article text, so it
    counts as prose too.
    """
    lt = low.rfind(b"<", 0, pos)
    if lt == -1:
        return False
    if lt > low.rfind(b">", 0, pos):
        return True
    script = low.rfind(b"<script", 0, pos)
    if script == -1 or script < low.rfind(b"</script", 0, pos):
        return False
    end = low.find(b">", script, pos)
    return end != -1 and b"json" not in low[script:end]


def _marker_kind(low: bytes, start: int, end: int) -> int:
    """Judge one candidate hit: ``_STRONG`` (only ever on challenge pages), ``_WIDGET`` (a
    captcha widget or a vendor sensor script, also found on normal forms and pages) or 0."""
    token = low[start:end]
    if token == b"captcha":
        if low.startswith(b"-delivery.com", end):  # DataDome's captcha iframe / script
            return _STRONG
        before = low[max(0, start - 24) : start]
        if before.endswith(_STRONG_CAPTCHA_PREFIXES):
            return _STRONG
        # AWS WAF serves its interstitial scripts from *.token.awswaf.com; the JS SDK that
        # normal pages embed comes from *.sdk.awswaf.com.
        return _STRONG if b"token.awswaf.com" in low[max(0, start - 200) : start] else _WIDGET
    if token == b"capsula":
        return _WIDGET if low[max(0, start - 2) : start] == b"in" else 0
    if token == b"cdn-cgi/challenge-platform/":
        # Cloudflare injects .../challenge-platform/scripts/jsd/main.js into normal pages; only
        # the challenge page loads the "orchestrate" scripts.
        return _STRONG if _ORCHESTRATE_RE.match(low, end) else _WIDGET
    if token in (b"challenges.cloudflare.com", b"cf-turnstile"):
        return _WIDGET  # Turnstile: also on normal login and contact forms
    if token == b"challenge.js":
        window = low[max(0, start - 200) : start]
        if b"token.awswaf.com" in window:
            return _STRONG
        return _WIDGET if b"awswaf" in window else 0
    # cf_chl / cf-chl (Cloudflare challenge state), cf-browser-verification and jschl (the old
    # "I'm Under Attack" page), cwudnsai (Incapsula's block iframe).
    return _STRONG


def _markup_evidence(low: bytes) -> tuple[bool, bool]:
    """(strong marker found, widget found), counting only hits inside tags or scripts."""
    strong = widget = False
    for count, match in enumerate(_CANDIDATE_RE.finditer(low)):
        if count >= _MAX_CANDIDATES:
            break
        start, end = match.span()
        kind = _marker_kind(low, start, end)
        if kind == 0 or (kind == _WIDGET and widget) or not _in_markup(low, start):
            continue
        if kind == _STRONG:
            return True, widget
        widget = True
    return strong, widget


def _find_tag(low: bytes, name: bytes, start: int = 0, stop: int | None = None) -> int:
    """Index of the first ``<name`` tag (not ``<names``) in ``low[start:stop]``, or -1."""
    stop = len(low) if stop is None else stop
    pos = low.find(name, start, stop)
    while pos != -1:
        after = pos + len(name)
        if after < len(low) and low[after] in _TAG_BOUNDARY:
            return pos
        pos = low.find(name, after, stop)
    return -1


def _headings(low: bytes, head: bytes, charset: str) -> list[str]:
    """The normalised text of the title and the first ``h1``.

    Both are looked for in the first ``_HEADING_SCAN`` bytes only: that is where an
    interstitial has them, and it bounds the cost on long pages.
    """
    out = []
    for name, close in ((b"<title", b"</title"), (b"<h1", b"</h1")):
        start = _find_tag(low, name, 0, _HEADING_SCAN)
        if start == -1:
            continue
        gt = low.find(b">", start, start + 512)
        if gt == -1:
            continue
        end = low.find(close, gt, gt + _HEADING_BYTES)
        if end == -1:
            continue
        text = _INNER_TAG_RE.sub(" ", _decode(head[gt + 1 : end], charset))
        if text.strip():
            out.append(_normalise(text))
    return out


def _heading_categories(headings: Iterable[str]) -> set[str]:
    """Categories of the phrases that make up (nearly) a whole heading or title segment.

    A block page's title *is* the phrase ("Access Denied", "Just a moment...", "Attention
    Required! | Cloudflare"); an article's title only contains it ("Are you a robot? How
    CAPTCHAs decide"). So the segment around the phrase (titles are split on ``|``, `` - ``
    and the like, which separate the site name) may hold at most ``HEADING_SLACK`` more
    characters.
    """
    found: set[str] = set()
    for heading in headings:
        if not _may_hold_phrase(heading):
            continue
        for segment in _HEADING_SEPARATOR_RE.split(heading):
            segment = segment.strip()
            for phrase in _PHRASE_RE.findall(segment):
                if len(segment) - len(phrase) <= HEADING_SLACK:
                    found.add(_PHRASE_CATEGORY[phrase])
    return found


def _visible_text(text: str) -> str:
    """What a reader sees, whitespace left as is: no tags, scripts, styles, templates, inline
    SVG or comments.

    Linear time whatever the input: each block is skipped with one forward search, and an
    unclosed block ends the text (the rest is not visible either).
    """
    parts = []
    pos, size = 0, len(text)
    while pos < size:
        match = _BLOCK_START_RE.search(text, pos)
        if match is None:
            parts.append(text[pos:])
            break
        parts.append(text[pos : match.start()])
        name = match.group(1)
        if name is None:
            close = text.find("-->", match.end())
            pos = size if close == -1 else close + 3
        else:
            end = _BLOCK_END_RE[name.lower()].search(text, match.end())
            pos = size if end is None else end.end()
    return _INNER_TAG_RE.sub(" ", " ".join(parts))


_CJK_RUN_RE = re.compile("[\u3000-\u9fff\uac00-\ud7af\uf900-\uffef]+")
_URL_TOKEN_RE = re.compile(r"\S*://\S*")


def _text_size(visible: str) -> int:
    """How much there is to read: the visible characters other than whitespace.

    URLs do not count (block pages print the blocked URL, sometimes twice), and a CJK character
    counts twice, as it carries about as much as a short word. Only ``str`` methods run over
    the whole text: this is measured on every page that shows a marker.
    """
    size = len(visible) - sum(visible.count(space) for space in " \n\t\r")
    pos = visible.find("://")
    while pos != -1:
        start = pos
        while start > 0 and not visible[start - 1].isspace():
            start -= 1
        url = _URL_TOKEN_RE.match(visible, start)
        end = url.end() if url is not None else pos + 3
        size -= end - start
        pos = visible.find("://", end)
    if not visible.isascii():
        size += sum(map(len, _CJK_RUN_RE.findall(visible)))
    return size


def _size_class(visible: str, truncated: bool) -> int:
    size = _text_size(visible)
    if size > MEDIUM_TEXT:
        return _LONG
    if truncated or size > SHORT_TEXT:
        return _MEDIUM
    return _SHORT if size > TINY_TEXT else _TINY


def _passes(size: int, strong: bool, heading: bool, phrases: int, widget: bool) -> bool:
    """The evidence rule; see BanClassifier's docstring."""
    if size == _TINY:
        return strong or heading or phrases > 0
    if size == _SHORT:
        return strong or heading or (widget and phrases > 0)
    if size == _MEDIUM:
        return strong or (heading and widget)
    return False


class BanClassifier:
    """Classify answers; one instance per crawl, safe to share (it holds no per-call state).

    **The HTML rule.** Evidence comes in four strengths:

    - *strong vendor markers* (S): markup only challenge and block pages carry: Cloudflare's
      ``_cf_chl_opt``/``cf-chl-*``/``jschl``/``orchestrate`` scripts, DataDome's
      ``captcha-delivery.com``, PerimeterX's ``px-captcha``, Incapsula's block iframe, Amazon's
      ``validateCaptcha`` form, AWS WAF's token scripts, Distil, SiteGround;
    - *headings* (H): the title or the first ``h1`` consists of a known phrase (see
      :func:`_heading_categories`);
    - *phrases* (P): "verify you are human", "unusual traffic", "nicht in Ihrem Land
      verfügbar"... in the visible text, in en, fr, de, es, pt, it, ja, ru, zh and ko;
    - *widgets* (W): reCAPTCHA, hCaptcha, Turnstile, a vendor's sensor script. Login and
      contact forms use them too, so a widget never decides alone.

    Markers count only inside tags or scripts, never in prose or escaped code samples. Then the
    amount of visible text (characters other than whitespace, URLs left out, CJK counted
    twice: :func:`_text_size`) decides how much evidence is needed, because a ban page is an
    interstitial and content has text:

    - tiny (up to ``TINY_TEXT``): any S, H or P, as a page that short with such a sentence has
      nothing else to say;
    - short (up to ``SHORT_TEXT``): S, H, or W together with P; prose alone is not enough,
      since a short news item or forum post about bots quotes the same phrases;
    - medium (up to ``MEDIUM_TEXT``, or a body cut at ``max_scan_bytes``): S, or H with W;
    - long: content, whatever it mentions (a one-line "not available in your country" for one
      product variant does not turn a product page into a geo-block).

    Geo and rate-limit phrases follow the same rule (they have no vendor markup); a page that
    passes as a captcha page and also carries a geo phrase is a ``region_page`` (Cloudflare's
    "the owner of this website has banned the country or region...").
    """

    def __init__(self, settings: BanClassifierSettings = DEFAULT_SETTINGS) -> None:
        self.settings = settings
        self._ban_status = settings.ban_status
        self._extra_body = _compile_patterns(
            settings.extra_body_patterns, "BanClassifierSettings.extra_body_patterns"
        )

    def classify(
        self,
        *,
        status: int,
        headers: Mapping[str, str],
        url: str,
        body: bytes,
        request_url: str | None = None,
        redirect_location: str | None = None,
        expected_lang: str | Collection[str] | None = None,
        rules: BanRules | None = None,
        method: str = "GET",
    ) -> Verdict:
        """Judge one answer. ``headers`` may use any case (values ``str``, ``bytes`` or lists);
        ``body`` may be the whole body or just its head; ``request_url`` is the URL that was
        asked for when ``url`` is where redirects ended."""
        site = _site_rules(rules) if rules is not None else None
        wanted: dict[str, str] = {}
        for key, value in headers.items():
            name = _header_text(key).strip().lower()
            if name in _WANTED_HEADERS:
                wanted[name] = _header_text(value)

        # 1. Status.
        if (status in self._ban_status or (site is not None and status in site.status)) and (
            site is None or status not in site.content_status
        ):
            retry_after = parse_retry_after(wanted.get("retry-after"))
            if status == 429:
                kind = BanKind.THROTTLE
            elif status == 451:
                kind = BanKind.GEO_BLOCK
            else:
                kind = BanKind.BAN
            return Verdict(kind, f"status_{status}", retry_after)

        # 2. Where the answer sends us.
        targets = []
        if redirect_location:
            targets.append(_join(url, redirect_location))
        elif 300 <= status < 400 and wanted.get("location"):
            targets.append(_join(url, wanted["location"]))
        if request_url is not None and url != request_url:
            targets.append(url)
        refresh = wanted.get("refresh")
        if refresh:
            found = _REFRESH_URL_RE.match(refresh)
            if found is not None:
                targets.append(_join(url, found.group(1)))
        verdict = self._judge_targets(targets, url, request_url, site, final=url)
        if verdict is not None:
            return verdict

        # 3. Headers only challenges carry.
        if wanted.get("cf-mitigated", "").strip().lower() == "challenge" or wanted.get(
            "x-amzn-waf-action", ""
        ).strip().lower() in ("captcha", "challenge"):
            return _CAPTCHA

        # 4. Size, for answers that have a body by design.
        if (
            method.upper() == "HEAD"
            or status in _BODYLESS_STATUS
            or status < 200
            or 300 <= status < 400
        ):
            return OK
        minimum = self.settings.min_body_size
        if site is not None and site.min_body_size is not None:
            minimum = site.min_body_size
        if status in _SIZED_STATUS and len(body) < minimum:
            return _EMPTY_BODY if not body else _TINY_BODY

        content_type = wanted.get("content-type", "").lower()
        declared = _declared_charset(content_type)
        head = body[: self.settings.max_scan_bytes]

        # 5. Configured body patterns, on any textual body.
        patterns = self._extra_body + (site.body if site is not None else ())
        if patterns and head and not any(m in content_type for m in _BINARY_MARKERS):
            charset = _codec(declared or _sniffed_charset(head[:2048].lower()))
            if any(p.search(_decode(head, charset)) for p in patterns):
                return _BODY_PATTERN

        # 6. and 7. HTML.
        if not head or not self._is_html(content_type, head):
            return OK
        charset = _codec(declared) if declared else ""
        if charset.startswith(("utf-16", "utf-32")) or head.startswith((b"\xff\xfe", b"\xfe\xff")):
            # Re-encode so that the byte-level markers apply; rare enough not to matter.
            wide = charset if charset.startswith(("utf-16", "utf-32")) else "utf-16"
            head = _decode(head, wide).encode("utf-8")
            charset = "utf-8"
        low = head.lower()  # ASCII only, so offsets in ``low`` and ``head`` stay the same
        charset = charset or _codec(_sniffed_charset(low[:2048]))
        truncated = len(body) >= self.settings.max_scan_bytes

        verdict = self._judge_refresh(low, head, url, request_url, site)
        if verdict is None:
            verdict = self._judge_html(low, head, charset, truncated)
        if verdict is not None:
            if verdict.kind is BanKind.THROTTLE:
                return Verdict(
                    verdict.kind, verdict.reason, parse_retry_after(wanted.get("retry-after"))
                )
            return verdict
        if (
            expected_lang
            and self.settings.check_lang
            and 200 <= status < 300
            and self._lang_mismatch(low, expected_lang)
        ):
            return _LANG_MISMATCH
        return OK

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _judge_targets(
        targets: list[str],
        url: str,
        request_url: str | None,
        site: _SiteRules | None,
        final: str | None,
    ) -> Verdict | None:
        lowered = [t.lower() for t in targets]
        if any(_CHALLENGE_URL_RE.search(t) for t in lowered):
            return _CHALLENGE_REDIRECT
        if any(_LOGIN_URL_RE.search(t) for t in lowered) and not _is_login(
            request_url if request_url is not None else url
        ):
            return _LOGIN_REDIRECT
        if site is not None and site.url:
            candidates = [*targets, final] if final is not None else targets
            if any(p.search(c) for p in site.url for c in candidates):
                return _URL_PATTERN
        return None

    def _judge_refresh(
        self, low: bytes, head: bytes, url: str, request_url: str | None, site: _SiteRules | None
    ) -> Verdict | None:
        """``<meta http-equiv="refresh" content="0;url=...">`` in the document head is a
        redirect too (SiteGround's captcha and several WAFs send one)."""
        pos = low.find(b"refresh", 0, 4096)
        while pos != -1:
            tag_start = low.rfind(b"<meta", max(0, pos - 256), pos)
            tag_end = low.find(b">", pos, pos + 1024)
            if tag_start != -1 and tag_end != -1 and b"http-equiv" in low[tag_start:tag_end]:
                tag = head[tag_start:tag_end].decode("latin-1")
                content = _CONTENT_ATTR_RE.search(tag)
                value = next((g for g in content.groups() if g is not None), "") if content else ""
                found = _REFRESH_URL_RE.match(value)
                if found is not None:
                    verdict = self._judge_targets(
                        [_join(url, found.group(1))], url, request_url, site, final=None
                    )
                    if verdict is not None:
                        return verdict
            pos = low.find(b"refresh", pos + 7, 4096)
        return None

    @staticmethod
    def _is_html(content_type: str, head: bytes) -> bool:
        """Declared HTML; or no useful type and a body that starts like markup."""
        if "html" in content_type:
            return True
        if any(marker in content_type for marker in _NON_HTML_MARKERS):
            return False
        start = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--")) or (
            start.startswith(b"<") and b"<html" in head[:2048].lower()
        )

    @staticmethod
    def _judge_html(low: bytes, head: bytes, charset: str, truncated: bool) -> Verdict | None:
        strong, widget = _markup_evidence(low)
        heading = _heading_categories(_headings(low, head, charset))
        if not (strong or widget or heading or len(low) <= SMALL_DOCUMENT):
            return None  # the fast path: nothing anywhere that could make this a ban page
        visible = _visible_text(_decode(head, charset))
        size = _size_class(visible, truncated)
        if size == _LONG:
            return None
        counts = {_C_BODY: 0, _GEO: 0, _THROTTLE: 0}
        # Phrases decide on a tiny page, and add to other evidence on a short one.
        if size == _TINY or (size == _SHORT and (strong or widget or heading)):
            seen: set[str] = set()
            for phrase in _phrases_in(_normalise(visible)):
                category = _PHRASE_CATEGORY[phrase]
                if category in counts and phrase not in seen:
                    seen.add(phrase)
                    counts[category] += 1
        captcha_heading = _C_BODY in heading or _C_HEAD in heading
        captcha = _passes(size, strong, captcha_heading, counts[_C_BODY], widget)
        geo_heading = _GEO in heading
        if _passes(size, False, geo_heading, counts[_GEO], False) or (
            captcha and (geo_heading or counts[_GEO])
        ):
            return _REGION_PAGE
        if captcha:
            return _CAPTCHA
        if _passes(size, False, _THROTTLE in heading, counts[_THROTTLE], False):
            return Verdict(BanKind.THROTTLE, "rate_limit_page")
        return None

    @staticmethod
    def _lang_mismatch(low: bytes, expected_lang: str | Collection[str]) -> bool:
        """``<html lang>`` (or ``xml:lang``) against the expected languages, primary subtags
        only: ``fr-CA`` accepts ``fr`` and ``fr-FR``. No declaration, no verdict."""
        expected = language_set(expected_lang)
        if not expected:
            return False
        declared = _declared_primary(low)
        return declared is not None and declared not in expected


def language_set(value: str | Collection[str]) -> frozenset[str]:
    """Primary language subtags of an ``Accept-Language`` value or of a list of tags:
    ``"en-CA,fr-CA;q=0.9,en;q=0.8"`` is ``{"en", "fr"}``. A bilingual country expects both."""
    if isinstance(value, frozenset):
        return value  # already a set of primary subtags
    tags = value.split(",") if isinstance(value, str) else value
    out = set()
    for tag in tags:
        primary = _primary_subtag(tag.split(";")[0])
        if primary is not None:
            out.add(primary)
    return frozenset(out)


def _declared_primary(low: bytes) -> str | None:
    start = _find_tag(low, b"<html", 0, 8192)
    if start == -1:
        return None
    end = low.find(b">", start, start + 2048)
    if end == -1:
        return None
    found = _LANG_RE.search(low, start + 5, end)
    if found is None:
        return None
    return _primary_subtag(found.group(1).decode("ascii"))


def declared_language(body: bytes) -> str | None:
    """The primary subtag of the page's ``<html lang>`` (``fr`` for ``fr-CA``), or None."""
    return _declared_primary(body[:8192].lower())
