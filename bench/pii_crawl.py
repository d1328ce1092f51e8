"""What the PII pipeline costs a crawl: pages/s with ``PiiMaskingPipeline`` off and on, in one run.

A loopback site of the project's test world (``scrapy_proxystack.testing``) serves pages of about
50 KB; the spider extracts each page's paragraphs and yields one item whose text is 50 KB of
realistic page text with personal data (labelled records of ``bench/pii_corpus.py`` inside prose
pages, one value per 3,000 bytes, a different text for each page), exported as JSON lines. Three
configurations differ only by their PII settings: off, on with ``PROXYSTACK_PII_WORKERS = 0``
(masking in the crawl's thread), and on with ``PROXYSTACK_PII_WORKERS = --workers`` (masking in
worker processes; ``"auto"``, the default, is one worker where a second core is usable). The
world runs in another process, so it does not compete with the crawler for the GIL.

Single crawls on a shared machine vary by a factor of two or more, more than the pipeline costs,
so the configurations run interleaved: ``--repeat`` rounds, each crawling every configuration once
in its own process, in an order that rotates from round to round (no configuration always runs
first, or right after another). Per configuration, three figures:

* pages/s over the crawl: items over Scrapy's ``elapsed_time_seconds`` (from the spider opening,
  so after the pipelines' ``open_spider``: the masking workers' start is not in it);
* steady pages/s: items per second once the crawl runs, from the item at ``--warm-up`` (a share
  of the items) to the last, stamped by a last pipeline; what a crawl of hours sees;
* the wall time of the whole ``scrapy`` process (start-up included), and its CPU time per page
  with the worker processes it starts (user + system; not the world's), which other jobs on the
  machine move much less than wall time.

The cost of the pipeline is computed per round, against the crawl without it in the same round
(paired), and reported as the median of the rounds with its spread.

    python bench/pii_crawl.py                 # 2,000 pages, 5 rounds
    python bench/pii_crawl.py --pages 600 --repeat 3

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
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
import time

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


class Stamp:
    # The last pipeline: when each item was done (masked, when the PII pipeline is on).

    def process_item(self, item):
        item["done"] = time.monotonic()
        return item
"""


def _serve(queue: Any, stop: Any, pages: int) -> None:
    sys.path.insert(0, str(ROOT))
    from scrapy_proxystack.testing import LoopbackWorld

    with LoopbackWorld(max_lifetime=3600) as world:
        site = world.add_site("pii-bench", pages=pages, page_size=50_000)
        queue.put(site.base_url)
        stop.wait(3600)


def _crawl(
    workdir: Path, name: str, settings: dict[str, Any], args: dict[str, Any], warm_up: float
) -> dict[str, float]:
    """The figures of one crawl (see the module docstring)."""
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log = log_file.read_text(encoding="utf-8") if log_file.exists() else proc.stderr
    elapsed = None
    for line in log.splitlines():
        if "'elapsed_time_seconds'" in line:
            elapsed = float(line.split(":")[1].strip().rstrip(","))
    done = (
        sorted(json.loads(line)["done"] for line in out.open(encoding="utf-8"))
        if out.exists()
        else []
    )
    items = len(done)
    if elapsed is None or items != args["pages"]:
        raise SystemExit(f"crawl {name} failed ({items} items):\n{log[-3000:]}")
    if settings.get("PROXYSTACK_PII_ENABLED") and "[EMAIL]" not in out.read_text("utf-8"):
        raise SystemExit(f"crawl {name}: nothing was masked")
    offloaded = [line for line in log.splitlines() if "proxystack/pii/offloaded_items" in line]
    if settings.get("PROXYSTACK_PII_WORKERS") and offloaded:
        print(f"  {name}: {offloaded[0].strip().rstrip(',')}", flush=True)
    first = int(items * warm_up)
    steady = (items - 1 - first) / max(done[-1] - done[first], 1e-9)
    return {"rate": items / elapsed, "steady": steady, "wall": wall, "cpu": cpu / items}


def _engine_mb_per_s() -> float:
    """The engine alone on the same texts, one thread's CPU time (its validation caches cold
    for these values, as in the crawl)."""
    sys.path.insert(0, str(ROOT))
    from bench.pii import mixed_records
    from bench.pii_corpus import generate
    from scrapy_proxystack.pii import COMPILED, PiiMasker

    print(f"engine build: {'compiled (mypyc)' if COMPILED else 'plain Python'}")
    texts = [rec.text for rec in mixed_records(generate(41, 80), 42, 3000)]
    masker = PiiMasker()
    # Warmed up on other records (lazy imports, compiled metadata), as in bench/pii.py.
    for rec in mixed_records(generate(5041, 30), 42, 3000):
        masker.mask(rec.text)
    t0 = time.thread_time()
    for text in texts:
        masker.mask(text)
    return sum(len(t.encode()) for t in texts) / 1e6 / (time.thread_time() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (runs per configuration)")
    parser.add_argument("--workers", type=int, default=1, help="PROXYSTACK_PII_WORKERS")
    parser.add_argument(
        "--warm-up", type=float, default=0.2, help="share of the items before the steady rate"
    )
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
        "ITEM_PIPELINES": {
            "scrapy_proxystack.pipelines.pii.PiiMaskingPipeline": 900,
            "pii_crawl_spider.Stamp": 1000,
        },
    }
    configs: dict[str, dict[str, Any]] = {
        "pii_off": {"PROXYSTACK_PII_ENABLED": False},
        "pii_on": {"PROXYSTACK_PII_ENABLED": True, "PROXYSTACK_PII_WORKERS": 0},
        "pii_on_workers": {
            "PROXYSTACK_PII_ENABLED": True,
            "PROXYSTACK_PII_WORKERS": options.workers,
        },
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    names = list(configs)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            args = {"base": base, "pages": options.pages}
            for round_no in range(options.repeat):
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    run = _crawl(work, name, {**common, **configs[name]}, args, options.warm_up)
                    runs[name].append(run)
                    print(
                        f"round {round_no + 1} {name}: {run['rate']:.1f} pages/s, steady "
                        f"{run['steady']:.1f}, process {run['wall']:.2f} s, "
                        f"{run['cpu'] * 1e3:.1f} ms CPU per page",
                        flush=True,
                    )
    finally:
        stop.set()
        server.join(10)
    _report(options, runs)


def _spread(values: list[float], scale: float = 1.0, fmt: str = ".1f") -> str:
    """Median and the lowest and highest value, as text."""
    med = statistics.median(values) * scale
    return f"{med:{fmt}} ({min(values) * scale:{fmt}}-{max(values) * scale:{fmt}})"


#: The figures of a crawl, how they are printed, and whether more is better.
_FIGURES = {
    "rate": ("pages/s", 1.0, True),
    "steady": ("steady pages/s", 1.0, True),
    "wall": ("process s", 1.0, False),
    "cpu": ("CPU ms per page", 1e3, False),
}


def _report(options: Any, runs: dict[str, list[dict[str, float]]]) -> None:
    figures = {
        key: {name: [run[key] for run in rs] for name, rs in runs.items()} for key in _FIGURES
    }
    # The cost of the pipeline in each round, against the crawl without it in the same round:
    # the share of throughput lost, or the share of time (or CPU) added.
    costs: dict[str, dict[str, list[float]]] = {}
    for key, (_, _, more_is_better) in _FIGURES.items():
        off = figures[key]["pii_off"]
        costs[key] = {
            name: [
                (1 - on / base) if more_is_better else (on / base - 1)
                for on, base in zip(figures[key][name], off, strict=True)
            ]
            for name in ("pii_on", "pii_on_workers")
        }
    for name in runs:
        print(
            f"{name}: "
            + "; ".join(
                f"{label} {_spread(figures[key][name], scale)}"
                for key, (label, scale, _) in _FIGURES.items()
            )
        )
    for name in ("pii_on", "pii_on_workers"):
        print(
            f"cost of {name} (paired by round, median (min-max), %): "
            + "; ".join(
                f"{label} {_spread(costs[key][name], 100)}"
                for key, (label, _, _) in _FIGURES.items()
            )
        )
    engine = _engine_mb_per_s()
    print(
        f"{options.repeat} rounds of {options.pages} pages of ~50 KB, "
        f"{options.workers} worker process(es), steady rate after {options.warm_up:.0%} of the "
        f"items. Engine alone: {engine:.1f} MB/s"
    )
    summary = {
        "pages": options.pages,
        "repeat": options.repeat,
        "workers": options.workers,
        "warm_up": options.warm_up,
        "figures": {
            key: {name: [round(x, 4) for x in v] for name, v in per.items()}
            for key, per in figures.items()
        },
        "median": {
            key: {name: round(statistics.median(v), 4) for name, v in per.items()}
            for key, per in figures.items()
        },
        "cost": {
            key: {name: [round(x, 4) for x in v] for name, v in per.items()}
            for key, per in costs.items()
        },
        "median_cost": {
            key: {name: round(statistics.median(v), 4) for name, v in per.items()}
            for key, per in costs.items()
        },
        "engine_mb_per_s": round(engine, 2),
    }
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
