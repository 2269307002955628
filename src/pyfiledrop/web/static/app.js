// The page: wires the DOM to the uploader and the JSON API. User text only ever goes in via textContent.
// Three ways in: the open page, the page of a server started with --password (unlock first), and a drop link
// /d/TOKEN ("drop mode": the holder may upload and sees nothing else).
import { PASSWORD_CODES, TusUpload, forgetAllRecords, formatBytes, formatDuration, unfinishedRecords } from "./uploader.js";
import { isVideo, videoButtons } from "./video.js";
import { adaptToDevice, announce, announceChange, labelColumns } from "./accessible.js";
import { refreshAdminList, setUpAdmin } from "./admin.js";
import { expiryCell, keepSelection, refreshShares, selectBox, setUpSharing, shareButton } from "./sharing.js";

const $ = (id) => document.getElementById(id);
const uploads = [];
let config = null;
let adminToken = sessionStorage.getItem("pyfiledrop:admin");

const dropToken = (location.pathname.match(/^\/d\/([A-Za-z0-9_-]+)\/?$/) || [])[1] || null;
const dropHeaders = dropToken ? { "X-Pyfiledrop-Drop": dropToken } : {}; // on every request in drop mode
let drop = null; // GET /api/drops/current
let dropPassword = null; // a drop link's password: in memory only, sent on tus creations
let locked = true; // no uploading until the config (and, if asked for, a password) says so
let closed = false; // a drop link that is unknown, revoked or expired
if (dropToken) adminToken = null; // a drop link's page is for its holder only

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

class ApiError extends Error {
  constructor(message, status, code = "", retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(path, { method = "GET", admin = false, body } = {}) {
  const headers = { ...dropHeaders };
  if (admin && adminToken) headers["X-Pyfiledrop-Token"] = adminToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok && response.status !== 204) {
    let detail = `HTTP ${response.status}`;
    let code = "";
    try {
      const problem = await response.json();
      detail = problem.detail || detail;
      code = problem.error || "";
    } catch { /* not JSON */ }
    throw new ApiError(detail, response.status, code, response.headers.get("Retry-After"));
  }
  return response.status === 204 ? null : response.json();
}

async function loadConfig() {
  for (let attempt = 0; ; attempt++) {
    try {
      config = await api("/api/config", { admin: true }); // the admin needs no --password
      // An owner cookie for this browser, before the first upload; a drop link's holder is given none.
      if (!dropToken) await api("/api/session");
      banner("");
      return;
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
        banner(`The server refused the page: ${error.message}`, "error");
        throw error;
      }
      const wait = Math.min(30, 2 ** attempt);
      banner(`Server unreachable — retrying in ${wait} s`, "error");
      if (attempt === 0) announce("Server unreachable");
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
  }
}

function showLimits() {
  // What a person dropping files needs: the size limit and who may download; chunk sizes are for /api/config.
  const parts = [`Up to ${formatBytes(config.max_size_bytes)} per file`];
  if (!config.allow_downloads && !dropToken) parts.push("downloads for the uploader only");
  $("limits").textContent = parts.join(" · ");
}

// -- unlocking: the server's --password, or a drop link's own ----------------------------------------------------

function canUpload() {
  return config !== null && !locked && !closed;
}

function setLocked(value) {
  locked = value;
  for (const id of ["file-input", "folder-input"]) $(id).disabled = value || closed || $(id).dataset.unsupported === "true";
  $("drop").classList.toggle("locked", value || closed);
  for (const label of $("drop").querySelectorAll("label.button")) label.setAttribute("aria-disabled", String(value || closed));
}

function showUnlock(message = "") {
  setLocked(true);
  $("unlock-title").textContent = dropToken ? "This drop link needs its password" : "This server needs a password to upload";
  $("unlock-section").hidden = false;
  $("unlock-error").textContent = message;
  $("unlock-error").hidden = !message;
  $("unlock-password").value = "";
  if (message || document.activeElement === document.body) $("unlock-password").focus();
}

function hideUnlock() {
  $("unlock-section").hidden = true;
  $("unlock-error").hidden = true;
  setLocked(false);
  // Files refused for want of the password go on, with the parts already made.
  for (const upload of uploads) if (upload.state === "failed" && PASSWORD_CODES.has(upload.code)) upload.start();
}

async function unlock(password) {
  const button = $("unlock-button");
  button.disabled = true;
  try {
    if (dropToken) {
      await api("/api/drops/current", { method: "POST", body: { password } }); // checks it, stores nothing
      dropPassword = password; // sent again on each creation
      hideUnlock();
      return;
    }
    await api("/api/login", { method: "POST", body: { password } });
    config = await api("/api/config", { admin: true });
    if (config.password_required) {
      showUnlock("The password was right, but this browser did not keep the login cookie; allow cookies for this site.");
    } else {
      hideUnlock();
    }
  } catch (error) {
    if (error.status === 401) showUnlock("Wrong password");
    else if (error.status === 429) showUnlock(`Too many attempts — try again in ${Number.parseInt(error.retryAfter, 10) || 60} s`);
    else showUnlock(`Could not unlock: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function setUpUnlock() {
  $("unlock-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const password = $("unlock-password").value;
    if (!password) {
      showUnlock("Type the password first");
      return;
    }
    unlock(password);
  });
}

// A refusal from the server while uploading: ask for the password again, or say the drop link is closed.
function noticeFailure(upload) {
  if (upload.state !== "failed") {
    upload.noticed = false;
    return;
  }
  if (upload.noticed) return;
  upload.noticed = true;
  if (PASSWORD_CODES.has(upload.code)) {
    if (dropToken) dropPassword = null;
    showUnlock(upload.code === "ERR_WRONG_PASSWORD" ? "Wrong password" : "Uploading needs the password (again)");
  } else if (dropToken && ["ERR_DROP_CLOSED", "ERR_DROP_NOT_FOUND"].includes(upload.code)) {
    loadDrop();
  } else if (dropToken) {
    refreshDrop();
  }
}

// -- drop mode ---------------------------------------------------------------------------------------------------

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function showDrop() {
  const limits = [];
  if (drop.max_files != null) limits.push(`up to ${plural(drop.max_files, "file")}`);
  if (drop.max_bytes != null) limits.push(`${formatBytes(drop.max_bytes)} in all`);
  if (drop.expires_at != null) limits.push(`until ${date(drop.expires_at)}`);
  const text = limits.length ? limits.join(", ") : "no limits";
  $("drop-limits").textContent = text.charAt(0).toUpperCase() + text.slice(1);
  let used = `Used so far: ${plural(drop.files_used, "file")}, ${formatBytes(drop.bytes_used)}`;
  if (drop.max_files != null) used += ` · ${plural(Math.max(0, drop.max_files - drop.files_used), "file")} left`;
  if (drop.max_bytes != null) used += ` · ${formatBytes(Math.max(0, drop.max_bytes - drop.bytes_used))} left`;
  $("drop-used").textContent = used;
  $("drop-info").hidden = false;
}

function showClosed(message) {
  closed = true;
  setLocked(true);
  $("drop").hidden = true;
  $("unlock-section").hidden = true;
  $("drop-closed").hidden = false;
  $("drop-closed-detail").textContent = message;
}

async function loadDrop() {
  try {
    drop = await api("/api/drops/current");
  } catch (error) {
    if (error.status === 404 || error.status === 410) showClosed(error.message);
    else showClosed(`This drop link cannot be used right now: ${error.message}`);
    return;
  }
  document.title = `${drop.label} · pyfiledrop`;
  $("drop-title").textContent = `Upload to: ${drop.label}`;
  showDrop();
  if (drop.password_required && dropPassword === null) showUnlock();
  else setLocked(false);
}

async function refreshDrop() {
  try {
    drop = await api("/api/drops/current");
    showDrop();
  } catch (error) {
    if (error.status === 404 || error.status === 410) showClosed(error.message);
  }
}

function uploadOptions() {
  if (!dropToken) {
    // The admin's page creates uploads with the admin token too, so --password does not stop it (they stay owned
    // by this browser's owner cookie).
    const admin = adminToken ? { "X-Pyfiledrop-Token": adminToken } : {};
    return { onChange, creationHeaders: () => admin };
  }
  return {
    onChange,
    headers: dropHeaders,
    creationHeaders: () => (dropPassword === null ? {} : { "X-Pyfiledrop-Password": dropPassword }),
    scope: `drop:${drop.id}`,
  };
}

function onChange(upload) {
  noticeFailure(upload);
  announceChange(upload);
  render();
}

// -- adding files ------------------------------------------------------------------------------------------------

function addFiles(files) {
  if (!canUpload()) {
    if (files.length && !closed) banner("Unlock uploading with the password first.", "error");
    return;
  }
  for (const file of files) {
    if (file.size > config.max_size_bytes) {
      banner(`“${file.name}” is too large: ${formatBytes(file.size)}, the limit is ${formatBytes(config.max_size_bytes)}.`, "error");
      continue;
    }
    const upload = new TusUpload(file, config, uploadOptions());
    upload.row = buildRow(upload);
    uploads.push(upload);
    upload.start();
  }
  $("active-section").hidden = uploads.length === 0;
  showUnfinished(); // a file resuming leaves "Unfinished uploads": its progress shows above and in "My uploads"
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
  document.addEventListener("dragenter", (event) => { event.preventDefault(); depth++; overlay.hidden = !canUpload(); });
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
  const name = upload.file.webkitRelativePath || upload.file.name;
  row.querySelector(".name").textContent = name;
  row.querySelector("progress").setAttribute("aria-label", `Progress of ${name}`);
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
    case "done":
      // A drop link's sender may not download what they sent: say where it went rather than offer a dead link.
      if (dropToken && !config.allow_downloads) return `Received — stored for the owner of this drop · ${formatBytes(upload.file.size)}`;
      return `Done · ${formatBytes(upload.file.size)}`;
    case "failed": return upload.message;
    case "cancelled": return "Cancelled";
    case "paused": return `Paused at ${percent(done, upload.file.size)}`;
    case "retrying": return upload.message;
    case "finishing": return "Checking the sha256…";
    default: {
      if (upload.file.size && done >= upload.file.size) return "Checking the sha256…"; // sent; not yet confirmed
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
      if (upload.state === "done" && !upload.listed) {
        upload.listed = true;
        if (dropToken) refreshDrop();
        else refreshMine();
        showUnfinished();
      }
    }
    for (const upload of uploads) showLiveProgress(upload);
    $("overall-bar").value = total ? sent / total : 0;
    $("overall-text").textContent = `${formatBytes(sent)} of ${formatBytes(total)}`;
  });
}

// A file resuming is already a row of "My uploads" (receiving): that row follows the bytes as they go.
function showLiveProgress(upload) {
  const url = upload.url || upload.parts?.[0]?.url;
  if (!url || upload.parts.length > 1 && !upload.regions) return; // tus parts: no single record to follow
  const id = new URL(url).pathname.split("/").filter(Boolean).pop();
  const row = document.querySelector(`#mine-body tr[data-id="${CSS.escape(id)}"]`);
  const cell = row?.children[4];
  if (!cell || cell.querySelector("code")) return;
  cell.textContent = upload.state === "done" ? "Checking…" : `${percent(upload.uploaded, upload.file.size)} received · ${describe(upload)}`;
}

function showUnfinished() {
  const active = new Set(uploads.map((upload) => upload.key));
  const scope = dropToken ? (drop ? `drop:${drop.id}` : null) : "";
  const records = scope === null ? [] : unfinishedRecords(scope).filter((record) => !active.has(record.key));
  $("resume-section").hidden = records.length === 0;
  $("resume-list").replaceChildren(...records.map((record) => el("li", `${record.name} · ${formatBytes(record.size)}`)));
}

// -- my uploads and admin ----------------------------------------------------------------------------------------

function copyButton(label, text, { ariaLabel = "", onFail = null } = {}) {
  const button = el("button", label, "button subtle");
  button.type = "button";
  if (ariaLabel) button.setAttribute("aria-label", ariaLabel);
  button.addEventListener("click", async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch { /* no clipboard here (plain http on another host), or not allowed */ }
    button.textContent = copied ? "Copied" : "Copy failed — select and copy";
    if (!copied) onFail?.();
    setTimeout(() => { button.textContent = label; }, 2500);
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
  row.append(selectBox(upload), el("td", upload.filename, "name"), el("td", formatBytes(upload.size)), el("td", date(upload.created_at)));
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
    actions.append(shareButton(upload));
    if (isVideo(upload)) actions.append(...videoButtons(upload, row, { api, banner, refresh: refreshMine }));
  }
  actions.append(deleteButton(upload, false));
  row.append(sha, expiryCell(upload), actions);
  return row;
}

async function refreshMine() {
  try {
    const { uploads: mine } = await api("/api/uploads");
    const editor = $("mine-body").querySelector("tr.video-editor"); // an open Trim/Rotate editor stays open
    $("mine-body").replaceChildren(...mine.map(mineRow));
    const editing = editor && $("mine-body").querySelector(`tr[data-id="${editor.dataset.for}"]`);
    if (editing) editing.after(editor);
    labelColumns($("mine-table"));
    $("mine-table").hidden = mine.length === 0;
    $("mine-empty").hidden = mine.length > 0;
    keepSelection(mine);
    refreshShares();
  } catch {
    $("mine-table").hidden = true;
    $("mine-empty").hidden = false;
  }
}

async function refreshAdmin() {
  try {
    const stats = await api("/api/admin/stats", { admin: true });
    $("admin-section").hidden = false;
    $("admin-stats").textContent = `${stats.complete} files, ${formatBytes(stats.stored_bytes)} stored · ` +
      `${stats.unfinished} unfinished · disk: ${formatBytes(stats.disk_free)} free of ${formatBytes(stats.disk_total)}`;
    if (stats.awake) $("admin-stats").textContent += ` · keep awake ${stats.awake.mode}: ` +
      `${stats.awake.held ? `held by ${stats.awake.method}` : "not held"} (${stats.awake.reason})`;
    await refreshAdminList(); // search, sort and paging by the server (admin.js)
  } catch (error) {
    banner(`Admin view unavailable: ${error.message}`, "error");
    return;
  }
  await refreshDrops();
}

// -- admin: drop links -------------------------------------------------------------------------------------------

const DROP_UNITS = { MiB: 2 ** 20, GiB: 2 ** 30 };

function dropState(link) {
  if (link.revoked) return "Revoked";
  if (link.expires_at != null && link.expires_at * 1000 <= Date.now()) return "Expired";
  return "Active";
}

function dropLimits(link) {
  const limits = [];
  if (link.max_files != null) limits.push(plural(link.max_files, "file"));
  if (link.max_bytes != null) limits.push(formatBytes(link.max_bytes));
  if (link.password_required) limits.push("password");
  return limits.length ? limits.join(", ") : "none";
}

function dropRow(link) {
  const row = el("tr");
  row.dataset.id = link.id;
  const state = dropState(link);
  const actions = el("td", "", "actions");
  if (state === "Active") {
    const revoke = el("button", "Revoke", "button subtle danger");
    revoke.type = "button";
    revoke.setAttribute("aria-label", `Revoke ${link.label}`);
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke the drop link “${link.label}”? Whoever holds it can no longer upload; files already sent stay.`)) return;
      try {
        await api(`/api/drops/${encodeURIComponent(link.id)}`, { method: "DELETE", admin: true });
      } catch (error) {
        banner(`Could not revoke: ${error.message}`, "error");
      }
      refreshDrops();
    });
    actions.append(revoke);
  }
  row.append(
    el("td", link.label, "name"),
    el("td", `${plural(link.files_used, "file")}, ${formatBytes(link.bytes_used)}`),
    el("td", dropLimits(link)),
    el("td", link.expires_at != null ? date(link.expires_at) : "never"),
    el("td", state, `state ${state.toLowerCase()}`),
    actions,
  );
  return row;
}

async function refreshDrops() {
  try {
    const { drops } = await api("/api/drops", { admin: true });
    $("drops-section").hidden = false;
    $("drops-body").replaceChildren(...drops.map(dropRow));
    labelColumns($("drops-table"));
    $("drops-table").hidden = drops.length === 0;
    $("drops-empty").hidden = drops.length > 0;
  } catch (error) {
    banner(`Drop links unavailable: ${error.message}`, "error");
  }
}

function readDropForm() {
  const label = $("newdrop-label").value.trim();
  const password = $("newdrop-password").value;
  const filesText = $("newdrop-max-files").value.trim();
  const sizeText = $("newdrop-max-size").value.trim();
  const expiry = $("newdrop-expiry").value;
  const maxFiles = filesText ? Number(filesText) : null;
  if (maxFiles !== null && !(Number.isInteger(maxFiles) && maxFiles > 0)) throw new Error("Max files must be a whole number above 0.");
  const size = sizeText ? Number(sizeText) : null;
  if (size !== null && !(Number.isFinite(size) && size > 0)) throw new Error("Max size must be a number above 0.");
  return {
    label,
    password: password || null,
    max_files: maxFiles,
    max_bytes: size === null ? null : Math.max(1, Math.round(size * DROP_UNITS[$("newdrop-max-unit").value])),
    expires_in: expiry ? Number(expiry) : null,
  };
}

function showCreatedDrop(link) {
  $("newdrop-created-label").textContent = link.label;
  const input = $("newdrop-url");
  input.value = link.url;
  const select = () => { input.focus(); input.select(); };
  $("newdrop-copy").replaceChildren(copyButton("Copy link", link.url, { ariaLabel: "Copy the drop link", onFail: select }));
  $("newdrop-created").hidden = false;
}

function setUpDropForm() {
  $("newdrop-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("newdrop-error");
    error.hidden = true;
    let body;
    try {
      body = readDropForm();
    } catch (problem) {
      error.textContent = problem.message;
      error.hidden = false;
      return;
    }
    const button = $("newdrop-submit");
    button.disabled = true;
    try {
      const link = await api("/api/drops", { method: "POST", admin: true, body });
      $("newdrop-form").reset();
      showCreatedDrop(link);
      await refreshDrops();
    } catch (problem) {
      error.textContent = `Could not create the link: ${problem.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
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
  if (dropToken) {
    document.body.classList.add("drop-mode");
  } else {
    takeAdminTokenFromUrl();
    $("mine-section").hidden = false;
  }
  adaptToDevice();
  setLocked(true);
  setUpDropping();
  setUpForget();
  setUpUnlock();
  setUpDropForm();
  try {
    await loadConfig();
  } catch {
    document.body.dataset.ready = "true";
    return;
  }
  showLimits();
  if (!dropToken) setUpSharing({ $, api, el, copyButton, banner, date, plural, refreshMine, config });
  if (!dropToken) setUpAdmin({ $, api, el, copyButton, banner, date, refreshMine });
  if (dropToken) {
    await loadDrop();
    showUnfinished();
  } else {
    if (config.password_required) showUnlock();
    else setLocked(false);
    showUnfinished();
    await refreshMine();
    if (adminToken) await refreshAdmin();
  }
  document.body.dataset.ready = "true";
}

main();
