// A detection run's results: the score slider hides predicted boxes below the threshold (and
// says how many are shown), and the PR curves and per-class bars are drawn by charts.js.
// The panel arrives with the result partial (and its pages replace each other through htmx),
// so listeners sit on the document and everything is set up again after each swap.
import { bars, fill, prCurves } from "./charts.js";

let threshold = null; // the slider's value, kept across pages of the table

/** Hide the boxes of `root` scoring below `value`; returns [shown, total]. */
export function applyThreshold(root, value) {
  const boxes = root.querySelectorAll("[data-score]");
  let shown = 0;
  for (const box of boxes) {
    const below = Number(box.dataset.score) < value;
    box.classList.toggle("below", below);
    if (!below) shown += 1;
  }
  return [shown, boxes.length];
}

function update(slider) {
  const value = Number(slider.value);
  threshold = value;
  const section = slider.closest("#detections") || document;
  const [shown, total] = applyThreshold(section, value);
  const output = section.querySelector("#threshold-value");
  if (output) output.textContent = value.toFixed(2);
  const line = section.querySelector("#boxes-shown");
  if (line) line.textContent = fill(line.dataset.template, { shown, total, threshold: value.toFixed(2) });
}

document.addEventListener("input", (event) => {
  if (event.target.matches("input[data-threshold]")) update(event.target);
});

function json(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

// charts.js reads its words from #chart-words; the partial brings them in a <template> for
// pages that have none (no duplicate ids on pages that do).
function chartWords() {
  const words = document.getElementById("detection-chart-words");
  if (words && !document.getElementById("chart-words")) document.body.append(words.content.cloneNode(true));
}

function drawCharts() {
  chartWords();
  for (const figure of document.querySelectorAll("figure[data-chart]:not([data-drawn])")) {
    const data = json(figure.dataset.jsonId);
    if (!data) continue;
    const label = document.getElementById(figure.getAttribute("aria-labelledby"))?.textContent.trim();
    if (figure.dataset.chart === "pr") {
      prCurves(figure, data, { xLabel: figure.dataset.xLabel, yLabel: figure.dataset.yLabel, percent: true, label });
    } else if (figure.dataset.chart === "bars") {
      bars(
        figure,
        data.map((row) => ({ label: row.name, values: [row.ap50, row.ap] })),
        { series: ["AP@0.5", "AP@0.5:0.95"], percent: true, header: figure.dataset.header, label },
      );
    }
    figure.dataset.drawn = "";
  }
}

function setUp() {
  const slider = document.querySelector("input[data-threshold]");
  if (slider) {
    if (threshold !== null) slider.value = String(threshold);
    update(slider);
  }
  drawCharts();
}

setUp();
document.addEventListener("htmx:afterSettle", setUp);
