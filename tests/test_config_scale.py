"""Large proxy lists: ``proxies_file``, the compact exit table, the plain-YAML reader, and the
structures that grow with exits staying bounded."""

from __future__ import annotations

import gc
import math
import tracemalloc
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_proxystack.config import (
    ConfigError,
    ExitTable,
    ProxyEntry,
    ProxyList,
    load_proxy_config,
    model,
    parse_proxy_config,
    schema,
)
from scrapy_proxystack.config import loader as yaml_loader
from scrapy_proxystack.config.schema import exit_id
from scrapy_proxystack.extensions._aggregate import MAX_TRACKED_EXITS, CrawlAggregate
from scrapy_proxystack.pool import ExitPool
from scrapy_proxystack.pool import exits as pool_exits
from scrapy_proxystack.signals import ExitOutcome

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s3cr3t-pw"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- proxies_file ---------------------------------------------------------------------------------


def test_a_proxies_file_gives_the_exits_an_inline_list_gives(tmp_path: Path) -> None:
    urls = [f"http://user-{i}:{SECRET}@gw.example.net:7000" for i in range(5)]
    urls.append("socks5h://u:p@10.0.0.9:1080")
    written = [*urls[:-2], "10.0.0.8:3128", urls[-1]]  # a line without a scheme is HTTP
    urls[-2] = "http://10.0.0.8:3128"
    write(tmp_path / "fr.txt", "# vendor A, France\n\n" + "\n".join(f"  {u}  " for u in written))
    cfg = write(tmp_path / "proxies.yaml", "locales:\n  fr:\n    proxies_file: fr.txt\n")
    from_file = load_proxy_config(cfg)
    inline = parse_proxy_config({"locales": {"fr": urls}})
    assert list(from_file.locales["fr"].proxies) == list(inline.locales["fr"].proxies)
    entry = from_file.all_proxies[0]
    assert entry == ProxyEntry(
        id=exit_id("http", "gw.example.net", 7000, "user-0"),
        url=urls[0],
        scheme="http",
        host="gw.example.net",
        port=7000,
        username="user-0",
        locale="fr",
        pool="default",
        weight=1.0,
    )
    assert from_file.all_proxies[-1].scheme == "socks5h"


def test_pools_may_each_name_a_file(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "http://10.0.0.1:8000\nhttp://10.0.0.2:8000\n")
    write(tmp_path / "b.txt", "http://10.0.0.3:8000\n")
    cfg = write(
        tmp_path / "proxies.yaml",
        "locales:\n  fr:\n    pools:\n"
        "      stable: {weight: 95, proxies_file: a.txt}\n"
        "      fresh: {weight: 5, proxies_file: b.txt}\n"
        "  de: [http://10.0.0.4:8000]\n",
    )
    config = load_proxy_config(cfg)
    pools = {p.name: [e.id for e in p.proxies] for p in config.locales["fr"].pools}
    assert pools == {"stable": ["10.0.0.1:8000", "10.0.0.2:8000"], "fresh": ["10.0.0.3:8000"]}
    assert [e.pool for e in config.locales["fr"].proxies] == ["stable", "stable", "fresh"]
    assert [e.locale for e in config.all_proxies] == ["fr", "fr", "fr", "de"]
    pool = ExitPool(config)
    assert pool.counts("fr").total == 3
    assert pool.choose("de", "example.de").entry.id == "10.0.0.4:8000"


def test_file_errors_name_the_file_and_the_line_with_credentials_masked(tmp_path: Path) -> None:
    write(
        tmp_path / "fr.txt",
        f"http://user:{SECRET}@10.0.0.1:8000\n"
        "# a comment\n"
        f"http://user:{SECRET}@10.0.0.2:0\n"
        "\n"
        f"ftp://user:{SECRET}@10.0.0.3:21\n"
        f"http://user:{SECRET}@10.0.0.1:8000\n",
    )
    cfg = write(tmp_path / "p.yaml", "locales:\n  fr:\n    proxies_file: fr.txt\n")
    with pytest.raises(ConfigError) as info:
        load_proxy_config(cfg)
    problems = info.value.problems
    listing = str(tmp_path / "fr.txt")
    assert problems[0].startswith(f"{listing}: line 3: 'http://***@10.0.0.2:0' has port 0")
    assert problems[1].startswith(f"{listing}: line 5: 'ftp://***@10.0.0.3:21' has no supported")
    assert problems[2].startswith(
        f"{listing}: line 6: 'http://***@10.0.0.1:8000' duplicates line 1"
    )
    assert len(problems) == 3
    assert SECRET not in str(info.value)


def test_a_duplicate_between_the_yaml_and_a_file_names_both(tmp_path: Path) -> None:
    write(tmp_path / "de.txt", "http://10.0.0.1:8000\n")
    cfg = write(
        tmp_path / "p.yaml",
        "locales:\n  fr: [http://10.0.0.1:8000]\n  de:\n    proxies_file: de.txt\n",
    )
    with pytest.raises(ConfigError) as info:
        load_proxy_config(cfg)
    message = str(info.value)
    assert "de.txt: line 1: 'http://10.0.0.1:8000' duplicates " in message
    assert "p.yaml locales.fr.proxies[0]; expected each proxy once" in message


@pytest.mark.parametrize(
    ("files", "locale", "expected"),
    [
        ({}, "{proxies_file: nope.txt}", ["locales.fr.proxies_file", "file not found", "nope.txt"]),
        ({"e.txt": "# only a comment\n\n"}, "{proxies_file: e.txt}", ["holds no proxy URL"]),
        ({}, "{proxies_file: 7}", ["locales.fr.proxies_file: 7", "expected the path"]),
        (
            {"a.txt": "http://10.0.0.1:1\n"},
            "{proxies_file: a.txt, proxies: [http://10.0.0.2:1]}",
            ["locales.fr", "both 'proxies' and 'proxies_file'"],
        ),
        (
            {"a.txt": "http://10.0.0.1:1\n"},
            "{pools: {default: {proxies_file: a.txt}}, proxies_file: a.txt}",
            ["locales.fr.pools.default", "clashes"],
        ),
    ],
)
def test_bad_proxies_file_entries_are_explained(
    tmp_path: Path, files: dict[str, str], locale: str, expected: list[str]
) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    cfg = write(tmp_path / "p.yaml", f"locales:\n  fr: {locale}\n")
    with pytest.raises(ConfigError) as info:
        load_proxy_config(cfg)
    for part in expected:
        assert part in str(info.value)


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "fr.txt").write_bytes(b"http://10.0.0.1:1\nhttp://10.0.0.2:1\n\xff\xfe\n")
    cfg = write(tmp_path / "p.yaml", "locales:\n  fr: {proxies_file: fr.txt}\n")
    with pytest.raises(ConfigError, match=r"fr\.txt: line 3: is not UTF-8 text"):
        load_proxy_config(cfg)


def test_a_relative_file_in_the_settings_dict_is_found_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "fr.txt", "http://10.0.0.1:1\n")
    monkeypatch.chdir(tmp_path)
    config = parse_proxy_config({"locales": {"fr": {"proxies_file": "fr.txt"}}})
    assert [e.id for e in config.all_proxies] == ["10.0.0.1:1"]


# -- the quick URL check agrees with the full one -------------------------------------------------

_USER = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=%:@/ éü", max_size=6)
_HOST = st.sampled_from(
    ["gw.example.net", "GW.Example.NET", "10.0.0.1", "h_1", "a-", "[::1]", "exa mple", "x." * 3]
)
_URLS = st.builds(
    lambda scheme, user, password, host, port, tail: (
        f"{scheme}://"
        + (f"{user}{':' + password if password is not None else ''}@" if user is not None else "")
        + host
        + (f":{port}" if port is not None else "")
        + tail
    ),
    st.sampled_from(["http", "https", "socks5", "socks5h", "HTTP", "ftp"]),
    st.none() | _USER,
    st.none() | _USER,
    _HOST,
    st.none() | st.integers(0, 70000) | st.just("08080"),
    st.sampled_from(["", "/", "/x", " "]),
)


def _outcome(urls: list[str]) -> tuple[Any, ...]:
    try:
        config = parse_proxy_config({"locales": {"fr": urls}})
    except ConfigError as exc:
        return ("error", exc.problems)
    return ("ok", [(e.url, e.id, e.scheme, e.host, e.port, e.username) for e in config.all_proxies])


@settings(max_examples=300, deadline=None)
@given(st.lists(_URLS, min_size=1, max_size=4))
def test_the_quick_url_check_accepts_and_refuses_as_the_full_one(urls: list[str]) -> None:
    quick = _outcome(urls)
    with pytest.MonkeyPatch.context() as patch:
        # Every URL takes the full check, and every entry is split by urllib.
        patch.setattr(schema, "_PLAIN_URL", lambda _url: None)
        patch.setattr(model, "PLAIN_URL", lambda _url: None)
        full = _outcome(urls)
    assert quick == full


# -- the plain YAML reader agrees with the full loader --------------------------------------------


def _full_load(text: str) -> Any:
    loader = yaml_loader._Loader(text)
    try:
        root = loader.get_single_node()
        return None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_SCALARS = st.sampled_from(
    [
        "http://u:p@h:1", "1", "0x1F", "0o17", "1_000", ".inf", "-.nan", "yes", "No", "on",
        "~", "null", "", "2024-01-01", "2024-01-01 10:00:00", "'quoted'", '"d\\n"', "=",
        "<<", "&a x", "*a", "!!str 5", "! 12", "!!int ''", "a: b", "[x, y]", "{k: v}",
        "- item", "? k", "|\n  block", "#c", "x # comment",
    ]
)  # fmt: skip
_KEYS = st.sampled_from(["a", "b", "fr", "1", "true", "~", "<<", "=", "? [x]", "'q'"])


def _doc(draw: Any, depth: int) -> str:
    indent = "  " * depth
    if depth >= 3 or draw(st.booleans()):
        return draw(_SCALARS)
    if draw(st.booleans()):
        items = draw(st.lists(st.just(0), max_size=3))
        return "".join(f"\n{indent}- {_doc(draw, depth + 1)}" for _ in items) or "[]"
    keys = draw(st.lists(_KEYS, max_size=3))
    return "".join(f"\n{indent}{k}: {_doc(draw, depth + 1)}" for k in keys) or "{}"


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_the_plain_yaml_reader_builds_what_the_full_loader_builds(data: st.DataObject) -> None:
    text = _doc(data.draw, 0).lstrip("\n")
    try:
        plain = yaml_loader._read_plain(text)
    except yaml_loader._NotPlain:
        return  # the full loader reads it (and reports its problems)
    assert _same(plain, _full_load(text)), text


def test_the_plain_reader_leaves_what_it_does_not_handle_to_the_full_loader() -> None:
    for text in (
        "a: 1\na: 2",  # the full loader names both lines
        "<<: {a: 1}",
        "a: &x 1\nb: *x",
        "a: !!str 1",
        "? [a]\n: b",
        "--- a\n--- b",
        "a: !!int ''",
        "a: [1",
    ):
        with pytest.raises(yaml_loader._NotPlain):
            yaml_loader._read_plain(text)
    with pytest.raises(yaml_loader.YamlRefused, match="appears twice"):
        yaml_loader.read_yaml("locales: {}\nlocales: {}", "p.yaml")


def test_a_large_plain_yaml_is_read_without_composing_nodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def composed(*_args: Any) -> None:
        raise AssertionError("the full loader was used")

    monkeypatch.setattr(yaml_loader._Loader, "get_single_node", composed)
    text = "locales:\n  us:\n" + "".join(f"    - http://u{i}:p@gw:1\n" for i in range(1000))
    data = yaml_loader.read_yaml(text, "p.yaml")
    assert len(data["locales"]["us"]) == 1000


# -- the table ------------------------------------------------------------------------------------


def test_the_table_and_its_slices_read_like_tuples_and_print_no_secret() -> None:
    urls = [f"http://u{i}:{SECRET}@10.0.0.{i}:80" for i in range(1, 8)]
    config = parse_proxy_config(
        {"locales": {"fr": urls[:3], "de": {"pools": {"a": {"proxies": urls[3:]}}}}}
    )
    table = config.all_proxies
    assert isinstance(table, ExitTable)
    fr = config.locales["fr"].proxies
    assert isinstance(fr, ProxyList)
    assert fr == tuple(table[:3])
    assert fr[-1] == table[2]
    assert [e.locale for e in table] == ["fr"] * 3 + ["de"] * 4
    assert [e.pool for e in table] == ["default"] * 3 + ["a"] * 4
    with pytest.raises(IndexError):
        fr[3]
    for shown in (repr(config), repr(table), repr(fr), str(config.locales)):
        assert SECRET not in shown
    assert "7 exits: " in repr(table)
    assert ExitTable.of(list(table)).ids == table.ids


def test_weights_and_given_ids_are_kept() -> None:
    config = parse_proxy_config(
        {
            "locales": {
                "fr": [
                    {"url": "http://10.0.0.1:80", "weight": 3},
                    {"url": "http://10.0.0.2:80", "id": "mine"},
                    "http://10.0.0.3:80",
                ]
            }
        }
    )
    assert [(e.id, e.weight) for e in config.all_proxies] == [
        ("10.0.0.1:80", 3.0),
        ("mine", 1.0),
        ("10.0.0.3:80", 1.0),
    ]


def test_a_given_id_may_not_be_another_exits_computed_id() -> None:
    with pytest.raises(ConfigError, match=r"proxies\[1\]: its exit id '10\.0\.0\.9:80' is also"):
        parse_proxy_config(
            {
                "locales": {
                    "fr": [{"url": "http://10.0.0.1:80", "id": "10.0.0.9:80"}, "http://10.0.0.9:80"]
                }
            }
        )


# -- memory per exit ------------------------------------------------------------------------------


def test_config_and_pool_hold_a_few_hundred_bytes_per_exit() -> None:
    """Allocation sizes (not time): a per-exit object would cost about 1,000 bytes more."""
    n = 20_000
    urls = [f"http://customer-country-fr-session-{i}:pw@gw.example.net:7000" for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        config = parse_proxy_config({"locales": {"fr": urls}})
        pool = ExitPool(config)
        per_exit = (tracemalloc.get_traced_memory()[0] - base) / n
    finally:
        tracemalloc.stop()
    assert len(pool) == n
    assert per_exit < 350, per_exit


def test_choices_kept_for_reuse_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_exits, "_CHOICE_CACHE", 50)
    config = parse_proxy_config(
        {"locales": {"fr": [f"http://10.0.{i // 250}.{i % 250}:80" for i in range(400)]}}
    )
    pool = ExitPool(config, strategy="round_robin")
    seen = set()
    for _ in range(400):
        choice = pool.choose("fr", "example.fr")
        seen.add(choice.entry.id)
        pool.record_success(choice.entry.id, "example.fr", 0.1)
        assert len(pool._choice_own) <= 50
    assert len(seen) == 400
    assert pool.in_flight_by_exit() == {}


def test_the_crawl_aggregate_keeps_the_remarkable_exits_within_its_bound() -> None:
    agg = CrawlAggregate(0.0)

    def outcome(exit_id: str, kind: str, latency: float | None) -> ExitOutcome:
        return ExitOutcome(
            time=1.0,
            url="http://example.com/",
            domain="example.com",
            locale="fr",
            exit_locale="fr",
            exit_id=exit_id,
            kind=kind,
            reason="ok" if kind == "success" else "status_403",
            latency=latency,
            exit_pool="default",
        )

    for _ in range(7):
        agg.add(outcome("banned-a-lot", "ban", 0.2))
    agg.add(outcome("slowest", "success", 30.0))
    for i in range(MAX_TRACKED_EXITS * 2):
        agg.add(outcome(f"e{i}", "success", 0.1))
    assert len(agg.exits) <= MAX_TRACKED_EXITS
    assert agg.exits["banned-a-lot"].bans == 7
    assert agg.exits["slowest"].mean_latency == 30.0
    assert agg.exits_forgotten >= MAX_TRACKED_EXITS


# -- what real lists hold -------------------------------------------------------------------------


def test_vendor_lines_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    (tmp_path / "fr.txt").write_bytes(
        "\ufeff10.0.0.1:8000\n"
        f"gw.example.net:7000:customer-fr-1:{SECRET}\n"
        "gw.example.net:7000:customer-fr-2:p:a/s@s\n".encode()
    )
    cfg = write(tmp_path / "p.yaml", "locales:\n  fr: {proxies_file: fr.txt}\n")
    entries = list(load_proxy_config(cfg).all_proxies)
    assert entries[0].url == "http://10.0.0.1:8000"
    assert entries[1].url == f"http://customer-fr-1:{SECRET}@gw.example.net:7000"
    assert entries[1].username == "customer-fr-1"
    assert entries[2].url == "http://customer-fr-2:p%3Aa%2Fs%40s@gw.example.net:7000"
    assert entries[2].id == exit_id("http", "gw.example.net", 7000, "customer-fr-2")


def test_a_line_that_is_no_proxy_is_quoted_without_its_credentials(tmp_path: Path) -> None:
    write(
        tmp_path / "fr.txt",
        f"1.2.3.4:80800:alice:{SECRET}\n"  # port out of range: not read as a vendor line
        f"host.example:80@carol:{SECRET}\n",
    )
    cfg = write(tmp_path / "p.yaml", "locales:\n  fr: {proxies_file: fr.txt}\n")
    with pytest.raises(ConfigError) as info:
        load_proxy_config(cfg)
    assert len(info.value.problems) == 2
    assert SECRET not in str(info.value)


def test_a_wrong_format_file_gives_a_bounded_message(tmp_path: Path) -> None:
    write(
        tmp_path / "fr.txt",
        "".join(f"ftp://u:{SECRET}@10.0.{i // 250}.{i % 250}:1\n" for i in range(5000)),
    )
    cfg = write(tmp_path / "p.yaml", "locales:\n  fr: {proxies_file: fr.txt}\n")
    with pytest.raises(ConfigError) as info:
        load_proxy_config(cfg)
    problems = info.value.problems
    assert len(problems) == schema._MAX_LIST_PROBLEMS + 1
    assert problems[0].endswith(
        "line 1: 'ftp://***@10.0.0.0:1' has no supported scheme; "
        "expected http://host:port, https://host:port or socks5h://host:port"
    )
    assert f"{5000 - schema._MAX_LIST_PROBLEMS} more problems in this list" in problems[-1]


def test_pool_keys_that_read_as_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"locales\.fr\.pools\.1: names pool '1' again"):
        parse_proxy_config(
            {
                "locales": {
                    "fr": {
                        "pools": {1: {"proxies": ["http://a:1"]}, "1": {"proxies": ["http://c:1"]}}
                    },
                    "de": ["http://d:1"],
                }
            }
        )


def test_file_problems_name_the_key_and_mask_the_path(tmp_path: Path) -> None:
    (tmp_path / "dir.txt").mkdir()
    cfg = write(
        tmp_path / "p.yaml",
        f"locales:\n  fr: {{proxies_file: dir.txt}}\n  de: {{proxies_file: 'http://u:{SECRET}@x/y.txt'}}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_proxy_config(cfg)
    text = str(info.value)
    assert "locales.fr.proxies_file: 'dir.txt' cannot be read" in text
    assert "locales.de.proxies_file" in text
    assert SECRET not in text


def test_a_given_id_clashing_with_a_file_entry_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "fr.txt", "http://10.0.0.1:80\n")
    cfg = write(
        tmp_path / "p.yaml",
        "locales:\n  fr: {proxies_file: fr.txt}\n"
        "  de: [{url: 'http://10.0.0.2:80', id: '10.0.0.1:80'}]\n",
    )
    with pytest.raises(ConfigError, match=r"is also the id of .*fr\.txt line 1"):
        load_proxy_config(cfg)


def test_an_old_mac_file_places_a_bad_byte_on_its_line(tmp_path: Path) -> None:
    (tmp_path / "fr.txt").write_bytes(b"http://10.0.0.1:1\rhttp://10.0.0.2:1\r\r\xff\r")
    cfg = write(tmp_path / "p.yaml", "locales:\n  fr: {proxies_file: fr.txt}\n")
    with pytest.raises(ConfigError, match=r"fr\.txt: line 4: is not UTF-8"):
        load_proxy_config(cfg)


def test_configs_stay_hashable() -> None:
    config = parse_proxy_config({"locales": {"fr": ["http://10.0.0.1:80"]}})
    assert hash(config.locales["fr"]) == hash(config.locales["fr"])
    assert {config.locales["fr"].pools[0]}


def test_decayed_ban_penalties_are_dropped_whatever_the_strategy() -> None:
    now = [0.0]
    config = parse_proxy_config(
        {"locales": {"fr": [f"http://10.0.0.{i}:80" for i in range(1, 21)]}}
    )
    pool = ExitPool(config, strategy="round_robin", clock=lambda: now[0])
    for _ in range(20):
        choice = pool.choose("fr", "shop.fr")
        pool.record_ban(choice.entry.id, "shop.fr", "status_403")
    assert len(pool._pen) == 20
    now[0] = 1e6
    pool.expire()
    assert pool._pen == {}


def test_very_deep_yaml_goes_to_the_full_loader() -> None:
    deep = "[" * 500 + "]" * 500
    with pytest.raises(yaml_loader._NotPlain):
        yaml_loader._read_plain(deep)
