"""systemd-logind's inhibitor lock over the system bus (wakepy has no logind method: its issue #335).

``org.freedesktop.login1.Manager.Inhibit`` answers with a file descriptor and the lock lives exactly as long as that
descriptor stays open anywhere: closing it releases the lock, and so does the death of the process, even by
``kill -9``, because the kernel closes its descriptors. The bus address comes from ``DBUS_SYSTEM_BUS_ADDRESS``
(jeepney's own lookup), so a test can point it at a private bus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from jeepney import DBusAddress, new_method_call  # type: ignore[import-untyped]
from jeepney.bus import find_system_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import DBusConnection, open_dbus_connection  # type: ignore[import-untyped]
from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

MANAGER = DBusAddress("/org/freedesktop/login1", bus_name="org.freedesktop.login1",
                      interface="org.freedesktop.login1.Manager")  # fmt: skip
TIMEOUT = 2.0  # seconds for connecting and for each answer: a wedged bus must not hang the caller for long
_ABSENT = {  # the bus answered, but no logind is on it: a delay inhibitor would be refused the same way
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
}


class Unavailable(Exception):
    """No inhibitor: the message says why, in words fit for the status line."""


@dataclass(slots=True)
class Inhibitor:
    """A held lock; ``mode`` is "block", or "delay" when a block inhibitor was refused (``refusal`` says why)."""

    fd: int
    what: str
    mode: str
    refusal: str = ""
    _open: bool = field(default=True, repr=False)

    def release(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)


def inhibit(what: str, why: str, who: str = "pyfiledrop") -> Inhibitor:
    """Take a "block" inhibitor for ``what`` ("sleep" or "sleep:idle"); if that is refused (polkit often refuses it
    to a session that is not local), a "delay" one. Raises Unavailable with the reason when neither is had."""
    try:
        address = str(find_system_bus()).lstrip("\0")
    except (RuntimeError, ValueError) as exc:
        raise Unavailable(f"no usable system bus address ({exc})") from None
    try:
        connection = open_dbus_connection(bus="SYSTEM", enable_fds=True, auth_timeout=TIMEOUT)
    except (OSError, ValueError) as exc:  # ValueError: jeepney's AuthenticationError (no fd passing, refused)
        raise Unavailable(f"no system bus at {address} ({_describe(exc)})") from None
    try:
        return _inhibit(connection, what, why, who)
    except TimeoutError:
        raise Unavailable(f"logind did not answer within {TIMEOUT:g} s on {address}") from None
    except OSError as exc:
        raise Unavailable(f"the system bus at {address} failed: {_describe(exc)}") from None
    finally:
        connection.close()  # the lock is the descriptor, not the connection


def _inhibit(connection: DBusConnection, what: str, why: str, who: str) -> Inhibitor:
    try:
        return Inhibitor(_call(connection, what, why, who, "block"), what, "block")
    except DBusErrorResponse as refused:
        if refused.name in _ABSENT:
            raise Unavailable(f"no logind on the system bus ({refused.name})") from None
        try:
            fd = _call(connection, what, why, who, "delay")
        except DBusErrorResponse as also:
            raise Unavailable(f"logind refused the inhibitor: {_error(refused)}; delay: {_error(also)}") from None
        return Inhibitor(fd, what, "delay", refusal=_error(refused))


def _call(connection: DBusConnection, what: str, why: str, who: str, mode: str) -> int:
    message = new_method_call(MANAGER, "Inhibit", "ssss", (what, who, why, mode))
    reply = unwrap_msg(connection.send_and_get_reply(message, timeout=TIMEOUT))
    fd = int(reply[0].to_raw_fd())
    os.set_inheritable(fd, False)  # a child the server starts must not keep the lock alive after we let it go
    return fd


def _error(exc: DBusErrorResponse) -> str:
    detail = exc.data[0] if exc.data and isinstance(exc.data[0], str) else ""
    return f"{exc.name}: {detail}" if detail else str(exc.name)


def _describe(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
