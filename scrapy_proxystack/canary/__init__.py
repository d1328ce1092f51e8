"""Canary analysis between the pools of a locale: judge a candidate vendor against its baseline.

Plain package (no Scrapy import): ``sequential`` (the always-valid test), ``judge`` (matched
pairs, criteria, decisions for one canary), ``controller`` (every canary of a crawl, applied to
the exit pool).
"""

from __future__ import annotations

from scrapy_proxystack.canary.judge import CanaryJudge, CanarySpec, Decision
from scrapy_proxystack.canary.sequential import MixtureSPRT

__all__ = ["CanaryJudge", "CanarySpec", "Decision", "MixtureSPRT"]
