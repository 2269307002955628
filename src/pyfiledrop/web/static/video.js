// Trim and Rotate for a finished video in "My uploads": an inline editor under its row, then the job's progress.
// Nothing is re-encoded: the server copies packets, so a cut can only start on a keyframe; the editor shows which
// one before the user confirms. User text only ever goes in via textContent.

const VIDEO_SUFFIXES = /\.(mp4|m4v|mov|mkv|webm)$/i;
const POLL_MS = 300;
const POLL_LIMIT = 20000; // polls of one job (100 minutes at 300 ms), then the page stops asking

function el(tag, text = "", className = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function isVideo(upload) {
  return upload.complete && (upload.content_type.startsWith("video/") || VIDEO_SUFFIXES.test(upload.filename));
}

// "62.5", "1:02.5" or "0:01:02.5" → seconds; NaN when it is none of those.
export function parseTime(text) {
  const given = text.trim();
  if (/^(\d+(\.\d*)?|\.\d+)$/.test(given)) return Number(given);
  const clock = given.match(/^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/);
  if (!clock) return NaN;
  const [hours, minutes, seconds] = [Number(clock[1] || 0), Number(clock[2]), Number(clock[3])];
  if (seconds >= 60 || (clock[1] !== undefined && minutes >= 60)) return NaN;
  return hours * 3600 + minutes * 60 + seconds;
}

export function formatTime(seconds) {
  const millis = Math.round(seconds * 1000);
  const hours = Math.floor(millis / 3600000);
  const minutes = Math.floor((millis % 3600000) / 60000);
  const rest = (millis % 60000) / 1000;
  const text = `${String(minutes).padStart(2, "0")}:${rest.toFixed(3).padStart(6, "0")}`;
  return hours ? `${hours}:${text}` : text;
}

// The keyframe a cut from `start` really starts on, by the server's rule (video/media.py keyframe_at).
export function snapStart(keyframes, start, snap) {
  const eps = 1e-6;
  if (snap === "after") return keyframes.find((k) => k >= start - eps) ?? null;
  let chosen = null;
  for (const k of keyframes) if (k <= start + eps) chosen = k;
  return chosen ?? keyframes[0] ?? null;
}

// The Trim and Rotate buttons of one row; `ctx` = {api, banner, refresh}.
export function videoButtons(upload, row, ctx) {
  const buttons = [];
  for (const [label, mode] of [["Trim", "trim"], ["Rotate", "rotate"]]) {
    const button = el("button", label, "button subtle");
    button.type = "button";
    button.dataset.video = mode;
    button.setAttribute("aria-label", `${label} ${upload.filename}`);
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => openEditor(upload, row, mode, ctx, button));
    buttons.push(button);
  }
  return buttons;
}

async function openEditor(upload, row, mode, ctx, opener) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains("video-editor")) next.remove();
  const editorRow = el("tr", "", "video-editor");
  editorRow.dataset.for = upload.id;
  const cell = el("td");
  cell.colSpan = row.children.length;
  const box = el("div", "", "editor");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", `${mode === "trim" ? "Trim" : "Rotate"} ${upload.filename}`);
  cell.append(box);
  editorRow.append(cell);
  row.after(editorRow);
  opener.setAttribute("aria-expanded", "true");
  const close = () => { editorRow.remove(); opener.setAttribute("aria-expanded", "false"); opener.focus(); };
  box.append(el("p", "Reading the video…", "muted"));
  let probe;
  try {
    probe = await ctx.api(`/api/uploads/${upload.id}/video`);
  } catch (error) {
    box.replaceChildren(el("p", `Cannot edit this file: ${error.message}`, "error-text"), closeButton("Close", close));
    return;
  }
  const video = el("video", "", "preview");
  video.controls = mode === "trim"; // turned controls would be upside down: the rotate preview plays muted instead
  video.muted = mode === "rotate";
  video.autoplay = mode === "rotate";
  video.loop = mode === "rotate";
  video.playsInline = true;
  video.preload = "metadata";
  video.src = upload.download_url;
  video.setAttribute("aria-label", `Preview of ${upload.filename}`);
  const frame = el("div", "", "preview-frame");
  frame.append(video);
  box.replaceChildren(frame);
  const confirm = mode === "trim" ? trimControls(box, probe, video) : rotateControls(box, probe, video);
  const go = el("button", mode === "trim" ? "Trim" : "Rotate", "button primary");
  go.type = "button";
  go.dataset.confirm = mode;
  const status = el("p", "", "job-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  const foot = el("div", "", "editor-foot");
  foot.append(go, closeButton("Close", close), status);
  box.append(foot);
  go.addEventListener("click", async () => {
    const body = confirm();
    if (!body) return;
    go.disabled = true;
    await runJob(upload, body, box, status, ctx);
    go.disabled = false;
  });
  (box.querySelector("[data-role=start]") || box.querySelector("[role=radio][aria-checked=true]"))?.focus();
  box.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
}

function closeButton(label, close) {
  const button = el("button", label, "button subtle");
  button.type = "button";
  button.addEventListener("click", close);
  return button;
}

function field(labelText, input) {
  const wrap = el("div", "", "field");
  const label = el("label", labelText);
  input.id = `video-${labelText.toLowerCase().replace(/\W+/g, "-")}-${Math.random().toString(36).slice(2, 8)}`;
  label.htmlFor = input.id;
  wrap.append(label, input);
  return wrap;
}

function slider(max, value, label) {
  const range = el("input");
  range.type = "range";
  range.min = "0";
  range.max = String(max);
  range.step = "0.01";
  range.value = String(value);
  range.setAttribute("aria-label", label);
  return range;
}

function trimControls(box, probe, video) {
  const duration = probe.duration;
  const keyframes = probe.keyframes;
  const startText = el("input");
  startText.type = "text";
  startText.value = formatTime(0);
  startText.dataset.role = "start";
  startText.inputMode = "decimal";
  const endText = el("input");
  endText.type = "text";
  endText.value = formatTime(duration);
  endText.dataset.role = "end";
  endText.inputMode = "decimal";
  const snap = el("select");
  snap.dataset.role = "snap";
  for (const [value, text] of [["before", "keyframe at or before the start"], ["after", "first keyframe after it"]]) {
    const option = el("option", text);
    option.value = value;
    snap.append(option);
  }
  // The timeline: keyframe ticks, the kept part, the snapped start; two sliders are the drag handles.
  const timeline = el("div", "", "timeline");
  const kept = el("div", "", "kept");
  const snapped = el("div", "", "snapped");
  timeline.append(kept);
  for (const k of keyframes) {
    const tick = el("span", "", "keyframe");
    tick.style.left = `${(k / duration) * 100}%`;
    tick.title = `keyframe ${formatTime(k)}`;
    timeline.append(tick);
  }
  timeline.append(snapped);
  timeline.setAttribute("aria-hidden", "true");
  const startRange = slider(duration, 0, "Start (drag or arrow keys)");
  const endRange = slider(duration, duration, "End (drag or arrow keys)");
  const handles = el("div", "", "handles");
  handles.append(startRange, endRange);
  const note = el("p", "", "snap-note");
  note.setAttribute("aria-live", "polite");
  note.dataset.role = "snap-note";
  const here = el("div", "", "actions");
  for (const [label, target] of [["Start here", startText], ["End here", endText]]) {
    const button = el("button", label, "button subtle");
    button.type = "button";
    button.addEventListener("click", () => { target.value = formatTime(video.currentTime || 0); update("text"); });
    here.append(button);
  }
  const fields = el("div", "", "form-grid");
  fields.append(field("Start", startText), field("End", endText), field("Snap", snap));
  box.append(timeline, handles, here, fields, note);

  let values = null;
  function update(from) {
    if (from === "range") {
      startText.value = formatTime(Number(startRange.value));
      endText.value = formatTime(Number(endRange.value));
    }
    const start = parseTime(startText.value);
    const end = parseTime(endText.value);
    values = null;
    if (Number.isNaN(start) || Number.isNaN(end)) {
      note.textContent = "Type times as seconds (62.5), MM:SS or HH:MM:SS.";
      note.className = "snap-note error-text";
      return;
    }
    if (from !== "range") {
      startRange.value = String(Math.min(start, duration));
      endRange.value = String(Math.min(end, duration));
    }
    const used = snapStart(keyframes, start, snap.value);
    if (end <= start || used === null || used >= end) {
      note.textContent = end <= start ? "The end must come after the start." : "No keyframe there before the end.";
      note.className = "snap-note error-text";
      return;
    }
    kept.style.left = `${(used / duration) * 100}%`;
    kept.style.width = `${((Math.min(end, duration) - used) / duration) * 100}%`;
    snapped.style.left = `${(used / duration) * 100}%`;
    note.className = "snap-note";
    const moved = Math.abs(used - start) > 1e-6 ? ` (asked ${formatTime(start)}; a copy can only start on a keyframe)` : "";
    note.textContent = `The cut will start at ${formatTime(used)}${moved} and end at ${formatTime(Math.min(end, duration))}.`;
    note.dataset.start = String(used);
    values = { op: "trim", start, end, snap: snap.value };
  }
  startRange.addEventListener("input", () => {
    if (Number(startRange.value) > Number(endRange.value)) endRange.value = startRange.value;
    update("range");
    video.currentTime = Number(startRange.value);
  });
  endRange.addEventListener("input", () => {
    if (Number(endRange.value) < Number(startRange.value)) startRange.value = endRange.value;
    update("range");
    video.currentTime = Number(endRange.value);
  });
  for (const input of [startText, endText]) input.addEventListener("input", () => update("text"));
  snap.addEventListener("change", () => update("text"));
  update("text");
  return () => values;
}

function rotateControls(box, probe, video) {
  let chosen = probe.rotation;
  const group = el("div", "", "actions");
  group.setAttribute("role", "radiogroup");
  group.setAttribute("aria-label", "Rotation (clockwise)");
  const note = el("p", "", "muted");
  const choices = [];
  function show() {
    // The browser already shows the file's own rotation; the preview adds the change on top of it.
    const turn = (chosen - probe.rotation + 360) % 360;
    video.style.transform = turn ? `rotate(${turn}deg)` : "";
    video.dataset.turn = String(turn);
    video.parentElement.classList.toggle("sideways", turn % 180 !== 0);
    for (const choice of choices) {
      const on = Number(choice.dataset.degrees) === chosen;
      choice.setAttribute("aria-checked", String(on));
      choice.tabIndex = on ? 0 : -1;
      choice.classList.toggle("primary", on);
    }
    note.textContent = `Now ${probe.rotation}°; the copy will show ${chosen}° clockwise. Nothing is re-encoded.`;
  }
  for (const degrees of [0, 90, 180, 270]) {
    const choice = el("button", `${degrees}°`, "button subtle");
    choice.type = "button";
    choice.dataset.degrees = String(degrees);
    choice.setAttribute("role", "radio");
    choice.addEventListener("click", () => { chosen = degrees; show(); });
    choice.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (!step) return;
      event.preventDefault();
      chosen = (chosen + step * 90 + 360) % 360;
      show();
      choices.find((c) => Number(c.dataset.degrees) === chosen).focus();
    });
    choices.push(choice);
    group.append(choice);
  }
  box.append(group, note);
  show();
  return () => ({ op: "rotate", degrees: chosen });
}

async function runJob(upload, body, box, status, ctx) {
  const bar = el("progress");
  bar.max = 1;
  bar.value = 0;
  const cancel = el("button", "Cancel", "button subtle danger");
  cancel.type = "button";
  const line = el("div", "", "overall job");
  line.append(bar, cancel);
  box.append(line);
  let job;
  try {
    job = await ctx.api(`/api/uploads/${upload.id}/video`, { method: "POST", body });
  } catch (error) {
    status.textContent = `Not started: ${error.message}`;
    status.className = "job-status error-text";
    line.remove();
    return;
  }
  cancel.addEventListener("click", () => ctx.api(`/api/jobs/${job.id}`, { method: "DELETE" }).catch(() => {}));
  for (let polls = 0; polls < POLL_LIMIT; polls += 1) {
    bar.value = job.progress;
    status.className = "job-status";
    status.textContent = job.status === "queued" ? "Waiting for a free slot…" : `Copying… ${Math.floor(job.progress * 100)} %`;
    if (job.status === "done" || job.status === "failed") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      job = await ctx.api(`/api/jobs/${job.id}`);
    } catch (error) {
      status.textContent = `Lost the job: ${error.message}`;
      line.remove();
      return;
    }
  }
  line.remove();
  if (job.status === "done") {
    status.textContent = "Done: the new file is in My uploads.";
    status.dataset.upload = job.upload;
    await ctx.refresh();
  } else {
    status.textContent = job.error === "cancelled" ? "Cancelled." : `Failed: ${job.error}`;
    status.className = "job-status error-text";
  }
}
