"""The engine's two builds side by side: compiled (mypyc, see setup.py) and the plain modules.

Each round runs the engine as installed and the plain modules (a copy of the sources without
their extensions, as tests/test_pii_compiled.py runs them) in fresh processes, one after the
other, on the same texts: the dense pages, the realistic mix and the prose pages of
``bench/pii.py`` (same seeds). Figures are MB/s of one thread's CPU time, the best of three
passes with the validation caches emptied before each; rounds alternate which build goes first.

    python bench/pii_builds.py              # 2 rounds
    python bench/pii_builds.py --rounds 4

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(seed: int, records: int) -> dict[str, float]:
    """MB/s of the engine this process imports, per input."""
    from bench.pii import (
        MIX_SEED_OFFSET,
        WARM_UP_RECORDS,
        WARM_UP_SEED_OFFSET,
        dense_pages,
        generate,
        mixed_records,
        prose_pages,
        reset_caches,
    )
    from scrapy_proxystack.pii import PiiMasker

    recs = generate(seed, records)
    inputs = {
        "dense_pages": [r.text for r in dense_pages(recs, seed + 4000, 100)],
        "mix": [
            r.text
            for r in mixed_records(generate(seed + MIX_SEED_OFFSET, records), seed + 2000, 3000)
        ],
        "prose": prose_pages(seed + 1000, 2 * records),
    }
    masker = PiiMasker()
    for rec in generate(seed + WARM_UP_SEED_OFFSET, WARM_UP_RECORDS):
        masker.mask(rec.text)
    out = {}
    for name, texts in inputs.items():
        size = sum(len(t.encode()) for t in texts)
        best = 0.0
        for _ in range(3):
            reset_caches()
            t0 = time.thread_time()
            for text in texts:
                masker.mask(text)
            best = max(best, size / 1e6 / max(time.thread_time() - t0, 1e-9))
        out[name] = best
    return out


def _run(path: Path, seed: int, records: int) -> tuple[str, dict[str, float]]:
    code = (
        "import json, sys\n"
        "from bench.pii_builds import measure\n"
        "from scrapy_proxystack.pii import COMPILED\n"
        f"print(json.dumps([COMPILED, measure({seed}, {records})]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(path)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=path, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    compiled, figures = json.loads(proc.stdout.splitlines()[-1])
    return ("compiled" if compiled else "plain"), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp)
        shutil.copytree(
            ROOT / "scrapy_proxystack",
            plain / "scrapy_proxystack",
            ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
        )
        shutil.copytree(
            ROOT / "bench", plain / "bench", ignore=shutil.ignore_patterns("__pycache__")
        )
        for round_no in range(args.rounds):
            order = [ROOT, plain] if round_no % 2 == 0 else [plain, ROOT]
            for path in order:
                build, figures = _run(path, args.seed, args.records)
                results.setdefault(build, []).append(figures)
                shown = ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
                print(f"round {round_no + 1} {build}: MB/s {shown}", flush=True)
    if set(results) != {"compiled", "plain"}:
        print(f"only the {', '.join(results)} build ran: is the engine compiled (setup.py)?")
    best = {b: {k: max(r[k] for r in runs) for k in runs[0]} for b, runs in results.items()}
    if len(best) == 2:
        for key in best["plain"]:
            ratio = best["compiled"][key] / best["plain"][key]
            print(
                f"{key}: compiled {best['compiled'][key]:.1f} MB/s, plain "
                f"{best['plain'][key]:.1f} MB/s, {ratio:.2f}x"
            )
    print(json.dumps({"rounds": args.rounds, "runs": results, "best": best}, sort_keys=True))


if __name__ == "__main__":
    main()
