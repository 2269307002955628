"""cpupaint: paint pictures into the per-core CPU history graphs of Task Manager, htop and friends.

A companion tool shipped beside pyfiledrop; it shares nothing with the server but the packaging.
"""

from __future__ import annotations

__version__ = "0.1.0"
