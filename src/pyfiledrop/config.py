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

from pyfiledrop import passwords
from pyfiledrop.errors import ConfigError

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - a drop is meant to be reached from the LAN, like the seed
    port: int = 16273
    storage: Path = Path("storage")
    chunks: Path | None = None  # None: <storage>/.partial
    max_size: int = 100_000  # MiB, as Dropzone's maxFilesize
    timeout: int = 120_000  # ms a chunk request may take; also the server's idle limit per request
    chunk_size: int = 8 * MIB  # bytes advertised to clients
    disable_parallel_chunks: bool = False
    disable_force_chunking: bool = False
    allow_downloads: bool = False
    admin_token: str | None = None  # None: a new one is made at each start and printed
    durability: str = "file"  # chunk: fsync every acknowledged chunk; file: fsync each finished file; none
    stale_after: int = 24 * 3600  # seconds an unfinished upload may sit without progress
    expire_after: str | None = None  # finished uploads are deleted after this long ("7d", "12h", "90m", seconds)
    quota: str | None = None  # all uploads together may use this much ("500G", "2TiB", bytes)
    owner_quota: str | None = None  # one owner's uploads may use this much
    min_free: str | None = None  # refuse uploads that would leave less disk free than this
    public_url: str | None = None  # base URL put in links, when behind a proxy
    behind_proxy: bool = False  # trust X-Forwarded-For/-Proto/-Host from the reverse proxy in front
    tls_cert: str | None = None  # serve HTTPS with this certificate (PEM) …
    tls_key: str | None = None  # … and this private key
    create_rate: int = 600  # uploads one address may create per minute (tus POST, PUT); bursts up to the same
    password: str | None = None  # uploading needs it (plain, or a hash from `pyfiledrop hash-password`)
    login_rate: int = 10  # wrong passwords one address may try per minute before 429
    helpers: int = 1  # processes that receive small uploads beside the server (storage/intake.py); 0: none
    video_jobs: int = 0  # video trims and rotations run at once (video/jobs.py); 0: one per core

    @property
    def chunks_dir(self) -> Path:
        return self.chunks if self.chunks is not None else self.storage / ".partial"

    @property
    def max_size_bytes(self) -> int:
        return self.max_size * MIB

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
        return parse_size("--min-free", self.min_free) if self.min_free else 0

    @property
    def database(self) -> Path:
        return self.storage / ".pyfiledrop.sqlite3"


_SIZES = {"quota": "--quota", "owner_quota": "--owner-quota", "min_free": "--min-free"}
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}  # fmt: skip
_SECONDS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AMOUNT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(flag: str, value: object) -> int:
    """'500G', '2TiB', '10 GB', '1048576' → bytes (K/M/G/T are powers of 1000, KiB/MiB/GiB/TiB of 1024)."""
    match = _AMOUNT.fullmatch(str(value))
    if match is None or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"{flag} must be a size like 500G, 10GiB or a number of bytes, not {value!r}")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise ConfigError(f"{flag} must be more than 0 bytes, not {value!r}")
    return size


def parse_duration(flag: str, value: object) -> float:
    """'7d', '12h', '90m', '45s', '3600' → seconds."""
    match = _AMOUNT.fullmatch(str(value))
    if match is None or match.group(2).lower() not in _SECONDS:
        raise ConfigError(f"{flag} must be a duration like 7d, 12h, 90m or a number of seconds, not {value!r}")
    seconds = float(match.group(1)) * _SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise ConfigError(f"{flag} must be longer than 0 seconds, not {value!r}")
    return seconds


_POSITIVE = {"port", "max_size", "timeout", "chunk_size", "stale_after", "create_rate", "login_rate"}
_CHOICES = {"durability": ("chunk", "file", "none")}
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
    return Settings(**{name: _convert(name, value) for name, value in merged.items()})


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
    if isinstance(default, bool):
        return _to_bool(flag, value)
    if isinstance(default, int):
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
    if name in ("storage", "chunks"):
        return Path(str(value)).expanduser()
    if name == "expire_after":
        parse_duration("--expire-after", value)  # checked now, used through the property
    if name in _SIZES:
        parse_size(_SIZES[name], value)
    if name == "password":
        _check_password(str(value))
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigError(f"{flag} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
    return str(value)


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
