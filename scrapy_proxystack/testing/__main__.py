"""``python -m scrapy_proxystack.testing``: serve the demo world until Ctrl-C.

Real sites and proxies on 127.0.0.0/8 for trying the suite in your own project and
``scrapy proxystack check`` against an echo endpoint, with nothing to set up: the world writes
its proxy file and prints the commands to run against it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import yaml

from scrapy_proxystack.testing.demo import DEFAULT_PORT, start_demo_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scrapy_proxystack.testing",
        description=(
            "Serve the demo loopback world (news sites of five countries behind proxies of "
            "their countries, and an echo endpoint) on 127.0.0.0/8 until interrupted."
        ),
    )
    parser.add_argument(
        "--proxies-file",
        default="proxies.yaml",
        metavar="PATH",
        help="where to write the world's proxy file (default: proxies.yaml)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of every site and proxy, each on its own address (default: {DEFAULT_PORT}; "
        "0: any free port)",
    )
    parser.add_argument(
        "--lifetime",
        type=float,
        default=3600.0,
        metavar="S",
        help="stop by itself after this many seconds (default: 3600)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535 or not args.lifetime > 0:
        parser.error("--port must be in 0..65535 and --lifetime > 0")
    try:
        demo = start_demo_world(port=args.port, max_lifetime=args.lifetime)
    except OSError as exc:
        parser.exit(2, f"cannot listen on port {args.port} ({exc.strerror}); try another --port\n")
    path = Path(args.proxies_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(demo.config, sort_keys=False), encoding="utf-8")
        sites = demo.start
        # The spider's start pages, for crawls that run apart from the world (several workers).
        starts = path.with_name("start_urls.json")
        starts.write_text(json.dumps(sites), encoding="utf-8")
        lines = [
            f"Loopback world running: {len(demo.world.sites)} sites and "
            f"{len(demo.world.proxies)} proxies on 127.0.0.0/8 (Ctrl-C stops it)",
            f"Proxy file: {path} (start pages: {starts})",
            f"Echo endpoint: {demo.echo_url}",
            "Sites:",
            *(f"  {s['site']:<11} {s['url']}" for s in sites),
            "Check the proxies:",
            f"  scrapy proxystack check -s PROXYSTACK_PROXIES_FILE={path} "
            f"--echo-url {demo.echo_url}",
        ]
        print("\n".join(lines), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while demo.world.running:
                time.sleep(0.2)
    finally:
        demo.stop()
    why = f": its --lifetime of {args.lifetime:g} s is over" if demo.world.expired else ""
    print(f"Loopback world stopped{why}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
