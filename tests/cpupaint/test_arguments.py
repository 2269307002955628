"""Bad arguments end with exit code 2 and a clear message, before any worker starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import pytest

from cpupaint import cli, counters
from tests.cpupaint.helpers import COMMAND

MISSING_CORE = str(max(counters.online_cores()) + 1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["levels", "150"], "150 is outside 0–100"),
        (["levels", "40", "-5"], "-5 is outside 0–100"),
        (["levels", "forty"], "'forty' is not a percent"),
        (["levels", "--all", "101"], "101 is outside 0–100"),
        (["levels", "40", "--cores", MISSING_CORE], f"core {MISSING_CORE} does not exist"),
        (["levels", "--all", "50", "--cores", f"0,{MISSING_CORE}"], f"core {MISSING_CORE} does not exist"),
        (["levels", "--all", "50", "--cores", "0,0"], "names a core twice"),
        (["levels", "40", "50", "--cores", "0"], "2 percents for 1 cores"),
        (["levels", "40", "--all", "50"], "not both"),
        (["levels"], "give a percent per core"),
        (["levels", "--all", "50", "--duration", "3601"], "at most 3600"),
        (["levels", "--all", "50", "--duration", "0"], "more than 0"),
        (["levels", "--all", "50", "--duration", "2", "--tick", "3"], "--tick 3 is longer than --duration 2"),
        (["text", "5 €"], "no glyph for '€'"),
        (["image", "/nonexistent/picture.png"], "cannot read image '/nonexistent/picture.png'"),
        (["watch", "--seconds", "0"], "more than 0"),
        (["watch", "--seconds", "1", "--png", "/nonexistent/dir/out.png"], "does not exist"),
        (["paint"], "invalid choice: 'paint'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    children_before = psutil.Process().children()
    with pytest.raises(SystemExit) as stopped:
        cli.main(arguments)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cpupaint: error: ") and message in err, err
    assert psutil.Process().children() == children_before


def test_an_unreadable_picture_exits_2_from_the_installed_command(tmp_path: Path) -> None:
    picture = tmp_path / "broken.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    finished = subprocess.run([*COMMAND, "image", str(picture)], capture_output=True, text=True, timeout=20)
    assert finished.returncode == 2
    assert f"cpupaint: error: cannot read image '{picture}'" in finished.stderr
    assert "Traceback" not in finished.stderr
