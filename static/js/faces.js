// Face detection: send an uploaded photo (or a webcam picture) to POST /api/v1/faces, then draw
// a box over each face found (positioned in % of the photo, so it follows the photo's size)
// and list the same faces in a table for screen readers and for reading the numbers.
import { offerCamera, startCamera, takePicture } from "./webcam.js";

const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);

function csrfToken() {
  const headers = document.body.getAttribute("hx-headers");
  return headers ? JSON.parse(headers)["X-CSRFToken"] : "";
}

const percent = (score) => (score === null ? "—" : `${(100 * score).toFixed(1)}%`);

function drawBoxes(form, answer) {
  const boxes = answer.faces.map(({ box: [x, y, w, h], score }, index) => {
    const box = document.createElement("div");
    box.className = "faces-box";
    box.style.left = `${(100 * x) / answer.width}%`;
    box.style.top = `${(100 * y) / answer.height}%`;
    box.style.width = `${(100 * w) / answer.width}%`;
    box.style.height = `${(100 * h) / answer.height}%`;
    const label = document.createElement("span");
    label.textContent = score === null ? `${index + 1}` : `${index + 1} · ${percent(score)}`;
    box.append(label);
    return box;
  });
  form.querySelector(".faces-boxes").replaceChildren(...boxes);
}

function listFaces(form, answer) {
  const rows = answer.faces.map(({ box, score }, index) => {
    const row = document.createElement("tr");
    const cells = [fill(form.dataset.face, { n: index + 1 }), percent(score), ...box];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  });
  form.querySelector(".faces-table tbody").replaceChildren(...rows);
  form.querySelector(".faces-table").hidden = rows.length === 0;
}

function show(form, answer) {
  drawBoxes(form, answer);
  listFaces(form, answer);
  const found = fill(form.dataset.found, { n: answer.faces.length });
  const time = fill(form.dataset.seconds, { s: answer.seconds.toFixed(2) });
  form.querySelector(".faces-summary").textContent = answer.faces.length
    ? `${found} (${time})`
    : `${form.dataset.none} (${time})`;
  const detector = answer.detector === "mediapipe" ? form.dataset.mediapipe : form.dataset.opencvHaar;
  const line = form.querySelector(".faces-detector");
  line.textContent = detector;
  line.dataset.detector = answer.detector;
}

function clear(form) {
  form.querySelector(".faces-boxes").replaceChildren();
  form.querySelector(".faces-table").hidden = true;
  form.querySelector(".faces-summary").textContent = "";
  form.querySelector(".faces-detector").textContent = "";
}

function failed(form, message) {
  const box = form.querySelector(".faces-error");
  box.textContent = message;
  box.hidden = !message;
}

function preview(form, blob) {
  const image = form.querySelector(".faces-photo");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(blob);
  form.querySelector(".faces-stage").hidden = false;
}

async function send(form, blob, name) {
  failed(form, "");
  clear(form);
  preview(form, blob);
  form.classList.add("busy");
  form.setAttribute("aria-busy", "true");
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
      form.querySelector(".faces-stage").hidden = true;
      failed(form, answer.detail || form.dataset.failed);
      return;
    }
    show(form, answer);
  } catch {
    failed(form, form.dataset.failed);
  } finally {
    form.classList.remove("busy");
    form.removeAttribute("aria-busy");
  }
}

document.addEventListener("submit", (submit) => {
  const form = submit.target.closest("form[data-faces]");
  if (!form) return;
  submit.preventDefault();
  const file = form.querySelector("input[type=file]").files[0];
  if (file) send(form, file, file.name);
});

document.addEventListener("change", (change) => {
  const form = change.target.closest("form[data-faces]");
  if (form && change.target.type === "file" && change.target.files[0]) {
    send(form, change.target.files[0], change.target.files[0].name);
  }
});

document.addEventListener("click", (click) => {
  const button = click.target.closest("form[data-faces] [data-camera]");
  if (!button) return;
  const form = button.closest("form[data-faces]");
  const video = form.querySelector(".faces-video");
  if (button.dataset.camera === "start") {
    startCamera(video, form, form.dataset.cameraFailed).then((message) => failed(form, message));
  } else {
    takePicture(video).then((blob) => blob && send(form, blob, "webcam.jpg"));
  }
});

offerCamera(document.querySelectorAll("form[data-faces] .camera-row"));
