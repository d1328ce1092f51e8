"""Item pipeline that masks personal data before any exporter or feed sees the item.

A thin adapter over :class:`scrapy_proxystack.pii.PiiMasker`: it reads the ``PROXYSTACK_PII_*``
settings once into a frozen config, walks every string of an item (any item type, through
ItemAdapter; nested dicts and lists included), and applies the per-type policy: mask, partial,
pseudonymize, remove the field, or drop the item. It counts what it did in stats and never logs a
value or the HMAC key.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem, NotConfigured

from scrapy_proxystack import default_settings
from scrapy_proxystack.pii import PiiMasker
from scrapy_proxystack.pii import types as t
from scrapy_proxystack.pii.phones import DEFAULT_LANGUAGES, LANGUAGE_REGIONS

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

STATS_PREFIX = "proxystack/pii"
DEFAULT_SKIP_FIELDS = tuple(default_settings.PROXYSTACK_PII_SKIP_FIELDS)
DEFAULT_HMAC_KEY_ENV = "PROXYSTACK_PII_HMAC_KEY"


@dataclass(frozen=True)
class PiiConfig:
    """The validated ``PROXYSTACK_PII_*`` settings."""

    fields: frozenset[str] | None
    skip_fields: frozenset[str]
    types: tuple[str, ...]
    policy: Mapping[str, str]
    default_operator: str
    languages: tuple[str, ...]
    private_ips: bool
    partial_keep: int
    hmac_key: bytes | None = field(repr=False)  # a secret: kept out of tracebacks and logs

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> PiiConfig:
        """Parse and validate; a wrong value raises ValueError naming the setting."""
        fields_raw = settings.get("PROXYSTACK_PII_FIELDS", None)
        fields = (
            None
            if fields_raw is None
            else frozenset(_str_list("PROXYSTACK_PII_FIELDS", fields_raw))
        )
        skip = frozenset(
            _str_list(
                "PROXYSTACK_PII_SKIP_FIELDS",
                settings.get("PROXYSTACK_PII_SKIP_FIELDS", DEFAULT_SKIP_FIELDS),
            )
        )
        types_raw = settings.get("PROXYSTACK_PII_TYPES", None)
        types = (
            t.DEFAULT_TYPES if types_raw is None else _str_list("PROXYSTACK_PII_TYPES", types_raw)
        )
        for name in types:
            if name not in t.ALL_TYPES:
                raise ValueError(
                    f"PROXYSTACK_PII_TYPES contains {name!r}; expected names among "
                    f"{list(t.ALL_TYPES)}"
                )
        policy_raw = settings.get("PROXYSTACK_PII_POLICY", None) or {}
        if isinstance(policy_raw, str):  # JSON, as given with `scrapy crawl -s`
            try:
                policy_raw = json.loads(policy_raw)
            except ValueError:
                raise ValueError(
                    f"PROXYSTACK_PII_POLICY ({policy_raw!r}) is not a valid JSON object"
                ) from None
        if not isinstance(policy_raw, Mapping):
            raise ValueError(
                f"PROXYSTACK_PII_POLICY ({policy_raw!r}) must be a dict of {{type: operator}}"
            )
        policy: dict[str, str] = {}
        for name, op in policy_raw.items():
            if name not in t.ALL_TYPES:
                raise ValueError(
                    f"PROXYSTACK_PII_POLICY has unknown type {name!r}; expected one of "
                    f"{list(t.ALL_TYPES)}"
                )
            if op not in t.OPERATORS:
                raise ValueError(
                    f"PROXYSTACK_PII_POLICY[{name!r}] is {op!r}; expected one of "
                    f"{list(t.OPERATORS)}"
                )
            policy[name] = op
        default_op = settings.get("PROXYSTACK_PII_DEFAULT_OPERATOR", t.MASK)
        if default_op not in t.OPERATORS:
            raise ValueError(
                f"PROXYSTACK_PII_DEFAULT_OPERATOR is {default_op!r}; expected one of "
                f"{list(t.OPERATORS)}"
            )
        langs_raw = settings.get("PROXYSTACK_PII_LANGUAGES", None)
        langs = (
            DEFAULT_LANGUAGES
            if langs_raw is None
            else _str_list("PROXYSTACK_PII_LANGUAGES", langs_raw)
        )
        for lang in langs:
            if lang.lower().split("-")[0].split("_")[0] not in LANGUAGE_REGIONS:
                raise ValueError(
                    f"PROXYSTACK_PII_LANGUAGES contains {lang!r}; expected codes among "
                    f"{sorted(LANGUAGE_REGIONS)}"
                )
        try:
            private_ips = settings.getbool("PROXYSTACK_PII_PRIVATE_IPS", False)
        except ValueError:
            raise ValueError(
                f"PROXYSTACK_PII_PRIVATE_IPS ({settings.get('PROXYSTACK_PII_PRIVATE_IPS')!r}) "
                "must be True or False"
            ) from None
        keep_raw = settings.get("PROXYSTACK_PII_PARTIAL_KEEP", 4)
        if isinstance(keep_raw, str) and keep_raw.strip().isdigit():  # from `scrapy crawl -s`
            keep_raw = int(keep_raw)
        if isinstance(keep_raw, bool) or not isinstance(keep_raw, int) or keep_raw < 0:
            raise ValueError(f"PROXYSTACK_PII_PARTIAL_KEEP ({keep_raw!r}) must be an integer >= 0")
        key = _hmac_key(settings)
        ops = set(policy.values()) | {default_op}
        if t.PSEUDONYMIZE in ops and not key:
            env = settings.get("PROXYSTACK_PII_HMAC_KEY_ENV", DEFAULT_HMAC_KEY_ENV)
            raise ValueError(
                "the 'pseudonymize' operator needs a key: set PROXYSTACK_PII_HMAC_KEY or the "
                f"environment variable named by PROXYSTACK_PII_HMAC_KEY_ENV ({env!r})"
            )
        return cls(
            fields=fields,
            skip_fields=skip,
            types=tuple(types),
            policy=policy,
            default_operator=default_op,
            languages=tuple(langs),
            private_ips=private_ips,
            partial_keep=keep_raw,
            hmac_key=key,
        )


def _str_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a JSON list, as given with `scrapy crawl -s NAME=[...]`
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(f"{name} ({value!r}) is not a valid JSON list") from None
        else:
            value = [v.strip() for v in text.split(",") if v.strip()]
    if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise ValueError(
            f"{name} ({value!r}) must be a list of strings or a comma-separated string"
        )
    return list(value)


def _hmac_key(settings: BaseSettings) -> bytes | None:
    key = settings.get("PROXYSTACK_PII_HMAC_KEY", None)
    if not key:
        env = settings.get("PROXYSTACK_PII_HMAC_KEY_ENV", DEFAULT_HMAC_KEY_ENV)
        if not isinstance(env, str):
            raise ValueError(f"PROXYSTACK_PII_HMAC_KEY_ENV ({env!r}) must be a variable name")
        key = os.environ.get(env) if env else None
    if not key:
        return None
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, bytes):
        return key
    # The value itself is never echoed: it is a secret.
    raise ValueError("PROXYSTACK_PII_HMAC_KEY must be a str or bytes (value not shown)")


class PiiMaskingPipeline:
    """Masks personal data in every item (see the module docstring and README)."""

    def __init__(self, crawler: Crawler, config: PiiConfig) -> None:
        self.crawler = crawler
        self.config = config
        self.masker = PiiMasker(
            types=config.types,
            operators=config.policy,
            default_operator=config.default_operator,
            languages=config.languages,
            private_ips=config.private_ips,
            hmac_key=config.hmac_key,
            partial_keep=config.partial_keep,
        )
        self._field_ops = {
            name: op
            for name in config.types
            if (op := self.masker.operator_for(name)) in (t.REMOVE_FIELD, t.DROP_ITEM)
        }
        self._logged_drops: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PiiMaskingPipeline:
        settings = crawler.settings
        try:
            enabled = settings.getbool("PROXYSTACK_PII_ENABLED", False)
        except ValueError:
            raise ValueError(
                f"PROXYSTACK_PII_ENABLED ({settings.get('PROXYSTACK_PII_ENABLED')!r}) "
                "must be True or False"
            ) from None
        if not enabled:
            raise NotConfigured  # off by default: nothing to say
        return cls(crawler, PiiConfig.from_settings(settings))

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/{key}", count)

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        cfg = self.config
        found: Counter[str] = Counter()
        remove: list[str] = []
        self._inc("items_scanned")
        for name in list(adapter.field_names()):
            if name in cfg.skip_fields or (cfg.fields is not None and name not in cfg.fields):
                continue
            if name not in adapter:
                continue
            field_found: Counter[str] = Counter()
            new = self._walk(adapter[name], field_found)
            found.update(field_found)
            if any(self._field_ops.get(k) == t.REMOVE_FIELD for k in field_found):
                remove.append(name)
            elif field_found:
                adapter[name] = new
        if not found:
            return item
        self._inc("items_with_pii")
        for pii_type, count in sorted(found.items()):
            self._inc(f"masked/{pii_type}", count)
        dropping = sorted(k for k in found if self._field_ops.get(k) == t.DROP_ITEM)
        if dropping:
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
        for name in remove:
            kinds = sorted(k for k in found if self._field_ops.get(k) == t.REMOVE_FIELD)
            for pii_type in kinds:
                self._inc(f"removed_fields/{pii_type}")
            if isinstance(item, MutableMapping):
                del adapter[name]
            else:
                adapter[name] = None  # dataclass and attrs items keep their declared fields
        return item

    def _walk(self, value: Any, found: Counter[str]) -> Any:
        if isinstance(value, str):
            result = self.masker.scan(value)
            for span in result.spans:
                found[span.type] += 1
            return result.text
        if isinstance(value, Mapping):
            skip = self.config.skip_fields
            return {k: (v if k in skip else self._walk(v, found)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, found) for v in value]
        if isinstance(value, tuple):
            return tuple(self._walk(v, found) for v in value)
        return value
