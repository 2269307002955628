"""Claims (engine/claims.py's protocol) as PostgreSQL session advisory locks, for replicas that share nothing but
the database and the object store (``--database postgresql://…`` with ``--storage s3://…``).

Each process keeps one dedicated connection for its claims: a session advisory lock lives as long as that session,
so PostgreSQL drops every claim of a process the moment its connection ends — a clean exit, a crash or a SIGKILL
(the server sees the socket close). A key becomes a ``bigint`` by a stable hash (the same in every process, unlike
Python's ``hash``). Session advisory locks are re-entrant within one session, so the set inherited from
``LocalClaims`` keeps two tasks of this process apart, as record locks do for ``FileClaims``.

The "alive" claim is a shared advisory lock every live process holds; ``alone`` is whether this process can take it
exclusively too (a session's own locks never conflict with each other).

Statements run on one worker thread of their own: each is a single round trip that never waits (``pg_try_…``), and
the connection is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from pyfiledrop.errors import ConfigError
from pyfiledrop.meta.pgpool import describe

log = logging.getLogger("pyfiledrop.meta")

_POLL_FIRST = 0.005  # seconds between tries while another replica's start-up runs alone, doubling to _POLL_MOST
_POLL_MOST = 0.1
_START_WAIT = 600.0  # another replica's start-up recovery: bounded, it rehashes at worst
_CONNECT_TIMEOUT = 10


def lock_key(key: str) -> int:
    """A claim's advisory lock key: 64 bits of blake2b as a signed ``bigint``; a collision only makes two keys
    wait for each other."""
    return int.from_bytes(hashlib.blake2b(f"pyfiledrop-claim:{key}".encode(), digest_size=8).digest(), signed=True)


_ALIVE = lock_key("@alive")


class PostgresClaims:
    def __init__(self, url: str) -> None:
        self.url = url
        self._held: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-claims")
        self._connection: psycopg.Connection[Any] | None = None
        self._joined = False  # the shared "alive" lock is held (to take again on a new connection)

    # -- Claims ---------------------------------------------------------------------------------------------------

    async def take(self, key: str) -> bool:
        if key in self._held:
            return False
        self._held.add(key)
        try:
            taken = await self._ask("SELECT pg_try_advisory_lock(%s)", lock_key(key))
        except BaseException:
            self._held.discard(key)
            raise
        if not taken:
            self._held.discard(key)
        return taken

    async def give_back(self, key: str) -> None:
        if key not in self._held:
            return
        try:
            await self._ask("SELECT pg_advisory_unlock(%s)", lock_key(key))
        finally:
            self._held.discard(key)

    async def begin(self) -> bool:
        if await self._ask("SELECT pg_try_advisory_lock(%s)", _ALIVE):
            self._joined = True
            return True
        delay = _POLL_FIRST
        for _ in range(int(_START_WAIT / _POLL_MOST)):
            if await self._ask("SELECT pg_try_advisory_lock_shared(%s)", _ALIVE):
                self._joined = True
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MOST)
        raise TimeoutError(f"another replica holds the start-up claim on {describe(self.url)} for over 10 minutes")

    async def started(self) -> None:
        # Exclusive → shared: take the shared one too (no conflict with this session's own), then drop the
        # exclusive one. A process that joined shared holds nothing exclusive: the unlock just answers false.
        await self._ask("SELECT pg_try_advisory_lock_shared(%s)", _ALIVE)
        await self._ask("SELECT pg_advisory_unlock(%s)", _ALIVE)

    async def alone(self) -> bool:
        if not await self._ask("SELECT pg_try_advisory_lock(%s)", _ALIVE):
            return False
        await self._ask("SELECT pg_advisory_unlock(%s)", _ALIVE)  # back to the shared lock alone
        return True

    def close(self) -> None:
        self._held.clear()
        self._executor.shutdown(wait=True)
        if self._connection is not None:
            self._connection.close()  # the session ends: PostgreSQL drops all its advisory locks
            self._connection = None

    # -- the connection --------------------------------------------------------------------------------------------

    async def _ask(self, statement: str, key: int) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, statement, key)

    def _run(self, statement: str, key: int) -> bool:
        connection = self._connect()
        row = connection.execute(statement, (key,)).fetchone()
        return bool(row and row[0])

    def _connect(self) -> psycopg.Connection[Any]:
        connection = self._connection
        if connection is not None and not connection.closed and not connection.broken:
            return connection
        if connection is not None:
            # The session ended under us: its claims went with it. Other replicas may now take them; say so.
            # (This process's set is left as is: its holders give their keys back, which then unlocks nothing.)
            log.warning("the claims connection to %s broke: its claims were released", describe(self.url))
        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT,
                                         application_name="pyfiledrop-claims")  # fmt: skip
        except psycopg.OperationalError as exc:
            raise ConfigError(f"cannot connect to the database {describe(self.url)}: {exc}".strip()) from exc
        if self._joined:
            connection.execute("SELECT pg_advisory_lock_shared(%s)", (_ALIVE,))
        self._connection = connection
        return connection
