"""A loopback world for tests, demos and benchmarks: real sites behind real proxies.

Everything listens on 127.0.0.0/8 and talks only to 127.0.0.0/8::

    from scrapy_proxystack.testing import BanRule, LoopbackWorld

    with LoopbackWorld() as world:
        site = world.add_site("shop", lang="fr", countries={"fr"}, ban=BanRule("captcha", after=3))
        proxy = world.add_proxy(1, auth=("user", "pass"))  # 127.0.1.1, exits in "fr"
        ...  # crawl site.url("/") through proxy.url, then look at site.requests

This package imports nothing from Scrapy.
"""

from __future__ import annotations

from scrapy_proxystack.testing.proxies import (
    ANONYMITY_LEVELS,
    PROXY_MODES,
    Anonymity,
    Proxy,
    ProxyMode,
    ProxyRequest,
)
from scrapy_proxystack.testing.sites import (
    BAN_FORMS,
    GEO_BLOCKS,
    BanForm,
    BanRule,
    GeoBlock,
    RecordedRequest,
    Site,
)
from scrapy_proxystack.testing.socks import SocksProxy, SocksRequest
from scrapy_proxystack.testing.world import DEFAULT_REGIONS, SITE_NETWORK, LoopbackWorld

__all__ = [
    "ANONYMITY_LEVELS",
    "BAN_FORMS",
    "DEFAULT_REGIONS",
    "GEO_BLOCKS",
    "PROXY_MODES",
    "SITE_NETWORK",
    "Anonymity",
    "BanForm",
    "BanRule",
    "GeoBlock",
    "LoopbackWorld",
    "Proxy",
    "ProxyMode",
    "ProxyRequest",
    "RecordedRequest",
    "Site",
    "SocksProxy",
    "SocksRequest",
]
