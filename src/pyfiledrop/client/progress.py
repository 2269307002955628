"""Progress with speed and ETA (tqdm on stderr), shared by the threads of one upload; or nothing."""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any


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
            self._bar = tqdm(
                total=total, initial=initial, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, dynamic_ncols=True, smoothing=0.1, mininterval=0.25, leave=True,
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
