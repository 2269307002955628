"""1, 2 and 3 pyfiledrop replicas on this machine behind nginx (the tested config, docs/nginx/pyfiledrop.conf),
and one process without nginx, in the same run:

    .venv/bin/python benchmarks/replicas.py [--size 512] [--replicas 1,2,3] [--small-files 400]
                                            [--serve-args "--database postgresql://… --storage s3://…"]
                                            [--backends postgres+s3]

For each set-up: ``pyfiledrop upload -j 4`` and ``curl -T`` of one random file (MiB/s from the client's wall
time), the servers' CPU per GiB (utime+stime summed over every replica's process tree, nginx's apart, and with
``--backends postgres+s3`` the throw-away PostgreSQL's and SeaweedFS's apart too), and
many small files (``load.py``: 1 MiB PUTs over 50 keep-alive connections, files/s). Every stored file's sha256 is
checked (the clients compare it with their own, and the small files' answers are checked by load.py).

Replicas share one storage folder and its SQLite database (``--serve-args`` replaces them, e.g. with PostgreSQL
and S3). ``--backends postgres+s3`` starts a throw-away PostgreSQL cluster and SeaweedFS S3 server itself (the
tests' tests/pg.py and tests/weed.py, loopback only) and gives each set-up behind nginx a fresh database and bucket,
each replica its own ``--state-dir``; the single process without nginx stays on local disk + SQLite, the baseline. On a 2-core machine shared with other work, more replicas cannot add cores: what this shows is the cost
of the extra hop through nginx and of running several processes, not scaling — see docs/deploy.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent))  # tests/pg.py and tests/weed.py for --backends postgres+s3
from procstat import cpu_seconds

ROOT = Path(__file__).resolve().parent
TEMPLATE = ROOT.parent / "docs" / "nginx" / "pyfiledrop.conf"
PYTHON = sys.executable
MIB = 1 << 20
ADMIN = "bench-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60  # a replica on S3 checks its bucket first
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        try:
            if httpx.get(f"{url}/api/config", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


class Setup:
    """``count`` replicas on one storage folder, behind nginx unless ``direct`` (then one process, no nginx)."""

    def __init__(self, scratch: Path, count: int, direct: bool, serve_args: list[str],
                 store_pids: list[int] | None = None) -> None:  # fmt: skip
        self.scratch, self.count, self.direct, self.serve_args = scratch, count, direct, serve_args
        self.store_pids = store_pids or []  # PostgreSQL and SeaweedFS, when they are this machine's
        self.replicas: list[tuple[int, subprocess.Popen[bytes]]] = []
        self.nginx: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Setup:
        self.scratch.mkdir(parents=True)
        for index in range(self.count):
            port = free_port()
            own = [arg.replace("@SCRATCH@", str(self.scratch)).replace("@REPLICA@", str(index))
                   for arg in self.serve_args]  # fmt: skip
            args = [PYTHON, "-m", "pyfiledrop", "serve", "--host", "127.0.0.1", "-p", str(port), "-s",
                    str(self.scratch / "storage"), "--admin-token", ADMIN, "--create-rate", "100000",
                    "--allow-downloads", *([] if self.direct else ["--behind-proxy"]), *own]  # fmt: skip
            with (self.scratch / f"replica-{index}.log").open("wb") as log:
                process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            wait_ready(f"http://127.0.0.1:{port}", process, f"replica {index}")
            self.replicas.append((port, process))
        if self.direct:
            self.url = f"http://127.0.0.1:{self.replicas[0][0]}"
            return self
        self.url = f"http://127.0.0.1:{self._start_nginx()}"
        return self

    def _start_nginx(self) -> int:
        prefix = self.scratch / "nginx"
        prefix.mkdir()
        port = free_port()
        servers = "\n    ".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p, _ in self.replicas)
        site = TEMPLATE.read_text().replace("@REPLICAS@", servers).replace("@LISTEN@", f"listen 127.0.0.1:{port};")
        (prefix / "pyfiledrop.conf").write_text(site)
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        temp = "".join(f"{kind}_temp_path {prefix / kind}; " for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))  # fmt: skip
        (prefix / "nginx.conf").write_text(
            f"{user} daemon off; worker_processes 1; pid {prefix / 'nginx.pid'}; error_log {prefix / 'error.log'};\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{ access_log off; {temp} include {prefix / 'pyfiledrop.conf'}; }}\n"
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e",
                                       str(prefix / "error.log")], start_new_session=True)  # fmt: skip
        wait_ready(f"http://127.0.0.1:{port}", self.nginx, "nginx")
        return port

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds so far: all replicas' process trees, nginx's, and the stores' (database, object store)."""
        replicas = sum(cpu_seconds(process.pid) for _, process in self.replicas)
        stores = sum(cpu_seconds(pid) for pid in self.store_pids)
        return replicas, cpu_seconds(self.nginx.pid) if self.nginx is not None else 0.0, stores

    def stop(self) -> None:
        processes = [process for _, process in self.replicas] + ([self.nginx] if self.nginx else [])
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT if process is not self.nginx else signal.SIGQUIT)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        shutil.rmtree(self.scratch, ignore_errors=True)


def timed(setup: Setup, command: list[str], size: int) -> dict[str, Any]:
    before, nginx_before, stores_before = setup.cpu()
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.monotonic() - started
    after, nginx_after, stores_after = setup.cpu()
    if result.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed: {result.stderr[-500:]}{result.stdout[-500:]}")
    gib = size / (1 << 30)
    return {"mib_s": size / MIB / seconds, "seconds": seconds, "server_cpu_s_per_gib": (after - before) / gib,
            "nginx_cpu_s_per_gib": (nginx_after - nginx_before) / gib,
            "stores_cpu_s_per_gib": (stores_after - stores_before) / gib, "output": result.stdout}  # fmt: skip


def upload_client(setup: Setup, data: Path, sha256: str, scratch: Path) -> dict[str, Any]:
    command = [PYTHON, "-m", "pyfiledrop", "upload", "--url", setup.url, "-j", "4", "--json", "-q", "--state",
               str(scratch / "client-state.json"), str(data)]  # fmt: skip
    run = timed(setup, command, data.stat().st_size)
    answer = json.loads(run.pop("output").splitlines()[-1])
    run["sha_ok"] = answer["sha256"] == sha256
    return run


def curl(setup: Setup, data: Path, sha256: str) -> dict[str, Any]:
    command = ["curl", "-sS", "--fail-with-body", "-H", "Accept: application/json", "-T", str(data),
               f"{setup.url}/{data.name}"]  # fmt: skip
    run = timed(setup, command, data.stat().st_size)
    run["sha_ok"] = json.loads(run.pop("output"))["sha256"] == sha256
    return run


def small_files(setup: Setup, files: int) -> dict[str, Any]:
    command = [PYTHON, str(ROOT / "load.py"), setup.url, "--files", str(files), "--clients", "50"]
    run = timed(setup, command, files * MIB)
    load = json.loads(run.pop("output").splitlines()[-1])
    per_file = files * MIB / (1 << 30) / files * 1000  # s/GiB → ms/file
    return {"files_s": load["files_per_s"], "errors": load["errors"],
            "server_cpu_ms_per_file": run["server_cpu_s_per_gib"] * per_file,
            "stores_cpu_ms_per_file": run["stores_cpu_s_per_gib"] * per_file}  # fmt: skip


def keep_logs(scratch: Path, name: str) -> None:
    """The replicas' and nginx's logs of a set-up that answered an error, kept in benchmarks/results/."""
    folder = ROOT / "results" / f"replicas-logs-{time.strftime('%Y%m%d-%H%M%S')}-{name.replace(' ', '-')}"
    folder.mkdir(parents=True)
    for log in [*scratch.glob("replica-*.log"), scratch / "nginx" / "error.log"]:
        if log.exists():
            shutil.copy(log, folder / log.name)
    print(f"logs of {name}: {folder}", file=sys.stderr)


def random_file(folder: Path, size_mib: int) -> tuple[Path, str]:
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"random-{size_mib}MiB.bin"
    digest = hashlib.sha256()
    if not path.exists():
        with path.open("wb") as out:
            for _ in range(size_mib):
                block = os.urandom(MIB)
                out.write(block)
                digest.update(block)
        return path, digest.hexdigest()
    with path.open("rb") as source:
        return path, hashlib.file_digest(source, "sha256").hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="MiB of the large file")
    parser.add_argument("--replicas", default="1,2,3", help="replica counts behind nginx")
    parser.add_argument("--small-files", type=int, default=400, help="1 MiB files in the small-file case")
    parser.add_argument("--serve-args", default="", help="extra flags for every replica (e.g. --database …)")
    parser.add_argument("--work", default=str(ROOT / ".work"), help="folder for the data file")
    parser.add_argument(
        "--backends",
        choices=["local", "postgres+s3"],
        default="local",
        help="postgres+s3: start a throw-away PostgreSQL and SeaweedFS for the replicas behind nginx",
    )
    args = parser.parse_args()
    with Backends(args.backends) as backends:
        run(args, backends)


class Backends:
    """The stores of the set-ups behind nginx: as ``--serve-args`` says, or a throw-away PostgreSQL cluster and
    SeaweedFS server (started here, stopped at the end), a fresh database and bucket per set-up."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.postgres: Any = None
        self.s3: Any = None

    def __enter__(self) -> Backends:
        if self.kind == "postgres+s3":
            from tests.pg import Cluster
            from tests.weed import S3Server

            self.postgres = Cluster.start()
            self.s3 = S3Server().start()
            os.environ.update(self.s3.environment())  # the replicas find the keys the standard way
        return self

    def args(self) -> list[str]:
        if self.kind != "postgres+s3":
            return []
        return ["--database", self.postgres.database("bench"), "--storage", f"s3://{self.s3.new_bucket()}/drop",
                "--s3-endpoint", self.s3.endpoint, "--state-dir", "@SCRATCH@/state-@REPLICA@"]  # fmt: skip

    def pids(self) -> list[int]:
        return [server.process.pid for server in (self.postgres, self.s3) if server is not None and server.process]

    def __exit__(self, *_: object) -> None:
        if self.s3 is not None:
            self.s3.stop()
        if self.postgres is not None:
            self.postgres.stop()


def run(args: argparse.Namespace, backends: Backends) -> None:
    data, sha256 = random_file(Path(args.work) / "data", args.size)
    where = "" if backends.kind == "local" else f" ({backends.kind})"
    setups: list[tuple[str, int, bool]] = [("1 process, no nginx", 1, True)]
    setups += [(f"{n} replica{'s' if n > 1 else ''} + nginx{where}", n, False)
               for n in map(int, args.replicas.split(","))]  # fmt: skip
    results: dict[str, Any] = {"size_mib": args.size, "serve_args": args.serve_args, "cpus": os.cpu_count(),
                               "backends": backends.kind, "setups": {}}  # fmt: skip
    for name, count, direct in setups:
        scratch = Path(tempfile.mkdtemp(prefix="pfd-replicas-")) / "run"
        serve_args = shlex.split(args.serve_args) + ([] if direct else backends.args())
        setup = Setup(scratch, count, direct, serve_args, [] if direct else backends.pids()).start()
        try:
            results["setups"][name] = {
                "upload -j 4": upload_client(setup, data, sha256, scratch),
                "curl -T": curl(setup, data, sha256),
                "small files": small_files(setup, args.small_files),
            }
            if results["setups"][name]["small files"]["errors"]:
                keep_logs(scratch, name)
        finally:
            setup.stop()
        print(f"{name}: {json.dumps(results['setups'][name])}", file=sys.stderr, flush=True)
    print_table(results)
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / f"replicas-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))


def print_table(results: dict[str, Any]) -> None:
    stores = results["serve_args"] or "(local storage + SQLite)"
    if results.get("backends", "local") != "local":
        stores = f"{stores}; behind nginx: {results['backends']} (throw-away servers on this machine)"
    print(f"\n{results['size_mib']} MiB file; small files: 1 MiB each over 50 connections; {results['cpus']} cores; "
          f"serve args: {stores}")  # fmt: skip
    print(f"{'set-up':36} {'upload -j4 MiB/s':>17} {'cpu s/GiB':>10} {'curl MiB/s':>11} {'cpu s/GiB':>10} "
          f"{'nginx s/GiB':>11} {'stores s/GiB':>12} {'small files/s':>14} {'cpu ms/file':>12} {'stores ms/file':>14} "
          "sha")  # fmt: skip
    for name, r in results["setups"].items():
        up, put, small = r["upload -j 4"], r["curl -T"], r["small files"]
        ok = "ok" if up["sha_ok"] and put["sha_ok"] and not small["errors"] else "BAD"
        print(f"{name:36} {up['mib_s']:17.0f} {up['server_cpu_s_per_gib']:10.2f} {put['mib_s']:11.0f} "
              f"{put['server_cpu_s_per_gib']:10.2f} {put['nginx_cpu_s_per_gib']:11.2f} "
              f"{put.get('stores_cpu_s_per_gib', 0.0):12.2f} {small['files_s']:14.0f} "
              f"{small['server_cpu_ms_per_file']:12.2f} {small.get('stores_cpu_ms_per_file', 0.0):14.2f} {ok}")  # fmt: skip


if __name__ == "__main__":
    main()
