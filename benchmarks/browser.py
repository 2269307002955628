"""Uploads from a real browser: headless Chromium (Debian's, driven by Playwright as tests/browser does) sends one file
over loopback through

  page          our page (/), default settings, with its timing marks on (uploader.js, ``pyfiledrop:timing``)
  page-NAME     the same page with another uploader.js (``--alt NAME=FILE``, repeatable), for A/B in one run
  uppy          Uppy 6 (@uppy/core + @uppy/tus) with its defaults, on a page of another origin
  uppy-4        the same with ``parallelUploads: 4`` (tus concatenation)
  tusjs-4       tus-js-client in the page, ``parallelUploads: 4``
  fetch-1       the ceiling: one ``fetch`` PUT of the whole File to a sink that discards (browser_sink.py)
  fetch-4       4 parallel ``fetch`` PUTs of the File's quarters to the same sink

Wall time is measured here, outside the browser: from the moment the upload is started (the file given to the
input, or the page's function called) until the page learns that the server has the file (our page's row turns
"done", the tus client's success, the sink's answers). CPU: utime+stime of the server's process tree (pyfiledrop,
or the sink for the fetch rows) and of Chromium's process tree, read before and after.

    .venv/bin/python benchmarks/browser.py --size 512 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
import procstat

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "tests" / "interop" / "js" / "node_modules"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
VARIANTS = ["page", "uppy", "uppy-4", "tusjs-4", "fetch-1", "fetch-4"]
MiB = 1 << 20
GiB = 1 << 30
TIMEOUT_MS = 600_000
ADMIN = "bench-admin-token-0123456789"


@dataclass
class Sample:
    seconds: float
    server_cpu: float
    browser_cpu: float
    phases: dict[str, float] = field(default_factory=dict)  # name -> total ms of the page's measures


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], ready: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A server in its own process group, ready when ``ready`` (a URL) answers."""
    import urllib.request

    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"{args[:3]} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(ready, timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{args[:3]} did not start, see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)


def chromium_cpu() -> float:
    """CPU of every Chromium process started under this benchmark (the Playwright driver's children)."""
    pids = procstat.tree(os.getpid())
    roots = []
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            parent_comm = Path(f"/proc/{parent}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("chrom") and not parent_comm.startswith("chrom"):
            roots.append(pid)
    return sum(procstat.cpu_seconds(pid) for pid in roots)


def restamp(path: Path, stamp: int) -> str:
    """New first bytes for every run, so the server never finds the file already stored (deduplication would
    drop the new copy and skew its CPU); returns the file's sha256."""
    with path.open("r+b") as file:
        file.write(stamp.to_bytes(16, "big"))
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def server_json(url: str, method: str = "GET") -> object:
    import urllib.request

    request = urllib.request.Request(url, method=method, headers={"X-Pyfiledrop-Token": ADMIN})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


def check_and_clear(server: str, sha256: str) -> None:
    """The stored file is the source (the sha256 the server computed), then every upload goes (outside the clock)."""
    listed = server_json(f"{server}/api/uploads?all=1")
    uploads = listed["uploads"] if isinstance(listed, dict) else []
    done = [u for u in uploads if u.get("complete")]
    if not any(u.get("sha256") == sha256 for u in done):
        raise RuntimeError(f"no complete upload with sha256 {sha256}: {[u.get('sha256') for u in done]}")
    for upload in uploads:
        server_json(f"{server}/api/uploads/{upload['id']}", "DELETE")


def make_file(folder: Path, size: int) -> Path:
    path = folder / "upload.bin"
    with path.open("wb") as out:
        for _ in range(size // MiB):
            out.write(os.urandom(MiB))
        out.write(os.urandom(size % MiB))
    return path


class Bench:
    def __init__(self, browser: Browser, source: Path, server: str, server_pid: int, sink: str, sink_pid: int,
                 alternatives: dict[str, Path]) -> None:  # fmt: skip
        self.browser = browser
        self.source = source
        self.server, self.server_pid = server, server_pid
        self.sink, self.sink_pid = sink, sink_pid
        self.alternatives = {name: path.read_text() for name, path in alternatives.items()}

    def run(self, variant: str) -> Sample:
        context = self.browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            if variant.startswith("page"):
                return self._our_page(page, self.alternatives.get(variant.removeprefix("page-")))
            return self._other_page(page, variant)
        finally:
            context.close()

    def _measure(self, page: Page, pid: int, go: object, done: object) -> Sample:
        server0, browser0 = procstat.cpu_seconds(pid), chromium_cpu()
        began = time.perf_counter()
        go()  # type: ignore[operator]
        done()  # type: ignore[operator]
        seconds = time.perf_counter() - began
        return Sample(seconds, procstat.cpu_seconds(pid) - server0, chromium_cpu() - browser0)

    def _our_page(self, page: Page, uploader: str | None) -> Sample:
        if uploader is not None:
            # Routed only while the page loads: a route left on would pass every upload request through Playwright.
            page.route("**/static/uploader.js", lambda route: route.fulfill(
                body=uploader, content_type="text/javascript", headers={"cache-control": "no-store"}))  # fmt: skip
        page.goto(f"{self.server}/")
        page.wait_for_selector("body[data-ready=true]")
        page.unroute_all()
        page.evaluate(
            "localStorage.clear(); localStorage.setItem('pyfiledrop:timing', '1'); performance.clearMeasures()"
        )
        sample = self._measure(
            page, self.server_pid,
            lambda: page.set_input_files("#file-input", str(self.source)),
            lambda: page.wait_for_selector("#active-list .upload.done", timeout=TIMEOUT_MS),
        )  # fmt: skip
        measures = page.evaluate("performance.getEntriesByType('measure').map((m) => [m.name, m.duration])")
        for name, duration in measures:
            sample.phases[name] = sample.phases.get(name, 0.0) + duration
        return sample

    def _other_page(self, page: Page, variant: str) -> Sample:
        page.goto(f"{self.sink}/page.html")
        page.set_input_files("#file", str(self.source))
        endpoint = f"{self.server}/files/"
        match variant:
            case "uppy":
                call, pid = f"uppy({endpoint!r}, 0)", self.server_pid
            case "uppy-4":
                call, pid = f"uppy({endpoint!r}, 4)", self.server_pid
            case "tusjs-4":
                call, pid = f"tusjs({endpoint!r}, 4)", self.server_pid
            case "fetch-1":
                call, pid = "sink(1)", self.sink_pid
            case "fetch-4":
                call, pid = "sink(4)", self.sink_pid
            case _:
                raise ValueError(variant)
        holder: list[object] = []
        return self._measure(page, pid, lambda: holder.append(page.evaluate(call)), lambda: None)


def phase_text(samples: list[Sample]) -> str:
    """The page's own marks: median per run of each phase's total, and requests in flight on average."""
    if not samples or not samples[0].phases:
        return ""
    names = sorted({name for sample in samples for name in sample.phases})
    parts = []
    for name in names:
        total = statistics.median(sample.phases.get(name, 0.0) for sample in samples)
        parts.append(f"{name} {total / 1000:.2f}s")
    sends = [s.phases.get("send", 0.0) / 1000 / s.seconds for s in samples if s.seconds]
    if sends:
        parts.append(f"in flight {statistics.median(sends):.1f}")
    return ", ".join(parts)


def report(results: dict[str, list[Sample]], size: int) -> None:
    gib = size / GiB
    speed = {name: statistics.median(size / MiB / s.seconds for s in samples) for name, samples in results.items()}
    print(f"\n{size // MiB} MiB, medians of {max(len(s) for s in results.values())} runs (interleaved)")
    print(f"{'variant':<10} {'MiB/s':>7} {'server s/GiB':>13} {'browser s/GiB':>14}  where the page's time goes")
    for name, samples in results.items():
        server = statistics.median(s.server_cpu / gib for s in samples)
        browser = statistics.median(s.browser_cpu / gib for s in samples)
        print(f"{name:<10} {speed[name]:>7.0f} {server:>13.2f} {browser:>14.2f}  {phase_text(samples)}")
    uppy = max((speed[name] for name in ("uppy", "uppy-4") if name in speed), default=0.0)
    for name in (name for name in speed if name.startswith("page")):
        line = [f"{name}:"]
        for anchor in ("fetch-4", "fetch-1"):
            if anchor in speed:
                line.append(f"{speed[name] / speed[anchor]:.2f} × {anchor}")
        if uppy:
            line.append(f"{speed[name] / uppy:.2f} × best Uppy")
        print("  ".join(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; each prints the median (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)}")  # fmt: skip
    parser.add_argument(
        "--alt",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="another uploader.js for the row page-NAME (e.g. from git show main:src/pyfiledrop/...)",
    )
    parser.add_argument("--server-args", default="", help="extra flags for pyfiledrop serve")
    options = parser.parse_args()
    variants = [v.strip() for v in options.variants.split(",") if v.strip()]
    if unknown := {v for v in variants if v not in VARIANTS and not v.startswith("page-")}:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    alternatives = {name: Path(path) for name, _, path in (alt.partition("=") for alt in options.alt)}
    variants += [f"page-{name}" for name in alternatives if f"page-{name}" not in variants]
    if not (MODULES / "uppy" / "dist" / "uppy.min.js").is_file():
        sys.exit("run `npm ci` in tests/interop/js first (the tus-js-client and Uppy browser bundles)")
    with tempfile.TemporaryDirectory(prefix="pfd-browser-bench-") as work:
        folder = Path(work)
        size = options.size * MiB
        source = make_file(folder, size)
        port, sink_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
        server = start([sys.executable, "-m", "pyfiledrop", "serve", "--host", "127.0.0.1", "-p", str(port),
                        "-s", str(folder / "storage"), "--admin-token", ADMIN,
                        "--max-size", str(4 * options.size + 64), *options.server_args.split()],
                       f"http://127.0.0.1:{port}/api/config", folder / "server.log", env)  # fmt: skip
        sink = start([sys.executable, str(Path(__file__).with_name("browser_sink.py")), str(sink_port), str(MODULES)],
                     f"http://127.0.0.1:{sink_port}/page.html", folder / "sink.log")  # fmt: skip
        results: dict[str, list[Sample]] = {name: [] for name in variants}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                bench = Bench(browser, source, f"http://127.0.0.1:{port}", server.pid, f"http://127.0.0.1:{sink_port}",
                              sink.pid, alternatives)  # fmt: skip
                stamp = 0
                for round_ in range(options.runs):
                    for name in variants:
                        stamp += 1
                        sha256 = restamp(source, stamp)
                        os.sync()  # nothing dirty from the run before
                        sample = bench.run(name)
                        if not name.startswith("fetch"):
                            check_and_clear(bench.server, sha256)
                        results[name].append(sample)
                        print(f"round {round_ + 1} {name:<10} {size / MiB / sample.seconds:7.0f} MiB/s "
                              f"server {sample.server_cpu / (size / GiB):.2f} browser "
                              f"{sample.browser_cpu / (size / GiB):.2f} s/GiB", flush=True)  # fmt: skip
                browser.close()
        finally:
            stop(server)
            stop(sink)
        report(results, size)


if __name__ == "__main__":
    main()
