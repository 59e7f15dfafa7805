// A segmentation run's results: the layer toggle shows one of each image's three mask layers
// (prediction, ground truth, difference), the opacity slider sets how strongly they cover the
// image, and charts.js draws the IoU bars per class and the "images above an IoU" curve.
// The panel arrives with the result partial (and its pages replace each other through htmx),
// so listeners sit on the document and everything is set up again after each swap; the layer
// and the opacity chosen are kept across pages.
import { bars, lineChart } from "./charts.js";

const state = { layer: null, opacity: null };

/** Show `layer` ("predicted", "truth" or "diff") over every image of the panel. */
export function showLayer(panel, layer) {
  panel.dataset.layer = layer;
  state.layer = layer;
  for (const radio of panel.querySelectorAll("input[data-mask-layer]")) radio.checked = radio.value === layer;
}

/** Cover the images with the masks at `value` (0: clear, 1: opaque). */
export function setOpacity(panel, value) {
  state.opacity = value;
  panel.style.setProperty("--mask-opacity", String(value));
  const output = panel.querySelector("#mask-opacity-value");
  if (output) output.textContent = value.toFixed(2);
}

document.addEventListener("input", (event) => {
  const panel = event.target.closest("#masks");
  if (!panel) return;
  if (event.target.matches("input[data-mask-opacity]")) setOpacity(panel, Number(event.target.value));
});

document.addEventListener("change", (event) => {
  const panel = event.target.closest("#masks");
  if (panel && event.target.matches("input[data-mask-layer]")) showLayer(panel, event.target.value);
});

function json(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

// charts.js reads its words from #chart-words; the partial brings them in a <template> for
// pages that have none (no duplicate ids on pages that do).
function chartWords() {
  const words = document.getElementById("segmentation-chart-words");
  if (words && !document.getElementById("chart-words")) document.body.append(words.content.cloneNode(true));
}

function drawCharts() {
  chartWords();
  for (const figure of document.querySelectorAll("figure[data-chart^=seg-]:not([data-drawn])")) {
    const data = json(figure.dataset.jsonId);
    if (!data) continue;
    const label = document.getElementById(figure.getAttribute("aria-labelledby"))?.textContent.trim();
    if (figure.dataset.chart === "seg-bars") {
      bars(
        figure,
        data.map((row) => ({ label: row.name, values: [row.iou, row.dice] })),
        { series: ["IoU", "Dice"], percent: true, header: figure.dataset.header, label },
      );
    } else if (figure.dataset.chart === "seg-curve") {
      lineChart(figure, {
        series: [{ label: figure.dataset.yLabel, points: data.iou.map((x, i) => [x, data.share[i]]) }],
        xLabel: figure.dataset.xLabel,
        yLabel: figure.dataset.yLabel,
        percent: true,
        minX: 0,
        integerX: false,
        xRange: [0, 1],
        yRange: [0, 1],
        label,
      });
    }
    figure.dataset.drawn = "";
  }
}

function setUp() {
  const panel = document.getElementById("masks");
  if (panel) {
    const slider = panel.querySelector("input[data-mask-opacity]");
    if (slider) {
      if (state.opacity !== null) slider.value = String(state.opacity);
      setOpacity(panel, Number(slider.value));
    }
    showLayer(panel, state.layer || panel.dataset.layer || "predicted");
  }
  drawCharts();
}

setUp();
document.addEventListener("htmx:afterSettle", setUp);
