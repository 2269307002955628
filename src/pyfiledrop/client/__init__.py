"""``pyfiledrop upload``: a fast, resumable tus client for pyfiledrop (and any tus 1.0 server with the
creation, creation-defer-length and concatenation extensions).

* file bodies go out with ``sendfile`` (no copies through Python), one keep-alive connection per stream;
* ``-j auto`` (the default) sends a file's segments in order with one stream and adds streams while they raise the
  speed (client/streams.py); ``-j N`` sends N byte ranges at once (pyfiledrop's parallel-write extension, or partial
  uploads joined by tus concatenation on another server);
* an interrupted upload resumes on rerun: the state is a small JSON file keyed by
  server + path + size + mtime (``$PYFILEDROP_STATE``, default ``~/.cache/pyfiledrop/uploads.json``);
* transient failures are retried with exponential backoff; the exit code is non-zero if any file failed;
* ``-`` reads stdin (deferred length) and checks the server's sha256 against the bytes sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_FAILED", "UsageError", "add_arguments", "parse_rate", "run"]


class UsageError(Exception):
    """A bad flag value: the CLI prints it and exits 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE", help="files to upload; - reads standard input")
    add("--url", default=os.environ.get("PYFILEDROP_URL"),
        help="the server (http://host:16273) or a drop link (http://host:16273/d/TOKEN) [PYFILEDROP_URL]")  # fmt: skip
    add("-j", "--jobs", default="auto",
        help="parallel streams per file, or auto: start with one and add one while the speed grows, up to twice "
             "the cores (default auto)")  # fmt: skip
    add("--retries", type=int, default=6, help="tries after a transient failure, with backoff (default 6)")
    add("--timeout", default="60s",
        help="how long a connection may stall, e.g. 90s or 2m, as serve --timeout (bare number: seconds; "
             "default 60s)")  # fmt: skip
    add("--token", default=os.environ.get("PYFILEDROP_TOKEN"),
        help="owner token (default: the one remembered for this server, else new) [PYFILEDROP_TOKEN]")  # fmt: skip
    add("--password", default=os.environ.get("PYFILEDROP_PASSWORD"),
        help="the server's or the drop link's upload password [PYFILEDROP_PASSWORD]")  # fmt: skip
    add("--name", help="file name to store standard input under (default stdin)")
    add("--state", help="resume state file [PYFILEDROP_STATE] (default ~/.cache/pyfiledrop/uploads.json)")
    add("--limit-rate", default="0", help="cap the speed in bytes per second, e.g. 500K or 20M (default: none)")
    add("--verify", action="store_true", help="also hash the file locally and compare with the server's sha256")
    add("--json", action="store_true", help="print one JSON object per file instead of 'URL  SHA256  NAME'")
    add("--progress", action=argparse.BooleanOptionalAction, default=None,
        help="show a progress bar with speed and ETA (default: when stderr is a terminal)")  # fmt: skip
    add("-q", "--quiet", action="store_true", help="no progress and no summary on stderr")
    add("-r", "--recursive", action="store_true",
        help="upload the files in the folders given, keeping their paths (DIR/sub/b.txt)")  # fmt: skip
    add("--share", action="store_true",
        help="make a share link when done (one link for all the files) and print it as the last line")  # fmt: skip
    add("--share-expires", metavar="DURATION",
        help="the share link stops working after this long: 90s, 12h, 7d (default: when the files go)")  # fmt: skip


def parse_rate(text: str) -> int:
    """Bytes per second, in the size syntax of every size flag (pyfiledrop.units): 500K, 20M, 20MiB/s, 1000000."""
    from pyfiledrop.units import parse_size

    try:
        return parse_size(text.strip().removesuffix("/s"))
    except ValueError:
        raise UsageError(f"--limit-rate {text!r} is not a rate such as 500K or 20M (bytes per second)") from None


def _jobs(text: object) -> int:
    """-j: auto (0, ``streams.AUTO``) or a count of streams from 1 to 64."""
    if str(text).strip().lower() == "auto":
        return 0
    try:
        jobs = int(str(text))
    except ValueError:
        jobs = -1
    if jobs < 1 or jobs > 64:
        raise UsageError(f"-j/--jobs must be auto or between 1 and 64, not {text!r}")
    return jobs


def _duration(flag: str, text: object) -> float:
    from pyfiledrop.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        raise UsageError(f"{flag} must be a duration like 90s, 2m or a number of seconds, not {text!r}") from None


def run(args: argparse.Namespace) -> int:
    """Upload every file; print 'URL  SHA256  NAME' (or JSON) per success; 0 if all succeeded."""
    from pyfiledrop.client.retry import Cancelled, UploadFailed
    from pyfiledrop.client.sharing import expand
    from pyfiledrop.client.state import StateStore
    from pyfiledrop.client.tus import Session
    from pyfiledrop.client.upload import Options, upload_file, upload_stream

    _check_flags(args)
    share_expires = _share_expiry(args)
    try:
        files = expand(args.files, args.recursive)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    store = StateStore(Path(args.state).expanduser() if args.state else None)
    try:
        session = Session(args.url, None, args.timeout, args.password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    session.token = args.token or store.token(session.base_url)
    show = (not args.quiet) and (args.progress if args.progress is not None else sys.stderr.isatty())
    options = Options(url=args.url, jobs=args.jobs, retries=args.retries, timeout=args.timeout, progress=show,
                      verify=args.verify, limit_rate=parse_rate(args.limit_rate), name=args.name,
                      token=session.token, state=store, quiet=args.quiet)  # fmt: skip
    cancel = threading.Event()
    failed = 0
    done = []
    for path, name in files:
        try:
            if path == "-":
                result = upload_stream(sys.stdin.buffer, options, session, cancel)
            else:
                result = upload_file(path, options, session, cancel, name)
        except KeyboardInterrupt:
            cancel.set()
            print("pyfiledrop: interrupted; run the same command again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (UploadFailed, Cancelled, OSError) as exc:
            failed += 1
            print(f"pyfiledrop: {path}: upload failed: {exc}", file=sys.stderr, flush=True)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file (or server answer) must not hide the others
            failed += 1
            print(f"pyfiledrop: {path}: upload failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            continue
        done.append(result)
        print(json.dumps(result.as_json()) if args.json else result.line(), flush=True)
        if not args.quiet:
            print(result.summary(), file=sys.stderr, flush=True)
    if args.share and done and not _print_share(session, [r.upload_id for r in done], share_expires, args):
        return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


def _check_flags(args: argparse.Namespace) -> None:
    if not args.url:
        raise UsageError("--url is required (or set PYFILEDROP_URL), e.g. --url http://127.0.0.1:16273")
    args.jobs = _jobs(args.jobs)
    args.timeout = _duration("--timeout", args.timeout)
    if args.retries < 0 or args.timeout <= 0:
        raise UsageError("--retries must be >= 0 and --timeout > 0")
    if args.files.count("-") > 1:
        raise UsageError("standard input (-) can be given only once")


def _share_expiry(args: argparse.Namespace) -> float | None:
    if args.share_expires is None:
        return None
    if not args.share:
        raise UsageError("--share-expires goes with --share")
    seconds = _duration("--share-expires", args.share_expires)  # the server's duration syntax: 90s, 2m, 12h, 7d
    if seconds <= 0:
        raise UsageError(f"--share-expires must be longer than 0 seconds, not {args.share_expires!r}")
    return seconds


def _print_share(session: object, upload_ids: list[str], expires_in: float | None, args: argparse.Namespace) -> bool:
    """The share link of everything uploaded, as the last line of stdout (or a JSON object with --json)."""
    from pyfiledrop.client.sharing import ShareError, make_share
    from pyfiledrop.client.tus import Session

    assert isinstance(session, Session)
    folders = [Path(path).name for path in args.files if path != "-" and Path(path).is_dir()]
    label = folders[0] if len(folders) == 1 and len(args.files) == 1 else ""
    try:
        share = make_share(session, upload_ids, expires_in, label)
    except (ShareError, OSError, ValueError) as exc:
        print(f"pyfiledrop: the files are uploaded, but no share link was made: {exc}", file=sys.stderr, flush=True)
        return False
    if args.json:
        print(json.dumps({"share_url": share["url"], "expires_at": share.get("expires_at"),
                          "files": len(upload_ids)}), flush=True)  # fmt: skip
    else:
        print(share["url"], flush=True)
    return True
