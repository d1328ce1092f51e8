"""The first hour of a new user, in subprocesses: build the package, install the wheel into a
fresh virtualenv, create a project with ``scrapy startproject``, add only what the README says,
serve the bundled world, check its proxies, crawl it, then break the proxy file.

The fresh virtualenv has no pip and no dependencies of its own: a ``.pth`` file lends it the
test environment's site-packages (Scrapy and the rest), while ``scrapy_proxystack`` itself can
only come from the wheel (the test environment has it as an editable install, whose import hook
a ``.pth``-added directory does not run). Nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PORT_IN_README = 8800


def readme_block(marker: str) -> str:
    """The code block right after ``<!-- marker -->`` in the README."""
    found = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)```", README, re.S)
    assert found, f"no code block after <!-- {marker} --> in README.md"
    return found.group(1)


def run(
    cmd: list[str], cwd: Path, timeout: float = 120, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "SCRAPY_SETTINGS_MODULE"}}
    env.update(extra_env)
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Built:
    wheel: Path
    sdist: Path
    sources: list[str]  # package files of the checkout, relative to its root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``python -m build`` on a copy of the checkout (building in place would leave build/).

    The engine is not compiled here: the build a machine without a C compiler makes, and a
    minute less (the compiled build is the one this suite runs on, see test_pii_compiled.py).
    """
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "__pycache__", "output", "*.pyc", "*.so"
        ),
    )
    out = tmp / "dist"
    proc = run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)],
        cwd=src,
        PROXYSTACK_PURE_PYTHON="1",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sources = sorted(
        p.relative_to(src).as_posix()
        for p in (src / "scrapy_proxystack").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    return Built(next(out.glob("*.whl")), next(out.glob("*.tar.gz")), sources)


def test_wheel_carries_every_file_of_the_package(built: Built) -> None:
    # Built from the sdist: a data file that MANIFEST.in or package_data missed is absent here.
    names = set(zipfile.ZipFile(built.wheel).namelist())
    missing = [name for name in built.sources if name not in names]
    assert not missing
    for needed in (
        "scrapy_proxystack/py.typed",
        "scrapy_proxystack/testing/demo.py",
        "scrapy_proxystack/testing/__main__.py",
        "scrapy_proxystack/extensions/_html.py",
    ):
        assert needed in names
    # Built with PROXYSTACK_PURE_PYTHON=1: the plain modules only, as without a compiler.
    compiled = [n for n in names if n.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))]
    assert compiled == []
    assert "scrapy_proxystack/pii/engine.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(built.wheel).read(entry_points).decode()
    assert "proxystack = scrapy_proxystack.commands.proxystack:Command" in text


@dataclass
class Fresh:
    python: Path
    project: Path


@pytest.fixture(scope="module")
def fresh(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Fresh:
    """A virtualenv with only the wheel installed, and a project made by startproject."""
    tmp = tmp_path_factory.mktemp("fresh")
    venv = tmp / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp
        ).stdout.strip()
    )
    lent = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "lent_dependencies.pth").write_text("\n".join(sorted(lent)) + "\n", "utf-8")
    installed = run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(built.wheel)],
        cwd=tmp,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    where = run(
        [str(python), "-c", "import scrapy_proxystack; print(scrapy_proxystack.__file__)"], tmp
    )
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr

    made = run([str(python), "-m", "scrapy", "startproject", "myproject"], cwd=tmp)
    assert made.returncode == 0, made.stderr
    project = tmp / "myproject"
    settings = project / "myproject" / "settings.py"
    text = settings.read_text(encoding="utf-8")
    assert "ADDONS = {}" in text  # the README says to replace this line
    settings.write_text(
        text.replace("ADDONS = {}\n", readme_block("own-project-settings")), encoding="utf-8"
    )
    spider = readme_block("own-project-spider")
    assert spider.startswith("# myproject/spiders/news.py\n")
    (project / "myproject" / "spiders" / "news.py").write_text(spider, encoding="utf-8")
    return Fresh(python, project)


@dataclass
class Served:
    proc: subprocess.Popen[str]
    banner: list[str]
    ports: dict[str, str]  # address in the README (ip:8800) -> address served (ip:port)
    echo_url: str
    check_command: str


@pytest.fixture(scope="module")
def served(fresh: Fresh) -> Iterator[Served]:
    """``python -m scrapy_proxystack.testing`` as the README runs it, on free ports."""
    with subprocess.Popen(
        [str(fresh.python), "-m", "scrapy_proxystack.testing", "--proxies-file", "proxies.yaml",
         "--port", "0", "--lifetime", "120"],
        cwd=fresh.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            banner: list[str] = []
            while not banner or banner[-1] != "Check the proxies:":
                line = proc.stdout.readline()
                assert line, f"the world stopped: {banner}"
                banner.append(line.rstrip("\n"))
            banner.append(proc.stdout.readline().rstrip("\n"))
            echo_url = banner[2].removeprefix("Echo endpoint: ")
            served_at = re.findall(r"(127\.0\.100\.\d+):(\d+)", "\n".join(banner))
            ports = {f"{ip}:{PORT_IN_README}": f"{ip}:{port}" for ip, port in served_at}
            yield Served(proc, banner, ports, echo_url, banner[-1].strip())
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        rest = proc.stdout.read() if proc.stdout else ""
        assert proc.returncode == 0, rest
        assert rest.splitlines()[-1] == "Loopback world stopped"


def test_served_world_is_checked_and_crawled_from_a_fresh_project(
    fresh: Fresh, served: Served
) -> None:
    banner = served.banner
    assert banner[0] == (
        "Loopback world running: 6 sites and 13 proxies on 127.0.0.0/8 (Ctrl-C stops it)"
    )
    assert banner[1] == "Proxy file: proxies.yaml (start pages: start_urls.json)"
    assert re.fullmatch(r"http://127\.0\.100\.6:\d+/echo", served.echo_url)
    config = (fresh.project / "proxies.yaml").read_text(encoding="utf-8")
    assert "127.0.100.1: fr" in config

    # The check command the world printed (the README's, with the port it got).
    assert served.check_command == (
        f"scrapy proxystack check -s PROXYSTACK_PROXIES_FILE=proxies.yaml "
        f"--echo-url {served.echo_url}"
    )
    args = served.check_command.split()[1:]
    checked = run([str(fresh.python), "-m", "scrapy", *args], cwd=fresh.project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("exits working: ok") == 5

    # The README's spider, with the ports the world got in place of 8800.
    spider = fresh.project / "myproject" / "spiders" / "news.py"
    text = spider.read_text(encoding="utf-8")
    for readme_address, address in served.ports.items():
        text = text.replace(readme_address, address)
    spider.write_text(text, encoding="utf-8")
    # The README's command; the template's DOWNLOAD_DELAY of 1 s would only make the test slow.
    crawl = run(
        [str(fresh.python), "-m", "scrapy", "crawl", "news", "-O", "items.jsonl",
         "-s", "DOWNLOAD_DELAY=0.2"],
        cwd=fresh.project,
    )  # fmt: skip
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    items = [
        json.loads(line)
        for line in (fresh.project / "items.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    # 18 pages, as the README says: index + 5 stories of three sites, none a block page.
    assert len(items) == 18, sorted(item["url"] for item in items)
    titles = {item["title"] for item in items}
    assert not [t for t in titles if "region" in t.lower() or "unavailable" in t.lower()]
    # Each answer came through an exit of its site's locale (robots.txt included).
    answers = dict(re.findall(r"'proxystack/responses/locale/(\w+)': (\d+)", crawl.stderr))
    assert answers.keys() == {"fr", "de", "jp"}
    assert all(int(n) >= 6 for n in answers.values()), answers
    assert "fr-secret" not in crawl.stdout + crawl.stderr


def test_broken_proxy_file_first_error_line_is_the_message(fresh: Fresh, served: Served) -> None:
    broken = fresh.project / "broken.yaml"
    broken.write_text("locales:\n  fr:\n", encoding="utf-8")
    crawl = run(
        [str(fresh.python), "-m", "scrapy", "crawl", "news",
         "-s", "PROXYSTACK_PROXIES_FILE=broken.yaml"],
        cwd=fresh.project,
    )  # fmt: skip
    assert crawl.returncode == 1
    lines = crawl.stderr.splitlines()
    first_error = next(i for i, line in enumerate(lines) if "ERROR" in line or "Traceback" in line)
    assert lines[first_error].endswith(
        "[scrapy_proxystack.runtime] ERROR: The crawl cannot start: broken.yaml: locales.fr: "
        "empty (None); expected a list of proxy URLs (`fr: [http://host:port, ...]`) or a "
        "mapping with 'proxies' (`fr: {proxies: [...], fallback: [...]}`)"
    )
    # Said once, and not buried: asyncio's report of the same exception is left out.
    assert crawl.stderr.count("The crawl cannot start") == 1
    assert "Task exception was never retrieved" not in crawl.stderr
    assert "Traceback" not in crawl.stderr
