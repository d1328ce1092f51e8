"""Masking in worker processes, so that a crawl's reactor thread does not wait for the engine.

The engine is pure Python and holds the GIL while it scans: in the crawling process, every
megabyte masked is a megabyte of time the reactor cannot download, parse or export. A
``MaskingPool`` runs ``PiiMasker.scan`` in separate processes (started with ``spawn``: forking a
process that runs a reactor and threads is unsafe) that each build the same masker once, from
the same options; texts go over as a batch per item and come back masked, with the type of every
value found, so the caller counts exactly what an in-process scan would count.

Nothing here imports Scrapy.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from scrapy_proxystack.pii.engine import PiiMasker

#: One masked text and the types of the values found in it, in order.
Masked = tuple[str, tuple[str, ...]]

_worker_masker: PiiMasker | None = None


def _init_worker(options: dict[str, Any]) -> None:
    global _worker_masker  # one masker per worker process, built once
    _worker_masker = PiiMasker(**options)


def _mask_batch(texts: list[str]) -> list[Masked]:
    masker = _worker_masker
    if masker is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("masking worker started without its masker")
    out = []
    for text in texts:
        result = masker.scan(text)
        out.append((result.text, tuple(span.type for span in result.spans)))
    return out


class MaskingPool:
    """``workers`` processes, each with a ``PiiMasker(**options)``."""

    def __init__(self, workers: int, options: dict[str, Any]) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(options,),
        )

    def submit(self, texts: list[str]) -> Future[list[Masked]]:
        """Mask ``texts`` in a worker; the future's result is one ``Masked`` per text."""
        return self._executor.submit(_mask_batch, texts)

    def close(self) -> None:
        """Stop the workers (pending batches are cancelled)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
