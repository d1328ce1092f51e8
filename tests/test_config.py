"""The proxy config: every bad input is refused at start-up with file, key and expectation."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from scrapy_proxystack.config import ConfigError, load_proxy_config, parse_proxy_config
from scrapy_proxystack.config.schema import exit_id

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cr3t-pw"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proxies.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_contract_example_parses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        locales:
          fr:
            proxies:
              - http://user:{SECRET}@203.0.113.10:8000      # credentials stay with the proxy
              - {{url: http://203.0.113.11:8000, weight: 2}}
            fallback: [eu]
          eu:
            proxies: [https://gw.example.net:9443]
          us:
            proxies: [http://198.51.100.7:3128]
          jp:
            proxies: [http://198.51.100.8:3128]
        domains:
          lemonde.fr: fr
          "*.co.jp": jp
        default_locale: us
        """,
    )
    config = load_proxy_config(path)
    assert config.source == str(path)
    assert list(config.locales) == ["fr", "eu", "us", "jp"]
    fr = config.locales["fr"].proxies
    # Entries with a user name get a short hash of it in their id, never the name itself.
    assert [p.id for p in fr] == [
        exit_id("http", "203.0.113.10", 8000, "user"),
        "203.0.113.11:8000",
    ]
    assert fr[0].id.startswith("203.0.113.10:8000~")
    assert fr[0].url == f"http://user:{SECRET}@203.0.113.10:8000"
    assert fr[0].username == "user"
    assert fr[1].weight == 2.0
    assert SECRET not in repr(config)
    assert config.fallback_chain("fr") == ("fr", "eu")
    assert config.default_locale == "us"
    assert config.domain_rule("lemonde.fr").locale == "fr"  # type: ignore[union-attr]
    assert config.domain_rule("www.shop.co.jp").locale == "jp"  # type: ignore[union-attr]
    assert config.domain_rule("example.org") is None
    assert len(config.all_proxies) == 5


def test_gateway_entries_differing_by_user_are_distinct_exits() -> None:
    config = parse_proxy_config(
        {
            "locales": {
                "fr": [
                    "http://customer-country-fr-session-1:pw@gw.example.net:7000",
                    "http://customer-country-fr-session-2:pw@gw.example.net:7000",
                ]
            }
        }
    )
    ids = [p.id for p in config.all_proxies]
    assert len(set(ids)) == 2
    assert all(i.startswith("gw.example.net:7000~") for i in ids)
    assert all("customer" not in i and "pw" not in i for i in ids)


def test_exit_ids_do_not_move_when_lines_are_added() -> None:
    gw = "http://customer-country-fr-session-{}:pw@gw.example.net:7000"
    before = parse_proxy_config({"locales": {"fr": [gw.format(2), "http://10.0.0.1:80"]}})
    after = parse_proxy_config(
        {
            "locales": {
                "fr": [gw.format(1), "http://10.0.0.9:80", gw.format(2), "http://10.0.0.1:80"]
            }
        }
    )
    ids_before = {p.url: p.id for p in before.all_proxies}
    ids_after = {p.url: p.id for p in after.all_proxies}
    assert all(ids_after[url] == exit_id for url, exit_id in ids_before.items())
    assert ids_after["http://10.0.0.1:80"] == "10.0.0.1:80"
    # The password is not part of the identity: a rotated password keeps the exit's history.
    rotated = parse_proxy_config({"locales": {"fr": [gw.format(2).replace(":pw@", ":new@")]}})
    assert rotated.all_proxies[0].id == ids_before[gw.format(2)]


def test_an_exit_may_be_given_its_own_id() -> None:
    config = parse_proxy_config(
        {"locales": {"fr": [{"url": "http://u:p@gw.example.net:7000", "id": "vendor-a.fr-1"}]}}
    )
    assert config.all_proxies[0].id == "vendor-a.fr-1"


@pytest.mark.parametrize(
    ("proxies", "message"),
    [
        ([{"url": "http://10.0.0.1:80", "id": "a b"}], r"locales\.fr\.proxies\[0\]\.id"),
        ([{"url": "http://10.0.0.1:80", "id": 7}], r"locales\.fr\.proxies\[0\]\.id"),
        (
            [{"url": "http://10.0.0.1:80", "id": "x"}, {"url": "http://10.0.0.2:80", "id": "x"}],
            r"proxies\[1\]\.id: its exit id 'x' is also the id of locales\.fr\.proxies\[0\]",
        ),
        (
            ["http://10.0.0.1:80", {"url": "http://10.0.0.2:80", "id": "10.0.0.1:80"}],
            "also the id of",
        ),
    ],
)
def test_bad_or_clashing_ids_are_refused(proxies: list[object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_proxy_config({"locales": {"fr": proxies}})


def test_pools_with_weights_and_per_locale_options() -> None:
    config = parse_proxy_config(
        {
            "locales": {
                "de": {
                    "pools": {
                        "vendor_a": {"weight": 95, "proxies": ["http://10.0.0.1:1"]},
                        "vendor_b": {"weight": 5, "proxies": ["http://10.0.0.2:1"]},
                    },
                    "strategy": "weighted",
                    "accept_language": "de-AT,de;q=0.9",
                }
            },
            "domains": {"shop.de": {"locale": "de", "rate": 2.5, "burst": 3}},
        }
    )
    de = config.locales["de"]
    assert [(p.name, p.weight) for p in de.pools] == [("vendor_a", 95.0), ("vendor_b", 5.0)]
    assert de.strategy == "weighted"
    assert de.accept_language == "de-AT,de;q=0.9"
    rule = config.domain_rule("shop.de")
    assert rule is not None
    assert (rule.rate, rule.burst) == (2.5, 3)


def test_domain_rule_prefers_exact_then_longest_suffix() -> None:
    config = parse_proxy_config(
        {
            "locales": {
                "a": ["http://1.1.1.1:1"],
                "b": ["http://1.1.1.2:1"],
                "c": ["http://1.1.1.3:1"],
            },
            "domains": {"*.example.com": "a", "*.shop.example.com": "b", "shop.example.com": "c"},
        }
    )
    assert config.domain_rule("x.shop.example.com").locale == "b"  # type: ignore[union-attr]
    assert config.domain_rule("shop.example.com").locale == "c"  # type: ignore[union-attr]
    assert config.domain_rule("www.example.com").locale == "a"  # type: ignore[union-attr]
    assert config.domain_rule("example.com") is None


BAD_CASES: list[tuple[str, Any, list[str]]] = [
    (
        "unknown top-level key with did-you-mean",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "domain": {}},
        ["domain:", "unknown key", "did you mean 'domains'"],
    ),
    (
        "unknown locale key with did-you-mean",
        {"locales": {"fr": {"proxies": ["http://1.2.3.4:1"], "fallbak": ["x"]}}},
        ["locales.fr.fallbak", "did you mean 'fallback'"],
    ),
    (
        "bad URL in a list names its index",
        {"locales": {"fr": {"proxies": ["http://1.2.3.4:1", "http://1.2.3.5:1", "not a url"]}}},
        ["locales.fr.proxies[2]", "expected http://host:port"],
    ),
    (
        "socks5 refused clearly, password redacted",
        {"locales": {"fr": [f"socks5://bob:{SECRET}@1.2.3.4:1080"]}},
        ["locales.fr.proxies[0]", "socks5://", "Scrapy cannot use", "***@"],
    ),
    (
        "scheme-less proxy, the usual proxy-list format, password redacted",
        {"locales": {"fr": [f"alice:{SECRET}@1.2.3.4:8000"]}},
        ["locales.fr.proxies[0]", "no supported scheme", "***@1.2.3.4:8000"],
    ),
    (
        "bad port",
        {"locales": {"fr": [f"http://bob:{SECRET}@1.2.3.4:99999"]}},
        ["locales.fr.proxies[0]", "not a valid URL"],
    ),
    (
        "path in proxy URL",
        {"locales": {"fr": ["http://1.2.3.4:1/path"]}},
        ["locales.fr.proxies[0]", "path or query"],
    ),
    (
        "duplicate proxies across locales",
        {
            "locales": {
                "fr": [f"http://u:{SECRET}@1.2.3.4:1"],
                "de": [f"http://u:{SECRET}@1.2.3.4:1"],
            }
        },
        ["locales.de.proxies[0]", "duplicates locales.fr.proxies[0]"],
    ),
    (
        "fallback to unknown locale",
        {
            "locales": {
                "fr": {"proxies": ["http://1.2.3.4:1"], "fallback": ["euu"]},
                "eu": ["http://1.2.3.5:1"],
            }
        },
        ["locales.fr.fallback[0]", "'euu' is not a configured locale", "did you mean 'eu'"],
    ),
    (
        "fallback cycle",
        {
            "locales": {
                "fr": {"proxies": ["http://1.2.3.4:1"], "fallback": ["eu"]},
                "eu": {"proxies": ["http://1.2.3.5:1"], "fallback": ["fr"]},
            }
        },
        ["fallback cycle", "fr -> eu -> fr"],
    ),
    (
        "empty pool",
        {"locales": {"fr": {"proxies": []}}},
        ["locales.fr.proxies", "is empty", "expected at least one proxy URL"],
    ),
    (
        "locale without proxies",
        {"locales": {"fr": {"fallback": []}}},
        ["locales.fr", "has no proxies"],
    ),
    (
        "domain rule to unknown locale",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "domains": {"lemonde.fr": "frr"}},
        ["domains.lemonde.fr", "'frr' is not a configured locale", "did you mean 'fr'"],
    ),
    (
        "unknown strategy",
        {"locales": {"fr": {"proxies": ["http://1.2.3.4:1"], "strategy": "roundrobin"}}},
        ["locales.fr.strategy", "did you mean 'round_robin'"],
    ),
    (
        "locale with no value names the list shorthand",
        {"locales": {"fr": None}},
        [
            "locales.fr: empty (None); expected a list of proxy URLs "
            "(`fr: [http://host:port, ...]`) or a mapping with 'proxies'"
        ],
    ),
    (
        "unknown anonymity grade",
        {"locales": {"fr": {"proxies": ["http://1.2.3.4:1"], "min_anonymity": "elit"}}},
        ["locales.fr.min_anonymity", "'elit' is not an anonymity grade", "did you mean 'elite'"],
    ),
    (
        "negative weight",
        {"locales": {"fr": [{"url": "http://1.2.3.4:1", "weight": -1}]}},
        ["locales.fr.proxies[0].weight", "expected a number > 0"],
    ),
    (
        "default locale unknown",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "default_locale": "us"},
        ["default_locale", "'us' is not a configured locale"],
    ),
    (
        "bad ban regex in a domain rule",
        {
            "locales": {"fr": ["http://1.2.3.4:1"]},
            "domains": {"a.fr": {"locale": "fr", "bans": {"body_patterns": ["(unclosed"]}}},
        },
        ["domains.a.fr.bans.body_patterns[0]", "not a valid regex"],
    ),
    (
        "top level not a mapping",
        ["http://1.2.3.4:1"],
        ["top level is a list", "expected a mapping"],
    ),
    (
        "default locale is a list",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "default_locale": ["fr"]},
        ["default_locale", "a list is not a configured locale", "expected one of fr"],
    ),
    (
        "domain locale is a list",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "domains": {"a.fr": {"locale": ["fr"]}}},
        ["domains.a.fr", "a list is not a configured locale"],
    ),
    (
        "infinite weight",
        {"locales": {"fr": [{"url": "http://1.2.3.4:1", "weight": float("inf")}]}},
        ["locales.fr.proxies[0].weight", "inf is not a finite number", "expected a number > 0"],
    ),
    (
        "huge weight",
        {"locales": {"fr": {"pools": {"a": {"weight": 1e300, "proxies": ["http://1.2.3.4:1"]}}}}},
        ["locales.fr.pools.a.weight", "too large", "<= 1e+09"],
    ),
    (
        "infinite rate",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "domains": {"a.fr": {"rate": float("inf")}}},
        ["domains.a.fr.rate", "not a finite number"],
    ),
    (
        "port 0",
        {"locales": {"fr": [f"http://u:{SECRET}@1.2.3.4:0"]}},
        ["locales.fr.proxies[0]", "port 0", "expected a port from 1 to 65535", "***@1.2.3.4:0"],
    ),
    (
        "host with angle brackets",
        {"locales": {"fr": ["http://a<b>c:8000"]}},
        ["locales.fr.proxies[0]", "invalid host 'a<b>c'", "expected a host name"],
    ),
    (
        "host with a space",
        {"locales": {"fr": [f"http://u:{SECRET}@exa mple.com:8000"]}},
        ["locales.fr.proxies[0]", "invalid host 'exa mple.com'"],
    ),
    (
        "domain pattern that is no host",
        {"locales": {"fr": ["http://1.2.3.4:1"]}, "domains": {"a<b>.fr": "fr"}},
        ["domains.a<b>.fr", "not a host pattern"],
    ),
    (
        "slash, hash and question mark in a password, unencoded",
        {"locales": {"fr": [f"http://u:{SECRET}/#?x@1.2.3.4:1"]}},
        ["locales.fr.proxies[0]", "'http://***@1.2.3.4:1'", "percent-encoded (%2F, %3F, %23)"],
    ),
    (
        "tab in a password",
        {"locales": {"fr": [f"http://u:{SECRET}\t1@1.2.3.4:1"]}},
        ["locales.fr.proxies[0]", "control character", "%09"],
    ),
    (
        "password the crawl's encoding cannot send",
        {"locales": {"fr": [f"http://u:{SECRET}%F0%9F%94%91@1.2.3.4:1"]}},
        ["locales.fr.proxies[0]", "HTTPPROXY_AUTH_ENCODING ('latin-1') cannot encode"],
    ),
    (
        "a proxies list used twice through an alias",
        "shared",
        ["locales.de.proxies", "same YAML block as locales.fr.proxies", "alias"],
    ),
    (
        "a fallback to itself",
        {"locales": {"fr": {"proxies": ["http://1.2.3.4:1"], "fallback": ["fr"]}}},
        ["locales.fr.fallback[0]", "cannot fall back to itself"],
    ),
]


@pytest.mark.parametrize(("case", "data", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_config_is_refused_with_key_and_expectation(
    tmp_path: Path, case: str, data: Any, expected: list[str]
) -> None:
    import yaml

    path = tmp_path / "proxies.yaml"
    if data == "shared":
        text = (
            "locales:\n"
            f"  fr: {{proxies: &p ['http://u:{SECRET}@1.2.3.4:1']}}\n"
            "  de: {proxies: *p}\n"
        )
    else:
        text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_proxy_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) or f"- {path}" in message
    for fragment in expected:
        assert fragment in message, (case, message)
    assert SECRET not in message


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_proxy_config(
            {"locales": {"fr": ["ftp://1.2.3.4:1"], "de": []}, "default_locale": "xx"}
        )
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("3 problems in the proxy configuration")


def test_yaml_syntax_error_has_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, f"locales:\n  fr:\n    proxies: [http://u:{SECRET}@1.2.3.4:1\n  de: x\n")
    with pytest.raises(ConfigError) as info:
        load_proxy_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "YAML syntax error at line" in message
    assert SECRET not in message


def test_missing_file_names_the_path_and_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_proxy_config(tmp_path / "nope.yaml")
    assert "nope.yaml: file not found" in str(info.value)
    assert "PROXYSTACK_PROXIES_FILE" in str(info.value)


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "locales: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_proxy_config(path)


def test_legacy_list_joins_as_unlocalized_pool() -> None:
    config = load_proxy_config(
        data={"locales": {"fr": ["http://1.2.3.4:1"]}},
        extra_unlocalized=["http://5.6.7.8:3128"],
    )
    assert [p.id for p in config.unlocalized] == ["5.6.7.8:3128"]
    assert config.unlocalized[0].locale is None
    assert len(config.all_proxies) == 2


def test_broken_config_stops_scrapy_before_any_request(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from scrapy_proxystack.testing import LoopbackWorld

    with LoopbackWorld(max_lifetime=60) as world:
        site = world.add_site("never")
        (tmp_path / "proxies.yaml").write_text(
            f"locales:\n  fr:\n    proxies: [http://u:{SECRET}@127.0.1.1:1\n", encoding="utf-8"
        )
        (tmp_path / "spider.py").write_text(
            "import scrapy\n"
            "class S(scrapy.Spider):\n"
            "    name = 's'\n"
            f"    start_urls = [{site.url('/')!r}]\n",
            encoding="utf-8",
        )
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "scrapy", "runspider", "spider.py"),
                *("-s", 'ADDONS={"scrapy_proxystack.Addon": 300}'),
                *("-s", "PROXYSTACK_PROXIES_FILE=proxies.yaml"),
            ],
            cwd=tmp_path,
            env={**os.environ},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1
        output = proc.stdout + proc.stderr
        assert "proxies.yaml: YAML syntax error at line 4" in output
        assert SECRET not in output
        assert "Spider opened" not in output
        assert site.requests == []


def test_duplicate_yaml_keys_are_refused_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        locales:
          fr: [http://u:{SECRET}@1.2.3.4:1]
          de: [http://1.2.3.6:1]
          fr: [http://1.2.3.5:1]
        domains:
          a.fr: {{locale: fr, rate: 1, rate: 2}}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_proxy_config(path)
    assert info.value.problems == (
        f"{path}: locales: key 'fr' appears twice (lines 3 and 5); expected each key once "
        "(YAML would silently keep only the last one)",
        f"{path}: domains.a.fr: key 'rate' appears twice (lines 7 and 7); expected each key "
        "once (YAML would silently keep only the last one)",
    )
    assert SECRET not in str(info.value)


def test_merge_keys_still_work_and_explicit_keys_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        locales:
          fr: [http://1.2.3.4:1]
          de: [http://1.2.3.5:1]
        domains:
          base.fr: &rule {locale: fr, rate: 2, burst: 3}
          a.fr: {<<: *rule, rate: 5}
          b.fr: {<<: [{locale: de}, *rule]}
          c.fr: *rule
        """,
    )
    domains = load_proxy_config(path).domains
    assert (domains["a.fr"].locale, domains["a.fr"].rate, domains["a.fr"].burst) == ("fr", 5, 3)
    assert (domains["b.fr"].locale, domains["b.fr"].rate) == ("de", 2)  # first source wins
    c = domains["c.fr"]
    assert (c.pattern, c.locale, c.rate) == ("c.fr", "fr", 2)  # a shared rule, parsed once


def test_short_fallback_lists_may_be_shared_long_ones_not(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        locales:
          eu: [http://1.2.3.4:1]
          fr: {proxies: [http://1.2.3.5:1], fallback: &fb [eu]}
          de: {proxies: [http://1.2.3.6:1], fallback: *fb}
        """,
    )
    assert load_proxy_config(path).fallback_chain("de") == ("de", "eu")
    shared = ["eu"]  # one Python list in PROXYSTACK_PROXIES, as code often writes it
    data: dict[str, Any] = {
        "locales": {
            "eu": ["http://1.2.3.4:1"],
            "fr": {"proxies": ["http://1.2.3.5:1"], "fallback": shared},
            "de": {"proxies": ["http://1.2.3.6:1"], "fallback": shared},
        }
    }
    assert parse_proxy_config(data).fallback_chain("fr") == ("fr", "eu")
    long = [f"l{i}" for i in range(17)]
    data["locales"].update({name: ["http://1.2.3.7:1"] for name in long[:1]})
    data["locales"]["fr"]["fallback"] = data["locales"]["de"]["fallback"] = long
    with pytest.raises(ConfigError) as info:
        parse_proxy_config(data)
    assert (
        "PROXYSTACK_PROXIES: locales.de.fallback: is the same YAML block as "
        "locales.fr.fallback (an alias)"
    ) in str(info.value)


def test_unreadable_values_are_config_errors(tmp_path: Path) -> None:
    cases = [
        ("x: " + "9" * 5000, "line 2, column 4: this int cannot be read"),
        ("x: 2024-13-45", "line 2, column 4: this timestamp cannot be read"),
        (f"x: !!float 'http://u:{SECRET}@h'", "line 2, column 4: this float cannot be read"),
        ("x: !!int ''", "line 2, column 4: this int cannot be read"),
    ]
    for value, expected in cases:
        path = write(tmp_path, "locales: {fr: [http://1.2.3.4:1]}\n" + value + "\n")
        with pytest.raises(ConfigError) as info:
            load_proxy_config(path)
        assert str(info.value) == (
            f"{path}: YAML syntax error at {expected} (malformed or out of range); "
            "expected valid YAML"
        )


def test_unknown_auth_encoding_is_named() -> None:
    with pytest.raises(ConfigError, match="setting HTTPPROXY_AUTH_ENCODING: 'nope' is not an"):
        parse_proxy_config({"locales": {"fr": ["http://u:p@1.2.3.4:1"]}}, auth_encoding="nope")


def test_credentials_in_the_crawl_encoding_are_accepted() -> None:
    data = {"locales": {"fr": ["http://u:p%C3%A4ss w'\"@1.2.3.4:1", "http://ü:pässwörd@1.2.3.5:1"]}}
    config = parse_proxy_config(data)  # latin-1, Scrapy's default, can send both
    assert [p.username for p in config.all_proxies] == ["u", "ü"]
    utf8 = {"locales": {"fr": ["http://u:%D0%BF%D0%B0%D1%80%D0%BE%D0%BB%D1%8C@1.2.3.4:1"]}}
    with pytest.raises(ConfigError, match="cannot encode"):
        parse_proxy_config(utf8)
    assert parse_proxy_config(utf8, auth_encoding="utf-8").all_proxies[0].username == "u"


# -- bounded work ---------------------------------------------------------------------------------
# Each case took a minute or more (or gigabytes) before validation was made linear. The bound is
# generous (the work is now milliseconds) so that a loaded CI machine cannot make it flaky.
BOUND_S = 20.0


def _timed_refusal(load: Any) -> tuple[float, str]:
    import time

    started = time.perf_counter()
    try:
        load()
    except ConfigError as exc:
        return time.perf_counter() - started, str(exc)
    return time.perf_counter() - started, ""


def test_ladder_fallbacks_are_checked_in_linear_time() -> None:
    locales = {
        f"l{i}": {
            "proxies": [f"http://10.0.0.{i}:1"],
            "fallback": [f"l{j}" for j in (i + 1, i + 2) if j < 40],
        }
        for i in range(40)
    }
    elapsed, message = _timed_refusal(lambda: parse_proxy_config({"locales": locales}))
    assert message == ""
    assert elapsed < BOUND_S
    config = parse_proxy_config({"locales": locales})
    assert config.fallback_chain("l0") == tuple(f"l{i}" for i in range(40))


def test_long_chains_and_their_cycles_are_linear_and_messages_capped() -> None:
    n = 3000
    locales: dict[str, Any] = {
        f"l{i}": {
            "proxies": [f"http://10.0.{i // 250}.{i % 250}:1"],
            "fallback": [f"l{i + 1}"] if i < n - 1 else [],
        }
        for i in range(n)
    }
    config = parse_proxy_config({"locales": locales})
    assert len(config.fallback_chain("l0")) == n  # no RecursionError on a deep chain
    locales[f"l{n - 1}"]["fallback"] = ["l0"]
    # Every locale also falls back to the first: 3,000 cycles, of which 10 are spelled out.
    for i in range(1, n - 1):
        locales[f"l{i}"]["fallback"].append("l0")
    elapsed, message = _timed_refusal(lambda: parse_proxy_config({"locales": locales}))
    assert elapsed < BOUND_S
    lines = message.splitlines()
    assert lines[0] == "11 problems in the proxy configuration:"
    assert "fallback cycle l0 -> l1 -> l2 -> l3 -> l4 -> ... (3000 locales) -> " in lines[1]
    assert lines[-1].endswith("locales: 2989 more fallback cycles; expected chains that end")
    assert max(map(len, lines)) < 400


def test_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    levels = "".join(f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    path = write(
        tmp_path,
        "domains: {}\n"
        "locales:\n"
        "  fr:\n"
        "    proxies: [http://1.2.3.4:1]\n"
        "    strategy: [*a9, *a9, *a9, *a9, *a9, *a9, *a9, *a9, *a9]\n"
        "    accept_language: *a9\n"
        "default_locale: [*a9, *a9]\n",
    )
    text = path.read_text(encoding="utf-8")
    bomb = "x: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    text = text.replace("domains: {}\n", "domains: {}\nbombs:\n  - " + bomb + levels)
    path.write_text(text, encoding="utf-8")
    elapsed, message = _timed_refusal(lambda: load_proxy_config(path))
    assert elapsed < BOUND_S
    assert "locales.fr.strategy: a list is not a strategy; expected one of latency" in message
    assert "locales.fr.accept_language: a list; expected a header value" in message
    assert "default_locale: a list is not a configured locale" in message
    assert len(message) < 2000


def test_merge_key_bomb_is_not_expanded(tmp_path: Path) -> None:
    # Each level merges the previous one twice: PyYAML's own flattening doubles per level.
    levels = "".join(f"  m{i}.fr: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}\n" for i in range(1, 64))
    path = write(
        tmp_path,
        "locales: {fr: [http://1.2.3.4:1]}\ndomains:\n  m0.fr: &m0 {locale: fr, rate: 1}\n"
        + levels,
    )
    elapsed, message = _timed_refusal(lambda: load_proxy_config(path))
    assert message == ""
    assert elapsed < BOUND_S
    assert load_proxy_config(path).domains["m63.fr"].rate == 1


def test_huge_values_are_capped_in_messages() -> None:
    huge = "x" * 5_000_000
    data = {
        "locales": {"fr": {"proxies": [f"http://u:{SECRET}@" + huge], "strategy": huge}},
        huge: 1,
        "default_locale": huge + "@" + huge,
    }
    elapsed, message = _timed_refusal(lambda: parse_proxy_config(data))
    assert elapsed < BOUND_S
    assert "(5000000 characters)" in message
    assert len(message) < 2000
    assert SECRET not in message


def test_many_unknown_fallbacks_are_reported_in_bounded_work() -> None:
    n = 3000
    locales = {
        f"l{i}": {"proxies": [f"http://10.1.{i // 250}.{i % 250}:1"], "fallback": [f"x{i}"]}
        for i in range(n)
    }
    elapsed, message = _timed_refusal(lambda: parse_proxy_config({"locales": locales}))
    assert elapsed < BOUND_S
    lines = message.splitlines()
    assert lines[0] == f"{n} problems in the proxy configuration:"
    assert lines[1].endswith(
        "locales.l0.fallback[0]: 'x0' is not a configured locale; expected one of l0, l1, l10, "
        "l100, l1000, l1001, l1002, l1003, l1004, l1005, l1006, l1007, l1008, l1009, l101, "
        "l1010, l1011, l1012, l1013, l1014, ... (3000 in all)"
    )


@pytest.mark.parametrize(
    "huge",
    [10**400, -(10**400), 10**5000, float("inf"), float("-inf")],
    ids=["1e400", "-1e400", "1e5000", "inf", "-inf"],
)
def test_numbers_beyond_floats_are_refused_in_every_numeric_key(huge: Any) -> None:
    data = {
        "locales": {
            "fr": {
                "proxies": [{"url": "http://1.2.3.4:1", "weight": huge}],
                "pools": {"p": {"weight": huge, "proxies": ["http://1.2.3.5:1"]}},
            }
        },
        "domains": {
            "a.fr": {
                "locale": "fr",
                "rate": huge,
                "burst": huge,
                "exit_delay": huge,
                "bans": {"min_body_size": -1, "status": [huge]},
            }
        },
    }
    with pytest.raises(ConfigError) as info:
        parse_proxy_config(data)
    paths = [problem.split(": ")[1] for problem in info.value.problems]
    assert paths == [
        "locales.fr.proxies[0].weight",
        "locales.fr.pools.p.weight",
        "domains.a.fr.rate",
        "domains.a.fr.burst",
        "domains.a.fr.exit_delay",
        "domains.a.fr.bans.min_body_size",
        "domains.a.fr.bans.status",
    ]
    assert all(len(problem) < 300 for problem in info.value.problems)


def test_domain_languages_are_tags_and_short_lists_may_be_shared(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        locales: {fr: [http://1.2.3.4:1]}
        domains:
          a.fr: {locale: fr, lang: &l [fr, pt-BR]}
          b.fr: {locale: fr, lang: *l}
          c.fr: {locale: fr, lang: de}
        """,
    )
    domains = load_proxy_config(path).domains
    assert [domains[h].lang for h in ("a.fr", "b.fr", "c.fr")] == [
        ("fr", "pt-BR"),
        ("fr", "pt-BR"),
        ("de",),
    ]
    with pytest.raises(ConfigError) as info:
        parse_proxy_config(
            {"locales": {"fr": ["http://1.2.3.4:1"]}, "domains": {"a.fr": {"lang": ["fr", 1]}}}
        )
    assert str(info.value) == (
        "PROXYSTACK_PROXIES: domains.a.fr.lang[1]: 1; expected a language tag such as 'fr' or "
        "'pt-BR'"
    )
