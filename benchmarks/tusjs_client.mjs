// tus-js-client (Node) uploading one file with parallelUploads, for benchmarks/run.py's pfd-tusjs-4 case.
//
// Usage: node benchmarks/tusjs_client.mjs ENDPOINT FILE [PARALLEL]
// Prints one JSON line: seconds until onSuccess, the final POST's own time (Upload-Concat: final), and the
// seconds until a HEAD of the final upload reports Upload-Offset = Upload-Length (joined and sha256 verified; a
// pyfiledrop HEAD waits for its join). Exit 1 on error. tus-js-client is the one in tests/interop/js.
import { createReadStream, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tests", "interop", "js", "package.json"));
const tus = require("tus-js-client");

const [endpoint, file, parallel = "4"] = process.argv.slice(2);
const size = statSync(file).size;
const timings = { finalPostSeconds: null };

// Times the final POST where it is sent and answered, nothing else changed.
class TimingStack {
  constructor() {
    this.inner = new tus.DefaultHttpStack({});
  }
  createRequest(method, url) {
    const request = this.inner.createRequest(method, url);
    const send = request.send.bind(request);
    request.send = async (body = null) => {
      const final = method === "POST" && (request.getHeader("Upload-Concat") ?? "").startsWith("final");
      const started = performance.now();
      const response = await send(body);
      if (final) timings.finalPostSeconds = (performance.now() - started) / 1000;
      return response;
    };
    return request;
  }
  getName() {
    return "TimingStack";
  }
}

const started = performance.now();
const upload = new tus.Upload(createReadStream(file), {
  endpoint,
  parallelUploads: Number(parallel),
  metadata: { filename: basename(file) },
  httpStack: new TimingStack(),
  retryDelays: [],
  onError(error) {
    process.stdout.write(`${JSON.stringify({ event: "error", message: String(error) })}\n`);
    process.exit(1);
  },
  async onSuccess() {
    const success = (performance.now() - started) / 1000;
    let verified = null;
    for (let i = 0; i < 600 && verified === null; i++) {
      const head = await fetch(upload.url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" } });
      if (head.headers.get("upload-offset") === String(size)) verified = (performance.now() - started) / 1000;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
    process.stdout.write(`${JSON.stringify({ event: "success", url: upload.url, seconds: success,
      verifiedSeconds: verified, ...timings })}\n`);
    process.exit(verified === null ? 1 : 0);
  },
});
upload.start();
