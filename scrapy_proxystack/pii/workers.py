"""Masking in worker processes, so that a crawl's reactor thread does not wait for the engine.

The engine holds the GIL while it scans: in the crawling process, every megabyte masked is a
megabyte of time the reactor cannot download, parse or export. A ``MaskingPool`` runs
``PiiMasker.scan`` in separate processes that each build the same masker once, from the same
options; texts go over as one batch per item and come back masked, with the type of every value
found, so the caller counts exactly what an in-process scan would count.

The workers are plain child processes (``python -m scrapy_proxystack.pii.workers``) that talk
over their standard input and output, read and written by the crawl's own asyncio loop. A
``concurrent.futures.ProcessPoolExecutor`` was measured first: its feeder and result threads
compete with the reactor thread for the GIL at every batch, and on a crawl of 50 KB pages that
made a page cost the reactor 1 ms more of wall time than masking it in place. Here the
reactor does the reading and writing itself, between its other callbacks, and nothing else in
the crawling process wants the GIL. A fresh interpreter started this way imports the engine
alone (not Scrapy, as ``multiprocessing``'s ``spawn`` does when the crawl runs as
``python -m scrapy``).

Each message is a 4-byte big-endian length and a ``marshal`` dump (strings, bytes, numbers,
lists, tuples, sets and dicts only: both ends run the same interpreter, and unlike a pickle it
cannot make either end run code). The first one a worker reads holds the
masker's options (the HMAC key among them: it goes through the pipe, never the command line or
the environment); it answers ``"ready"`` once its masker is built, then one list of results per
list of texts, in order. The worker writes nothing else to its standard output (anything the
engine might print goes to standard error), and exits at the end of its input.

Nothing here imports Scrapy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import marshal
import os
import signal
import struct
import sys
from typing import Any, BinaryIO

#: One masked text and the types of the values found in it, in order.
Masked = tuple[str, tuple[str, ...]]

_HEADER = struct.Struct("!I")
_READY = "ready"
#: Seconds ``close`` waits for a worker to exit at the end of its input before killing it.
EXIT_TIMEOUT = 5.0


class WorkerError(RuntimeError):
    """A masking worker failed to start, died, or answered out of protocol."""


def _frame(obj: Any) -> bytes:
    data = marshal.dumps(obj)
    return _HEADER.pack(len(data)) + data


class _Hidden:
    """A value that holds a secret: its repr shows nothing of it."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"


class _Worker:
    """One worker process, its batches in flight (answered in order) and its reader task."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.reader: asyncio.Task[None] | None = None
        self.error: WorkerError | None = None

    async def read(self) -> None:
        """Resolve the batches in flight with the worker's answers, in order; fail them all if
        it dies."""
        stdout = self.process.stdout
        assert stdout is not None
        try:
            while True:
                (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
                # Our own child over a private pipe; marshal builds values, never runs code.
                answer = marshal.loads(await stdout.readexactly(size))  # noqa: S302
                if not self.pending:
                    raise WorkerError("a masking worker answered a batch it was not sent")
                future = self.pending.popleft()
                if not future.done():
                    future.set_result(answer)
        except asyncio.CancelledError:
            self._fail(WorkerError("the masking pool was closed"))
            raise
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._fail(
                WorkerError(f"a masking worker exited ({type(exc).__name__})"),
            )
        except Exception as exc:  # an answer marshal cannot read: the protocol is broken
            self._fail(WorkerError(f"a masking worker answered out of protocol ({exc!r})"))

    def _fail(self, error: WorkerError) -> None:
        self.error = error
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, obj: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            future.set_exception(self.error)
            return future
        stdin = self.process.stdin
        assert stdin is not None
        self.pending.append(future)
        stdin.write(_frame(obj))
        return future


class MaskingPool:
    """``workers`` processes, each with a ``PiiMasker(**options)``; used from one asyncio loop.

    ``start`` must be awaited before ``mask``; ``close`` stops the workers."""

    def __init__(self, workers: int, options: dict[str, Any]) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        self.workers = workers
        # A plain dict (the worker must not need Scrapy to read it) that holds the HMAC key:
        # kept out of every repr.
        self._options = _Hidden(dict(options))
        self._workers: list[_Worker] = []

    def __repr__(self) -> str:
        return f"<MaskingPool workers={self.workers} started={len(self._workers)}>"

    async def start(self) -> None:
        """Start the workers and wait until each has built its masker (``WorkerError`` if one
        cannot)."""
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        for _ in range(self.workers):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "scrapy_proxystack.pii.workers",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
                limit=1 << 20,
            )
            worker = _Worker(process)
            worker.reader = asyncio.ensure_future(worker.read())
            self._workers.append(worker)
        answers = await asyncio.gather(*(w.send(self._options.value) for w in self._workers))
        if any(answer != _READY for answer in answers):
            raise WorkerError("a masking worker did not start")

    async def mask(self, texts: list[str]) -> list[Masked]:
        """``texts`` masked by the worker with the fewest batches in flight."""
        if not self._workers:
            raise WorkerError("the masking pool is not started")
        worker = min(self._workers, key=lambda w: len(w.pending))
        answer: list[Masked] = await worker.send(texts)
        return answer

    async def close(self) -> None:
        """End the workers' input and wait for them to exit (killing any that does not)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.stdin is not None and not worker.process.stdin.is_closing():
                worker.process.stdin.close()
        for worker in workers:
            try:
                await asyncio.wait_for(worker.process.wait(), EXIT_TIMEOUT)
            except asyncio.TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reader is not None:
                worker.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader


# --- the worker process -------------------------------------------------------------------------


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read(stream: BinaryIO) -> Any:
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    data = _read_exactly(stream, _HEADER.unpack(header)[0])
    if data is None:
        return None
    return marshal.loads(data)  # noqa: S302 - from the crawl that started this process


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """The worker's loop: build the masker from the first message, then mask each batch."""
    from scrapy_proxystack.pii.engine import PiiMasker

    options = _read(inp)
    if options is None:
        return
    masker = PiiMasker(**options)
    out.write(_frame(_READY))
    out.flush()
    while (texts := _read(inp)) is not None:
        answer = []
        for text in texts:
            result = masker.scan(text)
            answer.append((result.text, tuple(span.type for span in result.spans)))
        out.write(_frame(answer))
        out.flush()


#: Linux's ``F_SETPIPE_SZ``: a pipe that holds a whole batch (the default holds 64 KB) lets the
#: crawl write a batch in one call, and the worker its answer, without waiting for the reader.
_F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, OSError):  # not Linux, not a pipe, or above the system's limit
        pass


def main() -> None:
    # Ctrl-C reaches the whole process group: the crawl shuts down and ends our input, which
    # ends this loop; a KeyboardInterrupt here would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in (sys.stdin.fileno(), sys.stdout.fileno()):
        _widen(fd)
    # The protocol owns the real standard output; anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
