"""Fuzzing the proxy config loader: whatever it is given, it answers or raises ConfigError, fast.

Documents come from three sources: random structures (dumped to YAML, and also passed as the
``PROXYSTACK_PROXIES`` dict), schema-shaped configs with random values, and random YAML texts
built from YAML's own punctuation, anchors, aliases and merge keys. Each must end in a
:class:`ProxyConfig` or a :class:`ConfigError` whose every line is short, within a per-document
time bound that is far above the real cost (milliseconds) so a loaded CI machine cannot fail it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scrapy_proxystack.config import (
    ConfigError,
    ProxyConfig,
    load_proxy_config,
    parse_proxy_config,
)
from scrapy_proxystack.pool import ExitPool

#: Seconds one document may take. The slowest seen is a few tens of milliseconds.
BOUND_S = 20.0
#: Longest problem line: values, keys and name lists are capped in messages.
MAX_LINE = 5000
SECRET = "fuzzSECRETpw"

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCHEMA_KEYS = (
    "locales",
    "domains",
    "default_locale",
    "proxies",
    "pools",
    "fallback",
    "strategy",
    "accept_language",
    "min_anonymity",
    "weight",
    "url",
    "locale",
    "rate",
    "burst",
    "exit_delay",
    "bans",
    "status",
    "content_status",
    "body_patterns",
    "url_patterns",
    "min_body_size",
    "fr",
    "de",
    "*.a.fr",
    "<<",
)
INTERESTING = (
    "http://127.0.1.1:8000",
    "https://proxy.example.net",
    "http://[::1]:3128",
    "fr",
    "de",
    "latency",
    "elite",
    f"http://u:{SECRET}@127.0.1.1:8000",
    f"http://u:{SECRET} x@127.0.1.2:8000",
    f"http://u:{SECRET}/#?@127.0.1.3:8000",
    f"u:{SECRET}@127.0.1.4:8000",
    f"socks5://u:{SECRET}@127.0.1.5:1080",
    "http://127.0.1.1:0",
    "http://127.0.1.1:99999",
    "http://[::1:8000",
    "http://a<b>c:1",
    "http://exa mple.com:1",
    "http://пароль🔑@127.0.1.6:1",
    "(unclosed",
    "*.a.fr",
    "",
)

huge_text = st.builds(
    lambda piece, n: piece * n, st.text(min_size=1, max_size=4), st.integers(0, 200_000)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.integers(4400, 5000).map(lambda e: 10**e),  # str() refuses these: messages must not
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(INTERESTING),
    huge_text,
)
keys = st.one_of(
    st.sampled_from(SCHEMA_KEYS), st.text(max_size=10), st.integers(), st.none(), st.booleans()
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=60,
)
proxy_values = st.one_of(
    st.sampled_from(INTERESTING),
    st.fixed_dictionaries({"url": st.sampled_from(INTERESTING)}, optional={"weight": scalars}),
    structures,
)
locale_blocks = st.one_of(
    st.lists(proxy_values, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "proxies": st.lists(proxy_values, max_size=4),
            "pools": st.dictionaries(
                keys,
                st.fixed_dictionaries(
                    {}, optional={"weight": scalars, "proxies": st.lists(proxy_values, max_size=3)}
                ),
                max_size=3,
            ),
            "fallback": st.one_of(
                st.lists(st.sampled_from(("fr", "de", "es")), max_size=3), scalars
            ),
            "strategy": st.one_of(scalars, structures),
            "accept_language": scalars,
            "min_anonymity": scalars,
        },
    ),
    structures,
)
domain_rules = st.one_of(
    scalars,
    st.fixed_dictionaries(
        {},
        optional={
            "locale": st.one_of(st.sampled_from(("fr", "de")), structures),
            "rate": scalars,
            "burst": scalars,
            "exit_delay": scalars,
            "lang": st.one_of(scalars, st.lists(st.sampled_from(("fr", "pt-BR", "x")) | scalars)),
            "bans": st.one_of(
                structures,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "status": st.one_of(st.lists(scalars, max_size=3), scalars),
                        "body_patterns": st.one_of(st.lists(scalars, max_size=3), scalars),
                        "min_body_size": scalars,
                    },
                ),
            ),
        },
    ),
)
valid_urls = st.builds(
    "http://{}127.0.{}.{}:{}".format,
    st.sampled_from(("", "u:p@", "u:p%20w%C3%A4@", "gw-user:x@")),
    st.integers(0, 255),
    st.integers(1, 254),
    st.integers(1, 65535),
)
mostly_valid = st.fixed_dictionaries(
    {
        "locales": st.dictionaries(
            st.sampled_from(("fr", "de", "es")),
            st.one_of(
                st.lists(valid_urls, min_size=1, max_size=3),
                st.lists(
                    st.fixed_dictionaries({"url": valid_urls, "weight": scalars}),
                    min_size=1,
                    max_size=3,
                ),
                st.fixed_dictionaries(
                    {"proxies": st.lists(valid_urls, min_size=1, max_size=3)},
                    optional={
                        "fallback": st.lists(st.sampled_from(("fr", "de", "es")), max_size=2),
                        "strategy": st.sampled_from(("latency", "random", "round robin")),
                    },
                ),
            ),
            min_size=1,
        )
    },
    optional={
        "domains": st.dictionaries(
            st.sampled_from(("a.fr", "*.b.de", "c.es", "d<e>.fr")),
            st.one_of(
                st.sampled_from(("fr", "de")),
                st.fixed_dictionaries(
                    {},
                    optional={"rate": scalars, "burst": scalars, "exit_delay": scalars},
                ),
            ),
        ),
        "default_locale": st.sampled_from(("fr", "de")),
    },
)
configs = st.one_of(
    mostly_valid,
    structures,
    st.fixed_dictionaries(
        {},
        optional={
            "locales": st.one_of(
                st.dictionaries(st.sampled_from(("fr", "de", "es")) | keys, locale_blocks),
                structures,
            ),
            "domains": st.one_of(st.dictionaries(keys, domain_rules, max_size=4), structures),
            "default_locale": st.one_of(st.sampled_from(("fr", "de", "xx")), structures),
        },
    ),
)
YAML_TOKENS = (
    "locales:",
    "domains:",
    "default_locale:",
    "fr:",
    "de:",
    "proxies:",
    "pools:",
    "fallback:",
    "strategy:",
    "weight:",
    "url:",
    "locale:",
    "rate:",
    "bans:",
    "<<:",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    "&a ",
    "&b ",
    "*a",
    "*b",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!timestamp ",
    "!!python/object:os.system ",
    "? ",
    "|\n",
    ">\n",
    "'",
    '"',
    "\\",
    "#",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    ".inf",
    "-.inf",
    ".nan",
    "0x1F",
    "1e400",
    "9" * 400,
    "2024-13-45",
    "null",
    "~",
    "yes",
    f"http://u:{SECRET}@127.0.1.1:1",
    "\n",
    "\n  ",
    "\n    ",
    "\t",
    " ",
)
yaml_texts = st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=5), max_size=60).map("".join)


def _anchored(doc: str, n: int) -> str:
    """``doc`` preceded by nine levels of nested aliases (an alias "bomb") under ``x-bomb``."""
    levels = "".join(
        f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, n + 1)
    )
    return "x-bomb:\n  - &l0 [a, a, a, a, a, a, a, a, a]\n" + levels + doc


_DIR = Path(tempfile.mkdtemp(prefix="proxystack-fuzz-"))


def check_yaml(text: str, encoding: str = "latin-1") -> None:
    path = _DIR / "proxies.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    started = time.perf_counter()
    try:
        result = load_proxy_config(path, auth_encoding=encoding)
    except ConfigError as exc:
        check_message(exc)
        event("refused: " + ("YAML" if "YAML" in str(exc) else f"{len(exc.problems)} problems"))
    else:
        accepted(result)
    assert time.perf_counter() - started < BOUND_S


def accepted(config: ProxyConfig) -> None:
    """An accepted config is usable: the pool builds from it (weights, fallback chains)."""
    assert isinstance(config, ProxyConfig)
    ExitPool(config)
    for name in config.locales:
        assert config.fallback_chain(name)[0] == name
    event(f"accepted, {len(config.all_proxies)} proxies")


def check_message(exc: ConfigError) -> None:
    message = str(exc)
    assert exc.problems
    assert all(len(line) < MAX_LINE for line in message.splitlines()), message[:2000]
    assert SECRET not in message


@FUZZ
@given(configs, st.sampled_from(("latin-1", "utf-8", "ascii")))
def test_random_structures_as_a_dict(data: Any, encoding: str) -> None:
    started = time.perf_counter()
    try:
        result = load_proxy_config(data=data, auth_encoding=encoding)
    except ConfigError as exc:
        check_message(exc)
        event("refused: " + ("YAML" if "YAML" in str(exc) else f"{len(exc.problems)} problems"))
    else:
        accepted(result)
    assert time.perf_counter() - started < BOUND_S


@FUZZ
@given(configs, st.integers(0, 9))
def test_random_structures_as_yaml_with_aliases(data: Any, bomb_levels: int) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):  # keys or values PyYAML cannot write
        return
    check_yaml(text)
    # The same document with every "fr" value an alias into a nine-fold nested list.
    if bomb_levels:
        aliased = text.replace(": fr\n", f": *l{bomb_levels}\n").replace("- fr\n", "- *l1\n")
        check_yaml(_anchored(aliased, bomb_levels))


@FUZZ
@given(yaml_texts)
def test_random_yaml_texts(text: str) -> None:
    check_yaml(text)
    check_yaml(_anchored(text, 9))


def test_self_referential_dict_is_refused() -> None:
    data: dict[str, Any] = {"locales": {}}
    data["locales"]["fr"] = data
    data["domains"] = data
    data["default_locale"] = data
    with pytest.raises(ConfigError) as info:
        parse_proxy_config(data)
    check_message(info.value)
    assert "locales.fr.locales: unknown key" in str(info.value)
