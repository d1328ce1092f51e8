"""A hostile world: the suite at its defaults (plus a stated per-site rate) vs a hand-tuned spider.

The world (scrapy_proxystack.testing.hostile) has four French exits (one already banned by the
limiting site, one flaky), a site that allows 10 requests per 5 s per client address and bans an
address for 45 s after three 429s, a Spanish-language site mapped to France, a French site in
bilingual Canada, a site that is down for the first seconds of the crawl, and a German locale
whose exits all refuse connections.

* **suite**: ``ADDONS`` + ``PROXYSTACK_DOMAIN_RATE = 8`` and the proxy YAML; nothing else.
* **hand-tuned**: plain Scrapy with ``HttpProxyMiddleware``, told everything the suite has to
  learn: which exits work for which site (round robin over them), the per-address limit (a
  download delay that keeps each exit under 2 requests/s on the limiting site), 8 requests/s on the
  others, retries of 502 during the outage, and no requests to the dead locale.

Both crawl the same world, one after the other, in separate processes. Printed per crawl: pages
delivered of those deliverable, crawl time (Scrapy's start to finish), 429s and strike bans
provoked, politeness violations (1-second windows at a site with more than rate + 1 arrivals).

    python bench/hostile.py                # 100 pages on the limiting site
    python bench/hostile.py --pages 40     # quicker

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxystack.testing import LoopbackWorld  # noqa: E402
from scrapy_proxystack.testing.hostile import (  # noqa: E402
    HOSTILE_REGIONS,
    HostileWorld,
    build,
    max_in_window,
)

RATE = 8.0

RUNNER = """
import json, sys
import scrapy
from scrapy.crawler import CrawlerProcess

spec = json.load(open(sys.argv[1]))

class Hostile(scrapy.Spider):
    name = "hostile"

    async def start(self):
        for url, proxy in spec["requests"]:
            meta = {"proxy": proxy} if proxy else {}
            yield scrapy.Request(url, meta=meta, dont_filter=True, errback=self.failed)

    def parse(self, response):
        yield {"url": response.url, "status": response.status, "body": response.text[:400]}

    def failed(self, failure):
        yield {"url": failure.request.url, "error": type(failure.value).__name__}

process = CrawlerProcess(spec["settings"])
crawler = process.create_crawler(Hostile)
process.crawl(crawler)
process.start()
stats = crawler.stats.get_stats()
json.dump(
    {
        "elapsed": (stats["finish_time"] - stats["start_time"]).total_seconds(),
        "stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str))},
    },
    open(sys.argv[2], "w"),
)
"""


def _crawl(
    workdir: Path, name: str, requests: list[tuple[str, str | None]], settings: dict[str, Any]
) -> dict[str, Any]:
    spec = workdir / f"{name}.spec.json"
    out = workdir / f"{name}.result.json"
    feed = workdir / f"{name}.jsonl"
    base = {
        "LOG_LEVEL": "INFO",
        "LOG_FILE": str(workdir / f"{name}.log"),
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        "FEEDS": {str(feed): {"format": "jsonlines", "overwrite": True}},
        "CONCURRENT_REQUESTS": 16,
        "DOWNLOAD_TIMEOUT": 10,
    }
    spec.write_text(json.dumps({"requests": requests, "settings": {**base, **settings}}))
    runner = workdir / "runner.py"
    runner.write_text(RUNNER, encoding="utf-8")
    subprocess.run(
        [sys.executable, str(runner), str(spec), str(out)],
        cwd=workdir,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=900,
    )
    result = json.loads(out.read_text())
    result["items"] = [json.loads(line) for line in feed.read_text().splitlines() if line]
    return result


def _measure(hostile: HostileWorld, result: dict[str, Any]) -> dict[str, Any]:
    deliverable = hostile.deliverable()
    good = {
        i["url"]
        for i in result["items"]
        if i.get("status") == 200
        and "Too Many Requests" not in i.get("body", "")
        and "Access denied" not in i.get("body", "")
    }
    sites = (hostile.limited, hostile.spanish, hostile.quebec, hostile.flaky_site)
    violations = {
        s.name: max(0, max_in_window([r.time for r in s.requests], 1.0) - int(RATE + 1))
        for s in sites
        if s.requests
    }
    limited = hostile.limited.requests
    return {
        "pages": len(good & deliverable),
        "deliverable": len(deliverable),
        "elapsed_s": round(result["elapsed"], 2),
        "status_429": sum(1 for r in limited if r.status == 429),
        "strike_bans_403": sum(
            1 for r in limited if r.status == 403 and r.client_ip != hostile.fr[3].ip
        ),
        "site_requests": sum(len(s.requests) for s in sites),
        "violations": sum(violations.values()),
        "max_per_1s_window": {
            s.name: max_in_window([r.time for r in s.requests], 1.0) for s in sites if s.requests
        },
    }


def _hand_tuned(hostile: HostileWorld) -> tuple[list[tuple[str, str | None]], dict[str, Any]]:
    """Every request with the exit an expert would pick, and per-site delays."""
    fr_good = [p.url for p in hostile.fr[:2]]  # not the flaky one, not the banned one
    ca = [p.url for p in hostile.ca]
    requests: list[tuple[str, str | None]] = []
    plan = [
        (hostile.limited, fr_good),
        (hostile.spanish, fr_good),
        (hostile.quebec, ca),
        (hostile.flaky_site, fr_good),
    ]
    for site, exits in plan:
        requests.extend(
            (site.url(f"/page/{n}"), exits[n % len(exits)]) for n in range(1, site.pages + 1)
        )
    limit, window = 10, 5.0
    per_exit = limit / window * 0.95  # just under 2 requests/s per address
    slots = {
        hostile.limited.host: {"delay": 1.0 / (per_exit * len(fr_good)), "concurrency": 1},
        hostile.spanish.host: {"delay": 1.0 / RATE, "concurrency": 1},
        hostile.quebec.host: {"delay": 1.0 / RATE, "concurrency": 1},
        hostile.flaky_site.host: {"delay": 1.0 / RATE, "concurrency": 1},
    }
    settings = {
        "DOWNLOAD_SLOTS": slots,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "RETRY_TIMES": 40,
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504],
    }
    return requests, settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100, help="pages of the limiting site")
    parser.add_argument("--outage", type=float, default=6.0, help="seconds the outage lasts")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in ("hand_tuned", "suite"):
            with LoopbackWorld(regions=HOSTILE_REGIONS, max_lifetime=1800) as world:
                hostile = build(world, limited_pages=args.pages, down_for=args.outage)
                if name == "suite":
                    requests: list[tuple[str, str | None]] = [(u, None) for u in hostile.urls()]
                    settings: dict[str, Any] = {
                        "ADDONS": {"scrapy_proxystack.Addon": 300},
                        "PROXYSTACK_PROXIES": hostile.config,
                        "PROXYSTACK_DOMAIN_RATE": RATE,
                    }
                else:
                    requests, settings = _hand_tuned(hostile)
                hostile.start_outage()
                try:
                    result = _crawl(workdir, name, requests, settings)
                finally:
                    hostile.stop()
                figures[name] = _measure(hostile, result)
                if name == "suite":
                    stats = result["stats"]
                    figures[name]["dropped"] = {
                        k.rsplit("/", 1)[1]: v
                        for k, v in stats.items()
                        if k.startswith("proxystack/requests/dropped/")
                    }
                    figures[name]["waits_for_an_exit"] = sum(
                        v for k, v in stats.items() if k.startswith("proxystack/requests/parked/")
                    )
    hand, suite = figures["hand_tuned"], figures["suite"]
    figures["wall_ratio_suite_vs_hand_tuned"] = round(suite["elapsed_s"] / hand["elapsed_s"], 3)
    print(f"{'':24}{'pages':>12}{'crawl s':>10}{'429s':>8}{'strike bans':>13}{'violations':>12}")
    for name in ("hand_tuned", "suite"):
        f = figures[name]
        print(
            f"{name:24}{f['pages']:>6}/{f['deliverable']:<5}{f['elapsed_s']:>10.2f}"
            f"{f['status_429']:>8}{f['strike_bans_403']:>13}{f['violations']:>12}"
        )
    print(f"wall time, suite / hand-tuned: {figures['wall_ratio_suite_vs_hand_tuned']:.2f}x")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
