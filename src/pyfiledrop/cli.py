"""Commands. The one module that prints and exits: exit code 2 on any bad setting, no traceback."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

from pyfiledrop import __version__, config, listen, logs
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
    """Sizes take 10G, 8M, 2TiB or bytes; durations 90s, 2m, 12h, 1d (docs/configuration.md)."""
    add = parser.add_argument
    add("-p", "--port", help="port to listen on (default 16273) [PYFILEDROP_PORT]")
    add("--host", help="address to listen on (default :: = every IPv6 and IPv4 address; 0.0.0.0 = IPv4 only) "
        "[PYFILEDROP_HOST]")  # fmt: skip
    add("-s", "--storage", help="folder for finished files (default ./storage), or s3://BUCKET/PREFIX for "
        "S3-compatible storage (docs/s3.md) [PYFILEDROP_STORAGE]")  # fmt: skip
    add("-c", "--chunks", help="folder for partial uploads (default <storage>/.partial) [PYFILEDROP_CHUNKS]")
    add("--state-dir", help="with S3 storage: local folder for the database and other local state (default "
        "~/.local/state/pyfiledrop/<bucket>_<prefix>) [PYFILEDROP_STATE_DIR]")  # fmt: skip
    add("--s3-endpoint", metavar="URL", help="S3-compatible server that is not AWS, e.g. http://127.0.0.1:8333 "
        "(path-style addressing) [PYFILEDROP_S3_ENDPOINT]")  # fmt: skip
    add("--s3-region", help="S3 region (default: AWS_REGION / the profile's) [PYFILEDROP_S3_REGION]")
    add("--s3-presign", action="store_const", const=True, help="downloads answer 302 to a short-lived presigned "
        "S3 URL instead of passing through the server [PYFILEDROP_S3_PRESIGN]")  # fmt: skip
    add("--s3-presign-expires", metavar="DURATION", help="how long a presigned URL works (default 10m) "
        "[PYFILEDROP_S3_PRESIGN_EXPIRES]")  # fmt: skip
    add("--s3-spool", metavar="DIR", help="local folder where large parts are gathered before they go to S3 "
        "(default <state dir>/spool) [PYFILEDROP_S3_SPOOL]")  # fmt: skip
    add("--s3-spool-max", metavar="SIZE", help="most bytes the spool holds at once, e.g. 4G (default 4G) "
        "[PYFILEDROP_S3_SPOOL_MAX]")  # fmt: skip
    add("--max-size", help="largest upload, e.g. 10G (a bare number is MiB, as Dropzone's maxFilesize; "
        "default 100000 MiB) [PYFILEDROP_MAX_SIZE]")  # fmt: skip
    add("--timeout", help="how long one request may stall, e.g. 90s or 2m (a bare number is milliseconds, as "
        "Dropzone's timeout; default 2m) [PYFILEDROP_TIMEOUT]")  # fmt: skip
    add("--send-timeout", help="how long a client may take no byte of an answer (a download) before it is cut off, "
        "e.g. 60s or 2m (default 60s) [PYFILEDROP_SEND_TIMEOUT]")  # fmt: skip
    add("--chunk-size", help="chunk size advertised to clients, e.g. 8M (bare number: bytes; default 8M) "
        "[PYFILEDROP_CHUNK_SIZE]")  # fmt: skip
    add("--page-chunk-size", help="bytes per request of the page's own uploads, e.g. 32M (default: --chunk-size "
        "when it is given, else 32M) [PYFILEDROP_PAGE_CHUNK_SIZE]")  # fmt: skip
    add("--disable-parallel-chunks", action="store_const", const=True,
        help="the page sends one chunk of a file at a time [PYFILEDROP_DISABLE_PARALLEL_CHUNKS]")  # fmt: skip
    add("--disable-force-chunking", action="store_const", const=True,
        help="the page sends files smaller than a chunk in one request "
             "[PYFILEDROP_DISABLE_FORCE_CHUNKING]")  # fmt: skip
    add("-a", "--allow-downloads", action="store_const", const=True,
        help="anyone with a file's link may download it [PYFILEDROP_ALLOW_DOWNLOADS]")  # fmt: skip
    add("--admin-token", help="admin token (default: a new one each start, printed) [PYFILEDROP_ADMIN_TOKEN]")
    add("--durability", choices=("chunk", "file", "none"),
        help="when to fsync: chunk = before every acknowledgement (survives power loss), file = when a file "
             "completes (default; acknowledged chunks survive a server crash), none = leave it to the OS "
             "[PYFILEDROP_DURABILITY]")  # fmt: skip
    add("--helpers", help="processes that receive small uploads (up to 2 MiB) beside the server, so that many "
        "at once use more than one core; 0 = the server alone (default 1, Linux) [PYFILEDROP_HELPERS]")  # fmt: skip
    add("--stale-after", help="drop an unfinished upload after this long without progress, e.g. 1d, 12h (bare "
        "number: seconds; default 1d) [PYFILEDROP_STALE_AFTER]")  # fmt: skip
    add("--expire-after", help="delete finished uploads after this long, e.g. 7d, 12h (default never) "
        "[PYFILEDROP_EXPIRE_AFTER]")  # fmt: skip
    add("--quota", help="all uploads together may use this much, e.g. 500G (default no limit) [PYFILEDROP_QUOTA]")
    add("--owner-quota", help="one owner's uploads may use this much, e.g. 20G (default no limit) "
        "[PYFILEDROP_OWNER_QUOTA]")  # fmt: skip
    add("--min-free", help="refuse uploads that would leave less disk free, e.g. 10G; 0 = no reserve (default: "
        "1G or 2%% of the volume, whichever is more) [PYFILEDROP_MIN_FREE]")  # fmt: skip
    add("--tls-cert", help="serve HTTPS with this PEM certificate (with --tls-key) [PYFILEDROP_TLS_CERT]")
    add("--tls-key", help="the certificate's PEM private key [PYFILEDROP_TLS_KEY]")
    add("--behind-proxy", action="store_const", const=True,
        help="trust X-Forwarded-For/-Proto/-Host from a reverse proxy [PYFILEDROP_BEHIND_PROXY]")  # fmt: skip
    add("--create-rate", help="uploads one address may start per minute (default 600) [PYFILEDROP_CREATE_RATE]")
    add("--password", help="uploading needs this password (or a hash from 'pyfiledrop hash-password'; better kept "
        "in the config file or env than on the command line) [PYFILEDROP_PASSWORD]")  # fmt: skip
    add("--login-rate", help="wrong passwords one address may try per minute (default 10) [PYFILEDROP_LOGIN_RATE]")
    add("--public-url", help="base URL for links when behind a proxy [PYFILEDROP_PUBLIC_URL]")
    add("--keep-awake", choices=("auto", "always", "never"), help="hold off system sleep: auto = while transfers run "
        "(default), always, never [PYFILEDROP_KEEP_AWAKE]")  # fmt: skip
    add("--awake-grace", metavar="SECONDS", help="stay awake this long after the last transfer (default 120) "
        "[PYFILEDROP_AWAKE_GRACE]")  # fmt: skip
    add("--keep-screen-on", action="store_const", const=True, help="keep the screen on too [PYFILEDROP_KEEP_SCREEN_ON]")
    add("--cors-origins", help="origins whose web pages may upload here and call the API: * (default, as tusd) "
        "or a list like https://a.example,https://b.example [PYFILEDROP_CORS_ORIGINS]")  # fmt: skip
    add("--log-level", choices=("debug", "info", "warning", "error"),
        help="least important event logged (default info) [PYFILEDROP_LOG_LEVEL]")  # fmt: skip
    add("--log-format", choices=("text", "json"),
        help="text lines or one JSON object per line, for events and access log (default text) "
             "[PYFILEDROP_LOG_FORMAT]")  # fmt: skip
    add("--access-log", metavar="FILE|-|off",
        help="one line per request: - = standard error (default), off, or a file to append to "
             "[PYFILEDROP_ACCESS_LOG]")  # fmt: skip
    _database_flag(parser)
    add("--video-jobs", help="video trims/rotations run at once (default: one per core) [PYFILEDROP_VIDEO_JOBS]")
    add("--config", help="TOML file with any of these settings [PYFILEDROP_CONFIG]")


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL", help="PostgreSQL for metadata, shared by replicas: "
                        "postgresql://USER@HOST:5432/DB (password in the URL or PGPASSWORD; default: SQLite in the "
                        "storage folder) [PYFILEDROP_DATABASE]")  # fmt: skip


def _db_parser(commands: Any) -> None:
    db = commands.add_parser("db", help="the metadata database: schema migrations (docs/database.md)")
    actions = db.add_subparsers(dest="db_command", parser_class=_Parser, required=True,
                               help="what to do with the database")  # fmt: skip
    for name, text in (("upgrade", "apply the schema migrations the database lacks (creates an empty one)"),
                       ("status", "show the schema version (exit 1 when an upgrade is needed)")):  # fmt: skip
        action = actions.add_parser(name, help=text)
        _database_flag(action)
        action.add_argument("-s", "--storage", help="storage folder, for the default SQLite database "
                            "[PYFILEDROP_STORAGE]")  # fmt: skip
        action.add_argument("--config", help="TOML settings file [PYFILEDROP_CONFIG]")


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
    _database_flag(verify)
    _db_parser(commands)
    from pyfiledrop.awake.cli import add_parser as _awake_parser

    _awake_parser(commands)
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
        case "db":
            return database(namespace.db_command, vars(namespace))
        case "awake":
            from pyfiledrop.awake import cli as awake

            return awake.run(namespace)
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
    if settings.database is None and not settings.sqlite_path.exists():
        _fail(f"no pyfiledrop database in {settings.storage}; is -s/--storage right?")
    _check_schema(settings)

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


def database(action: str, flags: dict[str, object]) -> int:
    """``db upgrade``: exit 0 once the schema is current; ``db status``: 0 when current, 1 when not."""
    from pyfiledrop.meta import migrations, upgrade

    try:
        settings = config.load(flags)
        report = upgrade.upgrade(settings) if action == "upgrade" else upgrade.status(settings)
    except (ConfigError, migrations.SchemaOutdated) as exc:
        _fail(str(exc))
    print(f"database: {report.backend} {report.where}")
    if action == "upgrade":
        for number in report.applied:
            print(f"applied migration {number}")
        done = f"upgraded from version {report.version} to {report.current}" if report.applied else "already current"
        print(f"schema version {report.current} of {report.latest}: {done}")
        return 0
    state = "current" if report.up_to_date else "outdated: run pyfiledrop db upgrade"
    print(f"schema version {report.version} of {report.latest}: {'empty' if report.version == 0 else state}")
    for name, value in report.limits.items():
        print(f"shared setting {name.removeprefix('limit.').replace('_', '-')} = {value}")
    return 0 if report.up_to_date else 1


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
    settings = dataclasses.replace(settings, host=listen.effective_host(settings.host))
    _check_port_free(settings.host, settings.port)
    _check_schema(settings)
    settings = dataclasses.replace(settings, admin_token=settings.admin_token or secrets.token_urlsafe(24))
    print(banner(settings, settings.admin_token or ""), flush=True)
    from pyfiledrop.httpd.server import StartupFailed

    logs.set_up(settings.log_level, settings.log_format)
    logs.add_secret(settings.admin_token)
    logs.add_secret(settings.password)
    logs.add_secret(urlsplit(settings.database).password if settings.database else None)  # never in a log line
    try:
        access_log = logs.AccessLog.open(settings.access_log, settings.log_format)
    except OSError as exc:
        _fail(f"--access-log file {settings.access_log} cannot be written: {exc.strerror}")
    try:
        asyncio.run(_serve(settings, access_log))
    except StartupFailed as exc:
        _fail(f"pyfiledrop could not start: {exc}")
    except OSError as exc:  # listening failed after all (the port was taken between the check and now)
        _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    finally:
        if access_log is not None:
            access_log.close()
    print("pyfiledrop stopped; unfinished uploads resume where they left off.", flush=True)
    return 0


async def _serve(settings: Settings, access_log: logs.AccessLog | None) -> None:
    """pyfiledrop's own HTTP/1.1 server, in this very process (see pyfiledrop/httpd/__init__.py for why not granian)."""
    from pyfiledrop.httpd.server import HttpServer, ServerOptions
    from pyfiledrop.web.access_log import AccessLogged
    from pyfiledrop.web.app import App

    options = ServerOptions(settings.host, settings.port, tls_cert=settings.tls_cert, tls_key=settings.tls_key,
                            send_timeout=settings.send_timeout)  # fmt: skip
    app = App(settings)
    server = HttpServer(AccessLogged(app, access_log, behind_proxy=settings.behind_proxy), options)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    try:
        await server.serve()
    finally:
        app.awake.close()  # every way out (stop, SIGTERM, Ctrl-C, an exception); kill -9: the kernel closes the fd


def _check_schema(settings: Settings) -> None:
    """Refuse an outdated database before anything starts, naming the command that upgrades it."""
    from pyfiledrop.meta.upgrade import check_before_serve

    try:
        problem = check_before_serve(settings)
    except ConfigError as exc:
        _fail(str(exc))
    if problem is not None:
        _fail(f"pyfiledrop could not start: {problem}")


def _check_port_free(host: str, port: int) -> None:
    problem = listen.port_problem(host, port)
    if problem is not None:
        _fail(problem)


def lan_addresses() -> list[str]:
    """Every LAN address of this machine, found from its interfaces (listen.py)."""
    return listen.lan_addresses()


def open_urls(settings: Settings) -> list[str]:
    """The addresses to open, the ones other machines can reach first; the loopback one last."""
    scheme = "https" if settings.tls_cert else "http"
    port = settings.port
    if settings.host not in listen.EVERY_ADDRESS:
        return [f"{scheme}://{listen.url_host(settings.host)}:{port}/"]
    found = listen.lan_addresses(ipv6=settings.host != "0.0.0.0")  # noqa: S104
    urls = [f"{scheme}://{listen.url_host(address)}:{port}/" for address in found]
    return [*urls, f"{scheme}://127.0.0.1:{port}/"]


def banner(settings: Settings, admin_token: str) -> str:
    """What a person needs first: where to open it, the admin link (once), then the settings in a block."""
    s = settings
    urls = open_urls(s)
    lead = s.public_url.rstrip("/") + "/" if s.public_url else urls[0]
    lines = [f"pyfiledrop {__version__} is receiving files.", "", "Open in a browser, or curl -T FILE URL:"]
    if s.public_url:
        lines.append(f"  {lead}  (public URL)")
    lines += [f"  {url}" + ("  (this machine only)" if "//127.0.0.1:" in url and len(urls) > 1 else "")
              for url in urls]  # fmt: skip
    lines += [
        "",
        f"Admin:  {lead}?admin={quote(admin_token, safe='')}",
        "",
        "Settings:",
        *_settings_block(s),
        "",
        "Ctrl+C to stop.",
    ]
    return "\n".join(lines)


def _storage_line(s: Settings) -> str:
    if s.s3_storage is not None:
        where = f" at {s.s3_endpoint}" if s.s3_endpoint else ""
        return f"{s.s3_storage}{where} (local state: {s.storage.resolve()}){', presigned downloads' * s.s3_presign}"
    return f"{s.storage.resolve()} (partial uploads: {s.chunks_dir.resolve()})"


def _settings_block(s: Settings) -> list[str]:
    from pyfiledrop.awake.tracker import banner as awake_banner
    from pyfiledrop.storage import intake
    from pyfiledrop.storage.local import LocalStorage
    from pyfiledrop.units import format_duration, format_size
    from pyfiledrop.web.app import tus_extensions

    def size(value: int | None) -> str:
        return format_size(value) if value else "none"

    chunks = f"{format_size(s.chunk_size)}, {'parallel' if not s.disable_parallel_chunks else 'one at a time'}"
    chunks += ", small files too" if not s.disable_force_chunking else ", only files larger than a chunk"
    chunks += f"; the page's {format_size(s.page_chunk)}" if s.page_chunk != s.chunk_size else ""
    expire = f"deleted after {format_duration(s.expire_after_seconds)}" if s.expire_after_seconds else "kept"
    helpers = s.helpers if intake.available() else "none (Linux only)"
    access_log = {"-": "standard error", "off": "off"}.get(s.access_log, s.access_log)
    return [
        f"  Uploads     {'password needed' if s.password else 'open to anyone who can reach it'}, "
        f"up to {format_size(s.max_size_bytes)} per file",
        f"  Downloads   {'anyone with the link' if s.allow_downloads else 'owner and admin only'}",
        f"  Disk        keep {format_size(s.min_free_bytes)} free; quota {size(s.quota_bytes)}, "
        f"per owner {size(s.owner_quota_bytes)}",
        f"  Time        timeout {format_duration(s.timeout / 1000)} per request, unfinished uploads dropped "
        f"after {format_duration(s.stale_after)}, finished ones {expire}",
        f"  Chunks      {chunks}",
        f"  Storage     {_storage_line(s)}",
        f"  Engine      durability {s.durability}, {helpers} helper(s) for small uploads, "
        f"tus {','.join(tus_extensions(LocalStorage.capabilities))}",
        f"  Logs        {s.log_level}, {s.log_format}; access log: {access_log}; CORS origins: {s.cors_origins}",
        f"  Keep awake  {awake_banner(s.keep_awake, s.awake_grace, s.keep_screen_on)}",
    ]
