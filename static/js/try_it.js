// Try it: send an uploaded image (or a webcam picture) to POST /api/v1/jobs/<id>/predict and
// show the top-5 classes as bars. Listeners sit on the document, because the panel arrives
// with the result partial after the page has loaded.
const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);

function csrfToken() {
  const headers = document.body.getAttribute("hx-headers");
  return headers ? JSON.parse(headers)["X-CSRFToken"] : "";
}

function show(form, top, seconds) {
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
  form.querySelector(".try-time").textContent = fill(form.dataset.seconds, { s: seconds.toFixed(2) });
}

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

async function send(form, blob, name) {
  failed(form, "");
  preview(form, blob);
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
    show(form, answer.top, answer.seconds);
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
