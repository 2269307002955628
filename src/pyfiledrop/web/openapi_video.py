"""The video part of the OpenAPI document: probe an upload, start a trim or rotation, follow or cancel the job."""

from __future__ import annotations

from typing import Any

_UPLOAD_ID = {
    "name": "upload_id", "in": "path", "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"},
}  # fmt: skip
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ERROR = {"$ref": "#/components/schemas/Error"}
_SECONDS = {"oneOf": [{"type": "number", "minimum": 0},
                      {"type": "string", "description": "MM:SS or HH:MM:SS(.mmm)"}]}  # fmt: skip


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(_ERROR, "error") for status in statuses}


def schemas() -> dict[str, Any]:
    stream = {"type": "object", "required": ["index", "type", "codec"], "properties": {
        "index": {"type": "integer"}, "type": {"type": "string"}, "codec": {"type": "string"},
        "tag": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
        "fps": {"type": "number"}, "rotation": {"type": "integer"}, "channels": {"type": "integer"},
        "sample_rate": {"type": "integer"}, "language": {"type": "string"}}}  # fmt: skip
    probe = {
        "type": "object",
        "required": ["container", "duration", "rotation", "keyframes", "streams"],
        "properties": {
            "container": {"type": "string"},
            "duration": {"type": "number", "description": "seconds"},
            "rotation": {"type": "integer", "enum": [0, 90, 180, 270], "description": "clockwise, as a viewer sees"},
            "width": {"type": ["integer", "null"]},
            "height": {"type": ["integer", "null"]},
            "fps": {"type": ["number", "null"]},
            "keyframes": {"type": "array", "items": {"type": "number"}, "description": "seconds, first video stream"},
            "streams": {"type": "array", "items": stream},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    job = {
        "type": "object",
        "required": ["id", "status", "progress"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "error": {"type": "string", "description": "why it failed ('cancelled' after DELETE)"},
            "upload": {"type": "string", "description": "the new upload's id, when done"},
            "source": {"type": "string"},
            "operation": {"type": "object", "description": "as asked; a trim's start is the keyframe it uses"},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
        },
    }
    return {"VideoProbe": probe, "VideoJob": job}


def paths(security: list[dict[str, list[str]]]) -> dict[str, Any]:
    job = {"$ref": "#/components/schemas/VideoJob"}
    trim = {
        "type": "object",
        "required": ["op", "start", "end"],
        "properties": {
            "op": {"const": "trim"},
            "start": _SECONDS,
            "end": _SECONDS,
            "snap": {
                "type": "string",
                "enum": ["before", "after"],
                "default": "before",
                "description": "start on the keyframe at or before start (default), or the first at or after",
            },
        },
    }
    rotate = {
        "type": "object",
        "required": ["op", "degrees"],
        "properties": {"op": {"const": "rotate"}, "degrees": {"type": "integer", "enum": [0, 90, 180, 270]}},
    }
    return {
        "/api/uploads/{upload_id}/video": {
            "get": {"summary": "Probe a finished video upload: container, duration, streams, rotation, keyframes",
                    "parameters": [_UPLOAD_ID], "security": security,
                    "responses": {"200": _json({"$ref": "#/components/schemas/VideoProbe"}, "the probe"),
                                  **_errors(400, 401, 403, 404, 409, 410, 422)}},
            "post": {"summary": "Trim or rotate a finished video upload by stream copy (no re-encoding); the result "
                                "is a new upload of the same owner",
                     "parameters": [_UPLOAD_ID], "security": security,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "oneOf": [trim, rotate]}}}},
                     "responses": {"202": _json(job, "the job, queued"),
                                   **_errors(400, 401, 403, 404, 409, 410, 422)}},
        },
        "/api/jobs/{job_id}": {
            "get": {"summary": "A video job: status, progress, error, the new upload", "parameters": [_JOB_ID],
                    "security": security, "responses": {"200": _json(job, "the job"), **_errors(401, 403, 404)}},
            "delete": {"summary": "Cancel a queued or running video job", "parameters": [_JOB_ID],
                       "security": security,
                       "responses": {"200": _json(job, "the job, failed with error 'cancelled'"),
                                     **_errors(401, 403, 404, 409)}},
        },
    }  # fmt: skip
