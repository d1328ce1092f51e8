"""Tests of PiiMaskingPipeline: settings, item types, policies, stats, and a real crawl of the
loopback world through its proxies, with the add-on enabled and feeds exported."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import scrapy
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.utils.test import get_crawler

from scrapy_proxystack.pii import COMPILED
from scrapy_proxystack.pipelines.pii import PiiMaskingPipeline
from tests.crawl import run_crawl

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

    from scrapy.http import Response

    from scrapy_proxystack.testing import LoopbackWorld


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


def test_the_start_says_which_build_of_the_engine_masks(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="scrapy_proxystack.pipelines.pii"):
        pipe = make({"PROXYSTACK_PII_TYPES": ["email", "phone"]})
    build = "compiled" if COMPILED else "plain Python"
    assert f"PII masking is on: 2 types, {build} engine" in caplog.text
    assert pipe.masker.types == {"email", "phone"}


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


# --- a real crawl of the loopback world, through its proxies, with feeds exported -------------

# Personal data the spider adds to each page's text, and what must be left of it: the world's
# pages only carry a phone number and an e-mail under the reserved .test TLD (never masked).
INJECTED = (
    "Paid with card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, "
    "receipt to jane.roe@mailbox.org. Version 2.4.1.187, order 4111111111111112."
)
INJECTED_MASKED = (
    "Paid with card [CREDIT_CARD], IBAN [IBAN], receipt to [EMAIL]. "
    "Version 2.4.1.187, order 4111111111111112."
)
SECRETS = ("4111 1111", "DE89", "jane.roe")


class _Recordable:
    """Lets tests/runner.py record the item with ``dict(item)``. ItemAdapter picks its adapter
    by type first, so the pipeline and the exporters still see a dataclass or an attrs class."""

    def keys(self) -> list[str]:
        return list(ItemAdapter(self).field_names())

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


@dataclass
class CrawlDataItem(_Recordable):
    kind: str
    text: str
    url: str


@attrs.define
class CrawlAttrsItem(_Recordable):
    kind: str
    text: str
    url: str


class CrawlScrapyItem(scrapy.Item):
    kind = scrapy.Field()
    text = scrapy.Field()
    url = scrapy.Field()


def _dict_item(**fields: str) -> dict[str, str]:
    return fields


FACTORIES: dict[str, Callable[..., Any]] = {
    "dict": _dict_item,
    "dataclass": CrawlDataItem,
    "attrs": CrawlAttrsItem,
    "scrapy.Item": CrawlScrapyItem,
}


class PiiWorldSpider(scrapy.Spider):
    """Follows the articles of the world's sites; each article gives one item (the item type
    cycles with the page number) holding the page's contact line and the injected data."""

    name = "pii_world"

    def __init__(self, urls: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls or []

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(url)

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a[href^='/page/']")
        if "/page/" not in response.url:
            return
        number = int(response.url.rsplit("/", 1)[1])
        kind = list(FACTORIES)[(number - 1) % len(FACTORIES)]
        contact = " ".join(response.css("p.contact ::text").getall())
        yield FACTORIES[kind](kind=kind, text=f"{contact} | {INJECTED}", url=response.url)


def test_crawl_of_the_loopback_world_exports_masked_feeds(
    world: LoopbackWorld, tmp_path: Path
) -> None:
    sites = [
        world.add_site("boutique-fr", lang="fr", countries={"fr"}, pages=4),
        world.add_site("daily-us", lang="en", countries={"us"}, pages=4),
    ]
    world.add_proxy(1)
    world.add_proxy(1)
    world.add_proxy(5)
    proxies = {
        **world.proxy_config(),
        "domains": {sites[0].host: "fr", sites[1].host: "us"},
    }
    feeds = {"jsonl": tmp_path / "items.jsonl", "csv": tmp_path / "items.csv"}
    result = run_crawl(
        tmp_path,
        urls=[site.url("/") for site in sites],
        spider="tests.test_pii_pipeline.PiiWorldSpider",
        settings={
            "PROXYSTACK_PROXIES": proxies,
            "PROXYSTACK_PII_ENABLED": True,
            "FEEDS": {
                feeds["jsonl"].as_uri(): {"format": "jsonlines"},
                feeds["csv"].as_uri(): {"format": "csv", "fields": ["kind", "url", "text"]},
            },
        },
    )
    assert result.returncode == 0, result.log[-3000:]
    assert result.close_reason == "finished"
    # Every page was fetched through a proxy of the site's country.
    for site, country in zip(sites, ("fr", "us"), strict=True):
        assert {r.path for r in site.requests} == {"/", *(f"/page/{n}" for n in range(1, 5))}
        assert {r.country for r in site.requests} == {country}

    exported = [json.loads(line) for line in feeds["jsonl"].read_text().splitlines()]
    assert len(exported) == 8
    assert sorted(i["kind"] for i in exported) == sorted([*FACTORIES] * 2)
    for item in exported:
        site = next(s for s in sites if item["url"].startswith(s.base_url))
        contact, injected = item["text"].split(" | ")
        assert injected == INJECTED_MASKED
        assert site.phone not in contact
        assert contact.count("[PHONE]") == 1
        assert site.email in contact  # reserved .test domain: not personal data
    assert sorted(exported, key=str) == sorted(result.items, key=str)
    rows = list(csv.DictReader(feeds["csv"].read_text().splitlines()))
    assert sorted(r["text"] for r in rows) == sorted(i["text"] for i in exported)
    for feed in feeds.values():
        body = feed.read_text()
        assert all(secret not in body for secret in SECRETS)
        assert all(site.phone not in body for site in sites)
    assert all(secret not in result.log for secret in SECRETS)

    assert {k: v for k, v in result.stats.items() if k.startswith("proxystack/pii/")} == {
        "proxystack/pii/items_scanned": 8,
        "proxystack/pii/items_with_pii": 8,
        "proxystack/pii/masked/credit_card": 8,
        "proxystack/pii/masked/email": 8,
        "proxystack/pii/masked/iban": 8,
        "proxystack/pii/masked/phone": 8,
    }
    assert result.stat("item_scraped_count") == 8


def test_settings_given_on_the_command_line_are_understood() -> None:
    # `scrapy crawl -s NAME=value` hands every value over as a string.
    from scrapy_proxystack.pipelines.pii import PiiConfig

    crawler = get_crawler(
        settings_dict={
            "PROXYSTACK_PII_PARTIAL_KEEP": "2",
            "PROXYSTACK_PII_POLICY": '{"email": "partial"}',
            "PROXYSTACK_PII_TYPES": '["email", "phone"]',
            "PROXYSTACK_PII_LANGUAGES": "fr,de",
        }
    )
    config = PiiConfig.from_settings(crawler.settings)
    assert config.partial_keep == 2
    assert config.policy == {"email": "partial"}
    assert list(config.types) == ["email", "phone"]


def test_bad_enabled_value_names_the_setting() -> None:
    crawler = get_crawler(settings_dict={"PROXYSTACK_PII_ENABLED": "yes"})
    with pytest.raises(ValueError, match="PROXYSTACK_PII_ENABLED"):
        PiiMaskingPipeline.from_crawler(crawler)
