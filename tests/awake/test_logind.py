"""Our logind inhibitor against a fake logind on a private system bus, found through DBUS_SYSTEM_BUS_ADDRESS, and
wakepy's session-bus methods found through DBUS_SESSION_BUS_ADDRESS."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from pyfiledrop.awake import logind
from pyfiledrop.awake.hold import Hold
from tests.awake.conftest import Buses


def test_the_lock_is_the_descriptor_and_closing_it_releases_it(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)
    inhibitor = logind.inhibit("sleep", "3 uploads in flight")
    assert (inhibitor.what, inhibitor.mode) == ("sleep", "block")
    assert os.get_inheritable(inhibitor.fd) is False, "a child process must not keep it alive"
    buses.wait_for(lambda: len(buses.held()) == 1)
    assert buses.events()[0]["why"] == "3 uploads in flight"
    inhibitor.release()
    inhibitor.release()  # twice is harmless
    buses.wait_for(lambda: buses.held() == [], what="the release")


def test_a_refused_block_gives_a_delay_inhibitor(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False, extra=["--refuse-block"])
    inhibitor = logind.inhibit("sleep", "why")
    assert inhibitor.mode == "delay" and "AccessDenied" in inhibitor.refusal
    inhibitor.release()
    buses.wait_for(lambda: buses.held() == [])


def test_a_bus_without_logind_says_so(make_buses: Callable[..., Buses]) -> None:
    make_buses(logind=False, desktop=False)
    with pytest.raises(logind.Unavailable, match="no logind on the system bus"):
        logind.inhibit("sleep", "why")


def test_no_bus_says_where_it_looked(make_buses: Callable[..., Buses]) -> None:
    make_buses(logind=False, desktop=False, system_bus=False)
    with pytest.raises(logind.Unavailable, match=r"no system bus at .*no-system-bus\.socket"):
        logind.inhibit("sleep", "why")


def test_wakepys_methods_use_the_session_bus_the_environment_names(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=False, desktop=True)
    hold = Hold(methods=["org.gnome.SessionManager"])
    outcome = hold.acquire("why")
    assert (outcome.held, outcome.method) == (True, "org.gnome.SessionManager")
    (taken,) = buses.events("org.gnome.SessionManager")
    assert taken["flags"] == 4  # INHIBIT_SUSPEND
    hold.release()
    assert buses.held("org.gnome.SessionManager") == []


def test_the_hold_falls_back_from_logind_to_the_desktop(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=False, desktop=True, extra=["--only", "org.gnome.SessionManager"])
    hold = Hold()
    outcome = hold.acquire("why")
    assert (outcome.held, outcome.method) == (True, "org.gnome.SessionManager")
    assert len(buses.held("org.gnome.SessionManager")) == 1
    with pytest.raises(RuntimeError):
        hold.acquire("again")
    hold.release()
    assert buses.held("org.gnome.SessionManager") == []
