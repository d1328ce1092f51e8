"""What bot-protection vendors put in their answers: URLs, headers and markup.

Data first: the challenge and login URL shapes, the headers only challenges carry, and the
markers of each vendor's block, challenge and widget markup, with how much each one proves.
The functions find the markers in a lower-cased page at bounded cost.

Marker strengths:

- *strong* (``STRONG``): markup only challenge and block pages carry. Cloudflare's
  ``_cf_chl_opt``/``cf-chl-*``/``jschl``/``orchestrate`` scripts and the ``cf-error-10xx`` box
  of its access-denied errors, DataDome's ``captcha-delivery.com``, PerimeterX's ``px-captcha``,
  Incapsula's block iframe, Amazon's ``validateCaptcha`` form, AWS WAF's token scripts and
  ``gokuProps``, Sucuri's ``sucuri_cloudproxy_js`` redirect, Anubis' and go-away's asset paths,
  Radware's ``captcha.perfdrive.com``, Distil, SiteGround, the Sina Visitor System script;
- *widget* (``WIDGET``): a captcha widget or a vendor's sensor script (reCAPTCHA, hCaptcha,
  Turnstile, Cloudflare's bot-management and JS-detection scripts, Incapsula's resource script,
  Kasada's ``KPSDK``). Login and contact forms and protected normal pages carry them too, so a
  widget never decides alone, except on a page that shows nothing at all.
"""

from __future__ import annotations

import re
from typing import Final

#: Challenge endpoints of the common vendors and the generic ``/captcha``-style paths. A path
#: word must end the segment (``/captcha``, ``/captcha/``, ``/captcha.html``, ``/captcha?``),
#: so ``/captcha-solving-guide`` or ``/challenges-of-2024`` are not challenges.
CHALLENGE_URL_RE: Final = re.compile(
    r"/(?:challenge|captcha|captchas|recaptcha|robot-?check|bot-?check|human-?check"
    r"|are-?you-?human|verify-?human|blocked|access-?denied)(?=[/?#.;&]|$)"
    r"|cdn-cgi/challenge-platform|cdn-cgi/l/chk_|/_incapsula_resource|/distil_"
    r"|perimeterx|px-captcha|/sorry/index|/sorry/\?|validate\.perfdrive\.com"
    r"|captcha-delivery\.com|/errors/validatecaptcha|/\.well-known/sgcaptcha"
    r"|/_sec/cp_challenge|hcaptcha\.com|google\.com/recaptcha|challenges\.cloudflare\.com"
)
#: Login walls, in the languages covered; the same segment rule (``/author`` is no ``/auth``).
LOGIN_URL_RE: Final = re.compile(
    r"/(?:log-?in|log_in|sign-?in|sign_in|signon|logon|auth|authenticate|authorize|oauth2?|sso"
    r"|cas/login|session/new|sessions/new|users/sign_in|accounts?/login|servicelogin"
    r"|wp-login\.php|connexion|se-connecter|anmelden|einloggen|iniciar-sesion|entrar|accedi"
    r"|login\.php|login\.aspx|login\.jsp)(?=[/?#.;&]|$)"
    r"|^[a-z][a-z0-9+.-]*://(?:login|signin|auth|sso|accounts)\."
)


def challenge_header(headers: dict[str, str]) -> bool:
    """Headers that only challenges carry: Cloudflare's ``cf-mitigated: challenge`` and AWS
    WAF's ``x-amzn-waf-action`` (``captcha`` or ``challenge``). ``headers`` has lower-case
    names."""
    if headers.get("cf-mitigated", "").strip().lower() == "challenge":
        return True
    return headers.get("x-amzn-waf-action", "").strip().lower() in ("captcha", "challenge")


#: Candidate vendor markers, all found through their first ``c`` so that ``re`` can skip to
#: the next ``c`` byte at C speed: this single pass is the whole cost of the vendor check on a
#: normal page. Each hit is then judged in context by :func:`_marker_kind`.
_CANDIDATE_RE: Final = re.compile(
    rb"c(?:a(?:ptcha|psula)|f(?:[-_]chl|-(?:browser-verification|turnstile|error-1\d\d\d))"
    rb"|dn-cgi/challenge-platform/|h(?:allenge(?:s\.cloudflare\.com|\.js)"
    rb"|l(?<=jschl))|wudnsai|loudproxy|md/(?:anubis|go-away)/)"
)
_ORCHESTRATE_RE: Final = re.compile(rb"(?:h/[a-z]/)?orchestrate/")
#: Right before ``captcha``: vendor block pages, never a widget on a normal form.
_STRONG_CAPTCHA_PREFIXES: Final = (
    b"px-",  # PerimeterX / HUMAN "Press & Hold" block page: <div id="px-captcha">
    b"_px",  # PerimeterX block page globals (_pxCaptcha...)
    b"distil_r_",  # Distil Networks / Imperva ABP
    b"/errors/validate",  # Amazon robot check form action
    b"/.well-known/sg",  # SiteGround captcha
)
#: Cloudflare's 1000-series errors that refuse the client (``<div class="cf-error-details
#: cf-error-1020">``, also inside a site's custom error page): banned network (1005), banned
#: address (1006-1008), banned country (1009), browser signature (1010), hotlinking (1011),
#: access denied (1012), firewall rule (1020). 1015 is a rate limit, left to its phrases; the
#: others (DNS and origin errors) say nothing about the client.
_CLOUDFLARE_BAN_ERRORS: Final = frozenset(
    {b"1005", b"1006", b"1007", b"1008", b"1009", b"1010", b"1011", b"1012", b"1020"}
)
#: Markers without a ``c`` to anchor them, looked for only on pages that show next to nothing
#: (a challenge stub is all script): strong, then widget.
_QUIET_STRONG: Final = (
    b"gokuprops",  # AWS WAF captcha interstitial
    b"/js/visitor/mini",  # Sina Visitor System
    b"passport.weibo.com/visitor",
)
_QUIET_WIDGET: Final = (
    b"kpsdk",  # Kasada: its SDK also runs on protected normal pages
    b"/cdn-cgi/bm/cv/",  # Cloudflare bot management, injected into normal pages too
)
_MAX_CANDIDATES: Final = 64

STRONG, WIDGET = 2, 1


def in_markup(low: bytes, pos: int) -> bool:
    """Is ``pos`` inside a tag or a script, rather than in text a reader sees?

    Text about a vendor ("the px-captcha div", an escaped code sample) is prose, not a
    challenge. A JSON data island (JSON-LD, ``__NEXT_DATA__``) carries article text, so it
    counts as prose too.
    """
    lt = low.rfind(b"<", 0, pos)
    if lt == -1:
        return False
    if lt > low.rfind(b">", 0, pos):
        return True
    script = low.rfind(b"<script", 0, pos)
    if script == -1 or script < low.rfind(b"</script", 0, pos):
        return False
    end = low.find(b">", script, pos)
    return end != -1 and b"json" not in low[script:end]


def _captcha_kind(low: bytes, start: int, end: int) -> int:
    if low.startswith(b"-delivery.com", end):  # DataDome's captcha iframe / script
        return STRONG
    if low.startswith(b".perfdrive.com", end):  # Radware Bot Manager's captcha page
        return STRONG
    before = low[max(0, start - 24) : start]
    if before.endswith(_STRONG_CAPTCHA_PREFIXES):
        return STRONG
    # AWS WAF serves its interstitial scripts from *.token.awswaf.com; the JS SDK that
    # normal pages embed comes from *.sdk.awswaf.com.
    return STRONG if b"token.awswaf.com" in low[max(0, start - 200) : start] else WIDGET


def _marker_kind(low: bytes, start: int, end: int) -> int:
    """Judge one candidate hit: ``STRONG`` (only ever on challenge pages), ``WIDGET`` (a
    captcha widget or a vendor sensor script, also found on normal forms and pages) or 0."""
    token = low[start:end]
    if token == b"captcha":
        return _captcha_kind(low, start, end)
    if token == b"capsula":
        return WIDGET if low[max(0, start - 2) : start] == b"in" else 0
    if token == b"cdn-cgi/challenge-platform/":
        # Cloudflare injects .../challenge-platform/scripts/jsd/main.js into normal pages; only
        # the challenge page loads the "orchestrate" scripts.
        return STRONG if _ORCHESTRATE_RE.match(low, end) else WIDGET
    if token in (b"challenges.cloudflare.com", b"cf-turnstile"):
        return WIDGET  # Turnstile: also on normal login and contact forms
    if token == b"challenge.js":
        window = low[max(0, start - 200) : start]
        if b"token.awswaf.com" in window:
            return STRONG
        return WIDGET if b"awswaf" in window else 0
    if token.startswith(b"cf-error-"):
        return STRONG if token[-4:] in _CLOUDFLARE_BAN_ERRORS else 0
    if token == b"cloudproxy":
        return STRONG if low[max(0, start - 7) : start] == b"sucuri_" else 0
    # cf_chl / cf-chl (Cloudflare challenge state), cf-browser-verification and jschl (the old
    # "I'm Under Attack" page), cwudnsai (Incapsula's block iframe), Anubis' and go-away's
    # /cmd/ asset paths.
    return STRONG


def markup_evidence(low: bytes) -> tuple[bool, bool]:
    """(strong marker found, widget found), counting only hits inside tags or scripts."""
    widget = False
    for count, match in enumerate(_CANDIDATE_RE.finditer(low)):
        if count >= _MAX_CANDIDATES:
            break
        start, end = match.span()
        kind = _marker_kind(low, start, end)
        if kind == 0 or (kind == WIDGET and widget) or not in_markup(low, start):
            continue
        if kind == STRONG:
            return True, widget
        widget = True
    return False, widget


_CLOUDFLARE_ERROR_BOX_RE: Final = re.compile(rb"cf-error-(1\d\d\d)(?![0-9])")


def cloudflare_error_box(low: bytes) -> bytes | None:
    """The code of the Cloudflare 1000-series error box that refuses the client (``1020``),
    when the page holds one in its markup.

    Cloudflare puts the same box into a site's own error page, however long the page around it
    is (a 670 KB marketing template), so it decides where other markers would not.
    """
    for found in _CLOUDFLARE_ERROR_BOX_RE.finditer(low):
        if found.group(1) in _CLOUDFLARE_BAN_ERRORS and in_markup(low, found.start()):
            return found.group(1)
    return None


def quiet_evidence(low: bytes) -> tuple[bool, bool]:
    """(strong, widget) from the markers :data:`_CANDIDATE_RE` cannot anchor on a ``c``.

    Called only for pages that show next to nothing, so a few ``in`` tests over the page are
    affordable there and never run on ordinary pages.
    """
    strong = any(m in low for m in _QUIET_STRONG)
    return strong, not strong and any(m in low for m in _QUIET_WIDGET)
