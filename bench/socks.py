"""Crawl throughput and memory through SOCKS5 exits, beside HTTP exits and plain Scrapy.

A loopback site serves pages of about 3 KB; one loopback HTTP gateway and one loopback SOCKS5
gateway accept any user name, and the proxy lists hold N gateway-style entries
(``http://user-<i>:pw@gateway``, ``socks5h://user-<i>:pw@gateway``). Each crawl runs in its own
process; the loopback world runs in another one.

Configurations, all at CONCURRENT_REQUESTS = 16:

* ``plain_http``: plain Scrapy (its default handler) through the HTTP gateway;
* ``plain_httpx_socks``: plain Scrapy with its httpx handler through the SOCKS gateway;
* ``ours_http_<n>`` / ``ours_socks_<n>``: the suite with n HTTP / SOCKS entries (each request
  rotates to another entry, so a SOCKS crawl keeps opening httpx clients for new exits and the
  LRU keeps closing old ones).

Memory is Scrapy's own ``memusage/max`` (peak RSS of the crawl process). Then, in this
process, the download handlers alone: ``--clients`` requests, each through another SOCKS
entry, with Scrapy's httpx handler (one client per proxy URL, never closed) and with the suite's
(an LRU of clients): clients kept and Python memory grown (tracemalloc). Besides pages/s, each
run reports the crawl process's CPU time per page (user + system), which a busy machine
disturbs much less than wall time; the configurations run interleaved, one round after another,
so that a load that comes and goes spreads over all of them.

    python bench/socks.py               # 3,000 pages, n = 1,000 and 100,000, median of 3
    python bench/socks.py --quick       # 800 pages, median of 1

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
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
HTTPX = "scrapy.core.downloader.handlers._httpx.HttpxDownloadHandler"


def _serve(queue: Any, stop: Any, pages: int) -> None:
    sys.path.insert(0, str(ROOT))
    from scrapy_proxystack.testing import LoopbackWorld

    with LoopbackWorld(max_lifetime=3600) as world:
        site = world.add_site("bench", pages=pages, page_size=3000)
        http = world.add_proxy(5)
        socks = world.add_socks_proxy(5, gateway=True)
        queue.put((site.base_url, http.url_without_auth, socks.url_without_auth))
        stop.wait(3600)


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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log = stats_file.read_text(encoding="utf-8") if stats_file.exists() else proc.stderr
    items = sum(1 for _ in out.open(encoding="utf-8")) - 2 if out.exists() else 0
    found: dict[str, float] = {}
    for line in log.splitlines():
        for key in ("elapsed_time_seconds", "memusage/max", "proxystack/exits/configured"):
            if f"'{key}'" in line:
                found[key] = float(line.split(":")[-1].strip().rstrip(",}"))
    elapsed = found.get("elapsed_time_seconds")
    if elapsed is None or items <= 0:
        raise SystemExit(f"crawl {name} failed:\n{log[-3000:]}")
    return {
        "pages": items,
        "elapsed_s": round(elapsed, 3),
        "wall_s": round(wall, 3),
        "pages_per_s": round(items / elapsed, 1),
        "peak_rss_mb": round(found.get("memusage/max", 0) / 2**20, 1),
        "cpu_ms_per_page": round(cpu * 1000 / items, 2),
    }


async def _handler_memory(name: str, base: str, gateway: str, n: int) -> dict[str, Any]:
    """Download one page through each of ``n`` SOCKS entries with one handler, in turn."""
    import tracemalloc

    from scrapy import Request
    from scrapy.core.downloader.handlers._httpx import HttpxDownloadHandler
    from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
    from scrapy.utils.test import get_crawler

    from scrapy_proxystack.downloadhandlers.socks import SocksDownloadHandler

    crawler = get_crawler(settings_dict={"CONCURRENT_REQUESTS": 16})
    handler: Any = (
        HttpxDownloadHandler(crawler) if name == "scrapy_httpx" else SocksDownloadHandler(crawler)
    )
    auth = HttpProxyMiddleware()
    scheme, _, host = gateway.partition("://")
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for i in range(n):
        request = Request(
            f"{base}/page/1",
            meta={"proxy": f"{scheme}://user-{i}:pw@{host}", "download_timeout": 30},
            dont_filter=True,
        )
        auth.process_request(request)  # as in a crawl: credentials become a header
        await handler.download_request(request)
    elapsed = time.perf_counter() - started
    grown = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    kept = len(handler._proxy_clients) if name == "scrapy_httpx" else handler.clients
    await handler.close()
    return {
        "clients_kept": kept,
        "memory_kb": round(grown / 1024),
        "ms_per_request": round(elapsed * 1000 / n, 2),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs of one configuration."""
    return {
        "pages_per_s": statistics.median(r["pages_per_s"] for r in runs),
        "cpu_ms_per_page": statistics.median(r["cpu_ms_per_page"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "all_pages_per_s": [r["pages_per_s"] for r in runs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pages", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="runs per configuration")
    parser.add_argument(
        "--clients", type=int, default=None, help="distinct SOCKS entries for the handler test"
    )
    options = parser.parse_args()
    pages = options.pages or (800 if options.quick else 3000)
    repeat = options.repeat or (1 if options.quick else 3)
    sizes = [1000, 100_000]
    distinct = options.clients or (500 if options.quick else 2000)

    queue: Any = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(queue, stop, pages), daemon=True)
    server.start()
    base, http_gateway, socks_gateway = queue.get(timeout=30)
    common = {
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "TELNETCONSOLE_ENABLED": "False",
        "ROBOTSTXT_OBEY": "False",
        "RETRY_TIMES": 2,
        "MEMUSAGE_ENABLED": "True",
    }
    env_pages = {"base": base, "pages": pages}
    ours = {**common, "ADDONS": {"scrapy_proxystack.Addon": 300}}
    runs: dict[str, Any] = {}
    results: dict[str, Any] = {"pages": pages, "sizes": sizes, "repeat": repeat, "runs": runs}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            configs: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
                ("plain_http", "plain Scrapy, one HTTP proxy", common, {"proxy": http_gateway}),
                (
                    "plain_httpx_socks",
                    "plain Scrapy (httpx handler), one SOCKS proxy",
                    {**common, "DOWNLOAD_HANDLERS": {"http": HTTPX, "https": HTTPX}},
                    {"proxy": socks_gateway},
                ),
            ]
            for n in sizes:
                for kind, gateway in (("http", http_gateway), ("socks", socks_gateway)):
                    scheme, _, host = gateway.partition("://")
                    entries = [f"{scheme}://user-{i}:pw@{host}" for i in range(n)]
                    cfg = work / f"proxies-{kind}-{n}.yaml"  # JSON is YAML too
                    cfg.write_text(json.dumps({"locales": {"us": entries}}), encoding="utf-8")
                    settings = {
                        **ours,
                        "PROXYSTACK_PROXIES_FILE": str(cfg),
                        "PROXYSTACK_STRATEGY": "round_robin",
                    }
                    label = f"proxystack, {n:,} {kind.upper()} entries"
                    configs.append((f"ours_{kind}_{n}", label, settings, {}))
            done: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in configs}
            for round_number in range(1, repeat + 1):
                for key, _label, settings, args in configs:
                    done[key].append(_crawl(work, key, settings, {**env_pages, **args}))
                print(f"round {round_number}/{repeat} done", flush=True)
            for key, label, *_ in configs:
                runs[key] = _summary(done[key])
                run = runs[key]
                print(
                    f"{label:<46} {run['pages_per_s']:>7} pages/s  "
                    f"{run['cpu_ms_per_page']:>6} ms CPU/page  peak RSS {run['peak_rss_mb']:>6} MB",
                    flush=True,
                )
            handlers: dict[str, Any] = {}
            for name in ("scrapy_httpx", "proxystack"):
                handlers[name] = asyncio.run(_handler_memory(name, base, socks_gateway, distinct))
                print(
                    f"{name} handler, {distinct:,} SOCKS entries: "
                    f"{handlers[name]['clients_kept']:,} clients kept, "
                    f"{handlers[name]['memory_kb']:,.0f} KB grown",
                    flush=True,
                )
            results["handlers"] = handlers
    finally:
        stop.set()
        server.join(10)
    plain_rate = runs["plain_http"]["pages_per_s"]
    results["ratios_vs_plain_http"] = {
        key: round(run["pages_per_s"] / plain_rate, 3)
        for key, run in runs.items()
        if key != "plain_http"
    }
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
