"""The crash loop of tests/faults/test_crash_loop.py, as long as you like (on demand, not in CI).

    .venv/bin/python benchmarks/soak/crash_loop.py --kills 500 --seconds 1800 [--seed N] [--jobs 9] [--largest 3M]

kill -9 of the real server (the shipped CLI and its own HTTP server) at random moments of tus, Dropzone and PUT uploads with
deduplication, expiry sweeps and deletes; after each restart every check of tests/faults/crashkit.py must pass.
Prints "kills survived: N" and exits 1 at the first failed check (the seed is printed to replay it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.faults.crashkit import run_crash_loop  # noqa: E402


def size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=9, help="client threads (tus, Dropzone, PUT in turn)")
    parser.add_argument("--contents", type=int, default=6, help="distinct files: the rest are duplicates")
    parser.add_argument("--largest", type=size, default=3 << 20, help="largest file, e.g. 3M")
    parser.add_argument("--durability", choices=("chunk", "file", "none"), default="file")
    parser.add_argument("--keep", action="store_true", help="keep the storage folder (printed) afterwards")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pyfiledrop-soak-"))
    try:
        report = run_crash_loop(
            work / "storage", kills=args.kills, seconds=args.seconds, seed=args.seed, jobs=args.jobs,
            contents=args.contents, largest=args.largest, extra_args=["--durability", args.durability],
        )  # fmt: skip
        print(f"kills survived: {report.kills}")
        for line in report.recoveries:
            print("  " + line.split("recovered after a crash: ", 1)[-1])
        return 1 if report.problems else 0
    finally:
        if args.keep:
            print(f"storage kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
