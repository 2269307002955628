// The page's requests: XHR with upload progress, what a refusal means (retry or give up, and the words to show),
// and the performance measures benchmarks/browser.py reads.

export const TUS = { "Tus-Resumable": "1.0.0" };

export class UploadError extends Error {
  constructor(message, { fatal = true, status = 0, code = "", retryAfter = 0 } = {}) {
    super(message);
    this.fatal = fatal;
    this.status = status;
    this.code = code; // the server's ERR_… code, when it sent one
    this.retryAfter = retryAfter;
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export const PASSWORD_CODES = new Set(["ERR_PASSWORD_REQUIRED", "ERR_WRONG_PASSWORD"]);

export function describeFailure(status, body, retryAfterHeader = null) {
  const text = (body || "").trim();
  const code = (text.match(/^ERR_[A-Z_]+/) || [""])[0];
  const detail = text.replace(/^ERR_[A-Z_]+: /, "");
  const sentence = (words) => words.charAt(0).toUpperCase() + words.slice(1);
  switch (status) {
    case 413: return new UploadError(`Too large: ${detail}`, { status, code });
    case 507:
      if (code === "ERR_QUOTA_EXCEEDED" || detail.startsWith("quota")) {
        // Sending it again will not help until something is deleted: the row says why and offers Resume.
        return new UploadError(sentence(detail), { status, code });
      }
      return new UploadError(`Server disk full: ${detail}`, { fatal: false, status, code });
    case 401:
      if (code === "ERR_WRONG_PASSWORD") return new UploadError("Wrong password", { status, code });
      if (code === "ERR_PASSWORD_REQUIRED") return new UploadError("The password is needed to upload", { status, code });
      return new UploadError(`Not allowed: ${detail}`, { status, code });
    case 403: return new UploadError(`Not allowed: ${detail}`, { status, code });
    case 429: {
      const wait = Math.max(1, Math.min(600, Number.parseInt(retryAfterHeader, 10) || 30));
      return new UploadError("Too many attempts", { fatal: false, status, code, retryAfter: wait });
    }
    case 460: return new UploadError("Checksum mismatch, sending that chunk again", { fatal: false, status });
    case 0: return new UploadError("Server unreachable", { fatal: false, status });
    default:
      return new UploadError(detail || `HTTP ${status}`, { fatal: status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 423, status, code });
  }
}

// XHR, not fetch: only XHR reports upload progress.
export function send(method, url, { headers = {}, body = null, timeout = 0, onProgress, signal } = {}) {
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

// Where the page's time goes, for benchmarks/browser.py: performance measures named send and gap, when
// localStorage has pyfiledrop:timing = 1 (off otherwise: no entries pile up in a long session).
export function timingOn() {
  try { return localStorage.getItem("pyfiledrop:timing") === "1"; } catch { return false; }
}

export function measure(on, name, start) {
  if (on) performance.measure(name, { start, end: performance.now() });
}
