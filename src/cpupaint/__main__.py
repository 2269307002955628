"""``python -m cpupaint`` runs the command line."""

from __future__ import annotations

from cpupaint.cli import main

raise SystemExit(main())
