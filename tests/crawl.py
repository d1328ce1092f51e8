"""Helpers for crawl tests: write a proxy YAML for the loopback world, run a real crawl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CrawlResult:
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    log: str
    returncode: int
    close_reason: str | None
    #: Names resolved on the crawler's machine (with ``record_lookups``).
    lookups: list[str] = field(default_factory=list)

    def stat(self, key: str, default: Any = 0) -> Any:
        return self.stats.get(key, default)

    def proxystack_stats(self) -> dict[str, Any]:
        return {k: v for k, v in self.stats.items() if k.startswith("proxystack/")}

    @property
    def pages(self) -> list[dict[str, Any]]:
        return [i for i in self.items if "error" not in i]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [i for i in self.items if "error" in i]


def write_yaml(tmp_path: Path, data: dict[str, Any], name: str = "proxies.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class RunningCrawl:
    """A crawl started by :func:`start_crawl`; :func:`finish_crawl` waits for its result."""

    proc: subprocess.Popen[str]
    tmp_path: Path
    out_path: Path
    timeout: float


def start_crawl(
    tmp_path: Path,
    *,
    urls: list[Any],
    settings: dict[str, Any] | None = None,
    spider: str = "tests.spiders.WorldSpider",
    spider_kwargs: dict[str, Any] | None = None,
    addon: bool = True,
    timeout: float = 90.0,
    record_lookups: bool = False,
) -> RunningCrawl:
    """Start a real Scrapy crawl in a subprocess (in ``tmp_path``, its own directory)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    merged: dict[str, Any] = {
        "CONCURRENT_REQUESTS": 8,
        "DOWNLOAD_TIMEOUT": 10,
        "RETRY_TIMES": 2,
        "ROBOTSTXT_OBEY": False,
        "LOG_FILE": str(tmp_path / "crawl.log"),
    }
    if addon:
        merged["ADDONS"] = {"scrapy_proxystack.Addon": 300}
    merged.update(settings or {})
    spec = {
        "spider": spider,
        "settings": merged,
        "spider_kwargs": {"urls": urls, **(spider_kwargs or {})},
        "record_lookups": record_lookups,
    }
    spec_path = tmp_path / "spec.json"
    out_path = tmp_path / "result.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.runner", str(spec_path), str(out_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return RunningCrawl(proc, tmp_path, out_path, timeout)


def finish_crawl(crawl: RunningCrawl) -> CrawlResult:
    """Wait for a crawl started by :func:`start_crawl` (killed past its timeout)."""
    try:
        stdout, stderr = crawl.proc.communicate(timeout=crawl.timeout)
    except subprocess.TimeoutExpired:
        crawl.proc.kill()
        stdout, stderr = crawl.proc.communicate()
    log_path = crawl.tmp_path / "crawl.log"
    log = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
    log += stdout + stderr
    if not crawl.out_path.exists():
        raise AssertionError(
            f"crawl produced no result (exit {crawl.proc.returncode}):\n{log[-5000:]}"
        )
    result = json.loads(crawl.out_path.read_text(encoding="utf-8"))
    # An invariant of every crawl: each attempt gave its exit back exactly once.
    leaked = result["stats"].get("proxystack/exits/in_flight_at_close")
    assert leaked is None, f"{leaked} requests still counted in flight at close"
    return CrawlResult(
        items=result["items"],
        stats=result["stats"],
        log=log,
        returncode=crawl.proc.returncode,
        close_reason=result["close_reason"],
        lookups=result.get("lookups", []),
    )


def run_crawl(tmp_path: Path, **kwargs: Any) -> CrawlResult:
    """Run a real Scrapy crawl in a subprocess and return its items, stats and log (the
    arguments of :func:`start_crawl`)."""
    return finish_crawl(start_crawl(tmp_path, **kwargs))
