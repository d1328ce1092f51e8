"""The classifier on block pages sites really send, and on real pages that look like them.

The pages live in ``tests/data/challenges/`` with an ``INDEX.tsv`` that names where each one
comes from (repository, path, commit, licence) and the status its site sends. Every block page
must be judged not-content both at that status and as ``200`` (the case where status rules
cannot help); every legitimate page must be content as ``200``. Bodies are cut the way
``BanDetectionMiddleware`` cuts them. The rest of the file pins the rules those pages needed:
hidden text, markers past the first 64 KB, challenge stubs, login forms and 401s.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scrapy_proxystack.bans import (
    OK,
    BanClassifier,
    BanClassifierSettings,
    BanKind,
    Verdict,
)
from scrapy_proxystack.bans.markup import condense, visible_text

CORPUS = Path(__file__).parent / "data" / "challenges"
HTML = {"Content-Type": "text/html"}
URL = "https://www.example.com/catalogue/item-42"
CUT = BanClassifierSettings().max_scan_bytes

classifier = BanClassifier()


def _index() -> list[dict[str, str]]:
    lines = (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


INDEX = _index()
BLOCK = [row for row in INDEX if row["file"].startswith("block/")]
LEGITIMATE = [row for row in INDEX if row["file"].startswith("ok/")]


def _body(row: dict[str, str]) -> bytes:
    data = (CORPUS / row["file"]).read_bytes()
    return gzip.decompress(data) if row["file"].endswith(".gz") else data


def _judge(body: bytes, status: int = 200, **headers: str) -> Verdict:
    return classifier.classify(
        status=status, headers={**HTML, **headers}, url=URL, request_url=URL, body=body[:CUT]
    )


# --- Visible text ------------------------------------------------------------------------------


def _visible(html: bytes) -> str:
    return " ".join(visible_text(html, html.lower(), "utf-8").split())


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (b"<p>a</p><div hidden>b</div><p>c</p>", "a c"),
        (b"<p>a</p><div HIDDEN=''>b</div><p>c</p>", "a c"),
        (b"<p>a</p><div style='display: none'>b<div>x</div>y</div><p>c</p>", "a c"),
        (b'<p>a</p><span style="color:red;visibility:hidden">b</span>c', "a c"),
        (b"<p>a</p><div class='x hidden'>b</div>c", "a c"),
        (b"<div class='hidden-xs'>a</div><div aria-hidden='true'>b</div>", "a b"),
        (b"<p>a</p><noscript>Please enable JavaScript</noscript><p>c</p>", "a c"),
        (b"<template><p>t</p></template><p>a</p>", "a"),
        (b"<details><summary>Why?</summary><p>long</p></details>a", "Why? a"),
        (b"<details open><summary>Why?</summary><p>long</p></details>a", "Why? long a"),
        (b"<p>a<p style='display:none'>b<p>c", "a c"),
        (b"<body style='display:none'><p>a</p></body>", "a"),
        (b"<p>a</p><input type=hidden value=b><img hidden src=x>c", "a c"),
        (
            b"<p>the word hidden and display: none in prose</p>",
            "the word hidden and display: none in prose",
        ),
        (b"<p>a</p><div hidden>never closed <p>b", "a"),
        (b"<p>a</p><img src='data:image/png;base64,AAAA", "a"),
    ],
)
def test_visible_text(html: bytes, expected: str) -> None:
    assert _visible(html) == expected


def test_hidden_challenge_script_does_not_count_as_text() -> None:
    # Cloudflare's 2020 "I'm under attack" page keeps ~6,600 characters of challenge code in a
    # display:none div: that page is short, and its jschl markers decide.
    row = next(r for r in BLOCK if r["file"] == "block/cloudflare_iuam_2020_05_16.html")
    body = _body(row)
    assert len(_visible(body)) < 1000
    assert _judge(body) == Verdict(BanKind.BAN, "captcha")


# --- Past the first 64 KB ----------------------------------------------------------------------

_BIG_SCRIPT = b"<script>var blob = '" + b"A" * 300_000 + b"';</script>"
_CHALLENGE_AFTER_SCRIPT = (
    b"<!doctype html><html><head>"
    + _BIG_SCRIPT
    + b"<title>Just a moment...</title></head><body><p>Checking your browser.</p></body></html>"
)


def test_title_and_text_after_a_big_inline_script_are_read() -> None:
    assert _judge(_CHALLENGE_AFTER_SCRIPT) == Verdict(BanKind.BAN, "captcha")


def test_vendor_markers_after_a_big_inline_style_are_read() -> None:
    body = (
        b"<html><head><title>Shop</title><style>@font-face{src:url(data:font/woff2;base64,"
        + b"d09GMgABAAAA" * 30_000
        + b")}</style></head><body><div id='px-captcha'></div>"
        b"<script>window._pxAppId='PX1';</script><p>Press & Hold</p></body></html>"
    )
    assert _judge(body) == Verdict(BanKind.BAN, "captcha")


def test_reading_stops_at_max_scan_bytes() -> None:
    small = BanClassifier(BanClassifierSettings(max_scan_bytes=100_000))
    verdict = small.classify(status=200, headers=HTML, url=URL, body=_CHALLENGE_AFTER_SCRIPT)
    assert verdict == OK


def test_an_ordinary_page_after_a_big_inline_script_is_content() -> None:
    article = b"<p>The mill kept its letters for three centuries of trade.</p>" * 200
    body = (
        b"<html><head><title>Letters from the mill</title>"
        + _BIG_SCRIPT
        + b"</head><body><h1>Letters</h1>"
        + article
        + b"</body></html>"
    )
    assert _judge(body) == OK


def test_condense_cuts_long_blocks_and_says_when_it_saw_everything() -> None:
    view, complete = condense(_CHALLENGE_AFTER_SCRIPT, 65536)
    assert complete
    assert b"<title>Just a moment...</title>" in view
    assert len(view) < 4096
    view, complete = condense(b"<p>" + b"x" * 100_000, 65536)
    assert not complete
    assert len(view) == 65536


# --- Challenge stubs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html><head><script async src='/cdn-cgi/bm/cv/669835187/api.js'></script></head>"
        b"<body><script>window['__CF$cv$params']={r:'6f'};</script></body></html>",
        b"<html><head><script src='/_Incapsula_Resource?SWJIYLWA=5074a744'></script></head>"
        b"<body></body></html>",
        b"<html><head><script>window.KPSDK={};KPSDK.now=Date.now();</script>"
        b"<script src='/149e9513/2d206a39/ips.js?tkrm_alpekz_s1.3=0'></script></head></html>",
    ],
    ids=["cloudflare_bot_fight_mode", "incapsula_js_only", "kasada"],
)
def test_a_page_that_is_only_a_vendor_script_is_a_challenge(body: bytes) -> None:
    assert _judge(body) == Verdict(BanKind.BAN, "captcha")


@pytest.mark.parametrize(
    "body",
    [
        # An app shell with a title: the app renders its content with JavaScript.
        b"<html><head><title>Analytics</title><script src='/_Incapsula_Resource?SWJIYLWA=1'>"
        b"</script></head><body><div id=root></div><script src=/app.js></script></body></html>",
        # Nothing to read and no vendor script: an empty page is no ban page.
        b"<html><head><script src=/app.js></script></head><body></body></html>",
    ],
)
def test_an_app_shell_is_content(body: bytes) -> None:
    assert _judge(body) == OK


# --- Cloudflare error boxes --------------------------------------------------------------------


def _error_page(code: bytes, filler: int) -> bytes:
    prose = b"<p>Thanks for your interest in our loans, available in the US only.</p>" * filler
    return (
        b"<html><head><title>Lender</title></head><body>"
        + prose
        + b"<div class='cf-error-details cf-error-"
        + code
        + b"'><h1>Access denied</h1><p>Error reference number: "
        + code
        + b"</p></div></body></html>"
    )


def test_a_cloudflare_block_box_decides_even_in_a_long_page() -> None:
    assert _judge(_error_page(b"1020", 150)) == Verdict(BanKind.BAN, "captcha")
    assert _judge(_error_page(b"1009", 150)) == Verdict(BanKind.GEO_BLOCK, "region_page")


def test_a_cloudflare_origin_error_box_is_no_block() -> None:
    assert _judge(_error_page(b"1016", 150)) == OK


# --- Cost ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [b"<", b"<script>", b"<script></", b"<div hidden>", b"<p style='display:none'>x", b"c"],
    ids=repr,
)
def test_cost_stays_bounded_on_adversarial_bodies(unit: bytes) -> None:
    body = unit * (2_000_000 // len(unit))  # four times what the classifier ever reads
    start = time.perf_counter()
    classifier.classify(status=200, headers=HTML, url=URL, body=body)
    assert time.perf_counter() - start < 0.5


# --- Layout ------------------------------------------------------------------------------------


def test_the_classifier_imports_nothing_from_scrapy() -> None:
    code = (
        "import sys, scrapy_proxystack.bans; "
        "sys.exit(any(m == 'scrapy' or m.startswith('scrapy.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
