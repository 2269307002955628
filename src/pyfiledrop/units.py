"""The one size syntax and the one duration syntax of every flag, and the units sizes are shown in.

Sizes: ``500000`` (bytes), ``8M`` / ``10G`` / ``2T`` (binary: MiB, GiB, TiB — what the page and the progress bar
show), ``8MiB`` / ``10GiB`` likewise, ``8MB`` / ``10GB`` (decimal, as a disk maker counts). Durations: ``90s``,
``2m``, ``12h``, ``1d``, ``1w``, ``250ms``; a bare number is in the flag's own unit (seconds for most).
"""

from __future__ import annotations

import re

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

# K/M/G/T alone mean KiB/MiB/GiB/TiB: "8M" is the 8 MiB the page shows, and what people mean by it for a chunk.
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": KIB, "kib": KIB, "ki": KIB, "kb": 10**3,
    "m": MIB, "mib": MIB, "mi": MIB, "mb": 10**6,
    "g": GIB, "gib": GIB, "gi": GIB, "gb": 10**9,
    "t": 1 << 40, "tib": 1 << 40, "ti": 1 << 40, "tb": 10**12,
}  # fmt: skip
_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AMOUNT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(value: object, *, bare_unit: int = 1) -> int:
    """'10G', '8M', '2TiB', '10 GB', '500000' → bytes; a bare number counts ``bare_unit`` bytes each. ValueError
    on anything else (the caller names the flag)."""
    if isinstance(value, bool):
        raise ValueError(value)
    match = _AMOUNT.fullmatch(str(value).replace("_", ""))
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(value)
    unit = match.group(2).lower()
    return int(float(match.group(1)) * (_SIZE_UNITS[unit] if unit else bare_unit))


def parse_duration(value: object, *, bare_unit: float = 1.0) -> float:
    """'90s', '2m', '12h', '1d', '250ms' → seconds; a bare number counts ``bare_unit`` seconds each (so the
    seed's millisecond ``--timeout 120000`` still reads as 2 minutes). ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(value)
    match = _AMOUNT.fullmatch(str(value).replace("_", ""))
    if match is None:
        raise ValueError(value)
    unit = match.group(2).lower()
    if unit and unit not in _SECONDS:
        raise ValueError(value)
    return float(match.group(1)) * (_SECONDS[unit] if unit else bare_unit)


def has_unit(value: object) -> bool:
    match = _AMOUNT.fullmatch(str(value))
    return match is not None and bool(match.group(2))


def format_size(count: float) -> str:
    """Bytes as the page shows them: '512 B', '8.0 MiB', '1.5 GiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """'90s' → '1m30s', 86400 → '1d': the shortest form that reads back through parse_duration's units."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)
