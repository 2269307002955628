"""Stand-ins for logind and the desktop inhibitors, on private buses, that record what they are asked.

Run as a subprocess: ``python fake_services.py EVENTS [--logind ADDRESS] [--desktop ADDRESS] [--refuse-block]
[--only NAME ...]``. Each event is one JSON line in EVENTS, written the moment it happens:
``{"event": "inhibit", "service": "logind", "id": 1, "what": ..., "who": ..., "why": ..., "mode": ..., "at": t}``
and ``{"event": "release", "service": ..., "id": 1, "at": t}``. logind's Inhibit answers with the write end of a
pipe, as logind does with its fifo: the release is the moment every holder of that end has closed it (EOF on the
read end), so a lock held by a process killed with SIGKILL is seen released too. Prints "ready" once every name is
owned.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from typing import Any

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, open_dbus_connection

LOGIND = ("org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.login1.Manager")
DESKTOP = {  # name → (path, interface, uninhibit method name, inhibit signature)
    "org.freedesktop.PowerManagement": ("/org/freedesktop/PowerManagement/Inhibit",
                                        "org.freedesktop.PowerManagement.Inhibit", "UnInhibit"),
    "org.freedesktop.ScreenSaver": ("/org/freedesktop/ScreenSaver", "org.freedesktop.ScreenSaver", "UnInhibit"),
    "org.gnome.SessionManager": ("/org/gnome/SessionManager", "org.gnome.SessionManager", "Uninhibit"),
}  # fmt: skip
_ids = itertools.count(1)
_lock = threading.Lock()


class Events:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the life of the process

    def write(self, **event: Any) -> None:
        with _lock:
            self.file.write(json.dumps({**event, "at": time.time()}) + "\n")
            self.file.flush()


def _own(connection: DBusConnection, names: list[str]) -> None:
    for name in names:
        reply = connection.send_and_get_reply(message_bus.RequestName(name), timeout=5)
        if reply.body[0] != 1:  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
            raise SystemExit(f"could not own {name}: {reply.body}")


def _call(message: Any) -> tuple[str, str, str]:
    fields = message.header.fields
    path, interface = fields.get(HeaderFields.path, ""), fields.get(HeaderFields.interface, "")
    return path, interface, fields.get(HeaderFields.member, "")


def serve_logind(address: str, events: Events, refuse_block: bool) -> None:
    connection = open_dbus_connection(bus=address, enable_fds=True)
    _own(connection, [LOGIND[0]])
    ready.release()
    while True:
        message = connection.receive()
        if message.header.message_type != MessageType.method_call:
            continue
        if _call(message) != (LOGIND[1], LOGIND[2], "Inhibit"):
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("no such method",)))
            continue
        what, who, why, mode = message.body
        if refuse_block and mode == "block":
            connection.send(new_error(message, "org.freedesktop.DBus.Error.AccessDenied", "s",
                                      ("Permission denied",)))  # fmt: skip
            continue
        number = next(_ids)
        read_end, write_end = os.pipe()
        events.write(event="inhibit", service="logind", id=number, what=what, who=who, why=why, mode=mode)
        connection.send(new_method_return(message, "h", (write_end,)))
        os.close(write_end)  # from now on only the holder has it
        threading.Thread(target=_watch, args=(read_end, number, events), daemon=True).start()


def _watch(read_end: int, number: int, events: Events) -> None:
    while os.read(read_end, 1):
        pass
    os.close(read_end)
    events.write(event="release", service="logind", id=number)


def serve_desktop(address: str, events: Events, names: list[str]) -> None:
    connection = open_dbus_connection(bus=address)
    _own(connection, names)
    ready.release()
    routes = {(DESKTOP[name][0], DESKTOP[name][1]): name for name in names}
    while True:
        message = connection.receive()
        if message.header.message_type != MessageType.method_call:
            continue
        path, interface, member = _call(message)
        name = routes.get((path, interface))
        if name is not None and member == "Inhibit":
            number = next(_ids)
            body = message.body
            why = body[2] if name == "org.gnome.SessionManager" else body[1]
            flags = body[3] if name == "org.gnome.SessionManager" else None
            events.write(event="inhibit", service=name, id=number, who=body[0], why=why, flags=flags)
            connection.send(new_method_return(message, "u", (number,)))
        elif name is not None and member == DESKTOP[name][2]:
            events.write(event="release", service=name, id=int(message.body[0]))
            connection.send(new_method_return(message))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", ("no such method",)))


ready = threading.Semaphore(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("--logind")
    parser.add_argument("--desktop")
    parser.add_argument("--refuse-block", action="store_true")
    parser.add_argument("--only", action="append", choices=sorted(DESKTOP), help="desktop services to offer")
    args = parser.parse_args()
    events = Events(args.events)
    started = 0
    if args.logind:
        threading.Thread(target=serve_logind, args=(args.logind, events, args.refuse_block), daemon=True).start()
        started += 1
    if args.desktop:
        names = args.only or sorted(DESKTOP)
        threading.Thread(target=serve_desktop, args=(args.desktop, events, names), daemon=True).start()
        started += 1
    for _ in range(started):
        if not ready.acquire(timeout=10):
            raise SystemExit("a service did not start")
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)


if __name__ == "__main__":
    main()
