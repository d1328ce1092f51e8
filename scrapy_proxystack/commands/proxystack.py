"""``scrapy proxystack check``: validate the proxy configuration and probe every proxy.

A crawl that starts on a broken list burns hours of proxy budget before anyone notices. This
command answers, in seconds and before the crawl, whether every locale has a working exit: it
validates the configuration the crawl would load, probes every proxy concurrently (reachability,
latency, exit country and anonymity grade against an echo URL), prints a table and exits
non-zero when a locale has no working exit. ``min_anonymity`` from the YAML is enforced here:
the crawl itself cannot know a proxy's grade without probing it.

Exit codes: 0 every checked locale has a working exit; 1 some locale has none; 2 the
configuration or the command line is invalid.
"""

from __future__ import annotations

import asyncio
import difflib
import sys
from typing import TYPE_CHECKING, Final, TextIO

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from scrapy_proxystack.commands._probe import ProbeResult, expected_country, probe_all
from scrapy_proxystack.config import ConfigError, load_proxy_config
from scrapy_proxystack.settings import ObservabilitySettings, ProxyStackSettings

if TYPE_CHECKING:
    import argparse

    from scrapy_proxystack.config import ProxyConfig, ProxyEntry

__all__ = ["Command", "format_table"]

SUBCOMMANDS: Final = ("check",)
_NO_LOCALE: Final = "-"
_COLUMNS: Final = ("LOCALE", "EXIT", "STATUS", "LATENCY", "COUNTRY", "ANONYMITY", "NOTE")
_BAR_WIDTH: Final = 30


def format_table(results: list[ProbeResult]) -> str:
    """The results as an aligned text table (one row per exit)."""
    rows = [
        (
            r.locale if r.locale is not None else _NO_LOCALE,
            r.exit_id,
            r.status,
            f"{r.latency_ms} ms" if r.latency_ms is not None else "-",
            r.country or "-",
            r.anonymity or "-",
            r.note,
        )
        for r in results
    ]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


class _Progress:
    """A bar on a terminal, plain lines otherwise (CI logs do not render carriage returns)."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, result: ProbeResult) -> None:
        self.done += 1
        if self.tty:
            filled = _BAR_WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (_BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} proxies checked")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            locale = result.locale if result.locale is not None else _NO_LOCALE
            self.stream.write(
                f"[{self.done}/{self.total}] {locale} {result.exit_id}: {result.status}\n"
            )
        self.stream.flush()


class Command(ScrapyCommand):
    """``scrapy proxystack check [--locale L] [--echo-url URL] [--timeout S] [--concurrency N]
    [--world]``."""

    requires_project = False
    requires_crawler_process = False
    default_settings = {"LOG_LEVEL": "WARNING"}

    def syntax(self) -> str:
        return "check [--locale L] [--echo-url URL] [--timeout S] [--concurrency N] [--world]"

    def short_desc(self) -> str:
        return "Validate the proxy configuration and probe every proxy (scrapy-proxystack)"

    def long_desc(self) -> str:
        return (
            "check: validate PROXYSTACK_PROXIES_FILE / PROXYSTACK_PROXIES and probe every proxy "
            "concurrently: reachability, latency, exit country and anonymity grade (against "
            "--echo-url or PROXYSTACK_CHECK_URL). Exits 0 when every checked locale has a "
            "working exit, 1 when one has none, 2 on an invalid configuration. --world checks "
            "the proxies of the bundled demo world (started for the check) against its echo "
            "endpoint: a check that works with nothing configured."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        group = parser.add_argument_group(title="proxystack check")
        group.add_argument(
            "--locale",
            action="append",
            default=[],
            metavar="L",
            help="check only this locale (repeat, or separate with commas)",
        )
        group.add_argument(
            "--echo-url", metavar="URL", help="echo endpoint (default: PROXYSTACK_CHECK_URL)"
        )
        group.add_argument("--timeout", type=float, metavar="S", help="seconds per probe")
        group.add_argument("--concurrency", type=int, metavar="N", help="probes at once")
        group.add_argument(
            "--world",
            action="store_true",
            help="start the bundled demo world (loopback sites and proxies, and an echo "
            "endpoint) and check its proxies instead of the project's",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args:
            raise UsageError(f"expected a sub-command: {', '.join(SUBCOMMANDS)}")
        if args[0] not in SUBCOMMANDS:
            hint = difflib.get_close_matches(args[0], SUBCOMMANDS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise UsageError(
                f"unknown sub-command {args[0]!r}{suggestion}; expected one of "
                f"{', '.join(SUBCOMMANDS)}"
            )
        if len(args) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(args[1:])}")
        if not getattr(opts, "world", False):
            self.exitcode = self.check(opts, sys.stdout, sys.stderr)
            return
        assert self.settings is not None
        from scrapy_proxystack.testing.demo import start_demo_world

        demo = start_demo_world(max_lifetime=600.0)
        try:
            self.settings.set("PROXYSTACK_PROXIES_FILE", None, priority="cmdline")
            self.settings.set("PROXYSTACK_PROXIES", demo.config, priority="cmdline")
            if not opts.echo_url:
                opts.echo_url = demo.echo_url
            self.exitcode = self.check(opts, sys.stdout, sys.stderr)
        finally:
            demo.stop()

    def _load(
        self, err: TextIO
    ) -> tuple[ProxyConfig, ObservabilitySettings, ProxyStackSettings] | None:
        assert self.settings is not None
        try:
            ps = ProxyStackSettings.from_settings(self.settings)
            obs = ObservabilitySettings.from_settings(self.settings)
            config = load_proxy_config(
                ps.proxies_file,
                ps.proxies if ps.proxies_file is not None or ps.proxies is not None else {},
                extra_unlocalized=ps.legacy_proxy_list,
                extra_source=ps.legacy_source,
                auth_encoding=ps.auth_encoding,
            )
        except ConfigError as exc:
            # The first line is the message itself (the only problem, or how many there are).
            err.write(f"Invalid proxy configuration: {exc}\n")
            return None
        if not config.all_proxies:
            err.write(
                "No proxies configured: set PROXYSTACK_PROXIES_FILE (or PROXYSTACK_PROXIES) "
                "in the project settings or with -s.\n"
            )
            return None
        return config, obs, ps

    def check(self, opts: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        """Run the check; returns the exit code."""
        loaded = self._load(err)
        if loaded is None:
            return 2
        config, obs, ps = loaded
        wanted = [name.strip() for raw in opts.locale for name in raw.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in config.locales]
        if unknown:
            err.write(
                f"Unknown locale {', '.join(map(repr, unknown))}: {config.source} defines "
                f"{', '.join(config.locales) or '(none)'}\n"
            )
            return 2
        timeout = opts.timeout if opts.timeout is not None else obs.check_timeout
        concurrency = opts.concurrency if opts.concurrency is not None else obs.check_concurrency
        if not timeout > 0 or concurrency < 1:
            err.write("--timeout must be > 0 and --concurrency >= 1\n")
            return 2
        echo_url = opts.echo_url or obs.check_url
        if echo_url is not None and not echo_url.startswith(("http://", "https://")):
            err.write(f"Echo URL {echo_url!r} must start with http:// or https://\n")
            return 2

        jobs: list[tuple[ProxyEntry, str | None, str | None]] = []
        for name in wanted or list(config.locales):
            locale = config.locales[name]
            country = expected_country(name, obs.locale_countries) if echo_url else None
            jobs += [(entry, country, locale.min_anonymity) for entry in locale.proxies]
        if not wanted:
            jobs += [(entry, None, None) for entry in config.unlocalized]
        checked = list(dict.fromkeys(entry.locale for entry, _, _ in jobs))

        err.write(
            f"Checking {len(jobs)} proxies of {len(checked)} locales from {config.source}"
            f"{f' against {echo_url}' if echo_url else ' (reachability only)'}\n"
        )
        results = asyncio.run(
            probe_all(
                jobs,
                echo_url=echo_url,
                timeout=timeout,
                concurrency=concurrency,
                on_done=_Progress(len(jobs), err),
                auth_encoding=ps.auth_encoding,
            )
        )
        for r in results:
            if r.left_out:
                err.write(f"WARNING: exit {r.exit_id} of locale {r.locale} left out: {r.note}\n")
        out.write(format_table(results) + "\n\n")
        code = 0
        for locale_name in checked:
            mine = [r for r in results if r.locale == locale_name]
            working = sum(r.ok for r in mine)
            label = locale_name if locale_name is not None else "(no locale)"
            verdict = "ok" if working else "NO WORKING EXIT"
            out.write(f"{label}: {working}/{len(mine)} exits working: {verdict}\n")
            if not working:
                code = 1
        out.flush()
        return code
