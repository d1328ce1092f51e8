"""Observability: stats, periodic lines, audit log, Prometheus and report data of a real crawl.

One reference crawl (module fixture) runs through the loopback world with every observability
extension on; the tests below read its outputs. The proxies' user names and passwords are
unique marker strings, and the last test greps every output for them.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector

from scrapy_proxystack.testing import BanRule, LoopbackWorld
from tests.crawl import CrawlResult, run_crawl, write_yaml

if TYPE_CHECKING:
    from collections.abc import Iterator

EXTENSIONS = {
    "scrapy_proxystack.extensions.exitstats.ExitStatsExtension": 500,
    "scrapy_proxystack.extensions.logstats.ProxyStackLogStats": 500,
    "scrapy_proxystack.extensions.report.ReportExtension": 500,
    "scrapy_proxystack.extensions.prometheus.PrometheusExtension": 500,
    "scrapy_proxystack.extensions.audit.AuditLogExtension": 500,
}
#: Credentials of the reference proxies: none of them may appear in any output.
SECRETS = (
    "usrMARKERa1",
    "pwdMARKERa1",
    "usrMARKERb2",
    "pwdMARKERb2",
    "usrMARKERc3",
    "pwdMARKERc3",
    "usrMARKERd4",
    "pwdMARKERd4",
)
STATS_FILE = "final_stats.json"
_PORT_RE = re.compile(r"Prometheus metrics on http://127\.0\.0\.1:(\d+)/metrics")


class DumpingStatsCollector(MemoryStatsCollector):
    """Writes the final stats to ``final_stats.json`` after every close handler has run.

    The harness snapshots stats in its own ``spider_closed`` handler, which runs before the
    extensions' handlers; the stats collector closes last.
    """

    def _persist_stats(self, stats: dict[str, Any]) -> None:
        super()._persist_stats(stats)
        Path(STATS_FILE).write_text(json.dumps(stats, default=str), encoding="utf-8")


@dataclass
class Reference:
    """The reference crawl: its world, result and every file it wrote."""

    world: LoopbackWorld
    tmp: Path
    yaml_path: Path
    result: CrawlResult
    ids: dict[str, str]
    scrapes: list[str] = field(default_factory=list)
    port: int | None = None

    @property
    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.tmp / STATS_FILE).read_text("utf-8"))
        return {k: v for k, v in data.items() if k.startswith("proxystack/")}

    @property
    def audit(self) -> list[dict[str, Any]]:
        text = (self.tmp / "audit.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.tmp / "report.json").read_text("utf-8"))
        return data


class _Scraper(threading.Thread):
    """Reads the crawl log for the metrics port, then scrapes /metrics until the crawl ends."""

    def __init__(self, log_path: Path, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.log_path = log_path
        self.stop = stop
        self.port: int | None = None
        self.bodies: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set() and self.port is None:
            if self.log_path.exists():
                found = _PORT_RE.search(self.log_path.read_text(encoding="utf-8"))
                if found:
                    self.port = int(found.group(1))
            time.sleep(0.02)
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/metrics", timeout=2
                ) as answer:
                    self.bodies.append(answer.read().decode("utf-8"))
            except OSError:
                pass
            time.sleep(0.1)


def reference_world() -> tuple[LoopbackWorld, dict[str, Any], dict[str, str]]:
    """Sites and proxies of the reference crawl, and its proxy config."""
    world = LoopbackWorld(max_lifetime=120.0).start()
    fr1 = world.add_proxy(1, auth=("usrMARKERa1", "pwdMARKERa1"))
    fr2 = world.add_proxy(1, auth=("usrMARKERb2", "pwdMARKERb2"))
    de1 = world.add_proxy(2, auth=("usrMARKERc3", "pwdMARKERc3"), delay=0.3)
    de2 = world.add_proxy(2, mode="dead", auth=("usrMARKERd4", "pwdMARKERd4"))
    es1 = world.add_proxy(3, mode="dead")
    news = world.add_site("news", lang="fr")
    blocked = world.add_site("blocked", lang="fr", ban=BanRule("403"))
    blog = world.add_site("blog", lang="de")
    config = {
        "locales": {
            "fr": {"proxies": [fr1.url, fr2.url]},
            "de": {"proxies": [de1.url, de2.url]},
            "es": {"proxies": [es1.url]},
        },
        "domains": {news.host: "fr", blocked.host: "fr", blog.host: "de"},
    }
    ids = {
        "fr1": fr1.exit_id,
        "fr2": fr2.exit_id,
        "de1": de1.exit_id,
        "de2": de2.exit_id,
        "es1": es1.exit_id,
    }
    return world, config, ids


def reference_urls(world: LoopbackWorld) -> list[Any]:
    news, blocked, blog = world.site("news"), world.site("blocked"), world.site("blog")
    urls: list[Any] = [news.url(f"/page/{n}") for n in range(1, 5)]
    urls += [blocked.url(f"/page/{n}") for n in (1, 2)]
    urls += [blog.url(f"/page/{n}") for n in (1, 2, 3)]
    urls.append({"url": news.url("/page/5"), "meta": {"proxystack_locale": "es"}})
    return urls


def run_reference(tmp: Path, *, prometheus: bool = True) -> Reference:
    world, config, ids = reference_world()
    try:
        yaml_path = write_yaml(tmp, config)
        settings: dict[str, Any] = {
            "EXTENSIONS": EXTENSIONS,
            "STATS_CLASS": "tests.test_observability.DumpingStatsCollector",
            "CONCURRENT_REQUESTS": 1,
            "PROXYSTACK_PROXIES_FILE": str(yaml_path),
            "PROXYSTACK_STRATEGY": "round_robin",
            "PROXYSTACK_EXIT_RETRY_TIMES": 2,
            # The blocked site refuses every exit for good: fail closed at once, do not wait.
            "PROXYSTACK_BAN_MAX_WAIT": 0,
            "PROXYSTACK_STATS_PER_EXIT": True,
            "PROXYSTACK_LOGSTATS_INTERVAL": 0.25,
            "PROXYSTACK_REPORT_FILE": str(tmp / "report.html"),
            "PROXYSTACK_AUDIT_FILE": str(tmp / "audit.jsonl"),
            "PROXYSTACK_PII_ENABLED": True,
        }
        if prometheus:
            settings["PROXYSTACK_PROMETHEUS_PORT"] = 0
        stop = threading.Event()
        scraper = _Scraper(tmp / "crawl.log", stop)
        if prometheus:
            scraper.start()
        try:
            result = run_crawl(tmp, urls=reference_urls(world), settings=settings)
        finally:
            stop.set()
            if prometheus:
                scraper.join(10)
        return Reference(world, tmp, yaml_path, result, ids, scraper.bodies, scraper.port)
    except BaseException:
        world.stop()
        raise


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    reference = run_reference(tmp_path_factory.mktemp("reference"))
    try:
        yield reference
    finally:
        reference.world.stop()


# --- stats ------------------------------------------------------------------------------------

#: Every ``proxystack/`` stat of the reference crawl, except per-exit keys (their ids hold
#: random ports), latency values and the metrics port, which are checked below.
EXPECTED_STATS = {
    "proxystack/audit/lines": 15,
    "proxystack/bans/kind/ban": 2,
    "proxystack/bans/locale/fr": 2,
    "proxystack/bans/reason/status_403": 2,
    "proxystack/exits/configured": 5,
    "proxystack/exits/ejected": 2,
    "proxystack/exits/reused": 2,
    "proxystack/exits/transport_failures/DownloadConnectionRefusedError": 4,
    "proxystack/locale/source/domain": 9,
    "proxystack/locale/source/meta": 1,
    "proxystack/locales/dry/es": 1,
    "proxystack/requests/dropped/no_exit": 2,
    "proxystack/requests/dropped/transport": 1,
    "proxystack/requests/locale/de": 4,
    "proxystack/requests/locale/es": 3,
    "proxystack/requests/locale/fr": 6,
    "proxystack/requests/no_exit/all_banned": 2,
    "proxystack/responses/locale/de": 3,
    "proxystack/responses/locale/fr": 4,
    "proxystack/retry/ban/count": 2,
    "proxystack/retry/ban/reason_count/ban_status_403": 2,
    "proxystack/requests/panic/es": 2,
    "proxystack/retry/transport/count": 3,
    "proxystack/retry/transport/max_reached": 1,
    "proxystack/retry/transport/reason_count/exit_DownloadConnectionRefusedError": 3,
}


def test_reference_stats_exact(ref: Reference) -> None:
    stats = ref.stats
    general = {
        k: v
        for k, v in stats.items()
        if not k.startswith(("proxystack/exit/", "proxystack/latency/", "proxystack/pii/"))
        and k != "proxystack/prometheus/port"
    }
    assert general == EXPECTED_STATS
    assert stats["proxystack/prometheus/port"] == ref.port
    # Latency percentiles per exit locale: de's proxy waits 0.3 s before forwarding.
    assert {k for k in stats if k.startswith("proxystack/latency/")} == {
        "proxystack/latency/p50_ms/fr",
        "proxystack/latency/p95_ms/fr",
        "proxystack/latency/p50_ms/de",
        "proxystack/latency/p95_ms/de",
    }
    assert 250 <= stats["proxystack/latency/p50_ms/de"] <= stats["proxystack/latency/p95_ms/de"]
    assert stats["proxystack/latency/p50_ms/fr"] < 250
    # Per-exit breakdowns (opt-in), keyed by exit id.
    ids = ref.ids

    def exit_stats(name: str) -> dict[str, int]:
        prefix = f"proxystack/exit/{ids[name]}/"
        return {
            k[len(prefix) :]: v
            for k, v in stats.items()
            if k.startswith(prefix) and "latency" not in k
        }

    assert exit_stats("de1") == {"attempts": 3, "successes": 3}
    assert exit_stats("de2") == {"attempts": 1, "failures": 1}
    assert exit_stats("es1") == {"attempts": 3, "failures": 3}
    fr = [exit_stats("fr1"), exit_stats("fr2")]
    assert [s["bans"] for s in fr] == [1, 1]
    assert sum(s["attempts"] for s in fr) == 6
    assert sum(s.get("successes", 0) for s in fr) == 4
    assert f"proxystack/exit/{ids['de1']}/latency_p50_ms" in stats
    assert not any(k.startswith("proxystack/exit/") and "127.0.100." in k for k in stats)


# --- periodic lines -------------------------------------------------------------------------


def test_periodic_lines_and_dry_warning(ref: Reference) -> None:
    log = ref.result.log
    lines = re.findall(
        r"Locale (\w+): (\d+)/(\d+) exits usable, (\d+) ejected, (\d+) banned by a site; "
        r"(\d+) requests/min, ban rate ([\d.]+)%, latency p50 (-|\d+ ms) p95 (-|\d+ ms); "
        r"(\d+) waiting for an exit",
        log,
    )
    assert lines, log[-3000:]
    by_locale: dict[str, list[tuple[str, ...]]] = {}
    for line in lines:
        by_locale.setdefault(line[0], []).append(line)
    assert {"fr", "de"} <= set(by_locale)
    assert all(line[2] == "2" for line in by_locale["de"])
    assert any(line[3] == "1" for line in by_locale["de"])  # the dead proxy, ejected
    assert any(line[4] == "2" for line in by_locale["fr"])  # both banned by "blocked"
    assert any(int(line[7].split()[0]) >= 250 for line in by_locale["de"] if line[7] != "-")
    assert log.count("Locale es ran dry") == 1


# --- audit log ------------------------------------------------------------------------------


def test_audit_log_lines(ref: Reference) -> None:
    lines = ref.audit
    assert len(lines) == 15
    assert all(
        list(line)
        == [
            "time",
            "url",
            "locale",
            "exit_locale",
            "pool",
            "exit",
            "status",
            "verdict",
            "retries",
            "latency_ms",
        ]
        for line in lines
    )
    verdicts: dict[str, int] = {}
    for line in lines:
        verdicts[line["verdict"]] = verdicts.get(line["verdict"], 0) + 1
    assert verdicts == {
        "success/ok": 7,
        "ban/status_403": 2,
        "transport_failure/DownloadConnectionRefusedError": 4,
        "no_exit/all_banned": 2,
    }
    ids = ref.ids
    news = ref.world.site("news")
    first_news = next(line for line in lines if line["url"] == news.url("/page/1"))
    assert first_news["locale"] == first_news["exit_locale"] == "fr"
    assert first_news["exit"] in (ids["fr1"], ids["fr2"])
    assert (first_news["status"], first_news["retries"]) == (200, 0)
    assert first_news["time"].endswith("+00:00")
    es = [line for line in lines if line["locale"] == "es"]
    # Its only exit is dead: retried through it (panic mode) until the retries ran out.
    assert [(e["exit"], e["verdict"], e["retries"]) for e in es] == [
        (ids["es1"], "transport_failure/DownloadConnectionRefusedError", n) for n in range(3)
    ]
    bans = [line for line in lines if line["verdict"] == "ban/status_403"]
    assert sorted(b["exit"] for b in bans) == sorted((ids["fr1"], ids["fr2"]))
    assert all(b["status"] == 403 for b in bans)


def test_audit_record_host_mode_and_redaction() -> None:
    from scrapy_proxystack.extensions.audit import audit_record
    from scrapy_proxystack.signals import ExitOutcome

    outcome = ExitOutcome(
        time=0.0,
        url="http://user:topsecret@127.0.100.1:8080/a?q=1",
        domain="127.0.100.1",
        locale="fr",
        exit_locale="eu",
        exit_id="127.0.1.1:8000",
        kind="success",
        reason="ok",
        status=200,
        latency=0.0123,
        retries=2,
        fallback=True,
        exit_pool="vendor-b",
    )
    assert audit_record(outcome, urls="host") == {
        "time": "1970-01-01T00:00:00.000+00:00",
        "host": "127.0.100.1",
        "locale": "fr",
        "exit_locale": "eu",
        "pool": "vendor-b",
        "exit": "127.0.1.1:8000",
        "status": 200,
        "verdict": "success/ok",
        "retries": 2,
        "latency_ms": 12,
    }
    assert audit_record(outcome)["url"] == "http://***@127.0.100.1:8080/a?q=1"


# --- Prometheus -----------------------------------------------------------------------------


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_prometheus_scraped_during_crawl(ref: Reference) -> None:
    assert ref.port, "the metrics port was never logged"
    assert ref.scrapes, "no scrape succeeded during the crawl"
    totals = [sum(_samples(body, "proxystack_requests_total").values()) for body in ref.scrapes]
    assert totals == sorted(totals)  # counters only grow
    assert totals[0] < 14  # scraped while the crawl was still running
    last = ref.scrapes[-1]
    requests = _samples(last, "proxystack_requests_total")
    key = (("locale", "fr"), ("outcome", "success"), ("pool", "default"))
    assert 1 <= requests[key] <= 4
    assert {dict(k)["outcome"] for k in requests} <= {
        "success",
        "ban",
        "transport_failure",
        "no_exit",
    }
    assert {dict(k)["locale"] for k in requests} <= {"fr", "de", "es"}
    bans = _samples(last, "proxystack_bans_total")
    assert bans.get((("locale", "fr"), ("reason", "status_403")), 0) <= 2
    latency = _samples(last, "proxystack_response_latency_seconds_count")
    assert latency
    exits = [_samples(body, "proxystack_exits") for body in ref.scrapes]
    assert exits[0][(("locale", "fr"), ("pool", "default"), ("state", "usable"))] == 2
    assert any(e.get((("locale", "de"), ("pool", "default"), ("state", "ejected"))) for e in exits)
    assert "proxystack_throttle_wait_seconds" in last
    # Every label value comes from a bounded set: no exit id, host or URL.
    assert "127.0." not in "".join(line for line in last.splitlines() if "{" in line)
    # The server stopped with the crawl.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ref.port), timeout=1).close()


# --- report data ----------------------------------------------------------------------------


def test_report_json(ref: Reference) -> None:
    report = ref.report
    assert report["spider"] == "world"
    assert report["close_reason"] == "finished"
    assert report["totals"] == {
        "attempts": 13,
        "successes": 7,
        "bans": 2,
        "transport_failures": 4,
        "no_exit": 2,
        "ban_rate": round(2 / 13, 4),
    }
    assert report["health"]["status"] == "unhealthy"
    assert "locales that ran dry: es" in report["health"]["reasons"]
    locales = {loc["locale"]: loc for loc in report["locales"]}
    assert list(locales) == ["fr", "de", "es"]
    fr, de, es = locales["fr"], locales["de"], locales["es"]
    assert (fr["attempts"], fr["successes"], fr["bans"], fr["no_exit"]) == (6, 4, 2, 2)
    assert fr["exits"] == {"total": 2, "usable": 2, "ejected": 0, "in_flight": 0, "banned": 2}
    assert (de["attempts"], de["successes"], de["transport_failures"]) == (4, 3, 1)
    assert de["exits"]["ejected"] == 1
    assert de["latency"]["count"] == 3
    assert de["latency"]["p50_ms"] == ref.stats["proxystack/latency/p50_ms/de"]
    assert sum(n for _, n in de["latency"]["buckets"]) == 3
    assert (es["ran_dry"], es["transport_failures"], es["no_exit"]) == (True, 3, 0)
    blocked = ref.world.site("blocked").host
    assert report["bans"]["by_reason"] == {"status_403": 2}
    assert report["bans"]["by_site"] == [
        {"site": blocked, "total": 2, "reasons": {"status_403": 2}}
    ]
    assert sum(report["bans"]["series"]["status_403"]) == 2
    sites = {s["site"]: s for s in report["sites"]}
    assert sites[blocked] == {
        "site": blocked,
        "requests": 2,
        "successes": 0,
        "bans": 2,
        "failures": 0,
        "no_exit": 2,
    }
    ids = ref.ids
    assert report["exits"]["slowest"][0]["exit"] == ids["de1"]
    assert report["exits"]["slowest"][0]["mean_latency_ms"] >= 250
    assert sorted(e["exit"] for e in report["exits"]["most_banned"]) == sorted(
        (ids["fr1"], ids["fr2"])
    )
    masked = {
        k.rsplit("/", 1)[1]: v
        for k, v in ref.stats.items()
        if k.startswith("proxystack/pii/masked/")
    }
    assert masked
    assert report["pii"]["masked"] == masked


# --- secrets --------------------------------------------------------------------------------


def test_no_credential_in_any_output(ref: Reference, tmp_path: Path) -> None:
    from tests.test_check_command import run_check

    config_text = ref.yaml_path.read_text(encoding="utf-8")
    assert all(secret in config_text for secret in SECRETS)  # the test is not vacuous
    check = run_check(tmp_path, config_text, "--echo-url", ref.world.site("news").url("/echo"))
    assert check.returncode == 1  # es has only a dead proxy
    outputs = {
        "audit log": (ref.tmp / "audit.jsonl").read_text(encoding="utf-8"),
        "report html": (ref.tmp / "report.html").read_text(encoding="utf-8"),
        "report json": (ref.tmp / "report.json").read_text(encoding="utf-8"),
        "metrics": "\n".join(ref.scrapes),
        "crawl log": ref.result.log,
        "stats": json.dumps(ref.result.stats) + (ref.tmp / STATS_FILE).read_text("utf-8"),
        "items": json.dumps(ref.result.items),
        "check stdout": check.stdout,
        "check stderr": check.stderr,
    }
    assert all(outputs.values())
    leaks = [
        (name, secret) for name, text in outputs.items() for secret in SECRETS if secret in text
    ]
    assert leaks == []


def test_a_download_cut_short_has_one_audit_line(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("big", pages=2, page_size=200_000)
    exit_ = world.add_proxy(5)
    result = run_crawl(
        tmp_path,
        urls=[site.url("/page/1"), site.url("/page/2")],
        settings={
            "PROXYSTACK_PROXIES": {"locales": {"us": [exit_.url]}},
            "PROXYSTACK_AUDIT_FILE": str(tmp_path / "audit.jsonl"),
            "EXTENSIONS": {"scrapy_proxystack.extensions.audit.AuditLogExtension": 500},
            "DOWNLOAD_MAXSIZE": 50_000,
        },
    )
    assert result.pages == []
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text("utf-8").splitlines()]
    # Both attempts left through the exit and were cut short by the size limit: one line each.
    assert len(site.requests) == 2
    assert len(lines) == 2
    assert {line["verdict"] for line in lines} == {"cancelled/DownloadCancelledError"}
