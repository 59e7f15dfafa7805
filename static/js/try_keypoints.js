// Try it for a keypoints run: ManabiTry.keypoints(form, answer, preview) draws the people the
// model found as SVG skeletons over the photo sent (the SVG's units are the photo's pixels) and
// lists each person's keypoints with their scores; a plain message when it found nobody.
// static/js/try_it.js posts the photo and calls it with the JSON answer:
// {width, height, names, skeleton: [[a, b], ...] (0-based), people: [{score, box, keypoints: [{name, x, y, score}]}]}.
import { PALETTE } from "./charts.js";

const SVG = "http://www.w3.org/2000/svg";
const PEOPLE_DRAWN = 20; // bounded, whatever the answer holds
const fill = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => values[key]);
const finite = (value) => typeof value === "number" && Number.isFinite(value);
const fixed = (value, digits) => (finite(value) ? value.toFixed(digits) : "—");

function element(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

// The preview inside a positioned box with the overlay over it (made once per form).
function overlay(preview) {
  const existing = preview.parentElement?.querySelector(":scope > svg.try-overlay");
  if (existing) { // the form already holds an overlay over its preview
    preview.parentElement.classList.add("try-pose");
    return existing;
  }
  let host = preview.closest(".try-pose");
  if (!host) {
    host = document.createElement("div");
    host.className = "try-pose";
    preview.before(host);
    host.append(preview);
  }
  let svg = host.querySelector("svg.try-overlay");
  if (!svg) {
    svg = element("svg", { class: "try-overlay", role: "img" });
    host.append(svg);
  }
  return svg;
}

// One person's skeleton: lines between the keypoints the skeleton joins, then the points.
function skeleton(person, index, pairs, radius) {
  const colour = PALETTE[index % PALETTE.length];
  const points = person.keypoints || [];
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

function listed(area, person, index) {
  const block = document.createElement("div");
  block.className = "try-person-list";
  const head = document.createElement("p");
  const swatch = document.createElement("span");
  swatch.className = "det-swatch";
  swatch.style.setProperty("--swatch", PALETTE[index % PALETTE.length]);
  swatch.setAttribute("aria-hidden", "true");
  head.append(swatch, fill(area.dataset.person, { n: index + 1, score: fixed(person.score, 2) }));
  const list = document.createElement("ol");
  for (const point of person.keypoints || []) {
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

function answerArea(form) {
  let area = form.querySelector(".try-kp");
  if (!area) { // a form without the kind's template: the words are English, the figures right
    area = document.createElement("div");
    area.className = "try-kp small";
    Object.assign(area.dataset, {
      none: "The model found no person in this image.", found: "%(n)s people found", foundOne: "1 person found",
      person: "Person %(n)s · score %(score)s", point: "%(name)s (%(x)s, %(y)s) · score %(score)s", drawing: "Skeletons",
    });
    area.innerHTML = '<p class="try-kp-count" aria-live="polite"></p><div class="try-people"></div>';
    (form.querySelector(".try-answer") || form).prepend(area);
  }
  return area;
}

function keypoints(form, answer, preview) {
  const area = answerArea(form);
  const people = (Array.isArray(answer.people) ? answer.people : []).slice(0, PEOPLE_DRAWN);
  const pairs = (Array.isArray(answer.skeleton) ? answer.skeleton : []).filter(
    (pair) => Array.isArray(pair) && pair.length === 2 && pair.every(Number.isInteger),
  );
  const width = finite(answer.width) && answer.width > 0 ? answer.width : preview.naturalWidth || 1;
  const height = finite(answer.height) && answer.height > 0 ? answer.height : preview.naturalHeight || 1;
  const svg = overlay(preview);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-label", area.dataset.drawing);
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
