"""Judge every answer that came through an exit; a ban page never reaches the spider."""

from __future__ import annotations

import logging
import zlib
from typing import TYPE_CHECKING, Any, NoReturn

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler, load_object

from scrapy_proxystack.bans import (
    OK,
    BanClassifier,
    BanClassifierSettings,
    BanKind,
    Verdict,
    declared_language,
    language_set,
)
from scrapy_proxystack.exceptions import BannedResponse
from scrapy_proxystack.languages import SiteLanguages
from scrapy_proxystack.runtime import enabled_stack

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from scrapy_proxystack.config import ProxyConfig
    from scrapy_proxystack.pool import ExitPool
    from scrapy_proxystack.routing import Router
    from scrapy_proxystack.stats import StatsRecorder
    from scrapy_proxystack.throttle import SiteThrottle

__all__ = ["BanDetectionMiddleware", "BannedResponse"]

logger = logging.getLogger(__name__)

#: The classifier only reads this much of a body; inflating more would be wasted work.
_SCAN_BYTES = BanClassifierSettings().max_scan_bytes


def _decoded_head(response: Response, limit: int = _SCAN_BYTES) -> bytes | None:
    """The first ``limit`` bytes of the body, decompressed if needed.

    This middleware sits before HttpCompressionMiddleware on the way back (so it can judge a
    redirect before it is followed), so it sees the body as it came off the wire. Only the head
    is inflated, whatever the codings (``gzip, br`` is decoded right to left), so a compression
    bomb costs at most ``limit`` bytes here. ``None`` when a coding cannot be decoded.
    """
    body = response.body
    header = (response.headers.get(b"Content-Encoding") or b"").decode("latin-1").lower()
    codings = [c.strip() for c in header.split(",") if c.strip() and c.strip() != "identity"]
    try:
        for coding in reversed(codings):
            body = _inflate(coding, body, limit)
    except (ImportError, zlib.error, ValueError, OSError, EOFError):
        return None
    return body[:limit]


def _inflate(coding: str, data: bytes, limit: int) -> bytes:
    if coding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if coding != "deflate" else zlib.MAX_WBITS  # 47: gzip or zlib header
        try:
            return zlib.decompressobj(wbits).decompress(data, limit)
        except zlib.error:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data, limit)  # raw deflate
    if coding == "br":
        return _unbrotli(data, limit)
    if coding == "zstd":
        import zstandard  # type: ignore[import-not-found,import-untyped,unused-ignore]

        reader = zstandard.ZstdDecompressor().stream_reader(data)
        out: bytes = reader.read(limit)
        return out
    raise ValueError(f"unsupported content coding {coding!r}")


def _unbrotli(data: bytes, limit: int) -> bytes:
    """Brotli in small input steps, stopping once ``limit`` bytes are out."""
    try:
        import brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        import brotlicffi as brotli  # type: ignore[import-not-found,import-untyped,unused-ignore]
    decompressor = brotli.Decompressor()
    out = bytearray()
    step = 256
    for start in range(0, len(data), step):
        out += decompressor.process(data[start : start + step])
        if len(out) >= limit:
            break
    return bytes(out[:limit])


class BanDetectionMiddleware:
    """Classifies answers that came through an exit, and retries bans through another exit.

    A ban marks the (exit, site) pair only: the exit keeps serving other sites. Retries reuse
    Scrapy's ``get_retry_request`` (stats under ``proxystack/retry/ban``) and share the request's
    ``retry_times`` with RetryMiddleware, so the two never retry the same request twice over.
    """

    def __init__(
        self,
        *,
        router: Router,
        pool: ExitPool,
        throttle: SiteThrottle,
        stats: StatsRecorder,
        warn_once: Callable[..., bool],
        config: ProxyConfig,
        classifier: BanClassifier,
        expected_lang: Mapping[str, frozenset[str]],
        lang_check: bool = True,
        max_retries: int = 5,
        policy: Any = None,
        spider: Callable[[], Spider | None] = lambda: None,
    ) -> None:
        self.router = router
        self.pool = pool
        self.throttle = throttle
        self.stats = stats
        self.warn_once = warn_once
        self.config = config
        self.classifier = classifier
        #: Every language of a locale's Accept-Language: Canada expects English and French.
        self.expected_lang = dict(expected_lang)
        self.lang_check = lang_check
        self.max_retries = max_retries
        self.policy = policy
        self._spider = spider
        self.languages = SiteLanguages()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BanDetectionMiddleware:
        stack = enabled_stack(crawler)
        st = stack.settings
        if not st.ban_enabled:
            raise NotConfigured("PROXYSTACK_BAN_ENABLED is False")
        expected: dict[str, frozenset[str]] = {}
        for name, locale in stack.config.locales.items():
            value = st.accept_language_for(name, locale.accept_language)
            if value:
                expected[name] = language_set(value)
        return cls(
            router=stack.router,
            pool=stack.pool,
            throttle=stack.throttle,
            stats=stack.stats,
            warn_once=stack.warn_once,
            config=stack.config,
            classifier=BanClassifier(
                BanClassifierSettings(
                    ban_status=st.ban_http_codes, min_body_size=st.ban_min_body_size
                )
            ),
            expected_lang=expected,
            lang_check=st.ban_lang_check,
            max_retries=st.ban_max_retries,
            policy=(
                build_from_crawler(load_object(st.ban_policy), crawler) if st.ban_policy else None
            ),
            spider=lambda: crawler.spider,
        )

    def _classify(self, request: Request, response: Response) -> Verdict:
        spider = self._spider()
        legacy = getattr(spider, "response_is_ban", None)
        if legacy is None and self.policy is not None:
            legacy = getattr(self.policy, "response_is_ban", None)
        if legacy is not None:  # a scrapy-rotating-proxies policy: its answer is final
            is_ban = bool(legacy(request, response))
            return Verdict(BanKind.BAN, "policy") if is_ban else Verdict(BanKind.NONE, "ok")
        decision = self.router.decide(request)
        domain = urlparse_cached(request).hostname or ""
        rule = self.config.domain_rule(domain)
        body = _decoded_head(response)
        if body is None:
            self.stats.inc("bans", "undecodable_body")
            body = b"?" * min(len(response.body), 1024)  # judged on status and size only
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in ((k, response.headers.get(k) or b"") for k in response.headers)
        }
        location = headers.get("Location") if 300 <= response.status < 400 else None
        declared = language_set(rule.lang) if rule is not None and rule.lang else None
        expected: frozenset[str] | None = declared
        if expected is None and self.lang_check and decision.source == "domain":
            # Only for sites the YAML declares as a locale's: a request routed by meta or by a
            # default may well want the site's own language from that country.
            expected = self.expected_lang.get(decision.locale or "")
        verdict = self.classifier.classify(
            status=response.status,
            headers=headers,
            url=response.url,
            body=body,
            request_url=request.url,
            redirect_location=location,
            expected_lang=expected,
            rules=rule.bans if rule is not None else None,
            method=request.method,
        )
        if expected and declared is None:
            verdict = self._judge_language(request, domain, body, verdict, expected)
        if self.policy is not None and hasattr(self.policy, "classify"):
            verdict = self.policy.classify(request, response, verdict)
        return verdict

    def _judge_language(
        self,
        request: Request,
        domain: str,
        body: bytes,
        verdict: Verdict,
        expected: frozenset[str],
    ) -> Verdict:
        """A page in another language is a geo-block only on evidence (see languages.py)."""
        if verdict.reason != "lang_mismatch":
            if not verdict.is_ban:
                lang = declared_language(body)
                if lang is not None and lang in expected:
                    self.languages.saw_expected(domain)
            return verdict
        lang = declared_language(body)
        judgement = self.languages.judge(domain, lang, str(self.router.exit_of(request)))
        if judgement == "geo_block":
            return verdict
        self.stats.inc("bans", "lang_accepted")
        if judgement == "learned":
            self.stats.inc("bans", "lang_learned")
            logger.info(
                "Site %(domain)s answers in %(lang)r through every exit tried, none of its "
                "locale's languages (%(expected)s): taking %(lang)r as its language, not as "
                "a geo-block (declare it with 'lang:' under domains in the proxy YAML)",
                {"domain": domain, "lang": lang, "expected": ", ".join(sorted(expected))},
            )
        return OK

    def process_response(self, request: Request, response: Response) -> Request | Response:
        router = self.router
        if router.exit_of(request) is None or request.meta.get("proxystack_dont_ban_check"):
            return response
        exit_id = router.answered_through(request)
        if exit_id is None or "cached" in response.flags:
            return response  # not an answer through the exit (HTTP cache, ...): nothing to judge
        verdict = self._classify(request, response)
        if not verdict.is_ban:
            return response
        stats = self.stats
        domain = urlparse_cached(request).hostname or ""
        latency = request.meta.get("download_latency")
        router.take_held(request)  # record_ban/record_throttle release it
        if verdict.kind is BanKind.THROTTLE:
            throttled = self._throttled(request, response, exit_id, domain, verdict)
            if throttled is not None:
                return throttled
            return self._give_up(request, domain, verdict)
        cooldown = self.pool.record_ban(
            exit_id,
            domain,
            verdict.reason,
            retry_after=verdict.retry_after,
            latency=float(latency) if latency is not None else None,
        )
        self.throttle.exit_pushed_back(exit_id, domain, verdict.retry_after)
        stats.inc("bans", "reason", verdict.reason)
        router.emit(request, "ban", verdict.reason, status=response.status, size=len(response.body))
        stats.inc("bans", "kind", verdict.kind.name.lower())
        stats.inc("bans", "locale", router.exit_locale(request) or "none")
        if verdict.retry_after is not None:
            stats.inc("bans", "retry_after_honoured")
        logger.debug(
            "Ban (%(reason)s) of exit %(exit)s by %(domain)s; cool-down %(cooldown).0fs",
            {"reason": verdict.reason, "exit": exit_id, "domain": domain, "cooldown": cooldown},
        )
        retry = None
        if not request.meta.get("dont_retry") and request.meta.get("proxystack_session") is None:
            retry = get_retry_request(
                request,
                spider=self._spider(),  # type: ignore[arg-type]
                reason=f"ban_{verdict.reason}",
                max_retry_times=request.meta.get("max_proxies_to_try", self.max_retries),
                stats_base_key="proxystack/retry/ban",
                give_up_log_level=logging.DEBUG,
            )
        if retry is not None:
            router.forget(retry, exit_id)
            return retry
        return self._give_up(request, domain, verdict)

    def _throttled(
        self, request: Request, response: Response, exit_id: str, domain: str, verdict: Verdict
    ) -> Request | None:
        """429 or a rate-limit page: pacing, not a ban (DESIGN: a refusal is a schedule).

        The pair waits for ``Retry-After`` and its rate is halved; the request goes again,
        through another exit (a sticky session: the same one, once it is ready) or, when none is
        ready, after waiting for one. ``None`` when it must not go again (``dont_retry``, too
        many times).
        """
        stats = self.stats
        if self.pool.record_throttle(exit_id, domain, verdict.retry_after):
            self.router.site_recovered(domain)
        delay = self.throttle.exit_throttled(exit_id, domain)
        self.pool.pace(exit_id, domain, delay, learned=True)
        stats.inc("bans", "reason", verdict.reason)
        stats.inc("bans", "kind", "throttle")
        stats.inc("throttle", "pushbacks", verdict.reason)
        if verdict.retry_after is not None:
            stats.inc("bans", "retry_after_honoured")
        self.router.emit(
            request, "ban", verdict.reason, status=response.status, size=len(response.body)
        )
        logger.debug(
            "Slow down (%(reason)s) from %(domain)s for exit %(exit)s: one request per "
            "%(delay).2fs, next after %(retry_after)s",
            {
                "reason": verdict.reason,
                "domain": domain,
                "exit": exit_id,
                "delay": delay,
                "retry_after": verdict.retry_after,
            },
        )
        retry = self.router.throttled_copy(request, exit_id)
        if retry is not None:
            stats.inc("retry", "throttle", "count")
        return retry

    def _give_up(self, request: Request, domain: str, verdict: Verdict) -> NoReturn:
        self.stats.inc("bans", "gave_up", verdict.reason)
        self.router.count_drop(request, "ban")
        self.warn_once(
            ("ban_gave_up", domain, verdict.reason),
            "Dropping ban pages (%(reason)s) from %(domain)s after retries ran out; "
            "they are counted in proxystack/bans/gave_up/%(reason)s (first: %(url)s)",
            {"reason": verdict.reason, "domain": domain, "url": request.url},
        )
        raise BannedResponse(request.url, verdict.reason)
