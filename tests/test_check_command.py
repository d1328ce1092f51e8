"""``scrapy proxystack check`` against the loopback world, run as a real Scrapy command.

The command is loaded the way a project would load it before the entry point exists: through
the ``COMMANDS_MODULE`` setting of a throw-away project, in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from scrapy_proxystack.commands._probe import expected_country, grade_anonymity
from scrapy_proxystack.testing import LoopbackWorld

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
SECRETS = ("chkUSERsecret1", "chkPASSsecret1", "chkUSERsecret2", "chkPASSsecret2", "wrongPWsecret")


@dataclass
class Checked:
    returncode: int
    stdout: str
    stderr: str

    def row(self, exit_id: str) -> list[str]:
        for line in self.stdout.splitlines():
            cells = line.split()
            if len(cells) > 1 and cells[1] == exit_id:
                return cells
        raise AssertionError(f"no row for {exit_id}:\n{self.stdout}")


def run_check(tmp: Path, config: dict[str, Any] | str, *args: str, **settings: Any) -> Checked:
    """Run ``scrapy proxystack check`` in a fresh project whose settings name ``config``."""
    project = tmp / "checkproj"
    project.mkdir(exist_ok=True)
    (project / "__init__.py").write_text("", encoding="utf-8")
    proxies = tmp / "proxies.yaml"
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    proxies.write_text(text, encoding="utf-8")
    lines = [
        'COMMANDS_MODULE = "scrapy_proxystack.commands"',
        f"PROXYSTACK_PROXIES_FILE = {str(proxies)!r}",
        *(f"{name} = {value!r}" for name, value in settings.items()),
    ]
    (project / "settings.py").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp / "scrapy.cfg").write_text("[settings]\ndefault = checkproj.settings\n", "utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(tmp), str(ROOT)))}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "proxystack", "check", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Checked(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class CheckWorld:
    world: LoopbackWorld
    config: dict[str, Any]
    echo: str
    ids: dict[str, str]


@pytest.fixture(scope="module")
def check_world() -> Iterator[CheckWorld]:
    with LoopbackWorld(max_lifetime=120.0) as world:
        site = world.add_site("echo")
        proxies = {
            "fr_elite": world.add_proxy(1, auth=("chkUSERsecret1", "chkPASSsecret1")),
            "fr_transparent": world.add_proxy(1, anonymity="transparent"),
            "fr_anonymous": world.add_proxy(1, anonymity="anonymous"),
            "de_elite": world.add_proxy(2, auth=("chkUSERsecret2", "chkPASSsecret2")),
            "de_dead": world.add_proxy(2, mode="dead"),
            "de_wrong_password": world.add_proxy(2, auth=("chkUSERsecret2", "other")),
        }
        wrong = proxies["de_wrong_password"]
        wrong_url = f"http://chkUSERsecret2:wrongPWsecret@{wrong.ip}:{wrong.port}"
        config = {
            "locales": {
                "fr": {
                    "proxies": [
                        proxies[k].url for k in ("fr_elite", "fr_transparent", "fr_anonymous")
                    ],
                    "min_anonymity": "anonymous",
                },
                "de": {"proxies": [proxies["de_elite"].url, proxies["de_dead"].url, wrong_url]},
                # A "Spanish" locale whose only proxy exits in Germany (region 2).
                "es": {"proxies": [world.add_proxy(2).url]},
            }
        }
        ids = {name: p.exit_id for name, p in proxies.items()}
        es_proxy = world.proxies[-1]
        ids["es_wrong_country"] = es_proxy.exit_id
        yield CheckWorld(world, config, site.url("/echo"), ids)


def test_check_table_grades_and_exit_code(check_world: CheckWorld, tmp_path: Path) -> None:
    result = run_check(tmp_path, check_world.config, "--echo-url", check_world.echo)
    ids = check_world.ids
    assert result.returncode == 1, result.stderr  # es has no working exit
    header = result.stdout.splitlines()[0].split()
    assert header == ["LOCALE", "EXIT", "STATUS", "LATENCY", "COUNTRY", "ANONYMITY", "NOTE"]
    assert result.row(ids["fr_elite"])[:3] == ["fr", ids["fr_elite"], "ok"]
    assert result.row(ids["fr_elite"])[5:7] == ["fr", "elite"]
    assert result.row(ids["fr_anonymous"])[2] == "ok"
    assert result.row(ids["fr_anonymous"])[6] == "anonymous"
    transparent = result.row(ids["fr_transparent"])
    assert transparent[2:4] == ["left", "out"]
    assert transparent[7] == "transparent"
    assert result.row(ids["de_elite"])[2] == "ok"
    assert result.row(ids["de_dead"])[2:] == ["fail", "-", "-", "-", "connection", "refused"]
    assert "407" in " ".join(result.row(ids["de_wrong_password"]))
    es = result.row(ids["es_wrong_country"])
    assert es[2] == "fail"
    assert "exits from de, expected es" in " ".join(es)
    assert "fr: 2/3 exits working: ok" in result.stdout
    assert "de: 1/3 exits working: ok" in result.stdout
    assert "es: 0/1 exits working: NO WORKING EXIT" in result.stdout
    assert (
        f"WARNING: exit {ids['fr_transparent']} of locale fr left out: transparent is below "
        "the locale's min_anonymity anonymous"
    ) in result.stderr
    assert "[7/7]" in result.stderr  # progress lines (stderr is not a terminal here)
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_check_one_locale_passes(check_world: CheckWorld, tmp_path: Path) -> None:
    result = run_check(
        tmp_path,
        check_world.config,
        "--locale",
        "fr",
        "--concurrency",
        "1",
        PROXYSTACK_CHECK_URL=check_world.echo,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fr: 2/3 exits working: ok" in result.stdout
    assert "de:" not in result.stdout


def test_check_reachability_only(check_world: CheckWorld, tmp_path: Path) -> None:
    result = run_check(tmp_path, check_world.config, "--locale", "de", "--timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    ids = check_world.ids
    assert result.row(ids["de_elite"])[2:] == [
        "ok",
        *result.row(ids["de_elite"])[3:5],
        "-",
        "-",
        "reachable",
    ]
    assert result.row(ids["de_dead"])[2] == "fail"
    assert result.row(ids["de_wrong_password"])[2] == "fail"
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_check_invalid_config_exits_2(tmp_path: Path) -> None:
    bad = (
        "locales:\n  fr:\n    proxies: ['http://u:hunter2secret@127.0.1.1:8000']\n"
        "    fallback: [eu]\n"
    )
    result = run_check(tmp_path, bad)
    assert result.returncode == 2
    assert "Invalid proxy configuration" in result.stderr
    assert "locales.fr.fallback[0]" in result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr


def test_check_world_passes_out_of_the_box(tmp_path: Path) -> None:
    # In a project whose own proxy file is broken: --world checks the bundled world instead.
    result = run_check(tmp_path, "locales:\n  fr:\n", "--world")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "against http://127.0.100.6:" in result.stderr.splitlines()[0]
    summary = [line for line in result.stdout.splitlines() if "exits working" in line]
    assert summary == [
        "fr: 3/3 exits working: ok",
        "de: 1/2 exits working: ok",
        "es: 2/2 exits working: ok",
        "jp: 2/2 exits working: ok",
        "us: 4/4 exits working: ok",
    ]
    # The echo saw each exit in its own country; none adds a client-address header.
    rows = [line.split() for line in result.stdout.splitlines()[1:14]]
    assert all(row[-2:] == [row[0], "elite"] for row in rows if row[2] == "ok")
    assert "fr-secret" not in result.stdout + result.stderr


def test_check_invalid_config_first_line_is_the_message(tmp_path: Path) -> None:
    result = run_check(tmp_path, "locales:\n  fr:\n")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"Invalid proxy configuration: {tmp_path / 'proxies.yaml'}: locales.fr: empty (None); "
        "expected a list of proxy URLs (`fr: [http://host:port, ...]`) or a mapping with "
        "'proxies' (`fr: {proxies: [...], fallback: [...]}`)"
    )


def test_check_unknown_locale_exits_2(check_world: CheckWorld, tmp_path: Path) -> None:
    result = run_check(tmp_path, check_world.config, "--locale", "xx")
    assert result.returncode == 2
    assert "Unknown locale 'xx'" in result.stderr


@pytest.mark.parametrize(
    ("headers", "exit_ip", "own", "grade"),
    [
        ({}, "127.0.1.1", (), "elite"),
        ({"Via": "1.1 proxy"}, "127.0.1.1", (), "anonymous"),
        ({"X-Forwarded-For": "127.0.1.1"}, "127.0.1.1", (), "anonymous"),
        ({"X-Forwarded-For": "10.0.0.7", "Via": "1.1 p"}, "127.0.1.1", (), "transparent"),
        ({"Forwarded": 'for="[2001:db8::1]:4711";proto=http'}, "127.0.1.1", (), "transparent"),
        ({"Forwarded": "for=127.0.1.1"}, "127.0.1.1", (), "anonymous"),
        ({"X-Real-IP": "192.0.2.4"}, "127.0.1.1", ("192.0.2.4",), "transparent"),
        ({"X-Forwarded-For": "unknown"}, "127.0.1.1", (), "anonymous"),
    ],
)
def test_grade_anonymity(
    headers: dict[str, str], exit_ip: str, own: tuple[str, ...], grade: str
) -> None:
    assert grade_anonymity(headers, exit_ip, own) == grade


@pytest.mark.parametrize(
    ("locale", "countries", "expected"),
    [
        ("fr", {}, "fr"),
        ("FR", {}, "fr"),
        ("fr-CA", {}, "ca"),
        ("eu", {}, None),  # not a country: a multi-country locale is not checked by default
        ("uk", {}, None),  # ISO says gb
        ("jp", {}, "jp"),
        ("europe", {}, None),
        ("europe", {"europe": "DE"}, "de"),
        ("eu", {"eu": "de, fr,es"}, "de,fr,es"),
        ("fr", {"fr": ""}, None),
        (None, {}, None),
    ],
)
def test_expected_country(
    locale: str | None, countries: dict[str, str], expected: str | None
) -> None:
    assert expected_country(locale, countries) == expected


def test_unknown_sub_command_is_named_with_a_hint() -> None:
    import argparse

    from scrapy.exceptions import UsageError

    from scrapy_proxystack.commands.proxystack import Command

    with pytest.raises(UsageError, match=r"unknown sub-command 'chek' \(did you mean 'check'\?\)"):
        Command().run(["chek"], argparse.Namespace())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "locales:\n  fr: ['http://127.0.1.1:8000']\n  fr: ['http://127.0.1.2:8000']\n",
            "locales: key 'fr' appears twice (lines 2 and 3)",
        ),
        (
            "locales: {fr: ['http://127.0.1.1:8000']}\ndefault_locale: [fr]\n",
            "default_locale: a list is not a configured locale",
        ),
        (
            "locales: {fr: [{url: 'http://127.0.1.1:8000', weight: .inf}]}\n",
            "locales.fr.proxies[0].weight: inf is not a finite number",
        ),
        (
            "locales: {fr: ['http://u:hunter2secret@127.0.1.1:0']}\n",
            "locales.fr.proxies[0]: 'http://***@127.0.1.1:0' has port 0",
        ),
        (
            "locales: {fr: ['http://u:hunter2secret@a<b>c:1']}\n",
            "locales.fr.proxies[0]: 'http://***@a<b>c:1' has an invalid host 'a<b>c'",
        ),
        (
            "locales: {fr: ['http://u:hunter2secret/x@127.0.1.1:1']}\n",
            "locales.fr.proxies[0]: 'http://***@127.0.1.1:1' has '/', '?' or '#' in its user name",
        ),
        (
            "locales: {fr: ['http://u:hunter2secret%F0%9F%94%91@127.0.1.1:1']}\n",
            "locales.fr.proxies[0]: 'http://***@127.0.1.1:1' has a user name or password that "
            "HTTPPROXY_AUTH_ENCODING ('latin-1') cannot encode",
        ),
        (
            "locales: {fr: {proxies: ['http://127.0.1.1:1'], strategy: &s [a, b]}}\n",
            "locales.fr.strategy: a list is not a strategy",
        ),
    ],
    ids=[
        "duplicate key",
        "list locale",
        "inf weight",
        "port 0",
        "bad host",
        "slash",
        "emoji",
        "list",
    ],
)
def test_check_exits_2_on_each_refused_config(tmp_path: Path, text: str, expected: str) -> None:
    result = run_check(tmp_path, text)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Invalid proxy configuration" in result.stderr
    assert f"proxies.yaml: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr


def test_check_sends_credentials_in_the_crawl_encoding(tmp_path: Path) -> None:
    """``check`` and the crawl agree: HTTPPROXY_AUTH_ENCODING, latin-1 unless set."""
    with LoopbackWorld(max_lifetime=60.0) as world:
        latin1 = world.add_proxy(1, auth=("üser", "pässwörd"), auth_encoding="latin-1")
        utf8 = world.add_proxy(1, auth=("üser", "pässwörd"), auth_encoding="utf-8")
        config = {"locales": {"fr": [latin1.url], "de": [utf8.url]}}
        default = run_check(tmp_path, config)
        assert default.row(latin1.exit_id)[2] == "ok", default.stdout
        assert "407" in " ".join(default.row(utf8.exit_id))
        result = run_check(tmp_path, config, HTTPPROXY_AUTH_ENCODING="utf-8")
        assert "407" in " ".join(result.row(latin1.exit_id))
        assert result.row(utf8.exit_id)[2] == "ok", result.stdout
        for out in (default, result):
            assert "pässwörd" not in out.stdout + out.stderr
            assert "p%C3%A4ssw%C3%B6rd" not in out.stdout + out.stderr
        bad = run_check(
            tmp_path, {"locales": {"fr": [utf8.url.replace("p%C3", "%F0%9F%94%91p%C3")]}}
        )
        assert bad.returncode == 2
        assert "locales.fr.proxies[0]: 'http://***@127.0.1.2:" in bad.stderr
        assert "cannot encode" in bad.stderr
