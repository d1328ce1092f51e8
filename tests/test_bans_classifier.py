"""The ban classifier: a table of real-looking pages, then the rules one by one.

The pages live in ``tests/data/ban_pages/``: ``block/`` holds ban, challenge and geo-block
pages of the common vendors in several languages, ``ok/`` holds content that must never be
taken for a ban (articles about captchas, forum threads about bots, product pages with a
one-line geo notice, login forms with a widget...).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxystack.bans import (
    OK,
    REASONS,
    BanClassifier,
    BanClassifierSettings,
    BanKind,
    Verdict,
    parse_retry_after,
)
from scrapy_proxystack.config import BanRules

PAGES = Path(__file__).parent / "data" / "ban_pages"
HTML = "text/html; charset=utf-8"
URL = "https://www.example.com/catalogue/item-42"

classifier = BanClassifier()


@dataclass(frozen=True)
class Page:
    path: str
    lang: str
    reason: str = "ok"
    kind: BanKind = BanKind.NONE
    status: int = 200
    content_type: str = HTML
    headers: tuple[tuple[str, str], ...] = ()
    expected_lang: str | None = None

    def classify(self) -> Verdict:
        headers = {"Content-Type": self.content_type, **dict(self.headers)}
        return classifier.classify(
            status=self.status,
            headers=headers,
            url=URL,
            request_url=URL,
            body=(PAGES / self.path).read_bytes(),
            expected_lang=self.expected_lang,
        )


def captcha(path: str, lang: str, **kwargs: object) -> Page:
    return Page(path, lang, "captcha", BanKind.BAN, **kwargs)  # type: ignore[arg-type]


def region(path: str, lang: str) -> Page:
    return Page(path, lang, "region_page", BanKind.GEO_BLOCK)


BLOCK_PAGES = [
    captcha("block/cloudflare_managed_challenge.html", "en"),
    captcha("block/cloudflare_iuam_legacy.html", "en"),
    captcha("block/cloudflare_1020_blocked.html", "en"),
    region("block/cloudflare_1009_country.html", "en"),
    captcha("block/google_sorry_en.html", "en"),
    captcha("block/google_sorry_ja.html", "ja"),
    captcha("block/hcaptcha_wall_en.html", "en"),
    captcha("block/datadome.html", "en"),
    captcha("block/perimeterx.html", "en"),
    captcha("block/akamai_access_denied.html", "en"),
    captcha("block/incapsula_iframe.html", "en"),
    captcha("block/sucuri_firewall.html", "en"),
    captcha("block/aws_waf_challenge.html", "en"),  # the body alone
    captcha(
        "block/aws_waf_challenge.html",
        "en",
        status=202,
        headers=(("x-amzn-waf-action", "challenge"),),
    ),
    captcha("block/f5_rejected.html", "en"),
    captcha("block/amazon_robot_check.html", "en"),
    captcha("block/imperva_abp_pardon.html", "en"),
    captcha("block/bare_verify_human.html", "en", content_type=""),  # sniffed as HTML
    captcha("block/fr_captcha.html", "fr"),
    captcha("block/de_captcha.html", "de"),
    captcha("block/de_access_denied.html", "de"),
    captcha("block/es_captcha.html", "es"),
    captcha("block/pt_captcha.html", "pt"),
    captcha("block/it_captcha.html", "it"),
    captcha("block/ru_captcha.html", "ru"),
    captcha("block/zh_captcha.html", "zh"),
    captcha("block/ja_captcha.html", "ja"),
    captcha("block/ja_shift_jis_blocked.html", "ja", content_type="text/html"),
    region("block/geo_en_region.html", "en"),
    region("block/geo_de.html", "de"),
    region("block/geo_fr.html", "fr"),
    region("block/geo_es.html", "es"),
    region("block/geo_it.html", "it"),
    region("block/geo_ja.html", "ja"),
    region("block/geo_ru.html", "ru"),
    region("block/geo_pt.html", "pt"),
    region("block/geo_zh.html", "zh"),
    Page("block/rate_limit_en.html", "en", "rate_limit_page", BanKind.THROTTLE),
    Page("block/rate_limit_zh.html", "zh", "rate_limit_page", BanKind.THROTTLE),
    Page("block/siteground_sgcaptcha.html", "en", "challenge_redirect", BanKind.BAN),
    Page("block/meta_refresh_login.html", "en", "login_redirect", BanKind.BAN),
    # A legitimate French article is a geo-block when the exit was meant to get English.
    Page("ok/news_fr.html", "fr", "lang_mismatch", BanKind.GEO_BLOCK, expected_lang="en"),
]

OK_PAGES = [
    Page("ok/article_recaptcha_en.html", "en"),
    Page("ok/blog_bots_en.html", "en"),
    Page("ok/forum_captchas_en.html", "en"),
    Page("ok/product_geo_notice_en.html", "en"),
    Page("ok/product_geo_notice_de.html", "de"),
    Page("ok/news_fr.html", "fr", expected_lang="fr-CA"),
    Page("ok/no_lang_de.html", "de", expected_lang="fr"),
    Page("ok/page_404_en.html", "en", status=404),
    Page("ok/login_recaptcha_en.html", "en"),
    Page("ok/newsletter_hcaptcha_en.html", "en"),
    Page("ok/cloudflare_normal_article.html", "en"),
    Page("ok/incapsula_normal_page.html", "en"),
    Page("ok/spa_shell_recaptcha_v3.html", "en"),
    Page("ok/article_ja_captcha.html", "ja", expected_lang="ja-JP"),
    Page("ok/article_ru_bots.html", "ru"),
    Page("ok/article_es_robot.html", "es", expected_lang="es"),
    Page("ok/short_it_about.html", "it"),
    Page("ok/wiki_access_denied_film.html", "en"),
    Page("ok/zh_news.html", "zh", expected_lang="zh-Hans"),
    Page("ok/en_gb_page.html", "en", expected_lang="en-US"),
    Page("ok/ok.txt", "en", content_type="text/plain"),
    Page("ok/ok.json", "en", content_type="application/json"),
]


def _ids(pages: list[Page]) -> list[str]:
    return [f"{p.path}@{p.status}" for p in pages]


@pytest.mark.parametrize("page", BLOCK_PAGES, ids=_ids(BLOCK_PAGES))
def test_block_page(page: Page) -> None:
    verdict = page.classify()
    assert (verdict.kind, verdict.reason) == (page.kind, page.reason)


@pytest.mark.parametrize("page", OK_PAGES, ids=_ids(OK_PAGES))
def test_legitimate_page(page: Page) -> None:
    assert page.classify() == OK


def test_no_false_positive_and_no_miss_on_the_whole_table() -> None:
    false_positives = [p.path for p in OK_PAGES if p.classify().is_ban]
    wrong = [p.path for p in BLOCK_PAGES if p.classify().reason != p.reason]
    assert false_positives == []
    assert wrong == []


def test_table_is_broad_enough() -> None:
    assert len(BLOCK_PAGES) + len(OK_PAGES) >= 40
    assert len({p.lang for p in BLOCK_PAGES}) >= 5
    assert len({p.lang for p in OK_PAGES}) >= 5
    paths = {p.path for p in BLOCK_PAGES + OK_PAGES}
    on_disk = {f"{d}/{f.name}" for d in ("block", "ok") for f in (PAGES / d).iterdir()}
    assert on_disk <= paths  # every fixture is in the table


# --- Retry-After -------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def _http_date(delta: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + delta, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("  7 ", 7.0),
        (b"30", 30.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        (_http_date(90), 90.0),
        (_http_date(-3600), 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),
        ("Sun Nov  6 08:49:37 1994", 0.0),
        ("soon", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
        ("12 seconds", None),
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | bytes | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_uses_the_clock_by_default() -> None:
    future = format_datetime(datetime.now(tz=timezone.utc) + timedelta(hours=1), usegmt=True)
    seconds = parse_retry_after(future)
    assert seconds is not None
    assert 3500 < seconds <= 3600


@given(st.one_of(st.text(max_size=60), st.binary(max_size=60)))
def test_parse_retry_after_never_raises(value: str | bytes) -> None:
    result = parse_retry_after(value, now=NOW)
    assert result is None or result >= 0.0


# --- Status ------------------------------------------------------------------------------------


def _classify(
    status: int = 200, body: bytes = b"<html><body>Hello</body></html>", **kw: object
) -> Verdict:
    kw.setdefault("headers", {"Content-Type": HTML})
    kw.setdefault("url", URL)
    return classifier.classify(status=status, body=body, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (403, {}, Verdict(BanKind.BAN, "status_403")),
        (429, {"Retry-After": "120"}, Verdict(BanKind.THROTTLE, "status_429", 120.0)),
        (429, {}, Verdict(BanKind.THROTTLE, "status_429")),
        (451, {}, Verdict(BanKind.GEO_BLOCK, "status_451")),
        (503, {"Retry-After": "30"}, Verdict(BanKind.BAN, "status_503", 30.0)),
        (503, {}, Verdict(BanKind.BAN, "status_503")),
        (403, {"retry-after": "garbage"}, Verdict(BanKind.BAN, "status_403")),
    ],
)
def test_ban_statuses(status: int, headers: dict[str, str], expected: Verdict) -> None:
    assert _classify(status, headers={"Content-Type": HTML, **headers}) == expected


@pytest.mark.parametrize("status", [200, 201, 301, 302, 304, 400, 401, 404, 410, 500, 502])
def test_other_statuses_are_not_bans(status: int) -> None:
    body = b"<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>"
    assert _classify(status, body=body) == OK


def test_status_wins_over_the_body() -> None:
    body = (PAGES / "block" / "cloudflare_managed_challenge.html").read_bytes()
    assert _classify(403, body=body).reason == "status_403"


def test_custom_ban_status() -> None:
    custom = BanClassifier(BanClassifierSettings(ban_status=frozenset({403})))
    assert custom.classify(status=503, headers={}, url=URL, body=b"x") == OK
    assert custom.classify(status=403, headers={}, url=URL, body=b"x").reason == "status_403"


# --- Per-site rules ----------------------------------------------------------------------------

LONG_ARTICLE = (PAGES / "ok" / "blog_bots_en.html").read_bytes()


def test_rules_extra_status() -> None:
    rules = BanRules(status=(410,))
    assert _classify(410, rules=rules) == Verdict(BanKind.BAN, "status_410")
    assert _classify(410) == OK


def test_rules_content_status_overrides_a_ban_status() -> None:
    rules = BanRules(content_status=(403, 429))
    assert _classify(403, body=LONG_ARTICLE, rules=rules) == OK
    assert _classify(429, body=LONG_ARTICLE, rules=rules) == OK
    # The status no longer bans, but a challenge page served with it still does.
    challenge = (PAGES / "block" / "datadome.html").read_bytes()
    assert _classify(403, body=challenge, rules=rules).reason == "captcha"


def test_rules_body_patterns() -> None:
    rules = BanRules(body_patterns=("Zugriff verweigert", r"kunden-?nummer \d+ gesperrt"))
    body = LONG_ARTICLE.replace(b"</article>", b"<p>ZUGRIFF VERWEIGERT</p></article>")
    assert _classify(body=body, rules=rules) == Verdict(BanKind.BAN, "body_pattern")
    assert _classify(body=LONG_ARTICLE, rules=rules) == OK
    json_body = b'{"error": "Kundennummer 42 gesperrt"}'
    headers = {"Content-Type": "application/json"}
    assert _classify(body=json_body, headers=headers, rules=rules).reason == "body_pattern"
    png = {"Content-Type": "image/png"}
    assert _classify(body=b"\x89PNG zugriff verweigert", headers=png, rules=rules) == OK


def test_extra_body_patterns_setting() -> None:
    custom = BanClassifier(BanClassifierSettings(extra_body_patterns=(r"you are blocked",)))
    body = b"<html><body><p>Sorry, You Are Blocked.</p></body></html>"
    verdict = custom.classify(status=200, headers={}, url=URL, body=body)
    assert verdict.reason == "body_pattern"


def test_rules_url_patterns() -> None:
    rules = BanRules(url_patterns=(r"/sperre(\.html)?$", r"[?&]denied=1"))
    final = "https://www.example.com/sperre.html"
    assert _classify(url=final, request_url=URL, rules=rules).reason == "url_pattern"
    assert _classify(url=final, rules=rules).reason == "url_pattern"  # the final URL itself
    location = {"Location": "/search?denied=1"}
    assert _classify(302, headers=location, rules=rules).reason == "url_pattern"
    assert _classify(url=URL, rules=rules) == OK


def test_rules_min_body_size() -> None:
    small = b"<html><body>stub</body></html>"
    assert _classify(body=small, rules=BanRules(min_body_size=500)).reason == "tiny_body"
    assert _classify(body=b"", rules=BanRules(min_body_size=0)) == OK
    assert _classify(body=small, rules=BanRules()) == OK


def test_rules_are_compiled_once_per_rule_set() -> None:
    from scrapy_proxystack.bans import _site_rules

    first = _site_rules(BanRules(body_patterns=("abc",), url_patterns=("/x",)))
    again = _site_rules(BanRules(body_patterns=("abc",), url_patterns=("/x",)))
    assert first is again


def test_rules_with_an_invalid_regex_are_reported() -> None:
    with pytest.raises(ValueError, match=r"bans\.body_patterns\[0\]: '\(' is not a valid"):
        _classify(rules=BanRules(body_patterns=("(",)))


# --- Redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=1", "challenge_redirect"),
        (
            "https://www.google.com/sorry/index?continue=https://www.google.com/search",
            "challenge_redirect",
        ),
        ("https://geo.captcha-delivery.com/captcha/?initialCid=AHrlq", "challenge_redirect"),
        ("/_Incapsula_Resource?SWKMTFSR=1&e=0.17", "challenge_redirect"),
        ("https://validate.perfdrive.com/?ssa=5c2d&ssb=1", "challenge_redirect"),
        ("/distil_r_captcha.html?requestId=1", "challenge_redirect"),
        ("/captcha?return=%2Fitem", "challenge_redirect"),
        ("/challenge/", "challenge_redirect"),
        ("/errors/validateCaptcha?amzn=1", "challenge_redirect"),
        ("https://www.example.com/perimeterx/block", "challenge_redirect"),
        ("/login?next=%2Faccount", "login_redirect"),
        ("/users/sign_in", "login_redirect"),
        ("https://accounts.example.com/ServiceLogin?continue=x", "login_redirect"),
        ("https://sso.example.com/", "login_redirect"),
        ("/wp-login.php?redirect_to=%2F", "login_redirect"),
        ("/fr/connexion", "login_redirect"),
        ("/de/anmelden?ziel=/konto", "login_redirect"),
        ("https://www.example.com/new-home", "ok"),
        ("/author/jane-doe", "ok"),
        ("/blog/captcha-solving-guide", "ok"),
        ("/events/challenges-of-scaling", "ok"),
        ("/loginhelp-faq", "ok"),
    ],
)
def test_redirect_targets(location: str, reason: str) -> None:
    assert _classify(302, headers={"Location": location}).reason == reason
    # The same target given by the caller, or as the final URL of followed redirects.
    assert _classify(302, headers={}, redirect_location=location).reason == reason
    final = location if "://" in location else "https://www.example.com" + location
    assert _classify(200, url=final, request_url=URL).reason == reason


def test_login_redirect_of_a_login_request_is_not_a_ban() -> None:
    login = "https://www.example.com/login"
    verdict = _classify(302, url=login, headers={"Location": "/login?error=1"})
    assert verdict == OK
    assert _classify(200, url=login + "?next=/", request_url=login) == OK


def test_refresh_header_is_a_redirect() -> None:
    headers = {"Content-Type": HTML, "Refresh": "0; url=/captcha?r=1"}
    assert _classify(headers=headers).reason == "challenge_redirect"
    headers["Refresh"] = "30"
    assert _classify(headers=headers) == OK


def test_meta_refresh_without_target_is_ignored() -> None:
    body = b'<html><head><meta http-equiv="refresh" content="300"><title>Live</title></head></html>'
    assert _classify(body=body) == OK


# --- Headers, sizes, content types ---------------------------------------------------------------


def test_headers_are_case_insensitive_and_may_be_bytes() -> None:
    assert _classify(429, headers={"RETRY-AFTER": "5"}).retry_after == 5.0
    headers = {b"Retry-After": [b"7"], b"Content-Type": [b"text/html"]}
    assert _classify(429, headers=headers).retry_after == 7.0
    assert _classify(302, headers={"LOCATION": "/captcha"}).reason == "challenge_redirect"


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, {"cf-mitigated": "challenge"}),
        (202, {"X-Amzn-Waf-Action": "challenge"}),
        (405, {"x-amzn-waf-action": "captcha"}),
    ],
)
def test_challenge_headers(status: int, headers: dict[str, str]) -> None:
    assert _classify(status, headers=headers).reason == "captcha"


@pytest.mark.parametrize(
    ("status", "body", "method", "expected"),
    [
        (200, b"", "GET", "empty_body"),
        (203, b"", "GET", "empty_body"),
        (200, b"", "HEAD", "ok"),
        (204, b"", "GET", "ok"),
        (304, b"", "GET", "ok"),
        (205, b"", "POST", "ok"),
        (404, b"", "GET", "ok"),
        (201, b"", "POST", "ok"),
    ],
)
def test_empty_bodies(status: int, body: bytes, method: str, expected: str) -> None:
    assert _classify(status, body=body, method=method).reason == expected


def test_tiny_body() -> None:
    custom = BanClassifier(BanClassifierSettings(min_body_size=64))
    verdict = custom.classify(status=200, headers={}, url=URL, body=b"<html></html>")
    assert verdict == Verdict(BanKind.BAN, "tiny_body")
    assert custom.classify(status=200, headers={}, url=URL, body=b"") == Verdict(
        BanKind.BAN, "empty_body"
    )


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"ok":true}'),
        ("application/json", b'{"captcha": "required", "message": "verify you are human"}'),
        ("image/png", b"\x89PNG\r\n\x1a\n<html><title>Access Denied</title></html>"),
        ("text/plain", b"Access denied"),
        ("text/css", b".g-recaptcha{display:block}"),
        ("application/javascript", b"window._cf_chl_opt={};"),
    ],
)
def test_non_html_bodies_only_get_status_and_size_checks(content_type: str, body: bytes) -> None:
    assert _classify(body=body, headers={"Content-Type": content_type}) == OK


def test_html_is_sniffed_without_a_content_type() -> None:
    body = (PAGES / "block" / "datadome.html").read_bytes()
    assert _classify(body=body, headers={}).reason == "captcha"
    assert _classify(body=b'{"ok":true}', headers={}) == OK


def test_utf16_page() -> None:
    body = (PAGES / "block" / "geo_fr.html").read_text(encoding="utf-8").encode("utf-16")
    verdict = _classify(body=body, headers={"Content-Type": "text/html; charset=utf-16"})
    assert verdict.reason == "region_page"


def test_rate_limit_page_keeps_retry_after() -> None:
    body = (PAGES / "block" / "rate_limit_en.html").read_bytes()
    verdict = _classify(body=body, headers={"Content-Type": HTML, "Retry-After": "60"})
    assert verdict == Verdict(BanKind.THROTTLE, "rate_limit_page", 60.0)


def test_markers_beyond_the_scanned_head_are_not_seen() -> None:
    custom = BanClassifier(BanClassifierSettings(max_scan_bytes=1024))
    body = (
        b"<html><head><!--"
        + b"x" * 2048
        + b"-->"
        + (PAGES / "block" / "datadome.html").read_bytes()
    )
    assert custom.classify(status=200, headers={}, url=URL, body=body) == OK


def test_a_cut_page_needs_markup_evidence() -> None:
    # A body cut at max_scan_bytes may hold any amount of text after the cut: phrases alone no
    # longer decide, vendor markup still does.
    custom = BanClassifier(BanClassifierSettings(max_scan_bytes=4096))
    padding = b"<script>" + b"var x = 1;\n" * 600 + b"</script>"
    phrase_only = b"<html><body><p>Please verify you are a human.</p>" + padding
    datadome = (PAGES / "block" / "datadome.html").read_bytes() + padding
    assert custom.classify(status=200, headers={}, url=URL, body=phrase_only) == OK
    assert custom.classify(status=200, headers={}, url=URL, body=datadome).reason == "captcha"


# --- Language ----------------------------------------------------------------------------------


def _page(html_tag: bytes) -> bytes:
    return html_tag + b"<head><title>Accueil</title></head><body><p>Bonjour</p></body></html>"


@pytest.mark.parametrize(
    ("html_tag", "expected_lang", "reason"),
    [
        (b'<html lang="en">', "fr", "lang_mismatch"),
        (b'<html lang="en-US">', "fr-CA", "lang_mismatch"),
        (b"<html lang=de>", "en", "lang_mismatch"),
        (b'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="de">', "en", "lang_mismatch"),
        (b'<html lang="fr">', "fr-CA", "ok"),
        (b'<html lang="fr-FR">', "fr", "ok"),
        (b'<HTML LANG="FR">', "fr-ca", "ok"),
        (b'<html lang="fr_CA">', "FR", "ok"),
        (b'<html lang="nb">', "no", "ok"),
        (b'<html lang="iw">', "he-IL", "ok"),
        (b"<html>", "fr", "ok"),
        (b'<html data-lang="en">', "fr", "ok"),
        (b'<html lang="">', "fr", "ok"),
        (b'<html lang="x-default">', "fr", "ok"),
        (b'<html lang="en">', "*", "ok"),
        (b'<html lang="en">', "", "ok"),
    ],
)
def test_lang(html_tag: bytes, expected_lang: str, reason: str) -> None:
    assert _classify(body=_page(html_tag), expected_lang=expected_lang).reason == reason


def test_lang_check_can_be_disabled_and_skips_errors() -> None:
    body = _page(b'<html lang="en">')
    no_lang = BanClassifier(BanClassifierSettings(check_lang=False))
    assert no_lang.classify(status=200, headers={}, url=URL, body=body, expected_lang="fr") == OK
    assert _classify(404, body=body, expected_lang="fr") == OK


def test_lang_mismatch_is_a_geo_block() -> None:
    verdict = _classify(body=_page(b'<html lang="en">'), expected_lang="fr")
    assert verdict == Verdict(BanKind.GEO_BLOCK, "lang_mismatch")


# --- The evidence rule -------------------------------------------------------------------------

PROSE = b"".join(
    b"<p>The river trail follows the old towpath for six miles, past two locks and a mill "
    b"that now houses a small museum and a cafe with a garden by the water.</p>"
    for _ in range(30)
)  # about 3,500 visible characters: a "medium" page


def _doc(title: bytes, body: bytes) -> bytes:
    return b"<html><head><title>" + title + b"</title></head><body>" + body + b"</body></html>"


def test_a_phrase_decides_on_a_tiny_page_only() -> None:
    phrase = b"<p>Please verify you are a human.</p>"
    assert _classify(body=_doc(b"example.com", phrase)).reason == "captcha"
    assert _classify(body=_doc(b"Trail guide", phrase + PROSE)) == OK


def test_a_heading_counts_when_it_is_the_phrase() -> None:
    # A "short" page (400 to 1,000 visible characters), where a phrase alone does not decide.
    short = PROSE[: PROSE.index(b"</p>") + 4] * 4
    assert _classify(body=_doc(b"Are you a robot?", short)).reason == "captcha"
    assert _classify(body=_doc(b"Robot Check | Example Shop", short)).reason == "captcha"
    title = b"Are you a robot? How bot detection vendors decide who gets in"
    assert _classify(body=_doc(title, short)) == OK


def test_a_widget_never_decides_alone() -> None:
    widget = b'<form><div class="g-recaptcha" data-sitekey="k"></div><button>Send</button></form>'
    assert _classify(body=_doc(b"Contact us", widget)) == OK
    walled = widget + b"<p>We noticed unusual traffic from your network.</p>"
    assert _classify(body=_doc(b"Contact us", walled)).reason == "captcha"
    # On a medium page a widget needs a heading that is the phrase.
    assert _classify(body=_doc(b"Contact us", widget + PROSE)) == OK
    assert _classify(body=_doc(b"Security check", widget + PROSE)).reason == "captcha"


def test_vendor_markers_count_in_markup_not_in_prose() -> None:
    prose = b"<p>The block page has a px-captcha div and sets window._cf_chl_opt.</p>"
    code = b'<pre><code>&lt;div id="px-captcha"&gt;&lt;/div&gt;</code></pre>'
    assert _classify(body=_doc(b"Notes", prose + code)) == OK
    markup = b'<div id="px-captcha"></div>'
    assert _classify(body=_doc(b"Notes", markup + PROSE)).reason == "captcha"
    json_island = b'<script type="application/ld+json">{"text": "cf_chl_opt px-captcha"}</script>'
    assert _classify(body=_doc(b"Notes", json_island)) == OK


def test_a_long_page_is_content() -> None:
    long_page = _doc(b"Access Denied", b'<div id="px-captcha"></div>' + PROSE * 3)
    assert _classify(body=long_page) == OK


def test_cloudflare_script_of_normal_pages_is_no_challenge() -> None:
    jsd = b"<script>a.src='/cdn-cgi/challenge-platform/scripts/jsd/main.js';</script>"
    orchestrate = (
        b"<script>a.src='/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1';</script>"
    )
    assert _classify(body=_doc(b"Garden", jsd + b"<p>Roses.</p>")) == OK
    assert _classify(body=_doc(b"Garden", orchestrate + b"<p>Roses.</p>")).reason == "captcha"


def test_a_captcha_page_with_a_geo_phrase_is_a_region_page() -> None:
    body = _doc(b"Access denied", b"<p>Access from your country has been disabled.</p>")
    assert _classify(body=body) == Verdict(BanKind.GEO_BLOCK, "region_page")


# --- Settings and values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_body_size": -1}, "min_body_size"),
        ({"max_scan_bytes": 0}, "max_scan_bytes"),
        ({"ban_status": frozenset({99})}, "ban_status"),
        ({"ban_status": "403"}, "ban_status"),
        ({"extra_body_patterns": ("(",)}, r"extra_body_patterns\[0\]"),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BanClassifierSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_accept_any_collection_of_codes() -> None:
    assert BanClassifierSettings(ban_status=[403, 429]).ban_status == frozenset({403, 429})  # type: ignore[arg-type]


def test_verdict() -> None:
    assert not OK.is_ban
    assert Verdict(BanKind.NONE, "ok") == OK
    assert Verdict(BanKind.THROTTLE, "status_429", 3.0).is_ban
    with pytest.raises(dataclasses.FrozenInstanceError):
        OK.reason = "changed"  # type: ignore[misc]
    assert {"ok", "captcha", "region_page", "lang_mismatch", "policy"} <= REASONS


def test_every_phrase_is_found_as_itself() -> None:
    from scrapy_proxystack.bans import _PHRASE_CATEGORY, _normalise, _phrases_in

    for phrase in _PHRASE_CATEGORY:
        assert _normalise(phrase) == phrase
        assert _phrases_in(phrase) == [phrase]
        assert _phrases_in(f"Note: {phrase}.".lower()) == [phrase]


def test_phrases_respect_word_boundaries() -> None:
    from scrapy_proxystack.bans import _phrases_in

    assert _phrases_in("the road was unblocked today") == []
    assert _phrases_in("un instantané") == []
    assert _phrases_in("error 403, blocked!") == ["error 403", "blocked"]
    assert _phrases_in("请完成安全验证后继续") == ["请完成安全验证"]


# --- Robustness --------------------------------------------------------------------------------

FRAGMENTS = [
    b"<html lang='en'>",
    b"<html xml:lang=",
    b"<title>",
    b"</title>",
    b"<h1 class=x>",
    b"</h1>",
    b"<script>",
    b"<script type='application/json'>",
    b"</script>",
    b"<style>",
    b"<svg>",
    b"<!--",
    b"-->",
    b"<",
    b">",
    b"captcha",
    b"px-captcha",
    b"g-recaptcha",
    b"cf_chl_",
    b"jschl",
    b"cwudnsai",
    b"incapsula",
    b"cdn-cgi/challenge-platform/h/b/orchestrate/",
    b"token.awswaf.com/x/challenge.js",
    b"captcha-delivery.com",
    b"<meta http-equiv='refresh' content='0;url=/captcha'>",
    b'<meta http-equiv="refresh" content=',
    b'<meta charset="shift_jis">',
    b'<meta charset="idna">',
    b"Access Denied",
    b"Just a moment...",
    b" | ",
    b"verify you are human",
    b"not available in your country",
    b"too many requests",
    "請完成安全驗證".encode(),
    "お住まいの地域ではご利用いただけません".encode("shift_jis"),
    b"&#35;&amp;&",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x00",
]
html_bodies = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=40)), max_size=40
).map(b"".join)
header_names = st.one_of(
    st.sampled_from(
        ["Content-Type", "Location", "Retry-After", "Refresh", "cf-mitigated", "x-amzn-waf-action"]
    ),
    st.text(max_size=12),
    st.binary(max_size=12),
)
header_values = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=60),
    st.lists(st.binary(max_size=20), max_size=2),
    st.sampled_from(["text/html; charset=utf-16", "text/html; charset=idna", "0; url=/captcha"]),
)
statuses = st.one_of(
    st.sampled_from([200, 202, 203, 204, 301, 302, 304, 403, 404, 429, 451, 503]),
    st.integers(min_value=-(2**31), max_value=2**31),
)


@settings(max_examples=300, deadline=None)
@given(
    status=statuses,
    headers=st.dictionaries(header_names, header_values, max_size=6),
    url=st.text(max_size=80),
    body=st.one_of(html_bodies, st.binary(max_size=512)),
    request_url=st.none() | st.text(max_size=80),
    redirect_location=st.none() | st.text(max_size=40),
    expected_lang=st.none() | st.text(max_size=8) | st.sampled_from(["fr", "en-US", "*"]),
    method=st.sampled_from(["GET", "HEAD", "POST", "get"]),
    rules=st.none() | st.just(BanRules(status=(404,), content_status=(403,), url_patterns=("x",))),
)
def test_classify_never_raises(
    status: int,
    headers: dict[str, str],
    url: str,
    body: bytes,
    request_url: str | None,
    redirect_location: str | None,
    expected_lang: str | None,
    method: str,
    rules: BanRules | None,
) -> None:
    verdict = classifier.classify(
        status=status,
        headers=headers,
        url=url,
        body=body,
        request_url=request_url,
        redirect_location=redirect_location,
        expected_lang=expected_lang,
        rules=rules,
        method=method,
    )
    assert verdict.reason in REASONS or verdict.reason == f"status_{status}"
    assert verdict.is_ban == (verdict.reason != "ok")
    again = classifier.classify(
        status=status,
        headers=headers,
        url=url,
        body=body,
        request_url=request_url,
        redirect_location=redirect_location,
        expected_lang=expected_lang,
        rules=rules,
        method=method,
    )
    assert again == verdict


@pytest.mark.parametrize(
    "body",
    [
        b"<script" * 9000,
        b"<" * 65536,
        b"<!--" * 16000,
        b"<title>" * 9000,
        b"<h1" * 20000,
        b"captcha" * 9000,
        b"c" * 65536,
        b"refresh<meta" * 5000,
        b"<p>verify you are human " * 2600,
    ],
    ids=lambda b: repr(b[:12]),
)
def test_pathological_bodies_stay_fast(body: bytes) -> None:
    start = time.perf_counter()
    classifier.classify(status=200, headers={"Content-Type": HTML}, url=URL, body=body)
    assert time.perf_counter() - start < 0.5
