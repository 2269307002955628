"""The bare ASGI baseline: an app that writes each request body to a file in $SINK_DIR, then fsyncs.

Run under granian or uvicorn by the benchmark (``asgi_sink:app``); no framework, no hashing, no checks.
"""

import hashlib
import os

SINK_DIR = os.environ.get("SINK_DIR", "/tmp")
HASH = os.environ.get("SINK_HASH") == "1"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    name = scope["path"].rsplit("/", 1)[-1] or "upload"
    path = os.path.join(SINK_DIR, os.path.basename(name))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    hasher = hashlib.sha256() if HASH else None
    size = 0
    try:
        while True:
            message = await receive()
            body = message.get("body", b"")
            if body:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                size += len(body)
                if hasher is not None:
                    hasher.update(body)
            if not message.get("more_body", False):
                break
        os.fsync(fd)
    finally:
        os.close(fd)
    text = f"{size} {hasher.hexdigest() if hasher else ''}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": text})
