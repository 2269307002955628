"""The ceiling: a raw Python socket server that writes what it receives to a file, and its sendfile client.

Protocol: the client sends an 8-byte big-endian length, then the bytes; the server writes them to
``DIR/<n>.bin`` with os.write from a reused 1 MiB buffer, fsyncs (like pyfiledrop's default --durability
file) and answers ``OK\n``. No HTTP, no hashing: the cost of moving the bytes alone.

    python raw_sink.py serve PORT DIR
    python raw_sink.py send PORT FILE
"""

from __future__ import annotations

import os
import socket
import struct
import sys


def serve(port: int, folder: str) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=16)
    print("ready", flush=True)
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    count = 0
    while True:
        conn, _ = listener.accept()
        with conn:
            header = b""
            while len(header) < 8:
                piece = conn.recv(8 - len(header))
                if not piece:
                    break
                header += piece
            if len(header) < 8:
                continue
            (remaining,) = struct.unpack(">Q", header)
            count += 1
            fd = os.open(os.path.join(folder, f"{count}.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while remaining:
                    n = conn.recv_into(buffer, min(len(buffer), remaining))
                    if not n:
                        break
                    written = 0
                    while written < n:
                        written += os.write(fd, view[written:n])
                    remaining -= n
                os.fsync(fd)
            finally:
                os.close(fd)
            conn.sendall(b"OK\n" if remaining == 0 else b"SHORT\n")


def send(port: int, path: str) -> None:
    size = os.path.getsize(path)
    with socket.create_connection(("127.0.0.1", port)) as conn, open(path, "rb") as file:
        conn.sendall(struct.pack(">Q", size))
        conn.sendfile(file)
        answer = conn.recv(16)
    if answer != b"OK\n":
        sys.exit(f"raw sink answered {answer!r}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    else:
        send(int(sys.argv[2]), sys.argv[3])
