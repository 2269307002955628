"""``sockets.fill_from_socket`` with ``wake_at`` (SO_RCVLOWAT): the reading thread sleeps until a good part of its
buffer has arrived, yet a trickle is still read, the end of a body never waited for, and the socket handed back
as it was."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from pyfiledrop import sockets
from pyfiledrop.sockets import Gone, Parked, fill_from_socket


@contextlib.contextmanager
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    with client, server:
        yield client, server


def never() -> bool:
    return False


def lowat(sock: socket.socket) -> int:
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT)


def test_a_body_sent_in_small_pieces_arrives_whole_and_the_socket_is_given_back_as_it_was() -> None:
    data = os.urandom(3_000_000)
    with connected() as (client, server):

        def send() -> None:
            for start in range(0, len(data), 50_000):  # many small writes, with pauses: the reader waits between
                client.sendall(data[start : start + 50_000])
                time.sleep(0.001)

        sender = threading.Thread(target=send)
        sender.start()
        view = memoryview(bytearray(len(data)))
        got, error = fill_from_socket(server.fileno(), view, 10.0, never, wake_at=1 << 20)
        sender.join()
        assert (got, error) == (len(data), None)
        assert bytes(view) == data
        assert lowat(server) == 1  # the event loop, reading next, wakes for any byte


def test_the_end_of_a_body_shorter_than_wake_at_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sockets, "POLL_SLICE_MS", 5000)  # only the wake-up itself can end the wait in time
    with connected() as (client, server):
        client.sendall(b"a" * 1000)
        view = memoryview(bytearray(300_000))

        def rest() -> None:
            time.sleep(0.05)
            client.sendall(b"b" * 299_000)

        sender = threading.Thread(target=rest)
        sender.start()
        started = time.monotonic()
        got, error = fill_from_socket(server.fileno(), view, 10.0, never, wake_at=1 << 20)
        sender.join()
        assert (got, error) == (300_000, None)
        assert time.monotonic() - started < 2.5  # woken by what the view still needs, not by the 1 MiB asked for


def test_a_trickle_below_wake_at_is_still_read_and_a_silent_client_parked() -> None:
    with connected() as (client, server):
        client.sendall(b"x" * 10)
        view = memoryview(bytearray(1 << 20))
        got, error = fill_from_socket(server.fileno(), view, 10.0, never, wake_at=1 << 20)
        assert got == 10 and isinstance(error, Parked)  # read within a poll slice, then given back after a silence
        assert lowat(server) == 1
        client.close()
        got, error = fill_from_socket(server.fileno(), view[10:], 10.0, never, wake_at=1 << 20)
        assert got == 0 and isinstance(error, Gone)  # an end of stream wakes the thread whatever wake_at says
