"""The third-party tus 1.0 conformance suite (sagikazarmark/tus-conformance-tests, 123 Hurl files) against a real
``pyfiledrop serve``, through the vendored runner (tests/conformance/tus/README.md).

Counted: core and every extension the server advertises in Tus-Extension. The best-practice ``opt-*`` tests run
and are reported, not counted. The score goes to test-artifacts/ and to the test's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "tus" / "hurlrun.py"
SUITE = HERE / "tus" / "suite"
ARTIFACTS = HERE.parents[1] / "test-artifacts"
INFORMATIONAL = "*/opt-*"
# Everything pyfiledrop offers; the runner counts exactly what the server advertises, so this list only guards
# against an extension silently dropping out of Tus-Extension (and so out of the count).
ADVERTISED = ["creation", "creation-with-upload", "creation-defer-length", "termination", "checksum",
              "expiration", "concatenation"]  # fmt: skip


def run_suite(server: ServerProcess, report: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    args = [sys.executable, str(RUNNER), "--base-url", f"{server.url}/files/", "--advertised-only",
            "--informational", INFORMATIONAL, "--json", str(report), "--timeout", "20", "--test-timeout", "60",
            "--max-time", "300", "-q"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=360, check=False)
    if not report.exists():
        raise AssertionError(f"the runner wrote no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done, json.loads(report.read_text())


def score_text(report: dict[str, Any]) -> str:
    counted = report["summary"]["counted"]
    tests = report["tests"]
    informational = [test for test in tests if test["informational"]]
    passed_informational = sum(test["status"] == "PASS" for test in informational)
    failures = [f"  {test['path']}: {test['reason']}" for test in tests
                if not test["informational"] and test["status"] != "PASS"]  # fmt: skip
    optional = [f"  {test['status']:<5} {test['path']}" + (f": {test['reason']}" if test["reason"] else "")
                for test in informational]  # fmt: skip
    lines = [
        f"tus 1.0 conformance (suite {report['suite_commit'][:12]}): "
        f"{counted['passed']}/{counted['total']} counted passed, {counted['failed']} failed; "
        f"opt-* best practice: {passed_informational}/{len(informational)}",
        f"advertised: {', '.join(report['advertised'] or [])}",
        "counted failures:",
        *failures,
        "informational (opt-*):",
        *optional,
    ]
    return "\n".join(lines) + "\n"


def test_the_tus_conformance_suite_passes_every_counted_test(
    make_server: type[ServerProcess], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (SUITE / "COMMIT").read_text().strip() and (SUITE / "LICENSE").exists()
    server = make_server(tmp_path / "storage").start()
    ARTIFACTS.mkdir(exist_ok=True)
    done, report = run_suite(server, ARTIFACTS / "tus-conformance.json")
    score = score_text(report)
    (ARTIFACTS / "tus-conformance.txt").write_text(score + "\n" + done.stdout)
    with capsys.disabled():  # the score is shown in every run, not only when the test fails
        print("\n" + score.splitlines()[0])
    assert report["advertised"] == ADVERTISED
    counted = report["summary"]["counted"]
    # The suite has 27 core tests and 61 in the advertised extensions' folders that are not opt-*.
    assert counted["total"] == 88, score
    assert counted["failed"] == 0, f"{score}\n{done.stdout[-4000:]}\nserver log:\n{server.log()[-4000:]}"
    assert done.returncode == 0, done.stdout[-2000:]
