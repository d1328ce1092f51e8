"""Benchmark of PII maskers on the labelled corpus of ``bench/pii_corpus.py``.

Scores, per engine, in one run and on the same records:

* recall per type: share of labelled values that no longer appear in the output;
* hard negatives kept: share of labelled look-alikes that still appear, unchanged;
* preservation: share of the non-PII words (outside labelled values) that survive;
* MB/s: UTF-8 megabytes of text masked per second of CPU time of the calling thread (one
  core), one record at a time, as the item pipeline calls it, after a warm-up on records of
  another seed (lazy imports, compiled metadata). CPU time rather than wall time, and the best
  of ``--repeat`` passes for this project's engine (its per-value and context-word caches
  emptied before each pass, so every value is validated and every label read afresh): on a
  shared machine, other processes otherwise move the figure by 20% or more. Five inputs:

  - the labelled corpus: one personal value per 800 bytes and look-alikes between them;
  - a realistic mix: labelled records of another seed, each inside locale prose pages, so
    that there is one personal value per ``--mix-bytes`` bytes (3,000 by default; web text
    carries one every few kilobytes), the figure to expect on a crawl of mixed multilingual
    pages;
  - dense pages: the lines of the labelled records that hold a labelled value or look-alike
    (shop lines, invoice lines, log lines, contact lines) with short prose sentences between
    them, so that a value or a look-alike comes every ``--dense-bytes`` bytes (100 by default):
    the density of shop, invoice and contact pages and of logs;
  - dense lines: those lines alone, with nothing between them, the densest text a page has;
  - prose pages alone (everyday numbers, no personal data).

Candidates per KB (the places where the engine's one-pass scan stops: digits, ``@``, brackets)
are printed for each input, so that "dense" has a number.

Engines: this project's ``PiiMasker``; the naive regex masker of ``bench/pii_naive.py`` (no
validation: the speed anchor, its recall and hard negatives shown for what they are);
Presidio (analyzer + anonymizer) with its predefined recognizers, including the phone
recognizer, on a blank spaCy pipeline because no spaCy model can be installed offline (so
without its NER: persons and locations are not detected); and scrubadub with its default
detectors.

The last line of the output is one JSON object with every figure.

    pip install -r bench/requirements-pii.txt
    python bench/pii.py --seed 7 --records 1000 --presidio-records 300
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pii_corpus import Record, generate, prose_pages
from bench.pii_ids import FORMS as ID_FORMS
from bench.pii_ids import cased_forms, cased_sheet
from bench.pii_ids import sheet as id_sheet
from bench.pii_naive import naive_mask
from scrapy_proxystack.pii import COMPILED, PiiMasker, phones, validators
from scrapy_proxystack.pii import _patterns as patterns
from scrapy_proxystack.pii._patterns import SCAN

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
WARM_UP_SEED_OFFSET = 5000
MIX_SEED_OFFSET = 3000
WARM_UP_RECORDS = 30
#: What ``scrapy_proxystack.pii.COMPILED`` means (see setup.py).
BUILD = {True: "compiled (mypyc)", False: "plain Python"}


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


def mixed_records(records: list[Record], seed: int, bytes_per_value: int) -> list[Record]:
    """Each record between prose pages (no personal data) of the generator's locales, padded
    until the record holds one labelled value per ``bytes_per_value`` bytes of text."""
    pool = prose_pages(seed, 64)
    out = []
    k = 0
    for rec in records:
        target = len(rec.pii) * bytes_per_value
        before: list[str] = []
        after: list[str] = []
        size = len(rec.text.encode())
        while size < target:
            page = pool[k % len(pool)]
            k += 1
            (before if k % 2 else after).append(page)
            size += len(page.encode()) + 1
        head = "".join(page + "\n" for page in before)
        text = head + rec.text + "".join("\n" + page for page in after)
        shift = len(head)
        out.append(
            Record(
                rec.id,
                rec.locale,
                rec.kind,
                text,
                [(kind, s + shift, e + shift) for kind, s, e in rec.pii],
                [(kind, s + shift, e + shift) for kind, s, e in rec.negatives],
            )
        )
    return out


def dense_records(records: list[Record]) -> list[Record]:
    """Each record cut down to its lines that hold a labelled value or look-alike."""
    out = []
    for rec in records:
        labels = [*rec.pii, *rec.negatives]
        kept: list[str] = []
        pii: list[tuple[str, int, int]] = []
        negatives: list[tuple[str, int, int]] = []
        pos = size = 0
        for line in rec.text.split("\n"):
            start, end = pos, pos + len(line)
            pos = end + 1
            inside = [(k, s, e) for k, s, e in labels if start <= s and e <= end]
            if not inside:
                continue
            shift = size - start
            for kind, s, e in inside:
                target = pii if (kind, s, e) in rec.pii else negatives
                target.append((kind, s + shift, e + shift))
            kept.append(line)
            size += len(line) + 1
        if kept:
            out.append(Record(rec.id, rec.locale, rec.kind, "\n".join(kept), pii, negatives))
    return out


def dense_pages(records: list[Record], seed: int, bytes_per_value: int) -> list[Record]:
    """The dense lines of each record (see ``dense_records``) with short prose sentences between
    them, so that a personal value or a look-alike comes every ``bytes_per_value`` bytes: a
    shop, invoice or contact page, or a log, as dense as they come (100 bytes by default)."""
    sentences = [s.strip() + "." for page in prose_pages(seed, 64) for s in page.split(". ")]
    out = []
    k = 0
    for rec in dense_records(records):
        labels = sorted([*rec.pii, *rec.negatives], key=lambda x: x[1])
        parts: list[str] = []
        pii: list[tuple[str, int, int]] = []
        negatives: list[tuple[str, int, int]] = []
        size = nbytes = pos = done = 0  # size in characters (offsets), nbytes in UTF-8
        for line in rec.text.split("\n"):
            start, end = pos, pos + len(line)
            pos = end + 1
            shift = size - start
            for kind, s, e in labels:
                if start <= s and e <= end:
                    target = pii if (kind, s, e) in rec.pii else negatives
                    target.append((kind, s + shift, e + shift))
                    done += 1
            parts.append(line)
            size += len(line) + 1
            nbytes += len(line.encode()) + 1
            while nbytes < done * bytes_per_value:
                sentence = sentences[k % len(sentences)]
                k += 1
                parts.append(sentence)
                size += len(sentence) + 1
                nbytes += len(sentence.encode()) + 1
        out.append(Record(rec.id, rec.locale, rec.kind, "\n".join(parts), pii, negatives))
    return out


def identifier_records(seed: int, rows: list[tuple[str, str, str, bool]]) -> list[Record]:
    """The ``rows`` of an identifier sheet of ``bench/pii_ids.py`` as records of a few lines
    each: values that pass their check and look-alikes that fail it (labelled as negatives of
    their type), each after a label of its country."""
    random.Random(seed).shuffle(rows)
    out = []
    for i in range(0, len(rows), 8):
        b_text = ""
        pii: list[tuple[str, int, int]] = []
        negatives: list[tuple[str, int, int]] = []
        for pii_type, label, value, valid in rows[i : i + 8]:
            b_text += f"{label} " if label else ""
            span = (pii_type, len(b_text), len(b_text) + len(value))
            (pii if valid else negatives).append(span)
            b_text += value + "\n"
        out.append(Record(f"ids{i}", "", "identifiers", b_text, pii, negatives))
    return out


def per_type_scores(
    mask: Masker, records: list[Record], find: Callable[[str], list[Any]] | None = None
) -> dict[str, tuple[float, float, float]]:
    """Per identifier type: recall (valid values gone from the output), hard negatives kept
    (failing look-alikes left whole) and, when ``find`` gives typed spans, precision (spans of
    the type that are a labelled value of it, over all spans of the type)."""
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    negs: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    spans_of: Counter[str] = Counter()
    for rec in records:
        out = mask(rec.text)
        for kind, s, e in rec.pii:
            total[kind] += 1
            found[kind] += rec.text[s:e] not in out
        for kind, s, e in rec.negatives:
            negs[kind] += 1
            kept[kind] += rec.text[s:e] in out
        if find is not None:
            labelled = {(k, s, e) for k, s, e in rec.pii}
            for span in find(rec.text):
                spans_of[span.type] += 1
                hits[span.type] += (span.type, span.start, span.end) in labelled
    return {
        kind: (
            found[kind] / total[kind],
            kept[kind] / max(negs[kind], 1),
            hits[kind] / spans_of[kind] if spans_of[kind] else float("nan"),
        )
        for kind in total
    }


def bytes_per_label(records: list[Record]) -> float:
    """UTF-8 bytes of text per labelled value or look-alike."""
    labels = sum(len(rec.pii) + len(rec.negatives) for rec in records)
    return sum(len(rec.text.encode()) for rec in records) / max(labels, 1)


def candidates_per_kb(texts: list[str]) -> float:
    """Places where the engine's scan stops, per KB of UTF-8 text."""
    hits = sum(sum(1 for _ in SCAN.finditer(text)) for text in texts)
    return hits / (sum(len(text.encode()) for text in texts) / 1024)


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


def reset_caches() -> None:
    """Empty the per-value validation caches and the context-word cache of this project's
    engine (not its compiled metadata), so that a timed pass validates every value and reads
    every label afresh, as the first one did."""
    for module in (phones, validators, patterns):
        for obj in vars(module).values():
            info = getattr(obj, "cache_info", None)
            if info is not None and info().maxsize is not None:
                obj.cache_clear()


def timed(
    mask: Masker, texts: list[str], passes: int = 1, reset: Callable[[], None] | None = None
) -> tuple[list[str], float]:
    """The outputs of the first pass, and the best MB/s of ``passes`` passes, over the CPU
    time of this thread spent in ``mask`` (``reset`` runs before each pass)."""
    size = sum(len(text.encode()) for text in texts)
    best = 0.0
    first: list[str] = []
    clock = time.thread_time
    for _ in range(passes):
        if reset is not None:
            reset()
        outputs = []
        elapsed = 0.0
        for text in texts:
            t0 = clock()
            outputs.append(mask(text))
            elapsed += clock() - t0
        first = first or outputs
        best = max(best, size / 1e6 / max(elapsed, 1e-9))
    return first, best


def evaluate(
    mask: Masker, records: list[Record], passes: int = 1, reset: Callable[[], None] | None = None
) -> dict[str, float]:
    outputs, mb_per_s = timed(mask, [rec.text for rec in records], passes, reset)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    neg_kept = neg_total = 0
    kept_words = all_words = 0
    for rec, out in zip(records, outputs, strict=True):
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
    result["_recall_all"] = sum(found.values()) / sum(total.values())
    result["_hard_negatives_kept"] = neg_kept / neg_total
    result["_preservation"] = kept_words / all_words
    result["_mb_per_s"] = mb_per_s
    result["_mb"] = sum(len(rec.text.encode()) for rec in records) / 1e6
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="PII masking benchmark")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--presidio-records", type=int, default=300, help="Presidio is slow")
    parser.add_argument(
        "--mix-bytes",
        type=int,
        default=3000,
        help="realistic mix: bytes of text per personal value (default: 3000)",
    )
    parser.add_argument(
        "--dense-bytes",
        type=int,
        default=100,
        help="dense pages: bytes of text per personal value or look-alike (default: 100)",
    )
    parser.add_argument(
        "--ids-per-type",
        type=int,
        default=100,
        help="identifier sheet: values (and as many look-alikes) per type (default: 100)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed passes of this project's engine, best one reported (default: 3)",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    records = generate(args.seed, args.records)
    warm_up = [r.text for r in generate(args.seed + WARM_UP_SEED_OFFSET, WARM_UP_RECORDS)]
    # The mix is made of other records (same generator, another seed): with the same values,
    # the validation caches filled on the labelled corpus would flatter the mix.
    mixed = mixed_records(
        generate(args.seed + MIX_SEED_OFFSET, args.records), args.seed + 2000, args.mix_bytes
    )
    prose = prose_pages(args.seed + 1000, 2 * args.records)
    dense = dense_records(records)
    dense_page = dense_pages(records, args.seed + 4000, args.dense_bytes)
    density = {
        "labelled": candidates_per_kb([r.text for r in records]),
        "dense_pages": candidates_per_kb([r.text for r in dense_page]),
        "dense_lines": candidates_per_kb([r.text for r in dense]),
        "mix": candidates_per_kb([r.text for r in mixed]),
        "prose": candidates_per_kb(prose),
    }
    slow = args.presidio_records
    # (name, masker, records, mixed records, timed passes, reset before each pass)
    engines: list[tuple[str, Masker | None, int, int, int, Callable[[], None] | None]] = [
        ("proxystack", proxystack(), args.records, args.records, args.repeat, reset_caches),
        ("naive_regex", naive_mask, args.records, args.records, args.repeat, None),
        ("presidio*", presidio(), slow, slow // 3, 1, None),
        ("scrubadub", scrubadub_masker(), slow, slow // 3, 1, None),
    ]
    results: dict[str, dict[str, float]] = {}
    for name, mask, n, n_mix, passes, reset in engines:
        if mask is None:
            print(f"{name}: not installed, skipped")
            continue
        for text in warm_up:
            mask(text)
        results[name] = evaluate(mask, records[:n], passes, reset)
        mix = evaluate(mask, mixed[:n_mix], passes, reset)
        results[name]["_mix_mb_per_s"] = mix["_mb_per_s"]
        results[name]["_mix_recall_all"] = mix["_recall_all"]
        results[name]["_mix_hard_negatives_kept"] = mix["_hard_negatives_kept"]
        _, results[name]["_prose_mb_per_s"] = timed(mask, prose[: n * 2], passes, reset)
        dense_result = evaluate(mask, dense[:n], passes, reset)
        results[name]["_dense_mb_per_s"] = dense_result["_mb_per_s"]
        results[name]["_dense_recall_all"] = dense_result["_recall_all"]
        pages_result = evaluate(mask, dense_page[:n], passes, reset)
        results[name]["_dense_pages_mb_per_s"] = pages_result["_mb_per_s"]
        results[name]["_dense_pages_recall_all"] = pages_result["_recall_all"]
        results[name]["_dense_pages_hard_negatives_kept"] = pages_result["_hard_negatives_kept"]

    names = list(results)
    sheet = identifier_records(args.seed + 6000, id_sheet(args.seed + 6000, args.ids_per_type))
    cased = identifier_records(args.seed + 7000, cased_sheet(args.seed + 7000, args.ids_per_type))
    engine = PiiMasker()
    id_scores = {
        name: per_type_scores(mask, sheet, engine.find if name == "proxystack" else None)
        for name, mask, *_ in engines
        if mask is not None
    }
    cased_scores = {
        name: per_type_scores(mask, cased, engine.find if name == "proxystack" else None)
        for name, mask, *_ in engines
        if mask is not None
    }
    counts = Counter(k for r in records for k, _, _ in r.pii)
    values = sum(counts.values())
    corpus_mb = results["proxystack"]["_mb"]
    print(
        f"seed={args.seed} records={args.records} ({corpus_mb:.2f} MB, one personal value per "
        f"{corpus_mb * 1e6 / values:.0f} bytes); realistic mix: one per {args.mix_bytes} bytes; "
        f"this engine: {BUILD[COMPILED]}"
    )
    print(
        "candidates per KB (where the scan stops): "
        + ", ".join(f"{k} {v:.1f}" for k, v in density.items())
        + "; bytes per labelled value or look-alike: "
        + ", ".join(
            f"{k} {bytes_per_label(v):.0f}"
            for k, v in (("labelled", records), ("dense_pages", dense_page), ("dense_lines", dense))
        )
    )
    print(f"{'type':<22}{'n':>6}" + "".join(f"{n:>14}" for n in names))
    for kind in STRUCTURED + OTHER:
        row = "".join(f"{results[n].get(kind, float('nan')):>14.3f}" for n in names)
        print(f"{'recall ' + kind:<22}{counts[kind]:>6}{row}")
    for key, label in [
        ("_hard_negatives_kept", "hard negatives kept"),
        ("_preservation", "preservation"),
        ("_mix_recall_all", "recall, realistic mix"),
        ("_mix_hard_negatives_kept", "hard neg. kept, mix"),
        ("_dense_recall_all", "recall, dense lines"),
        ("_dense_pages_recall_all", "recall, dense pages"),
        ("_dense_pages_hard_negatives_kept", "hard neg. kept, dense"),
        ("_mb_per_s", "MB/s labelled corpus"),
        ("_dense_pages_mb_per_s", "MB/s dense pages"),
        ("_dense_mb_per_s", "MB/s dense lines"),
        ("_mix_mb_per_s", "MB/s realistic mix"),
        ("_prose_mb_per_s", "MB/s prose pages"),
    ]:
        print(f"{label:<28}" + "".join(f"{results[n][key]:>14.3f}" for n in names))
    print(
        f"identifier sheet: {args.ids_per_type} values that pass their check and as many "
        "look-alikes that fail it, per type, after a label of the country; recall / hard "
        "negatives kept / precision (proxystack's typed spans)"
    )
    print(f"{'type':<22}" + "".join(f"{n:>20}" for n in names))
    for kind in ID_FORMS:
        row = ""
        for n in names:
            r, k, prec = id_scores[n].get(kind, (float("nan"),) * 3)
            row += f"{r:>6.3f} {k:>6.3f} " + (f"{prec:>6.3f}" if n == "proxystack" else " " * 6)
        print(f"{kind:<22}{row}")
    print(
        "the same in lower or mixed case (types written with letters, and the IBAN), after a "
        "label in lower case half of the time"
    )
    for kind in cased_forms():
        row = ""
        for n in names:
            r, k, prec = cased_scores[n].get(kind, (float("nan"),) * 3)
            row += f"{r:>6.3f} {k:>6.3f} " + (f"{prec:>6.3f}" if n == "proxystack" else " " * 6)
        print(f"{kind:<22}{row}")
    print(
        f"MB/s: CPU time of one thread; best of {args.repeat} passes for proxystack (its "
        "validation and context caches emptied before each) and the naive regex, one pass "
        "for the others. "
        "naive_regex: bench/pii_naive.py, no validation. presidio*: "
        "predefined recognizers (patterns, validators, phone recognizer) on a blank spaCy "
        "pipeline - no spaCy model is installable offline, so no NER. Presidio and scrubadub "
        f"ran on the first {slow} records ({slow // 3} for the mix)."
    )
    summary = {
        "seed": args.seed,
        "records": args.records,
        "repeat": args.repeat,
        "engine_build": BUILD[COMPILED],
        "corpus_mb": round(corpus_mb, 4),
        "candidates_per_kb": {k: round(v, 2) for k, v in density.items()},
        "bytes_per_value": {
            "labelled": round(corpus_mb * 1e6 / values),
            "mix": args.mix_bytes,
        },
        "engines": {
            name: {
                key.lstrip("_"): round(value, 4) for key, value in result.items() if key != "_mb"
            }
            for name, result in results.items()
        },
        "identifiers": {
            name: {
                kind: {"recall": round(r, 4), "hard_negatives_kept": round(k, 4)}
                | ({"precision": round(prec, 4)} if name == "proxystack" else {})
                for kind, (r, k, prec) in scores.items()
            }
            for name, scores in id_scores.items()
        },
        "identifiers_cased": {
            name: {
                kind: {"recall": round(r, 4), "hard_negatives_kept": round(k, 4)}
                | ({"precision": round(prec, 4)} if name == "proxystack" else {})
                for kind, (r, k, prec) in scores.items()
            }
            for name, scores in cased_scores.items()
        },
    }
    print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
    main()
