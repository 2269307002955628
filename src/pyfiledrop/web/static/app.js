// The page: wires the DOM to the uploader and the JSON API. User text only ever goes in via textContent.
import { TusUpload, forgetAllRecords, formatBytes, formatDuration, unfinishedRecords } from "./uploader.js";

const $ = (id) => document.getElementById(id);
const uploads = [];
let config = null;
let adminToken = sessionStorage.getItem("pyfiledrop:admin");

function el(tag, text = "", className = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function banner(text, kind = "warn") {
  const node = $("banner");
  node.hidden = !text;
  node.textContent = text;
  node.classList.toggle("error", kind === "error");
}

async function api(path, { method = "GET", admin = false, body } = {}) {
  const headers = admin && adminToken ? { "X-Pyfiledrop-Token": adminToken } : {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok && response.status !== 204) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return response.status === 204 ? null : response.json();
}

async function loadConfig() {
  for (let attempt = 0; ; attempt++) {
    try {
      config = await api("/api/config");
      await api("/api/session"); // an owner cookie for this browser, before the first upload
      banner("");
      return;
    } catch {
      const wait = Math.min(30, 2 ** attempt);
      banner(`Server unreachable — retrying in ${wait} s`, "error");
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
  }
}

function showLimits() {
  const parts = [`Up to ${formatBytes(config.max_size_bytes)} per file`, `${formatBytes(config.chunk_size)} chunks`];
  parts.push(config.parallel_chunks ? "parallel" : "one chunk at a time");
  if (!config.allow_downloads) parts.push("downloads for the uploader only");
  $("limits").textContent = parts.join(" · ");
}

// -- adding files ------------------------------------------------------------------------------------------------

function addFiles(files) {
  for (const file of files) {
    if (file.size > config.max_size_bytes) {
      banner(`“${file.name}” is too large: ${formatBytes(file.size)}, the limit is ${formatBytes(config.max_size_bytes)}.`, "error");
      continue;
    }
    const upload = new TusUpload(file, config, { onChange: render });
    upload.row = buildRow(upload);
    uploads.push(upload);
    upload.start();
  }
  $("active-section").hidden = uploads.length === 0;
}

async function entriesToFiles(entry, prefix = "") {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    if (prefix) Object.defineProperty(file, "webkitRelativePath", { value: prefix + file.name });
    return [file];
  }
  const reader = entry.createReader();
  const files = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return files;
    for (const child of batch) files.push(...(await entriesToFiles(child, `${prefix}${entry.name}/`)));
  }
}

async function droppedFiles(dataTransfer) {
  const entries = [...(dataTransfer.items || [])].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.some((entry) => entry.isDirectory)) return [...dataTransfer.files];
  const files = [];
  for (const entry of entries) files.push(...(await entriesToFiles(entry)));
  return files;
}

function setUpDropping() {
  let depth = 0;
  const overlay = $("drop-overlay");
  document.addEventListener("dragenter", (event) => { event.preventDefault(); depth++; overlay.hidden = false; });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); overlay.hidden = depth === 0; });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", async (event) => {
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    addFiles(await droppedFiles(event.dataTransfer));
  });
  for (const id of ["file-input", "folder-input"]) {
    $(id).addEventListener("change", (event) => { addFiles([...event.target.files]); event.target.value = ""; });
  }
}

// -- the uploading list ------------------------------------------------------------------------------------------

function buildRow(upload) {
  const row = $("active-row").content.firstElementChild.cloneNode(true);
  row.querySelector(".name").textContent = upload.file.webkitRelativePath || upload.file.name;
  row.querySelector(".size").textContent = formatBytes(upload.file.size);
  row.querySelector(".pause").addEventListener("click", () => upload.pause());
  row.querySelector(".resume").addEventListener("click", () => upload.start());
  row.querySelector(".cancel").addEventListener("click", () => upload.cancel());
  $("active-list").append(row);
  return row;
}

function describe(upload) {
  const done = upload.uploaded;
  switch (upload.state) {
    case "done": return `Done · ${formatBytes(upload.file.size)}`;
    case "failed": return upload.message;
    case "cancelled": return "Cancelled";
    case "paused": return `Paused at ${percent(done, upload.file.size)}`;
    case "retrying": return upload.message;
    case "finishing": return "Checking and joining the parts…";
    default: {
      const speed = upload.speed();
      const left = speed ? (upload.file.size - done) / speed : NaN;
      const resumed = upload.resumedFrom ? ` · resumed at ${formatBytes(upload.resumedFrom)}` : "";
      return `${percent(done, upload.file.size)} · ${formatBytes(speed)}/s · ${formatDuration(left)} left${resumed}`;
    }
  }
}

function percent(part, whole) {
  return `${whole ? Math.floor((part / whole) * 100) : 100} %`;
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    let sent = 0;
    let total = 0;
    for (const upload of uploads) {
      const row = upload.row;
      row.className = `upload ${upload.state}`;
      row.querySelector("progress").value = upload.file.size ? upload.uploaded / upload.file.size : 1;
      row.querySelector(".stats").textContent = describe(upload);
      const active = ["uploading", "retrying"].includes(upload.state);
      row.querySelector(".pause").hidden = !active;
      row.querySelector(".resume").hidden = !["paused", "failed"].includes(upload.state);
      row.querySelector(".cancel").hidden = ["done", "cancelled"].includes(upload.state);
      if (upload.state !== "cancelled") { sent += upload.uploaded; total += upload.file.size; }
      if (upload.state === "done" && !upload.listed) { upload.listed = true; refreshMine(); showUnfinished(); }
    }
    $("overall-bar").value = total ? sent / total : 0;
    $("overall-text").textContent = `${formatBytes(sent)} of ${formatBytes(total)}`;
  });
}

function showUnfinished() {
  const active = new Set(uploads.map((upload) => upload.key));
  const records = unfinishedRecords().filter((record) => !active.has(record.key));
  $("resume-section").hidden = records.length === 0;
  $("resume-list").replaceChildren(...records.map((record) => el("li", `${record.name} · ${formatBytes(record.size)}`)));
}

// -- my uploads and admin ----------------------------------------------------------------------------------------

function copyButton(label, text) {
  const button = el("button", label, "button subtle");
  button.type = "button";
  button.addEventListener("click", async () => {
    await navigator.clipboard?.writeText(text).catch(() => {});
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

function deleteButton(upload, admin) {
  const button = el("button", "Delete", "button subtle danger");
  button.type = "button";
  button.setAttribute("aria-label", `Delete ${upload.filename}`);
  button.addEventListener("click", async () => {
    if (!confirm(`Delete “${upload.filename}” from the server?`)) return;
    try {
      await api(`/api/uploads/${upload.id}`, { method: "DELETE", admin });
    } catch (error) {
      banner(`Could not delete: ${error.message}`, "error");
    }
    refreshMine();
    if (adminToken) refreshAdmin();
  });
  return button;
}

function date(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "–";
}

function mineRow(upload) {
  const row = el("tr");
  row.dataset.id = upload.id;
  row.append(el("td", upload.filename, "name"), el("td", formatBytes(upload.size)), el("td", date(upload.created_at)));
  const sha = el("td");
  if (upload.sha256) {
    const code = el("code", `${upload.sha256.slice(0, 12)}…`);
    code.title = upload.sha256;
    sha.append(code, " ", copyButton("Copy", upload.sha256));
  } else {
    sha.textContent = upload.state === "receiving" ? `${percent(upload.received_bytes, upload.size)} received` : "–";
  }
  const actions = el("td", "", "actions");
  if (upload.complete) {
    const link = el("a", "Download", "button subtle");
    link.href = upload.download_url;
    link.setAttribute("download", upload.filename);
    actions.append(link);
    if (config.allow_downloads) actions.append(copyButton("Copy link", upload.download_url));
  }
  actions.append(deleteButton(upload, false));
  row.append(sha, el("td", upload.expires_at ? date(upload.expires_at) : "never"), actions);
  return row;
}

async function refreshMine() {
  try {
    const { uploads: mine } = await api("/api/uploads");
    $("mine-body").replaceChildren(...mine.map(mineRow));
    $("mine-table").hidden = mine.length === 0;
    $("mine-empty").hidden = mine.length > 0;
  } catch {
    $("mine-table").hidden = true;
    $("mine-empty").hidden = false;
  }
}

async function refreshAdmin() {
  try {
    const stats = await api("/api/admin/stats", { admin: true });
    const { uploads: all } = await api("/api/uploads?all=1", { admin: true });
    $("admin-section").hidden = false;
    $("admin-stats").textContent = `${stats.complete} files, ${formatBytes(stats.stored_bytes)} stored · ` +
      `${stats.unfinished} unfinished · disk: ${formatBytes(stats.disk_free)} free of ${formatBytes(stats.disk_total)}`;
    $("admin-body").replaceChildren(...all.map((upload) => {
      const row = el("tr");
      const actions = el("td", "", "actions");
      actions.append(deleteButton(upload, true));
      row.append(el("td", upload.filename, "name"), el("td", (upload.owner || "").slice(0, 8)), el("td", formatBytes(upload.size)),
        el("td", upload.state), el("td", date(upload.created_at)), actions);
      return row;
    }));
  } catch (error) {
    banner(`Admin view unavailable: ${error.message}`, "error");
  }
}

function takeAdminTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("admin");
  if (!token) return;
  sessionStorage.setItem("pyfiledrop:admin", token);
  adminToken = token;
  url.searchParams.delete("admin");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function setUpForget() {
  $("forget").addEventListener("click", async () => {
    if (!confirm("Forget your uploads on this browser? They stay on the server; this browser will no longer list them or resume unfinished ones.")) return;
    forgetAllRecords();
    sessionStorage.removeItem("pyfiledrop:admin");
    await api("/api/forget", { method: "POST" }).catch(() => {});
    location.reload();
  });
}

async function main() {
  takeAdminTokenFromUrl();
  setUpDropping();
  setUpForget();
  await loadConfig();
  showLimits();
  showUnfinished();
  await refreshMine();
  if (adminToken) await refreshAdmin();
  document.body.dataset.ready = "true";
}

main();
