"""Per-request cost of the exit pool against scrapy-rotating-proxies' own pool, at 1k-100k proxies.

    python bench/pool.py [--quick]

Proxies are gateway-style entries (one host:port, a distinct user name each), the shape vendors
sell and the one that hurts scrapy-rotating-proxies most. For every pool size it measures, in
the same process:

* ours: ``ExitPool.choose`` + ``record_success`` per request, for each strategy, over 100 target
  domains (plus ``latency+pace``, which also calls ``pace`` per request, as per-exit politeness
  does);
* theirs, ``get_random+mark_good``: ``rotating_proxies.expire.Proxies.get_random()`` +
  ``mark_good()``, the pool operations alone;
* theirs, ``middleware``: ``RotatingProxyMiddleware.process_request`` + ``process_response``
  with stub request/response objects, i.e. what the middleware really does per request: the same
  choice, plus ``get_proxy_slot`` and, per response, the ``proxies/*`` stats recomputed over all
  proxies (``len(proxies.reanimated)`` twice, ``mean_backoff_time``). The periodic ``log_stats``
  call is not included. With gateway entries its ``get_proxy`` maps every response to the same
  URL (it keys proxies by host:port), so it marks one proxy good over and over: that is its real
  behaviour, measured as is.

Each figure is the median of several timed runs (garbage collector off during a run, as timeit
does). Memory is the tracemalloc growth per proxy: for ours when the pool is built and after
every exit served one request (the proxy config it reads is reported apart); for theirs when its
``Proxies`` is built. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rotating_proxies.expire import Proxies
from rotating_proxies.middlewares import RotatingProxyMiddleware

from scrapy_proxystack.config import STRATEGIES, ProxyConfig, parse_proxy_config
from scrapy_proxystack.pool import ExitPool

DOMAINS = [f"site{k}.example" for k in range(100)]
TARGET_US = 20.0


def gateway_urls(n: int) -> list[str]:
    return [f"http://user-{i}:pw@127.0.0.1:3128" for i in range(n)]


def median_us(run: Any, requests: int, repeats: int) -> float:
    """Median over ``repeats`` runs of the time per request, in µs."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            run(requests)
        finally:
            gc.enable()
        samples.append((time.perf_counter_ns() - start) / requests / 1000)
    return statistics.median(samples)


# -- ours --------------------------------------------------------------------------------------


def ours_runner(pool: ExitPool, pace: bool) -> Any:
    rng = random.Random(7)
    latencies = [0.05 + rng.random() for _ in range(1024)]
    choose = pool.choose
    success = pool.record_success
    pace_fn = pool.pace
    domains = DOMAINS
    nd = len(domains)

    def run(requests: int) -> None:
        for k in range(requests):
            domain = domains[k % nd]
            exit_id = choose("us", domain).entry.id
            success(exit_id, domain, latencies[k & 1023])
            if pace:
                pace_fn(exit_id, domain, 1.0)

    return run


def bench_ours(
    config: ProxyConfig, strategy: str, requests: int, repeats: int, pace: bool = False
) -> float:
    pool = ExitPool(config, strategy=strategy, rng=random.Random(1))
    run = ours_runner(pool, pace)
    run(min(requests, 2000))  # warm-up
    return median_us(run, requests, repeats)


def memory_ours(config: ProxyConfig, n: int) -> tuple[float, float]:
    """Bytes per proxy: the pool as built, and after every exit served one request."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pool = ExitPool(config, strategy="round_robin", rng=random.Random(1))
    built = tracemalloc.get_traced_memory()[0] - before
    for k in range(n):  # round robin: each exit exactly once
        domain = DOMAINS[k % len(DOMAINS)]
        pool.record_success(pool.choose("us", domain).entry.id, domain, 0.2 + (k % 7) / 10)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del pool
    return built / n, used / n


def memory_config(urls: list[str]) -> tuple[ProxyConfig, float]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    config = parse_proxy_config({"locales": {"us": {"proxies": urls}}})
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return config, size / len(urls)


# -- theirs ------------------------------------------------------------------------------------


class _Stats:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def set_value(self, key: str, value: Any) -> None:
        self.values[key] = value

    def inc_value(self, key: str, count: int = 1) -> None:
        self.values[key] = self.values.get(key, 0) + count


def theirs_pool_runner(urls: list[str]) -> Any:
    proxies = Proxies(urls)

    def run(requests: int) -> None:
        for _ in range(requests):
            proxies.mark_good(proxies.get_random())

    return run


def theirs_middleware_runner(urls: list[str]) -> Any:
    crawler = SimpleNamespace(stats=_Stats())
    middleware = RotatingProxyMiddleware(
        proxy_list=urls,
        logstats_interval=30.0,
        stop_if_no_proxies=False,
        max_proxies_to_try=5,
        backoff_base=300.0,
        backoff_cap=3600.0,
        crawler=crawler,
    )
    response = SimpleNamespace(status=200, body=b"x" * 3000)

    def run(requests: int) -> None:
        for _ in range(requests):
            request = SimpleNamespace(meta={})
            middleware.process_request(request, None)
            request.meta["_ban"] = False  # what its BanDetectionMiddleware sets for a 200
            middleware.process_response(request, response, None)

    return run


def bench_theirs(runner: Any, budget_s: float, repeats: int, cap: int) -> float:
    """Adapts the number of requests so that one run takes about ``budget_s``."""
    start = time.perf_counter()
    runner(3)
    per_request = (time.perf_counter() - start) / 3
    requests = max(5, min(cap, int(budget_s / max(per_request, 1e-9))))
    return median_us(runner, requests, repeats)


def memory_theirs(urls: list[str]) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    proxies = Proxies(urls)
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del proxies
    return size / len(urls)


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced run, a few seconds")
    args = parser.parse_args()
    if args.quick:
        sizes, requests, repeats, budget, their_repeats = [1_000, 10_000], 3_000, 3, 0.05, 3
    else:
        sizes, requests, repeats, budget, their_repeats = (
            [1_000, 10_000, 100_000],
            20_000,
            5,
            0.4,
            3,
        )
    rows = [*STRATEGIES, "latency+pace"]
    result: dict[str, Any] = {
        "bench": "pool",
        "quick": args.quick,
        "python": platform.python_version(),
        "sizes": sizes,
        "requests_per_run": requests,
        "unit": "us_per_request",
        "target_us": TARGET_US,
        "ours": {},
        "theirs": {},
        "memory_bytes_per_proxy": {},
    }
    started = time.perf_counter()
    for n in sizes:
        urls = gateway_urls(n)
        config, config_bytes = memory_config(urls)
        ours: dict[str, float] = {}
        for row in rows:
            strategy = row.split("+")[0]
            ours[row] = bench_ours(config, strategy, requests, repeats, pace=row.endswith("pace"))
        theirs = {
            "get_random+mark_good": bench_theirs(
                theirs_pool_runner(urls), budget, their_repeats, requests
            ),
            "middleware": bench_theirs(
                theirs_middleware_runner(urls), budget, their_repeats, requests
            ),
        }
        built, used = memory_ours(config, n)
        result["ours"][str(n)] = {k: round(v, 3) for k, v in ours.items()}
        result["theirs"][str(n)] = {k: round(v, 3) for k, v in theirs.items()}
        result["memory_bytes_per_proxy"][str(n)] = {
            "ours_built": round(built),
            "ours_after_use": round(used),
            "theirs_built": round(memory_theirs(urls)),
            "config": round(config_bytes),
        }
        print(f"n={n:,} done ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)

    print_table(result, rows)
    worst = max(result["ours"][str(sizes[-1])].values())
    result["max_us_at_largest_n"] = worst
    result["under_target"] = worst < TARGET_US
    result["flatness_largest_vs_smallest"] = {
        row: round(result["ours"][str(sizes[-1])][row] / result["ours"][str(sizes[0])][row], 2)
        for row in rows
    }
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, sort_keys=True))


def print_table(result: dict[str, Any], rows: list[str]) -> None:
    print()
    print("Per-request cost in µs (median); ratio = theirs / ours (higher is better for ours)")
    header = (
        f"{'proxies':>8}  {'ours: strategy':<18}{'ours':>9}  "
        f"{'theirs get+mark':>16}{'ratio':>9}  {'theirs mw':>11}{'ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for n in result["sizes"]:
        theirs = result["theirs"][str(n)]
        pool, mw = theirs["get_random+mark_good"], theirs["middleware"]
        for k, row in enumerate(rows):
            ours = result["ours"][str(n)][row]
            lead = f"{n:>8,}" if k == 0 else " " * 8
            print(
                f"{lead}  {row:<18}{ours:>9.2f}  {pool:>16.2f}{pool / ours:>8.1f}x"
                f"  {mw:>11.2f}{mw / ours:>8.1f}x"
            )
    print()
    print("Memory per proxy (bytes, tracemalloc)")
    print(f"{'proxies':>8}  {'ours built':>11}{'ours used':>11}{'theirs':>9}{'config':>9}")
    for n in result["sizes"]:
        m = result["memory_bytes_per_proxy"][str(n)]
        print(
            f"{n:>8,}  {m['ours_built']:>11}{m['ours_after_use']:>11}"
            f"{m['theirs_built']:>9}{m['config']:>9}"
        )
    print()


if __name__ == "__main__":
    main()
