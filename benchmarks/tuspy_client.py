"""tuspy (the reference Python tus client) uploading one file in 8 MiB chunks, for the client-CPU comparison.

python tuspy_client.py URL FILE        (run with the project's venv, where tuspy is a dev dependency)
"""

from __future__ import annotations

import os
import sys

from tusclient import client

url, path = sys.argv[1], sys.argv[2]
uploader = client.TusClient(url.rstrip("/") + "/files/").uploader(
    path, chunk_size=8 << 20, metadata={"filename": os.path.basename(path)}, retries=3
)
uploader.upload()
print(uploader.url)
