"""PII detection and masking for crawled text, with no Scrapy dependency.

>>> from scrapy_proxystack.pii import PiiMasker
>>> PiiMasker().mask("Write to jane.roe@mailbox.org or call +33 6 12 34 56 78.")
'Write to [EMAIL] or call [PHONE].'
"""

from __future__ import annotations

from scrapy_proxystack.pii.engine import MaskResult, NameDetector, PiiMasker
from scrapy_proxystack.pii.phones import DEFAULT_LANGUAGES, LANGUAGE_REGIONS
from scrapy_proxystack.pii.types import (
    ALL_TYPES,
    DEFAULT_TYPES,
    NATIONAL_ID_TYPES,
    OPERATORS,
    PiiSpan,
    placeholder,
)

__all__ = [
    "ALL_TYPES",
    "DEFAULT_LANGUAGES",
    "DEFAULT_TYPES",
    "LANGUAGE_REGIONS",
    "NATIONAL_ID_TYPES",
    "OPERATORS",
    "MaskResult",
    "NameDetector",
    "PiiMasker",
    "PiiSpan",
    "placeholder",
]
