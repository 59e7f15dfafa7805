// Try it for a keypoints run: ManabiTry.keypoints(form, answer, preview) draws the people the
// model found as SVG skeletons over the photo sent (the SVG's units are the photo's pixels) and
// lists each person's keypoints with their scores; a plain message when it found nobody. The
// form's part is templates/jobs/try/keypoints.html (its words are in .try-kp's data attributes).
// static/js/try_it.js posts the photo and calls it with the JSON answer:
// {width, height, names, skeleton: [[a, b], ...] (0-based), people: [{score, box, keypoints: [{name, x, y, score}]}]}.
import { PALETTE } from "./charts.js";

const SVG = "http://www.w3.org/2000/svg";
const PEOPLE_DRAWN = 20; // bounded, whatever the answer holds
const KEYPOINTS_DRAWN = 133; // trainer.limits.MAX_KEYPOINTS
const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);
const finite = (value) => typeof value === "number" && Number.isFinite(value);
const fixed = (value, digits) => (finite(value) ? value.toFixed(digits) : "—");

function element(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

// One person's skeleton: lines between the keypoints the skeleton joins, then the points.
function skeleton(person, index, pairs, radius) {
  const colour = PALETTE[index % PALETTE.length];
  const points = (person.keypoints || []).slice(0, KEYPOINTS_DRAWN);
  const group = element("g", { class: "try-person" });
  const path = pairs
    .filter(([a, b]) => points[a] && points[b] && finite(points[a].x) && finite(points[b].x))
    .map(([a, b]) => `M${points[a].x} ${points[a].y}L${points[b].x} ${points[b].y}`)
    .join("");
  if (path) {
    group.append(element("path", { d: path, class: "kp-halo" }));
    group.append(element("path", { d: path, class: "kp-bone", style: `stroke: ${colour}` }));
  }
  for (const point of points) {
    if (!finite(point.x) || !finite(point.y)) continue;
    const circle = element("circle", { cx: point.x, cy: point.y, r: radius, class: "kp-point", style: `fill: ${colour}` });
    const title = element("title");
    title.textContent = `${point.name} ${fixed(point.score, 2)}`;
    circle.append(title);
    group.append(circle);
  }
  return group;
}

// One person's keypoints as a list under a summary line (the first person's open).
function listed(area, person, index) {
  const block = document.createElement("details");
  block.className = "try-person-list";
  block.open = index === 0;
  const head = document.createElement("summary");
  const swatch = document.createElement("span");
  swatch.className = "det-swatch";
  swatch.style.setProperty("--swatch", PALETTE[index % PALETTE.length]);
  swatch.setAttribute("aria-hidden", "true");
  head.append(swatch, fill(area.dataset.person, { n: index + 1, score: fixed(person.score, 2) }));
  const list = document.createElement("ol");
  for (const point of (person.keypoints || []).slice(0, KEYPOINTS_DRAWN)) {
    const item = document.createElement("li");
    item.textContent = fill(area.dataset.point, {
      name: point.name,
      x: fixed(point.x, 0),
      y: fixed(point.y, 0),
      score: fixed(point.score, 2),
    });
    list.append(item);
  }
  block.append(head, list);
  return block;
}

function keypoints(form, answer, preview) {
  const area = form.querySelector(".try-kp");
  const people = (Array.isArray(answer.people) ? answer.people : []).slice(0, PEOPLE_DRAWN);
  const pairs = (Array.isArray(answer.skeleton) ? answer.skeleton : []).filter(
    (pair) => Array.isArray(pair) && pair.length === 2 && pair.every(Number.isInteger),
  );
  const width = finite(answer.width) && answer.width > 0 ? answer.width : preview.naturalWidth || 1;
  const height = finite(answer.height) && answer.height > 0 ? answer.height : preview.naturalHeight || 1;
  const svg = preview.parentElement.querySelector("svg.try-overlay"); // over the preview
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shown = preview.clientWidth || width;
  const radius = (4 * width) / shown; // 4 CSS pixels at the drawn size
  svg.replaceChildren(...people.map((person, i) => skeleton(person, i, pairs, radius)));
  svg.hidden = people.length === 0;
  const count = area.querySelector(".try-kp-count");
  count.textContent = people.length === 0 ? area.dataset.none
    : people.length === 1 ? area.dataset.foundOne : fill(area.dataset.found, { n: people.length });
  area.querySelector(".try-people").replaceChildren(...people.map((person, i) => listed(area, person, i)));
  form.dataset.answered = "";
}

window.ManabiTry = window.ManabiTry || {};
window.ManabiTry.keypoints = keypoints;
