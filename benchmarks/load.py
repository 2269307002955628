"""Many small uploads at once: N files of SIZE bytes from C client threads (HTTP PUT, keep-alive), while one
more thread asks for the status of an upload every few ms and times the answers.

    python load.py URL --files 200 --clients 50 --size 1048576 [--status-path /files/ID] [--tus]

Every file has different bytes; they and their sha256 are made before the clock starts. Prints JSON: files,
seconds, files_per_s, errors, status_p50_ms, status_p99_ms, status_n, client_cpu_s (this process, while timed),
machine_busy (share of both cores busy meanwhile, from /proc/stat), sha256 (name → sha256 of each file sent).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import threading
import time
from urllib.parse import urlsplit


def machine_ticks() -> tuple[int, int]:
    """(busy, idle) jiffies of the whole machine so far (Linux); (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, idle, iowait, irq, softirq = (int(x) for x in stat.readline().split()[1:8])
    except (OSError, ValueError):
        return 0, 0
    return user + nice + system + irq + softirq, idle + iowait


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--status-path", default="")
    parser.add_argument("--status-header", action="append", default=[])
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    target = urlsplit(args.url)
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
    stop = threading.Event()
    latencies: list[float] = []

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
                    if response.status not in (200, 201):
                        errors.append(f"{index}: HTTP {response.status}")
                    else:
                        with lock:
                            done[0] += 1
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"{index}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        finally:
            conn.close()

    def status() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = dict(h.split(":", 1) for h in args.status_header)
        for _ in range(100_000):
            if stop.is_set():
                break
            started = time.perf_counter()
            try:
                conn.request("HEAD" if "/files/" in args.status_path else "GET", args.status_path, headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                continue
            latencies.append(time.perf_counter() - started)
            time.sleep(0.005)
        conn.close()

    watcher = threading.Thread(target=status, daemon=True) if args.status_path else None
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    started, cpu_started, ticks_started = time.perf_counter(), time.process_time(), machine_ticks()
    if watcher:
        watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    seconds, client_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    (busy, idle), (busy_before, idle_before) = machine_ticks(), ticks_started
    machine_busy = (busy - busy_before) / max(busy - busy_before + idle - idle_before, 1)
    stop.set()
    if watcher:
        watcher.join(10)
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else None

    print(json.dumps({"files": done[0], "seconds": seconds, "files_per_s": done[0] / seconds, "errors": errors[:5],
                      "error_count": len(errors), "status_p50_ms": pct(0.5), "status_p99_ms": pct(0.99),
                      "status_n": len(latencies), "client_cpu_s": client_cpu_s,
                      "machine_busy": machine_busy, "sha256": shas}))  # fmt: skip


if __name__ == "__main__":
    main()
