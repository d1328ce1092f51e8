"""A million exits: time to the first request, peak memory and steady pages/s, beside plain Scrapy.

Gateway vendors encode a country and a session in the user name, so one gateway stands for
millions of exits. This bench writes N such entries (``http://user-<i>:pw@gateway``) and crawls
a loopback site through one loopback gateway that accepts any user name:

* ``plain``: plain Scrapy through the gateway (``meta["proxy"]``), the baseline;
* ``file-N``: scrapy-proxystack with the N entries in a ``proxies_file`` (one URL per line);
* ``yaml-N``: the same N entries written inline in the YAML file.

Each crawl is a fresh ``scrapy runspider`` process. For each it prints the time from starting the
process to the first request reaching the downloader, the process's peak RSS (``wait4``), the
bytes per exit (peak RSS above plain Scrapy's, divided by N), and the steady pages/s (responses
between the first and the last, so start-up is not counted twice). Runs of one configuration are
interleaved with the others, and the median is reported.

    python bench/million.py                   # N = 100,000 and 1,000,000, 3 runs each
    python bench/million.py --sizes 100000 --repeat 1 --pages 1000
    python bench/million.py --forms yaml      # inline YAML only (also runs on older versions)

The targets at 1,000,000 entries: first request within 5 s, peak RSS under 500 MB, pages/s at
least 0.9x plain. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from e2e import COMMON, start_world  # the same loopback world and settings as the e2e bench

ROOT = Path(__file__).resolve().parent.parent

SPIDER = """
import json, time
import scrapy
from scrapy import signals

class Bench(scrapy.Spider):
    name = "bench"

    def __init__(self, base="", pages=0, proxy=None, out="", **kw):
        super().__init__(**kw)
        self.base, self.pages, self.proxy, self.out = base, int(pages), proxy, out
        self.first_request = None
        self.times = []

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.reached, signal=signals.request_reached_downloader)
        return spider

    def reached(self, request, spider):
        if self.first_request is None:
            self.first_request = time.time()

    async def start(self):
        for i in range(1, self.pages + 1):
            meta = {"proxy": self.proxy} if self.proxy else {}
            yield scrapy.Request(f"{self.base}/page/{i}", meta=meta, dont_filter=True)

    def parse(self, response):
        self.times.append(time.time())
        yield {"n": len(response.body)}

    def closed(self, reason):
        with open(self.out, "w") as f:
            json.dump({"first_request": self.first_request, "times": self.times}, f)
"""


def _crawl(
    workdir: Path, name: str, settings: dict[str, Any], args: dict[str, Any]
) -> dict[str, Any]:
    script = workdir / "bench_spider.py"
    script.write_text(SPIDER, encoding="utf-8")
    marks = workdir / f"{name}.marks.json"
    log = workdir / f"{name}.log"
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(script)]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    for key, value in {**args, "out": str(marks)}.items():
        cmd += ["-a", f"{key}={value}"]
    cmd += ["-s", "LOG_LEVEL=INFO", "-s", f"LOG_FILE={log}"]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0 or not marks.exists():
        text = log.read_text(encoding="utf-8") if log.exists() else stderr
        raise SystemExit(f"crawl {name} failed ({proc.returncode}):\n{text[-3000:]}")
    data = json.loads(marks.read_text(encoding="utf-8"))
    times = data["times"]
    if len(times) < 2 or data["first_request"] is None:
        raise SystemExit(f"crawl {name} got {len(times)} pages:\n{log.read_text()[-3000:]}")
    return {
        "pages": len(times),
        "first_request_s": round(data["first_request"] - started, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "pages_per_s": round((len(times) - 1) / (times[-1] - times[0]), 1),
    }


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": len(runs)}
    for key in ("first_request_s", "peak_rss_mb", "pages_per_s"):
        out[key] = round(statistics.median(r[key] for r in runs), 3)
        out[f"all_{key}"] = [r[key] for r in runs]
    out["pages"] = runs[0]["pages"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument(
        "--forms",
        nargs="+",
        choices=("file", "yaml"),
        default=["file", "yaml"],
        help="how the entries are given: a proxies_file, inline in the YAML, or both",
    )
    options = parser.parse_args()

    server, stop, base, gateway = start_world(options.pages)
    host = gateway.removeprefix("http://")
    common = dict(COMMON)
    pages = {"base": base, "pages": options.pages}
    results: dict[str, Any] = {"pages": options.pages, "sizes": options.sizes, "runs": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            configs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
                "plain": (common, {**pages, "proxy": gateway})
            }
            for n in options.sizes:
                listing = work / f"list-{n}.txt"
                with listing.open("w", encoding="utf-8") as f:
                    f.writelines(f"http://user-{i}:pw@{host}\n" for i in range(n))
                by_file = work / f"file-{n}.yaml"
                by_file.write_text(
                    f"locales:\n  us:\n    proxies_file: {listing.name}\n", encoding="utf-8"
                )
                ours = {**common, "ADDONS": {"scrapy_proxystack.Addon": 300}}
                if "file" in options.forms:
                    configs[f"file-{n}"] = (
                        {**ours, "PROXYSTACK_PROXIES_FILE": str(by_file)},
                        pages,
                    )
                if "yaml" in options.forms:
                    inline = work / f"yaml-{n}.yaml"
                    with inline.open("w", encoding="utf-8") as f:
                        f.write("locales:\n  us:\n")
                        f.writelines(f"    - http://user-{i}:pw@{host}\n" for i in range(n))
                    configs[f"yaml-{n}"] = (
                        {**ours, "PROXYSTACK_PROXIES_FILE": str(inline)},
                        pages,
                    )
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
            for round_ in range(options.repeat):
                for name, (settings, args) in configs.items():
                    run = _crawl(work, name, settings, args)
                    runs[name].append(run)
                    print(f"round {round_ + 1} {name:>14}: {run}", flush=True)
    finally:
        stop.set()
        server.join(10)
    medians = {name: _median(r) for name, r in runs.items()}
    plain = medians["plain"]
    print()
    print(
        f"{'crawl':>14} {'first request':>14} {'peak RSS':>10} {'bytes/exit':>11} "
        f"{'pages/s':>9} {'vs plain':>9}"
    )
    for name, m in medians.items():
        n = int(name.split("-")[1]) if "-" in name else 0
        per_exit = (m["peak_rss_mb"] - plain["peak_rss_mb"]) * 1024 * 1024 / n if n else 0.0
        m["bytes_per_exit"] = round(per_exit)
        m["ratio_vs_plain"] = round(m["pages_per_s"] / plain["pages_per_s"], 3)
        print(
            f"{name:>14} {m['first_request_s']:>12.2f} s {m['peak_rss_mb']:>7.0f} MB "
            f"{per_exit if n else float('nan'):>11.0f} {m['pages_per_s']:>9.0f} "
            f"{m['ratio_vs_plain']:>8.2f}x"
        )
    results["runs"] = medians
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
