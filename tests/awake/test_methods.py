"""Which methods are tried where. Windows and macOS are not run here: what is checked is the selection that
wakepy's own registry and platform rules make for them, and that on this Linux machine those methods are not
tried at all (no pretending they ran)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from wakepy.core.constants import IdentifiedPlatformType, ModeName, PlatformType
from wakepy.core.registry import get_method

from pyfiledrop.awake import methods
from pyfiledrop.awake.hold import LOGIND, Hold
from tests.awake.conftest import Buses


@pytest.mark.parametrize("screen", [False, True])
def test_windows_uses_set_thread_execution_state_with_the_display_flag_only_for_the_screen(screen: bool) -> None:
    assert methods.plan(IdentifiedPlatformType.WINDOWS, screen) == ["SetThreadExecutionState"]
    method = get_method("SetThreadExecutionState", methods.wakepy_mode(screen))
    assert PlatformType.WINDOWS in method.supported_platforms
    es_display_required = 0x00000002
    assert bool(int(method.flags) & es_display_required) is screen


@pytest.mark.parametrize("screen", [False, True])
def test_macos_uses_caffeinate(screen: bool) -> None:
    assert methods.plan(IdentifiedPlatformType.MACOS, screen) == ["caffeinate"]
    method = get_method("caffeinate", methods.wakepy_mode(screen))
    assert PlatformType.MACOS in method.supported_platforms


def test_linux_tries_logind_first_then_the_desktop_sessions_inhibitors() -> None:
    assert methods.plan(IdentifiedPlatformType.LINUX) == [
        LOGIND, "org.freedesktop.PowerManagement", "org.gnome.SessionManager"]  # fmt: skip
    assert methods.plan(IdentifiedPlatformType.LINUX, screen=True) == [
        LOGIND, "org.freedesktop.ScreenSaver", "org.gnome.SessionManager"]  # fmt: skip
    assert methods.wakepy_mode(True) is ModeName.KEEP_PRESENTING


def test_no_logind_off_linux() -> None:
    for platform in (IdentifiedPlatformType.WINDOWS, IdentifiedPlatformType.MACOS, IdentifiedPlatformType.FREEBSD):
        assert LOGIND not in methods.plan(platform)


def test_here_the_plan_is_linuxs() -> None:
    assert Hold().methods() == methods.plan(IdentifiedPlatformType.LINUX)


@pytest.mark.parametrize("name", ["SetThreadExecutionState", "caffeinate"])
def test_the_other_platforms_methods_are_not_tried_on_linux(make_buses: Callable[..., Buses], name: str) -> None:
    buses = make_buses(logind=True, desktop=True)
    hold = Hold(methods=[name])
    outcome = hold.acquire("test")
    assert (outcome.held, outcome.method, hold.held) == (False, None, False)
    assert buses.events() == [], "nothing else was tried in their place"
