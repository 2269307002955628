"""Many small uploads at once: N files of SIZE bytes over C keep-alive connections (HTTP PUT), while another
process asks for the status of an upload every few ms and times the answers.

    python load.py URL --files 200 --clients 50 --size 1048576 [--status-path /files/ID] [--page-path /] [--threaded]

The C connections are driven by one thread with a selector (non-blocking sends straight from the prepared bytes, a
minimal reading of the answer): the load client shares the two cores with the server it measures, and 50 threads of
http.client cost ~0.48 ms of CPU per 1 MiB file against ~0.28 this way — CPU the server under test did not get.
``--threaded`` keeps the old way (a thread and an http.client connection per client) to compare.

Every file has different bytes; they and their sha256 are made before the clock starts. Prints JSON: files,
seconds, files_per_s, errors, status_p50_ms, status_p99_ms, status_n (a kept-open connection), page_p50_ms,
page_p99_ms, page_n (``--page-path`` on a new connection each time), client_cpu_s (this process, while timed),
machine_busy (share of both cores busy meanwhile, from /proc/stat), sha256 (name → sha256 of each file sent).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit


def machine_ticks() -> tuple[int, int]:
    """(busy, idle) jiffies of the whole machine so far (Linux); (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, idle, iowait, irq, softirq = (int(x) for x in stat.readline().split()[1:8])
    except (OSError, ValueError):
        return 0, 0
    return user + nice + system + irq + softirq, idle + iowait


class _Connection:
    """One keep-alive client connection: the pieces of the request still to send, then the answer coming in."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.index = -1
        self.outgoing: list[memoryview] = []
        self.answer = bytearray()


def _answer_status(answer: bytearray) -> int | None:
    """The status code once the whole answer (head and Content-Length body) is in, else None."""
    end = answer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = answer[:end].decode("latin-1").lower().split("\r\n")
    if "transfer-encoding: chunked" in head:
        if not answer.endswith(b"0\r\n\r\n"):  # the last chunk (no trailers: none of the servers sends any)
            return None
    else:
        length = next((int(line[15:]) for line in head[1:] if line.startswith("content-length:")), 0)
        if len(answer) < end + 4 + length:
            return None
    return int(head[0].split(" ", 2)[1])


def drive(
    address: tuple[str, int],
    clients: int,
    take: Callable[[], int | None],
    request: Callable[[int], list[bytes]],
    finished: Callable[[int, int], None],
    errors: list[str],
    deadline_s: float = 600,
) -> None:
    """Send requests over ``clients`` connections from this one thread until ``take`` has no more: each connection
    sends one request (``request(index)``), reads its answer, reports ``finished(index, status)``, takes the next."""
    selector = selectors.DefaultSelector()

    def next_request(conn: _Connection) -> bool:
        index = take()
        if index is None:
            selector.unregister(conn.sock)
            conn.sock.close()
            return False
        conn.index, conn.outgoing, conn.answer = index, [memoryview(part) for part in request(index)], bytearray()
        selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        return True

    live = 0
    for _ in range(clients):
        conn = _Connection(socket.create_connection(address, timeout=30))
        conn.sock.setblocking(False)
        selector.register(conn.sock, selectors.EVENT_WRITE, conn)
        live += next_request(conn)
    deadline = time.monotonic() + deadline_s
    while live and time.monotonic() < deadline:
        for key, _ in selector.select(5):
            conn = key.data
            try:
                if conn.outgoing:
                    sent = conn.sock.send(conn.outgoing[0])
                    conn.outgoing[0] = conn.outgoing[0][sent:]
                    if not conn.outgoing[0]:
                        conn.outgoing.pop(0)
                        if not conn.outgoing:
                            selector.modify(conn.sock, selectors.EVENT_READ, conn)
                    continue
                data = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                data, reason = b"", str(exc)
            else:
                reason = "connection closed by the server"
            if not data:
                errors.append(f"{conn.index}: {reason}")
                selector.unregister(conn.sock)
                conn.sock.close()
                live -= 1
                continue
            conn.answer += data
            code = _answer_status(conn.answer)
            if code is not None:
                finished(conn.index, code)
                live -= not next_request(conn)
    selector.close()


def probe_status(target: SplitResult, path: str, header_lines: list[str], fresh: bool = False) -> list[float]:
    """Connected, says "ready"; after a line on stdin, asks for ``path`` every 5 ms until stdin ends. Returns the
    seconds each answer took. ``fresh``: each request on a new connection (connect included in its time), as a
    browser opening the page does — a request on a kept-open connection skips the wait for ``accept``."""
    host = target.hostname or "127.0.0.1"
    conn = http.client.HTTPConnection(host, target.port, timeout=30)
    conn.connect()
    print("ready", flush=True)
    sys.stdin.readline()
    ended = threading.Event()

    def wait_for_the_end() -> None:
        sys.stdin.read()
        ended.set()

    threading.Thread(target=wait_for_the_end, daemon=True).start()
    headers = dict(line.split(":", 1) for line in header_lines)
    method = "HEAD" if "/files/" in path else "GET"
    latencies: list[float] = []
    for _ in range(100_000):
        if ended.is_set():
            break
        started = time.perf_counter()
        if fresh:
            conn.close()
            conn = http.client.HTTPConnection(host, target.port, timeout=30)
        try:
            conn.request(method, path, headers=headers)
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, target.port, timeout=30)
            continue
        latencies.append(time.perf_counter() - started)
        ended.wait(0.005)
    conn.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--status-path", default="")
    parser.add_argument("--status-header", action="append", default=[])
    parser.add_argument("--token", default="")
    parser.add_argument("--threaded", action="store_true", help="a thread with http.client per client (the old way)")
    parser.add_argument(
        "--page-path",
        default="",
        help="also GET this path on a NEW connection every 5 ms from another process (e.g. /)",
    )
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # the status process (below)
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)  # ... each request on a new connection
    args = parser.parse_args()
    target = urlsplit(args.url)
    if args.probe:
        print(json.dumps(probe_status(target, args.status_path, args.status_header, args.fresh)))
        return
    base = os.urandom(args.size)
    # Each file differs (a server that deduplicates must not get it for free). Bodies and their sha256 are made
    # before the clock starts: the client shares the two cores with the server, and hashing 200 MiB during the
    # run would measure the client as much as the server.
    bodies = [index.to_bytes(8, "big") + base[8:] for index in range(args.files)]
    shas = {f"load-{index:04d}.bin": hashlib.sha256(data).hexdigest() for index, data in enumerate(bodies)}

    lock = threading.Lock()
    next_index = [0]
    errors: list[str] = []
    done = [0]

    def take() -> int | None:
        with lock:
            if next_index[0] >= args.files:
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def client() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        try:
            while (index := take()) is not None:
                headers = {"Content-Type": "application/octet-stream"}
                if args.token:
                    headers["X-Pyfiledrop-Token"] = args.token
                try:
                    conn.request("PUT", f"/load-{index:04d}.bin", body=bodies[index], headers=headers)
                    response = conn.getresponse()
                    response.read()
                    finished(index, response.status)
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"{index}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        finally:
            conn.close()

    def finished(index: int, code: int) -> None:
        if code in (200, 201):
            with lock:
                done[0] += 1
        else:
            errors.append(f"{index}: HTTP {code}")

    def selector_clients() -> None:
        extra = f"X-Pyfiledrop-Token: {args.token}\r\n" if args.token else ""
        heads = {
            index: (f"PUT /load-{index:04d}.bin HTTP/1.1\r\nHost: {target.netloc}\r\nContent-Type: "
                    f"application/octet-stream\r\n{extra}Content-Length: {len(bodies[index])}\r\n\r\n").encode()
            for index in range(args.files)
        }  # fmt: skip
        address = (target.hostname or "127.0.0.1", target.port or 80)
        drive(address, args.clients, take, lambda index: [heads[index], bodies[index]], finished, errors)

    # The status requests come from a process of their own: from a thread of this one, their answers waited for
    # this process's GIL too (the thread(s) sending the files hold it most of the time), which is not the server's
    # doing. It sends its first request when told "go" and stops at the end of its input.
    probers: dict[str, subprocess.Popen[str]] = {}
    if args.status_path:
        headers = [f"--status-header={header}" for header in args.status_header]
        probers["status"] = start_prober(args.url, ["--status-path", args.status_path, *headers])
    if args.page_path:
        probers["page"] = start_prober(args.url, ["--status-path", args.page_path, "--fresh"])
    if args.threaded:
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
    else:
        threads = [threading.Thread(target=selector_clients)]
    started, cpu_started, ticks_started = time.perf_counter(), time.process_time(), machine_ticks()
    for prober in probers.values():
        assert prober.stdin
        prober.stdin.write("go\n")
        prober.stdin.flush()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    seconds, client_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    (busy, idle), (busy_before, idle_before) = machine_ticks(), ticks_started
    machine_busy = (busy - busy_before) / max(busy - busy_before + idle - idle_before, 1)
    latencies = {name: sorted(json.loads(prober.communicate(timeout=30)[0])) for name, prober in probers.items()}

    def pct(name: str, p: float) -> float | None:
        seen = latencies.get(name)
        return round(seen[min(len(seen) - 1, int(p * len(seen)))] * 1000, 2) if seen else None

    print(json.dumps({"files": done[0], "seconds": seconds, "files_per_s": done[0] / seconds, "errors": errors[:5],
                      "error_count": len(errors), "status_p50_ms": pct("status", 0.5),
                      "status_p99_ms": pct("status", 0.99), "status_n": len(latencies.get("status", [])),
                      "page_p50_ms": pct("page", 0.5), "page_p99_ms": pct("page", 0.99),
                      "page_n": len(latencies.get("page", [])), "client_cpu_s": client_cpu_s,
                      "machine_busy": machine_busy, "sha256": shas}))  # fmt: skip


def start_prober(url: str, args: list[str]) -> subprocess.Popen[str]:
    """A process of its own that times requests during the load (``probe_status``), connected and waiting."""
    prober = subprocess.Popen([sys.executable, __file__, url, "--probe", *args], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert prober.stdout
    if prober.stdout.readline().strip() != "ready":
        raise SystemExit("a timing process did not start")
    return prober


if __name__ == "__main__":
    main()
