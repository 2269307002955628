"""Progress with speed and ETA (tqdm on stderr), shared by the threads of one upload; or nothing."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any

from pyfiledrop.units import format_size

# The page's units (KiB, MiB, GiB: powers of 1024, named so): tqdm's own scaling says "MB" for MiB and counts
# its rate in powers of 1000.
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {done_size}/{total_size} [{elapsed}<{remaining}, {speed}]"
_OPEN_FORMAT = "{desc}: {done_size} [{elapsed}, {speed}]"


def _bar_class(base: Any) -> Any:
    class Bar(base):  # type: ignore[misc]
        @property
        def format_dict(self) -> dict[str, Any]:
            values: dict[str, Any] = super().format_dict
            rate = values.get("rate")
            if rate is None and values.get("elapsed"):
                rate = (values["n"] - values.get("initial", 0)) / values["elapsed"]
            values["done_size"] = format_size(values["n"])
            values["total_size"] = format_size(values["total"]) if values.get("total") else "?"
            values["speed"] = f"{format_size(rate)}/s" if rate else "?/s"
            return values

    return Bar


class Progress:
    def __init__(self, name: str, total: int | None, *, enabled: bool, initial: int = 0) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]
            except ImportError:  # pragma: no cover - tqdm is a dependency; progress is a nicety
                return
            label = name if len(name) <= 28 else name[:12] + "…" + name[-15:]
            self._bar = _bar_class(tqdm)(
                total=total, initial=initial, desc=label, unit="B", file=sys.stderr, dynamic_ncols=True,
                smoothing=0.1, mininterval=0.25, leave=True, bar_format=_BAR_FORMAT if total else _OPEN_FORMAT,
            )  # fmt: skip

    def update(self, count: int) -> None:
        if self._bar is not None and count:
            with self._lock:
                self._bar.update(count)

    def note(self, text: str) -> None:
        """A line above the bar (or on stderr when there is none)."""
        if self._bar is not None:
            with self._lock:
                self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
