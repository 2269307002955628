"""A Dropzone 5 chunked upload as the seed's web page sends it: 8 MiB chunks, 4 in parallel, one multipart
POST /upload per chunk (fields dzuuid, dzchunkindex, dztotalfilesize, dzchunksize, dztotalchunkcount,
dzchunkbyteoffset, then the file part ``file``). Each chunk's bytes go out with sendfile on a keep-alive
http.client connection, so the client costs little CPU.

    python dropzone_client.py URL FILE [--chunk-size BYTES] [--parallel N]

Prints the JSON answer of the chunk that completed the upload.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import sys
import threading
import uuid
from urllib.parse import urlsplit


def _form_parts(boundary: str, fields: dict[str, str], filename: str) -> tuple[bytes, bytes]:
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    )
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    return head, f"\r\n--{boundary}--\r\n".encode()


def upload(url: str, path: str, chunk_size: int, parallel: int) -> dict[str, object]:
    target = urlsplit(url)
    size = os.path.getsize(path)
    count = max(-(-size // chunk_size), 1)
    dzuuid = str(uuid.uuid4())
    name = os.path.basename(path)
    jobs: queue.Queue[int] = queue.Queue()
    for index in range(count):
        jobs.put(index)
    answers: list[dict[str, object]] = []
    errors: list[str] = []
    token: list[str] = []
    token_ready = threading.Event()

    def worker(first: bool) -> None:
        if not first:
            token_ready.wait(60)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        try:
            with open(path, "rb") as file:
                while not errors:
                    try:
                        index = jobs.get_nowait()
                    except queue.Empty:
                        return
                    offset = index * chunk_size
                    length = min(chunk_size, size - offset)
                    boundary = uuid.uuid4().hex
                    fields = {"dzuuid": dzuuid, "dzchunkindex": str(index), "dztotalfilesize": str(size),
                              "dzchunksize": str(chunk_size), "dztotalchunkcount": str(count),
                              "dzchunkbyteoffset": str(offset)}  # fmt: skip
                    head, tail = _form_parts(boundary, fields, name)
                    conn.putrequest("POST", "/upload")
                    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
                    conn.putheader("Content-Length", str(len(head) + length + len(tail)))
                    if token:
                        conn.putheader("X-Pyfiledrop-Token", token[0])
                    conn.endheaders(head)
                    if length:
                        conn.sock.sendfile(file, offset, length)
                    conn.send(tail)
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200:
                        errors.append(f"chunk {index}: HTTP {response.status} {body[:200]!r}")
                        return
                    if not token and response.getheader("x-pyfiledrop-token"):
                        token.append(response.getheader("x-pyfiledrop-token"))
                    token_ready.set()
                    answers.append(json.loads(body))
        finally:
            token_ready.set()
            conn.close()

    # The first chunk alone creates the upload (and the owner token); then the others go in parallel.
    first = threading.Thread(target=worker, args=(True,))
    first.start()
    token_ready.wait(60)
    threads = [threading.Thread(target=worker, args=(False,)) for _ in range(parallel - 1)]
    for t in threads:
        t.start()
    for t in [first, *threads]:
        t.join()
    if errors:
        sys.exit("; ".join(errors))
    done = [a for a in answers if a.get("complete")]
    if not done:
        sys.exit("no chunk answered complete")
    return done[-1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("file")
    parser.add_argument("--chunk-size", type=int, default=8 << 20)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(upload(args.url, args.file, args.chunk_size, args.parallel)))
