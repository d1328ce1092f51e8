"""The end-of-crawl report, rendered by a real browser (headless Chromium).

The report is meant to be opened by people, so the test opens it the way they would: the DOM
that Chromium builds from the file must show the figures of the crawl, and nothing may be
fetched from anywhere (the page's Content-Security-Policy forbids it and the check below would
see a network error in the dump).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.test_observability import SECRETS, run_reference

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.test_observability import Reference

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "headless Chromium is needed: apt-get install -y chromium"
    return subprocess.run(
        [binary, *_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Reference, str, Path]]:
    tmp = tmp_path_factory.mktemp("browser")
    ref = run_reference(tmp, prometheus=False)
    try:
        page = (tmp / "report.html").as_uri()
        dump = chromium(tmp, "--dump-dom", page)
        assert dump.returncode == 0, dump.stderr[-2000:]
        shot = tmp / "report.png"
        png = chromium(tmp, f"--screenshot={shot}", "--window-size=1200,2400", page)
        assert png.returncode == 0, png.stderr[-2000:]
        yield ref, dump.stdout, shot
    finally:
        ref.world.stop()


def _cell(dom: str, row_attr: str, row_value: str, key: str) -> str:
    row = re.search(rf'<tr {row_attr}="{re.escape(row_value)}">(.*?)</tr>', dom, re.S)
    assert row, f"no row {row_attr}={row_value}"
    cell = re.search(rf'data-key="{re.escape(key)}">([^<]*)<', row.group(1))
    assert cell, f"no {key} in row {row_value}"
    return html.unescape(cell.group(1))


def test_report_shows_the_crawl_in_a_browser(rendered: tuple[Reference, str, Path]) -> None:
    ref, dom, _ = rendered
    report = ref.report
    assert "<title>Crawl report: world</title>" in dom
    assert re.search(r'data-key="health"[^>]*>unhealthy<', dom)
    assert re.search(r'<b data-key="attempts">13</b>', dom)
    assert re.search(r'<b data-key="bans">2</b>', dom)
    for loc in report["locales"]:
        name = loc["locale"]
        assert _cell(dom, "data-locale", name, "attempts") == str(loc["attempts"])
        assert _cell(dom, "data-locale", name, "bans") == str(loc["bans"])
        assert _cell(dom, "data-locale", name, "exits_usable") == str(loc["exits"]["usable"])
    assert _cell(dom, "data-locale", "fr", "attempts") == "6"
    assert _cell(dom, "data-locale", "de", "p50_ms") == str(
        ref.stats["proxystack/latency/p50_ms/de"]
    )
    assert _cell(dom, "data-reason", "status_403", "count") == "2"
    blocked = ref.world.site("blocked").host
    assert _cell(dom, "data-site", blocked, "reason:status_403") == "2"
    assert _cell(dom, "data-exit", ref.ids["de1"], "successes") == "3"
    for pii_type, count in report["pii"]["masked"].items():
        assert _cell(dom, "data-pii", pii_type, "masked") == str(count)
    # Charts are inline SVG: latency per locale, outcomes per locale, bans over time, health.
    assert dom.count("<svg") >= 5
    for label in ("latency distribution fr", "latency distribution de", "bans over time by reason"):
        assert label in dom.lower()
    for secret in SECRETS:
        assert secret not in dom


def test_report_is_self_contained(rendered: tuple[Reference, str, Path]) -> None:
    ref, _, shot = rendered
    page = (ref.tmp / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"(?:src|href)\s*=", page)
    assert "<script" not in page
    assert "@import" not in page
    assert "url(" not in page
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
