"""The loopback world: target sites and forward proxies on 127.0.0.0/8, in one background thread.

The test suite, the demo project, the benchmarks and ``scrapy proxystack check`` need real
proxies in front of real sites, with countries, bans and failures, and nothing that can leak to
the network. The world provides them:

* sites on 127.0.100.K (one address each, so Scrapy's per-domain logic sees distinct hosts);
* proxies on 127.0.R.N that connect out from their own address, so a site maps the client
  address back to region R's country (:meth:`LoopbackWorld.country_of`);
* every server on one asyncio loop in one daemon thread, leaving the main thread to Scrapy and
  its own reactor; public methods are safe to call from any thread;
* proxies that refuse every destination that is not a 127.x.x.x IP literal, and a lifetime
  after which the world stops by itself even if a test forgets to.

On Linux the whole 127.0.0.0/8 block answers on ``lo``, so no interface set-up is needed.

The module is longer than most because it is the one place that allocates addresses and
ports, starts and stops every endpoint and keeps the world's clock; sites, proxies and SOCKS
exits live in their own modules.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import threading
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from scrapy_proxystack.testing.proxies import Proxy
from scrapy_proxystack.testing.sites import Site
from scrapy_proxystack.testing.socks import SocksProxy
from scrapy_proxystack.testing.tls import make_certificate

_E = TypeVar("_E", Proxy, SocksProxy)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from types import TracebackType

    from scrapy_proxystack.testing._server import Endpoint
    from scrapy_proxystack.testing.proxies import Anonymity, ProxyMode
    from scrapy_proxystack.testing.sites import BanRule, GeoBlock
    from scrapy_proxystack.testing.tls import SelfSignedCertificate

__all__ = ["DEFAULT_REGIONS", "SITE_NETWORK", "LoopbackWorld"]

logger = logging.getLogger(__name__)

#: Region number R (third octet of a proxy address 127.0.R.N) -> country code.
DEFAULT_REGIONS: Mapping[int, str] = MappingProxyType(
    {1: "fr", 2: "de", 3: "es", 4: "jp", 5: "us", 6: "br", 7: "it", 8: "gb"}
)
#: Third octet of the site addresses (127.0.100.K); no region may use it.
SITE_NETWORK = 100

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_CALL_TIMEOUT = 30.0
_AUX_GRACE = 5.0


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Keep routine network errors (resets, TLS failures) out of the test output."""
    exc = context.get("exception")
    # CancelledError: Python 3.11 streams report a connection task cancelled before it ran.
    if isinstance(exc, (OSError, EOFError, asyncio.CancelledError)):
        logger.debug("loopback world: %s: %r", context.get("message"), exc)
        return
    loop.default_exception_handler(context)


class LoopbackWorld:
    """Real sites and real proxies on loopback addresses, for tests, demos and benchmarks.

    Use it as a context manager (``with LoopbackWorld() as world:``) or call :meth:`start` and
    :meth:`stop`. Sites and proxies can be added before or after starting; their URLs are known
    as soon as they are added. Whatever happens, the servers close after ``max_lifetime``
    seconds, so a stuck test cannot leave listeners behind.
    """

    def __init__(
        self, regions: Mapping[int, str] | None = None, max_lifetime: float = 600.0
    ) -> None:
        source = DEFAULT_REGIONS if regions is None else regions
        checked: dict[int, str] = {}
        for number, country in source.items():
            if not isinstance(number, int) or not 1 <= number <= 254 or number == SITE_NETWORK:
                raise ValueError(
                    f"region {number!r} must be an int in 1..254 other than {SITE_NETWORK} "
                    "(the third octet of proxy addresses 127.0.R.N)"
                )
            if not isinstance(country, str) or not country:
                raise ValueError(f"region {number}: country {country!r} must be a non-empty str")
            checked[number] = country.lower()
        if not max_lifetime > 0:
            raise ValueError(f"max_lifetime={max_lifetime!r} must be > 0 seconds")
        self.regions: Mapping[int, str] = MappingProxyType(checked)
        self.max_lifetime = float(max_lifetime)
        self._lock = threading.RLock()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._sites: list[Site] = []
        self._proxies: list[Proxy] = []
        self._proxy_numbers: dict[int, int] = {}
        self._names: dict[str, dict[str | None, Site]] = {}
        self._certificate: SelfSignedCertificate | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        # Loop-thread state.
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._closing = False
        self._expired = False
        self._aux_tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (
            f"<LoopbackWorld {self._state} sites={len(self._sites)} proxies={len(self._proxies)}>"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LoopbackWorld:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LoopbackWorld:
        """Start serving every site and proxy added so far. Idempotent; returns the world."""
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RuntimeError("a stopped LoopbackWorld cannot be restarted; create a new one")
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_log_loop_exception)
            endpoints: list[Endpoint] = [*self._sites, *self._proxies]
            thread = threading.Thread(
                target=self._thread_main,
                args=(loop, endpoints),
                name="loopback-world",
                daemon=True,  # never keeps the interpreter alive, even if stop() is forgotten
            )
            self._loop, self._thread = loop, thread
            self._state = "running"
            thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"the loopback world did not start within {_START_TIMEOUT} s")
        if self._startup_error is not None:
            error = self._startup_error
            self.stop()
            raise RuntimeError(f"the loopback world could not start: {error!r}") from error
        logger.debug("%r started", self)
        return self

    def stop(self) -> None:
        """Close every server and connection and join the thread. Idempotent, and quick."""
        with self._lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
            loop, thread = self._loop, self._thread
            endpoints: list[Endpoint] = [*self._sites, *self._proxies]
        if was_running and loop is not None and thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended (max lifetime)
                loop.call_soon_threadsafe(self._request_stop)
            if thread is threading.current_thread():
                return
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                logger.warning("The loopback world thread did not stop within %s s", _STOP_TIMEOUT)
                return
        for endpoint in endpoints:  # sockets bound by add_* but never served
            endpoint._discard_socket()
        logger.debug("%r stopped", self)

    @property
    def running(self) -> bool:
        """Whether the servers are up (False before start, after stop or after max_lifetime)."""
        thread = self._thread
        return (
            self._state == "running"
            and thread is not None
            and thread.is_alive()
            and not self._closing
        )

    @property
    def expired(self) -> bool:
        """Whether the world stopped because it reached ``max_lifetime``."""
        return self._expired

    # -- sites and proxies -------------------------------------------------------------------

    def add_site(
        self,
        name: str,
        *,
        lang: str = "en",
        countries: Iterable[str] | None = None,
        geo_block: GeoBlock | None = None,
        pages: int = 5,
        tls: bool = False,
        ban: BanRule | None = None,
        rate_limit: tuple[int, float] | None = None,
        crawl_delay: float | None = None,
        page_size: int | None = None,
        strikes: tuple[int, float, float] | None = None,
        down: bool = False,
        port: int = 0,
    ) -> Site:
        """Add a site on the next address 127.0.100.K (K = 1, 2, ... in creation order).

        ``strikes=(n, window, ban_seconds)``: a client address that got ``n`` 429s from
        ``rate_limit`` within ``window`` seconds is answered 403 for ``ban_seconds`` (what real
        sites that limit each client do). ``down`` starts the site refusing connections;
        :meth:`Site.take_down` and :meth:`Site.bring_up` change it while the world runs.
        ``port`` 0 takes any free port; another (each site has an address of its own, so they
        may all share one) gives the site a URL that is known before the world exists.

        ``countries`` restricts who may read it (clients from elsewhere, or direct ones, get
        the ``geo_block``: ``"451"`` by default, or ``"page"`` for a soft 200 block); ``ban``
        and ``rate_limit`` apply per client IP; ``tls`` serves HTTPS with the world's
        self-signed certificate.
        """
        with self._lock:
            self._check_not_stopped()
            if any(site.name == name for site in self._sites):
                raise ValueError(f"a site named {name!r} already exists")
            number = len(self._sites) + 1
            if number > 254:
                raise ValueError("a loopback world holds at most 254 sites")
            site = Site(
                name,
                f"127.0.{SITE_NETWORK}.{number}",
                country_of=self.country_of,
                lang=lang,
                countries=countries,
                geo_block=geo_block,
                pages=pages,
                tls_context=self._server_tls_context() if tls else None,
                ban=ban,
                rate_limit=rate_limit,
                crawl_delay=crawl_delay,
                page_size=page_size,
                strikes=strikes,
                down=down,
                submit=self._submit,
                port=port,
            )
            self._sites.append(site)
            started = self._state == "running"
        if started and not down:
            self._call(site._listen)
        return site

    def add_proxy(
        self,
        region: int,
        *,
        mode: ProxyMode = "ok",
        auth: tuple[str, str] | None = None,
        anonymity: Anonymity = "elite",
        delay: float = 0.0,
        fail_rate: float = 0.0,
        die_after: int | None = None,
        seed: int = 0,
        auth_encoding: str = "utf-8",
        port: int = 0,
    ) -> Proxy:
        """Add a proxy on the next address 127.0.R.N of ``region`` (N = 1, 2, ...).

        ``delay``, ``fail_rate`` and ``die_after`` act whatever the ``mode``; the modes
        ``"slow"``, ``"flaky"`` and ``"die_after"`` only insist that their parameter is set.
        ``"dead"`` reserves a port nobody listens on; ``"blackhole"`` accepts and never answers.
        ``auth_encoding`` is how the proxy expects ``user:password`` encoded in Basic auth
        (real proxies differ; Scrapy sends ``HTTPPROXY_AUTH_ENCODING``, latin-1 by default).
        ``port`` 0 takes any free port (see :meth:`add_site`).
        """
        return self._add_exit(
            region,
            lambda ip: Proxy(
                ip,
                region=region,
                country=self.regions[region],
                submit=self._submit,
                mode=mode,
                auth=auth,
                anonymity=anonymity,
                delay=delay,
                fail_rate=fail_rate,
                die_after=die_after,
                seed=seed,
                auth_encoding=auth_encoding,
                port=port,
            ),
        )

    def add_socks_proxy(
        self,
        region: int,
        *,
        mode: ProxyMode = "ok",
        auth: tuple[str, str] | None = None,
        delay: float = 0.0,
        fail_rate: float = 0.0,
        die_after: int | None = None,
        seed: int = 0,
        reply: int = 0,
        gateway: bool = False,
    ) -> SocksProxy:
        """Add a SOCKS5 proxy on the next address 127.0.R.N of ``region`` (numbered with the
        HTTP proxies). ``auth`` is checked as RFC 1929 user/password (UTF-8); ``reply`` makes
        every ``CONNECT`` fail with that SOCKS reply code; ``gateway`` accepts any credentials.
        Names are resolved with
        :meth:`add_name`'s table, as seen from the region's country.
        """
        return self._add_exit(
            region,
            lambda ip: SocksProxy(
                ip,
                region=region,
                country=self.regions[region],
                submit=self._submit,
                resolve=self.resolve_name,
                mode=mode,
                auth=auth,
                delay=delay,
                fail_rate=fail_rate,
                die_after=die_after,
                seed=seed,
                reply=reply,
                gateway=gateway,
            ),
        )

    def _add_exit(self, region: int, make: Callable[[str], _E]) -> _E:
        """An exit of either kind on the region's next address 127.0.R.N, started when the
        world runs."""
        if region not in self.regions:
            raise ValueError(f"region {region!r} is not one of {sorted(self.regions)}")
        with self._lock:
            self._check_not_stopped()
            number = self._proxy_numbers.get(region, 0) + 1
            if number > 254:
                raise ValueError(f"region {region} holds at most 254 proxies")
            proxy = make(f"127.0.{region}.{number}")
            self._proxy_numbers[region] = number
            self._proxies.append(proxy)
            started = self._state == "running"
        if started:
            self._call(proxy._apply_state)
        return proxy

    def add_name(self, name: str, site: Site | Mapping[str | None, Site]) -> None:
        """Let SOCKS exits resolve host ``name`` to a site: one for every country, or one per
        country (``{"fr": fr_site, "de": de_site, None: any_other}``), the way a site's DNS
        answers depend on where it is asked from. Only SOCKS exits know these names: the
        system resolver never does, so a name used in a URL proves who resolved it. The port
        of the URL is replaced by the site's own.
        """
        table: dict[str | None, Site] = {None: site} if isinstance(site, Site) else dict(site)
        with self._lock:
            self._names[name.lower().rstrip(".")] = table

    def resolve_name(self, name: str, country: str) -> tuple[str, int] | None:
        """``(ip, port)`` of the site ``name`` stands for when asked from ``country``."""
        with self._lock:
            table = self._names.get(name.lower().rstrip("."))
        if table is None:
            return None
        site = table.get(country, table.get(None))
        return (site.ip, site.port) if site is not None else None

    @property
    def sites(self) -> tuple[Site, ...]:
        with self._lock:
            return tuple(self._sites)

    @property
    def proxies(self) -> tuple[Proxy, ...]:
        with self._lock:
            return tuple(self._proxies)

    def site(self, name: str) -> Site:
        """The site called ``name``."""
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(name)

    def country_of(self, ip: str) -> str | None:
        """Country of client address 127.0.R.N (``regions[R]``); None means a direct client."""
        try:
            packed = ipaddress.IPv4Address(ip).packed
        except ValueError:
            return None
        if packed[0] != 127 or packed[1] != 0:
            return None
        return self.regions.get(packed[2])

    def proxy_config(self, locales: Mapping[str, Iterable[Proxy]] | None = None) -> dict[str, Any]:
        """A ``PROXYSTACK_PROXIES`` mapping: ``locales`` as given, or every proxy by country."""
        if locales is None:
            grouped: dict[str, list[Proxy]] = {}
            for proxy in self.proxies:
                grouped.setdefault(proxy.country, []).append(proxy)
            locales = grouped
        return {
            "locales": {
                name: {"proxies": [proxy.url for proxy in proxies]}
                for name, proxies in locales.items()
            }
        }

    def proxies_yaml(self, locales: Mapping[str, Iterable[Proxy]] | None = None) -> str:
        """:meth:`proxy_config` as the text of a ``PROXYSTACK_PROXIES_FILE``."""
        import yaml

        return yaml.safe_dump(self.proxy_config(locales), sort_keys=False)

    @property
    def tls_certificate_pem(self) -> bytes:
        """The self-signed certificate of the HTTPS sites, for clients that want to verify."""
        self._server_tls_context()
        assert self._certificate is not None
        return self._certificate.cert_pem

    # -- internals ---------------------------------------------------------------------------

    def _check_not_stopped(self) -> None:
        if self._state == "stopped":
            raise RuntimeError("this LoopbackWorld is stopped; create a new one")

    def _server_tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls_context is None:
                self._certificate = make_certificate()
                self._tls_context = self._certificate.server_context()
            return self._tls_context

    def _submit(self, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` on the loop if the world runs; otherwise start() applies it."""
        with contextlib.suppress(RuntimeError):
            self._call(factory)

    def _call(self, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` on the loop thread and wait for it; raise RuntimeError if stopped.

        Only a plain callback crosses threads: the coroutine is created on the loop itself, so
        a call racing with shutdown cannot leave a never-awaited coroutine behind.
        """
        loop, thread = self._loop, self._thread
        if self._state != "running" or loop is None or thread is None or not thread.is_alive():
            raise RuntimeError("the loopback world is not running")
        if thread is threading.current_thread():
            raise RuntimeError("blocking call made from the loopback world's own thread")
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def launch() -> None:
            if self._closing:
                done.set_exception(RuntimeError("the loopback world is stopping"))
                return

            async def run() -> None:
                await factory()

            task = loop.create_task(run())
            self._aux_tasks.add(task)
            task.add_done_callback(lambda t: self._aux_finished(t, done))

        try:
            loop.call_soon_threadsafe(launch)
        except RuntimeError:  # loop closed meanwhile
            raise RuntimeError("the loopback world is not running") from None
        deadline = time.monotonic() + _CALL_TIMEOUT
        while True:
            try:
                done.result(timeout=0.05)
                return
            except concurrent.futures.TimeoutError:
                if not thread.is_alive():
                    raise RuntimeError("the loopback world stopped") from None
                if time.monotonic() > deadline:
                    raise
            except concurrent.futures.CancelledError:
                raise RuntimeError("the loopback world stopped") from None

    def _aux_finished(
        self, task: asyncio.Task[None], done: concurrent.futures.Future[None]
    ) -> None:
        self._aux_tasks.discard(task)
        if task.cancelled():
            done.cancel()
        elif (exc := task.exception()) is not None:
            done.set_exception(exc)
        else:
            done.set_result(None)

    def _request_stop(self) -> None:
        self._stop_requested = True
        if self._stop_event is not None:
            self._stop_event.set()

    def _thread_main(self, loop: asyncio.AbstractEventLoop, endpoints: list[Endpoint]) -> None:
        try:
            loop.run_until_complete(self._main(endpoints))
        except BaseException:
            logger.exception("The loopback world failed")
        finally:
            try:
                _cancel_remaining_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                self._ready.set()

    async def _main(self, endpoints: list[Endpoint]) -> None:
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        try:
            for endpoint in endpoints:
                if endpoint._should_listen():
                    await endpoint._listen()
        except Exception as exc:
            self._startup_error = exc
        self._ready.set()
        if self._startup_error is None:
            try:
                await asyncio.wait_for(self._stop_event.wait(), self.max_lifetime)
            except asyncio.TimeoutError:
                self._expired = True
                logger.warning(
                    "The loopback world reached its max lifetime (%s s): stopping its servers",
                    self.max_lifetime,
                )
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._closing = True
        if self._aux_tasks:  # a kill(), revive() or add_* still at work
            await asyncio.wait(set(self._aux_tasks), timeout=_AUX_GRACE)
        with self._lock:
            endpoints: list[Endpoint] = [*self._sites, *self._proxies]
        for endpoint in endpoints:
            endpoint._stop_listening()
        await asyncio.gather(*(endpoint._close() for endpoint in endpoints))
        # Let aborted transports run their connection_lost callbacks, which close the sockets.
        for _ in range(3):
            await asyncio.sleep(0)


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """What ``asyncio.run`` does on exit: cancel leftover tasks and let them finish."""
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
