"""Which S3 client uploads a multipart object fastest from asyncio: boto3 in worker threads or obstore (async).

    python benchmarks/s3_clients.py --endpoint http://127.0.0.1:PORT --size 512 --part 16 --parallel 4 --runs 2

Needs AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the endpoint (tests/weed.py starts a SeaweedFS that has
them). Both clients run in the same process, interleaved run by run, so the machine's load hits both alike.
Prints MiB/s and the process CPU seconds per GiB of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

MIB = 1 << 20


async def with_boto3(endpoint: str, bucket: str, key: str, parts: list[bytes], parallel: int) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"},
                                                                      max_pool_connections=parallel))  # fmt: skip
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    limit = asyncio.Semaphore(parallel)

    async def one(number: int, data: bytes) -> dict[str, object]:
        async with limit:
            answer = await asyncio.to_thread(client.upload_part, Bucket=bucket, Key=key, UploadId=upload_id,
                                             PartNumber=number, Body=data)  # fmt: skip
            return {"PartNumber": number, "ETag": answer["ETag"]}

    done = await asyncio.gather(*(one(i + 1, data) for i, data in enumerate(parts)))
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})


async def with_obstore(endpoint: str, bucket: str, key: str, parts: list[bytes], parallel: int) -> None:
    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, allow_http=True, virtual_hosted_style_request=False,
                    region="us-east-1")  # fmt: skip
    upload = obstore.open_writer_async(store, key, buffer_size=len(parts[0]), max_concurrency=parallel)
    for data in parts:
        await upload.write(data)
    await upload.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--size", type=int, default=512, help="MiB")
    parser.add_argument("--part", type=int, default=16, help="MiB")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    import boto3
    from botocore.config import Config

    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=args.endpoint, config=Config(s3={"addressing_style": "path"})).create_bucket(
        Bucket=bucket
    )
    parts = [os.urandom(args.part * MIB) for _ in range(args.size // args.part)]
    clients: dict[str, Callable[..., Awaitable[None]]] = {"boto3-threads": with_boto3, "obstore": with_obstore}
    for run in range(args.runs):
        for name, upload in clients.items():
            wall, cpu = time.perf_counter(), time.process_time()
            await upload(args.endpoint, bucket, f"{name}-{run}", parts, args.parallel)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{name:14} run {run + 1}: {args.size / wall:7.1f} MiB/s, {cpu / (args.size / 1024):5.2f} CPU s/GiB")


if __name__ == "__main__":
    asyncio.run(main())
