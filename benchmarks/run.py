#!/usr/bin/env python3
"""pyfiledrop upload benchmark: one command, baselines included.

    .venv/bin/python benchmarks/run.py            # quick: 256 MiB, 2 runs per case
    .venv/bin/python benchmarks/run.py --full     # 1 GiB, 3 runs, plus the 4 GiB peak-RSS case

It installs its baselines into benchmarks/.work/venv (copyparty with its u2c client, granian, uvicorn,
matplotlib, py-spy), generates random data in benchmarks/.work/data, runs every case several times with a
fresh server and a fresh storage folder per run (cases interleaved, so machine noise hits all alike),
checks the sha256 of every stored file, and prints a table of MiB/s, ratios to copyparty+u2c and to the
raw-socket ceiling, server CPU s/GiB, client CPU s/GiB and peak RSS. JSON and a PNG chart go to
benchmarks/results/. Everything listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
WORK = ROOT / ".work"
VENV = WORK / "venv"
DATA = WORK / "data"
RESULTS = ROOT / "results"
MIB = 1 << 20
BENCH_DEPS = ["copyparty>=1.20,<1.21", "uvicorn[standard]>=0.30", "granian>=2.8,<3", "matplotlib>=3.8", "py-spy>=0.4"]
CLIENT_TIMEOUT = 900.0


# -- bootstrap: the baselines live in their own venv; the runner re-executes itself there --------------------


def bootstrap(argv: list[str]) -> None:
    if os.environ.get("PFD_BENCH_CHILD"):
        return
    try:
        import pyfiledrop  # noqa: F401
    except ImportError:
        sys.exit("run this with the project's interpreter: .venv/bin/python benchmarks/run.py")
    python = VENV / "bin" / "python"
    marker = VENV / ".deps"
    wanted = "\n".join(BENCH_DEPS)
    if not python.exists() or not marker.exists() or marker.read_text() != wanted:
        print(f"installing the baselines into {VENV} …", flush=True)
        WORK.mkdir(parents=True, exist_ok=True)
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        if Path(uv).exists():
            if not python.exists():
                subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
            subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *BENCH_DEPS], check=True)
        else:
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *BENCH_DEPS], check=True)
        marker.write_text(wanted)
    env = {**os.environ, "PFD_BENCH_CHILD": "1", "PFD_PROJECT_PYTHON": sys.executable}
    os.execve(str(python), [str(python), str(Path(__file__).resolve()), *argv], env)


PROJECT_PYTHON = os.environ.get("PFD_PROJECT_PYTHON", sys.executable)
PFD_SRC = ""  # set by --pyfiledrop-src
BENCH_BIN = VENV / "bin"
sys.path.insert(0, str(ROOT))


# -- data ---------------------------------------------------------------------------------------------------------


def make_data(size: int) -> tuple[Path, str]:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"random-{size // MIB}MiB.bin"
    sha_file = path.with_suffix(".sha256")
    if path.exists() and path.stat().st_size == size and sha_file.exists():
        return path, sha_file.read_text().strip()
    hasher = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 64 * MIB))
            out.write(block)
            hasher.update(block)
            left -= len(block)
    sha_file.write_text(hasher.hexdigest())
    return path, hasher.hexdigest()


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        buffer = bytearray(8 * MIB)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            hasher.update(view[:n])
    return hasher.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- servers ------------------------------------------------------------------------------------------------------


@dataclass
class Server:
    kind: str  # pyfiledrop | granian | uvicorn | raw | copyparty
    folder: Path
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYFILEDROP_", "PFD_"))}
        p = str(self.port)
        match self.kind:
            case "pyfiledrop":
                if PFD_SRC:  # --pyfiledrop-src: an A/B run of a patched copy of the server
                    env["PYTHONPATH"] = PFD_SRC
                return ([PROJECT_PYTHON, "-m", "pyfiledrop", "serve", "--host", "127.0.0.1", "-p", p, "-s",
                         str(self.folder), "--allow-downloads", "--admin-token", "bench-admin", *self.extra],
                        env, self.folder.parent)  # fmt: skip
            case "granian":
                return ([str(BENCH_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", p,
                         "--workers", "1", "--log-level", "warning", "asgi_sink:app"],
                        {**env, "SINK_DIR": str(self.folder)}, ROOT)  # fmt: skip
            case "uvicorn":
                return ([str(BENCH_BIN / "uvicorn"), "asgi_sink:app", "--host", "127.0.0.1", "--port", p,
                         "--log-level", "warning"], {**env, "SINK_DIR": str(self.folder)}, ROOT)  # fmt: skip
            case "raw":
                return [str(BENCH_BIN / "python"), str(ROOT / "raw_sink.py"), "serve", p, str(self.folder)], env, ROOT
            case "copyparty":
                return ([str(BENCH_BIN / "copyparty"), "-i", "127.0.0.1", "-p", p, "-v", f"{self.folder}::rw", "-q",
                         "--no-robots", *self.extra], env, self.folder.parent)  # fmt: skip
        raise ValueError(self.kind)

    def start(self, timeout: float = 30.0) -> Server:
        self.folder.mkdir(parents=True, exist_ok=True)
        args, env, cwd = self.command()
        log = (self.folder.parent / f"{self.kind}-{self.port}.log").open("wb")
        self.process = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited early, see {log.name}")
            if self._ready():
                time.sleep(0.2 if self.kind != "raw" else 0.05)  # let workers settle before CPU is read
                return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not start within {timeout} s")

    def _ready(self) -> bool:
        if self.kind == "raw":
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
            return False
        path = "/api/config" if self.kind == "pyfiledrop" else "/"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET" if self.kind in ("pyfiledrop", "copyparty") else "HEAD", path)
            status = conn.getresponse().status
            conn.close()
        except (OSError, http.client.HTTPException):
            return False
        return status < 500

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 15)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait(10)


# -- one measured client run --------------------------------------------------------------------------------------


@dataclass
class ClientRun:
    seconds: float
    cpu: float
    code: int
    stdout: str
    stderr: str


def run_client(args: list[str], cwd: Path, timeout: float = CLIENT_TIMEOUT) -> ClientRun:
    """Run a client to its end; wall time and its own CPU (rusage of the child: user + system, all threads)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYFILEDROP_", "PFD_"))}
    env["PYFILEDROP_STATE"] = str(cwd / "client-state.json")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, cwd=cwd, env=env, start_new_session=True)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(process.pid, 9)
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ClientRun(seconds, usage.ru_utime + usage.ru_stime, process.returncode,
                         out.read().decode(errors="replace"), err.read().decode(errors="replace"))  # fmt: skip


# -- cases ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    server: str
    label: str
    anchor: str = ""  # the case this one is compared with, like with like (the same client, or each side's own)
    server_args: tuple[str, ...] = ()

    def client(self, server: Server, data: Path) -> list[str]:
        bench_py = str(BENCH_BIN / "python")
        match self.name:
            case "pfd-tus-1" | "pfd-tus-4" | "pfd-tus-auto":
                jobs = self.name.rsplit("-", 1)[-1]
                return [PROJECT_PYTHON, "-m", "pyfiledrop", "upload", str(data), "--url", server.url, "-j", jobs,
                        "--json", "-q"]  # fmt: skip
            case "pfd-curl" | "granian-sink" | "uvicorn-sink" | "copyparty-curl":
                return ["curl", "-sS", "-f", "-T", str(data), f"{server.url}/{data.name}"]
            case "pfd-dropzone":
                return [bench_py, str(ROOT / "dropzone_client.py"), server.url, str(data), "--chunk-size",
                        str(8 * MIB), "--parallel", "4"]  # fmt: skip
            case "pfd-tuspy":
                return [PROJECT_PYTHON, str(ROOT / "tuspy_client.py"), server.url, str(data)]
            case "raw-socket":
                return [bench_py, str(ROOT / "raw_sink.py"), "send", str(server.port), str(data)]
            case "copyparty-u2c":
                return [str(BENCH_BIN / "u2c"), "-ns", f"{server.url}/", str(data)]
            case "pfd-tusjs-4":  # node tus-js-client, parallelUploads: 4 (tus concatenation)
                return ["node", str(ROOT / "tusjs_client.mjs"), f"{server.url}/files/", str(data), "4"]
        raise ValueError(self.name)


# Anchors, like with like: `curl -T` against copyparty's own `curl -T` (the same client, the servers alone); a
# server's own client against copyparty's own client (u2c: both hash and resume); the page's protocol (Dropzone
# chunks, 4 at once) against u2c too — copyparty's page uploads with up2k, the protocol u2c speaks, so u2c is the
# nearest like-for-like without a browser (benchmarks/browser.py measures the pages themselves); the sinks against
# the raw socket, the ceiling.
CASES = [
    Case("raw-socket", "raw", "raw socket → disk (ceiling)"),
    Case("granian-sink", "granian", "bare ASGI sink, granian, curl -T", "raw-socket"),
    Case("uvicorn-sink", "uvicorn", "bare ASGI sink, uvicorn, curl -T", "raw-socket"),
    Case("copyparty-u2c", "copyparty", "copyparty + u2c", "raw-socket"),
    Case("copyparty-curl", "copyparty", "copyparty, curl -T", "raw-socket"),
    Case("pfd-tus-1", "pyfiledrop", "pyfiledrop tus, 1 stream (pyfiledrop upload)", "copyparty-u2c"),
    Case("pfd-tus-4", "pyfiledrop", "pyfiledrop tus, 4 streams (pyfiledrop upload -j 4)", "copyparty-u2c"),
    Case("pfd-tus-auto", "pyfiledrop", "pyfiledrop tus, -j auto (pyfiledrop upload, the default)", "copyparty-u2c"),
    Case("pfd-curl", "pyfiledrop", "pyfiledrop curl -T", "copyparty-curl"),
    Case("pfd-dropzone", "pyfiledrop", "pyfiledrop Dropzone 8 MiB × 4", "copyparty-u2c"),
    Case("pfd-tuspy", "pyfiledrop", "pyfiledrop tus, tuspy client 8 MiB chunks", "copyparty-u2c"),
    Case("pfd-tusjs-4", "pyfiledrop", "pyfiledrop tus, node tus-js-client parallelUploads 4", "copyparty-u2c"),
]
PFD_TARGETS = ("pfd-tus-1", "pfd-tus-4", "pfd-curl", "pfd-dropzone")


def stored_file(server: Server, case: Case, data: Path) -> Path | None:
    files = [p for p in server.folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
             p.relative_to(server.folder).parts)]  # fmt: skip
    # One stored file per content: since 2026-12-08 it is also hard-linked under files/<name> (the named tree).
    sized = list(
        {(p.stat().st_dev, p.stat().st_ino): p for p in files if p.stat().st_size == data.stat().st_size}.values()
    )
    return sized[0] if len(sized) == 1 else None


def measure(case: Case, data: Path, sha: str, scratch: Path, server_args: list[str]) -> dict[str, Any]:
    folder = scratch / "storage"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    server = Server(case.server, folder, server_args if case.server == "pyfiledrop" else []).start()
    try:
        cpu_before = _cpu(server.pid)
        run = run_client(case.client(server, data), scratch)
        time.sleep(0.05)
        cpu_after = _cpu(server.pid)
        rss_sum, rss_max = _rss(server.pid)
        stored = stored_file(server, case, data)
        ok = run.code == 0 and stored is not None and sha256_of(stored) == sha
        reported = _reported_sha(case, run.stdout)
        if reported is not None and reported != sha:
            ok = False
        size = data.stat().st_size
        return {
            "case": case.name, "ok": ok, "code": run.code, "seconds": run.seconds,
            "mib_s": size / MIB / run.seconds, "server_cpu_s_per_gib": (cpu_after - cpu_before) / (size / (1 << 30)),
            "client_cpu_s_per_gib": run.cpu / (size / (1 << 30)), "server_rss_mib": rss_sum,
            "server_rss_max_process_mib": rss_max,
            "error": "" if ok else (run.stderr[-500:] or run.stdout[-500:] or "stored file missing or wrong sha256"),
            **_client_timings(case, run.stdout),
        }  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _client_timings(case: Case, stdout: str) -> dict[str, Any]:
    """tus-js-client's own figures: the final POST (concatenation) and the time to its success callback."""
    if not case.name.startswith("pfd-tusjs") or not stdout.strip():
        return {}
    with contextlib.suppress(ValueError, IndexError):
        line = json.loads(stdout.strip().splitlines()[-1])
        return {"final_post_s": line.get("finalPostSeconds"), "client_success_s": line.get("seconds")}
    return {}


def _cpu(pid: int) -> float:
    from procstat import cpu_seconds

    return cpu_seconds(pid)


def _rss(pid: int) -> tuple[float, float]:
    from procstat import peak_rss_mib

    return peak_rss_mib(pid)


def _reported_sha(case: Case, stdout: str) -> str | None:
    text = stdout.strip()
    if case.name in ("pfd-tus-1", "pfd-tus-4", "pfd-tus-auto", "pfd-dropzone") and text:
        try:
            return str(json.loads(text.splitlines()[-1])["sha256"])
        except (ValueError, KeyError):
            return ""
    return None


# -- the special cases: completion latency, RSS growth, many small uploads, profile --------------------------------------


def completion_latency(data: Path, scratch: Path, server_args: list[str], runs: int) -> list[float]:
    """Seconds from the last byte handed to the socket to the 'complete' answer (sha256 known), tus PATCH."""
    results = []
    for _ in range(runs):
        shutil.rmtree(scratch, ignore_errors=True)
        server = Server("pyfiledrop", scratch / "storage", server_args).start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
            size = data.stat().st_size
            conn.request("POST", "/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(size)})
            created = conn.getresponse()
            created.read()
            location, token = created.getheader("location") or "", created.getheader("x-pyfiledrop-token") or ""
            path = "/files/" + location.rstrip("/").rsplit("/", 1)[-1]
            conn.putrequest("PATCH", path)
            for k, v in {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Length": str(size),
                         "Content-Type": "application/offset+octet-stream"}.items():  # fmt: skip
                conn.putheader(k, v)
            conn.endheaders()
            with data.open("rb") as f:
                assert conn.sock is not None
                conn.sock.sendfile(f, 0, size)
            sent = time.perf_counter()
            answer = conn.getresponse()
            answer.read()
            answered = time.perf_counter()
            conn.request("GET", "/api/uploads/" + path.rsplit("/", 1)[-1], headers={"X-Pyfiledrop-Token": token})
            info = json.loads(conn.getresponse().read())
            conn.close()
            if answer.status == 204 and info.get("sha256"):
                results.append(answered - sent)
        finally:
            server.stop()
            shutil.rmtree(scratch, ignore_errors=True)
    return results


def many_small_runs(
    scratch: Path, server_args: list[str], runs: int, report: dict[str, Any], load_args: list[str]
) -> str:
    """``runs`` rounds of 200 × 1 MiB against both servers, alternating which goes first; the ratio of medians."""
    kinds = ("pyfiledrop", "copyparty")
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    # Each round's files stay until the last round is over. On ext4 without a journal (this VM's disk), making a
    # file within a minute or more of deleting others scans past the "recently deleted" inodes: deleting 200 files
    # per round made every later round's file creation slower, for both servers (perf: ext4 recently_deleted, 6 %
    # of the helper's CPU) — a cost of the benchmark's cleaning up, not of a server.
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        for r in range(runs):
            for kind in kinds if r % 2 == 0 else reversed(kinds):
                results[kind].append(many_small(kind, scratch / f"round-{r}-{kind}", server_args, load_args))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report["many_small"] = results

    def median(kind: str, key: str) -> float:
        values = sorted(float(run.get(key) or 0) for run in results[kind])
        return values[len(values) // 2]

    pf_runs = [float(run.get("files_per_s") or 0) for run in results["pyfiledrop"]]
    cp_runs = [float(run.get("files_per_s") or 0) for run in results["copyparty"]]
    ratios = [p / c for p, c in zip(pf_runs, cp_runs, strict=True) if c]
    p99 = [run.get("status_p99_ms") for run in results["pyfiledrop"]]
    page = {kind: [run.get("page_p99_ms") for run in results[kind]] for kind in kinds}
    rss = {kind: max(float(run.get("server_rss_peak_sampled_mib") or 0) for run in results[kind]) for kind in kinds}
    ok = [f"{run.get('stored_ok')}" for kind in kinds for run in results[kind]]
    client = "50 http.client threads" if "--threaded" in load_args else "one selector thread"
    line = (f"200 × 1 MiB from 50 clients (PUT; load client: {client}), median of {runs}: pyfiledrop {median('pyfiledrop', 'files_per_s'):.0f} "
            f"files/s, copyparty {median('copyparty', 'files_per_s'):.0f}; ratio "
            f"{median('pyfiledrop', 'files_per_s') / (median('copyparty', 'files_per_s') or float('inf')):.2f} "
            f"(per run {', '.join(f'{x:.2f}' for x in ratios)}); status p99 {p99} ms (p50 median "
            f"{median('pyfiledrop', 'status_p50_ms'):.1f} ms); GET / on a new connection every 5 ms, p99 per run: "
            f"pyfiledrop {page['pyfiledrop']} ms (p50 median {median('pyfiledrop', 'page_p50_ms'):.1f}), copyparty "
            f"{page['copyparty']} ms (p50 median {median('copyparty', 'page_p50_ms'):.1f}); peak RSS summed over the "
            f"server's processes, sampled every 10 ms: pyfiledrop {rss['pyfiledrop']:.1f} MiB, copyparty "
            f"{rss['copyparty']:.1f} MiB; stored ok {'/'.join(ok)} (targets ≥ 1.5×, GET / p99 < 100 ms, "
            f"peak RSS ≤ 64 MiB)")  # fmt: skip
    print(line, flush=True)
    return line


def many_small(kind: str, scratch: Path, server_args: list[str], load_args: list[str]) -> dict[str, Any]:
    """200 × 1 MiB from 50 clients (``load.py``) against a fresh server; files/s, status latency, files stored
    right, server CPU and peak RSS."""
    from procstat import PeakSampler

    scratch.mkdir(parents=True)
    # Start with nothing dirty in the page cache: GiBs written by the cases before (or 200 MiB by the other server's
    # round, which does not fsync) are flushed during the next round otherwise, and that round's fsyncs wait.
    os.sync()
    server = Server(kind, scratch / "storage", server_args if kind == "pyfiledrop" else []).start()
    try:
        # One upload of the same kind before the clock, to either server: the load measures a server that has seen
        # an upload, not its start-up (pyfiledrop starts its intake helper with its first small upload: ~40 ms,
        # during which it stores them itself; a first burst that finds no helper yet measured 1.39×, not 1.53×).
        warm_up = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        warm_up.request("PUT", "/warm-up.bin", body=os.urandom(1 << 20))
        warm_up.getresponse().read()
        warm_up.close()
        status_args: list[str] = []
        if kind == "pyfiledrop":  # an unfinished tus upload whose status (HEAD) is asked during the load
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("POST", "/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "100"})
            created = conn.getresponse()
            created.read()
            status_args = ["--status-path", "/files/" + (created.getheader("location") or "").rsplit("/", 1)[-1],
                           "--status-header", "Tus-Resumable:1.0.0"]  # fmt: skip
            conn.close()
        else:
            status_args = ["--status-path", "/?ls"]
        cpu_before = _cpu(server.pid)
        with PeakSampler(server.pid) as peak:  # summed over the server and its helper, sampled from outside
            run = run_client([str(BENCH_BIN / "python"), str(ROOT / "load.py"), server.url, "--files", "200",
                              "--clients", "50", "--page-path", "/", *status_args, *load_args], scratch,
                             timeout=600)  # fmt: skip
        cpu_after = _cpu(server.pid)
        result = json.loads(run.stdout.strip().splitlines()[-1]) if run.code == 0 else {"error": run.stderr[-500:]}
        stored = [p for p in server.folder.rglob("*load-*") if p.is_file() and ".partial" not in p.parts]
        stored = list({(p.stat().st_dev, p.stat().st_ino): p for p in stored}.values())  # hard links count once
        expected = result.pop("sha256", {}) or {}
        good = sum(1 for p in stored if sha256_of(p) == expected.get("load-" + p.name.rsplit("load-", 1)[-1]))
        result.update(kind=kind, stored_ok=good, server_cpu_s=cpu_after - cpu_before, server_rss_mib=_rss(server.pid)[0],
                      server_rss_peak_sampled_mib=peak.mib)  # fmt: skip
        return result
    finally:
        server.stop()
        _forget_pages(scratch)


def _forget_pages(folder: Path) -> None:
    """Give the page cache of a round's files back, as deleting them did: on this VM memory freed a while ago is
    handed back to the host (virtio-balloon free page reporting), and touching it again is slow — a round after
    which nothing was freed made copyparty, which writes through the page cache, ~35 % slower (pyfiledrop writes
    O_DIRECT from the same buffers and did not change)."""
    os.sync()  # only clean pages can be dropped
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                with path.open("rb") as file:
                    os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def profile(data: Path, sha: str, scratch: Path, server_args: list[str], out: Path) -> str:
    """Where the server's time goes during a tus single-stream upload: py-spy (Python frames, wall time of busy
    threads) and, when ``perf`` is installed, perf (CPU samples split by library: kernel copies, OpenSSL's
    sha256, the interpreter)."""
    from procstat import tree

    sections = []
    for tool in ("py-spy", "perf"):
        if tool == "perf" and shutil.which("perf") is None:
            sections.append("perf is not installed (apt-get install linux-perf): no CPU breakdown by library")
            continue
        shutil.rmtree(scratch, ignore_errors=True)
        server = Server("pyfiledrop", scratch / "storage", server_args).start()
        try:
            worker = tree(server.pid)[-1]
            raw = out.with_name(out.stem + (".folded" if tool == "py-spy" else ".perf.data"))
            if tool == "py-spy":
                args = [str(BENCH_BIN / "py-spy"), "record", "-p", str(worker), "-r", "250", "-f", "raw", "-o",
                        str(raw), "--threads", "--nonblocking", "-d", "600"]  # fmt: skip
            else:
                args = ["perf", "record", "-F", "499", "-g", "-p", str(worker), "-o", str(raw)]
            recorder = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            run = run_client(Case("pfd-tus-1", "pyfiledrop", "").client(server, data), scratch)
            recorder.send_signal(2)
            recorder.wait(60)
            title = f"tus 1 stream, {data.stat().st_size // MIB} MiB, {run.seconds:.2f} s"
            sections.append(summarize_profile(raw, title) if tool == "py-spy" else summarize_perf(raw, title))
        finally:
            server.stop()
            shutil.rmtree(scratch, ignore_errors=True)
    return "\n\n".join(sections)


def summarize_perf(raw: Path, title: str) -> str:
    lines = [f"perf, {title}: CPU samples of the server worker by library, then the top symbols"]
    for sort in ("dso", "sym"):
        report = subprocess.run(["perf", "report", "-i", str(raw), "--no-children", "--sort", sort, "--stdio", "-g",
                                 "none", "--percent-limit", "1.5"], capture_output=True, text=True, timeout=120)  # fmt: skip
        rows = [r for r in report.stdout.splitlines() if r.strip() and not r.startswith("#")]
        lines += [f"  {r.strip()}" for r in rows[:12]]
        lines.append("")
    lines.append("  (libcrypto = sha256; copy_folio_from_iter_atomic = pwritev into the page cache; _copy_to_iter = "
                 "socket receive; gup/iov = O_DIRECT writes; __memmove = copies of body pieces in Python)")  # fmt: skip
    return "\n".join(lines)


def summarize_profile(raw: Path, title: str) -> str:
    own: dict[str, int] = {}
    total = 0
    if not raw.exists():
        return "py-spy produced no profile (needs ptrace permission)"
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if leaf.startswith(("EpollSelector.select", "_worker (concurrent", "Condition.wait", "Thread.")):
            continue  # idle waits
        if leaf.startswith("thread ("):
            leaf = "threads without a Python frame (native code, waiting for the GIL)"
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    lines = [f"py-spy, {title}: {total} busy samples, own time per function"]
    for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:20]:
        lines.append(f"  {100 * count / max(total, 1):5.1f}%  {name}")
    return "\n".join(lines)


# -- report ----------------------------------------------------------------------------------------------------------


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for case in CASES:
        mine = [r for r in rows if r["case"] == case.name]
        good = [r for r in mine if r["ok"]]
        if not mine:
            continue
        entry: dict[str, Any] = {"label": case.label, "runs": len(mine), "ok_runs": len(good), "anchor": case.anchor}
        if good:
            speeds = [r["mib_s"] for r in good]
            entry.update(
                mib_s=statistics.median(speeds), mib_s_min=min(speeds), mib_s_max=max(speeds),
                server_cpu_s_per_gib=statistics.median(r["server_cpu_s_per_gib"] for r in good),
                client_cpu_s_per_gib=statistics.median(r["client_cpu_s_per_gib"] for r in good),
                server_rss_mib=max(r["server_rss_mib"] for r in good),
                server_rss_max_process_mib=max(r["server_rss_max_process_mib"] for r in good),
            )  # fmt: skip
        table[case.name] = entry
    u2c = table.get("copyparty-u2c", {}).get("mib_s")
    ceiling = table.get("raw-socket", {}).get("mib_s")
    for entry in table.values():
        if "mib_s" in entry:
            entry["x_u2c"] = entry["mib_s"] / u2c if u2c else None
            entry["x_ceiling"] = entry["mib_s"] / ceiling if ceiling else None
            anchor = table.get(entry["anchor"], {}).get("mib_s")
            entry["x_anchor"] = entry["mib_s"] / anchor if anchor else None
    return table


def print_table(table: dict[str, dict[str, Any]], size: int) -> str:
    head = (f"{'case':<50} {'MiB/s':>7} {'min–max':>11} {'anchor (like with like)':<24} {'×anchor':>7} "
            f"{'×ceil':>6} {'srv CPU':>8} {'cli CPU':>8} {'srv RSS':>8} {'sha ok':>6}")  # fmt: skip
    lines = [f"upload of {size // MIB} MiB over 127.0.0.1; median of runs; ×anchor = MiB/s ÷ the anchor's MiB/s in "
             "this run; CPU in s/GiB, RSS peak MiB (sum over the server's processes)", head, "-" * len(head)]  # fmt: skip
    for _name, e in table.items():
        if "mib_s" not in e:
            lines.append(f"{e['label']:<50} {'failed':>7} {'':>11} {e['anchor']:<24} {'':>7} {'':>6} {'':>8} "
                         f"{'':>8} {'':>8} {e['ok_runs']}/{e['runs']:>4}")  # fmt: skip
            continue
        fmt = lambda v, p=2: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
        lines.append(f"{e['label']:<50} {e['mib_s']:>7.0f} {e['mib_s_min']:>5.0f}–{e['mib_s_max']:<5.0f} "
                     f"{e['anchor'] or '–':<24} {fmt(e['x_anchor']):>7} {fmt(e['x_ceiling']):>6} "
                     f"{e['server_cpu_s_per_gib']:>8.2f} {e['client_cpu_s_per_gib']:>8.2f} {e['server_rss_mib']:>8.1f} "
                     f"{e['ok_runs']}/{e['runs']:>4}")  # fmt: skip
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def chart(table: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no chart", file=sys.stderr)
        return
    names = [n for n, e in table.items() if "mib_s" in e]
    speeds = [table[n]["mib_s"] for n in names]
    lows = [table[n]["mib_s"] - table[n]["mib_s_min"] for n in names]
    highs = [table[n]["mib_s_max"] - table[n]["mib_s"] for n in names]
    colors = ["#2b8a3e" if n.startswith("pfd") else "#868e96" if n == "raw-socket" else "#1c7ed6" for n in names]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 0.55 * len(names) + 2), gridspec_kw={"width_ratios": [3, 2]})
    y = range(len(names))
    ax.barh(y, speeds, xerr=[lows, highs], color=colors, capsize=3)
    ax.set_yticks(list(y), [table[n]["label"] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MiB/s (median, bars: min–max)")
    u2c = table.get("copyparty-u2c", {}).get("mib_s")
    ceiling = table.get("raw-socket", {}).get("mib_s")
    if u2c:
        ax.axvline(2 * u2c, color="#e8590c", linestyle="--", label="target: 2× copyparty+u2c")
    if ceiling:
        ax.axvline(0.45 * ceiling, color="#862e9c", linestyle=":", label="target: 0.45× raw ceiling")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=10)
    cpu = [table[n]["server_cpu_s_per_gib"] for n in names]
    ax2.barh(y, cpu, color=colors)
    ax2.set_yticks(list(y), [""] * len(names))
    ax2.invert_yaxis()
    ax2.axvline(1.0, color="#e8590c", linestyle="--", label="target ≤ 1.0 (pyfiledrop)")
    ax2.set_xlabel("server CPU s/GiB")
    ax2.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- main -------------------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="1 GiB, 3 runs, and the 4 GiB peak-RSS case")
    parser.add_argument("--size", type=int, help="MiB per upload (quick 256, full 1024)")
    parser.add_argument("--runs", type=int, help="runs per case (quick 2, full 3)")
    parser.add_argument("--small-rounds", type=int, default=7,
                        help="rounds of the many-small-uploads case (each under a second, so more than --runs)")  # fmt: skip
    parser.add_argument("--cases", help=f"comma-separated subset of {','.join(c.name for c in CASES)}")
    parser.add_argument(
        "--skip", default="", help="comma-separated groups to skip: throughput,latency,rss,many,profile"
    )
    parser.add_argument("--server-args", default="", help="extra flags for pyfiledrop serve, e.g. '--durability chunk'")
    parser.add_argument("--load-threaded", action="store_true",
                        help="many small uploads: 50 http.client threads as the load client (before 2026-12-04)")  # fmt: skip
    parser.add_argument("--pyfiledrop-src", default="",
                        help="run the pyfiledrop server from this src folder (PYTHONPATH), to measure a patch")  # fmt: skip
    args = parser.parse_args(argv)
    bootstrap(argv)
    global PFD_SRC
    PFD_SRC = str(Path(args.pyfiledrop_src).resolve()) if args.pyfiledrop_src else ""
    size = (args.size or (1024 if args.full else 256)) * MIB
    runs = args.runs or (3 if args.full else 2)
    skip = set(filter(None, args.skip.split(",")))
    server_args = args.server_args.split()
    wanted = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    if shutil.which("curl") is None:
        sys.exit("curl is needed (apt-get install curl)")
    free = shutil.disk_usage(WORK.parent).free
    small_files = args.small_rounds * 2 * 201 * MIB  # the small-file rounds keep their files until the case ends
    if free < max(size * (6 if args.full else 4), small_files) + 2 * (1 << 30):
        sys.exit(f"not enough free disk for {size // MIB} MiB cases: {free // MIB} MiB free")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    scratch = WORK / "run"
    data, sha = make_data(size)
    report: dict[str, Any] = {"when": stamp, "size_mib": size // MIB, "runs": runs, "mode": "full" if args.full else "quick",
                              "server_args": server_args, "pyfiledrop_src": PFD_SRC or "repo", "machine": _machine()}  # fmt: skip
    text_parts = []

    if "throughput" not in skip:
        rows: list[dict[str, Any]] = []
        # A warm-up run so the first measured run does not pay for cold page cache and imports.
        measure(wanted[0], data, sha, scratch, server_args)
        for r in range(runs):
            for case in wanted if r % 2 == 0 else list(reversed(wanted)):
                row = measure(case, data, sha, scratch, server_args)
                row["run"] = r
                rows.append(row)
                status = "ok" if row["ok"] else f"FAILED: {row['error'][:200]}"
                final = f"  final POST {row['final_post_s'] * 1000:.0f} ms" if row.get("final_post_s") else ""
                print(f"  run {r + 1}/{runs} {case.name:<15} {row['mib_s']:7.0f} MiB/s  server {row['server_cpu_s_per_gib']:.2f} "
                      f"s/GiB  client {row['client_cpu_s_per_gib']:.2f} s/GiB  RSS {row['server_rss_mib']:.0f} MiB{final}  {status}",
                      flush=True)  # fmt: skip
        table = summarize(rows)
        report["runs_raw"] = rows
        report["table"] = table
        text_parts.append(print_table(table, size))
        chart(table, RESULTS / f"bench-{stamp}.png", f"{size // MIB} MiB upload over 127.0.0.1, {runs} runs, {stamp}")
        shutil.copyfile(RESULTS / f"bench-{stamp}.png", RESULTS / "latest.png")

    if "latency" not in skip:
        latency = completion_latency(data, scratch, server_args, max(runs, 2))
        report["completion_latency_s"] = latency
        line = (f"completion latency (last byte sent → 'complete' answered, sha256 known), {size // MIB} MiB tus PATCH: "
                + ", ".join(f"{v * 1000:.0f} ms" for v in latency) + "  (target ≤ 200 ms for 1 GiB)")  # fmt: skip
        print(line, flush=True)
        text_parts.append(line)

    if "rss" not in skip:
        rss = {}
        for scale in (1, 4):
            existed = (DATA / f"random-{size * scale // MIB}MiB.bin").exists()
            big, big_sha = make_data(size * scale) if scale > 1 else (data, sha)
            row = measure(Case("pfd-tus-1", "pyfiledrop", ""), big, big_sha, scratch, server_args)
            rss[f"{size * scale // MIB} MiB"] = {"server_rss_mib": row["server_rss_mib"], "ok": row["ok"],
                                                 "max_process_mib": row["server_rss_max_process_mib"],
                                                 "mib_s": row["mib_s"]}  # fmt: skip
            if scale > 1 and not existed:  # only the file made for this case: bounded disk use
                big.unlink(missing_ok=True)
                big.with_suffix(".sha256").unlink(missing_ok=True)
        report["rss_growth"] = rss
        line = (
            "server peak RSS (sum over processes / largest process), tus 1 stream: "
            + ", ".join(f"{k}: {v['server_rss_mib']:.1f} / {v['max_process_mib']:.1f} MiB" for k, v in rss.items())
            + "  (target ≤ 64 MiB, no growth)"
        )
        print(line, flush=True)
        text_parts.append(line)

    if "many" not in skip:
        load_args = ["--threaded"] if args.load_threaded else []
        text_parts.append(many_small_runs(scratch, server_args, args.small_rounds, report, load_args))

    if "profile" not in skip:
        summary = profile(data, sha, scratch, server_args, RESULTS / f"profile-{stamp}.txt")
        (RESULTS / f"profile-{stamp}.txt").write_text(summary + "\n")
        report["profile"] = summary
        print(summary, flush=True)

    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / f"bench-{stamp}.txt").write_text("\n\n".join(text_parts) + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nresults: {RESULTS}/bench-{stamp}.json, .txt, .png", flush=True)
    return 0


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "load": os.getloadavg()}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
