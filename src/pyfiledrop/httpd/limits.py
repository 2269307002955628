"""How many connections the process can hold: every socket is a file descriptor, and the default soft limit (1024
on most Linux systems) would stop ``accept`` after about a thousand idle clients. At start-up the soft limit is
raised to the hard one, and the server keeps its connections a margin below it (``state.Shared.admit``)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

log = logging.getLogger("pyfiledrop.http")

_RESERVE_MIN = 64  # descriptors kept for files being written or sent, the database, helpers, logs


def raise_open_file_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the resulting soft limit (None where there is none)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):  # some systems refuse (macOS: above OPEN_MAX)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _open_now() -> int:
    with contextlib.suppress(OSError):
        return sum(1 for _ in Path("/proc/self/fd").iterdir())  # Linux; elsewhere the reserve covers it
    return 0


def connection_capacity(limit: int | None, wanted: int | None) -> int:
    """How many connections to hold at most: the open-file limit, less what is open now and a reserve."""
    room = 1 << 30 if limit is None else max(limit - _open_now() - max(_RESERVE_MIN, limit // 10), 16)
    return min(room, wanted) if wanted else room


def set_up_capacity(wanted: int | None) -> int:
    before = _soft_limit()
    limit = raise_open_file_limit()
    capacity = connection_capacity(limit, wanted)
    raised = f" (raised from {before})" if before is not None and limit != before else ""
    log.info("open-file limit %s%s: room for %d connections", limit or "unlimited", raised, capacity)
    return capacity


def _soft_limit() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    return int(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
