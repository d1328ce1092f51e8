"""Ban classifier: detection on real block pages, false alarms on real content, cost per page.

    python bench/bans.py [--classifier PATH] [--quick]

The pages are the collected corpus in ``tests/data/challenges/`` (see its ``INDEX.tsv`` for
where each page comes from). Every block page is judged at the status its site sends and again
as ``200`` (the case where status rules cannot help); every legitimate page is judged as ``200``.
A block page is *detected* when the verdict is anything but content (ban, throttle or
geo-block); a legitimate page is a *false alarm* when it is not content.

Bodies are handed over the way ``BanDetectionMiddleware`` does: the first
``settings.max_scan_bytes`` bytes. ``--classifier`` loads another copy of the classifier module
(for instance an older revision written out with ``git show``), so that two versions can be
compared on the same pages in the same process.

Costs are medians of several timed runs, in microseconds per page, for: the legitimate pages
of the corpus, the project's own fixtures, generated ordinary pages without any marker
(a 20 KB article, a 300 KB page whose head is one big inline script, a 1 MB page) and
adversarial bodies at two sizes (the ratio shows whether the cost stays linear). The last line
is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import importlib.util
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "challenges"
FIXTURES = ROOT / "tests" / "data" / "ban_pages"
URL = "https://www.example.com/some/page"
HTML = {"Content-Type": "text/html"}


def load_module(path: str | None) -> ModuleType:
    if path is None:
        sys.path.insert(0, str(ROOT))
        import scrapy_proxystack.bans as module

        return module
    spec = importlib.util.spec_from_file_location("bans_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--classifier {path!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def read_page(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def corpus() -> list[dict[str, Any]]:
    lines = (CORPUS / "INDEX.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    pages = []
    for line in lines[1:]:
        if not line or line.startswith("#"):
            continue
        row = dict(zip(header, line.split("\t"), strict=True))
        row["body"] = read_page(CORPUS / row["file"])
        pages.append(row)
    return pages


def timed(func: Any, repeat: int) -> float:
    """Median microseconds of one call."""
    runs = []
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            func()
            runs.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return statistics.median(runs) * 1e6


def ordinary_pages() -> dict[str, bytes]:
    paragraph = (
        "<p>The river runs past the old mill, where the town keeps its archives of letters, "
        "maps and ledgers from three centuries of trade along the valley.</p>\n"
    )
    article = (
        "<!doctype html><html lang='en'><head><title>Letters from the mill</title>"
        "<script src='/static/app.js'></script></head><body><main><h1>Letters from the mill</h1>"
        + paragraph * 130
        + "</main></body></html>"
    )
    script = "<script>window.__STATE__=" + '{"k":"' + "v" * 280_000 + '"}' + "</script>"
    big_head = article.replace("</head>", script + "</head>")
    huge = article.replace("</main>", paragraph * 7000 + "</main>")
    return {
        "article_20k": article.encode(),
        "inline_script_300k": big_head.encode(),
        "article_1m": huge.encode(),
    }


def adversarial(size: int) -> dict[str, bytes]:
    return {
        "lt": b"<" * size,
        "open_tags": b"<div hidden>" * (size // 12),
        "scripts": b"<script>" * (size // 8),
        "closers": b"<script></" * (size // 10),
        "titles": b"<title" * (size // 6),
        "c_bytes": b"c" * size,
        "captcha_words": b"captcha " * (size // 8),
        "hidden_styles": b"<p style='display:none'>x" * (size // 25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", help="path of a bans.py to measure instead")
    parser.add_argument("--quick", action="store_true", help="fewer timed runs")
    args = parser.parse_args()
    module = load_module(args.classifier)
    classifier = module.BanClassifier()
    cut = module.BanClassifierSettings().max_scan_bytes
    repeat = 5 if args.quick else 21

    def judge(body: bytes, status: int) -> Any:
        return classifier.classify(status=status, headers=HTML, url=URL, body=body[:cut])

    pages = corpus()
    per_vendor: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    missed, false_alarms = [], []
    blocks = [p for p in pages if p["file"].startswith("block/")]
    oks = [p for p in pages if p["file"].startswith("ok/")]
    for page in blocks:
        counts = per_vendor[page["vendor"]]
        counts[0] += 1
        at_status = judge(page["body"], int(page["status"]))
        as_200 = judge(page["body"], 200)
        counts[1] += at_status.is_ban
        counts[2] += as_200.is_ban
        if not (at_status.is_ban and as_200.is_ban):
            missed.append(
                f"{page['file']} (status {page['status']}: {at_status.reason}; "
                f"200: {as_200.reason})"
            )
    for page in oks:
        verdict = judge(page["body"], 200)
        if verdict.is_ban:
            false_alarms.append(f"{page['file']} ({verdict.reason})")

    print(f"classifier: {args.classifier or 'scrapy_proxystack.bans'} (body cut at {cut} bytes)")
    print(f"{'vendor':24}{'pages':>7}{'at status':>11}{'as 200':>9}")
    for vendor, (n, real, two) in sorted(per_vendor.items()):
        print(f"{vendor:24}{n:>7}{real:>11}{two:>9}")
    detected_real = sum(c[1] for c in per_vendor.values())
    detected_200 = sum(c[2] for c in per_vendor.values())
    print(
        f"block pages: {len(blocks)} from {len(per_vendor)} vendors; detected at their status "
        f"{detected_real}/{len(blocks)} ({detected_real / len(blocks):.1%}), as 200 "
        f"{detected_200}/{len(blocks)} ({detected_200 / len(blocks):.1%})"
    )
    print(
        f"legitimate pages: {len(oks)}; flagged {len(false_alarms)} "
        f"({len(false_alarms) / len(oks):.1%})"
    )
    for line in missed:
        print("  missed:", line)
    for line in false_alarms:
        print("  false alarm:", line)

    costs: dict[str, float] = {}
    costs["corpus_legitimate_mean"] = statistics.mean(
        timed(lambda b=p["body"]: judge(b, 200), repeat) for p in oks
    )
    costs["corpus_block_mean"] = statistics.mean(
        timed(lambda b=p["body"]: judge(b, 200), repeat) for p in blocks
    )
    fixtures = [p.read_bytes() for p in sorted((FIXTURES / "ok").glob("*.html"))]
    costs["fixtures_ok_mean"] = statistics.mean(
        timed(lambda b=body: judge(b, 200), repeat) for body in fixtures
    )
    for name, body in ordinary_pages().items():
        costs[f"ordinary_{name}"] = timed(lambda b=body: judge(b, 200), repeat)
    linear: dict[str, float] = {}
    small, large = adversarial(256 * 1024), adversarial(512 * 1024)
    for name in small:
        a = timed(
            lambda b=small[name]: classifier.classify(status=200, headers=HTML, url=URL, body=b),
            repeat,
        )
        b = timed(
            lambda b=large[name]: classifier.classify(status=200, headers=HTML, url=URL, body=b),
            repeat,
        )
        costs[f"adversarial_{name}_256k"] = a
        costs[f"adversarial_{name}_512k"] = b
        linear[name] = b / a if a else float("nan")
    print("cost per page, microseconds (median of runs):")
    for name, value in costs.items():
        print(f"  {name:36}{value:>10.1f}")
    print("adversarial growth from 256 KB to 512 KB (2.0 is linear):")
    for name, value in linear.items():
        print(f"  {name:36}{value:>10.2f}")
    print(
        json.dumps(
            {
                "classifier": args.classifier or "scrapy_proxystack.bans",
                "block_pages": len(blocks),
                "vendors": len(per_vendor),
                "detected_at_status": detected_real,
                "detected_as_200": detected_200,
                "legitimate_pages": len(oks),
                "false_alarms": len(false_alarms),
                "per_vendor": {
                    v: dict(zip(("pages", "at_status", "as_200"), c, strict=True))
                    for v, c in sorted(per_vendor.items())
                },
                "us_per_page": {k: round(v, 1) for k, v in costs.items()},
                "adversarial_growth": {k: round(v, 2) for k, v in linear.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
