"""The SOCKS download handler against real loopback SOCKS5 exits, without a crawl.

Each test runs the handler on its own asyncio loop (what Scrapy's asyncio reactor gives it)
and downloads real pages through :class:`~scrapy_proxystack.testing.SocksProxy` servers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware
from scrapy.utils.test import get_crawler

from scrapy_proxystack.config import parse_proxy_config
from scrapy_proxystack.downloadhandlers.socks import SocksDownloadHandler, is_socks_proxy
from scrapy_proxystack.exceptions import SocksError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from scrapy_proxystack.config import ProxyEntry
    from scrapy_proxystack.testing import LoopbackWorld

#: Every character that broke a proxy URL somewhere: '@ : / % #', a space, non-ASCII.
ODD_USER = "us:er@x"
ODD_PASSWORD = "p@:/%# é-пароль/"


def run(
    body: Callable[[SocksDownloadHandler], Awaitable[Any]],
    *,
    settings: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    async def main() -> Any:
        crawler = get_crawler(settings_dict={"CONCURRENT_REQUESTS": 4, **(settings or {})})
        handler = SocksDownloadHandler(crawler, **kwargs)
        try:
            return await body(handler)
        finally:
            await handler.close()

    return asyncio.run(main())


def test_only_socks5_urls_go_to_the_socks_handler() -> None:
    assert is_socks_proxy("socks5h://127.0.1.1:1080")
    assert is_socks_proxy("SOCKS5://127.0.1.1:1080")
    assert not is_socks_proxy("http://127.0.1.1:1080")
    assert not is_socks_proxy("socks4://127.0.1.1:1080")
    assert not is_socks_proxy(None)


def test_odd_credentials_from_the_config_reach_the_exit_as_utf8(world: LoopbackWorld) -> None:
    site = world.add_site("shop", lang="fr", countries={"fr"})
    tls_site = world.add_site("secure", countries={"fr"}, tls=True)
    proxy = world.add_socks_proxy(1, auth=(ODD_USER, ODD_PASSWORD))
    entry = parse_proxy_config({"locales": {"fr": [proxy.url]}}).all_proxies[0]
    request = Request(site.url("/"), meta={"proxy": "socks5h://ignored:1", "download_timeout": 10})
    # A stale header from an earlier HTTP exit is sent neither to the exit nor to the site.
    request.headers[b"Proxy-Authorization"] = b"Basic c3RhbGU6c3RhbGU="
    tls_request = Request(tls_site.url("/"), meta={"download_timeout": 10})

    def exit_of(_request: Request) -> ProxyEntry:
        return entry

    async def body(handler: SocksDownloadHandler) -> list[int]:
        return [(await handler.download_request(r)).status for r in (request, tls_request)]

    assert run(body, exit_of=exit_of) == [200, 200]
    assert [r.user for r in proxy.socks_requests] == [ODD_USER, ODD_USER]
    assert [r.address_type for r in proxy.socks_requests] == ["ipv4", "ipv4"]
    assert site.requests[0].country == "fr"
    assert tls_site.requests[0].country == "fr"
    assert all("proxy-authorization" not in r.headers for r in site.requests)


def test_httpcores_debug_lines_never_show_the_credentials(
    world: LoopbackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # Scrapy keeps httpcore at ERROR; a user who lowers it must not see passwords.
    site = world.add_site("shop")
    proxy = world.add_socks_proxy(1, auth=("uSERsecret", "pASSsecret"))
    request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 10})

    async def body(handler: SocksDownloadHandler) -> int:
        return (await handler.download_request(request)).status

    with caplog.at_level(logging.DEBUG, logger="httpcore"):
        assert run(body) == 200
    assert "setup_socks5_connection.started" in caplog.text
    assert "auth=***" in caplog.text
    assert "pASSsecret" not in caplog.text
    assert "uSERsecret" not in caplog.text


def test_a_users_own_socks_proxy_with_a_slash_in_its_password(world: LoopbackWorld) -> None:
    # Scrapy's handler rebuilds this URL with quote(), leaving the '/' in: httpx.InvalidURL.
    site = world.add_site("shop", countries={"de"})
    proxy = world.add_socks_proxy(2, auth=("bob", "a/b/c"))
    request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 10})
    HttpProxyMiddleware(auth_encoding="utf-8").process_request(request)
    assert b"Proxy-Authorization" in request.headers  # what the handler has to work from

    async def body(handler: SocksDownloadHandler) -> int:
        return (await handler.download_request(request)).status

    assert run(body, settings={"HTTPPROXY_AUTH_ENCODING": "utf-8"}) == 200
    assert [r.user for r in proxy.socks_requests] == ["bob"]


@pytest.mark.parametrize("code", range(1, 9))
def test_each_socks_reply_code_is_in_the_reason(world: LoopbackWorld, code: int) -> None:
    site = world.add_site("shop")
    proxy = world.add_socks_proxy(1, reply=code)
    request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 10})

    async def body(handler: SocksDownloadHandler) -> None:
        await handler.download_request(request)

    with pytest.raises(SocksError) as info:
        run(body)
    assert info.value.reason == f"socks_reply_{code:02x}"
    assert info.value.reply == code
    # Network/host unreachable, refused, TTL expired: the site may be the one at fault.
    assert info.value.proxy_only is (code not in (3, 4, 5, 6))
    assert site.requests == []


def test_refused_credentials(world: LoopbackWorld) -> None:
    site = world.add_site("shop")
    proxy = world.add_socks_proxy(1, auth=("alice", "right"))
    request = Request(
        site.url("/"), meta={"proxy": f"socks5h://alice:wr%2Fong@{proxy.ip}:{proxy.port}"}
    )

    async def body(handler: SocksDownloadHandler) -> None:
        await handler.download_request(request)

    with pytest.raises(SocksError) as info:
        run(body)
    assert (info.value.reason, info.value.proxy_only) == ("socks_auth_refused", True)
    assert "wr/ong" not in str(info.value)
    assert "wr%2Fong" not in str(info.value)


def test_a_silent_exit_costs_the_download_timeout_not_more(world: LoopbackWorld) -> None:
    site = world.add_site("shop")
    proxy = world.add_socks_proxy(1, mode="blackhole")
    request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 1.0})

    async def body(handler: SocksDownloadHandler) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await handler.download_request(request)
        finally:
            # Generous: the point is that it ends at all (httpcore alone waits for ever).
            assert loop.time() - started < 30

    with pytest.raises(SocksError) as info:
        run(body)
    assert (info.value.reason, info.value.proxy_only) == ("socks_handshake_timeout", True)


def test_an_exit_slow_to_connect_fails_within_the_timeout_and_serves_with_more(
    world: LoopbackWorld,
) -> None:
    site = world.add_site("shop")
    proxy = world.add_socks_proxy(1, delay=1.5)  # waits before connecting to the site
    request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 0.5})

    async def body(handler: SocksDownloadHandler) -> None:
        await handler.download_request(request)

    with pytest.raises(SocksError) as info:
        run(body)
    assert info.value.reason == "socks_handshake_timeout"
    request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 10.0})

    async def again(handler: SocksDownloadHandler) -> int:
        return (await handler.download_request(request)).status

    assert run(again) == 200


def test_clients_are_bounded_and_the_least_recently_used_idle_ones_closed(
    world: LoopbackWorld,
) -> None:
    site = world.add_site("shop")
    proxies = [world.add_socks_proxy(1) for _ in range(5)]

    async def body(handler: SocksDownloadHandler) -> tuple[int, int, int, list[int]]:
        statuses = []
        for proxy in [*proxies, proxies[-1]]:
            request = Request(site.url("/"), meta={"proxy": proxy.url, "download_timeout": 10})
            statuses.append((await handler.download_request(request)).status)
        return handler.clients, handler.clients_opened, handler.clients_evicted, statuses

    kept, opened, evicted, statuses = run(body, max_idle_clients=2)
    assert statuses == [200] * 6
    assert (kept, opened, evicted) == (2, 5, 3)  # the last exit's client was reused


class _Recorder:
    """A download handler that answers with its own name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []

    async def download_request(self, request: Request) -> Any:
        self.seen.append(request.meta.get("proxy") or "direct")
        return self.name


class _Rebinding:
    """A send gate that moves each request to the exit given, as re-binding does."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy

    async def before_send(self, request: Request) -> None:
        request.meta["proxy"] = self.proxy


@pytest.mark.parametrize(
    ("first", "rebound", "handler"),
    [
        ("http://127.0.1.1:8000", "socks5h://127.0.1.2:1080", "socks"),
        ("socks5://127.0.1.2:1080", "http://127.0.1.1:8000", "default"),
        ("socks5h://127.0.1.2:1080", "socks5h://127.0.1.3:1080", "socks"),
    ],
)
def test_the_handler_is_chosen_after_rebinding(first: str, rebound: str, handler: str) -> None:
    from scrapy_proxystack.downloadhandlers.dispatch import HttpDispatchHandler

    default, socks = _Recorder("default"), _Recorder("socks")
    dispatch = HttpDispatchHandler(
        default,
        _Rebinding(rebound),  # type: ignore[arg-type]
        socks=lambda: socks,  # type: ignore[arg-type,return-value]
    )
    request = Request("http://127.0.100.1/", meta={"proxy": first})
    assert asyncio.run(dispatch.download_request(request)) == handler  # type: ignore[comparison-overlap]
    assert default.seen + socks.seen == [rebound]
