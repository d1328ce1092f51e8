"""Item pipeline that masks personal data before any exporter or feed sees the item.

A thin adapter over :class:`scrapy_proxystack.pii.PiiMasker`: it reads the ``PROXYSTACK_PII_*``
settings once into a frozen config, walks every string of an item (any item type, through
ItemAdapter) at any depth: dicts (keys included), lists, tuples, sets, bytes, and dataclass or
attrs objects nested inside, and applies the per-type policy: mask, partial, pseudonymize, remove
the field, or drop the item. It counts what it did in stats and never logs a value or the HMAC
key; an item it cannot mask is emptied and dropped, so that Scrapy cannot log it either.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.asyncio import is_asyncio_available

from scrapy_proxystack.config import ConfigError
from scrapy_proxystack.pii import COMPILED, PiiMasker
from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii.workers import MaskingPool
from scrapy_proxystack.runtime import config_errors_logged
from scrapy_proxystack.settings import PiiSettings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

#: How a string is masked: returns the masked text and counts the types found in ``found``.
MaskText = Callable[[str, Counter[str]], str]

STATS_PREFIX = "proxystack/pii"


#: The validated ``PROXYSTACK_PII_*`` settings (read by the suite's one settings reader).
PiiConfig = PiiSettings


def _asyncio_reactor() -> bool:
    """Whether the crawl runs Scrapy's asyncio reactor (False when none is installed yet, as
    when a test builds the pipeline outside a crawl)."""
    try:
        return bool(is_asyncio_available())
    except RuntimeError:
        return False


class _Unmaskable(Exception):
    """An item whose values cannot all be reached (it refers to itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Frame:
    """One container being rebuilt by the iterative walk: its children, the masked children
    produced so far, and which children are left as they are (values of skipped keys)."""

    __slots__ = ("children", "i", "obj", "out", "skip")

    def __init__(self, obj: Any, children: list[Any], skip: list[bool] | None) -> None:
        self.obj = obj
        self.children = children
        self.skip = skip
        self.out: list[Any] = []
        self.i = 0


class _MaskerOptions(dict[str, Any]):
    """The masker's keyword arguments (also sent to worker processes); the HMAC key is a
    secret, so it never shows in a ``repr`` (tracebacks that capture locals, debuggers)."""

    def __repr__(self) -> str:
        shown = {k: ("<hidden>" if k == "hmac_key" and v else v) for k, v in self.items()}
        return f"{type(self).__name__}({shown!r})"


class PiiMaskingPipeline:
    """Masks personal data in every item (see the module docstring and README)."""

    def __init__(self, crawler: Crawler, config: PiiConfig) -> None:
        self.crawler = crawler
        self.config = config
        self._masker_options: dict[str, Any] = _MaskerOptions(
            {
                "types": config.types,
                "operators": dict(config.policy),
                "default_operator": config.default_operator,
                "languages": config.languages,
                "private_ips": config.private_ips,
                "hmac_key": config.hmac_key,
                "partial_keep": config.partial_keep,
            }
        )
        self.masker = PiiMasker(**self._masker_options)
        self._field_ops = {
            name: op
            for name in config.types
            if (op := self.masker.operator_for(name)) in (t.REMOVE_FIELD, t.DROP_ITEM)
        }
        self._logged_drops: set[str] = set()
        logger.info(
            "PII masking is on: %(types)d types, %(build)s engine, %(where)s",
            {
                "types": len(self.masker.types),
                "build": "compiled" if COMPILED else "plain Python",
                "where": self._where(),
            },
        )

    def _where(self) -> str:
        if self.config.workers_auto and self.config.workers:
            return "in the crawl's thread (worker processes need Scrapy's asyncio reactor)"
        if self.config.workers_auto:
            return "in the crawl's thread (one CPU: no worker process)"
        return "in the crawl's thread"

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PiiMaskingPipeline:
        settings = crawler.settings
        if not PiiSettings.enabled(settings):
            raise NotConfigured  # off by default: nothing to say
        offload = False
        with config_errors_logged():
            config = PiiSettings.from_settings(settings)
            offload = bool(config.workers) and cls is PiiMaskingPipeline
            if offload and not _asyncio_reactor():
                if not config.workers_auto:
                    raise ConfigError(
                        [
                            f"setting PROXYSTACK_PII_WORKERS: {config.workers} needs Scrapy's "
                            "asyncio reactor; expected TWISTED_REACTOR = "
                            "'twisted.internet.asyncioreactor.AsyncioSelectorReactor', or 0 to "
                            "mask in the crawl's own thread"
                        ]
                    )
                offload = False  # "auto": workers need the asyncio reactor
        if offload:
            return OffloadingPiiMaskingPipeline(crawler, config)
        return cls(crawler, config)

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/{key}", count)

    def process_item(self, item: Any) -> Any:
        """The item with its personal data masked, or ``DropItem``.

        Nothing but ``DropItem`` leaves this method, and never with unmasked content: Scrapy
        logs the item object it passed in (``Dropped: ...`` and, for any other exception,
        ``Error processing {item}``), so an item dropped by policy is masked in place first,
        and one that cannot be masked is emptied in place before it is dropped.
        """
        self._inc("items_scanned")
        return self._guarded(item, self._mask_text)

    def _guarded(self, item: Any, mask_text: MaskText) -> Any:
        """``_process`` with every failure turned into a ``DropItem`` that shows nothing."""
        try:
            return self._process(item, mask_text)
        except DropItem:
            raise
        except Exception as exc:
            reason = exc.reason if isinstance(exc, _Unmaskable) else "error"
            error = type(exc).__name__  # the class only: a message could quote a value
        if not _blank(item):
            # Scrapy logs a dropped item; this one may still hold what could not be masked.
            self._inc("unblankable_items")
            logger.warning(
                "An item that could not be masked could not be emptied either (%(type)s): "
                "Scrapy's own 'Dropped' line may show its content",
                {"type": type(item).__name__},
            )
        self._inc(f"unmaskable_items/{reason}")
        key = f"unmaskable/{reason}"
        level = logging.DEBUG if key in self._logged_drops else logging.WARNING
        self._logged_drops.add(key)
        logger.log(
            level,
            "Dropped an item that could not be masked (reason: %(reason)s, %(error)s); its "
            "content is not shown, further ones are counted in stats",
            {"reason": reason, "error": error},
        )
        raise DropItem(f"item could not be masked ({reason}); its content is not shown")

    def _process(self, item: Any, mask_text: MaskText) -> Any:
        adapter = ItemAdapter(item)
        cfg = self.config
        found: Counter[str] = Counter()
        remove: list[str] = []
        changes: list[tuple[Any, Any, Any]] = []  # (field name, new name, new value)
        renames_keys = isinstance(item, dict)  # declared fields (scrapy.Item) keep their names
        for name in list(adapter.field_names()):
            if name in cfg.skip_fields or (cfg.fields is not None and name not in cfg.fields):
                continue
            if name not in adapter:
                continue
            field_found: Counter[str] = Counter()
            new = self._walk(adapter[name], field_found, mask_text)
            # A dict item's field names are its keys: personal data there is masked too.
            new_name = self._walk(name, field_found, mask_text) if renames_keys else name
            found.update(field_found)
            if any(self._field_ops.get(k) == t.REMOVE_FIELD for k in field_found):
                remove.append(name)
            elif field_found:
                changes.append((name, new_name, new))
        if not found:
            return item
        for name, new_name, new in changes:
            if new_name != name:
                del adapter[name]
            _set_field(item, adapter, new_name, new)
        self._inc("items_with_pii")
        for pii_type, count in sorted(found.items()):
            self._inc(f"masked/{pii_type}", count)
        kinds = sorted(k for k in found if self._field_ops.get(k) == t.REMOVE_FIELD)
        for name in remove:
            for pii_type in kinds:
                self._inc(f"removed_fields/{pii_type}")
            if isinstance(item, MutableMapping):
                del adapter[name]
            else:
                _set_field(item, adapter, name, None)  # dataclass, attrs: declared fields stay
        dropping = sorted(k for k in found if self._field_ops.get(k) == t.DROP_ITEM)
        if dropping:
            # The item is already masked in place: Scrapy's "Dropped" log line shows it so.
            for pii_type in dropping:
                self._inc(f"dropped_items/{pii_type}")
                if pii_type not in self._logged_drops:
                    self._logged_drops.add(pii_type)
                    logger.info(
                        "Dropping items that contain %(type)s (PROXYSTACK_PII_POLICY); "
                        "further drops for this type are counted in stats only",
                        {"type": pii_type},
                    )
            raise DropItem(f"item contains personal data of type(s): {', '.join(dropping)}")
        return item

    def _leaf(self, value: Any, found: Counter[str], mask_text: MaskText) -> tuple[Any, bool]:
        """``(masked value, True)`` for a value with no children, ``(None, False)`` for a
        container the walk must open."""
        if isinstance(value, str):
            return mask_text(value, found), True
        if isinstance(value, (bytes, bytearray)):
            # Text in bytes is masked as UTF-8; bytes that are not UTF-8 go through unchanged
            # (surrogateescape), so masking never corrupts binary parts.
            text = bytes(value).decode("utf-8", "surrogateescape")
            masked = mask_text(text, found)
            if masked is text:
                return value, True
            data = masked.encode("utf-8", "surrogateescape")
            return (bytearray(data) if isinstance(value, bytearray) else data), True
        if isinstance(value, (Mapping, list, tuple, set, frozenset)) or (
            not isinstance(value, type) and ItemAdapter.is_item(value)
        ):
            return None, False
        return value, True  # numbers, dates, None...: nothing to mask

    def _mask_text(self, text: str, found: Counter[str]) -> str:
        result = self.masker.scan(text)
        for span in result.spans:
            found[span.type] += 1
        return result.text

    def _walk(self, root: Any, found: Counter[str], mask_text: MaskText) -> Any:
        """``root`` with every string masked, at any depth and without recursion (an item
        nested thousands of levels deep hit the interpreter's recursion limit, and Scrapy then
        logged the unmasked item). Containers are rebuilt only when something changed; a
        container shared by several parents is walked once; a container that contains itself
        raises ``_Unmaskable("cycle")``."""
        value, done = self._leaf(root, found, mask_text)
        if done:
            return value
        memo: dict[int, Any] = {}
        on_path = {id(root)}
        stack = [self._frame(root)]
        result: Any = None
        while stack:
            frame = stack[-1]
            if frame.i < len(frame.children):
                child = frame.children[frame.i]
                frame.i += 1
                if frame.skip is not None and frame.skip[frame.i - 1]:
                    frame.out.append(child)
                    continue
                value, done = self._leaf(child, found, mask_text)
                if done:
                    frame.out.append(value)
                    continue
                key = id(child)
                if key in memo:
                    frame.out.append(memo[key])
                    continue
                if key in on_path:
                    raise _Unmaskable("cycle")
                on_path.add(key)
                stack.append(self._frame(child))
                continue
            stack.pop()
            on_path.discard(id(frame.obj))
            rebuilt = _rebuild(frame)
            memo[id(frame.obj)] = rebuilt
            if stack:
                stack[-1].out.append(rebuilt)
            else:
                result = rebuilt
        return result

    def _frame(self, obj: Any) -> _Frame:
        skip_fields = self.config.skip_fields
        if isinstance(obj, Mapping):
            children: list[Any] = []
            skip: list[bool] = []
            for k, v in obj.items():
                children += (k, v)
                skip += (False, k in skip_fields)
            return _Frame(obj, children, skip)
        if isinstance(obj, (list, tuple, set, frozenset)):
            return _Frame(obj, list(obj), None)
        adapter = ItemAdapter(obj)  # a dataclass, attrs or other item nested in the item
        names = [name for name in adapter.field_names() if name in adapter]
        return _Frame(
            obj, [adapter[name] for name in names], [name in skip_fields for name in names]
        )


def _rebuild(frame: _Frame) -> Any:
    """The container of ``frame`` with its masked children: the original when none changed,
    else a new object of the same type (nested items are copied, never changed in place:
    another item may share them)."""
    obj, old, new = frame.obj, frame.children, frame.out
    if all(a is b for a, b in zip(old, new, strict=True)):
        return obj
    if isinstance(obj, Mapping):
        pairs = list(zip(new[0::2], new[1::2], strict=True))
        if type(obj) is dict:
            return dict(pairs)
        if isinstance(obj, MutableMapping):
            try:
                out = copy.copy(obj)
                out.clear()
                out.update(pairs)
            except Exception:  # an unusual mapping: a plain dict holds the same data
                return dict(pairs)
            return out
        return dict(pairs)
    if isinstance(obj, list):
        return new if type(obj) is list else type(obj)(new)
    if isinstance(obj, tuple):
        make = getattr(obj, "_make", None)  # a namedtuple
        return make(new) if make is not None else type(obj)(new)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(new)
    out = copy.copy(obj)
    adapter = ItemAdapter(out)
    names = [name for name in adapter.field_names() if name in adapter]
    for name, value in zip(names, new, strict=True):
        _set_field(out, adapter, name, value)
    return out


def _set_field(item: Any, adapter: ItemAdapter, name: Any, value: Any) -> None:
    """Set a field, also on a frozen dataclass or attrs instance."""
    try:
        adapter[name] = value
    except Exception:
        object.__setattr__(item, name, value)


def _blank(item: Any) -> bool:
    """Empty an item in place, so that what Scrapy logs of a dropped item holds nothing;
    False when some of it could not be emptied (the caller counts and says so)."""
    try:
        if isinstance(item, MutableMapping):
            item.clear()
            return True
        adapter = ItemAdapter(item)
        names = list(adapter.field_names())
    except Exception:  # any item type may fail here: reported by the caller
        return False
    emptied = True
    for name in names:
        try:
            _set_field(item, adapter, name, None)
        except Exception:  # a read-only attribute: reported by the caller
            emptied = False
    return emptied


#: Items with less text than this are masked in the crawl's thread even with workers: sending a
#: small item to a worker and back costs about as much as masking it.
OFFLOAD_MIN_CHARS = 8192

#: Seconds ``open_spider`` waits for the masking workers to be ready before the crawl starts.
WORKER_START_TIMEOUT = 60.0

#: Batches each masking worker may have in flight (see ``OffloadingPiiMaskingPipeline``).
BATCHES_IN_FLIGHT = 8


class OffloadingPiiMaskingPipeline(PiiMaskingPipeline):
    """``PiiMaskingPipeline`` with ``PROXYSTACK_PII_WORKERS`` > 0 (``from_crawler`` picks it).

    The engine holds the GIL while it scans, so on text-heavy crawls masking in the reactor
    thread takes time from downloading and parsing. Here the strings of an item with at least
    ``OFFLOAD_MIN_CHARS`` characters of text are masked in worker processes
    (``scrapy_proxystack.pii.workers``); the item is walked once to collect them and once to put
    the masked ones back, with the same rules, so what gets masked and counted does not change.
    Items leave the pipeline in the order they entered it (each waits for the one before), so
    exporters see the order they would see without workers. At most ``BATCHES_IN_FLIGHT``
    batches per worker are in flight: further items wait in ``process_item``, which holds them
    in Scrapy's scraper slot and so slows the downloader down (back-pressure) instead of
    queueing text without bound. (A window of two was measured to starve the worker: a batch
    waits a few turns of a busy reactor between its answer and the next batch.)

    The workers start in ``open_spider``, which waits until they are ready (a fresh interpreter
    imports the engine and builds its masker: about 0.2 s) before the first request is sent: a
    worker that started during the crawl took its CPU from the crawl's start, while the crawl
    masked in its own thread. Should they fail to start, or not be ready within
    ``WORKER_START_TIMEOUT`` seconds, the crawl masks in its own thread; so it does from the
    first failure of a worker on, the failed items included: nothing is lost.
    """

    def __init__(self, crawler: Crawler, config: PiiConfig) -> None:
        super().__init__(crawler, config)
        self._pool: MaskingPool | None = None
        self._slots = asyncio.Semaphore(BATCHES_IN_FLIGHT * config.workers)
        self._tail: asyncio.Future[None] | None = None
        self._ready = False

    async def process_item(self, item: Any) -> Any:
        self._inc("items_scanned")
        previous, done = self._tail, asyncio.get_running_loop().create_future()
        self._tail = done
        try:
            return await self._offloaded(item)
        finally:
            if previous is not None:
                await asyncio.shield(previous)
            done.set_result(None)
            if self._tail is done:
                self._tail = None

    async def _offloaded(self, item: Any) -> Any:
        texts: list[str] = []

        def collect(text: str, found: Counter[str]) -> str:
            texts.append(text)
            return text

        self._guarded(item, collect)  # reads only; an item that cannot be walked is dropped
        if not self._ready or self._pool is None or sum(map(len, texts)) < OFFLOAD_MIN_CHARS:
            return self._guarded(item, self._mask_text)
        async with self._slots:
            try:
                masked = await self._pool.mask(texts)
            except Exception as exc:  # a worker died: mask here from now on
                if self._ready:
                    self._ready = False
                    self._inc("workers_failed")
                    logger.warning(
                        "PII masking workers failed (%(error)s); masking in the crawl's thread "
                        "from now on",
                        {"error": exc},
                    )
                return self._guarded(item, self._mask_text)
        self._inc("offloaded_items")
        results = iter(masked)

        def replay(text: str, found: Counter[str]) -> str:
            new, kinds = next(results)
            found.update(kinds)
            return text if new == text else new

        return self._guarded(item, replay)

    def _where(self) -> str:
        return f"in {self.config.workers} worker process(es)"

    async def open_spider(self) -> None:
        """Start the workers and wait (bounded) until each has built its masker."""
        pool = self._pool = MaskingPool(self.config.workers, self._masker_options)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await asyncio.wait_for(pool.start(), WORKER_START_TIMEOUT)
        except Exception as exc:  # no worker: mask in the crawl's thread
            self._inc("workers_failed")
            reason = "not ready in time" if isinstance(exc, asyncio.TimeoutError) else exc
            logger.warning(
                "PII masking workers did not start (%(error)s); masking in the crawl's thread",
                {"error": reason},
            )
            await self._close_pool()
            return
        self._ready = True
        logger.info(
            "PII masking workers ready: %(workers)d in %(seconds).2f s",
            {"workers": self.config.workers, "seconds": loop.time() - started},
        )

    async def close_spider(self) -> None:
        await self._close_pool()

    async def _close_pool(self) -> None:
        self._ready = False
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
