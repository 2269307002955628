#!/usr/bin/env python3
"""How long the tus final POST (``Upload-Concat: final;…``) takes, and how long until the final upload is joined
and verified (its HEAD reports ``Upload-Offset`` = ``Upload-Length``).

    .venv/bin/python benchmarks/concat_final.py --parts 4 --part-mib 256 --runs 3 [--baseline-src /tmp/old/src]

Each run starts a fresh server in a temporary folder, uploads the parts (one PATCH each), then times the final POST
and the HEAD that follows (a pyfiledrop HEAD waits for a join in progress). With ``--baseline-src`` a server from
that source folder (e.g. ``git archive <commit> src``) runs interleaved with this checkout's, so both see the same
machine state. Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(folder: Path, src: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    if src:
        env["PYTHONPATH"] = src
    args = [sys.executable, "-m", "pyfiledrop", "serve", "--host", "127.0.0.1", "-p", str(port), "-s", str(folder)]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/config")
            if conn.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the server did not start within 30 s")


def call(port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(method, path, body=body or None, headers={**TUS, **headers})
    response = conn.getresponse()
    response.read()
    return response


def one_run(src: str | None, data: bytes, parts: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="pfd-concat-") as tmp:
        process, port = start(Path(tmp) / "s", src)
        try:
            size = len(data) // parts
            paths = []
            for index in range(parts):
                piece = data[index * size : (index + 1) * size]
                created = call(port, "POST", "/files/", {"Upload-Length": str(len(piece)), "Upload-Concat": "partial"})
                path = created.headers["Location"]
                patched = call(port, "PATCH", path, {"Upload-Offset": "0",
                                                      "Content-Type": "application/offset+octet-stream"}, piece)  # fmt: skip
                assert patched.status == 204, patched.status
                paths.append(path)
            started = time.perf_counter()
            final = call(port, "POST", "/files/", {"Upload-Concat": "final;" + " ".join(paths)})
            answered = time.perf_counter() - started
            assert final.status == 201, final.status
            for _ in range(6000):
                head = call(port, "HEAD", final.headers["Location"], {})
                if head.headers.get("Upload-Offset") == str(size * parts):
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError("the final upload was never reported complete")
            return answered, time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--part-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-src", help="a src folder of another version, run interleaved")
    args = parser.parse_args()
    data = os.urandom(args.parts * args.part_mib * MIB)
    variants = {"this checkout": None}
    if args.baseline_src:
        variants = {"baseline": str(Path(args.baseline_src).resolve()), **variants}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for run in range(args.runs):
        for name, src in variants.items() if run % 2 == 0 else reversed(variants.items()):
            answered, verified = one_run(src, data, args.parts)
            results[name].append((answered, verified))
            print(f"  run {run + 1} {name:<14} final POST {answered * 1000:7.0f} ms   verified after "
                  f"{verified * 1000:7.0f} ms", flush=True)  # fmt: skip
    print(f"\n{args.parts} × {args.part_mib} MiB, median of {args.runs} runs:")
    for name, rows in results.items():
        post = statistics.median(r[0] for r in rows)
        done = statistics.median(r[1] for r in rows)
        print(f"  {name:<14} final POST {post * 1000:7.0f} ms   joined and verified {done * 1000:7.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
