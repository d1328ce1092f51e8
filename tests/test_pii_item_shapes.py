"""The PII pipeline on items of any shape: deep nesting, cycles, bytes, sets, dict keys, nested
dataclass and attrs objects, encoded e-mail addresses; and the guarantee that an item it cannot
mask is dropped without its content reaching a log line, even Scrapy's own."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import namedtuple
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import scrapy
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy.exceptions import DropItem
from scrapy.logformatter import LogFormatter

from tests.crawl import run_crawl
from tests.test_pii_pipeline import make, stats

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


EMAIL = "jane.roe@mailbox.org"
PHONE = "+33 6 12 34 56 78"


@dataclasses.dataclass
class Author:
    name: str
    contact: str


@dataclasses.dataclass(frozen=True)
class FrozenAuthor:
    contact: str
    url: str


@attrs.define
class AttrsAuthor:
    contact: str
    tags: set[str]


@attrs.frozen
class FrozenAttrsItem:
    text: str


Pair = namedtuple("Pair", "label value")


def test_deep_nesting_has_no_recursion_limit() -> None:
    pipe = make()
    depth = 20_000
    node: Any = f"write to {EMAIL}"
    for i in range(depth):
        node = {"child": node} if i % 2 else [node, "x"]
    item = {"text": node}
    out = pipe.process_item(item)
    for i in range(depth - 1, -1, -1):
        node = out["text"] if i == depth - 1 else node
        node = node["child"] if i % 2 else node[0]
    assert node == "write to [EMAIL]"
    assert stats(pipe)["proxystack/pii/masked/email"] == 1


def test_every_container_and_scalar_kind_is_masked() -> None:
    pipe = make()
    shared = [f"mail {EMAIL}"]
    item = {
        "raw": f"mail {EMAIL}".encode(),
        "buffer": bytearray(f"tel {PHONE}", "utf-8"),
        "latin1": "mail jane.roe@mailbox.org caf\xe9".encode("latin-1"),
        "tags": {EMAIL, "plain"},
        "frozen": frozenset({EMAIL}),
        "pair": (EMAIL, 3),
        "named": Pair("mail", EMAIL),
        "keys": {EMAIL: "x", "n": 1.5, "who": {f"tel {PHONE}": None}},
        "author": Author(name="Jane", contact=EMAIL),
        "frozen_author": FrozenAuthor(contact=EMAIL, url=f"https://x.test/{PHONE}"),
        "attrs_author": AttrsAuthor(contact=EMAIL, tags={f"tel {PHONE}"}),
        "shared": [shared, shared],
        "untouched": [1, 2.5, None, True],
        EMAIL: "a key of the item itself",
    }
    author = item["author"]
    out = pipe.process_item(item)
    assert out["raw"] == b"mail [EMAIL]"
    assert out["buffer"] == bytearray(b"tel [PHONE]")
    assert isinstance(out["buffer"], bytearray)
    assert out["latin1"] == "mail [EMAIL] caf\xe9".encode("latin-1")  # non-UTF-8 bytes kept
    assert out["tags"] == {"[EMAIL]", "plain"}
    assert out["frozen"] == frozenset({"[EMAIL]"})
    assert isinstance(out["frozen"], frozenset)
    assert out["pair"] == ("[EMAIL]", 3)
    assert out["named"] == Pair("mail", "[EMAIL]")
    assert isinstance(out["named"], Pair)
    assert out["keys"] == {"[EMAIL]": "x", "n": 1.5, "who": {"tel [PHONE]": None}}
    assert out["author"] == Author(name="Jane", contact="[EMAIL]")
    assert author.contact == EMAIL  # a nested object is copied: other items may share it
    # url is a skipped field, also in nested objects
    assert out["frozen_author"] == FrozenAuthor(contact="[EMAIL]", url=f"https://x.test/{PHONE}")
    assert out["attrs_author"] == AttrsAuthor(contact="[EMAIL]", tags={"tel [PHONE]"})
    assert out["shared"][0] is out["shared"][1]
    assert out["shared"][0] == ["mail [EMAIL]"]
    assert out["untouched"] == [1, 2.5, None, True]
    assert out["[EMAIL]"] == "a key of the item itself"
    assert "jane" not in repr(out)


def test_frozen_items_are_masked() -> None:
    pipe = make()
    out = pipe.process_item(FrozenAttrsItem(text=f"mail {EMAIL}"))
    assert out.text == "mail [EMAIL]"
    out = pipe.process_item(FrozenAuthor(contact=EMAIL, url="u"))
    assert out.contact == "[EMAIL]"


@pytest.mark.parametrize(
    "text",
    [
        "jane.roe%40mailbox.org",
        "jane.roe&#64;mailbox.org",
        "jane.roe&#x40;mailbox.org",
        "jane.roe&#X40;mailbox.org",
        "jane.roe&commat;mailbox.org",
        "jane.roe\u200b@mailbox.org",
        "jane.roe@\u200bmailbox.org",
        "jane.roe\u200d@mailbox.org",
        "jane.roe@\u200cmailbox.org",
        "jane.roe\u2060@\ufeffmailbox.org",
    ],
)
def test_encoded_and_hidden_at_signs(text: str) -> None:
    pipe = make()
    out = pipe.process_item({"text": f"href=mailto:{text}?subject=hi and {text}."})
    assert out["text"] == "href=mailto:[EMAIL]?subject=hi and [EMAIL]."


def _cyclic() -> dict[str, Any]:
    item: dict[str, Any] = {"text": f"mail {EMAIL}", "posts": [f"call {PHONE}"]}
    item["posts"].append(item)
    return item


def test_a_cycle_drops_the_item_without_its_content(caplog: pytest.LogCaptureFixture) -> None:
    pipe = make()
    spider = scrapy.Spider("s")
    spider.crawler = pipe.crawler
    for _ in range(3):
        item = _cyclic()
        with caplog.at_level(logging.DEBUG), pytest.raises(DropItem) as info:
            pipe.process_item(item)
        assert "cycle" in str(info.value)
        # What Scrapy logs for a dropped item, formatted as its scraper does.
        logged = LogFormatter().dropped(item, info.value, None, spider)
        assert logged is not None
        text = logged["msg"] % logged["args"]
        assert "jane" not in text
        assert "12 34" not in text
    assert "jane" not in caplog.text
    assert "12 34" not in caplog.text
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # then counted, logged at DEBUG only
    assert "cycle" in warnings[0].getMessage()
    assert stats(pipe)["proxystack/pii/unmaskable_items/cycle"] == 3
    assert "proxystack/pii/masked/email" not in stats(pipe)


class _BrokenMasker:
    """Stands in for the pipeline's masker (a compiled class, whose methods cannot be patched):
    every scan fails with a message that quotes the text."""

    def __init__(self, message: str) -> None:
        self.message = message

    def scan(self, text: str) -> Any:
        raise RuntimeError(self.message.format(text=text))


def test_a_failure_while_masking_drops_the_item_without_its_content(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = make()

    monkeypatch.setattr(pipe, "masker", _BrokenMasker("cannot scan {text}"))
    item = Author(name="Jane", contact=EMAIL)
    with caplog.at_level(logging.DEBUG), pytest.raises(DropItem) as info:
        pipe.process_item(item)
    assert "jane" not in str(info.value).lower()
    assert "jane" not in caplog.text.lower()
    assert "RuntimeError" in caplog.text
    assert item == Author(name=None, contact=None)  # type: ignore[arg-type]
    assert stats(pipe)["proxystack/pii/unmaskable_items/error"] == 1


def test_an_item_dropped_by_policy_is_masked_before_scrapy_logs_it() -> None:
    pipe = make({"PROXYSTACK_PII_POLICY": {"us_ssn": "drop_item"}})
    spider = scrapy.Spider("s")
    spider.crawler = pipe.crawler
    item = {"text": "SSN 536-90-4399", "mail": EMAIL}
    with pytest.raises(DropItem) as info:
        pipe.process_item(item)
    logged = LogFormatter().dropped(item, info.value, None, spider)
    assert logged is not None
    text = logged["msg"] % logged["args"]
    assert "536-90-4399" not in text
    assert EMAIL not in text
    assert "[US_SSN]" in text


_leaves = st.one_of(
    st.text(max_size=30),
    st.sampled_from([EMAIL, f"tel {PHONE}", "jane.roe%40mailbox.org", "x"]),
    st.binary(max_size=20),
    st.integers(),
    st.none(),
)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
        st.frozensets(st.text(max_size=20), max_size=3),
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_any_shape_is_masked_and_stays_masked(value: Any) -> None:
    pipe = make()
    out = pipe.process_item({"text": value})
    again = pipe.process_item({"text": out["text"]})
    assert again["text"] == out["text"]
    flat = repr(out)
    assert EMAIL not in flat
    assert PHONE not in flat


class ShapesSpider(scrapy.Spider):
    """Yields, without any request, items Scrapy could not log safely before: cyclic, deeply
    nested, dropped by policy."""

    name = "pii_shapes"

    def __init__(self, urls: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    async def start(self) -> AsyncIterator[Any]:
        yield _cyclic()
        deep: Any = f"mail {EMAIL}"
        for _ in range(600):
            deep = {"d": deep}
        yield {"text": deep}
        yield {"text": "SSN 536-90-4399 and " + EMAIL}
        yield {"text": f"plain {EMAIL}"}


def test_crawl_log_never_holds_an_unmasked_item(tmp_path: Path) -> None:
    result = run_crawl(
        tmp_path,
        urls=[],
        spider="tests.test_pii_item_shapes.ShapesSpider",
        addon=False,
        settings={
            "LOG_LEVEL": "DEBUG",
            "ITEM_PIPELINES": {"scrapy_proxystack.pipelines.pii.PiiMaskingPipeline": 900},
            "PROXYSTACK_PII_ENABLED": True,
            "PROXYSTACK_PII_POLICY": {"us_ssn": "drop_item"},
        },
    )
    assert result.returncode == 0, result.log[-3000:]
    assert "jane" not in result.log
    assert "12 34" not in result.log
    assert "536-90" not in result.log
    assert "Error processing" not in result.log
    assert result.stat("item_scraped_count") == 2
    assert result.stat("item_dropped_count") == 2
    assert result.stat("proxystack/pii/unmaskable_items/cycle") == 1
    assert result.stat("proxystack/pii/dropped_items/us_ssn") == 1
    assert "[EMAIL]" in json.dumps(result.items)


# --- masking in worker processes ------------------------------------------------------------


class OrderSpider(scrapy.Spider):
    """Yields big and small items in turn from the crawl's first moment: the big ones are masked
    in a worker (ready before the crawl starts), the small ones in the crawl's thread, and the
    exporters must still see them in the order they were yielded."""

    name = "pii_order"

    def __init__(self, urls: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    async def start(self) -> AsyncIterator[Any]:
        filler = "Lorem ipsum dolor sit amet, 12 items at 3.50 each. " * 400  # ~20 KB
        for i in range(30):
            big = i % 2 == 0
            text = f"#{i} write to user{i}@mailbox.org or call +33 6 12 34 56 {i:02d}. "
            yield {"n": i, "text": text + (filler if big else ""), "tags": {f"user{i}@mail.org"}}


@pytest.mark.parametrize("workers", [0, 1])
def test_workers_mask_the_same_and_keep_the_order(tmp_path: Path, workers: int) -> None:
    result = run_crawl(
        tmp_path,
        urls=[],
        spider="tests.test_pii_item_shapes.OrderSpider",
        addon=False,
        settings={
            "ITEM_PIPELINES": {"scrapy_proxystack.pipelines.pii.PiiMaskingPipeline": 900},
            "PROXYSTACK_PII_ENABLED": True,
            "PROXYSTACK_PII_WORKERS": workers,
        },
    )
    assert result.returncode == 0, result.log[-3000:]
    assert [item["n"] for item in result.items] == list(range(30))
    for item in result.items:
        assert item["text"].startswith(f"#{item['n']} write to [EMAIL] or call [PHONE]. ")
        assert item["tags"] == str({"[EMAIL]"})  # the runner writes sets with str()
    assert result.stat("proxystack/pii/masked/email") == 60
    assert result.stat("proxystack/pii/masked/phone") == 30
    assert result.stat("proxystack/pii/offloaded_items") == (15 if workers else 0)


@pytest.mark.parametrize("value", [-1, "two", 1.5, True])
def test_bad_workers_setting(value: object) -> None:
    with pytest.raises(ValueError, match="PROXYSTACK_PII_WORKERS"):
        make({"PROXYSTACK_PII_WORKERS": value})


class _Unclearable(dict[str, Any]):
    def clear(self) -> None:
        raise TypeError("this mapping cannot be emptied")


def test_an_item_that_cannot_be_emptied_either_is_counted_and_said(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = make()

    monkeypatch.setattr(pipe, "masker", _BrokenMasker("scan failed"))
    with caplog.at_level(logging.WARNING), pytest.raises(DropItem):
        pipe.process_item(_Unclearable(contact=EMAIL))
    assert stats(pipe)["proxystack/pii/unblankable_items"] == 1
    assert stats(pipe)["proxystack/pii/unmaskable_items/error"] == 1
    assert "could not be emptied either" in caplog.text
    assert "jane" not in caplog.text.lower()
