"""A loopback world as hostile as the web, for the crawl tests and the benchmarks.

Small pools (four exits a country), a site that limits each client address and bans it after a
few strikes, an exit that site has already banned, a flaky exit, a site in another language than
its locale's first, a bilingual country, a site that is down for a while, and a locale whose
exits all refuse connections. :func:`build` lays it out in a :class:`LoopbackWorld` and says what
a crawl of it must deliver.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_proxystack.testing.sites import BanRule

if TYPE_CHECKING:
    from scrapy_proxystack.testing.proxies import Proxy
    from scrapy_proxystack.testing.sites import Site
    from scrapy_proxystack.testing.world import LoopbackWorld

__all__ = ["HOSTILE_REGIONS", "HostileWorld", "build"]

#: Regions of the hostile world: France, bilingual Canada, Germany (whose exits are all dead).
HOSTILE_REGIONS = {1: "fr", 2: "ca", 3: "de"}

#: What the limiting site allows one client address: requests per window (seconds); above it,
#: 429 with Retry-After, and STRIKES 429s within STRIKE_WINDOW ban the address for BAN_FOR.
LIMIT = (10, 5.0)
STRIKES = (3, 30.0, 45.0)


@dataclass
class HostileWorld:
    """The sites, the exits and the proxy configuration of a hostile world."""

    world: LoopbackWorld
    limited: Site
    spanish: Site
    quebec: Site
    flaky_site: Site
    berlin: Site
    fr: list[Proxy]
    ca: list[Proxy]
    de: list[Proxy]
    down_for: float
    config: dict[str, Any] = field(default_factory=dict)
    _timer: threading.Timer | None = None

    def urls(self) -> list[str]:
        """Every page of every site, the dead locale's included."""
        return [
            site.url(f"/page/{n}")
            for site in (self.limited, self.spanish, self.quebec, self.flaky_site, self.berlin)
            for n in range(1, site.pages + 1)
        ]

    def deliverable(self) -> set[str]:
        """The pages a crawl must deliver: all but those of the locale whose exits are dead."""
        return {u for u in self.urls() if not u.startswith(self.berlin.base_url)}

    def start_outage(self) -> None:
        """Take the flaky site down now and bring it back after ``down_for`` seconds."""
        self.flaky_site.take_down()
        self._timer = threading.Timer(self.down_for, self.flaky_site.bring_up)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def build(world: LoopbackWorld, *, limited_pages: int = 60, down_for: float = 8.0) -> HostileWorld:
    """Lay the hostile world out in ``world`` (whose regions must be :data:`HOSTILE_REGIONS`)."""
    if dict(world.regions) != HOSTILE_REGIONS:
        raise ValueError(f"the hostile world needs LoopbackWorld(regions={HOSTILE_REGIONS!r})")
    fr = [
        world.add_proxy(1),
        world.add_proxy(1),
        world.add_proxy(1, mode="flaky", fail_rate=0.15, seed=7),
        world.add_proxy(1),  # banned by the limiting site before the crawl starts
    ]
    ca = [world.add_proxy(2) for _ in range(3)]
    de = [world.add_proxy(3, mode="dead"), world.add_proxy(3, mode="dead")]
    limited = world.add_site(
        "limited",
        lang="fr",
        countries={"fr"},
        pages=limited_pages,
        rate_limit=LIMIT,
        strikes=STRIKES,
        ban=BanRule("403", clients={fr[3].ip}),
    )
    # Spanish is none of fr's languages (French, English): learned, not a geo-block.
    spanish = world.add_site("spanish-in-fr", lang="es", countries={"fr"}, pages=8)
    quebec = world.add_site("quebec", lang="fr", countries={"ca"}, pages=8)
    flaky_site = world.add_site("outage", lang="fr", countries={"fr"}, pages=10)
    berlin = world.add_site("berlin", lang="de", countries={"de"}, pages=4)
    config = {
        "locales": {
            "fr": [p.url for p in fr],
            "ca": [p.url for p in ca],
            "de": [p.url for p in de],
        },
        "domains": {
            limited.host: "fr",
            spanish.host: "fr",
            quebec.host: "ca",
            flaky_site.host: "fr",
            berlin.host: "de",
        },
    }
    return HostileWorld(
        world=world,
        limited=limited,
        spanish=spanish,
        quebec=quebec,
        flaky_site=flaky_site,
        berlin=berlin,
        fr=fr,
        ca=ca,
        de=de,
        down_for=down_for,
        config=config,
    )


def max_in_window(times: list[float], window: float) -> int:
    """The most arrivals in any interval of ``window`` seconds (a site's view of a rate)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best
