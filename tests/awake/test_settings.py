"""--keep-awake, --awake-grace, --keep-screen-on: flags, PYFILEDROP_* variables and config keys, checked at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyfiledrop import config
from pyfiledrop.errors import ConfigError


def test_defaults() -> None:
    settings = config.load({}, environ={})
    assert (settings.keep_awake, settings.awake_grace, settings.keep_screen_on) == ("auto", 120.0, False)


def test_environment_and_config_file(tmp_path: Path) -> None:
    file = tmp_path / "pyfiledrop.toml"
    file.write_text('keep-awake = "always"\nawake_grace = 5\nkeep-screen-on = true\n')
    from_file = config.load({"config": str(file)}, environ={})
    assert (from_file.keep_awake, from_file.awake_grace, from_file.keep_screen_on) == ("always", 5.0, True)
    environ = {"PYFILEDROP_KEEP_AWAKE": "never", "PYFILEDROP_AWAKE_GRACE": "0.5", "PYFILEDROP_KEEP_SCREEN_ON": "no"}
    from_env = config.load({"config": str(file)}, environ=environ)
    assert (from_env.keep_awake, from_env.awake_grace, from_env.keep_screen_on) == ("never", 0.5, False)
    from_flags = config.load({"keep_awake": "auto", "awake_grace": "7"}, environ=environ)
    assert (from_flags.keep_awake, from_flags.awake_grace) == ("auto", 7.0)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PYFILEDROP_KEEP_AWAKE", "sometimes", "--keep-awake must be one of auto, always, never"),
        ("PYFILEDROP_AWAKE_GRACE", "-1", "--awake-grace must be a number of seconds"),
        ("PYFILEDROP_AWAKE_GRACE", "soon", "--awake-grace must be a number of seconds"),
        ("PYFILEDROP_AWAKE_GRACE", "nan", "--awake-grace must be a number of seconds"),
        ("PYFILEDROP_KEEP_SCREEN_ON", "maybe", "--keep-screen-on must be true or false"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load({}, environ={name: value})


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--keep-awake", "sometimes"], "invalid choice"), (["--awake-grace", "-3"], "--awake-grace must be")],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    result = subprocess.run([sys.executable, "-m", "pyfiledrop", "serve", "-s", str(tmp_path / "s"), *args],
                            capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
