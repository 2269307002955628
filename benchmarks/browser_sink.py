"""The browser benchmark's other origin: its test page, the tus-js-client and Uppy browser bundles, and a sink.

``PUT /sink`` reads the body into one reused buffer and throws it away (no disk, no hashing): the cost of
Chromium handing bytes to a loopback server and nothing else. The page's own ``fetch`` calls are same-origin, so
they need no preflight; the tus clients on this page call pyfiledrop on another port (CORS, as a site of its own).

    python browser_sink.py PORT MODULES_DIR
"""

from __future__ import annotations

import http.server
import sys
from pathlib import Path

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>upload bench</title>
<script src="/tus.min.js"></script><script src="/uppy.min.js"></script></head>
<body><input type="file" id="file"><script>
const file = () => document.getElementById("file").files[0];
// Uppy as a site would use it: Core plus the Tus plugin, its defaults unless parallelUploads is given.
window.uppy = async (endpoint, parallel) => {
  const uppy = new Uppy.Uppy({autoProceed: false});
  uppy.use(Uppy.Tus, parallel ? {endpoint, parallelUploads: parallel} : {endpoint});
  const f = file();
  uppy.addFile({name: f.name, type: "application/octet-stream", data: f});
  const result = await uppy.upload();
  if (result.failed.length) throw new Error(String(result.failed[0].error));
  return result.successful[0].uploadURL;
};
window.tusjs = (endpoint, parallel) => new Promise((resolve, reject) => {
  const upload = new tus.Upload(file(), {
    endpoint, parallelUploads: parallel, metadata: {filename: file().name}, storeFingerprintForResuming: false,
    onError: reject, onSuccess: () => resolve(upload.url),
  });
  upload.start();
});
// The ceiling: the File (or its equal slices) as the body of plain fetch PUTs, nothing else.
window.sink = async (parts) => {
  const f = file(), per = Math.ceil(f.size / parts), sends = [];
  for (let start = 0; start < f.size; start += per) {
    sends.push(fetch("/sink", {method: "PUT", body: f.slice(start, Math.min(f.size, start + per))}).then((r) => r.text()));
  }
  const answers = await Promise.all(sends);
  return answers.reduce((sum, text) => sum + Number(text), 0);
};
</script></body></html>"""


def serve(port: int, modules: Path) -> None:
    scripts = {
        "/tus.min.js": modules / "tus-js-client" / "dist" / "tus.min.js",
        "/uppy.min.js": modules / "uppy" / "dist" / "uppy.min.js",
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real server

        def do_GET(self) -> None:
            if self.path.startswith("/page.html"):
                self._answer(PAGE.encode(), "text/html")
            elif self.path in scripts:
                self._answer(scripts[self.path].read_bytes(), "text/javascript")
            else:
                self._answer(b"not found", "text/plain", 404)

        def do_PUT(self) -> None:
            remaining = int(self.headers.get("content-length") or 0)
            total = 0
            view = memoryview(bytearray(1 << 20))  # one per request: four PUTs run in four threads
            while remaining:
                n = self.rfile.readinto(view[: min(len(view), remaining)])
                if not n:
                    break
                remaining -= n
                total += n
            self._answer(str(total).encode(), "text/plain")

        def _answer(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
