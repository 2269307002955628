"""A Dropzone 5 client in the test suite: the exact multipart form the seed's page sends."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import httpx


@dataclass
class DzFile:
    name: str
    data: bytes
    chunk_size: int
    uuid: str = ""

    def __post_init__(self) -> None:
        self.uuid = self.uuid or str(uuid.uuid4())

    @property
    def chunk_count(self) -> int:
        return max(math.ceil(len(self.data) / self.chunk_size), 1)

    def form(self, index: int) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
        offset = index * self.chunk_size
        fields = {
            "dzuuid": self.uuid,
            "dzchunkindex": str(index),
            "dztotalfilesize": str(len(self.data)),
            "dzchunksize": str(self.chunk_size),
            "dztotalchunkcount": str(self.chunk_count),
            "dzchunkbyteoffset": str(offset),
        }
        files = {"file": (self.name, self.data[offset : offset + self.chunk_size], "application/octet-stream")}
        return fields, files

    def send(self, client: httpx.Client, index: int, **kwargs: object) -> httpx.Response:
        fields, files = self.form(index)
        return client.post("/upload", data=fields, files=files, **kwargs)  # type: ignore[arg-type]
