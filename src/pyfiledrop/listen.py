"""Where the server listens and the addresses a person can open: found from the network interfaces.

Resolving the host name finds nothing useful on a stock Debian or Ubuntu host (it maps to 127.0.1.1), so the
addresses come from the interfaces themselves: IPv4 through the SIOCGIFADDR ioctl per interface, IPv6 from
/proc/net/if_inet6 (global scope only: a link-local address needs a zone to be opened). Elsewhere, the address the
system would route outward through (a UDP "connect" sends nothing).

The default host ``::`` means every address, IPv6 and IPv4: the server (web/server.py) binds it as one socket per
family (asyncio's ``host=None``), so IPv4 clients keep their plain addresses in logs and rate limits rather than
``::ffff:a.b.c.d``. Where the system has no IPv6, :func:`effective_host` falls back to ``0.0.0.0``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

EVERY_ADDRESS = ("::", "0.0.0.0", "")  # noqa: S104 - the hosts that mean "all interfaces"
_SIOCGIFADDR = 0x8915
_IF_INET6 = Path("/proc/net/if_inet6")
_SCOPE_GLOBAL = "00"


def ipv6_available() -> bool:
    """The system can listen on IPv6 (the kernel has it and it is not switched off)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def effective_host(host: str) -> str:
    """``::`` where IPv6 works, else ``0.0.0.0``: the default listens wherever the system allows."""
    if host in ("::", "") and not ipv6_available():
        return "0.0.0.0"  # noqa: S104 - every IPv4 address, the fallback of "every address"
    return host


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, no such address), or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host == "::":
            with contextlib.suppress(OSError):  # dual-stack probe: a port taken on IPv4 shows too
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use; pick another with -p/--port"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def lan_addresses(*, ipv6: bool = True) -> list[str]:
    """Every non-loopback address of this machine's interfaces: IPv4 first, then global IPv6."""
    found = _ipv4_from_interfaces() or _outward_address(socket.AF_INET, "192.0.2.1")
    if ipv6:
        found += _ipv6_from_proc() if _IF_INET6.exists() else _outward_address(socket.AF_INET6, "2001:db8::1")
    usable = []
    for text in found:
        address = ipaddress.ip_address(text)
        if not (address.is_loopback or address.is_link_local or address.is_unspecified) and text not in usable:
            usable.append(text)
    return usable


def url_host(address: str) -> str:
    """An address as it goes in a URL: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def _ipv4_from_interfaces() -> list[str]:
    found = []
    try:
        interfaces = socket.if_nameindex()
    except OSError:
        return []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in interfaces:
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError:  # no IPv4 address on it, or down
                continue
            found.append(socket.inet_ntoa(answer[20:24]))
    return found


def _ipv6_from_proc() -> list[str]:
    """/proc/net/if_inet6: address (32 hex digits), index, prefix length, scope, flags, interface name."""
    found = []
    try:
        lines = _IF_INET6.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[3] == _SCOPE_GLOBAL and len(fields[0]) == 32:
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    return found


def _outward_address(family: socket.AddressFamily, probe_target: str) -> list[str]:
    """The address this machine would send from (a UDP connect routes, it sends no packet)."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((probe_target, 9))
            return [str(probe.getsockname()[0])]
    except OSError:
        return []
