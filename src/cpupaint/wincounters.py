"""Windows 8+: Task Manager's per-core "% Processor Utility" (frequency-scaled, may exceed 100 %), through PDH.

The counter is a rate over the interval between two collections; integrating it over time gives cumulative "busy
seconds" that fit the same ``CoreTimes`` arithmetic as the idle-based counters elsewhere. When the counter is
missing (Windows 7 and older, or PDH unavailable), ``open_utility`` returns None and psutil's times are used.

Cores are named as PDH instances "group,number", assuming processor groups of 64 logical cores, which is how
Windows fills groups on machines with up to 64 cores per NUMA node.
"""

from __future__ import annotations

import sys
import time

from cpupaint.counters import CoreTimes

PDH_FMT_DOUBLE = 0x00000200
PDH_FMT_NOCAP100 = 0x00008000
GROUP_SIZE = 64

if sys.platform == "win32":
    import ctypes
    from ctypes import wintypes

    class _CounterValue(ctypes.Structure):
        _fields_ = [("status", wintypes.DWORD), ("value", ctypes.c_double)]

    class ProcessorUtility:
        """One PDH query with a "% Processor Utility" counter per core; ``read`` integrates them over time."""

        def __init__(self, cores: list[int]) -> None:
            self._pdh = ctypes.WinDLL("pdh")
            self._query = ctypes.c_void_p()
            if self._pdh.PdhOpenQueryW(None, None, ctypes.byref(self._query)) != 0:
                raise OSError("PdhOpenQueryW failed")
            self._counters: dict[int, ctypes.c_void_p] = {}
            for core in cores:
                handle = ctypes.c_void_p()
                path = f"\\Processor Information({core // GROUP_SIZE},{core % GROUP_SIZE})\\% Processor Utility"
                if self._pdh.PdhAddEnglishCounterW(self._query, path, None, ctypes.byref(handle)) != 0:
                    raise OSError(f"no PDH counter {path}")
                self._counters[core] = handle
            self._busy = dict.fromkeys(cores, 0.0)
            self._total = dict.fromkeys(cores, 0.0)
            self._pdh.PdhCollectQueryData(self._query)
            self._last = time.monotonic()

        def read(self) -> dict[int, CoreTimes]:
            if self._pdh.PdhCollectQueryData(self._query) == 0:
                now = time.monotonic()
                elapsed, self._last = now - self._last, now
                for core, handle in self._counters.items():
                    value = _CounterValue()
                    flags = PDH_FMT_DOUBLE | PDH_FMT_NOCAP100
                    if self._pdh.PdhGetFormattedCounterValue(handle, flags, None, ctypes.byref(value)) == 0:
                        self._busy[core] += value.value / 100.0 * elapsed
                    self._total[core] += elapsed
            return {core: CoreTimes(self._busy[core], self._total[core]) for core in self._counters}

    def open_utility(cores: list[int]) -> ProcessorUtility | None:
        try:
            return ProcessorUtility(cores)
        except (OSError, AttributeError):
            return None
