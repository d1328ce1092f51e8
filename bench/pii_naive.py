"""The naive regex masker the PII benchmarks compare against.

What a crawl pipeline written in an afternoon does: one alternation of the usual patterns (e-mail,
phone-like digit runs, card-like digit runs, IBAN-like tokens, dotted quads, SSN-like groups),
every match replaced by one placeholder, no validation. It is the speed anchor of
``bench/pii.py`` and ``bench/pii_pathological.py``: a validating engine should not be slower.
"""

from __future__ import annotations

import re

NAIVE = re.compile(
    r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"  # e-mail
    r"|\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"  # IBAN
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b"  # IPv4
    r"|\b\d{3}-\d{2}-\d{4}\b"  # SSN
    r"|(?<![\w])\+?\d[\d \-().]{6,}\d\b"  # phone and card numbers
)


def naive_mask(text: str) -> str:
    """Every match of the usual patterns replaced by ``[PII]``."""
    return NAIVE.sub("[PII]", text)
