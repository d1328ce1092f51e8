"""The pages of the loopback sites: small, real-looking HTML in seven languages.

The text is local-news filler, but it is real text in the page's language (so language
detection and locale checks have something to work on) and every page carries a contact e-mail
address and a phone number in the national format of the language's country, so that a PII
pipeline has something to find and mask. Ban and challenge pages imitate the markers real
anti-bot vendors put in theirs.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = [
    "LANGUAGES",
    "ban_page",
    "captcha_page",
    "challenge_page",
    "contact_email",
    "index_page",
    "normalize_lang",
    "page",
    "phone_number",
    "region_page",
    "robots_txt",
]


@dataclass(frozen=True)
class _Texts:
    country: str
    phone: str
    index_title: str
    article: str
    next_label: str
    home_label: str
    contact: str  # with {email} and {phone}
    author: str
    region_title: str
    region_text: str
    headlines: tuple[str, ...]
    paragraphs: tuple[str, ...]


_TEXTS: dict[str, _Texts] = {
    "en": _Texts(
        country="US",
        phone="(415) 555-0134",
        index_title="Latest stories",
        article="Story",
        next_label="Next story",
        home_label="Home",
        contact="Questions or corrections? Write to {email} or call {phone} on weekdays.",
        author="By Jane Miller, community desk",
        region_title="Not available in your region",
        region_text="This content is not available in your region. We are sorry for the "
        "inconvenience.",
        headlines=(
            "Farmers market returns to Riverside Park",
            "City library extends its weekend hours",
            "New bike lanes open along Harbor Street",
            "Local bakery wins state bread award",
            "Volunteers plant two hundred trees downtown",
            "High school robotics team heads to finals",
        ),
        paragraphs=(
            "The Saturday farmers market is back for the season, with more than forty stalls "
            "selling fresh vegetables, honey, cheese and cut flowers from nearby farms.",
            "Organizers say attendance last year doubled compared to the year before, and they "
            "expect even bigger crowds now that the parking lot on Elm Avenue has reopened.",
            "City officials confirmed that the project stayed on budget. Construction crews "
            "will return in the fall to finish the sidewalks and the new crossing signals.",
            "Residents who spoke to us were mostly enthusiastic, although a few shop owners "
            "worry about deliveries during the busiest hours of the morning.",
            "The council will discuss the next phase at its monthly meeting, which is open to "
            "the public and streamed live on the city website.",
            "Admission is free, and children under twelve can join the guided tour that starts "
            "every hour from the main entrance.",
        ),
    ),
    "fr": _Texts(
        country="FR",
        phone="01 23 45 67 89",
        index_title="Derniers articles",
        article="Article",
        next_label="Article suivant",
        home_label="Accueil",
        contact="Une question ou une correction ? Écrivez à {email} ou appelez le {phone} "
        "en semaine.",
        author="Par Claire Dubois, rédaction locale",
        region_title="Contenu indisponible dans votre région",
        region_text="Ce contenu n'est pas disponible dans votre région. Nous vous prions de "
        "nous excuser pour la gêne occasionnée.",
        headlines=(
            "Le marché du dimanche s'agrandit place de la République",
            "La médiathèque ouvre désormais le lundi",
            "Une nouvelle piste cyclable le long du canal",
            "La boulangerie du quartier primée pour sa baguette",
            "Deux cents arbres plantés par les bénévoles",
            "Le club de rugby accède à la finale régionale",
        ),
        paragraphs=(
            "Le marché du dimanche accueille désormais plus de quarante exposants : "
            "maraîchers, fromagers, apiculteurs et fleuristes venus des communes voisines.",
            "Selon les organisateurs, la fréquentation a doublé en un an, et ils s'attendent "
            "à une affluence encore plus forte depuis la réouverture du parking de la gare.",
            "La mairie assure que le budget a été respecté. Les travaux reprendront à "
            "l'automne pour achever les trottoirs et les nouveaux feux de signalisation.",
            "Les habitants que nous avons rencontrés sont plutôt enthousiastes, même si "
            "quelques commerçants s'inquiètent pour les livraisons du matin.",
            "Le conseil municipal examinera la suite du projet lors de sa prochaine séance, "
            "ouverte au public et retransmise en direct sur le site de la ville.",
            "L'entrée est gratuite et les enfants de moins de douze ans peuvent suivre la "
            "visite guidée qui part toutes les heures de l'entrée principale.",
        ),
    ),
    "de": _Texts(
        country="DE",
        phone="030 12345678",
        index_title="Neueste Beiträge",
        article="Beitrag",
        next_label="Nächster Beitrag",
        home_label="Startseite",
        contact="Fragen oder Korrekturen? Schreiben Sie an {email} oder rufen Sie werktags "
        "{phone} an.",
        author="Von Anna Schneider, Lokalredaktion",
        region_title="In Ihrer Region nicht verfügbar",
        region_text="Dieser Inhalt ist in Ihrer Region leider nicht verfügbar. Wir bitten um "
        "Ihr Verständnis.",
        headlines=(
            "Der Wochenmarkt kehrt auf den Marktplatz zurück",
            "Die Stadtbibliothek verlängert ihre Öffnungszeiten",
            "Neuer Radweg entlang der Hafenstraße eröffnet",
            "Bäckerei aus dem Viertel gewinnt Brotpreis",
            "Freiwillige pflanzen zweihundert Bäume in der Innenstadt",
            "Robotik-AG des Gymnasiums steht im Finale",
        ),
        paragraphs=(
            "Der Wochenmarkt ist zurück: Mehr als vierzig Stände bieten frisches Gemüse, "
            "Honig, Käse und Blumen von Höfen aus der Umgebung an.",
            "Nach Angaben der Veranstalter hat sich die Besucherzahl im vergangenen Jahr "
            "verdoppelt, und seit der Parkplatz am Bahnhof wieder offen ist, rechnen sie mit "
            "noch mehr Andrang.",
            "Die Stadtverwaltung bestätigte, dass der Kostenrahmen eingehalten wurde. Im "
            "Herbst werden die Gehwege und die neuen Ampeln fertiggestellt.",
            "Die meisten Anwohner, mit denen wir gesprochen haben, sind begeistert, auch wenn "
            "einige Ladenbesitzer sich Sorgen um die Lieferungen am Vormittag machen.",
            "Der Stadtrat berät in seiner nächsten öffentlichen Sitzung über die zweite "
            "Bauphase; die Sitzung wird live auf der Website der Stadt übertragen.",
            "Der Eintritt ist frei, und Kinder unter zwölf Jahren können an der Führung "
            "teilnehmen, die stündlich am Haupteingang beginnt.",
        ),
    ),
    "es": _Texts(
        country="ES",
        phone="912 345 678",
        index_title="Últimas noticias",
        article="Noticia",
        next_label="Siguiente noticia",
        home_label="Inicio",
        contact="¿Preguntas o correcciones? Escríbenos a {email} o llama al {phone} de "
        "lunes a viernes.",
        author="Por Lucía García, redacción local",
        region_title="No disponible en tu región",
        region_text="Este contenido no está disponible en tu región. Disculpa las molestias.",
        headlines=(
            "Vuelve el mercado de productores a la plaza Mayor",
            "La biblioteca municipal amplía su horario",
            "Se inaugura un nuevo carril bici junto al puerto",
            "Una panadería del barrio gana el premio regional",
            "Voluntarios plantan doscientos árboles en el centro",
            "El equipo de robótica del instituto llega a la final",
        ),
        paragraphs=(
            "El mercado de productores vuelve cada sábado con más de cuarenta puestos de "
            "verduras frescas, miel, queso y flores de las huertas cercanas.",
            "Según los organizadores, la afluencia se duplicó el año pasado y esperan todavía "
            "más público ahora que ha reabierto el aparcamiento de la estación.",
            "El ayuntamiento confirmó que las obras no superaron el presupuesto. En otoño se "
            "terminarán las aceras y los nuevos semáforos.",
            "Los vecinos con los que hablamos se mostraron entusiasmados, aunque algunos "
            "comerciantes temen por el reparto de mercancías por la mañana.",
            "El pleno municipal debatirá la siguiente fase en su próxima sesión, abierta al "
            "público y retransmitida en directo en la web del ayuntamiento.",
            "La entrada es gratuita y los menores de doce años pueden apuntarse a la visita "
            "guiada que sale cada hora desde la entrada principal.",
        ),
    ),
    "ja": _Texts(
        country="JP",
        phone="03-1234-5678",
        index_title="最新の記事",
        article="記事",
        next_label="次の記事",
        home_label="ホーム",
        contact="ご質問・訂正は {email} までメールでお送りいただくか、平日に {phone} "
        "までお電話ください。",
        author="地域報道部 佐藤 花子",
        region_title="お住まいの地域ではご利用いただけません",
        region_text="このコンテンツはお住まいの地域ではご利用いただけません。"
        "ご不便をおかけして申し訳ございません。",
        headlines=(
            "商店街の朝市が今年も始まりました",
            "市立図書館が週末の開館時間を延長",
            "港通りに新しい自転車専用レーンが開通",
            "地元のパン屋が県のコンテストで受賞",
            "ボランティアが中心街に二百本の木を植樹",
            "高校のロボット部が全国大会へ",
        ),
        paragraphs=(
            "毎週土曜日の朝市が再開し、近隣の農家から新鮮な野菜や蜂蜜、チーズ、"
            "切り花などを売る四十以上の店が並びます。",
            "主催者によると、昨年の来場者数は前年の二倍に増えました。"
            "駅前の駐車場が再開したことで、さらに多くの人出が見込まれています。",
            "市の担当者は、工事が予算内で進んでいることを明らかにしました。"
            "秋には歩道と新しい信号機の工事が完了する予定です。",
            "話を聞いた住民の多くは歓迎していますが、"
            "一部の店主は朝の配送への影響を心配しています。",
            "市議会は次回の定例会で第二期工事について議論します。"
            "会議は一般公開され、市のウェブサイトで生中継されます。",
            "入場は無料で、十二歳未満の子どもは正面入口から毎時出発する"
            "ガイドツアーに参加できます。",
        ),
    ),
    "pt": _Texts(
        country="BR",
        phone="(11) 3456-7890",
        index_title="Últimas notícias",
        article="Notícia",
        next_label="Próxima notícia",
        home_label="Início",
        contact="Dúvidas ou correções? Escreva para {email} ou ligue para {phone} em dias úteis.",
        author="Por Ana Souza, redação local",
        region_title="Indisponível na sua região",
        region_text="Este conteúdo não está disponível na sua região. Pedimos desculpas pelo "
        "transtorno.",
        headlines=(
            "A feira de produtores volta à praça central",
            "Biblioteca municipal amplia o horário de funcionamento",
            "Nova ciclovia é inaugurada na avenida do porto",
            "Padaria do bairro ganha prêmio estadual",
            "Voluntários plantam duzentas árvores no centro",
            "Equipe de robótica da escola vai à final",
        ),
        paragraphs=(
            "A feira de produtores voltou aos sábados com mais de quarenta barracas de "
            "verduras frescas, mel, queijo e flores dos sítios da região.",
            "Segundo os organizadores, o público dobrou no ano passado, e a expectativa é de "
            "movimento ainda maior com a reabertura do estacionamento da estação.",
            "A prefeitura confirmou que a obra ficou dentro do orçamento. As calçadas e os "
            "novos semáforos serão concluídos no segundo semestre.",
            "Os moradores com quem conversamos aprovaram a novidade, embora alguns "
            "comerciantes temam pelas entregas no período da manhã.",
            "A câmara municipal discutirá a próxima etapa na sessão do mês que vem, aberta ao "
            "público e transmitida ao vivo pelo site da prefeitura.",
            "A entrada é gratuita e crianças com menos de doze anos podem participar da "
            "visita guiada, que sai a cada hora da entrada principal.",
        ),
    ),
    "it": _Texts(
        country="IT",
        phone="06 1234 5678",
        index_title="Ultimi articoli",
        article="Articolo",
        next_label="Articolo successivo",
        home_label="Home",
        contact="Domande o correzioni? Scrivete a {email} o chiamate il {phone} nei giorni "
        "feriali.",
        author="Di Giulia Rossi, redazione locale",
        region_title="Non disponibile nella tua area geografica",
        region_text="Questo contenuto non è disponibile nella tua area geografica. Ci scusiamo "
        "per il disagio.",
        headlines=(
            "Torna il mercato dei produttori in piazza Garibaldi",
            "La biblioteca comunale allunga l'orario di apertura",
            "Inaugurata una nuova pista ciclabile lungo il porto",
            "Un forno del quartiere premiato per il suo pane",
            "I volontari piantano duecento alberi in centro",
            "La squadra di robotica del liceo vola in finale",
        ),
        paragraphs=(
            "Il mercato dei produttori è tornato ogni sabato con più di quaranta banchi di "
            "verdura fresca, miele, formaggi e fiori delle aziende agricole vicine.",
            "Secondo gli organizzatori, l'affluenza è raddoppiata l'anno scorso e si "
            "aspettano ancora più visitatori ora che ha riaperto il parcheggio della stazione.",
            "Il comune ha confermato che i lavori sono rimasti nel budget. In autunno "
            "verranno completati i marciapiedi e i nuovi semafori.",
            "I residenti che abbiamo incontrato sono per lo più entusiasti, anche se alcuni "
            "negozianti temono per le consegne del mattino.",
            "Il consiglio comunale discuterà la fase successiva nella prossima seduta, aperta "
            "al pubblico e trasmessa in diretta sul sito del comune.",
            "L'ingresso è gratuito e i bambini sotto i dodici anni possono partecipare alla "
            "visita guidata che parte ogni ora dall'ingresso principale.",
        ),
    ),
}

#: Languages with built-in text (primary subtags).
LANGUAGES = tuple(_TEXTS)


def _text(value: str) -> str:
    """Escape text content; apostrophes stay readable (only attributes need them escaped)."""
    return html.escape(value, quote=False)


def normalize_lang(lang: str) -> str:
    """The built-in language for ``lang`` (``"fr-FR"`` -> ``"fr"``). Raises ValueError."""
    primary = lang.split("-")[0].split("_")[0].lower()
    if primary not in _TEXTS:
        raise ValueError(f"lang {lang!r} has no built-in text; expected one of {LANGUAGES}")
    return primary


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "site"


def contact_email(site_name: str) -> str:
    """The contact address printed on every page of a site."""
    return f"contact@{_slug(site_name)}.test"


def phone_number(lang: str) -> tuple[str, str]:
    """``(national number, ISO country)`` printed on the pages of a site in ``lang``."""
    texts = _TEXTS[normalize_lang(lang)]
    return texts.phone, texts.country


def _document(lang: str, title: str, body: str, extra_head: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{html.escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n{extra_head}</head>\n<body>\n{body}</body>\n"
        "</html>\n"
    )


def _pad(document: str, filler: tuple[str, ...], size: int | None) -> bytes:
    """Grow ``document`` to about ``size`` bytes with more paragraphs, then a comment."""
    data = document.encode()
    if size is None or len(data) >= size:
        return data
    marker = b"</article>"
    head, _, tail = data.rpartition(marker)
    tail = marker + tail
    parts = [head]
    total = len(head) + len(tail)
    i = 0
    while True:
        para = f"<p>{_text(filler[i % len(filler)])}</p>\n".encode()
        if total + len(para) > size:
            break
        parts.append(para)
        total += len(para)
        i += 1
    room = size - total
    if room >= 8:
        parts.append(b"<!--" + b" " * (room - 8) + b"-->\n")
    parts.append(tail)
    return b"".join(parts)


def index_page(site_name: str, lang: str, pages: int, page_size: int | None = None) -> bytes:
    """``/``: the list of every article of the site."""
    texts = _TEXTS[normalize_lang(lang)]
    items = "".join(
        f'<li><a href="/page/{n}">{_text(_headline(texts, n))}</a></li>\n'
        for n in range(1, pages + 1)
    )
    body = (
        f"<header><h1>{_text(site_name)}</h1></header>\n"
        f"<main><article>\n<h2>{_text(texts.index_title)}</h2>\n<ul>\n{items}</ul>\n"
        f"</article></main>\n{_footer(site_name, texts)}"
    )
    return _pad(
        _document(lang, f"{site_name} - {texts.index_title}", body), texts.paragraphs, page_size
    )


def _headline(texts: _Texts, n: int) -> str:
    return f"{texts.headlines[(n - 1) % len(texts.headlines)]} ({texts.article} {n})"


def _footer(site_name: str, texts: _Texts) -> str:
    contact = _text(texts.contact).format(
        email=f'<a href="mailto:{contact_email(site_name)}">{contact_email(site_name)}</a>',
        phone=f'<span class="phone">{_text(texts.phone)}</span>',
    )
    return f'<footer>\n<p class="contact">{contact}</p>\n</footer>\n'


def page(site_name: str, lang: str, n: int, pages: int, page_size: int | None = None) -> bytes:
    """``/page/{n}``: one article, linking home and to the next article."""
    texts = _TEXTS[normalize_lang(lang)]
    count = len(texts.paragraphs)
    paras = "".join(f"<p>{_text(texts.paragraphs[(n + i) % count])}</p>\n" for i in range(3))
    nav = f'<a href="/">{_text(texts.home_label)}</a>'
    if n < pages:
        label = _text(texts.next_label)
        nav += f' | <a class="next" rel="next" href="/page/{n + 1}">{label}</a>'
    headline = _headline(texts, n)
    body = (
        f'<header><a href="/">{_text(site_name)}</a></header>\n'
        f"<main><article>\n<h1>{_text(headline)}</h1>\n"
        f'<p class="byline">{_text(texts.author)}</p>\n{paras}</article>\n'
        f"<nav>{nav}</nav></main>\n{_footer(site_name, texts)}"
    )
    return _pad(_document(lang, f"{headline} - {site_name}", body), texts.paragraphs, page_size)


def region_page(site_name: str, lang: str) -> bytes:
    """The *soft* geo-block: a normal-looking 200 page that says "not in your region"."""
    texts = _TEXTS[normalize_lang(lang)]
    body = (
        f'<header><a href="/">{_text(site_name)}</a></header>\n'
        f'<main><article class="geo-block">\n<h1>{_text(texts.region_title)}</h1>\n'
        f"<p>{_text(texts.region_text)}</p>\n</article></main>\n"
        f"{_footer(site_name, texts)}"
    )
    return _document(lang, f"{texts.region_title} - {site_name}", body).encode()


def ban_page(title: str, message: str) -> bytes:
    """A plain block page as served by a web application firewall."""
    body = (
        f'<div class="error"><h1>{_text(title)}</h1>\n<p>{_text(message)}</p>\n'
        '<p class="ray-id">Reference #18.4f2a1c2e.1712345678.9b3d</p></div>\n'
    )
    return _document("en", title, body).encode()


def captcha_page() -> bytes:
    """A 200 page asking the visitor to prove it is human (reCAPTCHA and Cloudflare markers)."""
    body = (
        '<div id="cf-wrapper"><div class="cf-challenge" id="cf-challenge-stage">\n'
        "<h1>Are you a robot?</h1>\n"
        "<p>Our systems have detected unusual traffic from your computer network. "
        "Please complete the captcha below to continue.</p>\n"
        '<form id="challenge-form" action="/challenge" method="POST">\n'
        '<div class="g-recaptcha" data-sitekey="6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"></div>\n'
        '<button type="submit">Verify</button>\n</form>\n</div></div>\n'
    )
    extra = '<script src="https://www.google.com/recaptcha/api.js" async defer></script>\n'
    return _document("en", "Attention Required!", body, extra).encode()


def challenge_page(return_to: str) -> bytes:
    """``/challenge``: the JavaScript-check interstitial a redirect ban leads to."""
    body = (
        '<div id="cf-challenge-running" class="cf-challenge">\n'
        "<h1>Checking your browser before accessing this site.</h1>\n"
        "<p>This process is automatic. Your browser will redirect to your requested content "
        "shortly.</p>\n<p>Please enable cookies and JavaScript.</p>\n"
        f'<a id="return" href="{html.escape(return_to)}">Continue</a>\n</div>\n'
    )
    return _document("en", "Just a moment...", body).encode()


def robots_txt(crawl_delay: float | None) -> bytes:
    """``/robots.txt``: allow everything, with ``Crawl-delay`` when the site asks for one."""
    lines = ["User-agent: *", "Allow: /"]
    if crawl_delay is not None:
        delay = int(crawl_delay) if float(crawl_delay).is_integer() else crawl_delay
        lines.append(f"Crawl-delay: {delay}")
    return ("\n".join(lines) + "\n").encode()
