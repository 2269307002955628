"""The size and duration syntax, the units shown, and what the logs remove (pure functions)."""

from __future__ import annotations

import pytest

from pyfiledrop import logs, units
from pyfiledrop.engine.events import Throttle


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500000", 500_000), ("8M", 8 << 20), ("8MiB", 8 << 20), ("10G", 10 << 30), ("10 GB", 10 * 10**9),
     ("1.5K", 1536), ("2T", 2 << 40), ("1_000", 1000), ("0", 0)],
)  # fmt: skip
def test_sizes(text: str, expected: int) -> None:
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "10X", "-5", "1e3", "ten", "5 G B"])
def test_sizes_refused(text: str) -> None:
    with pytest.raises(ValueError):
        units.parse_size(text)


@pytest.mark.parametrize(
    ("text", "bare", "expected"),
    [("90s", 1.0, 90.0), ("2m", 1.0, 120.0), ("1d", 1.0, 86400.0), ("12h", 1.0, 43200.0), ("250ms", 1.0, 0.25),
     ("1w", 1.0, 604800.0), ("3600", 1.0, 3600.0), ("120000", 0.001, 120.0)],
)  # fmt: skip
def test_durations(text: str, bare: float, expected: float) -> None:
    assert units.parse_duration(text, bare_unit=bare) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "s", "5y", "-1s", "1h30m"])
def test_durations_refused(text: str) -> None:
    with pytest.raises(ValueError):
        units.parse_duration(text)


def test_sizes_and_durations_read_as_the_page_shows_them() -> None:
    assert [units.format_size(n) for n in (512, 8 << 20, 3 << 29)] == ["512 B", "8.0 MiB", "1.5 GiB"]
    assert [units.format_duration(s) for s in (90, 86400, 3725, 0.25)] == ["1m30s", "1d", "1h2m5s", "250ms"]


def test_safe_path_keeps_ids_and_removes_tokens() -> None:
    assert logs.safe_path("/d/SeCrEtToKeN123/photo.jpg", "") == "/d/[redacted]/photo.jpg"
    assert logs.safe_path("/s/AbCdEfGhIjKlMnOpQrStUv", "") == "/s/[redacted]"
    assert logs.safe_path("//s/AbCdEfGhIjKlMnOpQrStUv", "") == "//s/[redacted]"
    assert logs.safe_path("/files/abc123", "") == "/files/abc123"
    assert logs.safe_path("/", "admin=tok&limit=50&x") == "/?admin=[redacted]&limit=50&x"
    assert logs.safe_path("/api/uploads", "token=abc&sort=name") == "/api/uploads?token=[redacted]&sort=name"


def test_scrub_removes_known_secrets_and_token_paths() -> None:
    logs.add_secret("a-very-secret-admin-token")
    logs.add_secret("short")  # too short to be told from ordinary words: not added
    line = "GET http://h/d/SeCrEtToKeN123/x?token=zzz with a-very-secret-admin-token, short"
    assert logs.scrub(line) == "GET http://h/d/[redacted]/x?token=[redacted] with [redacted], short"


def test_throttle_says_yes_once_a_while_per_key() -> None:
    throttle = Throttle(seconds=60, keys=2)
    assert throttle.first_in_a_while("a", now=0) and not throttle.first_in_a_while("a", now=30)
    assert throttle.first_in_a_while("a", now=61)
    assert throttle.first_in_a_while("b", now=61) and throttle.first_in_a_while("c", now=61)
    assert throttle.first_in_a_while("a", now=62)  # forgotten: at most two keys are kept


def test_without_ipv6_the_default_host_falls_back_to_every_ipv4_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyfiledrop import listen

    assert listen.effective_host("127.0.0.1") == "127.0.0.1"
    monkeypatch.setattr(listen.socket, "has_ipv6", False)
    assert listen.effective_host("::") == "0.0.0.0"


def test_banner_for_ipv4_only_and_behind_a_public_url() -> None:
    from pyfiledrop import cli, config, listen

    ipv4 = cli.banner(config.load({"host": "0.0.0.0", "port": "5555"}, {}), "tok-123456789")
    assert "[" not in ipv4.split("Admin:")[0]  # no IPv6 address offered when listening on IPv4 only
    for address in listen.lan_addresses(ipv6=False):
        assert f"http://{address}:5555/" in ipv4
    public = cli.banner(config.load({"public_url": "https://drop.example.org/", "port": "5555"}, {}), "tok-123456789")
    assert "Admin:  https://drop.example.org/?admin=tok-123456789" in public
    assert public.count("tok-123456789") == 1


def test_upload_timeout_takes_the_duration_syntax() -> None:
    from pyfiledrop.client import UsageError, _duration

    assert _duration("--timeout", "2m") == 120 and _duration("--timeout", "45") == 45
    with pytest.raises(UsageError, match="--timeout must be a duration like 90s"):
        _duration("--timeout", "soon")
