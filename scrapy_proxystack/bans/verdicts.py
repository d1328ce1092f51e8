"""What the classifier answers: a kind of refusal, a low-cardinality reason and ``Retry-After``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class BanKind(enum.Enum):
    """What kind of refusal an answer is. The pool treats every kind but ``NONE`` as a ban."""

    NONE = "none"
    BAN = "ban"
    #: 429 or a rate-limit page: the exit is fine, it is just going too fast for this site.
    THROTTLE = "throttle"
    #: 451, a "not available in your region" page, or a page in the wrong language.
    GEO_BLOCK = "geo_block"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classifier's answer: a kind, a low-cardinality reason label and ``Retry-After``.

    ``reason`` is used in stats keys, so it is one of :data:`REASONS` or ``status_<code>``;
    never a URL or a piece of the page.
    """

    kind: BanKind
    reason: str
    retry_after: float | None = None

    @property
    def is_ban(self) -> bool:
        return self.kind is not BanKind.NONE


#: The shared "not a ban" verdict.
OK: Final = Verdict(BanKind.NONE, "ok")

#: Every reason label besides ``status_<code>``.
REASONS: Final = frozenset(
    {
        "ok",
        "captcha",
        "challenge_redirect",
        "login_redirect",
        "url_pattern",
        "empty_body",
        "tiny_body",
        "body_pattern",
        "region_page",
        "rate_limit_page",
        "lang_mismatch",
        "policy",
    }
)

CAPTCHA: Final = Verdict(BanKind.BAN, "captcha")
CHALLENGE_REDIRECT: Final = Verdict(BanKind.BAN, "challenge_redirect")
LOGIN_REDIRECT: Final = Verdict(BanKind.BAN, "login_redirect")
URL_PATTERN: Final = Verdict(BanKind.BAN, "url_pattern")
EMPTY_BODY: Final = Verdict(BanKind.BAN, "empty_body")
TINY_BODY: Final = Verdict(BanKind.BAN, "tiny_body")
BODY_PATTERN: Final = Verdict(BanKind.BAN, "body_pattern")
REGION_PAGE: Final = Verdict(BanKind.GEO_BLOCK, "region_page")
RATE_LIMIT_PAGE: Final = Verdict(BanKind.THROTTLE, "rate_limit_page")
LANG_MISMATCH: Final = Verdict(BanKind.GEO_BLOCK, "lang_mismatch")
