"""Time and memory of the PII engine grow linearly with the input, whatever the input.

No wall-clock threshold: each test masks a text and the same kind of text four times larger,
and compares. Linear work takes about 4x the CPU time, quadratic work 16x; the bound (10x) sits
between them with room for a loaded machine, and each time is the median of several runs of
CPU time (other processes do not count). Memory is the peak traced by ``tracemalloc``, which
does not depend on the machine's load at all.

``bench/pii_pathological.py`` prints the same figures from 16 KB to 4 MB.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapy_proxystack.pii import PiiMasker

if TYPE_CHECKING:
    from collections.abc import Callable

MASKER = PiiMasker()
TIME_RATIO = 10.0  # 4x input: linear ~4, quadratic ~16
MEMORY_RATIO = 6.0
BYTES_PER_BYTE = 64  # peak memory per input byte, at the larger size


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda n: (unit * (n // len(unit) + 1))[:n]


def _distinct_phones(n: int) -> str:
    return "".join(
        f"+33 6 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d} 78, "
        for i in range(n // 20 + 1)
    )[:n]


GENERATORS: dict[str, Callable[[int], str]] = {
    # the inputs of the hardening report: super-quadratic, quadratic, 400 bytes per byte
    "digit_groups": _repeat("1 0 0 "),
    "repeated_cards": _repeat("4111 1111 1111 1111 "),
    "dotted_quads": _repeat("1.2.3.4."),
    "digit_run": _repeat("7"),
    "one_digit_groups": _repeat("1 "),
    "dash_groups": _repeat("1-"),
    "paren_groups": _repeat("(1)"),
    "nbsp_groups": _repeat("1\u00a0"),
    "separators": _repeat(" -./"),
    "dates": _repeat("12/03/1985 "),
    "numbers": _repeat("12345678901 "),
    "at_signs": _repeat("@"),
    "letter_at": _repeat("a@"),
    "domain_labels": lambda n: ("a@" + "b." * n)[:n],
    "local_dots": lambda n: ("a." * n)[: n - 5] + "@b.io",
    "encoded_at": _repeat("a%40b&#64;c"),
    "obfuscated_at": _repeat("a [at] b [dot] "),
    "letters": _repeat("a"),
    "letters_digits": _repeat("AB12"),
    "hex_colons": _repeat("2a:"),
    "street_words": lambda n: ("12 " + "A" + "a" * n)[:n],
    "repeated_emails": _repeat("jane.roe@mailbox.org "),
    "repeated_phones": _repeat("+33 6 12 34 56 78 "),
    "repeated_ibans": _repeat("DE89 3704 0044 0532 0130 00 "),
    "repeated_ssn": _repeat("SSN 536-90-4399 "),
    "repeated_birth_dates": _repeat("born 12 March 1985 "),
    "distinct_phones": _distinct_phones,
    # the identifiers of the second table: labels, letter-led and letter-ended values
    "labelled_ids": _repeat("ABN 51 824 753 556, SIN 123-456-782, "),
    "label_words": _repeat("SIN PAN ABN TFN NRIC ID 1 "),
    "letter_led_ids": _repeat("PAN ACUPA7085R DE136695976 "),
    "letter_runs_digits": _repeat("ABCDEFGHIJ1234567890"),
    "gstin_like": _repeat("27AAPFU0939F1ZV"),
    "hetu_like": _repeat("131052-308T"),
    "utr_payment_like": _repeat("UTR 1955839661K"),
    "uen_like": _repeat("UEN 197401143C S16FC0121D 00192200M "),
    "slashed_groups": _repeat("181/815/08155/"),
    # an address read at the end of the text, then found again every three bytes: every
    # occurrence is a span of its own
    "ipv6_units": lambda n: "1::" * (n // 3),
}


def _cpu(text: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.thread_time()
        MASKER.mask(text)
        times.append(time.thread_time() - t0)
    return statistics.median(times)


def _base_size(make: Callable[[int], str], floor: float = 0.004) -> int:
    """The smallest size (from 4 KB, doubling) that takes at least ``floor`` CPU seconds, so
    that timer resolution and constant costs do not decide the ratio."""
    size = 4096
    while size < 1 << 20 and _cpu(make(size), runs=1) < floor:
        size *= 2
    return size


def _peak(text: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        MASKER.mask(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_time_is_linear(name: str) -> None:
    make = GENERATORS[name]
    MASKER.mask(make(4096))  # warm-up: per-value caches, compiled metadata
    size = _base_size(make)
    small, large = make(size), make(4 * size)
    ratio = _cpu(large) / max(_cpu(small), 1e-6)
    assert ratio < TIME_RATIO, (name, size, ratio)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_memory_is_linear(name: str) -> None:
    make = GENERATORS[name]
    size = 16 * 1024
    small, large = _peak(make(size)), _peak(make(4 * size))
    assert large < BYTES_PER_BYTE * 4 * size, (name, large / (4 * size))
    # Below a few kilobytes, constant costs (caches, compiled patterns) dominate the peak.
    assert large < MEMORY_RATIO * max(small, 16 * 1024), (name, small, large)


def test_the_reported_inputs_stay_small() -> None:
    """The 2 MB input that used ~810 MB: now a few bytes per byte (peak, traced)."""
    text = "1.2.3.4." * 262144
    assert _peak(text) < 8 * len(text)
    assert MASKER.mask("1 0 0 " * 11000).count("1 0 0") > 0


_units = st.lists(
    st.sampled_from(
        [*"0123456789 -./()+@[]:aZ\u00a0\u200b%&", "at", "dot", "Tel ", "SSN ", "DE89 ", "@b.io"]
    ),
    min_size=1,
    max_size=12,
).map("".join)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_units)
def test_any_repeated_unit_is_linear(unit: str) -> None:
    # Whole units, so that both sizes end the same way: a text cut inside a unit can end with
    # a value ("...00@b.io") that the other size does not have, and then every occurrence of
    # it is masked in one text and none in the other.
    def make(n: int) -> str:
        return unit * max(1, n // len(unit))

    size = 16 * 1024
    small, large = _peak(make(size)), _peak(make(4 * size))
    assert large < BYTES_PER_BYTE * 4 * size
    assert large < MEMORY_RATIO * max(small, 16 * 1024)
    size = _base_size(make)
    ratio = _cpu(make(4 * size), runs=3) / max(_cpu(make(size), runs=3), 1e-6)
    assert ratio < TIME_RATIO, (unit, size, ratio)
