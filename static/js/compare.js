// The compare page: every run's curves overlaid, one colour (and past eight, one dash) per run.
// Which curves are drawn follows the data: one chart per curve the page lists for the runs' kind
// (webapp/jobs/kinds.py: accuracy and losses for classification, mAP and loss for detection).
// While a run is still queued or running, the page asks for fresh data (?format=json) every few
// seconds.
import { chartWords, fill, formatValue, lineChart, seriesStyle } from "./charts.js";

const root = document.getElementById("compare");
const say = root.dataset;
const words = chartWords();
const ORDER = Object.keys(words.metrics); // known figures first, in the names list's order
const REFRESH_MS = 4000;

// The curves to overlay: the page's list for the runs' kind ({key, label, format}), those some
// run has values of (all of them while no run has any); without a list, every validation
// figure the runs carry, known ones first.
function curves(data) {
  const has = (key) => data.runs.some((run) => run.points.some((p) => p[key] != null && Number.isFinite(p[key])));
  if (data.curves) {
    const drawn = data.curves.filter((curve) => has(curve.key));
    return (drawn.length ? drawn : data.curves).map((curve) => ({ ...curve, percent: curve.format === "percent" }));
  }
  const found = new Set(data.runs.flatMap((run) => run.points.flatMap(Object.keys)).filter((key) => key.startsWith("val_") && has(key)));
  const rank = (key) => (ORDER.includes(key) ? ORDER.indexOf(key) : ORDER.length);
  return [...found].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .map((key) => ({ key, label: words.metrics[key]?.label || key, percent: Boolean(words.metrics[key]?.percent) }));
}

// One card with a captioned figure per curve; rebuilt only when the curves change.
function figures(shown) {
  const holder = document.getElementById("compare-charts");
  const ids = shown.length ? shown.map((curve) => `compare-${curve.key}`) : ["compare-empty"];
  if (holder.dataset.keys === ids.join(" ")) return ids.map((id) => document.getElementById(id));
  holder.dataset.keys = ids.join(" ");
  holder.replaceChildren(
    ...ids.map((id, i) => {
      const curve = shown[i];
      const card = document.createElement("div");
      card.className = "card";
      const figure = document.createElement("figure");
      figure.id = id;
      const caption = document.createElement("figcaption");
      const title = document.createElement("h2");
      title.textContent = curve ? words.metrics[curve.key]?.title || fill(words.perEpoch, { metric: curve.label }) : say.emptyTitle;
      caption.append(title);
      figure.append(caption);
      card.append(figure);
      return card;
    }),
  );
  return ids.map((id) => document.getElementById(id));
}

function draw(data) {
  const shown = curves(data);
  figures(shown).forEach((figure, i) => {
    const curve = shown[i] || { key: "", label: "", percent: false };
    lineChart(figure, {
      series: curve.key ? data.runs.map((run) => ({ label: run.label, points: run.points.map((p) => [p.epoch, p[curve.key]]) })) : [],
      percent: curve.percent,
      zoom: true, // close runs are told apart: a share's axis starts just below the lowest
      xLabel: say.epochAxis,
      yLabel: curve.label,
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
