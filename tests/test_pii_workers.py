"""Masking in worker processes: the pool's protocol, its failures, and the pipeline around it.

The pool runs real worker processes (``python -m scrapy_proxystack.pii.workers``); the crawl
tests run real crawls whose workers are killed mid-crawl.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import scrapy
from scrapy.settings import Settings

from scrapy_proxystack import settings as proxystack_settings
from scrapy_proxystack.pii import PiiMasker
from scrapy_proxystack.pii.workers import MaskingPool, WorkerError
from scrapy_proxystack.pipelines.pii import PiiMaskingPipeline
from scrapy_proxystack.settings import PiiSettings
from tests.crawl import CrawlResult, run_crawl
from tests.test_pii_pipeline import make

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

TEXTS = [
    "write to jane.roe@mailbox.org or call +33 6 12 34 56 78",
    "IBAN DE89 3704 0044 0532 0130 00, SSN 536-90-4399, card 4111 1111 1111 1111",
    "nothing personal here, 12 items at 3.50 each",
    "",
    "Straße 12, 10115 Berlin; Aadhaar 2345 6789 0124 ✓ " * 50,
]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_pool_masks_as_the_engine_does() -> None:
    options = {"hmac_key": b"k" * 32, "default_operator": "pseudonymize"}
    reference = PiiMasker(**options)

    async def go() -> list[Any]:
        pool = MaskingPool(2, options)
        await pool.start()
        try:
            return await asyncio.gather(*(pool.mask([text, text.upper()]) for text in TEXTS))
        finally:
            await pool.close()

    for text, answer in zip(TEXTS, _run(go()), strict=True):
        for sent, (masked, kinds) in zip([text, text.upper()], answer, strict=True):
            result = reference.scan(sent)
            assert masked == result.text
            assert list(kinds) == [span.type for span in result.spans]


def test_closing_the_pool_ends_its_workers() -> None:
    async def go() -> list[int]:
        pool = MaskingPool(2, {})
        await pool.start()
        pids = [w.process.pid for w in pool._workers]
        await pool.close()
        return pids

    for pid in _run(go()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_worker_that_cannot_build_its_masker_fails_the_start() -> None:
    async def go() -> None:
        pool = MaskingPool(1, {"no_such_option": 1})
        try:
            await pool.start()
        finally:
            await pool.close()

    with pytest.raises(WorkerError, match="exited"):
        _run(go())


def test_a_dead_worker_fails_its_batches_in_flight_and_the_next_ones() -> None:
    async def go() -> tuple[BaseException | None, BaseException | None]:
        pool = MaskingPool(1, {})
        await pool.start()
        try:
            os.kill(pool._workers[0].process.pid, signal.SIGKILL)
            in_flight = await asyncio.gather(pool.mask(["a" * 100_000]), return_exceptions=True)
            later = await asyncio.gather(pool.mask(["b"]), return_exceptions=True)
            return in_flight[0], later[0]
        finally:
            await pool.close()

    first, second = _run(go())
    assert isinstance(first, WorkerError)
    assert isinstance(second, WorkerError)


def test_the_hmac_key_is_not_in_a_workers_command_line_environment_or_the_pools_repr() -> None:
    key = "a-very-secret-hmac-key-0123456789"

    async def go() -> tuple[bytes, bytes, str]:
        pool = MaskingPool(1, {"hmac_key": key.encode()})
        await pool.start()
        try:
            pid = pool._workers[0].process.pid
            reprs = [repr(pool), *(repr(v) for v in vars(pool).values())]
            return (
                Path(f"/proc/{pid}/cmdline").read_bytes(),
                Path(f"/proc/{pid}/environ").read_bytes(),
                " ".join(reprs),
            )
        finally:
            await pool.close()

    cmdline, environ, reprs = _run(go())
    assert "<hidden>" in reprs
    assert key not in reprs
    assert b"scrapy_proxystack.pii.workers" in cmdline
    assert key.encode() not in cmdline
    assert key.encode() not in environ


# --- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(("cpus", "workers"), [(1, 0), (2, 1), (16, 1)])
@pytest.mark.parametrize("value", ["auto", " AUTO ", None])
def test_auto_is_one_worker_where_a_core_is_spare(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int, value: str | None
) -> None:
    monkeypatch.setattr(proxystack_settings, "usable_cpus", lambda: cpus)
    given = {} if value is None else {"PROXYSTACK_PII_WORKERS": value}  # None: the default
    config = PiiSettings.from_settings(Settings({"PROXYSTACK_PII_ENABLED": True, **given}))
    assert (config.workers, config.workers_auto) == (workers, True)


def test_a_wrong_workers_setting_says_auto_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"PROXYSTACK_PII_WORKERS.*'many'.*or 'auto'"):
        make({"PROXYSTACK_PII_WORKERS": "many"})


def test_without_the_asyncio_reactor_auto_masks_in_the_crawls_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(proxystack_settings, "usable_cpus", lambda: 4)
    pipe = make()  # built outside a crawl: no reactor
    assert type(pipe) is PiiMaskingPipeline
    assert pipe.process_item({"t": "mail jane.roe@mailbox.org"}) == {"t": "mail [EMAIL]"}


def test_without_the_asyncio_reactor_a_number_of_workers_is_an_error() -> None:
    with pytest.raises(ValueError, match="PROXYSTACK_PII_WORKERS: 2 needs Scrapy's asyncio"):
        make({"PROXYSTACK_PII_WORKERS": 2})


# --- crawls ---------------------------------------------------------------------------------

FILLER = "Lorem ipsum dolor sit amet, 12 items at 3.50 each. " * 400  # ~20 KB: offloaded


def _worker_pids() -> list[int]:
    """The masking workers started by this process (Linux: /proc)."""
    me = os.getpid()
    children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if b"scrapy_proxystack.pii.workers" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


class KillingSpider(scrapy.Spider):
    """Yields big items; after the tenth, kills the masking workers (as an out-of-memory killer
    would), then yields twenty more."""

    name = "pii_kill"

    def __init__(self, urls: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    async def start(self) -> AsyncIterator[Any]:
        for i in range(30):
            if i == 10:
                pids = _worker_pids()
                assert pids, "no masking worker to kill"
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
            yield {"n": i, "text": f"#{i} mail user{i}@mailbox.org. " + FILLER}
            await asyncio.sleep(0.01)


def _pii_crawl(tmp_path: Path, spider: str, **settings: Any) -> CrawlResult:
    return run_crawl(
        tmp_path,
        urls=[],
        spider=f"tests.test_pii_workers.{spider}",
        addon=False,
        settings={
            "ITEM_PIPELINES": {"scrapy_proxystack.pipelines.pii.PiiMaskingPipeline": 900},
            "PROXYSTACK_PII_ENABLED": True,
            **settings,
        },
    )


def test_a_worker_killed_mid_crawl_loses_no_item(tmp_path: Path) -> None:
    result = _pii_crawl(tmp_path, "KillingSpider", PROXYSTACK_PII_WORKERS=1)
    assert result.returncode == 0, result.log[-3000:]
    assert [item["n"] for item in result.items] == list(range(30))
    for item in result.items:
        assert item["text"].startswith(f"#{item['n']} mail [EMAIL]. ")
    assert result.stat("proxystack/pii/masked/email") == 30
    assert result.stat("proxystack/pii/workers_failed") == 1
    assert 0 < (result.stat("proxystack/pii/offloaded_items") or 0) <= 10
    assert "PII masking workers failed (a masking worker exited" in result.log


def test_by_default_a_crawl_masks_in_a_worker(tmp_path: Path) -> None:
    result = _pii_crawl(tmp_path, "BigItemsSpider")
    assert result.returncode == 0, result.log[-3000:]
    offloaded = result.stat("proxystack/pii/offloaded_items") or 0
    if proxystack_settings.usable_cpus() >= 2:
        assert "in 1 worker process(es)" in result.log
        assert "PII masking workers ready: 1 in" in result.log
        assert offloaded == 5
    else:
        assert "in the crawl's thread (one CPU: no worker process)" in result.log
        assert offloaded == 0
    assert [item["text"][:16] for item in result.items] == ["mail [EMAIL]. Lo"] * 5


class BigItemsSpider(scrapy.Spider):
    name = "pii_big"

    def __init__(self, urls: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    async def start(self) -> AsyncIterator[Any]:
        for i in range(5):
            yield {"n": i, "text": f"mail user{i}@mailbox.org. " + FILLER}
