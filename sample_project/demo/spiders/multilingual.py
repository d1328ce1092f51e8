"""Crawl news sites of several countries, each through proxies of its own country."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import scrapy

from scrapy_proxystack.routing import route_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response


class MultilingualSpider(scrapy.Spider):
    """Follows every page of each start site and yields its text.

    Which proxy each request leaves through is not this spider's business: the YAML file maps
    each site to a locale, and the suite picks an exit of that locale.
    """

    name = "multilingual"

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for spec in self.settings.getlist("DEMO_START_URLS"):
            yield scrapy.Request(spec["url"], cb_kwargs={"site": spec["site"]})

    def parse(self, response: Response, site: str) -> Iterator[Any]:
        paragraphs = [" ".join(p.css("::text").getall()).strip() for p in response.css("p")]
        yield {
            "site": site,
            "url": response.url,
            "lang": response.css("html::attr(lang)").get(),
            "title": response.css("title::text").get(),
            "text": "\n".join(p for p in paragraphs if p),
            "exit_locale": route_of(response).exit_locale,
        }
        for href in response.css("a::attr(href)").getall():
            if href.startswith(("mailto:", "tel:", "javascript:")):
                continue
            yield response.follow(href, callback=self.parse, cb_kwargs={"site": site})
