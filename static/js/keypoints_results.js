// A keypoints run's results: the PCK bars per keypoint (charts.js), and the truth toggle kept
// across pages of the evaluated images. The toggle itself hides the true skeletons by CSS
// (#skeletons:has(...)); this only remembers it. The panel arrives with the result partial
// (and its pages replace each other through htmx), so everything is set up again after a swap.
import { bars } from "./charts.js";

let showTruth = true; // the toggle's state, kept across pages of images

document.addEventListener("change", (event) => {
  if (event.target.matches("input[data-truth-toggle]")) showTruth = event.target.checked;
});

// charts.js reads its words from #chart-words; the partial brings them in a <template> for
// pages that have none (no duplicate ids on pages that do).
function chartWords() {
  const words = document.getElementById("keypoints-chart-words");
  if (words && !document.getElementById("chart-words")) document.body.append(words.content.cloneNode(true));
}

function drawCharts() {
  chartWords();
  for (const figure of document.querySelectorAll("figure[data-chart=kp-bars]:not([data-drawn])")) {
    const node = document.getElementById(figure.dataset.jsonId);
    if (!node) continue;
    const rows = JSON.parse(node.textContent);
    const label = document.getElementById(figure.getAttribute("aria-labelledby"))?.textContent.trim();
    bars(figure, rows.map((row) => ({ label: row.name, values: [row.pck] })), {
      series: ["PCK@0.1"],
      percent: true,
      header: figure.dataset.header,
      label,
    });
    figure.dataset.drawn = "";
  }
}

function setUp() {
  const toggle = document.querySelector("input[data-truth-toggle]");
  if (toggle) toggle.checked = showTruth;
  drawCharts();
}

setUp();
document.addEventListener("htmx:afterSettle", setUp);
