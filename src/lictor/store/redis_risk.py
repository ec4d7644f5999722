"""Risk state in Redis: :class:`RedisRiskStore` implements ``RiskStore`` for replicas sharing it.

The contract is the SQL store's (docs/risk.md, "Redis"); only the means differ:

* **Sessions** are one hash each (``v`` version, ``s`` state JSON, ``at`` last update).
  ``update_session`` is an optimistic read-modify-write: WATCH the key, read, apply the
  change, write in MULTI/EXEC, and start again when another writer got in between. Every
  concurrent event on any replica is thus applied exactly once; ``change`` may run more
  than once, which is safe because session changes are pure functions of the state.
* **Windows** are one sorted set per series and scope key, scored by event time in
  microseconds since the epoch, each member ``"<amount> <random id>"``. A Lua script sums
  the members of a window inside Redis; a series none of whose kept events has an amount
  (a count) has no ``amounts:`` flag key, and is counted with ZCOUNT instead of read.
  Adding to a series prunes its events older than ``keep_seconds`` and pushes the keys'
  expiry to ``keep_seconds`` (plus a margin) from now, so a series nobody adds to
  disappears once all its events are out of every window.
* **Window locks** (``counting``): one key per series, ``SET NX PX`` with a random token,
  all of a transaction's keys taken in sorted order by one script (all or none) and
  retried until ``lock_wait_seconds``. Events added in the block are buffered; when the
  block ends, one script checks that every lock still holds this transaction's token,
  writes the events and deletes the locks. A lock that expired while the block ran (a
  stall longer than ``lock_seconds``) fails that check: nothing is written and
  :class:`~lictor.errors.StoreError` is raised, so the decision is denied. The expiry
  therefore bounds how long a crashed replica blocks a series, never what is spent: two
  replicas can never both spend the last unit of a budget. (A connection lost while the
  events are written may leave them written and the decision denied: a budget then
  counts too much, never too little.)
* **Baselines** are one JSON string per agent, last writer wins.

Every key starts with the configured prefix. Any Redis or socket failure is raised as
:class:`~lictor.errors.StoreError`, which the Governor turns into an audited deny.
Needs Redis 6.0 or later; Redis Cluster is not supported (the lock and commit scripts
touch several keys).
"""

from __future__ import annotations

import json
import logging
import math
import random
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.exceptions import RedisError, WatchError

from lictor.core.decisions import format_time
from lictor.core.risk.session import SessionState
from lictor.errors import ConfigError, StoreError
from lictor.service.ports import WindowTransaction
from lictor.store.risk import baseline_json, stored_session

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_SESSION_TTL_SECONDS",
    "RedisRiskStore",
]

log = logging.getLogger("lictor.store.redis")

DEFAULT_PREFIX: Final = "lictor:risk:"
"""The namespace of every key, unless the URL's ``prefix`` says otherwise."""

DEFAULT_SESSION_TTL_SECONDS: Final = 30 * 86_400
"""How long a session nobody changes is kept (``0``: forever, as the SQL store does)."""

DEFAULT_LOCK_SECONDS: Final = 5.0
DEFAULT_LOCK_WAIT_SECONDS: Final = 6.0  # past a dead holder's whole lock lifetime
_SOCKET_CONNECT_TIMEOUT: Final = 2.0
_SOCKET_TIMEOUT: Final = 5.0
_SESSION_ATTEMPTS: Final = 100
_EXPIRY_MARGIN_MS: Final = 60_000  # replica clocks may disagree by this much
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_EMPTY: Final = SessionState()

# KEYS: the lock keys, sorted. ARGV: token, lock lifetime in ms. All or none.
_ACQUIRE: Final = """
for i = 1, #KEYS do
  if not redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    for j = 1, i - 1 do redis.call('DEL', KEYS[j]) end
    return 0
  end
end
return 1
"""

# KEYS: a window and its amounts flag. ARGV: since (µs). Returns {count, sum as text}: a
# Lua number would be cut to an integer on the way out, and %.17g round-trips a double.
# Without the flag no event in any window has an amount (a count): ZCOUNT, O(log n).
_TOTALS: Final = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  return {redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf'), '0'}
end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local total = 0
for _, member in ipairs(members) do
  total = total + tonumber(string.match(member, '^%S+'))
end
return {#members, string.format('%.17g', total)}
"""

# KEYS: n lock keys, then per event its window and amounts flag. ARGV: token, n, then per
# event: score, member, prune-before score, expiry in ms. With events to write, every lock
# must still hold the token, or nothing is written (returns 0). Locks still ours are
# released. A key's expiry only ever moves later.
_FINISH: Final = """
local token = ARGV[1]
local n = tonumber(ARGV[2])
local events = (#KEYS - n) / 2
local held = true
if events > 0 then
  for i = 1, n do
    if redis.call('GET', KEYS[i]) ~= token then held = false end
  end
end
if held then
  for e = 1, events do
    local key, flag = KEYS[n + 2 * e - 1], KEYS[n + 2 * e]
    local a = 2 + (e - 1) * 4
    local ttl = tonumber(ARGV[a + 4])
    redis.call('ZADD', key, ARGV[a + 1], ARGV[a + 2])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[a + 3])
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
    if tonumber(string.match(ARGV[a + 2], '^%S+')) ~= 0 then
      redis.call('SET', flag, '1', 'KEEPTTL')
      if redis.call('PTTL', flag) < ttl then redis.call('PEXPIRE', flag, ttl) end
    end
  end
end
for i = 1, n do
  if redis.call('GET', KEYS[i]) == token then redis.call('DEL', KEYS[i]) end
end
if held then return 1 end
return 0
"""


class RedisRiskStore:
    """Sessions, baselines and window events in Redis, shared by every replica. Thread-safe.

    The constructor does no I/O; the first command connects.

    Args:
        client: A ``redis.Redis`` client returning bytes (``decode_responses`` off).
        prefix: Put before every key, so several deployments can share one Redis.
        session_ttl_seconds: Sessions unchanged this long expire; ``0`` keeps them forever.
        lock_seconds: The lifetime of a window lock (a crashed holder blocks its series at
            most this long; a block that runs longer is denied).
        lock_wait_seconds: How long ``counting`` waits for busy locks before it fails.
        description: Names the Redis in error messages (no password).

    Raises:
        ConfigError: a limit is out of range.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        session_ttl_seconds: int = DEFAULT_SESSION_TTL_SECONDS,
        lock_seconds: float = DEFAULT_LOCK_SECONDS,
        lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
        description: str = "redis",
    ) -> None:
        if session_ttl_seconds < 0:
            raise ConfigError("redis risk store: session_ttl_seconds must be >= 0")
        if not lock_seconds > 0 or not lock_wait_seconds >= 0:
            raise ConfigError("redis risk store: lock_seconds must be > 0, lock wait >= 0")
        self._client = client
        self._prefix = prefix
        self._session_ttl = session_ttl_seconds
        self._lock_ms = max(1, round(lock_seconds * 1000))
        self._lock_wait = lock_wait_seconds
        self.description = description
        self._acquire = client.register_script(_ACQUIRE)
        self._totals = client.register_script(_TOTALS)
        self._finish = client.register_script(_FINISH)

    @classmethod
    def from_url(cls, url: str) -> RedisRiskStore:
        """Return a store on the Redis at ``url``, without connecting yet.

        Args:
            url: ``redis://[user:password@]host:6379/0``, ``rediss://`` (TLS) or
                ``unix:///path/to/redis.sock``. Besides redis-py's own options
                (``?socket_timeout=5``), the query string takes ``prefix`` (default
                ``lictor:risk:``) and ``session_ttl_seconds`` (default 30 days, ``0``:
                never). Connect and read timeouts default to 2 and 5 seconds.

        Raises:
            ConfigError: the URL or one of its options is invalid.
        """
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        prefix = options.pop("prefix", DEFAULT_PREFIX)
        try:
            ttl = int(options.pop("session_ttl_seconds", DEFAULT_SESSION_TTL_SECONDS))
        except ValueError:
            raise ConfigError(
                f"risk store {_shown(url)}: session_ttl_seconds must be an integer"
            ) from None
        # Not urlunsplit: it would turn unix:///path into unix:/path.
        rest = url.split("?", 1)[0] + (f"?{urlencode(options)}" if options else "")
        try:
            client = redis.Redis.from_url(
                rest,
                socket_connect_timeout=_SOCKET_CONNECT_TIMEOUT,
                socket_timeout=_SOCKET_TIMEOUT,
            )
            pool = client.connection_pool
            # Options are only applied when a connection is made; try them now (no I/O).
            pool.connection_class(**pool.connection_kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"risk store {_shown(url)}: {exc}") from None
        return cls(client, prefix=prefix, session_ttl_seconds=ttl, description=_shown(url))

    def close(self) -> None:
        """Close the client's connections; a later command opens new ones."""
        self._client.close()

    def ping(self) -> bool:
        """Return whether Redis answers (readiness: decisions in sessions need it)."""
        try:
            return bool(self._client.ping())
        except (redis.RedisError, OSError):
            return False

    # -- sessions -------------------------------------------------------------------------

    def session(self, session_id: str) -> SessionState | None:
        """Return the stored session state, or None.

        Raises:
            StoreError: Redis failed or the value is not a session state.
        """
        with self._failing("read a session"):
            raw = self._client.hget(self._session_key(session_id), "s")
        return None if raw is None else stored_session(session_id, raw)

    def session_version(self, session_id: str) -> int | None:
        """Return the stored state's version (one hash field), or None."""
        with self._failing("read a session version"):
            raw = self._client.hget(self._session_key(session_id), "v")
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise StoreError(f"stored session {session_id!r} has no valid version") from exc

    def update_session(
        self, session_id: str, change: Callable[[SessionState], SessionState], at: datetime
    ) -> SessionState:
        """Apply ``change`` to the stored state atomically (WATCH, MULTI/EXEC, retried).

        Raises:
            StoreError: Redis failed, or other writers kept changing the session.
        """
        key = self._session_key(session_id)
        with self._failing("update a session"), self._client.pipeline() as pipe:
            for _ in range(_SESSION_ATTEMPTS):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                    raw = pipe.hget(key, "s")
                    new = change(_EMPTY if raw is None else stored_session(session_id, raw))
                    pipe.multi()
                    pipe.hset(
                        key,
                        mapping={
                            "v": new.version,
                            "s": json.dumps(new.to_json(), separators=(",", ":")),
                            "at": format_time(at),
                        },
                    )
                    if self._session_ttl:
                        pipe.expire(key, self._session_ttl)
                    pipe.execute()
                    return new
                except WatchError:
                    continue  # another replica wrote in between: read it and apply again
        raise StoreError(
            f"session {session_id!r} changed under {_SESSION_ATTEMPTS} attempts to update it"
        )

    # -- baselines ------------------------------------------------------------------------

    def baseline(self, agent_id: str) -> Mapping[str, Any] | None:
        """Return the stored baseline JSON, or None (``{}`` for an unreadable value)."""
        with self._failing("read a baseline"):
            raw = self._client.get(self._key("baseline:", agent_id))
        return None if raw is None else baseline_json(raw)

    def save_baseline(self, agent_id: str, data: Mapping[str, Any], at: datetime) -> None:
        """Store the baseline JSON (last writer wins)."""
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        with self._failing("save a baseline"):
            self._client.set(self._key("baseline:", agent_id), text)

    # -- windows --------------------------------------------------------------------------

    @contextmanager
    def counting(self, lock_keys: Sequence[str]) -> Iterator[WindowTransaction]:
        """Yield a transaction holding the locks of ``lock_keys``; its events land at the end.

        Raises:
            StoreError: Redis failed, the locks stayed busy for ``lock_wait_seconds``, or a
                lock expired before the block ended (its events are then not written).
        """
        if not lock_keys:
            yield _RedisWindows(self, locked=False)
            return
        keys = [self._key("lock:", key) for key in sorted(set(lock_keys))]
        token = secrets.token_hex(16)
        self._lock(keys, token)
        windows = _RedisWindows(self, locked=True)
        released = False
        try:
            yield windows
            with self._failing("record window events"):
                held = self._finish(
                    keys=[*keys, *_event_keys(windows.pending)],
                    args=[token, len(keys), *_event_args(windows.pending)],
                )
            released = True
            if not held:
                raise StoreError(
                    f"a window lock expired before its transaction ended (held over "
                    f"{self._lock_ms} ms); its events were not recorded"
                )
        finally:
            if not released:
                self._release(keys, token)

    def _lock(self, keys: list[str], token: str) -> None:
        deadline = time.monotonic() + self._lock_wait
        pause = 0.0005
        while True:
            with self._failing("take window locks"):
                if self._acquire(keys=keys, args=[token, self._lock_ms]):
                    return
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"window locks busy for {self._lock_wait:g} s at {self.description}"
                )
            time.sleep(pause * (0.5 + random.random()))  # noqa: S311  # jitter, not a secret
            pause = min(pause * 2, 0.01)

    def _release(self, keys: list[str], token: str) -> None:
        """Release locks still ours, best effort: unreleased, they expire by themselves."""
        try:
            self._finish(keys=keys, args=[token, len(keys)])
        except (RedisError, OSError):
            log.warning("window locks not released; they expire within %d ms", self._lock_ms)

    def _window_totals(self, series: str, scope_key: str, since: datetime) -> tuple[int, float]:
        with self._failing("read a window"):
            count, total = self._totals(
                keys=self._window_keys(series, scope_key), args=[_micros(since)]
            )
        return int(count), float(total)

    # -- keys and errors ------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}{name}"

    def _session_key(self, session_id: str) -> str:
        return self._key("session:", session_id)

    def _window_keys(self, series: str, scope_key: str) -> list[str]:
        """The window's sorted set, and the flag set once an event with an amount joins it.

        The series' length comes first, so no (series, scope key) pair spells another's.
        """
        name = f"{len(series)}:{series}:{scope_key}"
        return [self._key("window:", name), self._key("amounts:", name)]

    @contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StoreError(f"cannot {doing} at {self.description}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Event:
    key: str
    flag: str
    score: int
    member: str
    prune_before: int
    expire_ms: int


@dataclass
class _RedisWindows:
    store: RedisRiskStore
    locked: bool
    pending: list[_Event] = field(default_factory=list)

    def totals(self, series: str, scope_key: str, since: datetime) -> tuple[int, float]:
        count, total = self.store._window_totals(series, scope_key, since)
        key, floor = self.store._window_keys(series, scope_key)[0], _micros(since)
        for event in self.pending:  # this transaction's own events, not yet written
            if event.key == key and event.score >= floor:
                count += 1
                total += float(event.member.split(" ", 1)[0])
        return count, total

    def add(
        self, series: str, scope_key: str, at: datetime, amount: float, keep_seconds: int
    ) -> None:
        if not self.locked:
            raise StoreError("window event added outside a locked window transaction")
        if not math.isfinite(amount):
            raise ValueError(f"window amounts must be finite, not {amount!r}")
        keep = timedelta(seconds=max(keep_seconds, 0))
        key, flag = self.store._window_keys(series, scope_key)
        self.pending.append(
            _Event(
                key=key,
                flag=flag,
                score=_micros(at),
                member=f"{float(amount)!r} {secrets.token_hex(8)}",
                prune_before=_micros(at - keep),
                expire_ms=int(keep.total_seconds() * 1000) + _EXPIRY_MARGIN_MS,
            )
        )


def _event_keys(events: Sequence[_Event]) -> list[str]:
    keys: list[str] = []
    for event in events:
        keys += [event.key, event.flag]
    return keys


def _event_args(events: Sequence[_Event]) -> list[str | int]:
    args: list[str | int] = []
    for event in events:
        args += [event.score, event.member, event.prune_before, event.expire_ms]
    return args


def _micros(at: datetime) -> int:
    """Microseconds since the epoch: exact in a sorted-set score (a double) until 2255."""
    return (at - _EPOCH) // _MICROSECOND


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
