"""Benchmark of PII maskers on the labelled corpus of ``bench/pii_corpus.py``.

Scores, per engine, in one run and on the same records:

* recall per type: share of labelled values that no longer appear in the output;
* hard negatives kept: share of labelled look-alikes that still appear, unchanged;
* preservation: share of the non-PII words (outside labelled values) that survive;
* MB/s: UTF-8 megabytes of record text masked per second, one thread, one record at a time
  (as the item pipeline calls it).

Engines: this project's ``PiiMasker``; Presidio (analyzer + anonymizer) with its predefined
recognizers, including the phone recognizer, on a blank spaCy pipeline because no spaCy model
can be installed offline (so without its NER: persons and locations are not detected); and
scrubadub with its default detectors.

    pip install -r bench/requirements-pii.txt
    python bench/pii.py --seed 7 --records 1000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pii_corpus import Record, generate, prose_pages
from scrapy_proxystack.pii import PiiMasker

Masker = Callable[[str], str]
STRUCTURED = [
    "email",
    "phone",
    "credit_card",
    "iban",
    "ip_address",
    "us_ssn",
    "fr_nir",
    "de_tax_id",
    "es_dni",
    "es_nie",
    "gb_nino",
    "br_cpf",
    "in_aadhaar",
    "jp_my_number",
    "it_fiscal_code",
    "nl_bsn",
    "pl_pesel",
    "se_personnummer",
]
OTHER = ["date_of_birth", "street_address"]


def proxystack() -> Masker:
    return PiiMasker().mask


def presidio() -> Masker | None:
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_anonymizer import AnonymizerEngine
    except ImportError:
        return None

    class BlankSpacy(SpacyNlpEngine):  # type: ignore[misc]
        """spaCy tokenizer only: no model download, so no NER."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankSpacy(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    anonymizer = AnonymizerEngine()

    def mask(text: str) -> str:
        results = analyzer.analyze(text=text, language="en")
        return str(anonymizer.anonymize(text=text, analyzer_results=results).text)

    return mask


def scrubadub_masker() -> Masker | None:
    try:
        import scrubadub
    except ImportError:
        return None
    scrubber = scrubadub.Scrubber()
    return lambda text: str(scrubber.clean(text))


def _words(text: str, skip: list[tuple[int, int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    pos = 0
    for word in text.split():
        start = text.index(word, pos)
        end = start + len(word)
        pos = end
        if not any(s < end and start < e for s, e in skip):
            out[word] += 1
    return out


def evaluate(mask: Masker, records: list[Record]) -> dict[str, float]:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    neg_kept = neg_total = 0
    kept_words = all_words = 0
    elapsed = 0.0
    size = 0
    for rec in records:
        size += len(rec.text.encode())
        t0 = time.perf_counter()
        out = mask(rec.text)
        elapsed += time.perf_counter() - t0
        for kind, s, e in rec.pii:
            total[kind] += 1
            if rec.text[s:e] not in out:
                found[kind] += 1
        for _, s, e in rec.negatives:
            neg_total += 1
            neg_kept += rec.text[s:e] in out
        spans = [(s, e) for _, s, e in rec.pii] + [(s, e) for _, s, e in rec.negatives]
        want = _words(rec.text, spans)
        got = Counter(out.split())
        kept_words += sum(min(c, got[w]) for w, c in want.items())
        all_words += sum(want.values())
    result = {k: found[k] / total[k] for k in total}
    result["_hard_negatives_kept"] = neg_kept / neg_total
    result["_preservation"] = kept_words / all_words
    result["_mb_per_s"] = size / 1e6 / elapsed
    result["_mb"] = size / 1e6
    return result


def throughput(mask: Masker, pages: list[str]) -> float:
    """MB/s over pages without personal data."""
    size = sum(len(p.encode()) for p in pages)
    t0 = time.perf_counter()
    for page in pages:
        mask(page)
    return size / 1e6 / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description="PII masking benchmark")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--presidio-records", type=int, default=300, help="Presidio is slow")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    records = generate(args.seed, args.records)
    prose = prose_pages(args.seed + 1000, 2 * args.records)
    engines: list[tuple[str, Masker | None, int]] = [
        ("proxystack", proxystack(), args.records),
        ("presidio*", presidio(), args.presidio_records),
        ("scrubadub", scrubadub_masker(), args.presidio_records),
    ]
    results: dict[str, dict[str, float]] = {}
    for name, mask, n in engines:
        if mask is None:
            print(f"{name}: not installed, skipped")
            continue
        mask(records[0].text)  # warm-up (lazy imports, caches of compiled patterns)
        results[name] = evaluate(mask, records[:n])
        results[name]["_prose_mb_per_s"] = throughput(mask, prose[: n * 2])

    names = list(results)
    counts = Counter(k for r in records for k, _, _ in r.pii)
    print(f"seed={args.seed} records={args.records} ({results['proxystack']['_mb']:.2f} MB)")
    print(f"{'type':<22}{'n':>6}" + "".join(f"{n:>14}" for n in names))
    for kind in STRUCTURED + OTHER:
        row = "".join(f"{results[n].get(kind, float('nan')):>14.3f}" for n in names)
        print(f"{'recall ' + kind:<22}{counts[kind]:>6}{row}")
    for key, label in [
        ("_hard_negatives_kept", "hard negatives kept"),
        ("_preservation", "preservation"),
        ("_mb_per_s", "MB/s labelled corpus"),
        ("_prose_mb_per_s", "MB/s prose pages"),
    ]:
        print(f"{label:<28}" + "".join(f"{results[n][key]:>14.3f}" for n in names))
    print(
        "presidio*: predefined recognizers (patterns, validators, phone recognizer) on a blank "
        "spaCy pipeline - no spaCy model is installable offline, so no NER. "
        f"Presidio and scrubadub ran on the first {args.presidio_records} records."
    )


if __name__ == "__main__":
    main()
