// Drives the real tus-js-client (Node build) against a pyfiledrop server, for tests/interop/test_tus_js_client.py.
//
// Usage: node upload.mjs '<json options>'
//   endpoint       tus creation URL, e.g. http://127.0.0.1:PORT/files/
//   file           path of the file to upload (passed as an fs.ReadStream, as a Node user would)
//   headers        extra request headers (e.g. the owner token), default none
//   metadata       Upload-Metadata, default {filename: basename(file)}
//   chunkSize      bytes per PATCH, default: the whole rest of the file in one request
//   parallelUploads  number of partial uploads (concatenation extension), default 1
//   urlStorage     path of a FileUrlStorage JSON file: store the upload URL under the file's fingerprint
//   resumePrevious with urlStorage: resume the upload found under this file's fingerprint (fail if none)
//   uploadUrl      resume this upload URL instead of creating one
//   killAfterAccepted  fraction of the file: SIGKILL this process once the server acknowledged more than this
//   killAfterSent  fraction of the file: let exactly that many bytes of PATCH bodies through to the socket, then
//                  stall the body and SIGKILL this process (a crash in the middle of a request)
//
// Prints one JSON object per line on stdout: {"event": "url" | "killing" | "success" | "error", ...}.
// "success" carries the upload URL and what this process sent: the sum of the bytes the server acknowledged
// per PATCH (onChunkComplete) and the offset the upload started from.

import { createReadStream, existsSync, statSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { Readable, Transform } from "node:stream";
import * as tus from "tus-js-client";

const options = JSON.parse(process.argv[2]);
const say = (event, data = {}) => process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
const die = () => process.kill(process.pid, "SIGKILL"); // a crash: no cleanup, no abort request

// onProgress is throttled to one call per 100 ms, far too coarse on loopback, so a crash mid-request is staged in
// the HTTP stack instead: PATCH bodies pass through a gate that lets `limit` bytes in all through, then stops.
class CrashingHttpStack {
  constructor(limit) {
    this.inner = new tus.DefaultHttpStack({});
    this.limit = limit;
    this.passed = 0;
  }

  createRequest(method, url) {
    const request = this.inner.createRequest(method, url);
    const send = request.send.bind(request);
    request.send = (body = null) => {
      if (method !== "PATCH" || body === null) return send(body);
      if (!(body instanceof Readable)) throw new Error("CrashingHttpStack expects a stream body (a file path input)");
      return send(body.pipe(this.gate(url)));
    };
    return request;
  }

  gate(url) {
    const stack = this;
    return new Transform({
      transform(chunk, _encoding, done) {
        const room = stack.limit - stack.passed;
        if (chunk.length <= room) {
          stack.passed += chunk.length;
          done(null, chunk);
          return;
        }
        stack.passed += Math.max(room, 0);
        if (room > 0) this.push(chunk.subarray(0, room));
        say("killing", { bytesSent: stack.passed, url });
        setTimeout(die, 300); // let the bytes already passed reach the socket, then crash; `done` is never called
      },
    });
  }

  getName() {
    return "CrashingHttpStack";
  }
}

const input = createReadStream(options.file);
const stats = { acceptedBytes: 0, chunks: 0, startOffset: null, maxSent: 0 };
let size = null;
let killed = false;

const uploadOptions = {
  endpoint: options.endpoint,
  headers: options.headers ?? {},
  metadata: options.metadata ?? { filename: basename(options.file), filetype: "application/octet-stream" },
  parallelUploads: options.parallelUploads ?? 1,
  retryDelays: [0, 200, 1000],
  removeFingerprintOnSuccess: false,
  onUploadUrlAvailable() {
    say("url", { url: upload.url });
  },
  onProgress(bytesSent, bytesTotal) {
    size = bytesTotal;
    stats.maxSent = Math.max(stats.maxSent, bytesSent);
  },
  onChunkComplete(chunkSize, bytesAccepted, bytesTotal) {
    if (stats.startOffset === null) stats.startOffset = bytesAccepted - chunkSize;
    stats.acceptedBytes += chunkSize;
    stats.chunks += 1;
    if (!killed && options.killAfterAccepted != null && bytesAccepted > options.killAfterAccepted * bytesTotal) {
      killed = true;
      say("killing", { bytesAccepted, bytesTotal, url: upload.url });
      die();
    }
  },
  onSuccess() {
    say("success", { url: upload.url, size, ...stats });
  },
  onError(error) {
    say("error", { message: String(error), status: error.originalResponse?.getStatus?.() ?? null });
    process.exitCode = 1;
  },
};
if (options.chunkSize != null) uploadOptions.chunkSize = options.chunkSize;
if (options.killAfterSent != null) {
  uploadOptions.httpStack = new CrashingHttpStack(Math.floor(options.killAfterSent * statSync(options.file).size));
}
if (options.uploadUrl != null) uploadOptions.uploadUrl = options.uploadUrl;
if (options.urlStorage != null) {
  if (!existsSync(options.urlStorage)) writeFileSync(options.urlStorage, "{}");
  uploadOptions.urlStorage = new tus.FileUrlStorage(options.urlStorage);
}

const upload = new tus.Upload(input, uploadOptions);

if (options.resumePrevious) {
  const previous = await upload.findPreviousUploads();
  if (previous.length === 0) {
    say("error", { message: "no previous upload stored for this file's fingerprint" });
    process.exit(1);
  }
  say("previous", { count: previous.length, url: previous[0].uploadUrl });
  upload.resumeFromPreviousUpload(previous[0]);
}
upload.start();
