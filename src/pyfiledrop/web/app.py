"""create_app(settings) → the ASGI app: routes, lifespan, the one error boundary."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING

from pyfiledrop import config
from pyfiledrop.awake.tracker import Tracker
from pyfiledrop.config import Settings
from pyfiledrop.engine.claims import Claims, FileClaims
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import WHOLE_BUFFERS, Limits, UploadService
from pyfiledrop.engine.views import Views
from pyfiledrop.errors import DropNotFound
from pyfiledrop.meta.drops import DROP_OWNER_PREFIX, DropStore
from pyfiledrop.meta.factory import Store, make_store
from pyfiledrop.meta.jobs import JobStore
from pyfiledrop.meta.settings import shared_settings
from pyfiledrop.meta.shares import ShareStore
from pyfiledrop.meta.sql import is_postgres_url
from pyfiledrop.meta.views import ViewStore
from pyfiledrop.protocols import dropzone, put, tus
from pyfiledrop.protocols.tus_headers import TUS_VERSION
from pyfiledrop.storage import intake
from pyfiledrop.storage.base import Capability, Storage
from pyfiledrop.storage.buffers import POOL
from pyfiledrop.storage.local import LocalStorage
from pyfiledrop.storage.reserve import SpaceReserve
from pyfiledrop.video.jobs import VideoJobs
from pyfiledrop.web import api, downloads, drops, listing, openapi, routing, share_links, shares, video
from pyfiledrop.web.access import Access
from pyfiledrop.web.auth import Authenticator, token_headers
from pyfiledrop.web.conditional import not_modified
from pyfiledrop.web.context import Context
from pyfiledrop.web.cors import Cors
from pyfiledrop.web.errors import Style, refusal, render, style_for
from pyfiledrop.web.guard import check_csrf
from pyfiledrop.web.http import Receive, Request, Response, Scope, Send, text_response

if TYPE_CHECKING:
    from pyfiledrop.storage.s3 import S3Storage

log = logging.getLogger("pyfiledrop")

Handler = Callable[[], Awaitable[Response | None]]

_SWEEP_INTERVAL = 60.0
_ORPHAN_SWEEP_INTERVAL = 3600.0  # listing a bucket costs requests: once an hour (the orphans' grace is an hour too)
_NAMING_GRACE_SECONDS = 60.0  # among live replicas, an upload finished this recently is named by its completer
_PAGE_HEADERS = [
    ("content-security-policy",
     "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    ("x-frame-options", "DENY"),
]  # fmt: skip
_COMMON_HEADERS = [("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer")]
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".ico": "image/x-icon", ".png": "image/png", ".json": "application/json",
}  # fmt: skip


def tus_extensions(capabilities: frozenset[Capability]) -> tuple[str, ...]:
    """Advertise only what the storage backend can do (tusd's composer)."""
    extensions = ["creation", "creation-with-upload", "creation-defer-length", "termination", "checksum",
                  "expiration"]  # fmt: skip
    if Capability.CONCAT in capabilities:
        extensions.append("concatenation")
    return tuple(extensions)


class App:
    refusal = staticmethod(refusal)  # how the HTTP server words the answers it makes on its own (web/errors.py)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ctx: Context | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._intake: intake.Intake | None = None
        self.awake = Tracker(settings.keep_awake, settings.awake_grace, settings.keep_screen_on)
        self.cors = Cors(settings.cors_origins, settings.public_url)
        self._views: Views | None = None
        self._s3: S3Storage | None = None
        self._orphans_due = 0.0  # S3: when the sweep next looks for multipart uploads no record knows

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match scope["type"]:
            case "http":
                await self._http(scope, receive, send)
            case "lifespan":
                await self._lifespan(receive, send)

    # -- lifespan -----------------------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        _keep_body_buffers_in_the_heap()
        s = self.settings
        config.check_folders(s)
        fsync_files = s.durability != "none"
        if s.helpers and intake.available() and s.s3_storage is None:
            try:
                self._intake = intake.Intake(s.storage, s.chunks_dir, fsync_files=fsync_files,
                                             fsync_names=s.durability == "chunk", slots=WHOLE_BUFFERS,
                                             processes=s.helpers)  # fmt: skip
            except OSError as exc:  # a kernel without memfd: the server receives small uploads itself
                log.warning("no upload helpers (%s); the server receives small uploads itself", exc)
        storage: Storage
        if s.s3_storage is not None:
            storage = self._s3 = await _s3_storage(s)
        else:
            storage = LocalStorage(s.storage, s.chunks_dir, fsync_chunks=s.durability == "chunk",
                                   fsync_files=fsync_files, intake=self._intake)  # fmt: skip
        reserve = SpaceReserve(s.sqlite_path.with_name(".pyfiledrop.reserve"))  # beside the database, on its disk
        if not await asyncio.to_thread(reserve.ready):
            log.warning("the disk holding %s is nearly full: uploads get 507 until space is freed", s.sqlite_path)
        synchronous = "FULL" if s.durability == "chunk" else "NORMAL"
        meta = make_store(s, synchronous=synchronous, on_full=reserve.release)
        await meta.open()
        limits = Limits(s.max_size_bytes, s.min_free_bytes, s.quota_bytes, s.owner_quota_bytes, s.expire_after_seconds)
        claims = _claims(s)
        service = UploadService(storage, meta, limits, reserve, activity=self.awake, claims=claims)
        lifecycle = Lifecycle(service, s.stale_after)
        admin_token = s.admin_token or os.environ.get("PYFILEDROP_ADMIN_TOKEN") or ""
        secret, shared_admin = await shared_settings(meta, s, admin_token)
        auth = Authenticator(secret, admin_token or _unusable_token(), admin_sha256=shared_admin)
        access = Access(s, auth, DropStore(meta), secret)
        jobs = VideoJobs(service, JobStore(meta), s.chunks_dir / "video-jobs", s.video_jobs or os.cpu_count() or 1)
        jobs.listeners.append(_JobsKeepAwake(self.awake))
        await jobs.open()
        self.ctx = Context(s, service, auth, tus_extensions(storage.capabilities), lifecycle, ShareStore(meta), access,
                           awake=self.awake, video=jobs)  # fmt: skip
        self._views = await _named_tree(s, service, storage, meta, access.drops)
        report = await lifecycle.on_startup()
        if report.completed or report.partial_orphans or report.blob_orphans:
            log.info("recovered after a crash: %s", report)
        await self._views.start(meta.get, None if lifecycle.alone else time.time() - _NAMING_GRACE_SECONDS)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        await self.awake.start()

    async def shutdown(self) -> None:
        self.awake.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._views is not None:
            await self._views.stop()
        if self.ctx is not None:
            await self.ctx.service.joins.close()  # a join cut off here is done again at the next start
            if self.ctx.video is not None:
                await self.ctx.video.close()
            await self.ctx.service.meta.close()
            self.ctx.service.claims.close()
        if self._s3 is not None:
            self._s3.close()
        if self._intake is not None:
            await self._intake.close()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")

    async def sweep(self) -> None:
        """Drop stale unfinished uploads (--stale-after) and expired finished ones (--expire-after); give back
        the body buffers a burst of uploads left idle."""
        assert self.ctx is not None
        await self.ctx.lifecycle.sweep()
        if self._s3 is not None and time.monotonic() >= self._orphans_due:
            self._orphans_due = time.monotonic() + _ORPHAN_SWEEP_INTERVAL
            if removed := await self.ctx.lifecycle.sweep_orphans():
                log.info("removed %d S3 upload(s) or object(s) that no record knows", removed)
        POOL.trim()
        if self._intake is not None:
            await self._intake.trim()

    # -- requests -----------------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.ctx is not None, "lifespan did not run"
        request = Request(scope, receive)
        request.behind_proxy = self.settings.behind_proxy
        request.idle_timeout = self.settings.timeout / 1000  # --timeout, also for small JSON bodies
        style = style_for(request.path)
        extra = self.cors.headers(request) if Cors.applies(request) else []
        try:
            self.cors.check(request)
            check_csrf(request, self.settings.public_url)
            response = await self._route(self.ctx, request, send)
        except ConnectionError:  # send() found the client gone (ASGI: an OSError): no one to answer; the server logs it
            return
        except Exception as exc:  # noqa: BLE001 - the one place that turns errors into responses
            response = render(exc, style)
            if not request.body_consumed and request.method in ("POST", "PUT", "PATCH"):
                response.header("connection", "close")  # the unread body cannot be skipped cheaply
        if response is None:
            return  # streamed by the handler
        if style is Style.TUS:
            response.headers.append(("tus-resumable", TUS_VERSION))
            if response.status == 412:
                response.header("tus-version", TUS_VERSION)
        response.headers += [*extra, *_COMMON_HEADERS]
        await response.send(send, head=request.method == "HEAD")

    async def _route(self, ctx: Context, request: Request, send: Send) -> Response | None:
        method = request.headers.get("x-http-method-override", request.method).upper()
        parts = request.path.strip("/").split("/") if request.path.strip("/") else []
        match method, parts:
            case "OPTIONS", _:
                return await self._options(ctx, request, parts)
            case "POST" | "HEAD" | "PATCH" | "DELETE", ["files", *_]:  # other methods: 405 before the tus version
                tus.check_version(request)
                return await self._tus(ctx, request, method, parts)
            case "GET" | "HEAD", ["files", key] | ["download", key]:
                await downloads.serve(ctx, request, send, key)
                return None
            case _, ["s", token, *rest]:
                return await self._share_link(ctx, request, send, method, [token, *rest])
            case "POST", ["upload"]:
                return await dropzone.upload(ctx, request)
            case "PUT", _ if not routing.is_reserved(parts):
                return await self._put(ctx, request, parts)
            case _, ["api", *rest]:
                return await self._api(ctx, request, "GET" if method == "HEAD" else method, rest)
            case "GET" | "HEAD", []:
                return self._page(request, "index.html")
            case "GET" | "HEAD", ["d", _]:
                return self._page(request, "index.html", drop=True)
            case "GET" | "HEAD", ["favicon.ico"]:
                return self._static(request, "favicon.svg", cache=True)
            case "GET" | "HEAD", ["static", name]:
                return self._static(request, name, cache=False)
        return routing.unrouted(method, parts)

    async def _options(self, ctx: Context, request: Request, parts: list[str]) -> Response:
        """tus's OPTIONS on /files/; a CORS preflight like it everywhere else (Dropzone's POST /upload, the API, a
        PUT), so that a page on another origin calls them all alike."""
        if parts[:1] == ["files"] and len(parts) <= 2:
            return await tus.options(ctx, request)
        if Cors.applies(request) and request.header("access-control-request-method") is not None:
            return self.cors.preflight(request)
        return routing.unrouted("OPTIONS", parts)  # 204 with Allow on a known path, else 404

    async def _tus(self, ctx: Context, request: Request, method: str, parts: list[str]) -> Response:
        match method, parts:
            case "POST", ["files"]:
                return await tus.create(ctx, request)
            case "HEAD", ["files", key]:
                return await tus.head(ctx, request, key)
            case "PATCH", ["files", key]:
                return await tus.patch(ctx, request, key)
            case "DELETE", ["files", key]:
                return await tus.delete(ctx, request, key)
            case _, ["files", _, *_]:
                return text_response("not found: an upload URL has no sub-paths\n", 404)
        return routing.unrouted(method, parts)

    async def _api(self, ctx: Context, request: Request, method: str, rest: list[str]) -> Response:
        match method, rest:
            case "GET", ["config"]:
                return await api.config(ctx, request)
            case "GET" | "POST", ["session"]:
                return await api.session(ctx, request)
            case "POST", ["forget"]:
                return api.forget(request)
            case "POST", ["login"]:
                return await api.login(ctx, request)
            case _, ["drops", *below]:
                return await self._api_drops(ctx, request, method, below)
            case _, ["uploads", *below]:
                return await self._api_uploads(ctx, request, method, below)
            case _, ["jobs", job_id]:
                return await video.job(ctx, request, method, job_id)
            case _, ["shares", *below]:
                return await self._api_shares(ctx, request, method, below)
            case "POST", ["admin", "verify"]:
                return await api.admin_verify(ctx, request)
            case "GET", ["admin", "stats"]:
                return await api.admin_stats(ctx, request)
            case "GET", ["openapi.json"]:
                return openapi.document()
        return routing.unrouted(method, ["api", *rest])

    async def _put(self, ctx: Context, request: Request, parts: list[str]) -> Response:
        name = request.raw_path.rsplit("/", 1)[-1]  # raw: a %2F in the name stays in the name
        match parts:
            case ["d", token, *rest]:  # curl -T file https://host/d/TOKEN/name.ext: through a drop link
                return await put.put(ctx, request, name if rest else "", drop_token=token)
        return await put.put(ctx, request, name)

    async def _api_drops(self, ctx: Context, request: Request, method: str, below: list[str]) -> Response:
        match method, below:
            case "GET", ["current"]:
                return await drops.current(ctx, request)
            case "POST", ["current"]:
                return await drops.check_password(ctx, request)
            case "GET", []:
                return await drops.list_drops(ctx, request)
            case "POST", []:
                return await drops.create(ctx, request)
            case "DELETE", [drop_id]:
                return await drops.revoke(ctx, request, drop_id)
        return routing.unrouted(method, ["api", "drops", *below])

    async def _share_link(self, ctx: Context, request: Request, send: Send, method: str,
                          path: list[str]) -> Response | None:  # fmt: skip
        match method, path:
            case "GET" | "HEAD", [token, *rest]:
                return await share_links.serve(ctx, request, send, token, rest)
            case "POST", [token]:
                return await share_links.unlock(ctx, request, token)
        return routing.unrouted(method, ["s", *path])

    async def _api_shares(self, ctx: Context, request: Request, method: str, below: list[str]) -> Response:
        match method, below:
            case "GET", []:
                return await shares.list_mine(ctx, request)
            case "POST", []:
                return await shares.create_selection(ctx, request)
            case "DELETE", [share_id]:
                return await shares.revoke(ctx, request, share_id)
        return routing.unrouted(method, ["api", "shares", *below])

    async def _api_uploads(self, ctx: Context, request: Request, method: str, below: list[str]) -> Response:
        match method, below:
            case "GET", []:
                return await listing.list_uploads(ctx, request)
            case "POST", ["delete"]:
                return await listing.delete_many(ctx, request)
            case "GET", [key]:
                return await api.get_upload(ctx, request, key)
            case "DELETE", [key]:
                return await api.delete_upload(ctx, request, key)
            case "PATCH", [key]:
                return await api.update_upload(ctx, request, key)
            case "POST", [key, "shares"]:
                return await shares.create(ctx, request, key)
            case "GET", [key, "shares"]:
                return await shares.list_shares(ctx, request, key)
            case "GET", [key, "video"]:
                return await video.probe(ctx, request, key)
            case "POST", [key, "video"]:
                return await video.start(ctx, request, key)
        return routing.unrouted(method, ["api", "uploads", *below])

    def _page(self, request: Request, name: str, *, drop: bool = False) -> Response:
        response = self._static(request, name, cache=False)
        if drop:
            return response  # a drop link's holder gets no owner token: they are to see nothing but the drop
        assert self.ctx is not None
        identity = self.ctx.auth.identify_or_issue(request)  # the seed's page posts chunks right away
        response.headers += token_headers(identity, request.scheme == "https")
        return response

    def _static(self, request: Request, name: str, *, cache: bool) -> Response:
        if "/" in name or name.startswith("."):
            return text_response("not found\n", 404)
        found = _static_file(name)
        if found is None:
            return text_response("not found\n", 404)
        body, etag = found
        suffix = "." + name.rsplit(".", 1)[-1]
        validators = [("cache-control", "public, max-age=86400" if cache else "no-cache"), ("etag", etag)]
        if not_modified(request, validators[1][1]):
            return Response(304, validators)  # what a cache must update (RFC 9110 §15.4.5)
        headers = [("content-type", _STATIC_TYPES.get(suffix, "application/octet-stream")), *validators]
        if suffix == ".html":
            headers += _PAGE_HEADERS  # a page is framed by nobody and runs only our scripts, whichever URL serves it
        return Response(200, headers, body)


def _claims(s: Settings) -> Claims:
    """Who completes, writes and admits among replicas (engine/claims.py): on PostgreSQL, advisory locks in the
    database every replica shares (replicas on several machines share no folder); on SQLite, record locks in a
    file beside the database (one machine, as SQLite itself)."""
    if is_postgres_url(s.database):
        from pyfiledrop.meta.pg_claims import PostgresClaims  # psycopg only where PostgreSQL is used

        return PostgresClaims(s.database or "")
    return FileClaims(s.sqlite_path.with_name(".pyfiledrop.claims"))


async def _s3_storage(s: Settings) -> S3Storage:
    """S3 storage (docs/s3.md), checked at once: a wrong bucket or key fails the start, not the first upload."""
    from pyfiledrop.storage.s3 import S3Storage
    from pyfiledrop.storage.s3_client import S3Options, parse_location

    assert s.s3_storage is not None
    storage = S3Storage(parse_location(s.s3_storage), S3Options(s.s3_endpoint, s.s3_region), s.spool_dir,
                        spool_max=s.s3_spool_max, presign_seconds=round(s.s3_presign_expires) if s.s3_presign else None,
                        align=s.chunk_size)  # fmt: skip
    try:
        await storage.check()
    except Exception as exc:
        storage.close()
        raise RuntimeError(f"S3 storage {s.s3_storage} cannot be reached: {exc}") from exc
    return storage


async def _named_tree(settings: Settings, service: UploadService, storage: Storage, meta: Store,
                      drops: DropStore) -> Views:  # fmt: skip
    """Finished uploads readable under their own names in {storage}/files/ (engine/views.py)."""
    labels: dict[str, str | None] = {}

    async def label_of(owner: str) -> str | None:
        if not owner.startswith(DROP_OWNER_PREFIX):
            return None
        if owner not in labels:
            try:
                labels[owner] = (await drops.get(owner.removeprefix(DROP_OWNER_PREFIX))).label or "drop link"
            except DropNotFound:
                labels[owner] = None
        return labels[owner]

    store = ViewStore(meta)
    await store.open()
    views = Views(settings.storage, store, storage.local_path, label_of)
    service.on_complete = views.completed
    service.before_drop = views.dropping
    return views


@functools.lru_cache(maxsize=64)  # bounded: a name asked for that does not exist is remembered too
def _static_file(name: str) -> tuple[bytes, str] | None:
    """A file of the page and its ETag, read and hashed once per process: the page is asked for on a new connection
    while uploads keep the event loop busy, so serving it must not read a disk or hash anything."""
    resource = resources.files("pyfiledrop.web").joinpath("static", name)
    if not resource.is_file():
        return None
    body = resource.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _keep_body_buffers_in_the_heap() -> None:
    """glibc mmaps each body piece asyncio reads (up to 256 KiB, above glibc's 128 KiB threshold) and unmaps it
    when freed, so the kernel zero-fills and faults in fresh pages for every piece (measured at ~15 % of the
    server's CPU per GiB under granian, which handed over ~0.5 MiB pieces). A 4 MiB mmap threshold (and a 32 MiB
    trim threshold) keeps them in the heap. glibc only."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD
    mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD


def _unusable_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


class _JobsKeepAwake:
    """Video jobs queued or running keep the host awake like transfers do (``VideoJobs`` tells their number)."""

    def __init__(self, activity: Tracker) -> None:
        self.activity = activity
        self.counted = 0

    def __call__(self, active: int) -> None:
        for _ in range(active, self.counted):
            self.activity.end("job")
        for _ in range(self.counted, active):
            self.activity.begin("job")
        self.counted = active


def create_app(settings: Settings | None = None) -> App:
    """For running the app under another ASGI server (uvicorn, granian, …): settings come from PYFILEDROP_*. It
    works there, only without the ``pyfiledrop.readinto`` fast body path of pyfiledrop's own server."""
    return App(settings if settings is not None else config.load({}))
