"""Per-site politeness over many exits: the rate a site really receives, and the cost to others.

Three measurements through the loopback world (real crawls, each in its own process):

1. ``PROXYSTACK_DOMAIN_RATE`` asked vs the rate the site saw, over 8 exits;
2. ``DOWNLOAD_DELAY = 0.5`` (2 requests/s per site) with 8 exits: scrapy-proxystack vs
   scrapy-rotating-proxies, whose per-proxy download slots multiply the rate by the exit count;
3. a fast site crawled alone, then beside a site throttled to 2 requests/s: its pages/s.

    python bench/throttle.py [--quick]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxystack.testing import LoopbackWorld, Site  # noqa: E402
from tests.crawl import run_crawl  # noqa: E402


def _rate(site: Site) -> float:
    times = sorted(r.time for r in site.requests if r.path.startswith("/page"))
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    rates = [2.0, 10.0] if options.quick else [2.0, 5.0, 10.0, 20.0]
    seconds = 3 if options.quick else 5
    fast_pages = 150 if options.quick else 400
    results: dict[str, Any] = {"domain_rate": [], "download_delay": {}, "fast_site": {}}

    with tempfile.TemporaryDirectory() as tmp, LoopbackWorld(max_lifetime=1800) as world:
        work = Path(tmp)
        exits = [world.add_proxy(5) for _ in range(8)]
        ours = {"PROXYSTACK_PROXIES": {"locales": {"us": [p.url for p in exits]}}}
        common = {
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "LOG_LEVEL": "WARNING",
        }

        def crawl(name: str, urls: list[str], settings: dict[str, Any], addon: bool = True) -> None:
            folder = work / name
            folder.mkdir()
            run_crawl(folder, urls=urls, settings={**common, **settings}, addon=addon, timeout=600)

        print("1. PROXYSTACK_DOMAIN_RATE over 8 exits", flush=True)
        for rate in rates:
            site = world.add_site(f"rate-{rate:g}", pages=int(rate * seconds) + 1)
            urls = [site.url(f"/page/{i}") for i in range(1, site.pages + 1)]
            crawl(f"rate-{rate:g}", urls, {**ours, "PROXYSTACK_DOMAIN_RATE": rate})
            held = _rate(site)
            exits_used = len({r.client_ip for r in site.requests})
            results["domain_rate"].append(
                {
                    "asked": rate,
                    "held": round(held, 3),
                    "ratio": round(held / rate, 3),
                    "exits_used": exits_used,
                }
            )
            print(
                f"   asked {rate:5.1f}/s  held {held:6.2f}/s  ({held / rate:.2f}x)  "
                f"through {exits_used} exits",
                flush=True,
            )

        print("2. DOWNLOAD_DELAY = 0.5 s (2/s per site) with 8 exits", flush=True)
        pages = 4 * seconds
        polite = {"DOWNLOAD_DELAY": 0.5, "RANDOMIZE_DOWNLOAD_DELAY": False}
        site = world.add_site("delay-ours", pages=pages)
        crawl(
            "delay-ours", [site.url(f"/page/{i}") for i in range(1, pages + 1)], {**ours, **polite}
        )
        ours_rate = _rate(site)
        site = world.add_site("delay-theirs", pages=pages)
        crawl(
            "delay-theirs",
            [site.url(f"/page/{i}") for i in range(1, pages + 1)],
            {
                **polite,
                "DOWNLOADER_MIDDLEWARES": {
                    "rotating_proxies.middlewares.RotatingProxyMiddleware": 610,
                    "rotating_proxies.middlewares.BanDetectionMiddleware": 620,
                },
                "ROTATING_PROXY_LIST": [p.url for p in exits],
            },
            addon=False,
        )
        theirs_rate = _rate(site)
        results["download_delay"] = {
            "asked": 2.0,
            "proxystack": round(ours_rate, 3),
            "rotating_proxies": round(theirs_rate, 3),
        }
        print(
            f"   asked 2.00/s  proxystack {ours_rate:.2f}/s  "
            f"scrapy-rotating-proxies {theirs_rate:.2f}/s",
            flush=True,
        )

        print("3. a fast site alone, then beside a site throttled to 2/s", flush=True)
        fast = world.add_site("fast-alone", pages=fast_pages)
        crawl("fast-alone", [fast.url(f"/page/{i}") for i in range(1, fast_pages + 1)], ours)
        alone = _rate(fast)
        fast = world.add_site("fast-beside", pages=fast_pages)
        slow = world.add_site("slow", pages=2 * seconds)
        urls = [slow.url(f"/page/{i}") for i in range(1, slow.pages + 1)]
        urls += [fast.url(f"/page/{i}") for i in range(1, fast_pages + 1)]
        crawl(
            "fast-beside",
            urls,
            {
                **ours,
                "PROXYSTACK_PROXIES": {
                    **ours["PROXYSTACK_PROXIES"],
                    "domains": {slow.host: {"locale": "us", "rate": 2}},
                },
            },
        )
        beside = _rate(fast)
        results["fast_site"] = {
            "alone_pages_per_s": round(alone, 1),
            "beside_throttled_pages_per_s": round(beside, 1),
            "ratio": round(beside / alone, 3),
            "throttled_site_rate": round(_rate(slow), 3),
        }
        print(
            f"   alone {alone:.0f} pages/s, beside a 2/s site {beside:.0f} pages/s "
            f"({beside / alone:.2f}x); the throttled site got {_rate(slow):.2f}/s",
            flush=True,
        )
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
