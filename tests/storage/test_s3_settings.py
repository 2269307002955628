"""The S3 flags: ``--storage s3://BUCKET/PREFIX`` moves local state to a state folder; S3 flags need S3 storage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyfiledrop import config
from pyfiledrop.errors import ConfigError
from pyfiledrop.storage.s3_client import parse_location
from pyfiledrop.units import GIB


def test_s3_storage_keeps_local_state_in_a_per_user_folder(tmp_path: Path) -> None:
    settings = config.load({"storage": "s3://drop-bucket/team/uploads"}, {"XDG_STATE_HOME": str(tmp_path)})
    assert settings.s3_storage == "s3://drop-bucket/team/uploads"
    assert settings.storage == tmp_path / "pyfiledrop" / "drop-bucket_team_uploads"
    assert settings.database is None  # SQLite, in the state folder
    assert settings.sqlite_path.parent == settings.storage and settings.spool_dir == settings.storage / "spool"
    assert not settings.s3_presign and settings.s3_spool_max == 4 * GIB and settings.s3_presign_expires == 600


def test_s3_flags_and_their_environment_variables(tmp_path: Path) -> None:
    flags = {"storage": "s3://b1/p", "state_dir": str(tmp_path / "state"), "s3_endpoint": "http://127.0.0.1:8333",
             "s3_region": "eu-west-3", "s3_presign": True, "s3_spool": str(tmp_path / "sp"),
             "s3_spool_max": "2G"}  # fmt: skip
    settings = config.load(flags, {"PYFILEDROP_S3_PRESIGN_EXPIRES": "5m"})
    assert settings.storage == tmp_path / "state" and settings.spool_dir == tmp_path / "sp"
    assert (settings.s3_endpoint, settings.s3_region, settings.s3_presign) == (
        "http://127.0.0.1:8333",
        "eu-west-3",
        True,
    )
    assert settings.s3_spool_max == 2 * GIB and settings.s3_presign_expires == 300
    assert config.load({}, {"PYFILEDROP_STORAGE": "s3://b2"}).s3_storage == "s3://b2"


def test_a_folder_stays_local_storage(tmp_path: Path) -> None:
    settings = config.load({"storage": str(tmp_path)}, {})
    assert settings.s3_storage is None and settings.storage == tmp_path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"s3_endpoint": "http://127.0.0.1:8333"}, "--s3-endpoint: only with --storage s3://"),
        ({"s3_presign": True}, "--s3-presign: only with --storage s3://"),
        ({"storage": "s3://Bad_Bucket!/x"}, "--storage takes a folder or s3://BUCKET/PREFIX"),
        ({"storage": "s3://b1/x", "s3_endpoint": "127.0.0.1:8333"}, "--s3-endpoint must be a URL"),
        ({"storage": "s3://b1/x", "s3_spool_max": "lots"}, "--s3-spool-max must be"),
    ],
)
def test_wrong_s3_settings_are_refused_at_load(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(flags, {})


def test_locations_parse_to_bucket_and_prefix() -> None:
    assert parse_location("s3://bucket").prefix == ""
    assert parse_location("s3://bucket//a/b/").key("blobs", "x") == "a/b/blobs/x"
    with pytest.raises(ValueError, match=r"'\.\.'"):
        parse_location("s3://bucket/a/../b")


def test_serve_refuses_an_s3_flag_without_s3_storage_with_the_config_exit_code(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pyfiledrop", "serve", "-s", str(tmp_path), "--s3-presign"],
                          capture_output=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and b"--s3-presign: only with --storage s3://" in done.stderr
