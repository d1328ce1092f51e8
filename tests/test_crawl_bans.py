"""Real crawls through the loopback world: every ban form is retried elsewhere, never kept."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from rotating_proxies.policy import BanDetectionPolicy

from scrapy_proxystack.testing import BanRule
from tests.crawl import run_crawl

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_proxystack.testing import LoopbackWorld

FORMS = {
    "403": "status_403",
    "503": "status_503",
    "429": "status_429",
    "451": "status_451",
    "captcha": "captcha",
    "redirect": "challenge_redirect",
    "empty": "empty_body",
    "region_page": "region_page",
}
BAN_MARKERS = ("g-recaptcha", "captcha", "Access denied", "not available", "challenge")


class PageTwoIsBan(BanDetectionPolicy):  # type: ignore[misc]
    """A scrapy-rotating-proxies policy as a project would have written it."""

    def response_is_ban(self, request: Any, response: Any) -> bool:
        return bool(request.url.endswith("/page/2")) or super().response_is_ban(request, response)


def assert_clean(pages: list[dict[str, Any]]) -> None:
    for page in pages:
        assert page["status"] == 200
        assert page["body"]
        assert not any(m.lower() in page["body"].lower() for m in BAN_MARKERS), page["url"]


@pytest.mark.parametrize(("form", "reason"), FORMS.items())
def test_ban_form_is_retried_elsewhere_and_scoped_to_the_site(
    world: LoopbackWorld, tmp_path: Path, form: str, reason: str
) -> None:
    banned, other = world.add_proxy(5), world.add_proxy(5)
    strict = world.add_site("strict", pages=4, ban=BanRule(form, clients={banned.ip}))
    lenient = world.add_site("lenient", pages=4)
    config = {
        "locales": {"us": [banned.url, other.url]},
        "domains": {strict.host: "us", lenient.host: "us"},
    }
    urls = [s.url(f"/page/{i}") for i in range(1, 5) for s in (strict, lenient)]
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_STRATEGY": "round_robin",
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert result.errors == []
    assert sorted(p["url"] for p in result.pages) == sorted(urls)
    assert_clean(result.pages)
    strict_clients = Counter(r.client_ip for r in strict.requests if r.path.startswith("/page"))
    stats = result.proxystack_stats()
    assert strict_clients[other.ip] == 4
    # ... and the banned exit kept serving the other site.
    assert Counter(r.client_ip for r in lenient.requests)[banned.ip] >= 2
    if form == "429":
        # Pacing, not a ban: the pair waits out Retry-After (2 s), each refusal is retried.
        refusals = strict_clients[banned.ip]
        assert refusals >= 1
        assert stats[f"proxystack/bans/reason/{reason}"] == refusals
        assert stats["proxystack/retry/throttle/count"] == refusals
        assert stats["proxystack/throttle/pushbacks/status_429"] == refusals
        assert "proxystack/retry/ban/count" not in stats
    else:
        # The banned exit was refused by the strict site once, then never sent there again.
        assert strict_clients[banned.ip] == 1
        assert stats[f"proxystack/bans/reason/{reason}"] == 1
        assert stats["proxystack/retry/ban/count"] == 1
        assert stats[f"proxystack/retry/ban/reason_count/ban_{reason}"] == 1
    assert "proxystack/bans/gave_up/" + reason not in stats
    assert "retry/count" not in result.stats  # RetryMiddleware did not retry it a second time


def test_retries_run_out_and_the_ban_page_is_dropped(world: LoopbackWorld, tmp_path: Path) -> None:
    exits = [world.add_proxy(5) for _ in range(3)]
    site = world.add_site("fortress", pages=3, ban=BanRule("captcha"))
    config = {"locales": {"us": [p.url for p in exits]}, "domains": {site.host: "us"}}
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 4)],
        # No waiting for cool-downs: every exit is banned for good here.
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_BAN_MAX_RETRIES": 2,
            "PROXYSTACK_BAN_MAX_WAIT": 0,
        },
    )
    assert result.pages == []  # no captcha page ever reached the callback
    errors = Counter(e["error"] for e in result.errors)
    assert sum(errors.values()) == 3
    stats = result.proxystack_stats()
    dropped = stats.get("proxystack/requests/dropped/ban", 0) + stats.get(
        "proxystack/requests/dropped/no_exit", 0
    )
    assert dropped == 3
    # Every answer the site gave was a captcha, and each one was judged as such.
    assert stats["proxystack/bans/reason/captcha"] == len(site.requests)
    assert len(site.requests) >= 3
    assert "Dropping ban pages (captcha)" in result.log or "No usable exit" in result.log


def test_retry_after_longer_than_cooldown_is_honoured(world: LoopbackWorld, tmp_path: Path) -> None:
    # The other exit takes 50 ms per request, so the crawl outlasts the 20 ms cool-down many
    # times over: only the 30 s Retry-After keeps the first exit away.
    slow, other = world.add_proxy(5), world.add_proxy(5, mode="slow", delay=0.05)
    site = world.add_site("api", pages=8, ban=BanRule("429", clients={slow.ip}, retry_after=30))
    config = {"locales": {"us": [slow.url, other.url]}, "domains": {site.host: "us"}}
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 9)],
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_STRATEGY": "round_robin",
            "PROXYSTACK_BAN_COOLDOWN": 0.01,
            "PROXYSTACK_BAN_COOLDOWN_CAP": 0.02,
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert len(result.pages) == 8
    assert Counter(r.client_ip for r in site.requests)[slow.ip] == 1
    assert result.stat("proxystack/bans/reason/status_429") == 1
    assert result.stat("proxystack/bans/kind/throttle") == 1
    assert result.stat("proxystack/bans/retry_after_honoured") == 1


def test_rotating_proxies_policy_works_unchanged(world: LoopbackWorld, tmp_path: Path) -> None:
    exits = [world.add_proxy(5), world.add_proxy(5)]
    site = world.add_site("any", pages=3)
    config = {"locales": {"us": [p.url for p in exits]}, "domains": {site.host: "us"}}
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 4)],
        settings={
            "PROXYSTACK_PROXIES": config,
            "ROTATING_PROXY_BAN_POLICY": "tests.test_crawl_bans.PageTwoIsBan",
            "PROXYSTACK_BAN_MAX_WAIT": 0,  # page 2 is refused for good: do not wait for it
        },
    )
    assert sorted(p["url"] for p in result.pages) == [site.url("/page/1"), site.url("/page/3")]
    assert [e["url"] for e in result.errors] == [site.url("/page/2")]
    assert result.stat("proxystack/bans/reason/policy") == 2


def test_dont_ban_check_lets_the_answer_through(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("wall", pages=1, ban=BanRule("captcha"))
    exit_ = world.add_proxy(5)
    result = run_crawl(
        tmp_path,
        urls=[{"url": site.url("/page/1"), "meta": {"proxystack_dont_ban_check": True}}],
        settings={"PROXYSTACK_PROXIES": {"locales": {"us": [exit_.url]}}},
    )
    assert len(result.pages) == 1
    assert "captcha" in result.pages[0]["body"].lower()
    assert "proxystack/bans/reason/captcha" not in result.stats


def test_geo_block_through_a_mislocated_exit(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("presse", lang="fr", countries={"fr"}, geo_block="page", pages=3)
    real, fake = world.add_proxy(1), world.add_proxy(2)  # the "French" list holds a German exit
    config = {"locales": {"fr": [fake.url, real.url]}, "domains": {site.host: "fr"}}
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 4)],
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_STRATEGY": "round_robin",
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert len(result.pages) == 3
    assert_clean(result.pages)
    assert {p["lang"] for p in result.pages} == {"fr"}
    assert Counter(r.country for r in site.requests) == {"fr": 3, "de": 1}
    assert result.stat("proxystack/bans/kind/geo_block") == 1
    assert result.stat("proxystack/bans/reason/region_page") == 1


class ThirdPageIsBan:
    """A policy in the suite's own style: it sees the built-in verdict and may change it."""

    def classify(self, request: Any, response: Any, verdict: Any) -> Any:
        from scrapy_proxystack.bans import BanKind, Verdict

        if request.url.endswith("/page/3"):
            return Verdict(BanKind.BAN, "policy")
        return verdict


def test_custom_policy_and_per_site_rules(world: LoopbackWorld, tmp_path: Path) -> None:
    exits = [world.add_proxy(5), world.add_proxy(5)]
    first, second = world.add_site("first", pages=3), world.add_site("second", pages=3)
    # On the second site only, a page whose text has "(Story 2)" counts as a block page.
    config = {
        "locales": {"us": [p.url for p in exits]},
        "domains": {second.host: {"locale": "us", "bans": {"body_patterns": [r"\(Story 2\)"]}}},
    }
    urls = [s.url(f"/page/{i}") for s in (first, second) for i in range(1, 4)]
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_BAN_POLICY": "tests.test_crawl_bans.ThirdPageIsBan",
            "PROXYSTACK_BAN_MAX_WAIT": 0,  # these pages are refused for good
        },
    )
    assert sorted(p["url"] for p in result.pages) == sorted(
        [first.url("/page/1"), first.url("/page/2"), second.url("/page/1")]
    )
    assert sorted(e["url"] for e in result.errors) == sorted(
        [first.url("/page/3"), second.url("/page/2"), second.url("/page/3")]
    )
    assert result.stat("proxystack/bans/reason/body_pattern") >= 1
    assert result.stat("proxystack/bans/reason/policy") >= 2
