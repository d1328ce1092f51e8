"""Tests of PiiMaskingPipeline: settings, item types, policies, stats, and a real crawl."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import scrapy
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.test import get_crawler

from scrapy_proxystack.pipelines.pii import PiiMaskingPipeline

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def make(settings: dict[str, Any] | None = None) -> PiiMaskingPipeline:
    crawler = get_crawler(settings_dict={"PROXYSTACK_PII_ENABLED": True, **(settings or {})})
    crawler.stats.open_spider()  # type: ignore[union-attr]
    return PiiMaskingPipeline.from_crawler(crawler)


def stats(pipe: PiiMaskingPipeline) -> dict[str, Any]:
    assert pipe.crawler.stats is not None
    return {k: v for k, v in pipe.crawler.stats.get_stats().items() if k.startswith("proxystack/")}


@dataclass
class DataItem:
    text: str
    url: str


@attrs.define
class AttrsItem:
    text: str
    url: str


class ScrapyItem(scrapy.Item):
    text = scrapy.Field()
    url = scrapy.Field()


def test_disabled_by_default() -> None:
    with pytest.raises(NotConfigured):
        PiiMaskingPipeline.from_crawler(get_crawler())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PROXYSTACK_PII_TYPES": ["email", "bogus"]}, "PROXYSTACK_PII_TYPES"),
        ({"PROXYSTACK_PII_POLICY": {"email": "shred"}}, r"PROXYSTACK_PII_POLICY\['email'\]"),
        ({"PROXYSTACK_PII_POLICY": {"bogus": "mask"}}, "PROXYSTACK_PII_POLICY"),
        ({"PROXYSTACK_PII_POLICY": ["email"]}, "PROXYSTACK_PII_POLICY"),
        ({"PROXYSTACK_PII_DEFAULT_OPERATOR": "x"}, "PROXYSTACK_PII_DEFAULT_OPERATOR"),
        ({"PROXYSTACK_PII_LANGUAGES": ["xx"]}, "PROXYSTACK_PII_LANGUAGES"),
        ({"PROXYSTACK_PII_PARTIAL_KEEP": -2}, "PROXYSTACK_PII_PARTIAL_KEEP"),
        ({"PROXYSTACK_PII_FIELDS": 3}, "PROXYSTACK_PII_FIELDS"),
        ({"PROXYSTACK_PII_PRIVATE_IPS": "maybe"}, "PROXYSTACK_PII_PRIVATE_IPS"),
        (
            {"PROXYSTACK_PII_POLICY": {"email": "pseudonymize"}, "PROXYSTACK_PII_HMAC_KEY_ENV": ""},
            "PROXYSTACK_PII_HMAC_KEY",
        ),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(settings)


def test_wrong_key_type_is_not_echoed() -> None:
    with pytest.raises(ValueError, match="value not shown") as info:
        make({"PROXYSTACK_PII_HMAC_KEY": 12345, "PROXYSTACK_PII_DEFAULT_OPERATOR": "pseudonymize"})
    assert "12345" not in str(info.value)


@pytest.mark.parametrize("factory", [dict, DataItem, AttrsItem, ScrapyItem])
def test_item_types(factory: Any) -> None:
    pipe = make()
    item = factory(text="mail jane@mailbox.org", url="https://x.test/jane@mailbox.org")
    out = pipe.process_item(item)
    assert out is item
    got = (
        dict(out)
        if isinstance(out, (dict, scrapy.Item))
        else attrs.asdict(out)
        if attrs.has(type(out))
        else out.__dict__
    )
    assert got["text"] == "mail [EMAIL]"
    assert got["url"] == "https://x.test/jane@mailbox.org"  # skipped field
    assert stats(pipe)["proxystack/pii/masked/email"] == 1


def test_nested_values_and_field_selection() -> None:
    pipe = make({"PROXYSTACK_PII_FIELDS": ["body"]})
    item = {
        "body": {"posts": ["call +33 6 12 34 56 78", {"id": "a@b.io", "who": "a@b.io"}], "n": 3},
        "title": "a@b.io",
    }
    out = pipe.process_item(item)
    assert out["body"]["posts"][0] == "call [PHONE]"
    assert out["body"]["posts"][1] == {"id": "a@b.io", "who": "[EMAIL]"}
    assert out["body"]["n"] == 3
    assert out["title"] == "a@b.io"
    s = stats(pipe)
    assert s["proxystack/pii/masked/phone"] == 1
    assert s["proxystack/pii/masked/email"] == 1
    assert s["proxystack/pii/items_with_pii"] == 1


def test_policies(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MY_PII_KEY", "s3cret-key")
    pipe = make(
        {
            "PROXYSTACK_PII_POLICY": {
                "email": "pseudonymize",
                "credit_card": "partial",
                "phone": "remove_field",
                "us_ssn": "drop_item",
            },
            "PROXYSTACK_PII_HMAC_KEY_ENV": "MY_PII_KEY",
        }
    )
    out = pipe.process_item(
        {"a": "jane@mailbox.org", "b": "card 4111 1111 1111 1111", "c": "tel +33 6 12 34 56 78"}
    )
    assert out["a"].startswith("[EMAIL:")
    assert out["a"] == pipe.process_item({"a": "jane@mailbox.org"})["a"]
    assert out["b"] == "card **** **** **** 1111"
    assert "c" not in out
    with caplog.at_level("INFO"):
        for _ in range(3):
            with pytest.raises(DropItem, match="us_ssn"):
                pipe.process_item({"x": "SSN 536-90-4399"})
    assert sum("us_ssn" in r.getMessage() for r in caplog.records) == 1
    assert "536-90-4399" not in caplog.text
    assert "s3cret-key" not in caplog.text
    s = stats(pipe)
    assert s["proxystack/pii/dropped_items/us_ssn"] == 3
    assert s["proxystack/pii/removed_fields/phone"] == 1


def test_remove_field_keeps_declared_fields_of_dataclasses() -> None:
    pipe = make({"PROXYSTACK_PII_POLICY": {"email": "remove_field"}})
    out = pipe.process_item(DataItem(text="a@b.io", url="u"))
    assert out.text is None


# --- a real crawl against a loopback site -----------------------------------------------------

PAGES = {
    "/": b"<html><body><a href='/p/1'>1</a><a href='/p/2'>2</a><a href='/p/3'>3</a>"
    b"<a href='/p/4'>4</a></body></html>",
    "/p/1": b"<p>Contact: jane.roe@mailbox.org, Tel +33 6 12 34 56 78</p>",
    "/p/2": b"<p>IBAN DE89 3704 0044 0532 0130 00, version 2.4.1.187</p>",
    "/p/3": b"<p>Card 4111 1111 1111 1111; order 4111111111111112</p>",
    "/p/4": "<p>né le 12/03/1985, NIR 1 85 05 78 006 084 91</p>".encode(),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


SPIDER = textwrap.dedent(
    """
    import json, sys
    from dataclasses import dataclass
    import attrs, scrapy
    from scrapy.crawler import CrawlerProcess

    @dataclass
    class DataItem:
        text: str
        url: str

    @attrs.define
    class AttrsItem:
        text: str
        url: str

    class ScrapyItem(scrapy.Item):
        text = scrapy.Field()
        url = scrapy.Field()

    FACTORIES = [dict, DataItem, AttrsItem, ScrapyItem]

    class PiiSpider(scrapy.Spider):
        name = "pii"

        async def start(self):
            yield scrapy.Request(sys.argv[1] + "/")

        def parse(self, response):
            if response.url.endswith("/"):
                yield from response.follow_all(css="a")
                return
            n = int(response.url.rsplit("/", 1)[1])
            text = " ".join(response.css("p::text").getall())
            yield FACTORIES[n - 1](text=text, url=response.url)

    process = CrawlerProcess({
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "ITEM_PIPELINES": {"scrapy_proxystack.pipelines.pii.PiiMaskingPipeline": 900},
        "PROXYSTACK_PII_ENABLED": True,
        "FEEDS": {sys.argv[2]: {"format": "jsonlines"}},
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
    })
    crawler = process.create_crawler(PiiSpider)
    process.crawl(crawler)
    process.start()
    stats = {k: v for k, v in crawler.stats.get_stats().items() if k.startswith("proxystack/")}
    with open(sys.argv[3], "w") as f:
        json.dump(stats, f)
    """
)


def test_real_crawl_exports_masked_feeds(site: str, tmp_path: Path) -> None:
    script = tmp_path / "crawl.py"
    script.write_text(SPIDER)
    feed, stats_file = tmp_path / "items.jsonl", tmp_path / "stats.json"
    proc = subprocess.run(
        [sys.executable, str(script), site, feed.as_uri(), str(stats_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = sorted(
        (json.loads(line) for line in feed.read_text().splitlines()), key=lambda i: i["url"]
    )
    texts = [i["text"] for i in items]
    assert texts == [
        "Contact: [EMAIL], Tel [PHONE]",
        "IBAN [IBAN], version 2.4.1.187",
        "Card [CREDIT_CARD]; order 4111111111111112",
        "né le [DATE_OF_BIRTH], NIR [FR_NIR]",
    ]
    assert all(i["url"].startswith(site) for i in items)
    for secret in ("jane.roe", "+33 6 12", "DE89", "4111 1111", "12/03/1985", "1 85 05"):
        assert secret not in feed.read_text()
        assert secret not in proc.stderr
    stats = json.loads(stats_file.read_text())
    assert stats == {
        "proxystack/pii/items_scanned": 4,
        "proxystack/pii/items_with_pii": 4,
        "proxystack/pii/masked/credit_card": 1,
        "proxystack/pii/masked/date_of_birth": 1,
        "proxystack/pii/masked/email": 1,
        "proxystack/pii/masked/fr_nir": 1,
        "proxystack/pii/masked/iban": 1,
        "proxystack/pii/masked/phone": 1,
    }
