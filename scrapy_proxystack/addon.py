"""``ADDONS = {"scrapy_proxystack.Addon": 300}``: the one line that enables the suite."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.utils.misc import load_object

from scrapy_proxystack import default_settings
from scrapy_proxystack.downloadermiddlewares.bans import BanDetectionMiddleware
from scrapy_proxystack.downloadermiddlewares.locale import LocaleMiddleware
from scrapy_proxystack.downloadermiddlewares.proxy import ProxyMiddleware
from scrapy_proxystack.extensions.audit import AuditLogExtension
from scrapy_proxystack.extensions.exitstats import ExitStatsExtension
from scrapy_proxystack.extensions.logstats import ProxyStackLogStats
from scrapy_proxystack.extensions.prometheus import PrometheusExtension
from scrapy_proxystack.extensions.report import ReportExtension

if TYPE_CHECKING:
    from scrapy.settings import Settings

__all__ = ["Addon"]

logger = logging.getLogger(__name__)

#: Where the add-on puts each component. Between Scrapy's RedirectMiddleware (600) and its
#: HttpProxyMiddleware (750): the exit is chosen after redirects are built and before Scrapy turns
#: the proxy URL's credentials into a ``Proxy-Authorization`` header; on the way back, bans are
#: judged before RedirectMiddleware follows a redirect to a challenge page and before
#: RetryMiddleware (550) sees a 429/503, so a ban is retried once, through another exit.
DOWNLOADER_MIDDLEWARES: dict[type, int] = {
    LocaleMiddleware: 605,
    ProxyMiddleware: 610,
    BanDetectionMiddleware: 620,
}

#: Extensions: each stays off (NotConfigured) until its setting is set, except the latency
#: percentiles, which are cheap and always useful.
EXTENSIONS: dict[type, int] = {
    ExitStatsExtension: 500,
    ProxyStackLogStats: 500,
    ReportExtension: 500,
    PrometheusExtension: 500,
    AuditLogExtension: 500,
}

#: scrapy-rotating-proxies components that the add-on replaces.
_REPLACED = (
    "rotating_proxies.middlewares.RotatingProxyMiddleware",
    "rotating_proxies.middlewares.BanDetectionMiddleware",
)


_DISPATCH = {
    "http": "scrapy_proxystack.downloadhandlers.dispatch.HttpDispatchHandler",
    "https": "scrapy_proxystack.downloadhandlers.dispatch.HttpsDispatchHandler",
}


class Addon:
    """Scrapy add-on: copies the defaults and inserts the components without clobbering.

    Defaults go in at ``addon`` priority, so a value from ``settings.py``, ``custom_settings`` or
    ``-s`` wins. Components already listed by the user (even as import strings, even with
    ``None`` to disable them) keep the user's priority.
    """

    def update_settings(self, settings: Settings) -> None:
        for name in dir(default_settings):
            if name.startswith("PROXYSTACK_"):
                settings.set(name, getattr(default_settings, name), priority="addon")
        user_mws = settings.getdict("DOWNLOADER_MIDDLEWARES")
        for path in tuple(user_mws):
            if isinstance(path, str) and path in _REPLACED and user_mws[path] is not None:
                logger.warning(
                    "%(path)s is disabled: scrapy_proxystack.Addon replaces it "
                    "(its ROTATING_PROXY_* settings are still read).",
                    {"path": path},
                )
                user_mws[path] = None
        settings.set(
            "DOWNLOADER_MIDDLEWARES", user_mws, settings.getpriority("DOWNLOADER_MIDDLEWARES") or 0
        )
        for cls, priority in DOWNLOADER_MIDDLEWARES.items():
            settings.setdefault_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", cls, priority)
        for cls, priority in EXTENSIONS.items():
            settings.setdefault_in_component_priority_dict("EXTENSIONS", cls, priority)
        self._wrap_download_handlers(settings)
        if not settings.getint("CONCURRENT_REQUESTS_PER_IP"):
            # Scrapy's downloader-aware queue hands out requests of the least busy sites first, so
            # a site that must wait (rate, Crawl-delay, Retry-After) does not starve the others.
            settings.set(
                "SCHEDULER_PRIORITY_QUEUE",
                "scrapy.pqueues.DownloaderAwarePriorityQueue",
                priority="addon",
            )
        pipeline = load_object("scrapy_proxystack.pipelines.pii.PiiMaskingPipeline")
        # Last of the usual pipelines, so every item is masked before any exporter sees it.
        settings.setdefault_in_component_priority_dict("ITEM_PIPELINES", pipeline, 1000)

    @staticmethod
    def _wrap_download_handlers(settings: Settings) -> None:
        """Put the dispatch handlers in front of whatever handles http(s) now."""
        current = {
            **settings.getdict("DOWNLOAD_HANDLERS_BASE"),
            **settings.getdict("DOWNLOAD_HANDLERS"),
        }
        inner: dict[str, str] = {}
        handlers = settings.getdict("DOWNLOAD_HANDLERS")
        for scheme, ours in _DISPATCH.items():
            previous = current.get(scheme)
            if previous is None:
                continue  # the user disabled this scheme
            path = (
                previous
                if isinstance(previous, str)
                else f"{previous.__module__}.{previous.__qualname__}"
            )
            if path == ours:
                continue
            inner[scheme] = path
            handlers[scheme] = ours
        settings.set("DOWNLOAD_HANDLERS", handlers, settings.getpriority("DOWNLOAD_HANDLERS") or 0)
        settings.set("_PROXYSTACK_INNER_DOWNLOAD_HANDLERS", inner, priority="addon")
