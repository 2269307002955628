// What the page says to screen readers and how it fits phones: a live region that announces each file's start,
// completion and failure and a lost server; column labels on narrow screens (the header row is hidden there); no
// "drop anywhere" on touch screens, and no folder button where the browser has no folder picker.

const said = new WeakMap(); // upload → the last state announced for it
let unreachable = false; // "server unreachable" was said and not yet followed by progress

export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || !text) return;
  // The same words twice in a row are not read again unless the node's text changes: clear, then set.
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

export function announceChange(upload) {
  const name = upload.file.webkitRelativePath || upload.file.name;
  const state = upload.state;
  if (state === "retrying" && upload.message.startsWith("Server unreachable")) {
    if (!unreachable) announce("Server unreachable — retrying");
    unreachable = true; // once for all the files that lose it at the same time
    return;
  }
  if (state === "uploading" || state === "done") unreachable = false;
  if (said.get(upload) === state) return;
  const words = {
    uploading: `Uploading ${name}`,
    done: `${name} uploaded, sha256 checked`,
    failed: `${name} failed: ${upload.message}`,
    cancelled: `${name} cancelled`,
  }[state];
  if (state === "uploading" && ["retrying", "finishing"].includes(said.get(upload))) return; // not a new start
  said.set(upload, state);
  if (words) announce(words);
}

/** The header cells' text on each data cell (data-label), shown before the value where the header is hidden. */
export function labelColumns(table) {
  const labels = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, index) => {
      const label = labels[index] || "";
      if (label && !["Actions", "Select"].includes(label)) cell.dataset.label = label;
    });
  }
}

export function adaptToDevice() {
  const touch = matchMedia("(pointer: coarse)").matches && !matchMedia("(pointer: fine)").matches;
  if (touch) {
    document.body.classList.add("touch");
    const title = document.getElementById("drop-title");
    if (title && title.textContent.startsWith("Drop files anywhere")) title.textContent = "Choose files to upload";
  }
  const probe = document.createElement("input");
  // iOS and Android browsers have the property but no folder picker: they only pick files.
  const mobile = /Android|iPhone|iPad|iPod|Mobile/i.test(navigator.userAgent);
  if (!("webkitdirectory" in probe) || mobile) {
    for (const id of ["folder-input"]) {
      const input = document.getElementById(id);
      input.disabled = true;
      input.dataset.unsupported = "true";
      document.querySelector(`label[for=${id}]`)?.setAttribute("hidden", "");
    }
  }
}
