"""Which language a site writes in, learned before a page in another one is called a geo-block.

A page whose ``<html lang>`` is not one of its locale's languages can be a geo-block (the site
sent its international version to a foreign exit), or simply the site's own language: an
English-only site mapped to ``fr``, a French site in bilingual Canada. Banning every exit for
that is how a whole site is lost. So the evidence comes first (DESIGN: evidence before a geo
verdict): another language is a geo-block only once the same site has shown an expected
language; a site that answers the same other language through several exits (or on several
pages) has that language, and is learned, not banned.

Plain module (no Scrapy import); memory is bounded by ``max_sites``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, Literal

__all__ = ["LanguageJudgement", "SiteLanguages"]

#: ``geo_block``: the site showed an expected language before, so another one is a block;
#: ``site_language``: the site's learned language; ``learned``: learned just now (log it);
#: ``pending``: not enough evidence either way, the page is kept.
LanguageJudgement = Literal["geo_block", "site_language", "learned", "pending"]

_MIN_EXITS: Final = 2
_MIN_PAGES: Final = 3


class _Site:
    __slots__ = ("exits", "expected_seen", "learned", "pages")

    def __init__(self) -> None:
        self.expected_seen = False
        self.learned: str | None = None
        self.exits: dict[str, set[str]] = {}
        self.pages: dict[str, int] = {}


class SiteLanguages:
    """Per-site language evidence. ``min_exits`` distinct exits (or ``min_pages`` pages, for a
    locale with a single exit) answering the same unexpected language make it the site's."""

    def __init__(
        self, *, min_exits: int = _MIN_EXITS, min_pages: int = _MIN_PAGES, max_sites: int = 100_000
    ) -> None:
        self.min_exits = min_exits
        self.min_pages = min_pages
        self.max_sites = max_sites
        self._sites: OrderedDict[str, _Site] = OrderedDict()

    def _site(self, domain: str) -> _Site:
        site = self._sites.get(domain)
        if site is None:
            site = self._sites[domain] = _Site()
            if len(self._sites) > self.max_sites:
                self._sites.popitem(last=False)
        return site

    def saw_expected(self, domain: str) -> None:
        """The site answered in one of its locale's languages."""
        site = self._sites.get(domain)
        if site is None or not site.expected_seen:
            self._site(domain).expected_seen = True

    def judge(self, domain: str, lang: str | None, exit_id: str) -> LanguageJudgement:
        """A page of ``domain`` through ``exit_id`` is in ``lang``, none of the expected ones."""
        site = self._site(domain)
        if lang is not None and site.learned == lang:
            return "site_language"
        if site.expected_seen:
            return "geo_block"
        key = lang or "?"
        exits = site.exits.setdefault(key, set())
        exits.add(exit_id)
        pages = site.pages[key] = site.pages.get(key, 0) + 1
        if len(exits) >= self.min_exits or pages >= self.min_pages:
            site.learned = key
            site.exits.clear()
            site.pages.clear()
            return "learned"
        return "pending"

    def learned(self, domain: str) -> str | None:
        site = self._sites.get(domain)
        return site.learned if site is not None else None
