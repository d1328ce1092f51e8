"""End-to-end crawl throughput: plain Scrapy vs scrapy-proxystack vs scrapy-rotating-proxies.

A loopback site serves pages of about 3 KB; one loopback gateway proxy accepts any user name, and
the proxy list holds N gateway-style entries (``http://user-<i>:pw@gateway``), as with vendors that
encode a session or country in the user name. Each crawl runs in its own process; the loopback
world runs in another one, so neither competes with the crawler for the GIL.

    python bench/e2e.py                 # N = 1,000 / 10,000 / 100,000
    python bench/e2e.py --quick         # fewer pages, N = 1,000 / 100,000
    python bench/e2e.py --repeat 5      # median of 5 runs per configuration (default 3)

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SPIDER = """
import scrapy

class Bench(scrapy.Spider):
    name = "bench"

    def __init__(self, base="", pages=0, proxy=None, **kw):
        super().__init__(**kw)
        self.base, self.pages, self.proxy = base, int(pages), proxy

    async def start(self):
        for i in range(1, self.pages + 1):
            meta = {"proxy": self.proxy} if self.proxy else {}
            yield scrapy.Request(f"{self.base}/page/{i}", meta=meta, dont_filter=True)

    def parse(self, response):
        yield {"n": len(response.body)}
"""


def _serve(queue: Any, stop: Any, pages: int) -> None:
    sys.path.insert(0, str(ROOT))
    from scrapy_proxystack.testing import LoopbackWorld

    with LoopbackWorld(max_lifetime=3600) as world:
        site = world.add_site("bench", pages=pages, page_size=3000)
        proxy = world.add_proxy(5)
        queue.put((site.base_url, proxy.url_without_auth))
        stop.wait(3600)


#: Settings of every crawl of the e2e benches: 16 at a time, nothing else in the way.
COMMON: dict[str, Any] = {
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
    "TELNETCONSOLE_ENABLED": "False",
    "ROBOTSTXT_OBEY": "False",
    "RETRY_TIMES": 2,
}


def start_world(pages: int) -> tuple[Any, Any, str, str]:
    """The loopback site and gateway in another process: (process, stop event, site URL,
    gateway URL). Set the event and join the process to stop it."""
    queue: Any = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(queue, stop, pages), daemon=True)
    server.start()
    base, gateway = queue.get(timeout=30)
    return server, stop, base, gateway


def _crawl(
    workdir: Path, name: str, settings: dict[str, Any], args: dict[str, Any]
) -> dict[str, Any]:
    out = workdir / f"{name}.json"
    script = workdir / "bench_spider.py"
    script.write_text(SPIDER, encoding="utf-8")
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(script), "-O", str(out)]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    for key, value in args.items():
        cmd += ["-a", f"{key}={value}"]
    stats_file = workdir / f"{name}.stats"
    cmd += ["-s", "STATS_DUMP=True", "-s", "LOG_LEVEL=INFO", "-s", f"LOG_FILE={stats_file}"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    log = stats_file.read_text(encoding="utf-8") if stats_file.exists() else proc.stderr
    items = sum(1 for _ in out.open(encoding="utf-8")) - 2 if out.exists() else 0
    elapsed = None
    for line in log.splitlines():
        if "'elapsed_time_seconds'" in line:
            elapsed = float(line.split(":")[1].strip().rstrip(","))
    if elapsed is None or items <= 0:
        raise SystemExit(f"crawl {name} failed:\n{log[-3000:]}")
    return {
        "pages": items,
        "elapsed_s": round(elapsed, 3),
        "wall_s": round(wall, 3),
        "pages_per_s": round(items / elapsed, 1),
    }


def _median_crawl(
    repeat: int, workdir: Path, name: str, settings: dict[str, Any], args: dict[str, Any]
) -> dict[str, Any]:
    runs = sorted(
        (_crawl(workdir, name, settings, args) for _ in range(repeat)),
        key=lambda r: r["pages_per_s"],
    )
    median = dict(runs[len(runs) // 2])
    median["all_pages_per_s"] = [r["pages_per_s"] for r in runs]
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pages", type=int, default=None)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per configuration; the median is reported"
    )
    options = parser.parse_args()
    pages = options.pages or (800 if options.quick else 3000)
    sizes = [1000, 100_000] if options.quick else [1000, 10_000, 100_000]

    server, stop, base, gateway = start_world(pages)
    host = gateway.removeprefix("http://")
    common = dict(COMMON)
    results: dict[str, Any] = {"pages": pages, "sizes": sizes, "runs": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            env_pages = {"base": base, "pages": pages}
            rep = options.repeat
            plain = _median_crawl(rep, work, "plain", common, {**env_pages, "proxy": gateway})
            results["runs"]["plain_one_proxy"] = plain
            print(f"plain Scrapy, one proxy: {plain['pages_per_s']} pages/s", flush=True)
            for n in sizes:
                entries = [f"http://user-{i}:pw@{host}" for i in range(n)]
                cfg = work / f"proxies-{n}.yaml"  # JSON is YAML too
                cfg.write_text(json.dumps({"locales": {"us": entries}}), encoding="utf-8")
                ours = _median_crawl(
                    rep,
                    work,
                    f"ours-{n}",
                    {
                        **common,
                        "ADDONS": {"scrapy_proxystack.Addon": 300},
                        "PROXYSTACK_PROXIES_FILE": str(cfg),
                    },
                    env_pages,
                )
                listing = work / f"list-{n}.txt"
                listing.write_text("\n".join(entries), encoding="utf-8")
                # Their per-request cost grows with n; fewer pages keep the run short.
                their_pages = pages if n <= 10_000 else max(200, pages // 10)
                theirs = _median_crawl(
                    1 if n > 10_000 else rep,
                    work,
                    f"theirs-{n}",
                    {
                        **common,
                        "DOWNLOADER_MIDDLEWARES": {
                            "rotating_proxies.middlewares.RotatingProxyMiddleware": 610,
                            "rotating_proxies.middlewares.BanDetectionMiddleware": 620,
                        },
                        "ROTATING_PROXY_LIST_PATH": str(listing),
                    },
                    {"base": base, "pages": their_pages},
                )
                results["runs"][f"ours_{n}"] = ours
                results["runs"][f"theirs_{n}"] = theirs
                print(
                    f"n={n:>7,}: proxystack {ours['pages_per_s']:>7} pages/s "
                    f"({ours['pages_per_s'] / plain['pages_per_s']:.2f}x plain)   "
                    f"rotating-proxies {theirs['pages_per_s']:>7} pages/s "
                    f"({theirs['pages_per_s'] / plain['pages_per_s']:.2f}x plain)",
                    flush=True,
                )
    finally:
        stop.set()
        server.join(10)
    plain_rate = results["runs"]["plain_one_proxy"]["pages_per_s"]
    results["ratios_vs_plain"] = {
        key: round(run["pages_per_s"] / plain_rate, 3)
        for key, run in results["runs"].items()
        if key != "plain_one_proxy"
    }
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
