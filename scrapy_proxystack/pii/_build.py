"""Which build of the engine runs: mypyc-compiled extensions or the plain modules (see
setup.py). Both run the same code; the compiled one is 1.6 times faster on dense pages.

An editable install compiles the extensions beside their sources, and Python imports an
extension before a ``.py`` of the same name: after a source is edited, the extension would go on
running the old code without a word. ``stale_extensions`` finds them, and importing the package
warns about them.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

from scrapy_proxystack.pii import engine

_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)
#: Installing writes a module's source and extension within moments of each other; an edit
#: comes later than this.
_STALE_AFTER = 10.0

#: True when the engine runs as compiled extensions.
COMPILED: bool = str(getattr(engine, "__file__", "")).endswith(_SUFFIXES)


def stale_extensions(folder: Path | None = None) -> list[str]:
    """The modules in ``folder`` (this package by default) whose source was changed after
    their extension was built."""
    folder = folder or Path(__file__).parent
    stale = []
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in _SUFFIXES if path.name.endswith(s)), None)
        if suffix is None:
            continue
        source = path.with_name(path.name[: -len(suffix)] + ".py")
        if source.exists() and source.stat().st_mtime > path.stat().st_mtime + _STALE_AFTER:
            stale.append(source.name)
    return stale
