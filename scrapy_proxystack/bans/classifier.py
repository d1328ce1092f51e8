"""The classifier: settings, per-site rules, and the order in which the rules run."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from scrapy_proxystack import default_settings as _D
from scrapy_proxystack.bans.headers import parse_retry_after, wanted_headers
from scrapy_proxystack.bans.language import lang_mismatch
from scrapy_proxystack.bans.markup import (
    LONG,
    SHORT,
    TINY,
    codec,
    condense,
    declared_charset,
    decode,
    ends_inside_long_block,
    has_password_field,
    headings,
    is_html,
    size_class,
    sniffed_charset,
    text_size,
    visible_text,
)
from scrapy_proxystack.bans.phrases import (
    C_BODY,
    C_HEAD,
    DENIAL,
    GEO,
    THROTTLE,
    heading_categories,
    normalise,
    phrase_counts,
)
from scrapy_proxystack.bans.redirects import judge_meta_refresh, judge_targets, redirect_targets
from scrapy_proxystack.bans.vendors import (
    challenge_header,
    cloudflare_error_box,
    markup_evidence,
    quiet_evidence,
)
from scrapy_proxystack.bans.verdicts import (
    BODY_PATTERN,
    CAPTCHA,
    EMPTY_BODY,
    LANG_MISMATCH,
    OK,
    RATE_LIMIT_PAGE,
    REGION_PAGE,
    TINY_BODY,
    BanKind,
    Verdict,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from scrapy_proxystack.config import BanRules


@functools.lru_cache(maxsize=256)
def _compile_patterns(patterns: tuple[str, ...], where: str) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for i, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except (re.error, TypeError) as exc:
            raise ValueError(
                f"{where}[{i}]: {pattern!r} is not a valid regular expression ({exc})"
            ) from None
    return tuple(compiled)


@dataclass(frozen=True)
class BanClassifierSettings:
    """Crawl-wide knobs of the classifier; per-site changes come from ``BanRules``."""

    ban_status: frozenset[int] = frozenset(_D.PROXYSTACK_BAN_HTTP_CODES)
    #: A ``200`` body shorter than this is a ban (``empty_body`` at 0 bytes, else ``tiny_body``).
    min_body_size: int = _D.PROXYSTACK_BAN_MIN_BODY_SIZE
    check_lang: bool = True
    #: Regexes (case-insensitive) that make any textual body a ban (``body_pattern``).
    extra_body_patterns: tuple[str, ...] = ()
    #: How far into the body the classifier ever reads (and the middleware inflates): a
    #: challenge's text and markers may follow a few hundred KB of inline script or font.
    max_scan_bytes: int = 524288
    #: How much markup the HTML heuristics read, long inline scripts and styles cut short (see
    #: ``markup.condense``); body patterns run on this much of the body.
    max_text_bytes: int = 65536

    def __post_init__(self) -> None:
        codes: object = self.ban_status  # callers pass sets and lists too
        if not isinstance(codes, frozenset | set | list | tuple) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
        ):
            raise ValueError(
                f"BanClassifierSettings.ban_status: {codes!r}; expected HTTP status codes"
            )
        object.__setattr__(self, "ban_status", frozenset(codes))
        object.__setattr__(self, "extra_body_patterns", tuple(self.extra_body_patterns))
        for name, value, minimum in (
            ("min_body_size", self.min_body_size, 0),
            ("max_scan_bytes", self.max_scan_bytes, 1),
            ("max_text_bytes", self.max_text_bytes, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"BanClassifierSettings.{name}: {value!r}; expected a whole number >= {minimum}"
                )
        _compile_patterns(self.extra_body_patterns, "BanClassifierSettings.extra_body_patterns")


DEFAULT_SETTINGS: Final = BanClassifierSettings()


@dataclass(frozen=True, slots=True)
class _SiteRules:
    """A site's ``BanRules`` with its regexes compiled (once per ``BanRules``, see below)."""

    status: frozenset[int]
    content_status: frozenset[int]
    body: tuple[re.Pattern[str], ...]
    url: tuple[re.Pattern[str], ...]
    min_body_size: int | None


@functools.lru_cache(maxsize=1024)
def _site_rules(rules: BanRules) -> _SiteRules:
    """``BanRules`` are frozen and hashable: one compilation per distinct rule set."""
    return _SiteRules(
        status=frozenset(rules.status),
        content_status=frozenset(rules.content_status),
        body=_compile_patterns(tuple(rules.body_patterns), "bans.body_patterns"),
        url=_compile_patterns(tuple(rules.url_patterns), "bans.url_patterns"),
        min_body_size=rules.min_body_size,
    )


#: Documents up to this many bytes get their visible text measured even without a marker, so
#: that a bare "please verify you are human" page is caught; bigger ones only when a marker
#: or a heading asks for it (measuring costs more than all the other checks together).
SMALL_DOCUMENT: Final = 8192
_BODYLESS_STATUS: Final = frozenset({204, 205, 304})
_SIZED_STATUS: Final = frozenset({200, 203})
_BINARY_MARKERS: Final = ("image/", "audio/", "video/", "font/", "pdf", "zip", "octet-stream")
#: A login-protected resource answers 401 with its own "access denied" page: only challenge
#: evidence makes such an answer a ban of the exit.
_AUTH_WALL: Final = 401
_NO_PHRASES: Final = {C_BODY: 0, GEO: 0, THROTTLE: 0}
#: Cloudflare's "the owner of this website has banned the country or region" error.
_CLOUDFLARE_COUNTRY_BAN: Final = b"1009"


@dataclass(frozen=True, slots=True)
class _Page:
    """The HTML the heuristics read: ``head`` (raw) and ``low`` (ASCII lower-cased, same
    offsets), cut to the text window, and what the rules need to know about the answer."""

    head: bytes
    low: bytes
    charset: str
    truncated: bool
    status: int
    authenticate: bool


def _passes(size: int, strong: bool, heading: bool, phrases: int, widget: bool) -> bool:
    """The evidence rule; see BanClassifier's docstring."""
    if size == TINY:
        return strong or heading or phrases > 0
    if size == SHORT:
        return strong or heading or (widget and phrases > 0)
    if size != LONG:  # medium
        return strong or (heading and widget)
    return False


def _judge_html(page: _Page) -> Verdict | None:
    """The HTML rule on one page; see BanClassifier's docstring."""
    strong, widget = markup_evidence(page.low)
    strict = page.status == _AUTH_WALL
    ignored = DENIAL if strict else frozenset()
    titles = headings(page.low, page.head, page.charset)
    heading = heading_categories(titles, ignored)
    if not (strong or widget or heading or len(page.low) <= SMALL_DOCUMENT):
        return None  # the fast path: nothing anywhere that could make this a ban page
    if strict and page.authenticate and not strong:
        return None  # an HTTP authentication challenge, not a bot challenge
    visible = visible_text(page.head, page.low, page.charset)
    chars = text_size(visible)
    size = size_class(chars, page.truncated)
    if size == LONG:
        if not strong:
            return None
        code = cloudflare_error_box(page.low)  # a site's long error page around the box
        if code is None:
            return None
        return REGION_PAGE if code == _CLOUDFLARE_COUNTRY_BAN else CAPTCHA
    if size == TINY and not strong:
        quiet_strong, quiet_widget = quiet_evidence(page.low)
        strong, widget = quiet_strong, widget or quiet_widget
    if chars == 0 and not titles and widget and not strict:
        return CAPTCHA  # nothing to read but a vendor's script: a challenge stub
    counts = _NO_PHRASES
    # Phrases decide on a tiny page, and add to other evidence on a short one; on a login form
    # they are the form's own captcha label.
    if size == TINY or (size == SHORT and (strong or widget or heading)):
        counts = phrase_counts(normalise(visible), ignored)
        if any(counts.values()) and has_password_field(page.low):
            counts = _NO_PHRASES
    captcha_heading = C_BODY in heading or C_HEAD in heading
    captcha = _passes(size, strong, captcha_heading, counts[C_BODY], widget)
    geo_heading = GEO in heading
    if _passes(size, False, geo_heading, counts[GEO], False) or (
        captcha and (geo_heading or counts[GEO])
    ):
        return REGION_PAGE
    if captcha:
        return CAPTCHA
    if _passes(size, False, THROTTLE in heading, counts[THROTTLE], False):
        return RATE_LIMIT_PAGE
    return None


class BanClassifier:
    """Classify answers; one instance per crawl, safe to share (it holds no per-call state).

    The checks run from the cheapest and most certain to the most expensive and most
    heuristic, and the first one that fires decides: status, where the answer sends the client,
    challenge headers, size, configured body patterns, the HTML rule, then the language.

    **The HTML rule.** Evidence comes in four strengths (see ``bans.vendors`` for the markers):

    - *strong vendor markers* (S): markup only challenge and block pages carry;
    - *headings* (H): the title or the first ``h1`` consists of a known phrase (see
      ``phrases.heading_categories``);
    - *phrases* (P): "verify you are human", "unusual traffic", "nicht in Ihrem Land
      verfügbar"... in the visible text, in en, fr, de, es, pt, it, ja, ru, zh and ko;
    - *widgets* (W): reCAPTCHA, hCaptcha, Turnstile, a vendor's sensor script. Login and
      contact forms use them too, so a widget never decides alone, except on a page with
      nothing to read at all and no title (a challenge stub that is only a vendor's script).

    Markers count only inside tags or scripts, never in prose or escaped code samples. Then the
    amount of visible text (characters other than whitespace, URLs left out, CJK counted
    twice; hidden elements, scripts, styles, ``noscript`` and ``template`` are not visible)
    decides how much evidence is needed, because a ban page is an interstitial and content
    has text:

    - tiny (up to ``TINY_TEXT``): any S, H or P, as a page that short with such a sentence has
      nothing else to say; phrases do not count on a page with a password field (a login
      form's own captcha question);
    - short (up to ``SHORT_TEXT``): S, H, or W together with P; prose alone is not enough,
      since a short news item or forum post about bots quotes the same phrases;
    - medium (up to ``MEDIUM_TEXT``, or a body cut before its end): S, or H with W;
    - long: content, whatever it mentions (a one-line "not available in your country" for one
      product variant does not turn a product page into a geo-block), unless it holds the box
      of a Cloudflare error that refuses the client (``cf-error-1020``): sites wrap that box
      in their own long error pages.

    Geo and rate-limit phrases follow the same rule (they have no vendor markup); a page that
    passes as a captcha page and also carries a geo phrase is a ``region_page`` (Cloudflare's
    "the owner of this website has banned the country or region...").

    **401.** A login-protected page or API answers 401 with its own "access denied" page, and
    that is no ban of the exit: on a 401, phrases that only refuse access ("access denied",
    "forbidden", "blocked", in every language covered) are no evidence, and with a
    ``WWW-Authenticate`` header only strong markers are. A challenge served as 401 (Anubis)
    still shows its markers and its "making sure you're not a bot".
    """

    def __init__(self, settings: BanClassifierSettings = DEFAULT_SETTINGS) -> None:
        self.settings = settings
        self._ban_status = settings.ban_status
        self._window = min(settings.max_text_bytes, settings.max_scan_bytes)
        self._extra_body = _compile_patterns(
            settings.extra_body_patterns, "BanClassifierSettings.extra_body_patterns"
        )

    def classify(
        self,
        *,
        status: int,
        headers: Mapping[str, str],
        url: str,
        body: bytes,
        request_url: str | None = None,
        redirect_location: str | None = None,
        expected_lang: str | Collection[str] | None = None,
        rules: BanRules | None = None,
        method: str = "GET",
    ) -> Verdict:
        """Judge one answer. ``headers`` may use any case (values ``str``, ``bytes`` or lists);
        ``body`` may be the whole body or just its head; ``request_url`` is the URL that was
        asked for when ``url`` is where redirects ended."""
        site = _site_rules(rules) if rules is not None else None
        wanted = wanted_headers(headers)
        verdict = self._judge_status(status, wanted, site)
        if verdict is None:
            targets = redirect_targets(status, wanted, url, request_url, redirect_location)
            site_urls = site.url if site is not None else ()
            verdict = judge_targets(targets, url, request_url, site_urls, final=url)
        if verdict is None and challenge_header(wanted):
            verdict = CAPTCHA
        if verdict is None:
            verdict = self._judge_size(status, method, body, site)
        if verdict is None:
            lang = expected_lang if self.settings.check_lang and 200 <= status < 300 else None
            verdict = self._judge_body(status, wanted, url, body, request_url, site, lang)
        return OK if verdict is None else verdict

    # --- the rules, in order -------------------------------------------------------------------

    def _judge_status(
        self, status: int, wanted: dict[str, str], site: _SiteRules | None
    ) -> Verdict | None:
        """``ban_status`` plus the site's extra ``status`` codes, minus its ``content_status``
        codes. 429 is a throttle and 451 a geo-block; ``Retry-After`` is kept."""
        if not (status in self._ban_status or (site is not None and status in site.status)):
            return None
        if site is not None and status in site.content_status:
            return None
        retry_after = parse_retry_after(wanted.get("retry-after"))
        if status == 429:
            kind = BanKind.THROTTLE
        elif status == 451:
            kind = BanKind.GEO_BLOCK
        else:
            kind = BanKind.BAN
        return Verdict(kind, f"status_{status}", retry_after)

    def _judge_size(
        self, status: int, method: str, body: bytes, site: _SiteRules | None
    ) -> Verdict | None:
        """A ``200`` with an empty or too small body. HEAD, 204, 205, 304 and other 3xx have no
        body by design: they are content as far as the body rules go."""
        if method.upper() == "HEAD" or status in _BODYLESS_STATUS or not 200 <= status < 300:
            if method.upper() == "HEAD" or status < 400:
                return OK
            return None  # 4xx and 5xx bodies are judged on what they say
        minimum = self.settings.min_body_size
        if site is not None and site.min_body_size is not None:
            minimum = site.min_body_size
        if status in _SIZED_STATUS and len(body) < minimum:
            return EMPTY_BODY if not body else TINY_BODY
        return None

    def _judge_body(
        self,
        status: int,
        wanted: dict[str, str],
        url: str,
        body: bytes,
        request_url: str | None,
        site: _SiteRules | None,
        expected_lang: str | Collection[str] | None,
    ) -> Verdict | None:
        """Configured body patterns on any textual body, then the HTML rules, then the page's
        declared language."""
        content_type = wanted.get("content-type", "").lower()
        declared = declared_charset(content_type)
        head = body[: self.settings.max_scan_bytes]
        patterns = self._extra_body + (site.body if site is not None else ())
        if patterns and head and not any(m in content_type for m in _BINARY_MARKERS):
            text_head = head[: self._window]
            charset = codec(declared or sniffed_charset(text_head[:2048].lower()))
            if any(p.search(decode(text_head, charset)) for p in patterns):
                return BODY_PATTERN
        if not head or not is_html(content_type, head):
            return None
        page = self._page(head, declared, len(body), status, wanted)
        site_urls = site.url if site is not None else ()
        verdict = judge_meta_refresh(page.low, page.head, url, request_url, site_urls)
        if verdict is None:
            verdict = _judge_html(page)
        if verdict is not None and verdict.kind is BanKind.THROTTLE:
            return Verdict(
                verdict.kind, verdict.reason, parse_retry_after(wanted.get("retry-after"))
            )
        if verdict is None and expected_lang and lang_mismatch(page.low, expected_lang):
            return LANG_MISMATCH
        return verdict

    def _page(
        self, head: bytes, declared: str | None, length: int, status: int, wanted: dict[str, str]
    ) -> _Page:
        """The window the HTML rules read. When the first ``max_text_bytes`` end inside a long
        inline script or style, long blocks are cut short so that what follows them (title,
        markers, text) is read too, up to ``max_scan_bytes`` into the body."""
        charset = codec(declared) if declared else ""
        if charset.startswith(("utf-16", "utf-32")) or head.startswith((b"\xff\xfe", b"\xfe\xff")):
            # Re-encode so that the byte-level markers apply; rare enough not to matter.
            wide = charset if charset.startswith(("utf-16", "utf-32")) else "utf-16"
            head = decode(head, wide).encode("utf-8")
            charset = "utf-8"
        window = self._window
        complete = len(head) <= window
        view = head if complete else head[:window]
        low = view.lower()  # ASCII only, so offsets in ``low`` and ``view`` stay the same
        if not complete and ends_inside_long_block(low):
            view, complete = condense(head, window)
            low = view.lower()
        return _Page(
            head=view,
            low=low,
            charset=charset or codec(sniffed_charset(low[:2048])),
            truncated=not complete or length >= self.settings.max_scan_bytes,
            status=status,
            authenticate="www-authenticate" in wanted,
        )
