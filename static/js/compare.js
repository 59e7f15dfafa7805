// The compare page: every run's validation curves overlaid, one colour per run. While a run is
// still queued or running, the page asks for fresh data (?format=json) every few seconds.
import { PALETTE, legend, lineChart } from "./curves.js";

const root = document.getElementById("compare");
const say = root.dataset;
const REFRESH_MS = 4000;
const percent = (v) => (v == null ? "—" : `${(100 * v).toFixed(1)}%`);

function draw(data) {
  const series = (key) =>
    data.runs.map((run, i) => ({
      label: run.label,
      color: PALETTE[i % PALETTE.length],
      points: run.points.map((p) => [p.epoch, p[key]]),
    }));
  const common = { xLabel: say.epochAxis, empty: say.noData };
  lineChart(document.getElementById("compare-acc"), series("val_acc"), { ...common, percent: true, zoom: true, yLabel: say.accAxis });
  lineChart(document.getElementById("compare-loss"), series("val_loss"), { ...common, yLabel: say.lossAxis });
  legend(document.getElementById("compare-legend"), series("val_acc"));
  for (const swatch of document.querySelectorAll("[data-swatch]")) {
    swatch.style.setProperty("--key", PALETTE[Number(swatch.dataset.swatch) % PALETTE.length]);
  }
  for (const run of data.runs) {
    const row = document.querySelector(`tr[data-run="${run.id}"]`);
    if (!row) continue;
    const badge = row.querySelector("[data-field=status]");
    badge.className = `badge job-${run.status}`;
    badge.textContent = run.status_label;
    row.querySelector("[data-field=best_val_acc]").textContent = percent(run.best_val_acc);
    row.querySelector("[data-field=test_accuracy]").textContent = percent(run.test_accuracy);
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
