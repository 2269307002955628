"""A logged value a client chose (a path, a name) cannot forge a log line: the server's formatter escapes controls."""

from __future__ import annotations

import logging
import sys

from pyfiledrop.logs import TextFormatter


def _format(message: str, *args: object, exc_info: bool = False) -> str:
    formatter = TextFormatter()
    record = logging.LogRecord("pyfiledrop.http", logging.ERROR, __file__, 1, message, args,
                               sys.exc_info() if exc_info else None)  # fmt: skip
    return formatter.format(record)


def test_control_characters_in_a_logged_value_stay_on_the_line() -> None:
    line = _format("unhandled error in %s %s", "GET", "/x\r\n2026-01-01 00:00:00.000 INFO pyfiledrop: forged\x00\u2028")
    assert "\n" not in line and "\r" not in line and "\x00" not in line and "\u2028" not in line
    assert line.endswith("/x\\r\\n2026-01-01 00:00:00.000 INFO pyfiledrop: forged\\x00\\u2028")
    assert "naïve résumé" in _format("complete %s", "naïve résumé")  # printable text is left alone


def test_a_traceback_still_follows_on_its_own_lines() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        text = _format("failed for %s", "a\nb", exc_info=True)
    first, *rest = text.split("\n")
    assert first.endswith("failed for a\\nb")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"
