"""Decide whether an HTTP answer is a ban, a throttle, a geo-block, or real content.

Training crawls must never keep a ban page as content (a captcha page in a training set is
poison), and must not throw away a normal page either. The checks run from the cheapest and
most certain to the most expensive and most heuristic, and the first one that fires decides:

1. **Status.** ``ban_status`` plus the site's extra ``status`` codes, minus its
   ``content_status`` codes. 429 is a throttle and 451 a geo-block; ``Retry-After`` is kept.
2. **Where the answer sends us.** A ``Location`` (3xx), a ``Refresh`` header, the final URL of a
   followed redirect or a ``<meta http-equiv="refresh">``: to a challenge endpoint
   (``challenge_redirect``), to a login wall (``login_redirect``, unless the request itself was
   for a login page), or to a URL the site's ``url_patterns`` name (``url_pattern``).
3. **Vendor headers** that only challenges carry (``cf-mitigated: challenge``,
   ``x-amzn-waf-action``).
4. **Size.** A ``200`` with an empty or too small body. HEAD, 204, 205, 304 and other 3xx have no
   body by design and are never judged on it.
5. **Body patterns** configured for the crawl or the site.
6. **HTML heuristics** (HTML only), see :class:`BanClassifier`.
7. **Language**: ``<html lang>`` whose primary subtag is not the expected one.

The body heuristics must be fast (training crawls move gigabytes) and precise (an article
*about* captchas is content). Both come from the same idea: a ban page is an *interstitial*, a
page with very little text, and its markers sit in *structure* (tags, scripts, the title), not
in prose. The common case, an ordinary page with no marker at all, costs one ASCII lower-casing
of a bounded window, one regex pass anchored on a single literal byte and a few bounded
``find`` calls; the visible text is only extracted and measured when something asks for it.

The package is split by data: ``verdicts`` (what it answers), ``phrases`` (what pages say),
``vendors`` (what vendors' markup, URLs and headers look like), ``markup`` (reading a page:
window, visible text, headings, charsets), ``redirects``, ``language``, ``headers``, and
``classifier`` (settings and the order of the rules). None of it imports Scrapy: the middleware
is a thin adapter over it. A few internals (``_site_rules``, ``_PHRASE_CATEGORY``,
``_normalise``, ``_phrases_in``) stay importable from here for the unit tests.
"""

from __future__ import annotations

from scrapy_proxystack.bans.classifier import (
    DEFAULT_SETTINGS,
    BanClassifier,
    BanClassifierSettings,
    _site_rules,  # noqa: F401
)
from scrapy_proxystack.bans.headers import parse_retry_after
from scrapy_proxystack.bans.language import declared_language, language_set
from scrapy_proxystack.bans.phrases import PHRASE_CATEGORY as _PHRASE_CATEGORY  # noqa: F401
from scrapy_proxystack.bans.phrases import normalise as _normalise  # noqa: F401
from scrapy_proxystack.bans.phrases import phrases_in as _phrases_in  # noqa: F401
from scrapy_proxystack.bans.verdicts import OK, REASONS, BanKind, Verdict

__all__ = [
    "DEFAULT_SETTINGS",
    "OK",
    "REASONS",
    "BanClassifier",
    "BanClassifierSettings",
    "BanKind",
    "Verdict",
    "declared_language",
    "language_set",
    "parse_retry_after",
]
