"""Commands. The one module that prints and exits: exit code 2 on any bad setting, no traceback."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import logging
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from pyfiledrop import __version__, config
from pyfiledrop.config import Settings
from pyfiledrop.errors import ConfigError

EXIT_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(message)


def _fail(message: str) -> NoReturn:
    print(f"pyfiledrop: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def _serve_flags(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-p", "--port", help="port to listen on (default 16273) [PYFILEDROP_PORT]")
    add("--host", help="address to listen on (default 0.0.0.0) [PYFILEDROP_HOST]")
    add("-s", "--storage", help="folder for finished files (default ./storage) [PYFILEDROP_STORAGE]")
    add("-c", "--chunks", help="folder for partial uploads (default <storage>/.partial) [PYFILEDROP_CHUNKS]")
    add("--max-size", help="largest upload in MiB, enforced by the server (default 100000) [PYFILEDROP_MAX_SIZE]")
    add("--timeout", help="ms a chunk request may stall (default 120000) [PYFILEDROP_TIMEOUT]")
    add("--chunk-size", help="chunk size in bytes advertised to clients (default 8 MiB) [PYFILEDROP_CHUNK_SIZE]")
    add("--disable-parallel-chunks", action="store_const", const=True, help="[PYFILEDROP_DISABLE_PARALLEL_CHUNKS]")
    add("--disable-force-chunking", action="store_const", const=True, help="[PYFILEDROP_DISABLE_FORCE_CHUNKING]")
    add("-a", "--allow-downloads", action="store_const", const=True,
        help="anyone with a file's link may download it [PYFILEDROP_ALLOW_DOWNLOADS]")  # fmt: skip
    add("--admin-token", help="admin token (default: a new one each start, printed) [PYFILEDROP_ADMIN_TOKEN]")
    add("--durability", choices=("chunk", "file", "none"),
        help="when to fsync: chunk = before every acknowledgement (survives power loss), file = when a file "
             "completes (default; acknowledged chunks survive a server crash), none = leave it to the OS "
             "[PYFILEDROP_DURABILITY]")  # fmt: skip
    add("--helpers", help="processes that receive small uploads (up to 2 MiB) beside the server, so that many "
        "at once use more than one core; 0 = the server alone (default 1, Linux) [PYFILEDROP_HELPERS]")  # fmt: skip
    add("--stale-after", help="seconds before an unfinished upload with no progress is dropped (default 86400) "
        "[PYFILEDROP_STALE_AFTER]")  # fmt: skip
    add("--expire-after", help="delete finished uploads after this long, e.g. 7d, 12h [PYFILEDROP_EXPIRE_AFTER]")
    add("--quota", help="all uploads together may use this much, e.g. 500G [PYFILEDROP_QUOTA]")
    add("--owner-quota", help="one owner's uploads may use this much, e.g. 20G [PYFILEDROP_OWNER_QUOTA]")
    add("--min-free", help="refuse uploads that would leave less disk free, e.g. 10G [PYFILEDROP_MIN_FREE]")
    add("--tls-cert", help="serve HTTPS with this PEM certificate (with --tls-key) [PYFILEDROP_TLS_CERT]")
    add("--tls-key", help="the certificate's PEM private key [PYFILEDROP_TLS_KEY]")
    add("--behind-proxy", action="store_const", const=True,
        help="trust X-Forwarded-For/-Proto/-Host from a reverse proxy [PYFILEDROP_BEHIND_PROXY]")  # fmt: skip
    add("--create-rate", help="uploads one address may start per minute (default 600) [PYFILEDROP_CREATE_RATE]")
    add("--password", help="uploading needs this password (or a hash from 'pyfiledrop hash-password'; better kept "
        "in the config file or env than on the command line) [PYFILEDROP_PASSWORD]")  # fmt: skip
    add("--login-rate", help="wrong passwords one address may try per minute (default 10) [PYFILEDROP_LOGIN_RATE]")
    add("--public-url", help="base URL for links when behind a proxy [PYFILEDROP_PUBLIC_URL]")
    add("--video-jobs", help="video trims/rotations run at once (default: one per core) [PYFILEDROP_VIDEO_JOBS]")
    add("--config", help="TOML file with any of these settings [PYFILEDROP_CONFIG]")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pyfiledrop", description="A self-hosted drop for very large files.")
    parser.add_argument("--version", action="version", version=f"pyfiledrop {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    _serve_flags(commands.add_parser("serve", help="start the server (the default command)"))
    from pyfiledrop.client import add_arguments as _upload_flags

    _upload_flags(commands.add_parser("upload", help="upload files to a pyfiledrop server (resumable, parallel)"))
    verify = commands.add_parser("verify", help="re-hash every stored file and report any that changed on disk")
    verify.add_argument("-s", "--storage", help="storage folder (default ./storage) [PYFILEDROP_STORAGE]")
    verify.add_argument("-c", "--chunks", help="partial uploads folder [PYFILEDROP_CHUNKS]")
    verify.add_argument("--config", help="TOML settings file [PYFILEDROP_CONFIG]")
    hashing = commands.add_parser("hash-password", help="print the hash of a password, for the config file")
    hashing.add_argument("password", nargs="?", help="the password (default: asked for, or read from stdin)")
    from pyfiledrop import video

    video.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    namespace = build_parser().parse_args(args)
    match namespace.command:
        case "serve":
            return serve(vars(namespace))
        case "upload":
            from pyfiledrop import client

            try:
                return client.run(namespace)
            except client.UsageError as exc:
                _fail(str(exc))
        case "verify":
            return verify(vars(namespace))
        case "hash-password":
            return hash_password(namespace.password)
        case "video":
            from pyfiledrop import video

            return video.run_command(namespace)
        case _:
            _fail(f"unknown command {namespace.command!r}")


def verify(flags: dict[str, object]) -> int:
    """Exit 0 when every stored file still has its recorded sha256, 1 when some do not."""
    import asyncio

    from pyfiledrop.web.app import App

    try:
        settings = config.load(flags)
    except ConfigError as exc:
        _fail(str(exc))
    if not settings.database.exists():
        _fail(f"no pyfiledrop database in {settings.storage}; is -s/--storage right?")

    async def check() -> list[str]:
        app = App(settings)
        await app.startup()
        assert app.ctx is not None
        try:
            checks = await app.ctx.lifecycle.verify()
        finally:
            await app.shutdown()
        print(f"checked {len(checks)} stored file(s)")
        return [
            f"{c.key}: expected {c.expected_sha256}, found {c.actual_sha256 or 'missing'}" for c in checks if not c.ok
        ]

    problems = asyncio.run(check())
    for line in problems:
        print(f"CHANGED {line}")
    print("all files match their sha256" if not problems else f"{len(problems)} file(s) changed or missing")
    return 1 if problems else 0


def hash_password(given: str | None) -> int:
    from pyfiledrop.passwords import hash_password as make_hash

    if given is None and sys.stdin.isatty():
        import getpass

        given = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != given:
            _fail("the two passwords differ")
    elif given is None:
        given = sys.stdin.readline().rstrip("\r\n")
    if not given:
        _fail("the password is empty")
    print(make_hash(given))
    return 0


def serve(flags: dict[str, object]) -> int:
    try:
        settings = config.load(flags)
        config.check_folders(settings)
        config.check_tls(settings)
    except ConfigError as exc:
        _fail(str(exc))
    _check_port_free(settings.host, settings.port)
    settings = dataclasses.replace(settings, admin_token=settings.admin_token or secrets.token_urlsafe(24))
    print(banner(settings, settings.admin_token or ""), flush=True)
    from pyfiledrop.web.server import StartupFailed

    _set_up_logging()
    try:
        asyncio.run(_serve(settings))
    except StartupFailed as exc:
        _fail(f"pyfiledrop could not start: {exc}")
    except OSError as exc:  # listening failed after all (the port was taken between the check and now)
        _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    print("pyfiledrop stopped; unfinished uploads resume where they left off.", flush=True)
    return 0


def _set_up_logging() -> None:
    """Log lines go to stderr from the thread that logs (the event loop, mostly): a write per finished upload is
    cheaper there than waking a logging thread for it — small uploads are received by the intake's helper process
    now, so few threads of this one compete for the GIL (measured: +4 % files/s with the database write on the loop
    too, 6 % less server CPU)."""
    # What a record would gather and the format never shows, skipped as the logging HOWTO's "Optimization" says:
    # the caller's file and line (a stack walk), the process id (a system call), thread and process names.
    logging._srcfile = None
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    output = logging.StreamHandler()
    output.setFormatter(_LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[output])


class _LineFormatter(logging.Formatter):
    """Formats the time of a record once per second, not once per line (localtime + strftime, a line per upload)."""

    _second: tuple[int, str] = (-1, "")  # one attribute: threads that log see a pair that belongs together

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if int(record.created) != second:
            second, text = int(record.created), time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"


async def _serve(settings: Settings) -> None:
    """pyfiledrop's own HTTP/1.1 server, in this very process (see web/server.py for why not granian)."""
    from pyfiledrop.web.app import App
    from pyfiledrop.web.server import HttpServer, ServerOptions

    options = ServerOptions(settings.host, settings.port, tls_cert=settings.tls_cert, tls_key=settings.tls_key)
    server = HttpServer(App(settings), options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _fail(f"port {port} on {host} is already in use; pick another with -p/--port")
            _fail(f"cannot listen on {host}:{port}: {exc.strerror}")


def lan_addresses() -> list[str]:
    found: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127."))


def banner(settings: Settings, admin_token: str) -> str:
    s = settings
    scheme = "https" if s.tls_cert else "http"
    if s.host in ("0.0.0.0", "::"):  # noqa: S104
        urls = [f"{scheme}://127.0.0.1:{s.port}/"] + [f"{scheme}://{a}:{s.port}/" for a in lan_addresses()]
    else:
        host = f"[{s.host}]" if ":" in s.host else s.host
        urls = [f"{scheme}://{host}:{s.port}/"]
    from pyfiledrop.storage import intake
    from pyfiledrop.storage.local import LocalStorage
    from pyfiledrop.web.app import tus_extensions

    lines = [
        f"pyfiledrop {__version__}",
        f"  Timeout:          {s.timeout // 1000} seconds per chunk",
        f"  Chunk size:       {s.chunk_size // 1024} KiB",
        f"  Max file size:    {s.max_size} MiB",
        f"  Force chunking:   {str(not s.disable_force_chunking).lower()}",
        f"  Parallel chunks:  {str(not s.disable_parallel_chunks).lower()}",
        f"  Downloads:        {'anyone with the link' if s.allow_downloads else 'owner and admin only'}",
        f"  Uploads:          {'password needed' if s.password else 'open to anyone who can reach it'}",
        f"  Durability:       {s.durability}",
        f"  Helpers:          {s.helpers if intake.available() else 'none (Linux only)'} for small uploads",
        f"  Expire after:     {s.expire_after or 'never'}",
        f"  Quota:            {s.quota or 'none'}, per owner {s.owner_quota or 'none'}, keep free {s.min_free or '0'}",
        f"  Storage path:     {s.storage.resolve()}",
        f"  Chunk path:       {s.chunks_dir.resolve()}",
        f"  tus extensions:   {','.join(tus_extensions(LocalStorage.capabilities))}",
        "",
        "Open:",
        *(f"  {url}" for url in urls),
        "",
        f"Admin: {urls[0]}?admin={admin_token}",
        f"Admin token: {admin_token}",
    ]
    return "\n".join(lines)
