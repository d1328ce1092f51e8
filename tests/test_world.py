"""The loopback world: real sites and proxies on 127.0.0.0/8, driven with plain sockets."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import phonenumbers
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scrapy_proxystack.testing import BAN_FORMS, DEFAULT_REGIONS, BanRule, LoopbackWorld
from scrapy_proxystack.testing import content as site_content
from scrapy_proxystack.testing._http import loopback_literal

if TYPE_CHECKING:
    from scrapy_proxystack.testing import Proxy


LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")

# -- client helpers ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def fetch(
    url: str,
    *,
    proxy: Proxy | None = None,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 5.0,
    context: ssl.SSLContext | None = None,
) -> Reply:
    """One request with http.client, through ``proxy`` when given (CONNECT for https)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    request_headers = dict(headers or {})
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        ctx = context or unverified()
        if proxy is None:
            conn = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=timeout, context=ctx
            )
        else:
            conn = http.client.HTTPSConnection(proxy.ip, proxy.port, timeout=timeout, context=ctx)
            tunnel_headers = {"Proxy-Authorization": basic(*auth)} if auth else None
            conn.set_tunnel(parts.hostname, parts.port, headers=tunnel_headers)
        target = path
    elif proxy is None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        target = path
    else:
        conn = http.client.HTTPConnection(proxy.ip, proxy.port, timeout=timeout)
        target = url
        if auth:
            request_headers["Proxy-Authorization"] = basic(*auth)
    try:
        conn.request(method, target, headers=request_headers)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def raw_exchange(ip: str, port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until the server closes."""
    with socket.create_connection((ip, port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def attempt(url: str, proxy: Proxy, timeout: float = 5.0) -> int | None:
    """Status of a proxied GET, or None when the connection failed."""
    try:
        return fetch(url, proxy=proxy, timeout=timeout).status
    except (OSError, http.client.HTTPException):
        return None


# -- addressing --------------------------------------------------------------------------------


def test_addresses_follow_the_plan(world: LoopbackWorld) -> None:
    first = world.add_site("first")
    second = world.add_site("second", tls=True)
    p21 = world.add_proxy(2)
    p22 = world.add_proxy(2, auth=("user", "p@ss"))
    p51 = world.add_proxy(5)
    assert (first.host, second.host) == ("127.0.100.1", "127.0.100.2")
    assert first.base_url == f"http://127.0.100.1:{first.port}"
    assert second.base_url.startswith("https://127.0.100.2:")
    assert first.url("/page/1") == f"{first.base_url}/page/1"
    assert (p21.ip, p22.ip, p51.ip) == ("127.0.2.1", "127.0.2.2", "127.0.5.1")
    assert (p21.region, p21.country, p51.country) == (2, "de", "us")
    assert p21.url == p21.url_without_auth == f"http://127.0.2.1:{p21.port}"
    assert p22.url == f"http://user:p%40ss@127.0.2.2:{p22.port}"
    assert world.site("second") is second
    assert world.proxies == (p21, p22, p51)


def test_country_of(world: LoopbackWorld) -> None:
    assert world.country_of("127.0.1.7") == "fr"
    assert world.country_of("127.0.8.1") == "gb"
    assert world.country_of("127.0.0.1") is None
    assert world.country_of("127.0.100.1") is None
    assert world.country_of("127.0.9.1") is None
    assert world.country_of("127.1.1.1") is None
    assert world.country_of("10.0.1.1") is None
    assert world.country_of("not an ip") is None


@given(st.ip_addresses(v=4))
def test_only_loopback_ipv4_literals_are_allowed_destinations(
    address: ipaddress.IPv4Address,
) -> None:
    assert (loopback_literal(str(address)) is not None) == (address in LOOPBACK)
    assert LoopbackWorld(max_lifetime=1).country_of(str(address)) in (
        None,
        *DEFAULT_REGIONS.values(),
    )


@given(st.text(max_size=30))
def test_no_text_but_a_dotted_quad_is_an_allowed_destination(host: str) -> None:
    allowed = loopback_literal(host)
    assert allowed is None or ipaddress.IPv4Address(allowed) in LOOPBACK
    if allowed is not None:
        assert host == allowed


def test_regions_are_validated() -> None:
    with pytest.raises(ValueError, match="region 100"):
        LoopbackWorld(regions={100: "fr"})
    with pytest.raises(ValueError, match="region 0"):
        LoopbackWorld(regions={0: "fr"})
    world = LoopbackWorld(regions={3: "FR"})
    assert world.country_of("127.0.3.1") == "fr"
    with pytest.raises(ValueError, match="region 1 is not one of"):
        world.add_proxy(1)
    world.stop()


def test_site_sees_the_proxy_address_and_country(world: LoopbackWorld) -> None:
    site = world.add_site("echo")
    proxy = world.add_proxy(4)
    data = json.loads(fetch(site.url("/echo"), proxy=proxy).body)
    assert data["client_ip"] == "127.0.4.1"
    assert data["country"] == "jp"
    direct = json.loads(fetch(site.url("/echo")).body)
    assert direct["country"] is None
    assert direct["client_ip"] == "127.0.0.1"
    assert [(r.client_ip, r.country, r.path, r.status) for r in site.requests] == [
        ("127.0.4.1", "jp", "/echo", 200),
        ("127.0.0.1", None, "/echo", 200),
    ]
    assert proxy.count == 1
    assert proxy.requests[0][1:] == ("GET", site.url("/echo"))


def test_sites_and_proxies_added_before_start() -> None:
    world = LoopbackWorld(max_lifetime=30)
    site = world.add_site("early")
    proxy = world.add_proxy(1)
    url = site.url("/")
    with world:
        assert fetch(url, proxy=proxy).status == 200
    assert not world.running


# -- content -----------------------------------------------------------------------------------


def test_index_and_pages(world: LoopbackWorld) -> None:
    site = world.add_site("La Gazette", lang="fr", pages=3)
    index = fetch(site.url("/"))
    assert index.status == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.headers["connection"] == "close"
    assert re.findall(r'href="(/page/\d+)"', index.text) == ["/page/1", "/page/2", "/page/3"]
    page = fetch(site.url("/page/1")).text
    assert '<html lang="fr">' in page
    assert "<title>" in page
    assert site.email == "contact@la-gazette.test"
    assert site.email in page
    assert "01 23 45 67 89" in page
    assert 'href="/page/2"' in page
    assert 'href="/page/4"' not in fetch(site.url("/page/3")).text
    assert fetch(site.url("/page/4")).status == 404
    assert fetch(site.url("/nowhere")).status == 404
    head = fetch(site.url("/page/2"), method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["content-length"]) > 500


@pytest.mark.parametrize("lang", site_content.LANGUAGES)
def test_every_language_has_text_and_valid_pii(lang: str) -> None:
    page = site_content.page("Shop", lang, 1, 2).decode()
    assert f'<html lang="{lang}">' in page
    assert "contact@shop.test" in page
    number, region = site_content.phone_number(lang)
    assert number in page
    assert phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    region_page = site_content.region_page("Shop", lang).decode()
    assert f'<html lang="{lang}">' in region_page
    assert 'class="geo-block"' in region_page


def test_unknown_language_is_refused(world: LoopbackWorld) -> None:
    with pytest.raises(ValueError, match="no built-in text"):
        world.add_site("x", lang="tlh")
    assert world.add_site("y", lang="pt-BR").phone == "(11) 3456-7890"


@pytest.mark.parametrize("size", [4000, 50_000])
def test_page_size_pads_pages(world: LoopbackWorld, size: int) -> None:
    site = world.add_site("big", lang="ja", page_size=size)
    body = fetch(site.url("/page/1")).body
    assert size - 10 <= len(body) <= size + 10
    assert body.rstrip().endswith(b"</html>")


def test_robots_txt(world: LoopbackWorld) -> None:
    plain = world.add_site("plain")
    slow = world.add_site("slow", crawl_delay=2)
    slower = world.add_site("slower", crawl_delay=0.5, countries={"fr"})
    assert fetch(plain.url("/robots.txt")).text == "User-agent: *\nAllow: /\n"
    assert "Crawl-delay: 2\n" in fetch(slow.url("/robots.txt")).text
    # robots.txt is never geo-blocked, banned or rate limited.
    assert "Crawl-delay: 0.5\n" in fetch(slower.url("/robots.txt")).text


# -- TLS ---------------------------------------------------------------------------------------


def test_connect_tunnel_to_a_tls_site(world: LoopbackWorld) -> None:
    site = world.add_site("secure", tls=True, lang="de")
    proxy = world.add_proxy(2, auth=("user", "pass"))
    reply = fetch(site.url("/echo"), proxy=proxy, auth=("user", "pass"))
    assert reply.status == 200
    data = json.loads(reply.body)
    assert (data["client_ip"], data["country"]) == ("127.0.2.1", "de")
    assert "proxy-authorization" not in data["headers"]
    assert '<html lang="de">' in fetch(site.url("/page/1"), proxy=proxy, auth=("user", "pass")).text
    assert proxy.requests[0][1:] == ("CONNECT", f"{site.host}:{site.port}")
    with pytest.raises(OSError, match="407"):
        fetch(site.url("/"), proxy=proxy)


def test_tls_certificate_verifies_with_its_pem(world: LoopbackWorld) -> None:
    site = world.add_site("secure", tls=True)
    context = ssl.create_default_context(cadata=world.tls_certificate_pem.decode())
    assert fetch(site.url("/"), context=context).status == 200


# -- proxies -----------------------------------------------------------------------------------


def test_proxy_authentication(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1, auth=("user", "pass"))
    missing = fetch(site.url("/"), proxy=proxy)
    assert missing.status == 407
    assert missing.headers["proxy-authenticate"] == 'Basic realm="loopback"'
    assert fetch(site.url("/"), proxy=proxy, auth=("user", "wrong")).status == 407
    assert (
        fetch(site.url("/"), proxy=proxy, headers={"Proxy-Authorization": "Bearer x"}).status == 407
    )
    assert fetch(site.url("/"), proxy=proxy, auth=("user", "pass")).status == 200
    assert len(site.requests) == 1
    assert proxy.count == 4


def test_proxy_authorization_is_never_forwarded(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1, auth=("user", "pass"))
    fetch(site.url("/echo"), proxy=proxy, auth=("user", "pass"))
    assert all("proxy-authorization" not in r.headers for r in site.requests)
    # The site records the header when it does arrive, so the assertion above means something.
    fetch(site.url("/echo"), headers={"Proxy-Authorization": basic("user", "pass")})
    assert "proxy-authorization" in site.requests[-1].headers


def test_hop_by_hop_headers_are_dropped(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1)
    headers = {
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "1",
        "Keep-Alive": "5",
        "X-Kept": "y",
    }
    seen = json.loads(fetch(site.url("/echo?q=1"), proxy=proxy, headers=headers).body)["headers"]
    assert seen["connection"] == "close"
    assert "x-secret" not in seen
    assert "keep-alive" not in seen
    assert seen["x-kept"] == "y"
    assert site.requests[-1].path == "/echo?q=1"


@pytest.mark.parametrize(
    ("anonymity", "forwarded_for", "via"),
    [
        ("transparent", "127.0.0.1", "1.1 loopback-proxy"),
        ("anonymous", None, "1.1 loopback-proxy"),
        ("elite", None, None),
    ],
)
def test_anonymity_levels(
    world: LoopbackWorld, anonymity: str, forwarded_for: str | None, via: str | None
) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(3, anonymity=anonymity)  # type: ignore[arg-type]
    seen = json.loads(fetch(site.url("/echo"), proxy=proxy).body)["headers"]
    assert seen.get("x-forwarded-for") == forwarded_for
    assert seen.get("via") == via


def test_dead_proxy_refuses_connections(world: LoopbackWorld) -> None:
    proxy = world.add_proxy(1, mode="dead")
    assert not proxy.alive
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.ip, proxy.port), timeout=2).close()


def test_blackhole_proxy_never_answers(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1, mode="blackhole")
    with socket.create_connection((proxy.ip, proxy.port), timeout=0.3) as sock:
        sock.sendall(f"GET {site.url('/')} HTTP/1.1\r\nHost: {site.host}\r\n\r\n".encode())
        with pytest.raises(TimeoutError):
            sock.recv(100)
    assert site.requests == []


def test_slow_proxy_waits(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1, mode="slow", delay=0.3)
    start = time.monotonic()
    assert fetch(site.url("/"), proxy=proxy).status == 200
    assert time.monotonic() - start >= 0.3


def test_flaky_proxy_fails_about_fail_rate_deterministically(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    first = world.add_proxy(1, mode="flaky", fail_rate=0.5, seed=7)
    second = world.add_proxy(1, mode="flaky", fail_rate=0.5, seed=7)
    outcomes = [attempt(site.url("/"), first) for _ in range(40)]
    assert set(outcomes) == {200, None}
    assert 10 <= outcomes.count(None) <= 30
    assert [attempt(site.url("/"), second) for _ in range(40)] == outcomes
    assert len(site.requests) == 2 * outcomes.count(200)


def test_die_after_stops_listening_then_revives(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1, mode="die_after", die_after=3)
    assert [attempt(site.url("/"), proxy) for _ in range(3)] == [200, 200, 200]
    states = [proxy.alive]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.ip, proxy.port), timeout=2).close()
    proxy.revive()
    states.append(proxy.alive)
    assert states == [False, True]
    assert [attempt(site.url("/"), proxy) for _ in range(4)] == [200, 200, 200, None]


def test_kill_resets_open_connections_and_revive_restores(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    proxy = world.add_proxy(1, delay=5.0)
    port = proxy.port
    with socket.create_connection((proxy.ip, proxy.port), timeout=3) as sock:
        sock.sendall(f"GET {site.url('/')} HTTP/1.1\r\nHost: {site.host}\r\n\r\n".encode())
        time.sleep(0.1)
        start = time.monotonic()
        proxy.kill()
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
        assert time.monotonic() - start < 1
    assert not proxy.alive
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.ip, proxy.port), timeout=2).close()
    proxy.delay = 0.0
    proxy.revive()
    assert proxy.port == port
    assert fetch(site.url("/"), proxy=proxy).status == 200


def test_unreachable_loopback_destination_is_a_bad_gateway(world: LoopbackWorld) -> None:
    proxy = world.add_proxy(1)
    dead = world.add_proxy(2, mode="dead")  # a loopback port nobody listens on
    assert fetch(f"http://{dead.ip}:{dead.port}/", proxy=proxy).status == 502


@pytest.mark.parametrize(
    "request_head",
    [
        "GET http://10.0.0.1/ HTTP/1.1\r\nHost: 10.0.0.1",
        "GET http://10.0.0.1:8080/page HTTP/1.1\r\nHost: 10.0.0.1:8080",
        "CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443",
        "GET http://example.com/ HTTP/1.1\r\nHost: example.com",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443",
        "GET http://localhost:8080/ HTTP/1.1\r\nHost: localhost",
        "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443",
        "GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080",
        "GET http://127.1:8080/ HTTP/1.1\r\nHost: 127.1",
        "GET http://0x7f000001:8080/ HTTP/1.1\r\nHost: 0x7f000001",
        "GET http://127.0.0.1.example.com/ HTTP/1.1\r\nHost: 127.0.0.1.example.com",
    ],
)
def test_destinations_outside_loopback_are_refused(world: LoopbackWorld, request_head: str) -> None:
    proxy = world.add_proxy(1, auth=("user", "pass"))  # refused even before authentication
    start = time.monotonic()
    raw = raw_exchange(proxy.ip, proxy.port, (request_head + "\r\n\r\n").encode())
    assert status_of(raw) == 403
    assert time.monotonic() - start < 1
    assert proxy.upstream_connections == 0


def test_origin_form_requests_are_not_proxied(world: LoopbackWorld) -> None:
    proxy = world.add_proxy(1)
    raw = raw_exchange(proxy.ip, proxy.port, b"GET /page/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 400
    assert proxy.upstream_connections == 0


def test_proxy_config_helpers(world: LoopbackWorld) -> None:
    fr1 = world.add_proxy(1)
    fr2 = world.add_proxy(1, auth=("u", "p"))
    de = world.add_proxy(2)
    expected = {
        "locales": {
            "fr": {"proxies": [fr1.url, fr2.url]},
            "de": {"proxies": [de.url]},
        }
    }
    assert world.proxy_config() == expected
    assert yaml.safe_load(world.proxies_yaml()) == expected
    assert world.proxy_config({"eu": [de]}) == {"locales": {"eu": {"proxies": [de.url]}}}


# -- site rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("geo_block", "status"), [("451", 451), ("page", 200)])
def test_geo_block(world: LoopbackWorld, geo_block: str, status: int) -> None:
    site = world.add_site("fr-only", lang="fr", countries={"fr"}, geo_block=geo_block)  # type: ignore[arg-type]
    fr = world.add_proxy(1)
    de = world.add_proxy(2)
    allowed = fetch(site.url("/page/1"), proxy=fr)
    assert allowed.status == 200
    assert "Article 1" in allowed.text
    for reply in (fetch(site.url("/page/1"), proxy=de), fetch(site.url("/page/1"))):
        assert reply.status == status
        assert "Article 1" not in reply.text
        if geo_block == "page":
            assert "n'est pas disponible dans votre région" in reply.text
    assert [r.country for r in site.requests] == ["fr", "de", None]


BAN_EXPECTATIONS: dict[str, tuple[int, str]] = {
    "403": (403, "Access denied"),
    "503": (503, "enable cookies"),
    "429": (429, "Too Many Requests"),
    "captcha": (200, "g-recaptcha"),
    "redirect": (302, ""),
    "empty": (200, ""),
    "region_page": (200, "not available in your region"),
    "451": (451, "Unavailable For Legal Reasons"),
}


def test_ban_expectations_cover_every_form() -> None:
    assert set(BAN_EXPECTATIONS) == set(BAN_FORMS)


@pytest.mark.parametrize("form", BAN_FORMS)
def test_ban_forms(world: LoopbackWorld, form: str) -> None:
    site = world.add_site("s", ban=BanRule(form, after=1, retry_after=2.5))  # type: ignore[arg-type]
    proxy = world.add_proxy(1)
    assert fetch(site.url("/page/1"), proxy=proxy).status == 200
    reply = fetch(site.url("/page/2"), proxy=proxy)
    status, marker = BAN_EXPECTATIONS[form]
    assert reply.status == status
    assert marker in reply.text
    assert "Story 2" not in reply.text
    if form == "429":
        assert reply.headers["retry-after"] == "3"
    if form == "empty":
        assert reply.body == b""
    if form == "redirect":
        location = reply.headers["location"]
        assert location == site.url("/challenge?return=%2Fpage%2F2")
        challenge = fetch(location, proxy=proxy)
        assert challenge.status == 200
        assert "Checking your browser" in challenge.text
    # Banned for good, whatever the page; other clients are unaffected.
    assert fetch(site.url("/"), proxy=proxy).status == status
    assert fetch(site.url("/page/2")).status == 200


def test_ban_targets_clients_and_changes_at_run_time(world: LoopbackWorld) -> None:
    site = world.add_site("s")
    banned = world.add_proxy(1)
    spared = world.add_proxy(2)
    site.ban = BanRule("403", clients={banned.ip})
    assert fetch(site.url("/"), proxy=banned).status == 403
    assert fetch(site.url("/"), proxy=spared).status == 200
    site.ban = BanRule("captcha", after=2)
    assert [fetch(site.url("/"), proxy=spared).status for _ in range(2)] == [200, 200]
    assert "g-recaptcha" in fetch(site.url("/"), proxy=spared).text  # 1 + 2 successes
    site.clear()
    assert site.requests == []
    assert "g-recaptcha" not in fetch(site.url("/"), proxy=spared).text
    site.ban = None
    assert fetch(site.url("/"), proxy=banned).status == 200


def test_ban_rule_validation() -> None:
    with pytest.raises(ValueError, match="form 'teapot'"):
        BanRule("teapot")  # type: ignore[arg-type]
    assert BanRule(403).form == "403"  # type: ignore[arg-type]
    assert BanRule("403", clients="127.0.1.1").clients == frozenset({"127.0.1.1"})


def test_rate_limit_answers_429_with_retry_after(world: LoopbackWorld) -> None:
    site = world.add_site("s", rate_limit=(2, 5.0))
    quick = world.add_site("quick", rate_limit=(1, 0.5))
    proxy = world.add_proxy(1)
    assert [fetch(site.url("/"), proxy=proxy).status for _ in range(2)] == [200, 200]
    limited = fetch(site.url("/"), proxy=proxy)
    assert limited.status == 429
    assert limited.headers["retry-after"] == "5"  # ceil(5.0 - time since the first request)
    assert fetch(site.url("/")).status == 200  # per client IP
    assert fetch(quick.url("/")).status == 200
    limited = fetch(quick.url("/"))
    assert (limited.status, limited.headers["retry-after"]) == (429, "1")  # never below 1
    time.sleep(0.55)
    assert fetch(quick.url("/")).status == 200


# -- load and lifecycle ------------------------------------------------------------------------


def test_many_concurrent_requests(world: LoopbackWorld) -> None:
    sites = [world.add_site(f"site{i}") for i in range(2)]
    proxies = [world.add_proxy(region) for region in (1, 2)]
    tls_site = world.add_site("tls", tls=True)

    def one(i: int) -> int:
        if i % 10 == 0:
            return fetch(tls_site.url("/page/1"), proxy=proxies[0]).status
        return fetch(sites[i % 2].url(f"/page/{i % 5 + 1}"), proxy=proxies[i % 2]).status

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(one, range(300)))
    assert statuses == [200] * 300
    assert sum(len(site.requests) for site in sites) == 270
    assert sum(proxy.count for proxy in proxies) == 300


def test_world_stops_by_itself_after_max_lifetime() -> None:
    world = LoopbackWorld(max_lifetime=0.3)
    site = world.add_site("s")
    with world:
        assert fetch(site.url("/")).status == 200
        deadline = time.monotonic() + 5
        while world.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not world.running
        assert world.expired
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((site.host, site.port), timeout=1).close()
        with pytest.raises(RuntimeError):
            world.add_site("late")


def test_stop_is_idempotent_and_fast() -> None:
    world = LoopbackWorld(max_lifetime=60)
    site = world.add_site("s", tls=True)
    hole = world.add_proxy(1, mode="blackhole")
    slow = world.add_proxy(2, delay=30)
    ok = world.add_proxy(3)
    world.start()
    world.start()
    results: list[int | None] = []
    client = threading.Thread(target=lambda: results.append(attempt(site.url("/"), slow, 10)))
    client.start()
    with (
        socket.create_connection((hole.ip, hole.port)) as held,
        socket.create_connection((ok.ip, ok.port)) as idle,
    ):
        held.sendall(b"GET http://127.0.100.1/ HTTP/1.1\r\n\r\n")
        idle.sendall(b"GET http://127.0.100.1/ HT")  # incomplete head
        time.sleep(0.1)
        start = time.monotonic()
        world.stop()
        assert time.monotonic() - start < 2
        world.stop()
    client.join(5)
    assert results == [None]
    assert not world.running
    with pytest.raises(RuntimeError, match="stopped"):
        world.start()
    with pytest.raises(RuntimeError, match="stopped"):
        world.add_proxy(1)
    hole.kill()  # harmless once stopped


def test_world_that_never_started_releases_its_sockets() -> None:
    world = LoopbackWorld()
    world.add_site("s")
    world.add_proxy(1)
    world.stop()
    world.stop()
