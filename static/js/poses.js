// Pose estimation: send an uploaded photo (or a webcam picture) to POST /api/v1/poses, with the
// keypoints run picked if any, then draw each person's skeleton over the photo as SVG (its units
// are the photo's pixels): the person's left side in one colour, the right in another, guessed
// points hollow and their bones dashed, each point named on hover. The same keypoints are listed
// in a table, for screen readers and for reading the numbers. Picking another model sends the
// same photo again, so two models can be compared on it.
import { offerCamera, startCamera, takePicture } from "./webcam.js";

const SVG = "http://www.w3.org/2000/svg";
const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);
const labels = JSON.parse(document.getElementById("pose-labels").textContent);
const label = (name) => labels[name] || name.replaceAll("_", " ");
const lastPhoto = new WeakMap(); // form → {blob, name} of the photo last sent
const latest = new WeakMap(); // form → the number of its latest request: older answers are dropped

function csrfToken() {
  const headers = document.body.getAttribute("hx-headers");
  return headers ? JSON.parse(headers)["X-CSRFToken"] : "";
}

// COCO names say the person's own side ("left_wrist"); a run's dataset may name its own points.
const sideOf = (name) => (/^(left|l)[_\s-]/i.test(name) ? "left" : /^(right|r)[_\s-]/i.test(name) ? "right" : "centre");

function svgNode(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

// COCO's visibility flag 0, 1, 2 in words (the template's data-outside, -guessed, -visible).
const visibilityText = (form, visibility) => form.dataset[["outside", "guessed", "visible"][visibility]];

function drawSkeletons(form, answer) {
  const svg = form.querySelector(".poses-overlay");
  svg.setAttribute("viewBox", `0 0 ${answer.width} ${answer.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shown = form.querySelector(".poses-photo").clientWidth || answer.width;
  const unit = answer.width / shown; // one CSS pixel, in the photo's pixels
  const people = answer.people.map((person, index) => {
    const group = svgNode("g", { class: "pose-person", "data-person": index + 1 });
    for (const [a, b] of answer.skeleton) {
      const [start, end] = [person.keypoints[a], person.keypoints[b]];
      if (!start || !end || !start.visibility || !end.visibility) continue; // outside the photo
      const side = sideOf(start.name) === sideOf(end.name) ? sideOf(start.name) : "centre";
      const guessed = start.visibility < 2 || end.visibility < 2 ? " guessed" : "";
      const ends = { x1: start.x, y1: start.y, x2: end.x, y2: end.y };
      group.append(
        svgNode("line", { ...ends, class: "halo" }),
        svgNode("line", { ...ends, class: `bone side-${side}${guessed}` }),
      );
    }
    for (const point of person.keypoints) {
      if (!point.visibility) continue;
      const guessed = point.visibility < 2 ? " guessed" : "";
      const circle = svgNode("circle", {
        cx: point.x,
        cy: point.y,
        r: 5 * unit,
        class: `joint side-${sideOf(point.name)}${guessed}`,
        "data-name": point.name,
      });
      const title = svgNode("title", {});
      title.textContent = `${label(point.name)} · ${visibilityText(form, point.visibility)}`;
      circle.append(title);
      group.append(circle);
    }
    return group;
  });
  svg.replaceChildren(...people);
}

function listKeypoints(form, answer) {
  const rows = answer.people.flatMap((person, index) =>
    person.keypoints.map((point) => {
      const row = document.createElement("tr");
      row.dataset.name = point.name;
      row.dataset.visibility = String(point.visibility);
      const cells = [
        fill(form.dataset.person, { n: index + 1 }),
        label(point.name),
        Math.round(point.x),
        Math.round(point.y),
        visibilityText(form, point.visibility),
      ];
      for (const value of cells) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      return row;
    }),
  );
  form.querySelector(".poses-table tbody").replaceChildren(...rows);
  form.querySelector(".poses-table").hidden = rows.length === 0;
  form.querySelector(".poses-legend").hidden = rows.length === 0;
}

function show(form, answer) {
  drawSkeletons(form, answer);
  listKeypoints(form, answer);
  const found = fill(form.dataset.found, { n: answer.people.length });
  const time = fill(form.dataset.seconds, { s: answer.seconds.toFixed(2) });
  const summary = form.querySelector(".poses-summary");
  summary.textContent = answer.people.length ? `${found} (${time})` : `${form.dataset.none} (${time})`;
  summary.classList.toggle("poses-nobody", !answer.people.length);
  const line = form.querySelector(".poses-source");
  line.textContent =
    answer.source === "mediapipe" ? form.dataset.mediapipe : fill(form.dataset.run, { id: answer.source.slice(4) });
  line.dataset.source = answer.source;
}

function clear(form) {
  form.querySelector(".poses-overlay").replaceChildren();
  form.querySelector(".poses-table").hidden = true;
  form.querySelector(".poses-legend").hidden = true;
  form.querySelector(".poses-summary").textContent = "";
  form.querySelector(".poses-source").textContent = "";
}

function failed(form, message) {
  const box = form.querySelector(".poses-error");
  box.textContent = message;
  box.hidden = !message;
}

function preview(form, blob) {
  const image = form.querySelector(".poses-photo");
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(blob);
  form.querySelector(".poses-stage").hidden = false;
  return image.decode().catch(() => {}); // its drawn size sizes the points
}

async function send(form, blob, name) {
  const number = (latest.get(form) || 0) + 1;
  latest.set(form, number);
  lastPhoto.set(form, { blob, name });
  failed(form, "");
  clear(form);
  const shown = preview(form, blob);
  form.classList.add("busy");
  form.setAttribute("aria-busy", "true");
  const body = new FormData();
  body.append("image", blob, name);
  const job = form.querySelector("select[name=job]").value;
  if (job) body.append("job", job);
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body,
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (latest.get(form) !== number) return; // another photo or model was asked for since
    if (!response.ok) {
      form.querySelector(".poses-stage").hidden = true;
      failed(form, answer.detail || form.dataset.failed);
      return;
    }
    await shown;
    show(form, answer);
  } catch {
    if (latest.get(form) === number) failed(form, form.dataset.failed);
  } finally {
    if (latest.get(form) === number) {
      form.classList.remove("busy");
      form.removeAttribute("aria-busy");
    }
  }
}

document.addEventListener("submit", (submit) => {
  const form = submit.target.closest("form[data-poses]");
  if (!form) return;
  submit.preventDefault();
  const file = form.querySelector("input[type=file]").files[0];
  if (file) send(form, file, file.name);
});

document.addEventListener("change", (change) => {
  const form = change.target.closest("form[data-poses]");
  if (!form) return;
  if (change.target.type === "file" && change.target.files[0]) {
    send(form, change.target.files[0], change.target.files[0].name);
  } else if (change.target.name === "job" && lastPhoto.has(form)) {
    const { blob, name } = lastPhoto.get(form);
    send(form, blob, name);
  }
});

document.addEventListener("click", async (click) => {
  const button = click.target.closest("form[data-poses] [data-camera]");
  if (!button) return;
  const form = button.closest("form[data-poses]");
  const video = form.querySelector(".poses-video");
  if (button.dataset.camera === "start") {
    failed(form, await startCamera(video, form, form.dataset.cameraFailed));
  } else {
    const blob = await takePicture(video);
    if (blob) send(form, blob, "webcam.jpg");
  }
});

offerCamera(document.querySelectorAll("form[data-poses] .camera-row"));
