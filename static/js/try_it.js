// Try it: send an uploaded image (or a webcam picture) to POST /api/v1/jobs/<id>/predict and
// hand the answer to the renderer of the form's kind (form[data-kind]): here the top-5 classes as
// bars, and a detector's boxes drawn over the image as SVG with their classes and scores, listed
// too, with a score slider; other kinds register theirs as window.ManabiTry[kind](form, answer,
// preview) in static/js/try_<kind>.js. Listeners sit on the document, because the panel arrives
// with the result partial after the page loaded.
import { PALETTE } from "./charts.js";

const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);
const SVG = "http://www.w3.org/2000/svg";

function csrfToken() {
  const headers = document.body.getAttribute("hx-headers");
  return headers ? JSON.parse(headers)["X-CSRFToken"] : "";
}

// Classification: the five most likely classes as bars.
function showTop(form, { top }) {
  const bars = form.querySelector(".try-bars");
  bars.replaceChildren(
    ...top.map(({ class: name, probability }) => {
      const row = document.createElement("div");
      row.className = "bar-row";
      const label = document.createElement("span");
      label.className = "bar-label";
      label.textContent = name;
      label.title = name;
      const bar = document.createElement("span");
      bar.className = "bar";
      const inner = document.createElement("span");
      inner.style.width = `${(100 * probability).toFixed(1)}%`;
      bar.append(inner);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = `${(100 * probability).toFixed(1)}%`;
      row.append(label, bar, value);
      return row;
    }),
  );
}

const colour = (label) => (label >= 0 ? PALETTE[label % PALETTE.length] : "#566072");

// The boxes over the preview (the SVG's units are the image's pixels) and as a list.
function showBoxes(form, answer) {
  const svg = form.querySelector(".try-overlay");
  svg.setAttribute("viewBox", `0 0 ${answer.width} ${answer.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shown = form.querySelector(".try-preview").clientWidth || answer.width;
  const font = (12 * answer.width) / shown; // 12 CSS pixels at the drawn size
  const groups = answer.boxes.map(({ box: [x, y, w, h], score, label, class: name }) => {
    const group = document.createElementNS(SVG, "g");
    group.dataset.score = String(score);
    const rect = document.createElementNS(SVG, "rect");
    for (const [key, value] of Object.entries({ x, y, width: w, height: h, stroke: colour(label) })) rect.setAttribute(key, value);
    const text = document.createElementNS(SVG, "text");
    for (const [key, value] of Object.entries({ x, y, dy: "-0.2em", "font-size": font, fill: colour(label) })) text.setAttribute(key, value);
    text.textContent = `${name} ${score.toFixed(2)}`;
    group.append(rect, text);
    return group;
  });
  // The answer lists the best box first; SVG paints later children on top, so the best is drawn last.
  svg.replaceChildren(...groups.reverse());
  svg.hidden = false;
  const list = form.querySelector(".try-found");
  list.replaceChildren(
    ...answer.boxes.map(({ box, score, class: name }) => {
      const item = document.createElement("li");
      item.dataset.score = String(score);
      item.textContent = `${name} ${score.toFixed(2)} · [${box.map((v) => Math.round(v)).join(", ")}]`;
      return item;
    }),
  );
  form.dataset.answered = "";
  threshold(form);
}

// Hide the boxes (drawn and listed) scoring below the slider; say how many are shown.
function threshold(form) {
  const slider = form.querySelector("input[data-try-threshold]");
  if (!slider) return;
  const value = Number(slider.value);
  form.querySelector(".try-threshold-value").textContent = value.toFixed(2);
  if (!("answered" in form.dataset)) return;
  let shown = 0;
  const drawn = form.querySelectorAll(".try-overlay [data-score]");
  for (const node of form.querySelectorAll(".try-overlay [data-score], .try-found [data-score]")) {
    node.classList.toggle("below", Number(node.dataset.score) < value);
  }
  for (const node of drawn) if (Number(node.dataset.score) >= value) shown += 1;
  const count = form.querySelector(".try-count");
  count.textContent = drawn.length
    ? fill(count.dataset.found, { shown, total: drawn.length, threshold: value.toFixed(2) })
    : count.dataset.none;
}

// The kinds drawn here; the others register theirs on window.ManabiTry.
const RENDERERS = { classification: showTop, detection: showBoxes };

document.addEventListener("input", (event) => {
  if (event.target.matches("input[data-try-threshold]")) threshold(event.target.closest("form[data-try]"));
});

function failed(form, message) {
  const box = form.querySelector(".try-error");
  box.textContent = message;
  box.hidden = !message;
}

function preview(form, blob) {
  const image = form.querySelector(".try-preview");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(blob);
  image.hidden = false;
}

// The preview has its size once it has loaded (the labels are sized for it).
const loaded = (image) =>
  image.complete && image.naturalWidth ? Promise.resolve() : new Promise((done) => {
    image.addEventListener("load", done, { once: true });
    image.addEventListener("error", done, { once: true });
  });

async function send(form, blob, name) {
  failed(form, "");
  preview(form, blob);
  const overlay = form.querySelector(".try-overlay");
  if (overlay) overlay.replaceChildren(); // the last image's boxes do not belong to this one
  form.classList.add("busy");
  const body = new FormData();
  body.append("image", blob, name);
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body,
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      failed(form, answer.detail || form.dataset.failed);
      return;
    }
    const image = form.querySelector(".try-preview");
    await loaded(image);
    const render = RENDERERS[form.dataset.kind] || (window.ManabiTry || {})[form.dataset.kind];
    if (!render) {
      failed(form, form.dataset.failed);
      return;
    }
    render(form, answer, image);
    form.querySelector(".try-time").textContent = fill(form.dataset.seconds, { s: answer.seconds.toFixed(2) });
  } catch {
    failed(form, form.dataset.failed);
  } finally {
    form.classList.remove("busy");
  }
}

document.addEventListener("submit", (submit) => {
  const form = submit.target.closest("form[data-try]");
  if (!form) return;
  submit.preventDefault();
  const file = form.querySelector("input[type=file]").files[0];
  if (file) send(form, file, file.name);
});

document.addEventListener("change", (change) => {
  const form = change.target.closest("form[data-try]");
  if (form && change.target.type === "file" && change.target.files[0]) {
    send(form, change.target.files[0], change.target.files[0].name);
  }
});

async function startCamera(form) {
  const video = form.querySelector(".try-video");
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    failed(form, fill(form.dataset.cameraFailed, { reason: error.message || error.name }));
    return;
  }
  await video.play();
  video.hidden = false;
  form.querySelector("[data-camera=shoot]").hidden = false;
  form.querySelector("[data-camera=start]").hidden = true;
}

function shoot(form) {
  const video = form.querySelector(".try-video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => blob && send(form, blob, "webcam.png"), "image/png");
}

document.addEventListener("click", (click) => {
  const button = click.target.closest("[data-camera]");
  if (!button) return;
  const form = button.closest("form[data-try]");
  if (button.dataset.camera === "start") startCamera(form);
  else shoot(form);
});

// Offer the webcam where the browser has one to offer (secure pages only).
function offerCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  for (const row of document.querySelectorAll("form[data-try] .camera-row")) row.hidden = false;
}

offerCamera();
document.addEventListener("htmx:afterSettle", offerCamera);
