"""A/B of the pyfiledrop server: two copies of ``src/`` measured in turns, with the server's CPU per thread.

    .venv/bin/python benchmarks/ab.py --case curl --a /tmp/base/src --b src --rounds 3
    .venv/bin/python benchmarks/ab.py --case small --files 550        # one side only: the repo's src/

Cases: ``curl`` (``curl -T``), ``tus`` (``pyfiledrop upload``, ``--jobs N``), ``dropzone`` (8 MiB × 4), each one
upload of the ``--size`` MiB data file made by ``run.py``; ``small``: ``load.py``, ``--files`` × 1 MiB PUT from 50
clients. Each run starts a fresh server (``pyfiledrop serve`` with PYTHONPATH set to that side's ``src``) and
prints the wall time, the server's CPU (whole process, from /proc), and that CPU by thread name (Python's names,
read with py-spy when ``benchmarks/.work/venv`` has it): which thread pays matters, the event loop is one core.
A side is a folder holding the ``pyfiledrop`` package, e.g. a ``git worktree`` of an older commit plus ``/src``.
Rounds alternate A and B so that the machine's drift hits both. Run ``run.py`` once first (venv and data).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from procstat import TICK, cpu_seconds

ROOT = Path(__file__).resolve().parent
PROJECT_PYTHON = sys.executable
BENCH_BIN = ROOT / ".work" / "venv" / "bin"
DATA = ROOT / ".work" / "data"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def thread_ticks(pid: int) -> dict[int, int]:
    ticks = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id → Python thread name (py-spy dump), the pool's number dropped; {} without py-spy."""
    spy = BENCH_BIN / "py-spy"
    if not spy.exists():
        return {}
    dump = subprocess.run([str(spy), "dump", "-p", str(pid)], capture_output=True, text=True, timeout=60).stdout
    found = re.findall(r'^Thread (0x[0-9a-fA-F]+|\d+) \(\w+\): "([^"]*)"', dump, re.MULTILINE)
    return {int(tid, 0): re.sub(r"_\d+$", "", name) for tid, name in found}


def client_command(case: str, url: str, args: argparse.Namespace) -> list[str]:
    data = str(DATA / f"random-{args.size}MiB.bin")
    match case:
        case "curl":
            return ["curl", "-sS", "-o", "/dev/null", "-T", data, f"{url}/put/ab.bin"]
        case "tus":
            return [PROJECT_PYTHON, "-m", "pyfiledrop", "upload", data, "--url", url, "-j", str(args.jobs)]
        case "dropzone":
            return [PROJECT_PYTHON, str(ROOT / "dropzone_client.py"), url, data, "--parallel", "4"]
        case "small":
            python = BENCH_BIN / "python" if (BENCH_BIN / "python").exists() else Path(PROJECT_PYTHON)
            return [str(python), str(ROOT / "load.py"), url, "--files", str(args.files), "--clients", "50"]
    raise ValueError(case)


def measure(side: str, args: argparse.Namespace) -> dict[str, object]:
    scratch = Path(tempfile.mkdtemp(prefix="pfd-ab-"))
    port = free_port()  # a new one each run: pyfiledrop upload would take a reused URL for a resume
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    env["PYTHONPATH"] = str(Path(side).resolve())
    server = subprocess.Popen(
        [PROJECT_PYTHON, "-m", "pyfiledrop", "serve", "--host", "127.0.0.1", "-p", str(port), "-s", str(scratch)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/api/config", timeout=2).read()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)
        before, cpu_before = thread_ticks(server.pid), cpu_seconds(server.pid)
        started = time.perf_counter()
        run = subprocess.run(client_command(args.case, url, args), capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.pid) - cpu_before
        after, names = thread_ticks(server.pid), thread_names(server.pid)
        by_name: collections.Counter[str] = collections.Counter()
        for tid, ticks in after.items():
            by_name[names.get(tid, "(unnamed)")] += ticks - before.get(tid, 0)
        result: dict[str, object] = {"wall_s": wall, "cpu_s": cpu, "ok": run.returncode == 0,
                                     "threads": {k: v / TICK for k, v in by_name.most_common() if v}}  # fmt: skip
        if args.case == "small" and run.returncode == 0:
            load = json.loads(run.stdout.strip().splitlines()[-1])
            result.update(files_per_s=load["files_per_s"], ms_per_file=cpu * 1000 / max(load["files"], 1),
                          errors=load["error_count"])  # fmt: skip
        elif run.returncode != 0:
            result["error"] = (run.stderr or run.stdout)[-300:]
        return result
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(scratch, ignore_errors=True)


def line(label: str, r: dict[str, object]) -> str:
    head = f"{label}  wall {r['wall_s']:.2f} s  server CPU {r['cpu_s']:.2f} s"
    if "files_per_s" in r:
        head += f"  {r['files_per_s']:.0f} files/s  {r['ms_per_file']:.2f} ms/file  errors {r['errors']}"
    if not r["ok"]:
        head += f"  FAILED: {r.get('error', '')}"
    threads = r["threads"]
    assert isinstance(threads, dict)
    return head + "\n      " + "  ".join(f"{name} {s:.2f}" for name, s in threads.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("curl", "tus", "dropzone", "small"), default="curl")
    parser.add_argument("--a", default=str(ROOT.parent / "src"), help="src folder of side A (default: the repo's)")
    parser.add_argument("--b", default="", help="src folder of side B (none: A alone)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024, help="MiB: benchmarks/.work/data/random-<size>MiB.bin")
    parser.add_argument("--jobs", type=int, default=1, help="tus: pyfiledrop upload -j")
    parser.add_argument("--files", type=int, default=500, help="small: 1 MiB files (the server refuses > ~600/min)")
    args = parser.parse_args()
    if args.case != "small" and not (DATA / f"random-{args.size}MiB.bin").exists():
        sys.exit(f"no {DATA}/random-{args.size}MiB.bin: run benchmarks/run.py --size {args.size} once first")
    sides = [("A", args.a)] + ([("B", args.b)] if args.b else [])
    for _ in range(args.rounds):
        for label, side in sides:
            print(line(label, measure(side, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
