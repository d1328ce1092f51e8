"""PII detection and masking for crawled text, with no Scrapy dependency.

>>> from scrapy_proxystack.pii import PiiMasker
>>> PiiMasker().mask("Write to jane.roe@mailbox.org or call +33 6 12 34 56 78.")
'Write to [EMAIL] or call [PHONE].'
"""

from __future__ import annotations

import warnings

from scrapy_proxystack.pii._build import COMPILED, stale_extensions
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

if stale := stale_extensions():
    warnings.warn(
        f"scrapy_proxystack.pii: {', '.join(stale)} changed after the engine was compiled, and "
        "the compiled engine still runs the old code: install the package again (pip install "
        "-e .), or install it with PROXYSTACK_PURE_PYTHON=1 to run the sources as they are",
        RuntimeWarning,
        stacklevel=2,
    )

__all__ = [
    "ALL_TYPES",
    "COMPILED",
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
