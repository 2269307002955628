"""Settings: flags, PYFILEDROP_* environment variables and a TOML file, checked once at load.

Precedence: command line > environment > config file > defaults. Every flag ``--some-flag`` is also
``PYFILEDROP_SOME_FLAG`` and ``some_flag`` (or ``some-flag``) in the file given by ``--config`` /
``PYFILEDROP_CONFIG`` (default: ``./pyfiledrop.toml`` when it exists).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pyfiledrop import passwords, units
from pyfiledrop.errors import ConfigError

MIB = units.MIB
S3_SCHEME = "s3://"
GIB = units.GIB
# The page's chunk when the operator sets neither --chunk-size nor --page-chunk-size: a quarter of the requests of
# 8 MiB chunks, whose per-request cost (server and Chromium) was most of the page's gap to plain fetch PUTs
# (docs/browser-uploads.md). A multiple of the 8 MiB default, so S3 parts planned with it stay aligned.
PAGE_CHUNK_SIZE = 32 * MIB


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "::"  # every address, IPv6 and IPv4 (listen.py): a drop is meant to be reached from the LAN
    port: int = 16273
    storage: Path = Path("storage")
    chunks: Path | None = None  # None: <storage>/.partial
    max_size: int = 100_000 * MIB  # bytes; a bare number on the command line is MiB, as Dropzone's maxFilesize
    timeout: int = 120_000  # ms a chunk request may stall; also the server's idle limit per request
    chunk_size: int = 8 * MIB  # bytes advertised to clients
    page_chunk_size: int | None = None  # the page's own chunks; None: PAGE_CHUNK_SIZE (load: --chunk-size when given)
    disable_parallel_chunks: bool = False
    disable_force_chunking: bool = False
    allow_downloads: bool = False
    admin_token: str | None = None  # None: a new one is made at each start and printed
    durability: str = "file"  # chunk: fsync every acknowledged chunk; file: fsync each finished file; none
    stale_after: int = 24 * 3600  # seconds an unfinished upload may sit without progress
    expire_after: str | None = None  # finished uploads are deleted after this long ("7d", "12h", "90m", seconds)
    quota: str | None = None  # all uploads together may use this much ("500G", "2TiB", bytes)
    owner_quota: str | None = None  # one owner's uploads may use this much
    min_free: str | None = None  # refuse uploads that would leave less disk free; None: default_min_free
    public_url: str | None = None  # base URL put in links, when behind a proxy
    behind_proxy: bool = False  # trust X-Forwarded-For/-Proto/-Host from the reverse proxy in front
    tls_cert: str | None = None  # serve HTTPS with this certificate (PEM) …
    tls_key: str | None = None  # … and this private key
    create_rate: int = 600  # uploads one address may create per minute (any protocol); bursts up to the same
    password: str | None = None  # uploading needs it (plain, or a hash from `pyfiledrop hash-password`)
    login_rate: int = 10  # wrong passwords one address may try per minute before 429
    helpers: int = 1  # processes that receive small uploads beside the server (storage/intake.py); 0: none
    send_timeout: float = 60.0  # seconds ("90", "2m") a client may take no byte of an answer (nginx's send_timeout)
    keep_awake: str = "auto"  # hold off system sleep: auto = while transfers run, always, never (awake/)
    awake_grace: float = 120.0  # seconds the hold outlives the last transfer (a resumable upload's pauses)
    keep_screen_on: bool = False  # also keep the display on while holding
    log_level: str = "info"  # debug, info, warning, error: the events of the server log (docs/logging.md)
    log_format: str = "text"  # text or json (one object per line), for the server log and the access log
    access_log: str = "-"  # one line per request: "-" standard error, "off", or a file to append to
    cors_origins: str = "*"  # origins whose pages may call tus, Dropzone's /upload and the API: "*" or a list
    video_jobs: int = 0  # video trims and rotations run at once (video/jobs.py); 0: one per core
    database: str | None = None  # postgresql://USER@HOST:PORT/DB (replicas share it); None: SQLite in the storage
    # S3 (docs/s3.md): ``--storage s3://BUCKET/PREFIX`` is kept here, and ``storage`` becomes the local state folder
    # (the SQLite database, the secret, the named tree): --state-dir, default a per-user folder for that location.
    s3_storage: str | None = None
    state_dir: Path | None = None
    s3_endpoint: str | None = None  # a non-AWS server: path-style addressing
    s3_region: str | None = None
    s3_presign: bool = False  # downloads answer 302 to a presigned S3 URL
    s3_presign_expires: float = 600.0  # seconds such a URL works
    s3_spool: Path | None = None  # where parts are gathered before they are sent; None: <state dir>/spool
    s3_spool_max: int = 4 * GIB  # bytes the spool may hold

    @property
    def spool_dir(self) -> Path:
        return self.s3_spool if self.s3_spool is not None else self.storage / "spool"

    @property
    def chunks_dir(self) -> Path:
        return self.chunks if self.chunks is not None else self.storage / ".partial"

    @property
    def page_chunk(self) -> int:
        """Bytes per request of the page's uploads (advertised as ``page_chunk_size``)."""
        return self.page_chunk_size if self.page_chunk_size is not None else PAGE_CHUNK_SIZE

    @property
    def max_size_bytes(self) -> int:
        return self.max_size

    @property
    def expire_after_seconds(self) -> float | None:
        return parse_duration("--expire-after", self.expire_after) if self.expire_after else None

    @property
    def quota_bytes(self) -> int | None:
        return parse_size("--quota", self.quota) if self.quota else None

    @property
    def owner_quota_bytes(self) -> int | None:
        return parse_size("--owner-quota", self.owner_quota) if self.owner_quota else None

    @property
    def min_free_bytes(self) -> int:
        if self.min_free is None:
            return default_min_free(self.storage)
        return parse_size("--min-free", self.min_free, allow_zero=True)

    @property
    def sqlite_path(self) -> Path:
        """The SQLite database (the default backend, when no ``--database`` URL is given)."""
        return self.storage / ".pyfiledrop.sqlite3"


_SIZES = {"quota": "--quota", "owner_quota": "--owner-quota", "min_free": "--min-free"}
_SIZE_EXAMPLES = "a size like 10G, 8M, 2TiB or a number of bytes"
_DURATION_EXAMPLES = "a duration like 90s, 2m, 12h, 1d"
MIN_FREE_FLOOR = GIB  # the default --min-free: this, or MIN_FREE_SHARE of the volume when that is more
MIN_FREE_SHARE = 0.02


def parse_size(flag: str, value: object, *, bare_unit: int = 1, allow_zero: bool = False) -> int:
    """'10G', '8M', '500000' → bytes (see pyfiledrop.units); ConfigError naming the flag otherwise."""
    try:
        size = units.parse_size(value, bare_unit=bare_unit)
    except ValueError:
        bare = {1: "bytes", units.KIB: "KiB", MIB: "MiB", GIB: "GiB"}.get(bare_unit, f"{bare_unit}-byte units")
        raise ConfigError(f"{flag} must be {_SIZE_EXAMPLES.replace('bytes', bare)}, not {value!r}") from None
    if size < 0 or (size == 0 and not allow_zero):
        raise ConfigError(f"{flag} must be more than 0 bytes, not {value!r}")
    return size


def parse_duration(flag: str, value: object, *, bare_unit: float = 1.0) -> float:
    """'90s', '2m', '1d', '3600' → seconds (a bare number counts ``bare_unit`` seconds); ConfigError otherwise."""
    try:
        seconds = units.parse_duration(value, bare_unit=bare_unit)
    except ValueError:
        bare = "seconds" if bare_unit == 1 else "milliseconds"
        raise ConfigError(f"{flag} must be {_DURATION_EXAMPLES} or a number of {bare}, not {value!r}") from None
    if seconds <= 0:
        raise ConfigError(f"{flag} must be longer than 0 seconds, not {value!r}")
    return seconds


def default_min_free(folder: Path) -> int:
    """1 GiB or 2 % of the volume that holds ``folder``, whichever is more: an open drop cannot fill the disk."""
    try:
        volume = os.statvfs(folder)
    except OSError:
        return MIN_FREE_FLOOR
    return max(MIN_FREE_FLOOR, int(volume.f_blocks * volume.f_frsize * MIN_FREE_SHARE))


_POSITIVE = {"port", "create_rate", "login_rate"}
_CHOICES = {"durability": ("chunk", "file", "none"), "log_level": ("debug", "info", "warning", "error"),
            "log_format": ("text", "json"), "keep_awake": ("auto", "always", "never")}  # fmt: skip
_MAX_HELPERS = 8  # each has 16 threads: more than the cores of most machines that would run this
FIELD_NAMES = tuple(f.name for f in fields(Settings))


def load(cli: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Merge the sources; ``cli`` holds only the flags given on the command line."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    config_path = cli.get("config") or environ.get("PYFILEDROP_CONFIG")
    if config_path is None and Path("pyfiledrop.toml").is_file():
        config_path = "pyfiledrop.toml"
    if config_path:
        merged.update(_read_file(Path(config_path)))
    for name in FIELD_NAMES:
        value = environ.get(f"PYFILEDROP_{name.upper()}")
        if value is not None:
            merged[name] = value
    merged.update({k: v for k, v in cli.items() if k in FIELD_NAMES and v is not None})
    if "chunk_size" in merged:
        # An operator who sets --chunk-size may be fitting a proxy's body limit: the page keeps to it then.
        merged.setdefault("page_chunk_size", merged["chunk_size"])
    _place_s3_state(merged, environ)
    settings = Settings(**{name: _convert(name, value) for name, value in merged.items()})
    _check_s3(settings)
    return settings


def _place_s3_state(merged: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``--storage s3://…``: the location goes to ``s3_storage``; ``storage``, the folder every local file of the
    server lives in, becomes the state folder (given, or per user and per location)."""
    value = merged.get("storage")
    if not (isinstance(value, str) and value.startswith(S3_SCHEME)):
        return
    merged["s3_storage"] = value
    state = merged.get("state_dir")
    if state is None:
        base = Path(environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        where = re.sub(r"[^A-Za-z0-9._-]+", "_", value.removeprefix(S3_SCHEME).strip("/"))
        state = base / "pyfiledrop" / where
    merged["storage"] = state


def _check_s3(settings: Settings) -> None:
    s3_only = ("s3_endpoint", "s3_region", "s3_spool", "state_dir")
    if settings.s3_storage is None:
        given = [name for name in s3_only if getattr(settings, name) is not None] + (
            ["s3_presign"] if settings.s3_presign else []
        )
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ConfigError(f"{flags}: only with --storage s3://BUCKET/PREFIX")
        return
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-_]{1,254}(/[^\s]*)?", settings.s3_storage):
        raise ConfigError(f"--storage takes a folder or s3://BUCKET/PREFIX, not {settings.s3_storage!r}")
    endpoint = settings.s3_endpoint
    if endpoint is not None and not re.fullmatch(r"https?://[^/\s]+/?", endpoint):
        raise ConfigError(f"--s3-endpoint must be a URL like http://127.0.0.1:8333, not {endpoint!r}")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("pyfiledrop", data)
    result = {}
    for key, value in section.items():
        name = key.replace("-", "_")
        if name not in FIELD_NAMES:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        result[name] = value
    return result


def _convert(name: str, value: Any) -> Any:
    flag = "--" + name.replace("_", "-")
    default = Settings.__dataclass_fields__[name].default
    if name in _AMOUNTS:
        return _AMOUNTS[name](flag, value)
    if isinstance(default, bool):
        return _to_bool(flag, value)
    if isinstance(default, int):
        return _to_count(name, flag, value)
    if name in ("storage", "chunks", "state_dir", "s3_spool"):
        return Path(str(value)).expanduser()
    if name == "expire_after":
        parse_duration("--expire-after", value)  # checked now, used through the property
    if name in _SIZES:
        parse_size(_SIZES[name], value, allow_zero=name == "min_free")
    if name == "password":
        _check_password(str(value))
    if name == "cors_origins":
        return _check_origins(str(value))
    if name == "database":
        return _check_database(str(value))
    text = str(value)
    if name in _CHOICES:
        text = text.lower()
        if text not in _CHOICES[name]:
            raise ConfigError(f"{flag} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
    return text


def _to_count(name: str, flag: str, value: Any) -> int:
    number = _to_int(flag, value)
    if name in _POSITIVE and number <= 0:
        raise ConfigError(f"{flag} must be a positive integer, not {value!r}")
    if name == "port" and number > 65535:
        raise ConfigError(f"{flag} must be at most 65535, not {value!r}")
    if name == "video_jobs" and number < 0:
        raise ConfigError(f"{flag} must be 0 (one per core) or more, not {value!r}")
    if name == "helpers" and not 0 <= number <= _MAX_HELPERS:
        raise ConfigError(f"{flag} must be from 0 to {_MAX_HELPERS}, not {value!r}")
    return number


def _timeout_ms(flag: str, value: Any) -> int:
    # A bare number keeps the seed's meaning, milliseconds (Dropzone's ``timeout``); "90s", "2m" say it plainly.
    return max(1, round(parse_duration(flag, value, bare_unit=0.001) * 1000))


def _seconds(flag: str, value: Any) -> int:
    return max(1, round(parse_duration(flag, value)))


def _seconds_or_zero(flag: str, value: Any) -> float:
    try:
        seconds = units.parse_duration(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{flag} must be a number of seconds, 0 or more (or {_DURATION_EXAMPLES}), not {value!r}")
    return seconds


_AMOUNTS: dict[str, Any] = {
    "send_timeout": parse_duration,
    "awake_grace": _seconds_or_zero,
    "max_size": lambda flag, value: parse_size(flag, value, bare_unit=MIB),  # bare: MiB, Dropzone's maxFilesize
    "chunk_size": parse_size,
    "page_chunk_size": parse_size,
    "timeout": _timeout_ms,
    "stale_after": _seconds,
    "s3_presign_expires": lambda flag, value: min(parse_duration(flag, value), 7 * 24 * 3600.0),  # S3's limit
    "s3_spool_max": parse_size,
}


def _check_origins(value: str) -> str:
    """``*`` or comma-separated origins such as ``https://app.example.org`` (scheme://host[:port], no path)."""
    origins = [o.strip() for o in value.split(",") if o.strip()]
    if origins == ["*"]:
        return "*"
    for origin in origins:
        if origin == "*" or not re.fullmatch(r"https?://[^/\s]+/?", origin):
            raise ConfigError(
                f"--cors-origins takes * or origins like https://app.example.org,http://localhost:8080, not {origin!r}"
            )
    return ",".join(o.rstrip("/").lower() for o in origins)


def _check_database(value: str) -> str:
    url = value.strip()
    if not url.startswith(("postgresql://", "postgres://")) or len(url) <= len("postgres://"):
        raise ConfigError(
            f"--database takes a PostgreSQL URL like postgresql://USER@HOST:5432/DB (the password in the URL or in "
            f"PGPASSWORD), not {value!r}; without it the database is SQLite in the storage folder"
        )
    return url


def _check_password(value: str) -> None:
    if not value:
        raise ConfigError("--password must not be empty")
    if passwords.is_hash(value):
        try:
            passwords.check_hash_format(value)
        except ValueError as exc:
            raise ConfigError(f"--password: {exc}") from None


def _to_int(flag: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{flag} must be an integer, not {value!r}")
    try:
        return int(str(value).strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{flag} must be an integer, not {value!r}") from None


def _to_bool(flag: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{flag} must be true or false, not {value!r}")


def check_tls(settings: Settings) -> None:
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    for flag, value in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key)):
        if value is not None and not os.access(value, os.R_OK):
            raise ConfigError(f"{flag} file {value} cannot be read")


def check_folders(settings: Settings) -> None:
    """Create the folders and prove they are writable, so a bad path fails at start, not at first upload."""
    for label, folder in (("--storage", settings.storage), ("--chunks", settings.chunks_dir)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".pyfiledrop-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"{label} folder {folder} is not writable: {exc.strerror}") from exc
