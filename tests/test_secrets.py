"""No secret leaves the process: a crawl with credentials in every place they can be.

Passwords and user names hold spaces, quotes, ``/#?@:%`` and non-ASCII characters, in the YAML
file, in ``PROXYSTACK_PROXIES``, in ``ROTATING_PROXY_LIST``; the PII HMAC key is odd as well.
Real crawls through the loopback world (with a proxy that refuses the configured password, and
a dead one, so that errors happen), ``scrapy proxystack check`` and the config loader's errors
are then searched for each secret, its URL-encoded forms, the base64 of ``user:password`` and
a marker inside each secret (a partial leak shows the marker). The ``repr`` of every suite
object of the crawl (components, the per-crawler stack, its settings, config, entries, pool,
the PII pipeline and masker) is collected inside the crawl and searched the same way.
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from scrapy import signals

from scrapy_proxystack.config import ConfigError, load_proxy_config
from tests.crawl import CrawlResult, run_crawl, write_yaml
from tests.test_check_command import Checked
from tests.test_check_command import run_check as _run_check
from tests.test_observability import EXTENSIONS, STATS_FILE, _Scraper

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from scrapy.crawler import Crawler

    from scrapy_proxystack.testing import LoopbackWorld

# Each secret carries a marker (SECRETxx) so that a part of it left by a split redaction is
# found as well. Latin-1 credentials go through the default HTTPPROXY_AUTH_ENCODING.
CREDENTIALS_LATIN1 = {
    "yaml": ("us er\"'/#?@%USRa1", "pw A \"q' /#?@:%½ÿ\\SECRETa1"),
    "yaml_weighted": ("ü-user USRb2", "pässwörd ' \" /#?@:% SECRETb2"),
    "legacy": ("legacy'user USRc3", 'l3g@cy pw:/#?%"SECRETc3'),
    "wrong": ("wr ong USRd4", "not the proxy's SECRETd4"),
    "dead": ("de@d USRe5", "dead pw /#? SECRETe5"),
}
# Needs HTTPPROXY_AUTH_ENCODING = "utf-8" (latin-1 cannot encode it).
CREDENTIALS_UTF8 = {
    "settings": ("пользователь USRf6", "пароль🔑 \"' /#?@:% SECRETf6"),
    # SOCKS5 exits send credentials as UTF-8 whatever HTTPPROXY_AUTH_ENCODING says.
    "socks": ("s0cks:us er@ USRh8", "пароль/ü \"' #?@:% SECRETh8"),
    "socks_wrong": ("wr:ong socks USRi9", "not the exit's / SECRETi9"),
}
HMAC_KEY = "hm@c k€y \"'/#?%:SECRETg7"


def secret_forms() -> dict[str, str]:
    """Every form in which a secret could leak, named for the failure message."""
    forms: dict[str, str] = {}
    for encoding, table in (("latin-1", CREDENTIALS_LATIN1), ("utf-8", CREDENTIALS_UTF8)):
        for name, (user, password) in table.items():
            marker = password.rsplit("SECRET", 1)[1]
            forms[f"{name} password"] = password
            forms[f"{name} password marker"] = "SECRET" + marker
            forms[f"{name} user marker"] = user.rsplit(" ", 1)[-1].rsplit("-", 1)[-1]
            forms[f"{name} password url-encoded"] = quote(password, safe="")
            forms[f"{name} password url-encoded, / kept"] = quote(password)
            pair = f"{user}:{password}"
            forms[f"{name} basic"] = base64.b64encode(pair.encode(encoding)).decode()
            forms[f"{name} basic utf-8"] = base64.b64encode(pair.encode()).decode()
    forms["hmac key"] = HMAC_KEY
    forms["hmac key marker"] = "SECRETg7"
    forms["hmac key url-encoded"] = quote(HMAC_KEY, safe="")
    return forms


def run_check(tmp: Path, config: dict[str, Any] | str, *args: str, **settings: Any) -> Checked:
    tmp.mkdir(exist_ok=True)
    return _run_check(tmp, config, *args, **settings)


def leaks(outputs: dict[str, str]) -> list[tuple[str, str]]:
    forms = secret_forms()
    return [
        (where, form) for where, text in outputs.items() for form, s in forms.items() if s in text
    ]


# --- repr of every suite object, collected inside the crawl ------------------------------------


class ReprProbe:
    """A test extension: writes the repr of every suite object of the crawl to a JSON file.

    Run at ``engine_stopped``, when every component exists and has done its work. One level of
    attributes is included too (a component's config, masker, settings, pool...), except plain
    strings and bytes, which are the data objects hold (an entry's URL), not their repr.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.path = crawler.settings["SECRETS_REPR_FILE"]
        crawler.signals.connect(self.dump, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ReprProbe:
        return cls(crawler)

    def suite_objects(self) -> Iterator[Any]:
        from scrapy_proxystack.runtime import get_stack

        engine = self.crawler.engine
        assert engine is not None
        managers = (
            engine.downloader.middleware,
            engine.scraper.spidermw,
            engine.scraper.itemproc,
            self.crawler.extensions,
        )
        for manager in managers:
            yield from manager.middlewares
        yield from engine.downloader.handlers._handlers.values()
        stack = get_stack(self.crawler)
        yield stack
        yield from stack.config.all_proxies
        yield from stack.config.locales.values()
        yield from stack.config.domains.values()

    def dump(self) -> None:
        reprs: dict[str, str] = {}
        for obj in self.suite_objects():
            if not type(obj).__module__.startswith("scrapy_proxystack"):
                continue
            name = type(obj).__qualname__
            reprs[f"{name}#{len(reprs)}"] = repr(obj)
            for attr, value in _attributes(obj):
                if isinstance(value, str | bytes):
                    continue  # data, such as the URL an entry holds for Scrapy: not a repr
                reprs[f"{name}.{attr}#{len(reprs)}"] = repr(value)
        assert any(
            k.startswith(("PiiMaskingPipeline.masker", "OffloadingPiiMaskingPipeline.masker"))
            for k in reprs
        )
        assert any(k.startswith("ProxyStack.settings") for k in reprs)
        Path(self.path).write_text(json.dumps(reprs), encoding="utf-8")


def _attributes(obj: Any) -> Iterable[tuple[str, Any]]:
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if isinstance(n, str)]
    for name in dict.fromkeys(names):
        if name.startswith("__"):
            continue
        try:
            yield name, getattr(obj, name)
        except AttributeError:
            continue


# --- the crawls ----------------------------------------------------------------------------


def crawl(
    tmp: Path,
    world: LoopbackWorld,
    urls: list[Any],
    settings: dict[str, Any],
) -> tuple[CrawlResult, dict[str, str]]:
    """A crawl with every output on; returns its result and every output's text."""
    tmp.mkdir(exist_ok=True)
    settings = {
        "EXTENSIONS": {**EXTENSIONS, "tests.test_secrets.ReprProbe": 900},
        "STATS_CLASS": "tests.test_observability.DumpingStatsCollector",
        "PROXYSTACK_EXIT_RETRY_TIMES": 3,
        "PROXYSTACK_STATS_PER_EXIT": True,
        "PROXYSTACK_LOGSTATS_INTERVAL": 0.25,
        "PROXYSTACK_REPORT_FILE": str(tmp / "report.html"),
        "PROXYSTACK_AUDIT_FILE": str(tmp / "audit.jsonl"),
        "PROXYSTACK_PROMETHEUS_PORT": 0,
        "PROXYSTACK_PII_ENABLED": True,
        "PROXYSTACK_PII_DEFAULT_OPERATOR": "pseudonymize",
        "PROXYSTACK_PII_HMAC_KEY": HMAC_KEY,
        "SECRETS_REPR_FILE": str(tmp / "reprs.json"),
        "LOG_LEVEL": "DEBUG",
        **settings,
    }
    stop = threading.Event()
    scraper = _Scraper(tmp / "crawl.log", stop)
    scraper.start()
    try:
        result = run_crawl(tmp, urls=urls, settings=settings)
    finally:
        stop.set()
        scraper.join(10)
    outputs = {
        "crawl log": result.log,
        "stats": json.dumps(result.stats) + (tmp / STATS_FILE).read_text("utf-8"),
        "items": json.dumps(result.items, ensure_ascii=False),
        "report html": (tmp / "report.html").read_text(encoding="utf-8"),
        "report json": (tmp / "report.json").read_text(encoding="utf-8"),
        "audit log": (tmp / "audit.jsonl").read_text(encoding="utf-8"),
        "metrics": "\n".join(scraper.bodies),
        "reprs": (tmp / "reprs.json").read_text(encoding="utf-8"),
    }
    reprs = json.loads(outputs["reprs"])
    outputs.update({f"repr {name}": text for name, text in reprs.items()})
    return result, outputs


def test_no_secret_in_any_output(world: LoopbackWorld, tmp_path: Path) -> None:
    a, b, legacy, wrong, dead = (CREDENTIALS_LATIN1[k] for k in CREDENTIALS_LATIN1)
    fr1 = world.add_proxy(1, auth=a, auth_encoding="latin-1")
    fr2 = world.add_proxy(1, auth=b, auth_encoding="latin-1")
    fr_wrong = world.add_proxy(1, auth=(wrong[0], "something else"), auth_encoding="latin-1")
    fr_dead = world.add_proxy(1, mode="dead", auth=dead)
    old = world.add_proxy(5, auth=legacy, auth_encoding="latin-1")
    wrong_url = fr_wrong.url_without_auth.replace(
        "//", f"//{quote(wrong[0], safe='')}:{quote(wrong[1], safe='')}@"
    )
    dead_url = fr_dead.url
    news = world.add_site("news", lang="fr", pages=6)
    shop = world.add_site("shop", lang="fr", pages=2, tls=True)  # CONNECT tunnels carry auth
    yaml_path = write_yaml(
        tmp_path,
        {
            "locales": {
                "fr": {"proxies": [fr1.url, {"url": fr2.url, "weight": 2}, wrong_url, dead_url]}
            },
            "domains": {news.host: "fr", shop.host: "fr"},
        },
    )
    config_text = yaml_path.read_text(encoding="utf-8")
    assert all(quote(c[1], safe="") in config_text for c in (a, b, wrong, dead))
    urls: list[Any] = [news.url(f"/page/{n}") for n in range(1, 7)]
    urls += [shop.url("/page/1"), shop.url("/page/2")]
    urls.append({"url": news.url("/"), "meta": {"proxystack_locale": "none-such"}})
    result, outputs = crawl(
        tmp_path / "a",
        world,
        urls,
        {
            "PROXYSTACK_PROXIES_FILE": str(yaml_path),
            "ROTATING_PROXY_LIST": [old.url],
            "PROXYSTACK_STRATEGY": "round_robin",
        },
    )
    # The crawl worked through the odd credentials, and failed where it had to.
    assert len(result.pages) == 8, result.log[-3000:]
    assert any(r.method == "CONNECT" for p in (fr1, fr2) for r in p.requests)
    assert fr1.count > 0
    assert fr2.count > 0
    assert any(r.method == "GET" for r in fr_wrong.requests)  # answered 407
    assert result.stat("proxystack/exits/configured") == 5
    assert [e["error"] for e in result.errors] == ["ExitUnavailable"]
    assert any(v for k, v in result.stats.items() if k.startswith("proxystack/pii/masked/"))
    assert all(outputs.values())

    # The same configuration through `check`, with an echo URL: every exit is probed.
    check = run_check(
        tmp_path / "check",
        config_text,
        "--echo-url",
        news.url("/echo"),
        ROTATING_PROXY_LIST=[old.url],
    )
    assert check.row(fr1.exit_id)[2] == "ok", check.stdout + check.stderr
    assert check.row(fr2.exit_id)[2] == "ok"
    assert check.row(old.exit_id)[2] == "ok"
    assert "407" in " ".join(check.row(fr_wrong.exit_id))
    outputs["check stdout"] = check.stdout
    outputs["check stderr"] = check.stderr
    assert leaks(outputs) == []


def test_no_secret_with_utf8_credentials_in_settings(world: LoopbackWorld, tmp_path: Path) -> None:
    user, password = CREDENTIALS_UTF8["settings"]
    de1 = world.add_proxy(2, auth=(user, password), auth_encoding="utf-8")
    blog = world.add_site("blog", lang="de", pages=3)
    config = {"locales": {"de": [de1.url]}, "default_locale": "de"}
    result, outputs = crawl(
        tmp_path,
        world,
        [blog.url(f"/page/{n}") for n in range(1, 4)],
        {"PROXYSTACK_PROXIES": config, "HTTPPROXY_AUTH_ENCODING": "utf-8"},
    )
    assert len(result.pages) == 3, result.log[-3000:]
    assert de1.count == 3
    check = run_check(tmp_path / "check", config, HTTPPROXY_AUTH_ENCODING="utf-8")
    assert check.returncode == 0, check.stdout + check.stderr
    outputs["check stdout"] = check.stdout
    outputs["check stderr"] = check.stderr
    # The same credentials under the default latin-1: refused at start-up, by check and crawl.
    refused = run_check(tmp_path / "refused", config)
    assert refused.returncode == 2
    assert "locales.de.proxies[0]: 'http://***@127.0.2.1:" in refused.stderr
    outputs["refused check stderr"] = refused.stderr
    assert leaks(outputs) == []


def test_no_secret_through_socks_exits(world: LoopbackWorld, tmp_path: Path) -> None:
    user, password = CREDENTIALS_UTF8["socks"]
    wrong_user, wrong_password = CREDENTIALS_UTF8["socks_wrong"]
    good = world.add_socks_proxy(3, auth=(user, password))
    refusing = world.add_socks_proxy(3, auth=(wrong_user, "the exit's own"))
    wrong_url = refusing.url_without_auth.replace(
        "//", f"//{quote(wrong_user, safe='')}:{quote(wrong_password, safe='')}@"
    )
    news = world.add_site("noticias", lang="es", pages=4)
    shop = world.add_site("tienda", lang="es", pages=2, tls=True)
    config = {
        "locales": {"es": [good.url, wrong_url]},
        "domains": {news.host: "es", shop.host: "es"},
    }
    urls: list[Any] = [news.url(f"/page/{n}") for n in range(1, 5)]
    urls += [shop.url("/page/1"), shop.url("/page/2")]
    result, outputs = crawl(
        tmp_path / "a",
        world,
        urls,
        {"PROXYSTACK_PROXIES": config, "PROXYSTACK_STRATEGY": "round_robin"},
    )
    assert len(result.pages) == 6, result.log[-3000:]
    assert {r.user for r in good.socks_requests} == {user}
    assert result.stat("proxystack/exits/transport_failures/socks_auth_refused") >= 1
    check = run_check(tmp_path / "check", config, "--echo-url", news.url("/echo"))
    assert check.row(good.exit_id)[2] == "ok", check.stdout + check.stderr
    assert check.row(refusing.exit_id)[2] == "fail"
    outputs["check stdout"] = check.stdout
    outputs["check stderr"] = check.stderr
    assert leaks(outputs) == []


# --- errors and reprs in-process -------------------------------------------------------------


def _config_errors() -> Iterator[ConfigError]:
    """The loader's refusals of entries holding every secret, in every way it can refuse one."""
    creds = {**CREDENTIALS_LATIN1, **CREDENTIALS_UTF8}
    for user, password in creds.values():
        u, p = quote(user, safe=""), quote(password, safe="")
        raw_user, raw_pw = user, password
        bad_entries = [
            f"http://{u}:{p}@127.0.1.1:0",  # port 0
            f"http://{u}:{p}@127.0.1.1:99999",  # port out of range
            f"http://{u}:{p}@127.0.1.1:8000/path",  # a path
            f"http://{u}:{p}@a<b>c:1",  # a bad host
            f"http://{u}:{p}@[::1:1",  # a broken IPv6 literal
            f"socks4://{u}:{p}@127.0.1.1:1080",  # unsupported scheme
            f"socks5h://{u}:{p}{'x' * 255}@127.0.1.1:1080",  # too long for RFC 1929
            f"{u}:{p}@127.0.1.1:8000",  # no scheme
            f"http://{raw_user}:{raw_pw}/x@127.0.1.1:8000",  # unencoded /
            f"http://{u}:{p}\t@127.0.1.1:8000",  # a tab
            f"http://{u}:{p}",  # no host: the password is read as a port
            f"http://{u}:{p}%F0%9F%94%91@127.0.1.1:8000",  # not latin-1
        ]
        for entry in bad_entries:
            for data in (
                {"locales": {"fr": [entry]}},
                {"locales": {"fr": {"proxies": [{"url": entry, "weight": 0}]}}},
                {"locales": {"fr": {"proxies": ["http://127.0.1.9:1"], "strategy": entry}}},
                {"locales": {"fr": ["http://127.0.1.9:1"]}, "default_locale": entry},
                {"locales": {"fr": ["http://127.0.1.9:1"], entry: [entry]}},
                {"locales": {"fr": ["http://127.0.1.9:1"]}, "domains": {entry: "fr"}},
            ):
                with pytest.raises(ConfigError) as info:
                    load_proxy_config(data=data)
                yield info.value
        with pytest.raises(ConfigError) as info:
            load_proxy_config(data={}, extra_unlocalized=[f"http://{u}:{p}@127.0.1.1:0"])
        yield info.value


def test_no_secret_in_config_errors(tmp_path: Path) -> None:
    errors = list(_config_errors())
    assert len(errors) > 100
    outputs = {}
    for i, exc in enumerate(errors):
        outputs[f"error {i}"] = f"{exc}\n{exc!r}\n{exc.problems!r}\n{exc.args!r}"
    # A YAML file with a duplicate key and a syntax error, each holding a password.
    user, password = CREDENTIALS_LATIN1["yaml"]
    url = f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.1.1:8000"
    for name, text in {
        "dup": f"locales:\n  fr: ['{url}']\n  fr: ['{url}']\n",
        "syntax": f"locales:\n  fr: ['{url}'\n  de: x\n",
        "tag": f"locales: !!python/object:os.system ['{url}']\n",
        "float": f"locales: !!float '{url}'\n",
    }.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_proxy_config(path)
        outputs[name] = f"{info.value}\n{info.value!r}"
    assert leaks(outputs) == []


def test_reprs_of_config_and_settings_hold_no_secret() -> None:
    """The objects a traceback with locals would print, built directly (fast feedback)."""
    from scrapy.utils.test import get_crawler

    from scrapy_proxystack.pipelines.pii import PiiConfig
    from scrapy_proxystack.runtime import get_stack

    user, password = CREDENTIALS_LATIN1["yaml"]
    url = f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.1.1:8000"
    legacy_user, legacy_pw = CREDENTIALS_LATIN1["legacy"]
    legacy = f"http://{quote(legacy_user, safe='')}:{quote(legacy_pw, safe='')}@127.0.5.1:8000"
    crawler = get_crawler(
        settings_dict={
            "PROXYSTACK_PROXIES": {"locales": {"fr": [url]}},
            "ROTATING_PROXY_LIST": [legacy],
            "PROXYSTACK_PII_HMAC_KEY": HMAC_KEY,
            "PROXYSTACK_PII_DEFAULT_OPERATOR": "pseudonymize",
        }
    )
    stack = get_stack(crawler)
    objects = {
        "stack": stack,
        "settings": stack.settings,
        "config": stack.config,
        "entries": stack.config.all_proxies,
        "pii config": PiiConfig.from_settings(crawler.settings),
    }
    outputs = {name: repr(obj) for name, obj in objects.items()}
    assert "127.0.1.1:8000" in outputs["config"]
    assert leaks(outputs) == []


@pytest.mark.parametrize("encoding", ["nope", "rot13"])
def test_invalid_auth_encoding_setting_is_named(encoding: str) -> None:
    from scrapy.utils.test import get_crawler

    from scrapy_proxystack.runtime import get_stack

    crawler = get_crawler(
        settings_dict={
            "PROXYSTACK_PROXIES": {"locales": {"fr": ["http://u:p@127.0.1.1:8000"]}},
            "HTTPPROXY_AUTH_ENCODING": encoding,
        }
    )
    with pytest.raises(ConfigError) as info:
        get_stack(crawler)
    assert str(info.value) == (
        f"setting HTTPPROXY_AUTH_ENCODING: {encoding!r} is invalid; expected a Python codec "
        "name (e.g. 'utf-8')"
    )
