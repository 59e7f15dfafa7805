// Dataset upload: a ZIP, many files, or whole folders (one folder per class) are sent as one
// archive in chunks to /api/v1/uploads, with a progress bar. A failed chunk is retried; after
// a reload the same file resumes where it stopped (the server says how much arrived).
import { zipSync } from "/static/vendor/fflate-0.8.3/fflate.esm.js";

const form = document.getElementById("upload-form");
const zone = document.getElementById("drop-zone");
const picked = document.getElementById("picked");
const bar = document.getElementById("upload-bar");
const barText = document.getElementById("upload-bar-text");
const errorBox = document.getElementById("upload-error");
const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
const text = JSON.parse(document.getElementById("upload-text").textContent);
let entries = []; // [{path, file}]

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function describe() {
  if (!entries.length) { picked.textContent = ""; return; }
  const bytes = entries.reduce((sum, e) => sum + e.file.size, 0);
  picked.textContent = text.picked
    .replace("%(count)s", entries.length)
    .replace("%(size)s", (bytes / 1048576).toFixed(1));
  if (!form.elements.name.value) {
    const first = entries[0].path.split("/")[0].replace(/\.zip$/i, "");
    form.elements.name.value = entries.length === 1 ? first : first || "dataset";
  }
}

async function walk(entry, prefix) {
  if (entry.isFile) {
    const file = await new Promise((ok, fail) => entry.file(ok, fail));
    return [{ path: prefix + entry.name, file }];
  }
  const reader = entry.createReader();
  const children = [];
  for (;;) { // readEntries returns at most 100 at a time
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    children.push(...batch);
  }
  const nested = await Promise.all(children.map((c) => walk(c, prefix + entry.name + "/")));
  return nested.flat();
}

zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", async (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  const items = [...event.dataTransfer.items].map((i) => i.webkitGetAsEntry()).filter(Boolean);
  entries = (await Promise.all(items.map((e) => walk(e, "")))).flat();
  describe();
});
for (const input of form.querySelectorAll("input[type=file]")) {
  input.addEventListener("change", () => {
    entries = [...input.files].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
    describe();
  });
}

async function archive() {
  if (entries.length === 1 && /\.zip$/i.test(entries[0].path)) {
    return { blob: entries[0].file, name: entries[0].path.split("/").pop() };
  }
  const loose = entries.some((e) => !e.path.includes("/"));
  const className = form.elements.class_name.value.trim();
  if (loose && !className) throw new Error(text.needClass);
  const files = {};
  for (const e of entries) {
    const path = e.path.includes("/") ? e.path : `${className}/${e.path}`;
    files[path] = [new Uint8Array(await e.file.arrayBuffer()), { level: 0 }];
  }
  return { blob: new Blob([zipSync(files)], { type: "application/zip" }), name: "upload.zip" };
}

async function api(method, url, body, headers = {}) {
  const response = await fetch(url, {
    method, body, credentials: "same-origin",
    headers: { "X-CSRFToken": csrf, ...headers },
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

function progress(done, total) {
  const percent = total ? Math.floor((100 * done) / total) : 0;
  bar.value = percent;
  barText.textContent = `${percent}%`;
}

async function send(blob, name) {
  const key = `manabi-upload:${form.elements.course.value}:${name}:${blob.size}`;
  let upload = null;
  const saved = localStorage.getItem(key);
  if (saved) {
    upload = await api("GET", `/api/v1/uploads/${saved}`).catch(() => null);
  }
  if (!upload) {
    upload = await api("POST", "/api/v1/uploads", JSON.stringify({
      course: Number(form.elements.course.value), file_name: name, size: blob.size,
    }), { "Content-Type": "application/json" });
    localStorage.setItem(key, upload.id);
  }
  let offset = upload.received;
  let failures = 0;
  while (offset < blob.size) {
    progress(offset, blob.size);
    const chunk = blob.slice(offset, offset + upload.chunk_size);
    try {
      const state = await api("PUT", `/api/v1/uploads/${upload.id}?offset=${offset}`, chunk,
        { "Content-Type": "application/octet-stream" });
      offset = state.received;
      failures = 0;
    } catch (error) {
      if (error.status && error.status < 500 && error.status !== 409) throw error;
      if (++failures > 5) throw error;
      await new Promise((ok) => setTimeout(ok, 1000 * failures));
      offset = (await api("GET", `/api/v1/uploads/${upload.id}`)).received; // resume
    }
  }
  progress(blob.size, blob.size);
  const done = await api("POST", `/api/v1/uploads/${upload.id}/complete`, JSON.stringify({
    name: form.elements.name.value, kind: form.elements.kind.value,
    visibility: form.elements.visibility.value,
  }), { "Content-Type": "application/json" });
  localStorage.removeItem(key);
  return done;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  if (!entries.length) { showError(text.nothing); return; }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  bar.hidden = false;
  try {
    barText.textContent = text.packing;
    const { blob, name } = await archive();
    const dataset = await send(blob, name);
    window.location.href = `/datasets/${dataset.id}/`;
  } catch (error) {
    showError(error.message);
    button.disabled = false;
  }
});
