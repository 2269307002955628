"""Many uploads at once, from another process (so the clients' GIL does not skew the latencies the test measures).

    python loadgen.py URL TOKEN --uploads 200 --clients 50 --size 1048576 --seed 1

Each client thread owns uploads/clients uploads and advances them in turn, one request at a time, so all of them are
in progress together: tus (POST, then PATCHes of 256 KiB), Dropzone (256 KiB chunks in random order) and PUT (one
request), in turn. Every file has different bytes. Prints one JSON line: uploads, complete, seconds, errors (the
first 20), and mismatches (uploads whose reported sha256 is not that of the bytes sent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator

import httpx

PIECE = 256 * 1024
TUS = {"tus-resumable": "1.0.0"}


class Upload:
    def __init__(self, index: int, size: int, seed: int) -> None:
        rng = random.Random(seed * 100_000 + index)
        self.index = index
        self.protocol = ("tus", "dropzone", "put")[index % 3]
        self.data = rng.randbytes(size)
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.location: str | None = None
        self.offset = 0
        self.chunks = list(range(max(-(-size // PIECE), 1)))
        rng.shuffle(self.chunks)
        self.dzuuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.reported: str | None = None  # sha256 the server gave when complete

    def steps(self, http: httpx.Client) -> Iterator[None]:
        """One request per step; ends when the server said the upload is complete."""
        if self.protocol == "put":
            response = http.put(f"/load-{self.index}.bin", content=self.data, headers={"accept": "application/json"})
            response.raise_for_status()
            self.reported = response.json()["sha256"]
            yield
            return
        if self.protocol == "dropzone":
            for index in self.chunks:
                offset = index * PIECE
                fields = {"dzuuid": self.dzuuid, "dzchunkindex": str(index), "dztotalfilesize": str(len(self.data)),
                          "dzchunksize": str(PIECE), "dztotalchunkcount": str(len(self.chunks)),
                          "dzchunkbyteoffset": str(offset)}  # fmt: skip
                files = {"file": (f"load-{self.index}.bin", self.data[offset : offset + PIECE])}
                response = http.post("/upload", data=fields, files=files)
                response.raise_for_status()
                if response.json()["complete"]:
                    self.reported = response.json()["sha256"]
                yield
            return
        response = http.post("/files/", headers={**TUS, "upload-length": str(len(self.data))})
        response.raise_for_status()
        self.location = response.headers["location"]
        yield
        while self.offset < len(self.data):
            piece = self.data[self.offset : self.offset + PIECE]
            headers = {**TUS, "upload-offset": str(self.offset), "content-type": "application/offset+octet-stream"}
            response = http.patch(self.location, content=piece, headers=headers)
            response.raise_for_status()
            self.offset = int(response.headers["upload-offset"])
            yield
        status = http.get(f"/api/uploads/{self.location.rsplit('/', 1)[-1]}")
        self.reported = status.json()["sha256"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    uploads = [Upload(i, args.size, args.seed) for i in range(args.uploads)]
    errors: list[str] = []

    def client(mine: list[Upload]) -> None:
        with httpx.Client(base_url=args.url, timeout=120, headers={"x-pyfiledrop-token": args.token}) as http:
            running = [(u, u.steps(http)) for u in mine]
            while running:
                for item in list(running):
                    try:
                        next(item[1])
                    except StopIteration:
                        running.remove(item)
                    except Exception as exc:
                        errors.append(f"upload {item[0].index} ({item[0].protocol}): {exc!r}")
                        running.remove(item)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(uploads[i :: args.clients],)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    complete = [u for u in uploads if u.reported is not None]
    mismatches = [u.index for u in complete if u.reported != u.sha256]
    print(json.dumps({"uploads": len(uploads), "complete": len(complete), "seconds": round(seconds, 2),
                      "errors": errors[:20], "mismatches": mismatches}))  # fmt: skip


if __name__ == "__main__":
    main()
