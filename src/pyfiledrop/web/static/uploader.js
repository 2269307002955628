// A small tus 1.0 client for the page: one PATCH per chunk, retry with backoff, and resume after a reload from a
// record kept in localStorage. A big file goes as parallel chunks of ONE upload when the server offers pyfiledrop's
// parallel-write extension (config.parallel_write), else as parallel tus parts joined by concatenation. Each chunk is
// the File's slice as the request body, never read by the page: no per-chunk checksum (TCP's checksums cover the
// wire, the server computes the whole file's sha256 and the page shows it), which cost the page half its speed.

import { Missing, uncovered } from "./regions.js";
import { PASSWORD_CODES, UploadError, describeFailure, measure, send, sleep, timingOn } from "./requests.js";

export { PASSWORD_CODES, UploadError };
const MAX_PARTS = 4;
const STORE_PREFIX = "pyfiledrop:upload:";
const PARALLEL_WRITE = { "X-Pyfiledrop-Parallel-Write": "1" };
const PROGRESS_EVERY_MS = 250;

// scope: "" for the page's own uploads, "drop:<id>" for a drop link's, so that a file sent through a drop link
// never resumes an upload made on the main page (it would land with another owner), nor the other way round.
export function fingerprint(file, scope = "") {
  const path = file.webkitRelativePath || file.name;
  return `${STORE_PREFIX}${scope ? `${scope}:` : ""}${location.origin}:${path}:${file.size}:${file.lastModified}`;
}

function allRecords() {
  const found = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key && key.startsWith(STORE_PREFIX)) {
      try {
        found.push({ key, ...JSON.parse(localStorage.getItem(key)) });
      } catch {
        localStorage.removeItem(key);
      }
    }
  }
  return found;
}

export function unfinishedRecords(scope = "") {
  return allRecords().filter((record) => (record.scope || "") === scope);
}

export function forgetAllRecords() {
  for (const record of allRecords()) localStorage.removeItem(record.key);
}

function encodeMetadata(values) {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${btoa(String.fromCharCode(...new TextEncoder().encode(value)))}`)
    .join(",");
}

export class TusUpload {
  // headers: sent with every request (a drop link's token); creationHeaders(): read again for each creation
  // (a password, which the page may be given anew after a refusal).
  constructor(file, config, { onChange = () => {}, headers = {}, creationHeaders = () => ({}), scope = "" } = {}) {
    this.file = file;
    this.config = config;
    this.onChange = onChange;
    this.headers = headers;
    this.creationHeaders = creationHeaders;
    this.scope = scope;
    this.key = fingerprint(file, scope);
    this.state = "queued"; // queued | uploading | paused | retrying | finishing | done | failed | cancelled
    this.message = "";
    this.code = ""; // the server's ERR_… code of the last failure
    this.parts = []; // {start, end, offset, url}: concatenation parts, or in region mode the whole file
    this.regions = false; // true: parallel chunks of the single upload at this.url (the parallel-write extension)
    this.missing = null; // region mode: the ranges not yet sent (regions.js)
    this.acked = 0; // region mode: bytes the server has confirmed
    this.pending = new Set(); // region mode: the chunks [start, end) in flight
    this.url = null;
    this.inFlight = new Map();
    this.result = null;
    this.resumedFrom = 0;
    this.sentBytes = 0;
    this.samples = [];
    this.timing = timingOn();
  }

  // The page's own chunk: page_chunk_size (32 MiB unless the operator set --chunk-size or --page-chunk-size), fewer
  // requests than tus clients' chunk_size — each request cost the server and Chromium CPU (docs/browser-uploads.md).
  // chunk_size alone: a server from before page_chunk_size.
  get chunk() { return this.config.page_chunk_size || this.config.chunk_size; }

  get confirmed() { return this.regions ? this.acked : this.parts.reduce((sum, part) => sum + part.offset, 0); }
  get uploaded() { return Math.min(this.file.size, this.confirmed + [...this.inFlight.values()].reduce((a, b) => a + b, 0)); }

  // Bytes per second sent in this session: the offset a resumed upload started from is not speed.
  speed() {
    const now = performance.now();
    this.samples.push([now, this.uploaded - this.resumedFrom]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    return now - t0 > 300 ? ((this.uploaded - this.resumedFrom - b0) * 1000) / (now - t0) : 0;
  }

  // Progress events come every few ms from each request: the page is told at most 4 times a second (drawing the bars
  // on every event cost Chromium ~2 CPU s/GiB, a sixth of the upload's speed on two cores; benchmarks/browser.py).
  progressed() {
    const now = performance.now();
    if (now - (this.toldAt || 0) < PROGRESS_EVERY_MS) return;
    this.toldAt = now;
    this.onChange(this);
  }

  set(state, message = "") {
    this.state = state;
    this.message = message;
    this.onChange(this);
  }

  async start() {
    if (["uploading", "finishing", "done", "retrying"].includes(this.state)) return;
    this.abort = new AbortController();
    this.code = "";
    this.set("uploading");
    try {
      if (!this.parts.length) this.parts = await this.plan();
      else if (this.regions && this.url) await this.syncRegions(); // again after a pause or a failure
      await this.createMissing();
      if (this.regions) await Promise.all(Array.from({ length: MAX_PARTS }, () => this.sendChunks()));
      else await Promise.all(this.parts.map((part) => this.runPart(part)));
      if (this.abort.signal.aborted) return;
      this.set("finishing");
      this.result = await this.finish();
      localStorage.removeItem(this.key);
      this.set("done");
    } catch (error) {
      if (this.abort.signal.aborted) return;
      this.code = error.code || "";
      this.set("failed", error.message);
    }
  }

  pause() {
    if (!["uploading", "retrying"].includes(this.state)) return;
    this.abort?.abort();
    this.inFlight.clear();
    this.set("paused");
  }

  async cancel() {
    this.abort?.abort();
    this.inFlight.clear();
    localStorage.removeItem(this.key);
    for (const url of new Set(this.parts.map((part) => part.url))) if (url) await send("DELETE", url, { headers: this.headers });
    this.set("cancelled");
  }

  // The parts of a saved upload that the server still has, or a new split of the file (not yet created).
  async plan() {
    const saved = JSON.parse(localStorage.getItem(this.key) || "null");
    const reused = saved ? await this.reuse(saved) : null;
    if (reused) return reused;
    const { parallel_chunks: parallel, max_size_bytes: max } = this.config;
    const chunk = this.chunk;
    if (this.file.size > max) throw new UploadError(`Too large: the limit is ${formatBytes(max)}`);
    const chunks = Math.max(1, Math.ceil(this.file.size / chunk));
    const count = parallel ? Math.min(MAX_PARTS, chunks) : 1;
    this.url = null;
    this.regions = count > 1 && this.config.parallel_write === true;
    if (this.regions) {
      this.missing = new Missing([[0, this.file.size]]);
      this.acked = 0;
      return [{ start: 0, end: this.file.size, offset: 0, url: null }];
    }
    const per = Math.ceil(chunks / count) * chunk;
    const parts = [];
    for (let start = 0; start < this.file.size || parts.length === 0; start += per) {
      parts.push({ start, end: Math.min(start + per, this.file.size), offset: 0, url: null });
    }
    return parts;
  }

  // Creation may be refused half-way (a password, a quota): the parts made so far are kept for the next try.
  async createMissing() {
    const missing = this.parts.filter((part) => !part.url);
    if (!missing.length) return;
    if (this.regions) {
      this.url = await this.create({ start: 0, end: this.file.size }, false);
      for (const part of this.parts) part.url = this.url;
      this.save();
      return;
    }
    for (const part of missing) part.url = await this.create(part, this.parts.length > 1);
    this.save();
  }

  async reuse(saved) {
    if (saved.mode === "regions") return this.reuseRegions(saved);
    const parts = [];
    for (const part of saved.parts) {
      const head = await send("HEAD", part.url, { headers: this.headers });
      if (head.status !== 200) return null;
      parts.push({ ...part, offset: Number(head.header("Upload-Offset")) });
    }
    this.resumedFrom = parts.reduce((sum, part) => sum + part.offset, 0);
    return parts;
  }

  // A saved region upload (whatever regions an older page saved): every byte the server lacks is sent, no other.
  async reuseRegions(saved) {
    if (!saved.url || !Array.isArray(saved.regions)) return null;
    const received = await this.received(saved.url);
    if (!received) return null;
    this.regions = true;
    this.url = saved.url;
    this.restart(received);
    this.resumedFrom = this.acked;
    return [{ start: 0, end: this.file.size, offset: 0, url: saved.url }];
  }

  restart(received) {
    this.missing = Missing.of(received, this.file.size);
    this.pending.clear();
    this.acked = this.file.size - this.missing.bytes;
  }

  // The server's received byte ranges of the single upload, or null when it cannot say.
  async received(url) {
    const id = new URL(url).pathname.split("/").filter(Boolean).pop();
    const response = await send("GET", `/api/uploads/${encodeURIComponent(id)}`, { headers: { ...this.headers, Accept: "application/json" }, signal: this.abort?.signal });
    if (response.status !== 200) {
      // Not shown to this browser (a finished upload can be its owner's only): HEAD still says if it is complete.
      const head = await send("HEAD", url, { headers: this.headers, signal: this.abort?.signal });
      return head.status === 200 && Number(head.header("Upload-Offset")) === this.file.size ? [[0, this.file.size]] : null;
    }
    try {
      const body = JSON.parse(response.text);
      if (body.complete) return [[0, this.file.size]];
      return Array.isArray(body.received) ? body.received : null;
    } catch {
      return null;
    }
  }

  // After a pause or a failure: what the server has decides what is left (the chunks in flight were cut short).
  async syncRegions() {
    const received = await this.received(this.url);
    if (received) {
      this.restart(received);
      return;
    }
    for (const chunk of this.pending) this.missing.giveBack(chunk);
    this.pending.clear();
  }

  save() {
    if (this.regions) {
      // regions: [[0, size]] keeps the record readable by the page before chunks were shared out (one region each).
      const record = { name: this.file.name, size: this.file.size, mode: "regions", url: this.url, regions: [[0, this.file.size]], savedAt: Date.now() };
      if (this.scope) record.scope = this.scope;
      localStorage.setItem(this.key, JSON.stringify(record));
      return;
    }
    const parts = this.parts.map(({ start, end, url }) => ({ start, end, url }));
    const record = { name: this.file.name, size: this.file.size, parts, savedAt: Date.now() };
    if (this.scope) record.scope = this.scope;
    localStorage.setItem(this.key, JSON.stringify(record));
  }

  metadata() {
    return encodeMetadata({ filename: this.file.webkitRelativePath || this.file.name, filetype: this.file.type || "application/octet-stream" });
  }

  async create(part, partial) {
    const headers = { ...this.headers, ...this.creationHeaders(), "Upload-Length": String(part.end - part.start) };
    if (partial) headers["Upload-Concat"] = "partial";
    else headers["Upload-Metadata"] = this.metadata();
    const response = await this.retrying(() => send("POST", this.config.tus_endpoint, { headers, signal: this.abort.signal }));
    return new URL(response.header("Location"), location.href).href;
  }

  async finish() {
    if (this.regions) return { url: this.url }; // the server completed it with the last byte
    if (this.parts.length === 1) {
      return { url: this.parts[0].url };
    }
    const headers = {
      ...this.headers,
      ...this.creationHeaders(),
      "Upload-Concat": `final;${this.parts.map((part) => new URL(part.url).pathname).join(" ")}`,
      "Upload-Metadata": this.metadata(),
    };
    const response = await this.retrying(() => send("POST", this.config.tus_endpoint, { headers, signal: this.abort.signal }));
    return { url: new URL(response.header("Location"), location.href).href };
  }

  // One PATCH per chunk; after any failure the offset is asked again, so no byte the server has is resent.
  // In region mode part.offset counts from part.start, and the PATCH carries the parallel-write header.
  // Region mode, one of MAX_PARTS workers: the lowest chunk not yet sent, as a PATCH at its offset, until none is
  // left. A failed chunk goes back to the ranges to send, less what the server kept of it.
  async sendChunks() {
    let attempt = 0;
    let idle = null; // when this worker's last request ended
    for (let chunk = this.missing.take(this.chunk); chunk && !this.abort.signal.aborted; chunk = this.missing.take(this.chunk)) {
      this.pending.add(chunk);
      const [start, end] = chunk;
      if (idle !== null) measure(this.timing, "gap", idle);
      const sending = performance.now();
      const result = await send("PATCH", this.url, {
        headers: { ...this.headers, ...PARALLEL_WRITE, "Upload-Offset": String(start), "Content-Type": "application/offset+octet-stream" },
        body: this.file.slice(start, end),
        timeout: this.config.timeout_ms,
        signal: this.abort.signal,
        onProgress: (loaded) => { this.inFlight.set(chunk, loaded); this.progressed(); },
      });
      measure(this.timing, "send", sending);
      idle = performance.now();
      this.inFlight.delete(chunk);
      if (result.status === -1 || this.abort.signal.aborted) return; // pause: start() asks the server again
      this.sentBytes += end - start;
      if (result.status >= 200 && result.status < 300) {
        attempt = 0;
        this.pending.delete(chunk);
        this.acked += end - start;
        if (this.state === "retrying") this.set("uploading");
        this.progressed(); // a chunk done is progress too: the state changes (done, failed …) are told at once
        continue;
      }
      attempt = await this.afterFailure(result, attempt);
      await this.resend(chunk);
    }
  }

  // A refused or lost request: fatal errors end the upload; otherwise wait and go on. A first 409 needs no wait (the
  // page asks where the upload stands and sends what is missing); a 409 again does, so that the page never loops
  // on it when it cannot learn where the upload stands. Returns the next attempt's number.
  async afterFailure(result, attempt) {
    if (result.status === 409 && attempt === 0) return 1;
    if (result.status === 404 || result.status === 410) {
      localStorage.removeItem(this.key);
      throw new UploadError("The server no longer has this upload; start it again");
    }
    const error = describeFailure(result.status, result.text, result.header("Retry-After"));
    if (error.fatal) throw error;
    const wait = error.retryAfter || Math.min(30, 2 ** attempt);
    this.set("retrying", `${error.message} — retrying in ${wait} s`);
    await sleep(wait * 1000, this.abort.signal);
    return attempt + 1;
  }

  // What the server kept of a failed chunk (a cut-off request keeps what arrived) is done; the rest goes back.
  async resend(chunk) {
    this.pending.delete(chunk);
    const received = this.abort.signal.aborted ? null : await this.received(this.url);
    const again = received ? uncovered(received, chunk[0], chunk[1]) : [chunk];
    for (const range of again) this.missing.giveBack(range);
    this.acked += chunk[1] - chunk[0] - again.reduce((sum, [from, to]) => sum + to - from, 0);
  }

  // Concatenation mode: one PATCH per chunk of a part; after any failure the offset is asked again, so no byte the
  // server has is resent.
  async runPart(part) {
    const size = part.end - part.start;
    let attempt = 0;
    while (part.offset < size && !this.abort.signal.aborted) {
      const end = Math.min(part.offset + this.chunk, size);
      const blob = this.file.slice(part.start + part.offset, part.start + end);
      const result = await send("PATCH", part.url, {
        headers: { ...this.headers, "Upload-Offset": String(part.offset), "Content-Type": "application/offset+octet-stream" },
        body: blob,
        timeout: this.config.timeout_ms,
        signal: this.abort.signal,
        onProgress: (loaded) => { this.inFlight.set(part, loaded); this.progressed(); },
      });
      this.inFlight.delete(part);
      if (result.status === -1 || this.abort.signal.aborted) return;
      this.sentBytes += blob.size;
      if (result.status >= 200 && result.status < 300) {
        attempt = 0;
        part.offset = Number(result.header("Upload-Offset"));
        if (this.state === "retrying") this.set("uploading");
        this.onChange(this);
        continue;
      }
      attempt = await this.afterFailure(result, attempt);
      await this.resync(part);
    }
  }

  async resync(part) {
    const head = await send("HEAD", part.url, { headers: this.headers });
    if (head.status === 200) part.offset = Number(head.header("Upload-Offset"));
  }

  // A creation request, tried until it succeeds, waiting 1, 2, 4 … 30 s while the failure is passing.
  async retrying(request) {
    for (let attempt = 0; ; attempt++) {
      const response = await request();
      if (response.status === -1 || this.abort.signal.aborted) throw new UploadError("paused", { fatal: false });
      if (response.status >= 200 && response.status < 300) {
        if (this.state === "retrying") this.set("uploading");
        return response;
      }
      const error = describeFailure(response.status, response.text, response.header("Retry-After"));
      if (error.fatal) throw error;
      const wait = error.retryAfter || Math.min(30, 2 ** attempt);
      this.set("retrying", `${error.message} — retrying in ${wait} s`);
      await sleep(wait * 1000, this.abort.signal);
    }
  }
}

export function formatBytes(bytes) {
  if (bytes == null) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}
