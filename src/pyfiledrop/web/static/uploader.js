// A small tus 1.0 client for the page: parallel parts joined by concatenation, one PATCH per chunk,
// retry with backoff, and resume after a reload from a record kept in localStorage.

const TUS = { "Tus-Resumable": "1.0.0" };
const MAX_PARTS = 4;
const STORE_PREFIX = "pyfiledrop:upload:";

export class UploadError extends Error {
  constructor(message, { fatal = true, status = 0 } = {}) {
    super(message);
    this.fatal = fatal;
    this.status = status;
  }
}

export function fingerprint(file) {
  const path = file.webkitRelativePath || file.name;
  return `${STORE_PREFIX}${location.origin}:${path}:${file.size}:${file.lastModified}`;
}

export function unfinishedRecords() {
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

export function forgetAllRecords() {
  for (const record of unfinishedRecords()) localStorage.removeItem(record.key);
}

function encodeMetadata(values) {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${btoa(String.fromCharCode(...new TextEncoder().encode(value)))}`)
    .join(",");
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function describeFailure(status, body) {
  const detail = (body || "").replace(/^ERR_[A-Z_]+: /, "").trim();
  switch (status) {
    case 413: return new UploadError(`Too large: ${detail}`);
    case 507: return new UploadError(detail.startsWith("quota") ? `Quota reached: ${detail}` : `Server disk full: ${detail}`, { fatal: false, status });
    case 401: case 403: return new UploadError(`Not allowed: ${detail}`);
    case 460: return new UploadError("Checksum mismatch, sending that chunk again", { fatal: false, status });
    case 0: return new UploadError("Server unreachable", { fatal: false, status });
    default:
      return new UploadError(detail || `HTTP ${status}`, { fatal: status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 423, status });
  }
}

// XHR, not fetch: only XHR reports upload progress.
function send(method, url, { headers = {}, body = null, timeout = 0, onProgress, signal } = {}) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.timeout = timeout;
    for (const [name, value] of Object.entries({ ...TUS, ...headers })) xhr.setRequestHeader(name, value);
    if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
    const done = () => resolve({ status: xhr.status, text: xhr.responseText, header: (n) => xhr.getResponseHeader(n) });
    xhr.onload = done;
    xhr.onerror = () => resolve({ status: 0, text: "", header: () => null });
    xhr.ontimeout = () => resolve({ status: 0, text: "timed out", header: () => null });
    xhr.onabort = () => resolve({ status: -1, text: "aborted", header: () => null });
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

async function sha256Header(blob) {
  if (!globalThis.crypto?.subtle) return {}; // only in secure contexts (https, localhost)
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return { "Upload-Checksum": `sha256 ${btoa(String.fromCharCode(...new Uint8Array(digest)))}` };
}

export class TusUpload {
  constructor(file, config, { onChange = () => {}, headers = {} } = {}) {
    this.file = file;
    this.config = config;
    this.onChange = onChange;
    this.headers = headers;
    this.key = fingerprint(file);
    this.state = "queued"; // queued | uploading | paused | retrying | finishing | done | failed | cancelled
    this.message = "";
    this.parts = [];
    this.inFlight = new Map();
    this.result = null;
    this.resumedFrom = 0;
    this.sentBytes = 0;
    this.samples = [];
  }

  get confirmed() { return this.parts.reduce((sum, part) => sum + part.offset, 0); }
  get uploaded() { return Math.min(this.file.size, this.confirmed + [...this.inFlight.values()].reduce((a, b) => a + b, 0)); }

  speed() {
    const now = performance.now();
    this.samples.push([now, this.uploaded]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    return now - t0 > 300 ? ((this.uploaded - b0) * 1000) / (now - t0) : 0;
  }

  set(state, message = "") {
    this.state = state;
    this.message = message;
    this.onChange(this);
  }

  async start() {
    if (["uploading", "finishing", "done", "retrying"].includes(this.state)) return;
    this.abort = new AbortController();
    this.set("uploading");
    try {
      if (!this.parts.length) await this.prepare();
      await Promise.all(this.parts.map((part) => this.runPart(part)));
      if (this.abort.signal.aborted) return;
      this.set("finishing");
      this.result = await this.finish();
      localStorage.removeItem(this.key);
      this.set("done");
    } catch (error) {
      if (this.abort.signal.aborted) return;
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
    for (const part of this.parts) if (part.url) await send("DELETE", part.url, { headers: this.headers });
    this.set("cancelled");
  }

  async prepare() {
    const saved = JSON.parse(localStorage.getItem(this.key) || "null");
    if (saved && (await this.reuse(saved))) return;
    const { chunk_size: chunk, parallel_chunks: parallel, max_size_bytes: max } = this.config;
    if (this.file.size > max) throw new UploadError(`Too large: the limit is ${formatBytes(max)}`);
    const chunks = Math.max(1, Math.ceil(this.file.size / chunk));
    const count = parallel ? Math.min(MAX_PARTS, chunks) : 1;
    const per = Math.ceil(chunks / count) * chunk;
    this.parts = [];
    for (let start = 0; start < this.file.size || this.parts.length === 0; start += per) {
      this.parts.push({ start, end: Math.min(start + per, this.file.size), offset: 0, url: null });
    }
    for (const part of this.parts) part.url = await this.create(part, this.parts.length > 1);
    this.save();
  }

  async reuse(saved) {
    const parts = [];
    for (const part of saved.parts) {
      const head = await send("HEAD", part.url, { headers: this.headers });
      if (head.status !== 200) return false;
      parts.push({ ...part, offset: Number(head.header("Upload-Offset")) });
    }
    this.parts = parts;
    this.resumedFrom = this.confirmed;
    return true;
  }

  save() {
    const parts = this.parts.map(({ start, end, url }) => ({ start, end, url }));
    localStorage.setItem(this.key, JSON.stringify({ name: this.file.name, size: this.file.size, parts, savedAt: Date.now() }));
  }

  metadata() {
    return encodeMetadata({ filename: this.file.webkitRelativePath || this.file.name, filetype: this.file.type || "application/octet-stream" });
  }

  async create(part, partial) {
    const headers = { ...this.headers, "Upload-Length": String(part.end - part.start) };
    if (partial) headers["Upload-Concat"] = "partial";
    else headers["Upload-Metadata"] = this.metadata();
    const response = await this.retrying(() => send("POST", this.config.tus_endpoint, { headers, signal: this.abort.signal }));
    return new URL(response.header("Location"), location.href).href;
  }

  async finish() {
    if (this.parts.length === 1) {
      return { url: this.parts[0].url };
    }
    const headers = {
      ...this.headers,
      "Upload-Concat": `final;${this.parts.map((part) => new URL(part.url).pathname).join(" ")}`,
      "Upload-Metadata": this.metadata(),
    };
    const response = await this.retrying(() => send("POST", this.config.tus_endpoint, { headers, signal: this.abort.signal }));
    return { url: new URL(response.header("Location"), location.href).href };
  }

  // One PATCH per chunk; after any failure the offset is asked again, so no byte the server has is resent.
  async runPart(part) {
    const size = part.end - part.start;
    let attempt = 0;
    while (part.offset < size && !this.abort.signal.aborted) {
      const end = Math.min(part.offset + this.config.chunk_size, size);
      const blob = this.file.slice(part.start + part.offset, part.start + end);
      const checksum = await sha256Header(blob);
      const result = await send("PATCH", part.url, {
        headers: { ...this.headers, ...checksum, "Upload-Offset": String(part.offset), "Content-Type": "application/offset+octet-stream" },
        body: blob,
        timeout: this.config.timeout_ms,
        signal: this.abort.signal,
        onProgress: (loaded) => { this.inFlight.set(part, loaded); this.onChange(this); },
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
      if (result.status === 409) { await this.resync(part); continue; }
      if (result.status === 404 || result.status === 410) {
        localStorage.removeItem(this.key);
        throw new UploadError("The server no longer has this upload; start it again");
      }
      const error = describeFailure(result.status, result.text);
      if (error.fatal) throw error;
      const wait = Math.min(30, 2 ** attempt++);
      this.set("retrying", `${error.message} — retrying in ${wait} s`);
      await sleep(wait * 1000, this.abort.signal);
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
      const error = describeFailure(response.status, response.text);
      if (error.fatal) throw error;
      const wait = Math.min(30, 2 ** attempt);
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
