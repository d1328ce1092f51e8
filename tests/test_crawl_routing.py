"""Real crawls through the loopback world: locale routing, fail-closed, health, sessions."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import scrapy

from scrapy_proxystack.routing import route_of
from tests.crawl import run_crawl, write_yaml

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from scrapy_proxystack.testing import LoopbackWorld, Proxy, Site
    from tests.crawl import CrawlResult


def transport_failures(result: CrawlResult, name_part: str) -> int:
    """Transport failures whose exception class name contains ``name_part``.

    (Scrapy 2.19 has its own exception classes where older versions raise Twisted's.)
    """
    prefix = "proxystack/exits/transport_failures/"
    return sum(v for k, v in result.stats.items() if k.startswith(prefix) and name_part in k)


def countries(site: Site) -> Counter[str | None]:
    return Counter(r.country for r in site.requests)


def yaml_for(locales: dict[str, Any], domains: dict[str, Any] | None = None, **extra: Any) -> Any:
    def entry(value: Any) -> Any:
        if isinstance(value, list):
            return {"proxies": [p.url for p in value]}
        return {
            **{k: v for k, v in value.items() if k != "proxies"},
            "proxies": [p.url for p in value["proxies"]],
        }

    return {
        "locales": {name: entry(v) for name, v in locales.items()},
        "domains": domains or {},
        **extra,
    }


def test_each_site_only_sees_its_own_country(world: LoopbackWorld, tmp_path: Path) -> None:
    fr = world.add_site("actu-fr", lang="fr", countries={"fr"}, pages=6)
    de = world.add_site("zeitung-de", lang="de", countries={"de"}, pages=6)
    jp = world.add_site("shimbun-jp", lang="ja", countries={"jp"}, pages=6, tls=True)
    proxies: dict[str, list[Proxy]] = {
        "fr": [world.add_proxy(1, auth=("alice", "fr-pw-1")), world.add_proxy(1)],
        "de": [world.add_proxy(2), world.add_proxy(2)],
        "jp": [world.add_proxy(4), world.add_proxy(4)],
    }
    path = write_yaml(tmp_path, yaml_for(proxies, {fr.host: "fr", de.host: "de", jp.host: "jp"}))
    result = run_crawl(
        tmp_path,
        urls=[fr.url("/"), de.url("/"), jp.url("/")],
        settings={"PROXYSTACK_PROXIES_FILE": str(path)},
        spider_kwargs={"follow": True},
    )
    assert result.errors == []
    fetched = Counter(i["url"] for i in result.pages)
    assert len(fetched) == 3 * 7  # index + 6 pages per site
    sent = {s.name: len(s.requests) for s in (fr, de, jp)}
    assert sum(sent.values()) == len(result.pages)
    assert set(countries(fr)) == {"fr"}
    assert set(countries(de)) == {"de"}
    assert set(countries(jp)) == {"jp"}
    # Accept-Language follows the exit's locale; no request reached a site with proxy auth.
    assert {r.headers.get("accept-language") for r in fr.requests} == {"fr-FR,fr;q=0.9,en;q=0.5"}
    assert {r.headers.get("accept-language") for r in jp.requests} == {"ja-JP,ja;q=0.9,en;q=0.5"}
    assert all("proxy-authorization" not in r.headers for s in (fr, de, jp) for r in s.requests)
    # Both exits of each locale carried traffic, and the page languages match.
    assert all(p.count > 0 for group in proxies.values() for p in group)
    assert {(i["exit_locale"], i["lang"]) for i in result.pages} == {
        ("fr", "fr"),
        ("de", "de"),
        ("jp", "ja"),
    }
    stats = result.proxystack_stats()
    assert stats["proxystack/requests/locale/fr"] == sent["actu-fr"]
    assert stats["proxystack/requests/locale/de"] == sent["zeitung-de"]
    assert stats["proxystack/requests/locale/jp"] == sent["shimbun-jp"]
    assert stats["proxystack/locale/source/domain"] == len(result.pages)
    assert stats["proxystack/exits/configured"] == 6
    assert "proxystack/requests/dropped/no_exit" not in stats
    assert "fr-pw-1" not in result.log
    assert all("fr-pw-1" not in str(v) for v in result.stats.values())


def test_meta_locale_tld_map_and_default(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("open", pages=1)
    es, us = world.add_proxy(3), world.add_proxy(5)
    config = yaml_for({"es": [es], "us": [us]}, default_locale="us")
    result = run_crawl(
        tmp_path,
        urls=[
            {"url": site.url("/page/1"), "meta": {"proxystack_locale": "es"}},
            site.url("/"),
        ],
        settings={"PROXYSTACK_PROXIES": config},
    )
    assert result.errors == []
    by_path = {r.path: r.country for r in site.requests}
    assert by_path == {"/page/1": "es", "/": "us"}
    assert result.stat("proxystack/locale/source/meta") == 1
    assert result.stat("proxystack/locale/source/default") == 1
    # A TLD map applies after domain rules; 127.0.100.x hosts end in ".1" etc., so map that.
    last = site.host.rsplit(".", 1)[1]
    tmp2 = tmp_path / "tld"
    tmp2.mkdir()
    site.clear()
    result = run_crawl(
        tmp2,
        urls=[site.url("/")],
        settings={"PROXYSTACK_PROXIES": config, "PROXYSTACK_TLD_LOCALES": {last: "es"}},
    )
    assert [r.country for r in site.requests] == ["es"]
    assert result.stat("proxystack/locale/source/tld") == 1


def test_unknown_or_dry_locale_fails_closed(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("fr-only", lang="fr", countries={"fr"}, pages=2)
    dead = [world.add_proxy(1, mode="dead"), world.add_proxy(1, mode="dead")]
    other = world.add_proxy(2)
    config = yaml_for({"fr": dead, "de": [other]}, {site.host: "fr"})
    result = run_crawl(
        tmp_path,
        urls=[
            site.url("/page/1"),
            site.url("/page/2"),
            {"url": site.url("/"), "meta": {"proxystack_locale": "xx"}},
        ],
        settings={"PROXYSTACK_PROXIES": config, "PROXYSTACK_EXIT_RETRY_TIMES": 3},
    )
    # Nothing ever reached the site: not directly, not through the German exit.
    assert site.requests == []
    assert other.count == 0
    assert result.pages == []
    errors = {e["url"]: e for e in result.errors}
    assert errors[site.url("/")]["error"] == "ExitUnavailable"
    assert errors[site.url("/")]["reason"] == "unknown_locale"
    assert result.stat("proxystack/requests/no_exit/unknown_locale") == 1
    assert transport_failures(result, "ConnectionRefused") >= 2
    # Every request is accounted for: dropped by the suite or failed after its retries.
    assert len(result.errors) == 3
    assert "No usable exit for locale 'xx'" in result.log


def test_fallback_chain_is_followed_in_order(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("eu-news", lang="fr", countries={"fr", "de", "es"}, pages=4)
    fr = [world.add_proxy(1, mode="dead")]
    de = [world.add_proxy(2)]
    es = [world.add_proxy(3)]
    config = yaml_for(
        {"fr": {"proxies": fr, "fallback": ["de", "es"]}, "de": de, "es": es},
        {site.host: "fr"},
        # one failure ejects the only French exit; panic mode would keep using it
    )
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 5)],
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_MAX_EJECTION_SHARE": 1.0,
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert len(result.pages) == 4
    assert countries(site) == {"de": 4}  # de comes before es in the chain
    assert es[0].count == 0
    assert result.stat("proxystack/requests/fallback/de") >= 4
    assert result.stat("proxystack/exits/ejected") == 1


def test_failing_proxies_are_ejected_and_pages_still_fetched(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    site = world.add_site("news", pages=12)
    good, slow = world.add_proxy(5), world.add_proxy(5, mode="slow", delay=0.3)
    bad = [
        world.add_proxy(5, mode="dead"),
        world.add_proxy(5, mode="blackhole"),
        world.add_proxy(5, mode="flaky", fail_rate=1.0),
        world.add_proxy(5, auth=("bob", "right-pw")),
        world.add_proxy(5, die_after=2),
    ]
    urls = bad[3].url.replace("right-pw", "wrong-pw")
    entries = [good.url, slow.url, *[p.url for p in bad[:3]], urls, bad[4].url]
    config = {"locales": {"us": entries}, "domains": {site.host: "us"}}
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 13)],
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_MAX_EJECTION_SHARE": 1.0,
            "PROXYSTACK_STRATEGY": "round_robin",
            "PROXYSTACK_EXIT_RETRY_TIMES": 6,
            "DOWNLOAD_TIMEOUT": 3,
        },
    )
    assert result.errors == []
    assert sorted(i["url"] for i in result.pages) == sorted(
        site.url(f"/page/{i}") for i in range(1, 13)
    )
    assert set(countries(site)) == {"us"}
    assert slow.count >= 1  # slow but healthy: it keeps serving
    stats = result.proxystack_stats()
    failures = {k.rsplit("/", 1)[1] for k in stats if "/transport_failures/" in k}
    assert "status_407" in failures
    assert any("ConnectionRefused" in f for f in failures)
    assert any("Timeout" in f for f in failures)
    # Refused connections and 407 can only be the proxy's: ejected. A black hole and a proxy
    # that resets only fail this one site, as far as the crawl can tell: those pairs rest.
    assert stats["proxystack/exits/ejected"] >= 3
    assert "wrong-pw" not in result.log
    assert "right-pw" not in result.log


def test_user_proxy_is_respected_and_counted(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("open", pages=1)
    mine, pooled = world.add_proxy(6), world.add_proxy(5)
    result = run_crawl(
        tmp_path,
        urls=[{"url": site.url("/"), "meta": {"proxy": mine.url}}, site.url("/page/1")],
        settings={"PROXYSTACK_PROXIES": yaml_for({"us": [pooled]})},
    )
    assert {r.path: r.country for r in site.requests} == {"/": "br", "/page/1": "us"}
    assert result.stat("proxystack/requests/user_proxy") == 1


def test_sticky_session_pins_one_exit_until_banned(world: LoopbackWorld, tmp_path: Path) -> None:
    from scrapy_proxystack.testing import BanRule

    site = world.add_site("shop", pages=8)
    exits = [world.add_proxy(5) for _ in range(3)]
    # Whichever exit the session gets, it is banned after its 3rd page.
    site.ban = BanRule("403", after=3)
    urls = [
        {"url": site.url(f"/page/{i}"), "meta": {"proxystack_session": "basket"}}
        for i in range(1, 7)
    ]
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={"PROXYSTACK_PROXIES": yaml_for({"us": exits}), "CONCURRENT_REQUESTS": 1},
    )
    clients = {r.client_ip for r in site.requests}
    assert len(clients) == 1  # never silently changed IP mid-session
    assert len(result.pages) == 3
    assert [e["error"] for e in result.errors].count("BannedResponse") == 1
    retired = [e for e in result.errors if e["error"] == "SessionRetired"]
    assert len(retired) == 2
    assert all(e["session_retired"] == "banned" for e in retired)
    assert result.stat("proxystack/sessions/retired/banned") == 1
    assert result.stat("proxystack/sessions/refused") == 1


def test_migration_from_rotating_proxies_settings_only(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    site = world.add_site("legacy", pages=4)
    proxies = [world.add_proxy(5), world.add_proxy(5), world.add_proxy(5, mode="dead")]
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 5)],
        settings={
            "DOWNLOADER_MIDDLEWARES": {
                "rotating_proxies.middlewares.RotatingProxyMiddleware": 610,
                "rotating_proxies.middlewares.BanDetectionMiddleware": 620,
            },
            "ROTATING_PROXY_LIST": [p.url_without_auth.removeprefix("http://") for p in proxies],
            "ROTATING_PROXY_PAGE_RETRY_TIMES": 4,
        },
    )
    assert len(result.pages) == 4
    assert set(countries(site)) == {"us"}
    assert result.stat("proxystack/requests/locale/none") >= 4
    assert "RotatingProxyMiddleware is disabled" in result.log
    assert "as the pool with no locale" in result.log
    assert "rotating_proxies" not in "".join(k for k in result.stats if k.startswith("proxies/"))


def test_close_on_empty_locale_stops_the_crawl(world: LoopbackWorld, tmp_path: Path) -> None:
    from scrapy_proxystack.testing import BanRule

    site = world.add_site("wall", pages=30, ban=BanRule("403"))
    exits = [world.add_proxy(5), world.add_proxy(5)]
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 31)],
        settings={
            "PROXYSTACK_PROXIES": yaml_for({"us": exits}),
            "PROXYSTACK_CLOSE_ON_EMPTY_LOCALE": True,
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert result.close_reason == "proxystack_no_exit"
    assert result.pages == []
    assert len(site.requests) == 2  # each exit was refused once; then the locale ran dry
    assert result.stat("proxystack/requests/no_exit/all_banned") >= 1
    assert "Closing the crawl: proxystack_no_exit" in result.log


def test_adaptive_timeout_makes_a_black_hole_cheap(world: LoopbackWorld, tmp_path: Path) -> None:
    site = world.add_site("news", pages=6)
    good, hole = world.add_proxy(5), world.add_proxy(5, mode="blackhole")
    started = time.monotonic()
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 7)],
        settings={
            "PROXYSTACK_PROXIES": yaml_for({"us": [good, hole]}),
            "PROXYSTACK_STRATEGY": "round_robin",
            "PROXYSTACK_ADAPTIVE_TIMEOUT_MIN": 0.5,
            "PROXYSTACK_MAX_EJECTION_SHARE": 1.0,
            "DOWNLOAD_TIMEOUT": 60,
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert len(result.pages) == 6
    assert hole.count >= 1
    stats = result.proxystack_stats()
    assert any("Timeout" in k for k in stats if "/transport_failures/" in k)
    # One black-hole attempt cost about 0.5 s instead of DOWNLOAD_TIMEOUT's 60 s.
    assert time.monotonic() - started < 20


def test_a_dead_locale_is_loud_and_every_drop_is_counted(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    site = world.add_site("news", pages=4)
    dead = [world.add_proxy(5, mode="dead"), world.add_proxy(5, mode="dead")]
    result = run_crawl(
        tmp_path,
        urls=[site.url(f"/page/{i}") for i in range(1, 5)],
        settings={
            "PROXYSTACK_PROXIES": yaml_for({"us": dead}, {site.host: "us"}),
            "PROXYSTACK_MAX_EJECTION_SHARE": 1.0,
            "PROXYSTACK_EXIT_RETRY_TIMES": 3,
            "CONCURRENT_REQUESTS": 1,
        },
    )
    assert result.pages == []
    assert site.requests == []
    stats = result.proxystack_stats()
    # Both exits refuse connections: ejected, then used in panic mode, never around them.
    assert stats["proxystack/requests/panic/us"] >= 1
    assert "panic mode" in result.log
    assert stats["proxystack/locales/dry/us"] == 1
    assert "Locale us ran dry" in result.log
    # Every request is accounted for, with its reason.
    assert len(result.errors) == 4
    assert stats["proxystack/requests/dropped/transport"] == 4
    assert "Proxy exits by locale at close" in result.log


def test_other_schemes_fail_closed_and_dont_retry_is_honoured(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    site = world.add_site("news", pages=2)
    dead = [world.add_proxy(5, mode="dead") for _ in range(3)]
    result = run_crawl(
        tmp_path,
        urls=[
            # Scrapy's FTP handler ignores meta["proxy"]: it would connect directly.
            {"url": f"ftp://{site.host}/file.txt", "meta": {"proxystack_locale": "us"}},
            {"url": site.url("/page/1"), "meta": {"dont_retry": True}},
        ],
        settings={
            "PROXYSTACK_PROXIES": yaml_for({"us": dead}, {site.host: "us"}),
            "RETRY_ENABLED": False,
        },
    )
    errors = {e["url"]: e for e in result.errors}
    assert errors[f"ftp://{site.host}/file.txt"]["reason"] == "unsupported_scheme"
    assert result.stat("proxystack/requests/no_exit/unsupported_scheme") == 1
    assert sum(p.count for p in dead) == 0  # refused connections are not counted by proxies
    assert transport_failures(result, "ConnectionRefused") == 1
    assert "proxystack/retry/transport/count" not in result.stats


def test_cached_answers_say_nothing_about_exits(world: LoopbackWorld, tmp_path: Path) -> None:
    from scrapy_proxystack.testing import BanRule

    site = world.add_site("cached", pages=3)
    exits = [world.add_proxy(5), world.add_proxy(5)]
    settings = {
        "PROXYSTACK_PROXIES": yaml_for({"us": exits}, {site.host: "us"}),
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": str(tmp_path / "cache"),
    }
    urls = [site.url(f"/page/{i}") for i in range(1, 4)]
    first = tmp_path / "first"
    first.mkdir()
    assert len(run_crawl(first, urls=urls, settings=settings).pages) == 3
    sent = sum(p.count for p in exits)
    site.ban = BanRule("403")  # if anything reached the site now, it would be a ban
    second = tmp_path / "second"
    second.mkdir()
    result = run_crawl(second, urls=urls, settings=settings)
    assert len(result.pages) == 3
    assert sum(p.count for p in exits) == sent  # all from the cache
    assert not any(k.startswith("proxystack/bans/") for k in result.stats)
    assert "proxystack/responses/locale/us" not in result.stats


class FollowWithMetaSpider(scrapy.Spider):
    """Follows each page with ``meta=dict(response.meta, ...)``, as many spiders do."""

    name = "follow_meta"

    def __init__(self, urls: list[Any], then: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls, self.then = urls, then

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for spec in self.urls:
            yield scrapy.Request(spec["url"], meta=spec["meta"], dont_filter=True)

    def parse(self, response: Any) -> Iterator[Any]:
        yield {"url": response.url, "exit_locale": route_of(response).exit_locale}
        if response.url != self.then:
            meta = dict(response.meta, proxystack_locale="de", proxystack_session="s1")
            yield scrapy.Request(self.then, meta=meta, dont_filter=True)


def test_copied_meta_is_routed_afresh(world: LoopbackWorld, tmp_path: Path) -> None:
    first, second = world.add_site("first", pages=1), world.add_site("second", pages=1)
    fr, de = world.add_proxy(1), world.add_proxy(2)
    result = run_crawl(
        tmp_path,
        urls=[{"url": first.url("/page/1"), "meta": {"proxystack_locale": "fr"}}],
        spider="tests.test_crawl_routing.FollowWithMetaSpider",
        spider_kwargs={"then": second.url("/page/1")},
        settings={"PROXYSTACK_PROXIES": yaml_for({"fr": [fr], "de": [de]})},
    )
    # The follow-up asked for another locale (and a session) in meta copied from a response
    # that carried the French exit: it leaves through the German one, as asked.
    assert [r.country for r in second.requests] == ["de"]
    assert {i["url"]: i["exit_locale"] for i in result.items} == {
        first.url("/page/1"): "fr",
        second.url("/page/1"): "de",
    }
    assert "proxystack/sessions/retired/tried" not in result.stats
