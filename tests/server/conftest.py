"""The live-server fixtures of ``test_connection`` (``app``, ``start``, ``server``), for the other test modules here."""

from tests.server.test_connection import app, server, start

__all__ = ["app", "server", "start"]
