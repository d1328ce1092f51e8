"""Time and memory of PII masking on pathological texts, from 16 KB to 4 MB.

Each generator makes a text of a given size out of what breaks text scanners: long digit runs,
long runs of short digit groups or separators, runs of dots, ``@`` or letters, huge tokens
without a space, the same valid value repeated, many distinct valid values, one huge line of
real page text. For every generator and size it prints the CPU time and MB/s of this project's
``PiiMasker`` and of the naive regex masker (``bench/pii_naive.py``) in the same run, the peak
memory allocated while masking (``tracemalloc``, in bytes per input byte), and the slope of
log(time) and log(memory) against log(size) fitted over the sizes: 1 is linear, 2 quadratic.

An engine is not run on the next size when the slope it showed so far predicts more than
``--cap`` seconds there (the naive regex is quadratic on some of these texts); its slope is
fitted on the sizes it finished. Peak memory is traced up to ``--memory-max-kb`` (tracemalloc
slows allocations down several times).

    python bench/pii_pathological.py                  # every generator, 16 KB -> 4 MB
    python bench/pii_pathological.py --only digit_groups,dotted_quads --max-kb 1024

The last line of the output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pii_naive import naive_mask
from scrapy_proxystack.pii import PiiMasker

Masker = Callable[[str], str]
Generator = Callable[[int], str]


def _repeat(unit: str) -> Generator:
    return lambda n: (unit * (n // len(unit) + 1))[:n]


def _distinct_phones(n: int) -> str:
    """Valid, all different French mobile numbers: the worst case of the repeat search."""
    parts = []
    size = i = 0
    while size < n:
        part = f"+33 6 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d} 78, "
        parts.append(part)
        size += len(part)
        i += 1
    return "".join(parts)[:n]


def _distinct_emails(n: int) -> str:
    parts = []
    size = i = 0
    while size < n:
        part = f"user{i}@mail{i % 997}.org "
        parts.append(part)
        size += len(part)
        i += 1
    return "".join(parts)[:n]


def _token(n: int) -> str:
    """One token without a space: base64-like letters, digits, + and /."""
    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return "".join(rng.choices(alphabet, k=n))


def _digit_soup(n: int) -> str:
    """Random digits and separators: every kind of cluster, never twice the same."""
    rng = random.Random(6)
    return "".join(rng.choices("0123456789012345678901234567890123456789 -./()+", k=n))


_PAGES: list[str] = []


def _huge_line(n: int) -> str:
    """Labelled corpus pages (personal data and look-alikes) joined into one line."""
    if not _PAGES:
        from bench.pii_corpus import generate

        _PAGES.extend(rec.text.replace("\n", " ") for rec in generate(11, 400))
    text = " ".join(_PAGES)
    while len(text) < n:
        text += " " + text
    return text[:n]


GENERATORS: dict[str, Generator] = {
    # the three inputs of the hardening report
    "digit_groups": _repeat("1 0 0 "),
    "repeated_cards": _repeat("4111 1111 1111 1111 "),
    "dotted_quads": _repeat("1.2.3.4."),
    # long digit runs and long runs of short groups
    "digit_run": _repeat("7"),
    "one_digit_groups": _repeat("1 "),
    "dash_groups": _repeat("1-"),
    "paren_groups": _repeat("(1)"),
    "nbsp_groups": _repeat("1\u00a0"),
    "plus_groups": _repeat("+1 "),
    "digit_soup": _digit_soup,
    # long separator runs
    "separators": _repeat(" -./"),
    "dots": _repeat("."),
    # runs of @, letters, dots
    "at_signs": _repeat("@"),
    "letter_at": _repeat("a@"),
    "domain_labels": lambda n: ("a@" + "b." * n)[:n],
    "local_dots": lambda n: ("a." * n)[: n - 5] + "@b.io",
    "encoded_at": _repeat("a%40b&#64;c"),
    "obfuscated_at": _repeat("a [at] b [dot] "),
    "letters": _repeat("a"),
    "no_space_token": _token,
    "letters_digits": _repeat("AB12"),
    "hex_colons": _repeat("2a:"),
    # lower-case identifier shapes (each stops the scan): bare, as runs, after a label
    "lower_id_shapes": _repeat("s1234567d "),
    "lower_iban_runs": _repeat("de89 3704 "),
    "labelled_lower_ids": _repeat("nric: s1234567d "),
    "labelled_lower_fails": _repeat("iban: de89 3704 0044 0532 0130 01 "),
    # the same valid value repeated, many distinct valid values
    "repeated_emails": _repeat("jane.roe@mailbox.org "),
    "repeated_phones": _repeat("+33 6 12 34 56 78 "),
    "repeated_ibans": _repeat("DE89 3704 0044 0532 0130 00 "),
    "repeated_ssn": _repeat("SSN 536-90-4399 "),
    "repeated_birth_dates": _repeat("born 12 March 1985 "),
    "distinct_phones": _distinct_phones,
    "distinct_emails": _distinct_emails,
    # real text, no line breaks
    "huge_line": _huge_line,
}

SIZES_KB = (16, 64, 256, 1024, 4096)


def _cpu(mask: Masker, text: str, repeat: int) -> float:
    """Median CPU time of ``repeat`` runs (CPU time: other processes do not count)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        mask(text)
        times.append(time.process_time() - t0)
    return statistics.median(times)


def _peak(mask: Masker, text: str) -> int:
    """Bytes allocated at the peak while masking (the input itself excluded)."""
    gc.collect()
    tracemalloc.start()
    try:
        mask(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def slope(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(size)."""
    pairs = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v > 0]
    if len(pairs) < 2:
        return float("nan")
    mx = statistics.fmean(x for x, _ in pairs)
    my = statistics.fmean(y for _, y in pairs)
    den = sum((x - mx) ** 2 for x, _ in pairs)
    return sum((x - mx) * (y - my) for x, y in pairs) / den


def run(
    name: str,
    gen: Generator,
    engines: dict[str, Masker],
    sizes: list[int],
    args: argparse.Namespace,
) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for engine, mask in engines.items():
        done: list[int] = []
        times: list[float] = []
        peaks: list[int] = []
        for size in sizes:
            text = gen(size)
            mask(gen(1024))  # warm-up: lazy imports, compiled metadata
            elapsed = _cpu(mask, text, 3 if size < 64 * 1024 else 1)
            done.append(size)
            times.append(elapsed)
            if size <= args.memory_max_kb * 1024:
                peaks.append(_peak(mask, text))
            local = slope(done[-2:], times[-2:]) if len(done) > 1 else 1.0
            if elapsed * 4 ** max(1.0, local) > args.cap:
                break
        out[engine] = {
            "sizes_kb": [s // 1024 for s in done],
            "seconds": [round(x, 4) for x in times],
            "mb_per_s": [
                round(s / 1e6 / max(x, 1e-9), 2) for s, x in zip(done, times, strict=True)
            ],
            "peak_bytes_per_byte": [round(p / s, 2) for p, s in zip(peaks, done, strict=False)],
            "time_slope": round(slope(done, times), 2),
            "memory_slope": round(slope(done[: len(peaks)], [float(p) for p in peaks]), 2),
            "capped": len(done) < len(sizes),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="PII masking on pathological texts")
    parser.add_argument("--only", default="", help="comma-separated generator names")
    parser.add_argument("--max-kb", type=int, default=4096, help="largest size (default 4096)")
    parser.add_argument(
        "--memory-max-kb",
        type=int,
        default=256,
        help="largest size whose peak memory is traced (tracemalloc is slow; default 256)",
    )
    parser.add_argument(
        "--cap",
        type=float,
        default=8.0,
        help="largest predicted CPU seconds of one size (default 8)",
    )
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(GENERATORS)
    sizes = [kb * 1024 for kb in SIZES_KB if kb <= args.max_kb]
    engines: dict[str, Masker] = {"proxystack": PiiMasker().mask, "naive_regex": naive_mask}
    results: dict[str, dict[str, dict[str, object]]] = {}
    header = f"{'generator':<22}{'engine':<13}{'slope t':>8}{'slope m':>8}  MB/s per size (KB)"
    print(header)
    print(" " * 43 + "  ".join(f"{kb:>7}" for kb in SIZES_KB if kb <= args.max_kb))
    for name in names:
        results[name] = run(name, GENERATORS[name], engines, sizes, args)
        for engine, r in results[name].items():
            speeds = "  ".join(f"{x:>7.2f}" for x in r["mb_per_s"])  # type: ignore[attr-defined]
            mem = ",".join(f"{x:g}" for x in r["peak_bytes_per_byte"])  # type: ignore[attr-defined]
            capped = " (capped)" if r["capped"] else ""
            print(
                f"{name:<22}{engine:<13}{r['time_slope']:>8.2f}{r['memory_slope']:>8.2f}  "
                f"{speeds}{capped}   peak B/B: {mem}",
                flush=True,
            )
    worst = {
        engine: max(results[n][engine]["time_slope"] for n in names)  # type: ignore[type-var]
        for engine in engines
    }
    print(f"largest time slope: {worst}")
    print(json.dumps({"sizes_kb": [s // 1024 for s in sizes], "results": results}))


if __name__ == "__main__":
    main()
