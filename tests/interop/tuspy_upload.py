"""Runs the real tuspy client (PyPI ``tuspy``) in its own process, for tests/interop/test_tuspy.py.

Usage: python tuspy_upload.py '<json options>'
    endpoint     tus creation URL
    file         path of the file to upload
    headers      extra headers (the owner token), default none
    chunk_size   bytes per PATCH
    checksum     "sha1" (tuspy's own), "sha256", "md5" or null: send Upload-Checksum with every PATCH
    stop_at      stop once this offset is reached (a half-finished upload), default: the whole file
    url_storage  a tuspy FileStorage (TinyDB JSON) file: store the URL under the file's fingerprint and resume
                 from it when it is already there
    url          resume this upload URL instead

Prints one JSON object: the upload URL, the offset the upload started from in this process, the final
offset, and every PATCH this process sent as [Upload-Offset, body length].
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import requests
from tusclient import client as tus_client
from tusclient import request as tus_request
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader import Uploader

_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


def main(options: dict[str, Any]) -> dict[str, Any]:
    patches: list[list[int]] = []
    original_patch = requests.patch

    def counting_patch(url: str, data: bytes, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        patches.append([int(headers["upload-offset"]), len(data)])
        return original_patch(url, data=data, headers=headers, **kwargs)

    tus_request.requests.patch = counting_patch  # type: ignore[assignment] # tuspy calls requests.patch per chunk

    algorithm = options.get("checksum")

    class ChecksummedUploader(Uploader):
        CHECKSUM_ALGORITHM_PAIR = (algorithm or "sha1", _HASHES[algorithm or "sha1"])

    client = tus_client.TusClient(options["endpoint"], headers=options.get("headers") or {})
    storage = FileStorage(options["url_storage"]) if options.get("url_storage") else None
    uploader = ChecksummedUploader(
        file_path=options["file"],
        client=client,
        url=options.get("url"),
        chunk_size=options.get("chunk_size", 4 << 20),
        metadata={"filename": options.get("filename", "tuspy.bin")},
        upload_checksum=algorithm is not None,
        store_url=storage is not None,
        url_storage=storage,
    )
    start_offset = uploader.offset  # from HEAD when the URL was known (given or stored), else 0
    uploader.upload(stop_at=options.get("stop_at"))
    if storage is not None:
        storage.close()
    return {"url": uploader.url, "start_offset": start_offset, "offset": uploader.offset, "patches": patches}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
