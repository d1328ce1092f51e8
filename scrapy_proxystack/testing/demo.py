"""The demo world: news sites of five countries behind proxies of their countries, and an echo.

One definition serves the sample project's crawl, ``python -m scrapy_proxystack.testing`` (the
same world, kept running for your own project and for ``scrapy proxystack check``) and
``scrapy proxystack check --world``:

* five sites: ``actu-fr`` (French readers only, a soft "not in your region" page for others),
  ``zeitung-de`` (German readers only, 451 for others), ``diario-es`` (Spanish readers only),
  ``shimbun-jp`` (HTTPS with a self-signed certificate, Japanese readers only) and ``forum-us``
  (anyone, but a captcha for any client after its third page);
* thirteen proxies in five locales, among them one with credentials, a slow one, a dead one and a
  flaky one, so the suite has something to route around;
* ``echo``: a site whose ``/echo`` answers what it saw of the client (see :data:`ECHO_PATH`).

Everything listens on 127.0.0.0/8 only. This module imports nothing from Scrapy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

from scrapy_proxystack.testing.sites import BanRule
from scrapy_proxystack.testing.world import LoopbackWorld

__all__ = ["DEFAULT_PORT", "ECHO_PATH", "DemoWorld", "start_demo_world"]

#: Port of every site and proxy of the world that ``python -m scrapy_proxystack.testing`` serves
#: (each has an address of its own, so they share it).
DEFAULT_PORT: Final = 8800
#: The echo endpoint, on the ``echo`` site: ``GET /echo`` answers JSON
#: ``{"client_ip", "country", "headers", "method", "path"}``.
ECHO_PATH: Final = "/echo"


@dataclass(frozen=True)
class DemoWorld:
    """A running demo world and what a crawl needs to know about it."""

    world: LoopbackWorld
    #: A ``PROXYSTACK_PROXIES`` mapping: proxies per locale, and each site's locale.
    config: dict[str, Any]
    #: The spider's start pages: ``{"url": ..., "site": ...}``, one per news site.
    start: list[dict[str, str]]
    #: The echo endpoint for ``scrapy proxystack check --echo-url``.
    echo_url: str

    def stop(self) -> None:
        self.world.stop()


def start_demo_world(*, port: int = 0, max_lifetime: float = 900.0) -> DemoWorld:
    """Start the demo world; ``port`` 0 takes free ports (tests), else every server uses it."""
    world = LoopbackWorld(max_lifetime=max_lifetime)
    try:
        new_site = functools.partial(world.add_site, port=port)
        sites = [
            ("fr", new_site("actu-fr", lang="fr", countries={"fr"}, geo_block="page")),
            ("de", new_site("zeitung-de", lang="de", countries={"de"}, geo_block="451")),
            ("es", new_site("diario-es", lang="es", countries={"es"})),
            ("jp", new_site("shimbun-jp", lang="ja", countries={"jp"}, tls=True)),
            # A forum that shows a captcha to any client after its third page: the suite retries
            # those through other US exits and keeps captcha pages out of the feed.
            ("us", new_site("forum-us", lang="en", pages=10, ban=BanRule("captcha", after=3))),
        ]
        echo = new_site("echo", lang="en", pages=0)
        new_proxy = functools.partial(world.add_proxy, port=port)
        proxies = {
            "fr": [
                new_proxy(1, auth=("demo-fr", "fr-secret")),
                new_proxy(1),
                new_proxy(1, mode="slow", delay=0.2),
            ],
            "de": [new_proxy(2), new_proxy(2, mode="dead")],
            "es": [new_proxy(3), new_proxy(3, mode="flaky", fail_rate=0.3, seed=7)],
            "jp": [new_proxy(4), new_proxy(4)],
            "us": [new_proxy(5) for _ in range(4)],
        }
        world.start()
    except BaseException:
        world.stop()
        raise
    config = {
        "locales": {
            locale: {"proxies": [p.url for p in items]} for locale, items in proxies.items()
        },
        "domains": {site.host: locale for locale, site in sites},
    }
    start = [{"url": site.url("/"), "site": site.name} for _, site in sites]
    return DemoWorld(world, config, start, echo.url(ECHO_PATH))
