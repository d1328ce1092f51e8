"""What the PII pipeline costs a crawl: pages/s with ``PiiMaskingPipeline`` off and on, in one run.

A loopback site of the project's test world (``scrapy_proxystack.testing``) serves pages of about
50 KB; the spider extracts each page's paragraphs and yields one item whose text is 50 KB of
realistic page text with personal data (labelled records of ``bench/pii_corpus.py`` inside prose
pages, one value per 3,000 bytes, a different text for each page), exported as JSON lines. Three
configurations differ only by their PII settings: off, on (masking in the crawl's thread), and on
with ``PROXYSTACK_PII_WORKERS = --workers`` (masking in worker processes); each runs ``--repeat``
times in its own process, in turn, and the median is reported. The world runs in another
process, so it does not compete with the crawler for the GIL.

    python bench/pii_crawl.py                 # 600 pages, 3 runs per configuration
    python bench/pii_crawl.py --pages 300 --repeat 1

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SPIDER = """
import sys
import scrapy

sys.path.insert(0, {root!r})
from bench.pii import mixed_records
from bench.pii_corpus import generate


class PiiCrawl(scrapy.Spider):
    name = "pii_crawl"

    def __init__(self, base="", pages=0, **kw):
        super().__init__(**kw)
        self.base, self.pages = base, int(pages)
        records = mixed_records(generate(41, 80), 42, 3000)
        texts, chunk = [], ""
        for rec in records:
            chunk += rec.text + "\\n"
            if len(chunk.encode()) >= 50_000:
                texts.append(chunk)
                chunk = ""
        self.texts = texts

    async def start(self):
        for i in range(1, self.pages + 1):
            yield scrapy.Request(f"{{self.base}}/page/{{i}}", dont_filter=True)

    def parse(self, response):
        paragraphs = response.css("article p::text").getall()
        n = int(response.url.rsplit("/", 1)[1])
        yield {{
            "url": response.url,
            "paragraphs": len(paragraphs),
            "text": self.texts[n % len(self.texts)],
        }}
"""


def _serve(queue: Any, stop: Any, pages: int) -> None:
    sys.path.insert(0, str(ROOT))
    from scrapy_proxystack.testing import LoopbackWorld

    with LoopbackWorld(max_lifetime=3600) as world:
        site = world.add_site("pii-bench", pages=pages, page_size=50_000)
        queue.put(site.base_url)
        stop.wait(3600)


def _crawl(workdir: Path, name: str, settings: dict[str, Any], args: dict[str, Any]) -> float:
    """Pages per second of one crawl (items exported over Scrapy's elapsed time)."""
    out = workdir / f"{name}.jsonl"
    script = workdir / "pii_crawl_spider.py"
    script.write_text(SPIDER.format(root=str(ROOT)), encoding="utf-8")
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(script), "-O", str(out)]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    for key, value in args.items():
        cmd += ["-a", f"{key}={value}"]
    log_file = workdir / f"{name}.log"
    cmd += ["-s", "LOG_LEVEL=INFO", "-s", f"LOG_FILE={log_file}"]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    log = log_file.read_text(encoding="utf-8") if log_file.exists() else proc.stderr
    elapsed = None
    for line in log.splitlines():
        if "'elapsed_time_seconds'" in line:
            elapsed = float(line.split(":")[1].strip().rstrip(","))
    items = sum(1 for _ in out.open(encoding="utf-8")) if out.exists() else 0
    if elapsed is None or items != args["pages"]:
        raise SystemExit(f"crawl {name} failed ({items} items):\n{log[-3000:]}")
    if settings.get("PROXYSTACK_PII_ENABLED") and "[EMAIL]" not in out.read_text("utf-8"):
        raise SystemExit(f"crawl {name}: nothing was masked")
    offloaded = [line for line in log.splitlines() if "proxystack/pii/offloaded_items" in line]
    if settings.get("PROXYSTACK_PII_WORKERS") and offloaded:
        print(f"  {name}: {offloaded[0].strip().rstrip(',')}", flush=True)
    return items / elapsed


def _engine_mb_per_s() -> float:
    """The engine alone on the same texts, one thread's CPU time."""
    sys.path.insert(0, str(ROOT))
    from bench.pii import mixed_records
    from bench.pii_corpus import generate
    from scrapy_proxystack.pii import PiiMasker

    texts = [rec.text for rec in mixed_records(generate(41, 80), 42, 3000)]
    masker = PiiMasker()
    masker.mask(texts[0])
    t0 = time.thread_time()
    for text in texts:
        masker.mask(text)
    return sum(len(t.encode()) for t in texts) / 1e6 / (time.thread_time() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--workers", type=int, default=1, help="PROXYSTACK_PII_WORKERS")
    options = parser.parse_args()
    queue: Any = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(queue, stop, options.pages), daemon=True)
    server.start()
    base = queue.get(timeout=30)
    common: dict[str, Any] = {
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "TELNETCONSOLE_ENABLED": "False",
        "ROBOTSTXT_OBEY": "False",
        "ITEM_PIPELINES": {"scrapy_proxystack.pipelines.pii.PiiMaskingPipeline": 900},
    }
    configs: dict[str, dict[str, Any]] = {
        "pii_off": {"PROXYSTACK_PII_ENABLED": False},
        "pii_on": {"PROXYSTACK_PII_ENABLED": True},
        "pii_on_workers": {
            "PROXYSTACK_PII_ENABLED": True,
            "PROXYSTACK_PII_WORKERS": options.workers,
        },
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            args = {"base": base, "pages": options.pages}
            for _ in range(options.repeat):
                for name, extra in configs.items():
                    rates[name].append(_crawl(work, name, {**common, **extra}, args))
                    print(f"{name}: {rates[name][-1]:.1f} pages/s", flush=True)
    finally:
        stop.set()
        server.join(10)
    median = {name: statistics.median(values) for name, values in rates.items()}
    off = median["pii_off"]
    cost = {name: 1 - median[name] / off for name in ("pii_on", "pii_on_workers")}
    engine = _engine_mb_per_s()
    print(
        f"pages of ~50 KB: {off:.1f} pages/s without the PII pipeline; "
        f"{median['pii_on']:.1f} with it in the crawl's thread (costs {cost['pii_on']:.1%}); "
        f"{median['pii_on_workers']:.1f} with {options.workers} worker process(es) (costs "
        f"{cost['pii_on_workers']:.1%}). Engine alone: {engine:.1f} MB/s"
    )
    summary = {
        "pages": options.pages,
        "repeat": options.repeat,
        "workers": options.workers,
        "pages_per_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "median_pages_per_s": {k: round(v, 1) for k, v in median.items()},
        "throughput_cost": {k: round(v, 4) for k, v in cost.items()},
        "engine_mb_per_s": round(engine, 2),
    }
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
