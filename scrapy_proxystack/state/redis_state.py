"""The state of several workers shared through Redis (``PROXYSTACK_STATE_BACKEND = "redis"``).

Keys live under one prefix (a crawl's own, so two crawls never mix) and every deadline is a key
TTL or a time read from Redis's clock (``TIME``) inside a script: workers' clocks are never
compared. What goes where:

* ``{prefix}:site|{domain}``: the site's GCRA theoretical arrival time (ms, Redis clock);
* ``{prefix}:pair|{domain}|{exit}``: the exit is busy for the site (pacing, a 429) until the
  key expires;
* ``{prefix}:ban|{domain}|{exit}`` and ``{prefix}:eject|{exit}``: bans and ejections, for
  workers that start or reconnect later (they read them once, then follow the channel);
* ``{prefix}:session|{name}``: the exit owning a sticky session (``SET NX``);
* ``{prefix}:inflight|{worker}``: a worker's requests in flight per exit, under a lease, and
  ``{prefix}:workers``, the set of workers (a dead one's lease expires, nothing leaks);
* channel ``{prefix}:events``: bans, ejections, pacing and sessions, applied by the other
  workers' pools as they arrive.

The hot path is one ``EVALSHA`` per request (:meth:`RedisState.reserve`). Any Redis error or a
reply slower than ``PROXYSTACK_REDIS_TIMEOUT`` makes the worker go on with its local state (a
site's budget divided by the workers last seen), WARN once, and reconnect with back-off; then it
reads the shared state again and tells what it learned meanwhile. No request is lost for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from scrapy_proxystack.redact import redact_url
from scrapy_proxystack.state import StateLost

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy_proxystack.pool import ExitPool, PoolListener
    from scrapy_proxystack.stats import StatsRecorder

__all__ = ["RedisState", "StateUnavailable", "ping"]

logger = logging.getLogger(__name__)

_ERRORS = (redis.RedisError, OSError, asyncio.TimeoutError)
_MAX_PENDING = 10_000
_MAX_BACKOFF = 10.0

#: KEYS: site TAT, pair. ARGV: interval ms, tolerance ms, pair delay ms, has exit (0/1), the
#: caller's own bookings ahead (ms: slots it booked alone while Redis was away, so the schedule
#: does not restart under them). Returns {busy ms, wait ms, schedule ahead ms}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
if ARGV[4] == '1' then
  local busy = redis.call('PTTL', KEYS[2])
  if busy > 0 then return {busy, 0, 0} end
end
local wait = 0
local ahead = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  local floor = now + tonumber(ARGV[5])
  if tat < floor then tat = floor end
  wait = tat - tolerance - now
  if wait < 0 then wait = 0 end
  local next_tat = tat + interval
  redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now + 1000)
  ahead = next_tat - now
end
if ARGV[4] == '1' and delay > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', delay + wait)
end
return {0, wait, ahead}
"""


class StateUnavailable(Exception):
    """Redis cannot be reached when the crawl starts (and it is required)."""


def ping(url: str, timeout: float) -> None:
    """Check that Redis answers at ``url``; raises :class:`StateUnavailable` naming the URL
    with its password redacted (redis-py's own messages may quote the URL)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise StateUnavailable(
            f"cannot reach Redis at {redact_url(url)} ({type(exc).__name__})"
        ) from None
    finally:
        client.close()


class RedisState:
    """:class:`~scrapy_proxystack.state.SharedState` over Redis; see the module docstring.

    Runs in the crawl's asyncio event loop (Scrapy's asyncio reactor): :meth:`start` when the
    spider opens, :meth:`close` when it closes. ``clock`` is the worker's monotonic clock.
    """

    def __init__(
        self,
        *,
        url: str,
        prefix: str,
        pool: ExitPool,
        stats: StatsRecorder,
        timeout: float = 0.25,
        mirror_interval: float = 0.5,
        session_ttl: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url  # holds the password: never printed (see __repr__)
        self.prefix = prefix
        self.pool = pool
        self.stats = stats
        self.timeout = timeout
        self.mirror_interval = mirror_interval
        self.session_ttl = session_ttl
        self.clock = clock
        self.worker = uuid.uuid4().hex[:12]
        self.lease = max(5.0, 4 * mirror_interval)
        self._client: aioredis.Redis | None = None
        self._script: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[None]] = set()
        self._healthy = False
        self._closed = False
        self._workers = 1
        self._rank = 0
        self._backoff = 0.5
        self._retry_at = 0.0
        #: After a reconnection, until this time (monotonic) the site budgets stay divided:
        #: other workers may still be on their own state.
        self._divide_until = 0.0
        #: When this worker last found Redis gone (monotonic; 0.0: never).
        self._lost_at = 0.0
        #: What this worker learned while Redis was away: (kind, args, monotonic deadline).
        self._pending: deque[tuple[str, tuple[Any, ...], float]] = deque(maxlen=_MAX_PENDING)

    def __repr__(self) -> str:
        return f"RedisState(url={redact_url(self._url)!r}, prefix={self.prefix!r})"

    # -- SharedState ----------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def share(self) -> int:
        """By how much to divide a site's budget booked here: 1, or the workers seen for a
        while after a reconnection (the others may not have reconnected yet)."""
        return self._workers if self.clock() < self._divide_until else 1

    @property
    def lookahead(self) -> float:
        """A booking answered within the timeout is never late when made this long ahead."""
        return self.timeout

    @property
    def lost_at(self) -> float:
        return self._lost_at

    @property
    def listener(self) -> PoolListener:
        return self

    async def reserve(
        self,
        domain: str,
        exit_id: str | None,
        interval: float,
        tolerance: float,
        delay: float,
        floor: float = 0.0,
    ) -> tuple[float, float, float]:
        if not self._healthy or self._script is None:
            raise StateLost("Redis is not reachable")
        keys = [self._key("site", domain), self._key("pair", domain, exit_id or "-")]
        args = [
            int(interval * 1000),
            int(tolerance * 1000),
            int(delay * 1000),
            "1" if exit_id is not None else "0",
            max(0, int(floor * 1000)),
        ]
        try:
            busy, wait, ahead = await asyncio.wait_for(
                self._script(keys=keys, args=args), timeout=self.timeout
            )
        except _ERRORS as exc:
            self._lost(exc)
            raise StateLost(type(exc).__name__) from None
        return int(busy) / 1000.0, int(wait) / 1000.0, int(ahead) / 1000.0

    # -- PoolListener: what this worker learns ---------------------------------------------------

    def on_ban(self, exit_id: str, domain: str, seconds: float, reason: str) -> None:
        self._tell("ban", (exit_id, domain, reason), seconds)

    def on_eject(self, exit_id: str, seconds: float) -> None:
        self._tell("eject", (exit_id,), seconds)

    def on_pace(self, exit_id: str, domain: str, seconds: float) -> None:
        self._tell("pace", (exit_id, domain), seconds)

    def on_session(self, session: str, exit_id: str) -> None:
        self._tell("session", (session, exit_id), self.session_ttl)

    def _tell(self, kind: str, args: tuple[Any, ...], seconds: float) -> None:
        deadline = self.clock() + seconds
        if not self._healthy:
            self._pending.append((kind, args, deadline))
            return
        self._spawn(self._publish(kind, args, deadline))

    async def _publish(self, kind: str, args: tuple[Any, ...], deadline: float) -> None:
        client = self._client
        seconds = deadline - self.clock()
        if client is None or seconds <= 0:
            return
        ms = max(1, int(seconds * 1000))
        event = json.dumps({"w": self.worker, "k": kind, "a": list(args), "ms": ms})
        try:
            if kind == "session":
                session, exit_id = args
                key = self._key("session", session)
                won = await client.set(key, exit_id, nx=True, px=ms)
                if not won:
                    owner = await client.get(key)
                    if isinstance(owner, bytes) and owner.decode() != exit_id:
                        self.pool.adopt_session(session, owner.decode())
                    return
                await client.publish(self._key("events"), event)
                return
            pipe = client.pipeline(transaction=False)
            if kind == "ban":
                exit_id, domain, reason = args
                pipe.set(self._key("ban", domain, exit_id), reason, px=ms)
            elif kind == "eject":
                pipe.set(self._key("eject", args[0]), "1", px=ms)
            elif kind == "pace":
                exit_id, domain = args
                pipe.set(self._key("pair", domain, exit_id), "1", px=ms)
            pipe.publish(self._key("events"), event)
            await asyncio.wait_for(pipe.execute(), timeout=self.timeout * 4)
        except _ERRORS as exc:
            self._pending.append((kind, args, deadline))
            self._lost(exc)

    # -- what the other workers learn -----------------------------------------------------------

    def _apply(self, raw: bytes | str) -> None:
        try:
            event = json.loads(raw)
            if event.get("w") == self.worker:
                return
            kind, args, seconds = event["k"], event["a"], event["ms"] / 1000.0
        except (ValueError, KeyError, TypeError):
            self.stats.inc("redis", "bad_events")
            return
        pool = self.pool
        applied = False
        if kind == "ban":
            applied = pool.apply_ban(args[0], args[1], seconds, args[2])
        elif kind == "eject":
            applied = pool.apply_ejection(args[0], seconds)
        elif kind == "pace":
            pool.pace(args[0], args[1], seconds)
            applied = True
        elif kind == "session":
            applied = pool.adopt_session(args[0], args[1])
        if applied:
            self.stats.inc("redis", "applied", kind)

    async def _sync(self) -> None:
        """Read what other workers learned before this one (re)joined: bans and ejections."""
        client = self._client
        assert client is not None
        for kind in ("ban", "eject"):
            async for key in client.scan_iter(match=self._key(kind, "*"), count=1000):
                name = key.decode()
                pipe = client.pipeline(transaction=False)
                pipe.pttl(key)
                pipe.get(key)
                ttl, value = await pipe.execute()
                if ttl is None or ttl <= 0:
                    continue
                parts = name[len(self.prefix) + 1 :].split("|")
                if kind == "ban" and len(parts) == 3 and value is not None:
                    self.pool.apply_ban(parts[2], parts[1], ttl / 1000.0, value.decode())
                elif kind == "eject" and len(parts) == 2:
                    self.pool.apply_ejection(parts[1], ttl / 1000.0)

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, read the shared state, and follow it. Never raises: a Redis that cannot be
        reached now is retried in the background (the start-up check is :func:`ping`)."""
        self._client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout * 4
        )
        self._script = self._client.register_script(_RESERVE)
        await self._connect()
        self._tasks = [
            asyncio.ensure_future(self._follow()),
            asyncio.ensure_future(self._mirror()),
        ]

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                await task
        client = self._client
        if client is not None:
            with contextlib.suppress(*_ERRORS):
                await asyncio.wait_for(self._leave(client), timeout=self.timeout * 4)
            with contextlib.suppress(*_ERRORS):
                await client.aclose()

    async def _leave(self, client: aioredis.Redis) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.delete(self._key("inflight", self.worker))
        pipe.srem(self._key("workers"), self.worker)
        await pipe.execute()

    async def _connect(self) -> bool:
        client = self._client
        assert client is not None
        was_lost = self._retry_at > 0.0
        try:
            if was_lost:
                # Idle connections to a Redis that went away are dead (a restarted one closes
                # them on the first command): without this the first attempt always fails.
                await client.connection_pool.disconnect(inuse_connections=False)
            await asyncio.wait_for(client.ping(), timeout=self.timeout * 4)
            await asyncio.wait_for(self._sync(), timeout=max(5.0, self.timeout * 20))
            if was_lost:
                # The others retry on back-offs like this one's: give them two of its steps.
                self._divide_until = self.clock() + max(self.lease, 2 * self._backoff)
            # Join before the first booking: a worker that loses Redis divides each site's
            # budget by the workers it has seen, so it must have seen them (the mirror's first
            # exchange comes a mirror interval later, and Redis may be gone by then).
            await asyncio.wait_for(self._exchange_in_flight(), timeout=self.timeout * 4)
        except _ERRORS as exc:
            self._lost(exc)
            return False
        self._healthy = True
        self._backoff = 0.5
        self._retry_at = 0.0
        if was_lost:
            self.stats.inc("redis", "reconnected")
            logger.warning(
                "Redis at %(url)s answers again: the workers share their state again",
                {"url": redact_url(self._url)},
            )
        pending, self._pending = list(self._pending), deque(maxlen=_MAX_PENDING)
        for kind, args, deadline in pending:
            self._spawn(self._publish(kind, args, deadline))
        return True

    def _lost(self, exc: BaseException) -> None:
        now = self.clock()
        if self._healthy or self._retry_at == 0.0:
            self._lost_at = now
            self.stats.inc("redis", "lost")
            logger.warning(
                "Redis at %(url)s does not answer (%(error)s): this worker goes on with its "
                "own state (each site's budget divided by the %(n)d workers last seen) and "
                "reconnects",
                {"url": redact_url(self._url), "error": type(exc).__name__, "n": self._workers},
            )
        self._healthy = False
        if self._retry_at <= now:
            self._retry_at = now + self._backoff
            self._backoff = min(self._backoff * 2.0, _MAX_BACKOFF)

    async def _follow(self) -> None:
        """Apply the other workers' events as they come; resubscribe after a loss."""
        while not self._closed:
            client = self._client
            assert client is not None
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._key("events"))
                while not self._closed:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
            except _ERRORS as exc:
                self._lost(exc)
                await asyncio.sleep(max(0.05, self._retry_at - self.clock()))
            finally:
                with contextlib.suppress(*_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _mirror(self) -> None:
        """Every ``mirror_interval``: renew this worker's lease and in-flight counts, read the
        others'; while Redis is lost, try to reconnect when the back-off says so."""
        while not self._closed:
            await asyncio.sleep(self.mirror_interval)
            if not self._healthy:
                if self.clock() >= self._retry_at:
                    await self._connect()
                continue
            try:
                await asyncio.wait_for(self._exchange_in_flight(), timeout=self.timeout * 4)
            except _ERRORS as exc:
                self._lost(exc)

    async def _exchange_in_flight(self) -> None:
        client = self._client
        assert client is not None
        mine = self.pool.in_flight_by_exit()
        workers_key = self._key("workers")
        own = self._key("inflight", self.worker)
        lease_ms = int(self.lease * 1000)
        pipe = client.pipeline(transaction=False)
        pipe.delete(own)
        counts: dict[str | bytes, int | str] = {"@": 1}  # the hash exists while the lease runs
        counts.update(mine)
        pipe.hset(own, mapping=counts)  # type: ignore[arg-type]
        pipe.pexpire(own, lease_ms)
        pipe.sadd(workers_key, self.worker)
        pipe.smembers(workers_key)
        members = (await pipe.execute())[-1]
        others = sorted(m.decode() for m in members if m.decode() != self.worker)
        pipe = client.pipeline(transaction=False)
        for worker in others:
            pipe.hgetall(self._key("inflight", worker))
        replies = await pipe.execute() if others else []
        totals: dict[str, int] = {}
        gone = []
        for worker, theirs in zip(others, replies, strict=True):
            if not theirs:
                gone.append(worker)  # its lease ran out: it died or left
                continue
            for exit_id, n in theirs.items():
                key = exit_id.decode()
                if key != "@":
                    totals[key] = totals.get(key, 0) + int(n)
        if gone:
            await client.srem(workers_key, *gone)
        seen = 1 + len(others) - len(gone)
        if self.clock() < self._divide_until:
            # A Redis restarted empty knows only the workers that came back already; the
            # others may still be on their own state, each with its share of the budgets.
            seen = max(seen, self._workers)
        self._workers = seen
        self._rank = sum(1 for w in others if w < self.worker and w not in gone)
        self.pool.set_remote_in_flight(totals)
        self.stats.set("redis", "workers", value=self._workers)

    # -- helpers --------------------------------------------------------------------------------

    def _key(self, kind: str, *parts: str) -> str:
        return "|".join((f"{self.prefix}:{kind}", *parts))

    def _spawn(self, coro: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
