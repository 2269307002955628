// Passing files on from the page: a "Share" dialog per file or for the selected files (expiry, password, download
// limit, copy), the list of links with revoke, and the expiry an uploader picks for a file (within the server's
// limit). Kept apart from app.js, which hands over what it shares through setUpSharing.
import { labelColumns } from "./accessible.js";
import { formatBytes } from "./uploader.js";

let page = null; // { $, api, el, copyButton, banner, date, plural, refreshMine, config }
let target = []; // the uploads the open dialog shares
const selected = new Map(); // upload id → upload, for "Share selected"

const EXPIRY_CHOICES = [
  [3600, "in 1 hour"], [86400, "in 1 day"], [7 * 86400, "in 7 days"], [30 * 86400, "in 30 days"], [365 * 86400, "in 1 year"],
];

export function setUpSharing(context) {
  page = context;
  const { $ } = page;
  $("share-form").addEventListener("submit", (event) => { event.preventDefault(); createShare(); });
  $("share-close").addEventListener("click", () => $("share-dialog").close());
  $("share-dialog").addEventListener("close", () => refreshShares()); // downloads may have happened meanwhile
  $("share-selected").addEventListener("click", () => openDialog([...selected.values()]));
  limitExpiryChoices($("share-expiry"));
}

// -- per row ------------------------------------------------------------------------------------------------------

export function selectBox(upload) {
  const { el } = page;
  const cell = el("td", "", "select");
  if (!upload.complete) return cell;
  const box = el("input");
  box.type = "checkbox";
  box.checked = selected.has(upload.id);
  box.setAttribute("aria-label", `Select ${upload.filename}`);
  box.addEventListener("change", () => {
    if (box.checked) selected.set(upload.id, upload);
    else selected.delete(upload.id);
    showSelection();
  });
  cell.append(box);
  return cell;
}

export function shareButton(upload) {
  const button = page.el("button", "Share", "button subtle");
  button.type = "button";
  button.setAttribute("aria-label", `Share ${upload.filename}`);
  button.addEventListener("click", () => openDialog([upload]));
  return button;
}

/** The "Expires" cell: the date, and a choice of a new expiry within what the server allows (--expire-after). */
export function expiryCell(upload) {
  const { el, date } = page;
  const cell = el("td", "", "expiry");
  if (!upload.complete) {
    cell.textContent = upload.expires_at ? date(upload.expires_at) : "never";
    return cell;
  }
  const select = el("select");
  select.setAttribute("aria-label", `Expiry of ${upload.filename}`);
  const current = el("option", upload.expires_at ? date(upload.expires_at) : "never");
  current.value = "keep";
  select.append(current);
  for (const [seconds, label] of allowedChoices()) {
    const option = el("option", label);
    option.value = String(seconds);
    select.append(option);
  }
  if (page.config.expire_after_seconds == null && upload.expires_at) {
    const never = el("option", "never");
    never.value = "never";
    select.append(never);
  }
  select.addEventListener("change", async () => {
    if (select.value === "keep") return;
    const body = { expires_in: select.value === "never" ? null : Number(select.value) };
    try {
      await page.api(`/api/uploads/${upload.id}`, { method: "PATCH", body });
    } catch (error) {
      page.banner(`Could not change the expiry: ${error.message}`, "error");
    }
    page.refreshMine();
  });
  cell.append(select);
  return cell;
}

/** Forget selected files that are no longer listed (deleted, expired). */
export function keepSelection(listed) {
  const ids = new Set(listed.map((upload) => upload.id));
  for (const id of [...selected.keys()]) if (!ids.has(id)) selected.delete(id);
  showSelection();
}

function allowedChoices() {
  const limit = page.config.expire_after_seconds;
  return EXPIRY_CHOICES.filter(([seconds]) => limit == null || seconds <= limit);
}

function limitExpiryChoices(select) {
  // A share link outliving its files would only answer 410: offer what the server keeps files for, or less.
  const limit = page.config?.expire_after_seconds;
  if (limit == null) return;
  for (const option of [...select.options]) {
    if (option.value === "" || Number(option.value) > limit) option.remove();
  }
}

function showSelection() {
  const button = page.$("share-selected");
  button.disabled = selected.size === 0;
  button.textContent = selected.size ? `Share selected (${selected.size})` : "Share selected";
}

// -- the dialog ---------------------------------------------------------------------------------------------------

function openDialog(uploads) {
  const { $ } = page;
  if (!uploads.length) return;
  target = uploads;
  limitExpiryChoices($("share-expiry"));
  const total = uploads.reduce((sum, upload) => sum + (upload.size || 0), 0);
  $("share-title").textContent = uploads.length === 1 ? `Share “${uploads[0].filename}”` : `Share ${uploads.length} files`;
  $("share-what").textContent = uploads.length === 1
    ? `${formatBytes(total)} · the link downloads the file itself.`
    : `${formatBytes(total)} in all · the link opens a page listing them, with a zip of all of them.`;
  $("share-password").value = "";
  $("share-max").value = "";
  $("share-error").hidden = true;
  $("share-created").hidden = true;
  $("share-submit").disabled = false;
  $("share-dialog").showModal();
}

function readForm() {
  const { $ } = page;
  const expiry = $("share-expiry").value;
  const limitText = $("share-max").value.trim();
  const limit = limitText ? Number(limitText) : null;
  if (limit !== null && !(Number.isInteger(limit) && limit > 0)) throw new Error("The download limit must be a whole number above 0.");
  const body = { expires_in: expiry ? Number(expiry) : null, max_downloads: limit };
  if ($("share-password").value) body.password = $("share-password").value;
  return body;
}

async function createShare() {
  const { $ } = page;
  const error = $("share-error");
  error.hidden = true;
  let body;
  try {
    body = readForm();
  } catch (problem) {
    error.textContent = problem.message;
    error.hidden = false;
    return;
  }
  $("share-submit").disabled = true;
  try {
    const share = target.length === 1
      ? await page.api(`/api/uploads/${target[0].id}/shares`, { method: "POST", body })
      : await page.api("/api/shares", { method: "POST", body: { ...body, upload_ids: target.map((upload) => upload.id) } });
    showCreated(share);
    refreshShares();
  } catch (problem) {
    error.textContent = `Could not create the link: ${problem.message}`;
    error.hidden = false;
    $("share-submit").disabled = false;
  }
}

function showCreated(share) {
  const { $ } = page;
  const input = $("share-url");
  input.value = share.url;
  const select = () => { input.focus(); input.select(); };
  $("share-copy").replaceChildren(page.copyButton("Copy link", share.url, { ariaLabel: "Copy the share link", onFail: select }));
  $("share-created").hidden = false;
  select();
}

// -- the list of links ----------------------------------------------------------------------------------------------

function shareState(share) {
  if (share.revoked) return "Revoked";
  if (share.expires_at != null && share.expires_at * 1000 <= Date.now()) return "Expired";
  if (share.max_downloads != null && share.downloads >= share.max_downloads) return "Used up";
  return "Active";
}

function shareRow(share) {
  const { el, date, plural } = page;
  const row = el("tr");
  row.dataset.id = share.id;
  const names = share.filenames.filter(Boolean);
  const what = share.label || (names.length === 1 ? names[0] : plural(names.length, "file"));
  const state = shareState(share);
  const limit = share.max_downloads != null ? ` of ${share.max_downloads}` : "";
  const actions = el("td", "", "actions");
  if (state === "Active") {
    const revoke = el("button", "Revoke", "button subtle danger");
    revoke.type = "button";
    revoke.setAttribute("aria-label", `Revoke the link to ${what}`);
    revoke.addEventListener("click", async () => {
      try {
        await page.api(`/api/shares/${encodeURIComponent(share.id)}`, { method: "DELETE" });
      } catch (error) {
        page.banner(`Could not revoke: ${error.message}`, "error");
      }
      refreshShares();
    });
    actions.append(revoke);
  }
  const filesCell = el("td", what, "name");
  if (share.password_required) filesCell.append(el("span", " · password", "muted"));
  row.append(filesCell, el("td", date(share.created_at)), el("td", share.expires_at != null ? date(share.expires_at) : "never"),
    el("td", `${share.downloads}${limit}`), el("td", state, `state ${state === "Active" ? "active" : "expired"}`), actions);
  return row;
}

export async function refreshShares() {
  const { $ } = page;
  try {
    const { shares } = await page.api("/api/shares");
    $("shares-body").replaceChildren(...shares.map(shareRow));
    labelColumns($("shares-table"));
    $("shares-section").hidden = shares.length === 0;
  } catch {
    $("shares-section").hidden = true;
  }
}
