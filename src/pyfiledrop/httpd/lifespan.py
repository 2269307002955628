"""ASGI lifespan: startup before the first connection, shutdown after the last."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pyfiledrop.httpd.state import App

log = logging.getLogger("pyfiledrop.http")


class StartupFailed(Exception):
    pass


class Lifespan:
    def __init__(self, app: App) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        self.task = asyncio.ensure_future(self.app(scope, self.inbox.get, self.answers.put))
        self.inbox.put_nowait({"type": "lifespan.startup"})
        answer = await self._answer()
        if answer.get("type") == "lifespan.startup.failed":
            raise StartupFailed(str(answer.get("message") or "the app did not start"))
        if answer.get("type") != "lifespan.startup.complete":  # ASGI: an app without lifespan raises; serve it anyway
            log.debug("the app does not support lifespan: %s", answer.get("message"))
            self.task = None

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):
            async with asyncio.timeout(30):
                await self._answer()

    async def _answer(self) -> dict[str, Any]:
        assert self.task is not None
        getter = asyncio.ensure_future(self.answers.get())
        done, _ = await asyncio.wait({getter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        error = self.task.exception()
        return {"type": "failed", "message": str(error) if error else "the app's lifespan ended"}
