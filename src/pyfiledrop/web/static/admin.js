// The admin's list of every upload: search, sort and paging done by the server (GET /api/uploads?all=1&q=…),
// download, sha256, owner or drop link, the address it came from, and deleting several at once (POST /api/uploads/delete).
import { labelColumns } from "./accessible.js";
import { formatBytes } from "./uploader.js";

const PAGE = 50;
let page = null; // { $, api, el, copyButton, banner, date, refreshMine }
let offset = 0;
let total = 0;
const chosen = new Set();
let searchTimer = null;

export function setUpAdmin(context) {
  page = context;
  const { $ } = page;
  $("admin-search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { offset = 0; refreshAdminList(); }, 250);
  });
  $("admin-sort").addEventListener("change", () => { offset = 0; refreshAdminList(); });
  $("admin-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); refreshAdminList(); });
  $("admin-next").addEventListener("click", () => { if (offset + PAGE < total) offset += PAGE; refreshAdminList(); });
  $("admin-delete").addEventListener("click", deleteChosen);
}

function owner(upload) {
  if (upload.drop_label) return `drop link: ${upload.drop_label}`;
  return (upload.owner || "").startsWith("drop-") ? "drop link" : (upload.owner || "").slice(0, 8);
}

function row(upload) {
  const { el, date, copyButton } = page;
  const tr = el("tr");
  tr.dataset.id = upload.id;
  const select = el("td", "", "select");
  const box = el("input");
  box.type = "checkbox";
  box.checked = chosen.has(upload.id);
  box.setAttribute("aria-label", `Select ${upload.filename}`);
  box.addEventListener("change", () => {
    if (box.checked) chosen.add(upload.id);
    else chosen.delete(upload.id);
    showChosen();
  });
  select.append(box);
  const sha = el("td");
  if (upload.sha256) {
    const code = el("code", `${upload.sha256.slice(0, 12)}…`);
    code.title = upload.sha256;
    sha.append(code, " ", copyButton("Copy", upload.sha256, { ariaLabel: `Copy the sha256 of ${upload.filename}` }));
  } else {
    sha.textContent = "–";
  }
  const actions = el("td", "", "actions");
  if (upload.download_url) {
    const link = el("a", "Download", "button subtle");
    link.href = upload.download_url;
    link.setAttribute("download", upload.filename.split("/").pop());
    link.setAttribute("aria-label", `Download ${upload.filename}`);
    actions.append(link);
  }
  const from = el("td", upload.client_address || "–", "client");
  tr.append(select, el("td", upload.filename, "name"), el("td", owner(upload)), from, el("td", formatBytes(upload.size)),
    el("td", upload.state), el("td", date(upload.created_at)), sha, actions);
  return tr;
}

function showChosen() {
  const button = page.$("admin-delete");
  button.disabled = chosen.size === 0;
  button.textContent = chosen.size ? `Delete selected (${chosen.size})` : "Delete selected";
}

export async function refreshAdminList() {
  const { $, api } = page;
  const [sort, order] = $("admin-sort").value.split(":");
  const query = new URLSearchParams({ all: "1", limit: String(PAGE), offset: String(offset), sort, order });
  const search = $("admin-search").value.trim();
  if (search) query.set("q", search);
  const result = await api(`/api/uploads?${query}`, { admin: true });
  total = result.total;
  $("admin-body").replaceChildren(...result.uploads.map(row));
  labelColumns($("admin-table"));
  const last = Math.min(offset + result.uploads.length, total);
  $("admin-page").textContent = total ? `${offset + 1}–${last} of ${total}` : "No uploads match";
  $("admin-prev").disabled = offset === 0;
  $("admin-next").disabled = offset + PAGE >= total;
  showChosen();
}

async function deleteChosen() {
  const ids = [...chosen];
  if (!ids.length || !confirm(`Delete ${ids.length} upload${ids.length === 1 ? "" : "s"} from the server?`)) return;
  try {
    const result = await page.api("/api/uploads/delete", { method: "POST", admin: true, body: { ids } });
    chosen.clear();
    if (result.failed.length) page.banner(`${result.failed.length} could not be deleted: ${result.failed[0].error}`, "error");
  } catch (error) {
    page.banner(`Could not delete: ${error.message}`, "error");
  }
  await refreshAdminList();
  page.refreshMine();
}
