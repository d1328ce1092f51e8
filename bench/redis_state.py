"""The cost of sharing state through Redis, and what several workers gain.

    python bench/redis_state.py            # 20,000 bookings; 1 vs 3 workers over 600 pages
    python bench/redis_state.py --quick    # 5,000 bookings; 300 pages

1. **Per request**: booking a site's slot (and the exit's pacing) through the Redis backend
   (``RedisState.reserve``, one ``EVALSHA``) against the in-memory budget (``DomainRateLimiter``
   ``reserve`` + ``confirm``), on a real redis-server on loopback, in the same run. Round trips
   are counted by Redis itself (``INFO commandstats``).
2. **Workers**: pages/s of one crawl run by 1 and by 3 Scrapy processes sharing a scrapy-redis
   queue and the suite's Redis state, on a loopback world whose site budget is not the
   bottleneck (wall time from the first to the last page the site saw).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapy_proxystack.config import parse_proxy_config  # noqa: E402
from scrapy_proxystack.pool import ExitPool  # noqa: E402
from scrapy_proxystack.state.redis_state import RedisState  # noqa: E402
from scrapy_proxystack.throttle import DomainRateLimiter, RateRule  # noqa: E402

SPIDER = """
import scrapy

class Bench(scrapy.Spider):
    name = "bench"

    def __init__(self, base="", pages=0, **kw):
        super().__init__(**kw)
        self.base, self.pages = base, int(pages)

    async def start(self):
        for i in range(1, self.pages + 1):
            yield scrapy.Request(f"{self.base}/page/{i}")

    def parse(self, response):
        yield {"n": len(response.body)}
"""


class _Stats:
    def inc_value(self, *a: Any, **k: Any) -> None: ...

    def set_value(self, *a: Any, **k: Any) -> None: ...

    def max_value(self, *a: Any, **k: Any) -> None: ...

    def get_value(self, *a: Any, **k: Any) -> Any:
        return None


def _evalsha_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval"))


def per_request(url: str, n: int) -> dict[str, Any]:
    from scrapy_proxystack.stats import StatsRecorder

    config = parse_proxy_config(
        {"locales": {"us": [f"http://127.0.0.1:{4000 + k}" for k in range(100)]}}
    )
    pool = ExitPool(config)
    exits = [p.id for p in config.all_proxies]
    sites = [f"site{k}.test" for k in range(100)]

    limiter = DomainRateLimiter(RateRule(rate=1e6))
    t0 = time.perf_counter()
    now = 0.0
    for k in range(n):
        now += 1e-6
        limiter.reserve(sites[k % 100], now)
        limiter.confirm(sites[k % 100], now)
    memory_us = (time.perf_counter() - t0) / n * 1e6

    import redis

    client = redis.Redis.from_url(url)
    state = RedisState(url=url, prefix="bench", pool=pool, stats=StatsRecorder(_Stats()))  # type: ignore[arg-type]

    async def run() -> list[float]:
        await state.start()
        samples = []
        for k in range(n):
            t = time.perf_counter()
            await state.reserve(sites[k % 100], exits[k % 100], 1e-6, 0.0, 0.001)
            samples.append(time.perf_counter() - t)
        await state.close()
        return samples

    before = _evalsha_calls(client)
    samples = asyncio.run(run())
    trips = _evalsha_calls(client) - before
    client.close()
    samples.sort()
    return {
        "bookings": n,
        "memory_us": round(memory_us, 2),
        "redis_us_mean": round(statistics.fmean(samples) * 1e6, 1),
        "redis_us_p50": round(samples[len(samples) // 2] * 1e6, 1),
        "redis_us_p99": round(samples[int(len(samples) * 0.99)] * 1e6, 1),
        "round_trips_per_request": round(trips / n, 3),
    }


def _workers_run(
    workdir: Path, url: str, base: str, proxies: dict[str, Any], pages: int, k: int, site: Any
) -> float:
    script = workdir / "bench_spider.py"
    script.write_text(SPIDER, encoding="utf-8")
    settings = {
        "ADDONS": {"scrapy_proxystack.Addon": 300},
        "PROXYSTACK_PROXIES": proxies,
        "PROXYSTACK_STATE_BACKEND": "redis",
        "PROXYSTACK_REDIS_URL": url,
        "PROXYSTACK_REDIS_PREFIX": f"bench{k}",
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_QUEUE_KEY": f"bench{k}:requests",
        "SCHEDULER_DUPEFILTER_KEY": f"bench{k}:dupefilter",
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": url,
        "CONCURRENT_REQUESTS": 16,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
    }
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(script)]
    for key, value in settings.items():
        cmd += ["-s", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    cmd += ["-a", f"base={base}", "-a", f"pages={pages}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    site.clear()
    procs = [
        subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(k)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        if proc.returncode:
            raise SystemExit(err.decode()[-3000:])
    times = sorted(r.time for r in site.requests if r.path.startswith("/page"))
    if len(times) != pages:
        raise SystemExit(f"{k} workers fetched {len(times)} pages, expected {pages}")
    return pages / (times[-1] - times[0])


def workers(url: str, pages: int) -> dict[str, Any]:
    from scrapy_proxystack.testing import LoopbackWorld

    with LoopbackWorld(max_lifetime=1800) as world, tempfile.TemporaryDirectory() as tmp:
        site = world.add_site("bench", pages=pages, page_size=3000)
        exits = [world.add_proxy(5) for _ in range(8)]
        proxies = {
            "locales": {"us": [p.url for p in exits]},
            "domains": {site.host: {"locale": "us", "rate": 10_000, "burst": 100}},
        }
        one = _workers_run(Path(tmp), url, site.base_url, proxies, pages, 1, site)
        three = _workers_run(Path(tmp), url, site.base_url, proxies, pages, 3, site)
    return {
        "pages": pages,
        "pages_per_s_1": round(one, 1),
        "pages_per_s_3": round(three, 1),
        "ratio_3_vs_1": round(three / one, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from scrapy_proxystack.testing.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            cost = per_request(server.url, 5000 if args.quick else 20000)
            print(
                f"per request: in-memory {cost['memory_us']} us; Redis {cost['redis_us_mean']} us "
                f"mean, {cost['redis_us_p50']} p50, {cost['redis_us_p99']} p99; "
                f"{cost['round_trips_per_request']} round trips"
            )
            scale = workers(server.url, 300 if args.quick else 600)
            print(
                f"workers: 1 -> {scale['pages_per_s_1']} pages/s, 3 -> {scale['pages_per_s_3']} "
                f"pages/s ({scale['ratio_3_vs_1']}x) on {os.cpu_count()} cores"
            )
        finally:
            server.stop()
    print(json.dumps({"bench": "redis_state", "per_request": cost, "workers": scale}))


if __name__ == "__main__":
    main()
