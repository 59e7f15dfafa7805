// The compare page: every run's validation curves overlaid, one colour (and past eight, one dash)
// per run. Which curves are drawn follows the data: one chart per validation figure the runs'
// epochs carry (accuracy and loss for classification, mAP and loss for detection). While a run is
// still queued or running, the page asks for fresh data (?format=json) every few seconds.
import { chartWords, fill, formatValue, lineChart, seriesStyle } from "./charts.js";

const root = document.getElementById("compare");
const say = root.dataset;
const words = chartWords();
const ORDER = Object.keys(words.metrics); // known figures first, in the names list's order
const REFRESH_MS = 4000;

// The validation figures any run has a value of, known ones first.
function curveKeys(data) {
  const found = new Set();
  for (const run of data.runs) {
    for (const point of run.points) {
      for (const [key, value] of Object.entries(point)) {
        if (key.startsWith("val_") && value != null && Number.isFinite(value)) found.add(key);
      }
    }
  }
  const rank = (key) => (ORDER.includes(key) ? ORDER.indexOf(key) : ORDER.length);
  return [...found].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

// One card with a captioned figure per figure key; rebuilt only when the keys change.
function figures(keys) {
  const holder = document.getElementById("compare-charts");
  const ids = keys.length ? keys.map((key) => `compare-${key}`) : ["compare-empty"];
  if (holder.dataset.keys === ids.join(" ")) return ids.map((id) => document.getElementById(id));
  holder.dataset.keys = ids.join(" ");
  holder.replaceChildren(
    ...ids.map((id, i) => {
      const key = keys[i];
      const name = words.metrics[key];
      const card = document.createElement("div");
      card.className = "card";
      const figure = document.createElement("figure");
      figure.id = id;
      const caption = document.createElement("figcaption");
      const title = document.createElement("h2");
      title.textContent = key ? name?.title || fill(words.perEpoch, { metric: name?.label || key }) : say.emptyTitle;
      caption.append(title);
      figure.append(caption);
      card.append(figure);
      return card;
    }),
  );
  return ids.map((id) => document.getElementById(id));
}

function draw(data) {
  const keys = curveKeys(data);
  figures(keys).forEach((figure, i) => {
    const key = keys[i];
    const name = words.metrics[key] || { label: key || "", percent: false };
    lineChart(figure, {
      series: key ? data.runs.map((run) => ({ label: run.label, points: run.points.map((p) => [p.epoch, p[key]]) })) : [],
      percent: name.percent,
      zoom: true, // close runs are told apart: a share's axis starts just below the lowest
      xLabel: say.epochAxis,
      yLabel: name.label,
      empty: say.noData,
    });
  });
  for (const swatch of document.querySelectorAll("[data-swatch]")) {
    const { color, dash } = seriesStyle(Number(swatch.dataset.swatch));
    swatch.style.setProperty("--key", color);
    swatch.classList.toggle("dashed", Boolean(dash));
  }
  for (const run of data.runs) {
    const row = document.querySelector(`tr[data-run="${run.id}"]`);
    if (!row) continue;
    const badge = row.querySelector("[data-field=status]");
    badge.className = `badge job-${run.status}`;
    badge.textContent = run.status_label;
    for (const cell of row.querySelectorAll("td[data-field]")) {
      if (cell.dataset.field in run) cell.textContent = formatValue(run[cell.dataset.field], cell.dataset.format === "percent");
    }
  }
  const live = document.getElementById("compare-live");
  const running = data.runs.some((run) => !run.finished);
  live.classList.toggle("on", running);
  live.textContent = running ? live.dataset.on : "";
  return running;
}

async function refresh() {
  const url = new URL(location.href);
  url.searchParams.set("format", "json");
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.ok && !draw(await response.json())) return;
  } catch {
    // offline for a moment: try again later
  }
  setTimeout(refresh, REFRESH_MS);
}

if (draw(JSON.parse(document.getElementById("compare-data").textContent))) {
  setTimeout(refresh, REFRESH_MS);
}
