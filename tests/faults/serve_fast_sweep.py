"""``pyfiledrop serve`` sweeping every N seconds instead of every 60: ``python serve_fast_sweep.py N serve …``.

The sweep interval is a module constant of the app (``pyfiledrop.web.app._SWEEP_INTERVAL``), not a setting. The
server runs in this very process, so it uses the module as patched here. Used by the crash loop, so that kills
also land in the middle of sweeps.
"""

from __future__ import annotations

import sys

import pyfiledrop.web.app as app_module
from pyfiledrop import cli

if __name__ == "__main__":
    app_module._SWEEP_INTERVAL = float(sys.argv.pop(1))
    raise SystemExit(cli.main())
