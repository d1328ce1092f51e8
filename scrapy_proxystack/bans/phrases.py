"""The phrases block, challenge, geo-block and rate-limit pages say, and how they are found.

This module is mostly data: the phrase tables of every language covered, grouped by what they
mean. The functions turn the tables into one trie-shaped regular expression and a cheap keyword
test that rules out nearly every normal text before the regex runs. It is whole on purpose: the
tables and the matcher built from them change together.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

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
    "making sure you{ are|'re} not a bot",
    "{checking|verifying} {that |}you{ are|'re} not a bot",
    "prove your humanity",
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
    "using a security service {to protect itself|for protection against online attacks}",
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
    "403 error",
    "not acceptable",
    "sina visitor system",
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
#: Phrases that only say "you may not see this". A login wall says them too, so on a ``401``
#: they are no evidence of a ban (see BanClassifier).
_DENIAL_TEMPLATES: Final = (
    "access denied",
    "access forbidden",
    "forbidden",
    "403 forbidden",
    "error 403",
    "403 error",
    "blocked",
    "not acceptable",
    "request {blocked|rejected}",
    "the requested url was rejected",
    "you{ have|'ve} been blocked",
    "your {ip|ip address|request|access} has been blocked",
    "access to this page has been {denied|blocked}",
    "accès {refusé|interdit|bloqué}",
    "vous avez été bloqué",
    "zugriff verweigert",
    "zugang verweigert",
    "zugriff gesperrt",
    "sie wurden blockiert",
    "ihre anfrage wurde blockiert",
    "acceso denegado",
    "has sido bloqueado",
    "acesso negado",
    "você foi bloqueado",
    "accesso negato",
    "sei stato bloccato",
    "アクセスが拒否されました",
    "アクセスは拒否されました",
    "アクセスが制限されています",
    "доступ {запрещен|запрещён|ограничен|заблокирован}",
    "访问被拒绝",
    "訪問被拒絕",
    "拒绝访问",
    "拒絕訪問",
    "存取遭拒",
    "접근이 거부되었습니다",
)

C_BODY, C_HEAD, GEO, THROTTLE = "captcha", "captcha_heading", "geo", "throttle"
#: Lower-case letters of the scripts whose words are separated by spaces: a phrase written in
#: them must start and end on a word boundary ("blocked" is not in "unblocked").
_WORD_CHARS: Final = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u024f\u0430-\u045f"
_WORD_CHAR_RE = re.compile(f"[{_WORD_CHARS}]")
_APOSTROPHES: Final = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
#: Title separators (``Attention Required! | Cloudflare``, ``Sucuri WebSite Firewall - Access
#: Denied``). A hyphen or colon only separates with spaces around it.
_HEADING_SEPARATOR_RE = re.compile("\\s[-:/]{1,2}\\s|[|\u2013\u2014\u00b7\u00bb]")
#: A heading "is" a phrase when it has at most this many characters besides it.
HEADING_SLACK: Final = 16


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
        (C_BODY, _CAPTCHA_PHRASES),
        (C_HEAD, _CAPTCHA_HEADING_PHRASES),
        (GEO, _GEO_PHRASES),
        (THROTTLE, _THROTTLE_PHRASES),
    ):
        for template in templates:
            for phrase in _expand(template):
                if table.setdefault(phrase, category) != category:
                    raise RuntimeError(f"ban phrase {phrase!r} is in two categories")
    return table


#: Every phrase and its category.
PHRASE_CATEGORY: Final = _phrase_table()
_PHRASE_RE: Final = re.compile(_trie_regex(PHRASE_CATEGORY))
#: Phrases that are no evidence against a login wall's ``401``.
DENIAL: Final = frozenset(p for t in _DENIAL_TEMPLATES for p in _expand(t))
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


_KEYWORDS: Final = _keywords(PHRASE_CATEGORY)


def _may_hold_phrase(text: str) -> bool:
    """A cheap test that rules out nearly every normal text before the phrase regex runs.

    ``re`` needs some 70 ns a character for the phrase trie; finding the words and looking
    them up in a set is several times cheaper.
    """
    return _CJK_RE.search(text) is not None or not _KEYWORDS.isdisjoint(_WORD_RE.findall(text))


def phrases_in(text: str) -> list[str]:
    """The phrases in normalised ``text``, leftmost-longest."""
    return _PHRASE_RE.findall(text) if _may_hold_phrase(text) else []


def normalise(text: str) -> str:
    """Lower-cased, entity-decoded, straight apostrophes, single spaces: how phrases are written."""
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def heading_categories(headings: Iterable[str], ignored: frozenset[str] = frozenset()) -> set[str]:
    """Categories of the phrases that make up (nearly) a whole heading or title segment.

    A block page's title *is* the phrase ("Access Denied", "Just a moment...", "Attention
    Required! | Cloudflare"); an article's title only contains it ("Are you a robot? How
    CAPTCHAs decide"). So the segment around the phrase (titles are split on ``|``, `` - ``
    and the like, which separate the site name) may hold at most ``HEADING_SLACK`` more
    characters. Phrases in ``ignored`` do not count.
    """
    found: set[str] = set()
    for heading in headings:
        if not _may_hold_phrase(heading):
            continue
        for segment in _HEADING_SEPARATOR_RE.split(heading):
            segment = segment.strip()
            for phrase in _PHRASE_RE.findall(segment):
                if phrase not in ignored and len(segment) - len(phrase) <= HEADING_SLACK:
                    found.add(PHRASE_CATEGORY[phrase])
    return found


def phrase_counts(text: str, ignored: frozenset[str] = frozenset()) -> dict[str, int]:
    """How many distinct phrases of each category normalised ``text`` holds."""
    counts = {C_BODY: 0, GEO: 0, THROTTLE: 0}
    seen: set[str] = set()
    for phrase in phrases_in(text):
        category = PHRASE_CATEGORY[phrase]
        if category in counts and phrase not in seen and phrase not in ignored:
            seen.add(phrase)
            counts[category] += 1
    return counts
