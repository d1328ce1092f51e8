"""Unit tests of the observability building blocks: aggregates, settings, switching on/off."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import build_from_crawler
from scrapy.utils.test import get_crawler

from scrapy_proxystack.config import ConfigError
from scrapy_proxystack.extensions._aggregate import (
    LATENCY_BOUNDS,
    MAX_TIME_BUCKETS,
    OTHER,
    CrawlAggregate,
    LatencyHistogram,
)
from scrapy_proxystack.extensions.audit import AuditLogExtension
from scrapy_proxystack.extensions.exitstats import ExitStatsExtension
from scrapy_proxystack.extensions.logstats import ProxyStackLogStats
from scrapy_proxystack.extensions.prometheus import PrometheusExtension
from scrapy_proxystack.extensions.report import ReportExtension, json_path_for
from scrapy_proxystack.signals import ExitOutcome

PROXIES = {"locales": {"fr": ["http://user:pw@127.0.1.1:8000"]}}


@given(st.lists(st.floats(min_value=0.0, max_value=500.0), min_size=1, max_size=200))
def test_quantiles_within_one_bucket(values: list[float]) -> None:
    hist = LatencyHistogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    for q in (0.5, 0.95):
        estimate = hist.quantile(q)
        assert estimate is not None
        true = ordered[max(0, int(q * len(ordered) + 0.999999) - 1)]
        assert estimate <= max(values)
        # Same bucket or a neighbour: relative error bounded by the 1.25 bucket ratio.
        assert estimate <= max(true * 1.25, LATENCY_BOUNDS[0]) + 1e-9
        assert estimate >= min(true / 1.25, true - LATENCY_BOUNDS[0]) - 1e-9


def _outcome(t: float, **kw: Any) -> ExitOutcome:
    base: dict[str, Any] = {
        "time": t,
        "url": "http://127.0.100.1/",
        "domain": "127.0.100.1",
        "locale": "fr",
        "exit_locale": "fr",
        "exit_id": "127.0.1.1:8000",
        "kind": "ban",
        "reason": "captcha",
        "status": 200,
        "latency": 0.01,
    }
    base.update(kw)
    return ExitOutcome(**base)


def test_aggregate_memory_is_bounded() -> None:
    agg = CrawlAggregate(start=0.0)
    for i in range(5000):
        agg.add(_outcome(i * 10.0, domain=f"site{i}.example", reason=f"r{i % 80}"))
    assert all(len(s) == MAX_TIME_BUCKETS for s in agg.ban_series.values())
    assert agg.bucket_width * MAX_TIME_BUCKETS > 5000 * 10.0
    assert sum(sum(s) for s in agg.ban_series.values()) == 5000
    assert len(agg.sites.data) == 501
    assert OTHER in agg.sites.data
    assert len(agg.ban_series) == 51  # 50 reasons + "(other)"
    assert agg.locales["fr"].attempts == 5000


@pytest.mark.parametrize(
    ("cls", "settings"),
    [
        (ProxyStackLogStats, {"PROXYSTACK_LOGSTATS_INTERVAL": 0}),
        (ReportExtension, {}),
        (PrometheusExtension, {}),
        (AuditLogExtension, {}),
        (ExitStatsExtension, {"PROXYSTACK_ENABLED": False}),
        (AuditLogExtension, {"PROXYSTACK_ENABLED": False, "PROXYSTACK_AUDIT_FILE": "a.jsonl"}),
    ],
)
def test_extensions_off_unless_configured(cls: type, settings: dict[str, Any]) -> None:
    crawler = get_crawler(settings_dict={"PROXYSTACK_PROXIES": PROXIES, **settings})
    with pytest.raises(NotConfigured):
        build_from_crawler(cls, crawler)


def test_no_proxies_is_a_configuration_error() -> None:
    crawler = get_crawler(settings_dict={"PROXYSTACK_REPORT_FILE": "r.html"})
    with pytest.raises(ConfigError, match="no proxies configured"):
        build_from_crawler(ReportExtension, crawler)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROXYSTACK_AUDIT_URLS", "path"),
        ("PROXYSTACK_PROMETHEUS_PORT", -1),
        ("PROXYSTACK_PROMETHEUS_PORT", 70000),
        ("PROXYSTACK_LOGSTATS_INTERVAL", "often"),
        ("PROXYSTACK_CHECK_TIMEOUT", 0),
    ],
)
def test_bad_settings_name_the_setting(name: str, value: object) -> None:
    crawler = get_crawler(
        settings_dict={"PROXYSTACK_PROXIES": PROXIES, "PROXYSTACK_AUDIT_FILE": "a", name: value}
    )
    with pytest.raises(ConfigError, match=name):
        build_from_crawler(AuditLogExtension, crawler)


def test_json_path_for(tmp_path: Any) -> None:
    assert json_path_for(tmp_path / "r.html") == tmp_path / "r.json"
    assert json_path_for(tmp_path / "report") == tmp_path / "report.json"


def test_close_latency_markers_keep_their_labels_apart() -> None:
    from scrapy_proxystack.extensions._charts import latency_chart

    latency = {
        "buckets": [[1.0, 3], [2.0, 5], [4.0, 9], [8.0, 2]],
        "p50_ms": 3.0,
        "p95_ms": 3.2,
        "p99_ms": 7.0,
    }
    svg = latency_chart("fr", latency)
    assert 'text-anchor="end" fill="#2e7d32">p50<' in svg  # left of its marker
    assert 'text-anchor="start" fill="#c62828">p95<' in svg  # right of its marker


def test_every_column_of_the_locale_table_has_a_header() -> None:
    from scrapy_proxystack.extensions._html import _LOCALE_HEADERS

    assert all(_LOCALE_HEADERS)
