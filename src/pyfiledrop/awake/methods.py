"""Which methods keep the host awake, in which order, on which platform.

Linux: our logind inhibitor first (the system bus is there on a headless server as on a desktop), then wakepy's
desktop-session methods (org.freedesktop.PowerManagement, org.gnome.SessionManager; org.freedesktop.ScreenSaver
too with the screen kept on). Windows and macOS: wakepy's methods (SetThreadExecutionState, caffeinate). wakepy's
own registry, platform rules and ordering decide which of its methods apply, so a newer wakepy brings its newer
methods along.

logind is not registered as a wakepy method: wakepy builds its Method objects itself from the class (no per-call
arguments, so the reason given to logind and the block-or-delay outcome would have to travel through globals) and
its D-Bus adapter opens connections without file-descriptor passing, which logind's answer needs.
"""

from __future__ import annotations

import wakepy  # noqa: F401 - importing the package registers its methods
from wakepy.core.constants import IdentifiedPlatformType, ModeName
from wakepy.core.platform import get_current_platform, get_platform_supported
from wakepy.core.prioritization import order_methods_by_priority
from wakepy.core.registry import get_methods_for_mode

from pyfiledrop.awake.hold import LOGIND


def wakepy_mode(screen: bool) -> ModeName:
    return ModeName.KEEP_PRESENTING if screen else ModeName.KEEP_RUNNING


def wakepy_methods(platform: IdentifiedPlatformType, screen: bool) -> list[str]:
    """wakepy's methods that may work on ``platform``, in the order wakepy would try them."""
    candidates = [
        method
        for method in get_methods_for_mode(wakepy_mode(screen))
        if get_platform_supported(platform, method.supported_platforms) is not False
    ]
    return [str(method.name) for method in order_methods_by_priority(candidates)]


def plan(platform: IdentifiedPlatformType | None = None, screen: bool = False) -> list[str]:
    """The methods to try, best first."""
    platform = get_current_platform() if platform is None else platform
    methods = wakepy_methods(platform, screen)
    return [LOGIND, *methods] if platform is IdentifiedPlatformType.LINUX else methods
