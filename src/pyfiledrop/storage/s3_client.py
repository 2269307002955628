"""The S3 connection: where (``s3://BUCKET/PREFIX``, endpoint, region), the boto3 client, and its worker threads.

boto3 is synchronous; every call runs in this module's own thread pool, never on the event loop and never in
the default executor (which the metadata store and the disk use: a slow object store must not starve them).
Credentials come the standard way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and
the shared files, then instance roles).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

_T = TypeVar("_T")
SCHEME = "s3://"
THREADS = 16  # S3 requests at once per process: parts of parallel uploads, downloads, listings
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}")  # S3's rules, loosely (MinIO and SeaweedFS take more)


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ends with "/"

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def to_url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"


def is_s3_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def parse_location(url: str) -> S3Location:
    """``s3://BUCKET`` or ``s3://BUCKET/PREFIX`` → the location; ValueError saying what is wrong."""
    if not url.startswith(SCHEME):
        raise ValueError(f"an S3 location starts with s3://, not {url!r}")
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"{bucket!r} is not an S3 bucket name (s3://BUCKET/PREFIX)")
    prefix = "/".join(part for part in prefix.split("/") if part)
    if any(part in (".", "..") for part in prefix.split("/")):
        raise ValueError(f"the S3 prefix {prefix!r} has a '.' or '..' part")
    return S3Location(bucket, prefix + "/" if prefix else "")


@dataclass(frozen=True, slots=True)
class S3Options:
    endpoint: str | None = None  # --s3-endpoint: a non-AWS server (MinIO, SeaweedFS, R2, Ceph RGW …)
    region: str | None = None  # --s3-region
    path_style: bool | None = None  # None: path style with a custom endpoint, the SDK's choice on AWS


def make_client(options: S3Options) -> S3Client:
    import boto3
    from botocore.config import Config

    path_style = options.path_style if options.path_style is not None else options.endpoint is not None
    config = Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        signature_version="s3v4",  # presigned URLs too (SigV2 is gone from newer regions)
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=THREADS,
        connect_timeout=10,
        read_timeout=120,
        # Newer SDKs add CRC checksums to every request; several S3-compatible servers reject or ignore them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(region_name=options.region)
    return session.client("s3", endpoint_url=options.endpoint, config=config)


class S3Calls:
    """Runs blocking client calls in the pool: ``await calls.run(client.put_object, Bucket=…)``."""

    def __init__(self, client: S3Client, threads: int = THREADS) -> None:
        self.client = client
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="s3")

    async def run(self, job: Callable[..., _T], /, *args: object, **kwargs: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(job, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a client error ('NoSuchKey', 'NoSuchUpload', '404' …), or ''."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
