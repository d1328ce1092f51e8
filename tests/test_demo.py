"""The README's demo: `scrapy crawl multilingual` in sample_project/, end to end, and the report
it writes, opened in a real browser."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.test_report_browser import chromium

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {"actu-fr": "fr", "zeitung-de": "de", "diario-es": "es", "shimbun-jp": "jp"}


def test_demo_crawl_end_to_end(tmp_path: Path) -> None:
    project = tmp_path / "sample_project"
    shutil.copytree(ROOT / "sample_project", project, ignore=shutil.ignore_patterns("output"))
    scrapy = [sys.executable, "-m", "scrapy"]
    proc = subprocess.run(
        [*scrapy, "crawl", "multilingual"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    feed = (project / "output/items.jsonl").read_text(encoding="utf-8")
    items = [json.loads(line) for line in feed.splitlines()]
    seen = json.loads((project / "output/world_requests.json").read_text(encoding="utf-8"))

    by_site = Counter(item["site"] for item in items)
    # Every page of the four national sites (index + 5 pages) made it, in the site's language.
    for site in EXPECTED:
        assert by_site[site] == 6, by_site
    assert {i["lang"] for i in items if i["site"] == "shimbun-jp"} == {"ja"}
    # The sites only ever saw clients of their own country: no direct request, no other country.
    for site, country in EXPECTED.items():
        assert {r["country"] for r in seen[site]} == {country}, site
    # The forum shows captchas after three pages per client: none is in the feed.
    assert by_site["forum-us"] >= 1
    assert all("captcha" not in (i["text"] or "").lower() for i in items)
    assert any(r["status"] == 200 and r["path"].startswith("/page") for r in seen["forum-us"])
    # PII was masked before export.
    assert all("[PHONE]" in i["text"] for i in items if i["text"])
    # Credentials of the authenticated French proxy appear nowhere.
    log = proc.stdout + proc.stderr
    assert "fr-secret" not in log
    assert "fr-secret" not in feed
    assert "proxystack/exits/transport_failures" in log  # the dead and flaky exits were seen

    # What the demo shows of the product: periodic lines per locale while it runs, the summary
    # per locale at close, and the report, whose absolute path the closing note prints.
    assert (
        len(re.findall(r"\[scrapy_proxystack\.extensions\.logstats\] INFO: Locale fr: ", log)) >= 2
    )
    assert "Proxy exits by locale at close:\n  fr: 3/3 exits usable" in proc.stderr
    note = proc.stdout.strip().splitlines()
    assert note[0].startswith("Demo crawl finished (finished): 35 items in output/items.jsonl")
    assert note[2].split() == ["locale", "requests", "answers", "bans", "p50", "ms", "p95", "ms"]
    assert [line.split()[0] for line in note[3:8]] == ["fr", "de", "es", "jp", "us"]
    assert note[8] == f"Report: {project / 'output/report.html'} (open it in a browser)"
    assert note[9].startswith("Next: scrapy proxystack check --world")  # run as python -m
    report = json.loads((project / "output/report.json").read_text(encoding="utf-8"))
    assert report["health"]["status"] in {"healthy", "degraded"}

    dump = chromium(tmp_path, "--dump-dom", (project / "output/report.html").as_uri())
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = html.unescape(dump.stdout)
    assert "<title>Crawl report: multilingual</title>" in dom
    for locale in ("fr", "de", "es", "jp", "us"):
        assert f'data-locale="{locale}"' in dom, locale
    assert "fr-secret" not in dom
