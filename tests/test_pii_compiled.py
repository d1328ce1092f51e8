"""The two builds of the engine (see setup.py): compiled with mypyc where the build has a C
compiler, the plain modules otherwise. The rest of the suite runs against the engine as
installed, compiled on any machine with a compiler (CI's included); here the plain modules, run
in a separate interpreter from a copy of the sources, must mask a varied corpus exactly as the
installed engine does, span for span, under several configurations."""

from __future__ import annotations

import importlib.machinery
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import scrapy_proxystack
from bench.pii_ids import cased_sheet, sheet
from scrapy_proxystack.pii import COMPILED, PiiMasker
from scrapy_proxystack.pii import engine as installed_engine
from scrapy_proxystack.pii._build import stale_extensions

CONFIGS: list[dict[str, object]] = [
    {},
    {"types": ["email", "phone", "credit_card", "iban", "ip_address", "us_ssn", "person"]},
    {
        "default_operator": "pseudonymize",
        "hmac_key": "k",
        "operators": {"email": "partial"},
        "languages": ["fr", "de", "es"],
        "private_ips": True,
    },
]

KNOWN = [
    "4111 1111 1111 1111",
    "4111-1111-1111-1112",
    "DE89 3704 0044 0532 0130 00",
    "DE89-3704-0044-0532-0130-01",
    "+33 6 12 34 56 78",
    "(0)6 12 34 56 78",
    "(555) 234-5678",
    "0049 30 1234567",
    "jane.roe@mailbox.org",
    "jane AT mailbox DOT org",
    "a@xn--d1acufc.xn--p1ai",
    "8.8.8.8",
    "10.0.0.1",
    "2.4.1.187-beta",
    "2001:4860:4860::8888",
    "fe80::1@eth0",
    "00:1A:2B:3C:4D:5E",
    "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "978-3-16-148410-0",
    "12.345.678-Z",
    "x9613851n",
    "hh 01 02 03 d",
    "10:30:00",
    "2024-05-17",
    "17/05/1984",
]
LABELS = [
    "Tel.",
    "phone:",
    "born",
    "né le",
    "IBAN",
    "UID No.",
    "version",
    "IP",
    "Card",
    "order",
    "Contact: Mr John Smith",
    "Dr. Jane Roe",
    "",
]
WORDS = [
    *("the", "of", "order", "total", "page", "ref", "invoice", "reply", "views", "see"),
    *("at", "dot", "in", "3px", "2nd", "v1.2", "INV-", "h264", "de", "rssmra", "pan:", "nric s"),
]
SEPARATORS = [" ", "-", ".", "/", ":", "", " "]


def _cluster(rng: random.Random) -> str:
    """A random digit cluster: groups of digits joined by separators, sometimes with a prefix
    or a trailing letter."""
    groups = [
        "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 5)))
        for _ in range(rng.randint(1, 5))
    ]
    sep = rng.choice(SEPARATORS)
    out = sep.join(groups)
    prefix = rng.choice(["", "", "", "+", "(", "00", "ES", "GB", "X", "bc1", "0x", "de", "s"])
    suffix = rng.choice(["", "", "", "Z", "K", ")", "@x.org", "a", "A", "k"])
    return prefix + out + suffix


def _corpus(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    rows = sheet(seed, 3) + cased_sheet(seed, 2)
    ids = [f"{label} {value}" for _, label, value, _ in rows]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(2, 8)):
            roll = rng.random()
            if roll < 0.3:
                parts.append(rng.choice(ids))
            elif roll < 0.5:
                parts.append(f"{rng.choice(LABELS)} {rng.choice(KNOWN)}")
            elif roll < 0.8:
                parts.append(f"{rng.choice(LABELS)} {_cluster(rng)}")
            else:
                parts.append(" ".join(rng.choices(WORDS, k=rng.randint(1, 6))))
        texts.append("".join(p + rng.choice([" ", ", ", "\n", "; ", " ("]) for p in parts))
    # Each text once more in a longer one: repeated values and settling across texts.
    texts.append("\n".join(texts[: count // 4]))
    return texts


def _results(texts: list[str]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for options in CONFIGS:
        masker = PiiMasker(**options)  # type: ignore[arg-type]
        for text in texts:
            result = masker.scan(text)
            out.append([result.text, [[s.type, s.start, s.end, s.value] for s in result.spans]])
    return out


PLAIN = """
import json, sys
from scrapy_proxystack.pii import COMPILED, engine
from tests.test_pii_compiled import _results
assert not COMPILED, engine.__file__
texts = json.load(sys.stdin)
json.dump({"engine": engine.__file__, "results": _results(texts)}, sys.stdout)
"""


def test_the_engine_is_compiled_where_the_build_can_compile() -> None:
    # The build skips compiling only without a C compiler or when told to (see setup.py).
    can_compile = shutil.which("cc") is not None or shutil.which("gcc") is not None
    told_not_to = os.environ.get("PROXYSTACK_PURE_PYTHON", "") not in ("", "0")
    assert (can_compile and not told_not_to) == COMPILED, installed_engine.__file__
    assert stale_extensions() == []


def test_the_plain_modules_mask_exactly_as_the_installed_engine(tmp_path: Path) -> None:
    root = Path(scrapy_proxystack.__file__).parent
    # The sources alone, and this test module, so the other interpreter imports nothing else.
    shutil.copytree(
        root,
        tmp_path / "scrapy_proxystack",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(__file__, tmp_path / "tests")
    shutil.copytree(root.parent / "bench", tmp_path / "bench")
    texts = _corpus(17, 400)
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = json.loads(proc.stdout)
    assert plain["engine"].startswith(str(tmp_path)), plain["engine"]
    mine = json.loads(json.dumps(_results(texts)))
    assert len(mine) == len(plain["results"]) == len(CONFIGS) * len(texts)
    differ = [i for i, (a, b) in enumerate(zip(mine, plain["results"], strict=True)) if a != b]
    assert differ == [], [texts[i % len(texts)] for i in differ[:3]]
    # The corpus is varied enough to say something: most texts hold values of several types.
    found = {span[0] for result in mine for span in result[1]}
    assert len(found) >= 30, sorted(found)


def test_a_source_changed_after_its_extension_was_built_is_reported(tmp_path: Path) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    built = 1_000_000
    times = {
        "engine" + suffix: built,
        "engine.py": built + 100,  # edited 100 s after the build
        "spans" + suffix: built,
        "spans.py": built + 1,  # written with it
        "workers.py": built + 100,  # not compiled
    }
    for name, when in times.items():
        (tmp_path / name).write_bytes(b"")
        os.utime(tmp_path / name, (when, when))
    assert stale_extensions(tmp_path) == ["engine.py"]
