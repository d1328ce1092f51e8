"""Build script: the metadata is in setup.cfg; this file only compiles the PII engine.

The engine (``scrapy_proxystack/pii/``) is plain, strictly typed Python. When the build has a C
compiler, mypyc compiles its modules to C extensions, which run the same code faster: 1.6 times
on pages dense with numbers, 1.3 on the realistic mix (README, "The engine's two builds"). Each
module stays importable as the ``.py`` it came from, so:

- ``PROXYSTACK_PURE_PYTHON=1`` (when installing) builds without compiling;
- a build that cannot compile (no C compiler) warns and installs the pure-Python engine;
- the tests compare the two engines' output (tests/test_pii_compiled.py).

An editable install (``pip install -e .``) builds the extensions beside the sources: after
editing a compiled module, install again, or the extension keeps running the old code (the
package warns when a source is newer than its extension, see ``pii/_build.py``).
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

#: The modules compiled, in one group (calls between them are native calls).
COMPILED = [
    "scrapy_proxystack/pii/_patterns.py",
    "scrapy_proxystack/pii/emails.py",
    "scrapy_proxystack/pii/engine.py",
    "scrapy_proxystack/pii/identifiers.py",
    "scrapy_proxystack/pii/layouts.py",
    "scrapy_proxystack/pii/phones.py",
    "scrapy_proxystack/pii/places.py",
    "scrapy_proxystack/pii/spans.py",
    "scrapy_proxystack/pii/types.py",
    "scrapy_proxystack/pii/validators.py",
]


def _extensions() -> list[object]:
    if os.environ.get("PROXYSTACK_PURE_PYTHON", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print(
            "scrapy-proxystack: mypyc is not installed; the PII engine stays pure Python",
            file=sys.stderr,
        )
        return []
    # The build environment has none of the package's dependencies: what they define is Any
    # here, which changes nothing in the code compiled (calls into them stay Python calls).
    # Modules that are imported but not compiled (the package's __init__ and what it imports)
    # are read for their types without being checked: `mypy` checks them where they run.
    extensions = mypycify(
        ["--ignore-missing-imports", "--follow-imports=silent", *COMPILED],
        opt_level="3",
        group_name="scrapy_proxystack_pii",
    )
    for ext in extensions:
        ext.optional = True  # no compiler: warn and install the pure-Python engine
    return list(extensions)


setup(ext_modules=_extensions())
