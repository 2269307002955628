"""pyfiledrop's HTTP/1.1 server: an ASGI 3 server (``http`` and ``lifespan``) on asyncio, in this process.

It knows nothing of pyfiledrop's routes, storage or engine: it imports only the standard library and the two low
utilities ``pyfiledrop.sockets`` (filling a buffer from a socket) and ``pyfiledrop.workers`` (awaiting a thread's
job). Any ASGI app runs on it; pyfiledrop's own app (``pyfiledrop.web.app``) also runs under uvicorn.

Chosen by measurement over granian and uvicorn (see benchmarks/PROFILE.md): both hand the body to Python in
pieces, each a fresh bytes object and a wake-up of the event loop, which cost more CPU than hashing the bytes.

Beyond plain ASGI it offers, in ``scope["extensions"]``:

``pyfiledrop.readinto`` — the request body read by a worker thread straight from the socket into the caller's
buffer (not under TLS or for chunked bodies, where pieces are copied instead). Each is ``await``-ed:

- ``readinto(view, idle_timeout, observe=None) -> int``: fill ``view``; 0 at the end of the body, a short count
  may come before it. Raises ConnectionError when the client left or sent a malformed body, TimeoutError after
  ``idle_timeout`` seconds without a byte (bytes that arrived before either come first). ``observe(view[:n])``
  is called in the reading thread before it returns (the hash sees the bytes while they are in that CPU's cache).
- ``read_whole(view, idle_timeout, then) -> T``: a whole Content-Length body of exactly ``len(view)`` bytes; returns
  ``then()``, run in the thread that read the last bytes.
- ``pump(target, idle_timeout) -> int | None``: read into ``target.next_view()`` views, calling
  ``target.filled(n)``, in one thread until the body ends or the target returns None; None when the body cannot be
  read that way (chunked, TLS).
- ``lend(view, idle_timeout, work) -> bool``: lend the socket's descriptor to ``await work(fd, filled,
  idle_timeout) -> (count, error)`` (e.g. another process) for the rest of a Content-Length body of ``len(view)``
  bytes; False, with nothing read, when it cannot (chunked, TLS, the body already here).

``http.response.pathsend`` — ``{"type": "http.response.pathsend", "path": ...}`` sends a file with ``sendfile``.

An app may word the answers the server makes on its own (a malformed head or body) by giving itself an attribute
``refusal(path, status, message) -> (content_type, body)`` (``response.Refusal``); plain text otherwise.

Modules: ``wire`` (request heads, pure), ``response`` (response heads, pure), ``state`` (options and what the
connections share), ``connection`` (one socket under asyncio), ``head`` (reading heads; the request loop),
``body`` (request bodies), ``exchange`` (one request and its response), ``sendfile`` (files, with the send
timeout), ``listener`` (accepting while there is room), ``limits`` (open files), ``lifespan``, ``server``.
See docs/httpd.md for the HTTP/1.1 rules it keeps whatever the app does.
"""
