"""Real crawls through real loopback SOCKS5 exits, beside HTTP exits, to real loopback sites."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import TYPE_CHECKING

from scrapy_proxystack.testing import BanRule
from tests.crawl import run_crawl, write_yaml
from tests.test_crawl_bans import assert_clean
from tests.test_crawl_throttle import DEPARTURE_SLACK, departures

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_proxystack.testing import LoopbackWorld

ODD_USER = "us:er@x y"
ODD_PASSWORD = "p@:/%# é-пароль/"


def test_a_locale_mixing_socks_and_http_exits(world: LoopbackWorld, tmp_path: Path) -> None:
    fr = world.add_site("actu-fr", lang="fr", countries={"fr"}, pages=8)
    fr_tls = world.add_site("banque-fr", lang="fr", countries={"fr"}, pages=8, tls=True)
    de = world.add_site("zeitung-de", lang="de", countries={"de"}, pages=3)
    socks_odd = world.add_socks_proxy(1, auth=(ODD_USER, ODD_PASSWORD))
    socks_open = world.add_socks_proxy(1)
    http_fr = world.add_proxy(1, auth=("alice", "http-secret"))
    socks_de = world.add_socks_proxy(2, auth=("bob", "de/secret"))
    data = {
        "locales": {
            "fr": {"proxies": [socks_odd.url, socks_open.url, http_fr.url], "strategy": "random"},
            "de": [socks_de.url],
        },
        "domains": {fr.host: "fr", fr_tls.host: "fr", de.host: "de"},
    }
    result = run_crawl(
        tmp_path,
        urls=[fr.url("/"), fr_tls.url("/"), de.url("/")],
        settings={"PROXYSTACK_PROXIES_FILE": str(write_yaml(tmp_path, data))},
        spider_kwargs={"follow": True},
    )
    assert result.errors == []
    assert len({i["url"] for i in result.pages}) == 9 + 9 + 4
    # Every page from the right country, HTTPS included, and the page language matches.
    assert {r.country for s in (fr, fr_tls) for r in s.requests} == {"fr"}
    assert {r.country for r in de.requests} == {"de"}
    assert {(i["exit_locale"], i["lang"]) for i in result.pages} == {("fr", "fr"), ("de", "de")}
    # Both kinds of exit carried French traffic; the SOCKS ones authenticated (RFC 1929).
    assert min(socks_odd.count, socks_open.count, http_fr.count) > 0
    assert {r.user for r in socks_odd.socks_requests} == {ODD_USER}
    assert {r.user for r in socks_open.socks_requests} == {None}
    assert {r.user for r in socks_de.socks_requests} == {"bob"}
    assert sum(p.count for p in (socks_odd, socks_open, http_fr)) == len(fr.requests) + len(
        fr_tls.requests
    )
    # No site ever saw a Proxy-Authorization header, and no secret reached any output.
    assert all("proxy-authorization" not in r.headers for s in world.sites for r in s.requests)
    outputs = result.log + repr(result.stats) + repr(result.items)
    for secret in (ODD_PASSWORD, "de/secret", "http-secret", "p%40%3A%2F"):
        assert secret not in outputs
    stats = result.proxystack_stats()
    assert stats["proxystack/requests/locale/fr"] == len(fr.requests) + len(fr_tls.requests)
    assert stats["proxystack/requests/locale/de"] == len(de.requests)
    assert stats["proxystack/exits/configured"] == 4
    assert not any("transport_failures" in k or "dropped" in k for k in stats)


def test_names_are_resolved_by_the_exit_never_locally(world: LoopbackWorld, tmp_path: Path) -> None:
    # One name, a French and a German site behind it: which one a request gets depends on
    # where the name is resolved. The system resolver does not know the name at all.
    news_fr = world.add_site("news-fr", lang="fr", countries={"fr"})
    news_de = world.add_site("news-de", lang="de", countries={"de"})
    shop_fr = world.add_site("shop-fr", lang="fr", countries={"fr"}, tls=True)
    shop_de = world.add_site("shop-de", lang="de", countries={"de"}, tls=True)
    world.add_name("news.proxystack.test", {"fr": news_fr, "de": news_de})
    world.add_name("shop.proxystack.test", {"fr": shop_fr, "de": shop_de})
    exit_fr = world.add_socks_proxy(1, auth=("fr-user", "fr/pw"))
    exit_de = world.add_socks_proxy(2)
    data = {"locales": {"fr": [exit_fr.url], "de": [exit_de.url.replace("socks5h", "socks5")]}}
    urls = [
        {"url": f"{scheme}://{name}.proxystack.test/", "meta": {"proxystack_locale": locale}}
        for scheme, name in (("http", "news"), ("https", "shop"))
        for locale in ("fr", "de")
    ]
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={"PROXYSTACK_PROXIES_FILE": str(write_yaml(tmp_path, data))},
        record_lookups=True,
    )
    assert result.errors == []
    assert Counter((i["url"].split("/")[2], i["lang"]) for i in result.pages) == {
        ("news.proxystack.test", "fr"): 1,
        ("news.proxystack.test", "de"): 1,
        ("shop.proxystack.test", "fr"): 1,
        ("shop.proxystack.test", "de"): 1,
    }
    # The exits were asked for names (address type 3), socks5:// as well as socks5h://...
    asked = [(r.address_type, r.host, r.port) for p in (exit_fr, exit_de) for r in p.socks_requests]
    assert sorted(asked) == [
        ("domain", "news.proxystack.test", 80),
        ("domain", "news.proxystack.test", 80),
        ("domain", "shop.proxystack.test", 443),
        ("domain", "shop.proxystack.test", 443),
    ]
    # ... and the crawler's machine never looked them up.
    assert not [name for name in result.lookups if "proxystack.test" in name]
    assert {len(s.requests) for s in (news_fr, news_de, shop_fr, shop_de)} == {1}


def test_socks_failures_are_transport_failures_of_the_exit(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    # One locale per failing exit, no retries: each failure is counted exactly once.
    site = world.add_site("shop")
    exits = {
        "general": world.add_socks_proxy(1, reply=0x01),
        "refused": world.add_socks_proxy(1, reply=0x05),
        "ttl": world.add_socks_proxy(1, reply=0x06),
        "auth": world.add_socks_proxy(1, auth=("carol", "right")),
        "silent": world.add_socks_proxy(1, mode="blackhole"),
        "dead": world.add_socks_proxy(1, mode="dead"),
    }
    urls = {name: proxy.url for name, proxy in exits.items()}
    urls["auth"] = urls["auth"].replace("carol:right@", "carol:wr%2Fong@")
    data = {"locales": {name: [url] for name, url in urls.items()}}
    result = run_crawl(
        tmp_path,
        urls=[
            {"url": site.url(f"/?{name}"), "meta": {"proxystack_locale": name, "dont_retry": True}}
            for name in exits
        ],
        settings={
            "PROXYSTACK_PROXIES_FILE": str(write_yaml(tmp_path, data)),
            "DOWNLOAD_TIMEOUT": 2,
        },
    )
    assert len(result.errors) == len(exits)
    assert site.requests == []
    failures = {
        k.rpartition("/")[2]: v
        for k, v in result.proxystack_stats().items()
        if k.startswith("proxystack/exits/transport_failures/")
    }
    assert failures == {
        "socks_reply_01": 1,
        "socks_reply_05": 1,
        "socks_reply_06": 1,
        "socks_auth_refused": 1,
        "socks_handshake_timeout": 1,
        "DownloadConnectionRefusedError": 1,
    }
    # Only the exit can be at fault for a general failure, refused credentials, silence or a
    # closed port: ejected. Refused/TTL expired may be the site's fault: charged to the pair.
    assert result.stat("proxystack/exits/ejected") == 4
    assert "wr/ong" not in result.log
    assert "refuses the credentials" in result.log


def test_bans_ejections_and_the_site_rate_apply_to_socks_exits(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    banned = world.add_socks_proxy(5, auth=("ban", "ned"))
    good = world.add_socks_proxy(5)
    dead = world.add_socks_proxy(5, mode="dead")
    http = world.add_proxy(5)
    strict = world.add_site("strict", pages=10, ban=BanRule("captcha", clients={banned.ip}))
    lenient = world.add_site("lenient", pages=6)
    config = {
        "locales": {"us": [banned.url, good.url, dead.url, http.url]},
        "domains": {strict.host: {"locale": "us", "rate": 10, "burst": 1}, lenient.host: "us"},
    }
    urls = [strict.url(f"/page/{i}") for i in range(1, 11)]
    urls += [lenient.url(f"/page/{i}") for i in range(1, 7)]
    result = run_crawl(
        tmp_path,
        urls=urls,
        settings={
            "PROXYSTACK_PROXIES": config,
            "PROXYSTACK_STRATEGY": "round_robin",
            "CONCURRENT_REQUESTS": 4,
        },
    )
    assert result.errors == []
    assert sorted(p["url"] for p in result.pages) == sorted(urls)
    assert_clean(result.pages)
    stats = result.proxystack_stats()
    # The ban is scoped to (SOCKS exit, site): refused once by the strict site, never sent
    # there again, still serving the lenient one.
    strict_clients = Counter(r.client_ip for r in strict.requests)
    assert strict_clients[banned.ip] == 1
    assert stats["proxystack/bans/reason/captcha"] == 1
    assert stats["proxystack/retry/ban/count"] == 1
    assert Counter(r.client_ip for r in lenient.requests)[banned.ip] >= 1
    # The dead SOCKS exit is ejected after its first refused connection.
    assert stats["proxystack/exits/transport_failures/DownloadConnectionRefusedError"] == 1
    assert stats["proxystack/exits/ejected"] == 1
    # The strict site's rate (10/s, burst 1) holds over SOCKS and HTTP exits together.
    assert {good.ip, http.ip} <= set(strict_clients)
    sent = departures(result, strict)  # when they left (the site sees them a little later)
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 0.1 - DEPARTURE_SLACK
