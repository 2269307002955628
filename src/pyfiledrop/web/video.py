"""The video API: probe a finished upload, start a trim or rotation job, follow it, cancel it.

Owner or admin only, as for the other owner actions (delete, expiry, shares). A job's result is a new upload of
the same owner; the original stays until deleted.
"""

from __future__ import annotations

from typing import Any

from pyfiledrop.domain.ids import parse_upload_id
from pyfiledrop.errors import Unprocessable
from pyfiledrop.meta.jobs import Job, JobStatus
from pyfiledrop.video.jobs import VideoJobs
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, json_response, text_response


def _jobs(ctx: Context) -> VideoJobs:
    if ctx.video is None:
        raise Unprocessable("video jobs are not available on this server")
    return ctx.video


def job_json(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": job.id,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "source": job.upload_id,
        "operation": job.operation,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
    if job.status is JobStatus.FAILED:
        data["error"] = job.error or "failed"
    if job.status is JobStatus.DONE:
        data["upload"] = job.result_upload
    return data


async def probe(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    ctx.auth.identify(request).check_manage(upload.owner)
    return json_response(await _jobs(ctx).probe(upload))


async def start(ctx: Context, request: Request, raw_id: str) -> Response:
    # The (small) body first: an answer sent before it is read closes the connection, and a client still sending
    # could see a reset instead of the answer.
    body = await request.json()
    upload = await ctx.service.status(parse_upload_id(raw_id))
    ctx.auth.identify(request).check_manage(upload.owner)
    job = await _jobs(ctx).submit(upload, body)
    return json_response(job_json(job), 202, headers=[("location", f"/api/jobs/{job.id}")])


async def _job(ctx: Context, request: Request, job_id: str) -> Job:
    job = await _jobs(ctx).get(job_id)
    ctx.auth.identify(request).check_manage(job.owner)
    return job


async def job(ctx: Context, request: Request, method: str, job_id: str) -> Response:
    """GET /api/jobs/{id}: how it goes; DELETE: cancel it."""
    match method:
        case "GET":
            return json_response(job_json(await _job(ctx, request, job_id)))
        case "DELETE":
            await _job(ctx, request, job_id)
            return json_response(job_json(await _jobs(ctx).cancel(job_id)))
    return text_response("method not allowed\n", 405, [("allow", "GET, DELETE")])
