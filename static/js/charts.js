// Every chart of the site, drawn by uPlot (static/vendor/uplot-*) inside a <figure> the page
// provides with its <figcaption>. Each chart keeps its figures readable without the canvas: a
// table of the values (or a one-line summary per series when there are too many to list).
// Words come from the page's #chart-words list (templates/jobs/_chart_words.html).
import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";

// Colour-blind friendly first (Okabe–Ito, without its yellow, too pale on white), then darker
// Tableau 20 hues. Past the first eight, series are also dashed, so no two of 32 look alike even
// where two hues are hard to tell apart.
export const PALETTE = [
  "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#8c564b",
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f", "#bcbd22", "#17becf",
];
const DASHES = [null, [7, 4], [2, 3], [9, 3, 2, 3]];
const TABLE_ROWS = 400; // past this a table helps no one: a summary per series instead
const TABLE_COLUMNS = 20;
const charts = new WeakMap(); // figure → {plot, key, observer}

/** The colour and dash of the i-th series (run, class): distinct for 32 series. */
export function seriesStyle(i) {
  return { color: PALETTE[i % 8 + 8 * (Math.floor(i / 8) % 2)], dash: DASHES[Math.floor(i / 8) % DASHES.length] };
}

/** The page's chart words and metric names (key → {label, percent, title}). */
export function chartWords() {
  const list = document.getElementById("chart-words");
  const metrics = {};
  for (const item of list ? list.children : []) {
    metrics[item.dataset.key] = { label: item.textContent.trim(), percent: "percent" in item.dataset, title: item.dataset.title };
  }
  return { ...(list ? list.dataset : {}), metrics };
}

export const fill = (template, values) =>
  template.replace(/%\((\w+)\)s/g, (_, key) => values[key]).replace(/%%/g, "%");

/** A number as people read it: a share as a percentage, anything else to four figures. */
export function formatValue(value, percent) {
  if (value == null || !Number.isFinite(value)) return "—";
  if (percent) return `${(100 * value).toFixed(1)}%`;
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  return Number(value.toPrecision(4)).toString();
}

function axisLabel(value, percent) {
  if (percent) return `${Math.round(value * 100)}%`;
  return Number(value.toPrecision(3)).toString();
}

function css(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function axis(label, extra = {}) {
  const font = css("--font", "system-ui, sans-serif");
  return {
    label,
    stroke: css("--muted", "#566072"),
    font: `11px ${font}`,
    labelFont: `12px ${font}`,
    labelSize: label ? 20 : 0,
    grid: { stroke: "#eceff3", width: 1 },
    ticks: { stroke: "#c9ced6", width: 1, size: 4 },
    size(u, values) {
      if (this.side % 2 === 0) return 26; // a bottom or top axis: one line of numbers
      if (!values) return 36;
      u.ctx.font = this.font[0];
      const widest = Math.max(0, ...values.map((v) => u.ctx.measureText(v).width / devicePixelRatio));
      return Math.ceil(widest) + 14;
    },
    ...extra,
  };
}

// The parts of a figure the chart owns: the plot, an "empty" note over it, the table or summary.
function parts(figure) {
  let host = figure.querySelector(":scope > .chart-plot");
  if (!host) {
    host = document.createElement("div");
    host.className = "chart-plot";
    const empty = document.createElement("p");
    empty.className = "chart-empty";
    empty.hidden = true;
    host.append(empty);
    const fallback = document.createElement("div");
    fallback.className = "chart-fallback";
    figure.append(host, fallback);
  }
  return { host, empty: host.querySelector(".chart-empty"), fallback: figure.querySelector(":scope > .chart-fallback") };
}

// Draw `opts` with `data` into the figure: a new uPlot when the series changed, else new data.
function render(figure, key, opts, data, label) {
  const { host } = parts(figure);
  const width = host.clientWidth || figure.clientWidth || 600;
  let chart = charts.get(figure);
  if (chart && chart.key === key) {
    chart.plot.setData(data);
    return chart.plot;
  }
  if (chart) {
    chart.observer.disconnect();
    chart.plot.destroy();
  }
  // The legend's values follow the cursor; away from the plot it lists names only.
  const hovering = (u) => host.classList.toggle("hovering", u.cursor.idx != null);
  const plot = new uPlot({ ...opts, width, hooks: { setCursor: [hovering] } }, data, host);
  const canvas = plot.root.querySelector("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label || figure.querySelector("figcaption")?.textContent.trim() || "");
  const observer = new ResizeObserver(() => {
    if (host.clientWidth && Math.abs(host.clientWidth - plot.width) > 1) plot.setSize({ width: host.clientWidth, height: opts.height });
  });
  observer.observe(host);
  charts.set(figure, { plot, key, observer });
  return plot;
}

// One table row per x, one column per series: what the canvas shows, for anyone who cannot see it.
function table(fallback, header, columns, rows) {
  const words = chartWords();
  const open = fallback.querySelector("details")?.open || false;
  const details = document.createElement("details");
  details.className = "chart-data";
  details.open = open;
  const summary = document.createElement("summary");
  summary.textContent = words.table || "Table";
  const scroll = document.createElement("div");
  scroll.className = "chart-table-scroll";
  scroll.tabIndex = 0; // a scrolling box is reached by keyboard too
  scroll.setAttribute("role", "region");
  scroll.setAttribute("aria-label", `${fallback.parentElement.querySelector("figcaption")?.textContent.trim() || ""} ${summary.textContent}`.trim());
  const tableElement = document.createElement("table");
  tableElement.className = "table small";
  const head = tableElement.createTHead().insertRow();
  for (const name of [header, ...columns]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = name;
    head.append(th);
  }
  const body = tableElement.createTBody();
  for (const [x, ...cells] of rows) {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = x;
    row.append(th);
    for (const cell of cells) row.insertCell().textContent = cell;
  }
  scroll.append(tableElement);
  details.append(summary, scroll);
  fallback.replaceChildren(details);
}

function summaries(fallback, series, percent) {
  const words = chartWords();
  const template = words.summary || "%(label)s: %(n)s points, the last %(last)s, from %(low)s to %(high)s";
  const list = document.createElement("ul");
  list.className = "chart-summary small muted";
  for (const s of series) {
    if (s.points.length === 0) continue;
    const ys = s.points.map(([, y]) => y);
    const item = document.createElement("li");
    item.textContent = fill(template, {
      label: s.label,
      n: s.points.length,
      last: formatValue(ys[ys.length - 1], percent),
      low: formatValue(Math.min(...ys), percent),
      high: formatValue(Math.max(...ys), percent),
    });
    list.append(item);
  }
  fallback.replaceChildren(list);
}

// Finite points sorted by x, one per x (the last one given wins, as a resumed epoch replaces).
function clean(points) {
  const byX = new Map();
  for (const [x, y] of points) if (Number.isFinite(x) && y != null && Number.isFinite(y)) byX.set(x, y);
  return [...byX.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * Curves over a shared x (epochs, steps, recall): `series` is [{label, points: [[x, y], ...],
 * color?, dash?, width?}]. Options: xLabel, yLabel, percent (y is a share, 0 to 100%), zoom (a
 * percent axis starts just below the lowest value), minX (x starts there, 1 for epochs),
 * integerX (default true), xRange / yRange ([low, high], fixed), height, empty (the note without
 * data), table (false: a summary per series instead of the table), label (the canvas's name).
 */
export function lineChart(figure, options) {
  const { xLabel = "", yLabel = "", percent = false, zoom = false, minX = 1, integerX = true, height = 240 } = options;
  const words = chartWords();
  const series = options.series.map((s, i) => ({ ...seriesStyle(i), ...s, points: clean(s.points) }));
  const { empty, fallback } = parts(figure);
  const tables = series.filter((s) => s.points.length).map((s) => [s.points.map(([x]) => x), s.points.map(([, y]) => y)]);
  const joined = tables.length ? uPlot.join(tables) : [[]];
  // join() drops the empty series: put an all-empty column back in each one's place.
  const data = [joined[0]];
  let next = 1;
  for (const s of series) data.push(s.points.length ? joined[next++] : joined[0].map(() => null));
  const ys = series.flatMap((s) => s.points.map(([, y]) => y));
  empty.textContent = options.empty || words.empty || "";
  empty.hidden = ys.length > 0;
  // From the data itself: uPlot widens a single point's range to both sides (epoch 0 to 2).
  const xRange = options.xRange || ((u) => {
    const xs = u.data[0];
    const low = Math.min(minX, xs.length ? xs[0] : minX);
    return [low, Math.max(low + 1, xs.length ? xs[xs.length - 1] : 0)];
  });
  const yRange = options.yRange || ((u, low, high) => {
    if (low == null) return percent ? [0, 1] : [0, 1];
    if (percent) return [zoom ? Math.max(0, Math.floor((low - 0.02) * 10) / 10) : 0, 1];
    const top = high > 0 ? high * 1.05 : 1;
    return [Math.min(0, low), top];
  });
  const fewPoints = joined[0].length <= 60;
  const opts = {
    height,
    scales: { x: { time: false, range: xRange }, y: { range: yRange } },
    axes: [
      axis(xLabel, integerX ? { incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5], values: (u, splits) => splits.map(String) } : {}),
      axis(yLabel, { values: (u, splits) => splits.map((v) => axisLabel(v, percent)) }),
    ],
    series: [
      { label: xLabel, value: (u, v) => (v == null ? "—" : integerX ? String(v) : formatValue(v)) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: s.width || 2,
        dash: s.dash || undefined,
        spanGaps: true,
        points: { show: fewPoints, size: 5 },
        value: (u, v) => formatValue(v, percent),
      })),
    ],
    // Legend keys are lines (results.css), dashed where the series is.
    legend: { live: true, markers: { dash: (u, i) => (u.series[i].dash ? "dashed" : "solid") } },
    cursor: { drag: { x: true, y: false } },
  };
  const key = JSON.stringify([series.map((s) => [s.label, s.color, s.dash, s.width]), xLabel, yLabel, percent, zoom, height, fewPoints, options.xRange, options.yRange]);
  const plot = render(figure, key, opts, data, options.label);
  figure.classList.add("chart-figure");
  figure.dataset.series = String(series.length);
  const rows = data[0].length;
  if (rows === 0) {
    fallback.replaceChildren(); // the "no data" note says it all
  } else if (options.table === false || rows > TABLE_ROWS || series.length > TABLE_COLUMNS) {
    summaries(fallback, series, percent);
  } else {
    const format = (v) => (integerX ? String(v) : formatValue(v));
    table(fallback, xLabel, series.map((s) => s.label),
      data[0].map((x, i) => [format(x), ...series.map((_, j) => formatValue(data[j + 1][i], percent))]));
  }
  return plot;
}

/**
 * Precision–recall curves, one series per class: `curves` is {"<class>": {recall: [...],
 * precision: [...]}} (the detection evaluation's pr_curves). Options as lineChart's.
 */
export function prCurves(figure, curves, options = {}) {
  const words = chartWords();
  const series = Object.entries(curves || {}).map(([name, curve]) => ({
    label: name,
    points: (curve.recall || []).map((r, i) => [r, (curve.precision || [])[i]]),
  }));
  return lineChart(figure, {
    xLabel: words.recall || "recall",
    yLabel: words.precision || "precision",
    xRange: [0, 1],
    yRange: [0, 1],
    minX: 0,
    integerX: false,
    ...options,
    series,
  });
}

/**
 * Horizontal bars, one row per item (a class): `rows` is [{label, values: [v, ...]}] with one
 * value per name in options.series (one or two, e.g. ["AP@0.5", "AP@0.5:0.95"]), or {label,
 * value}. Options: series, percent (values are shares), valueLabel (the value axis), header (the
 * table's first column), empty, label.
 */
export function bars(figure, rows, options = {}) {
  const words = chartWords();
  const names = (options.series || [options.valueLabel || ""]).slice(0, 2); // two fit side by side
  const items = rows.map((r) => ({ label: String(r.label), values: r.values || [r.value] }));
  const percent = Boolean(options.percent);
  const { empty, fallback } = parts(figure);
  empty.textContent = options.empty || words.empty || "";
  empty.hidden = items.length > 0;
  const indices = items.map((_, i) => i);
  const data = [indices, ...names.map((_, j) => items.map((r) => r.values[j] ?? null))];
  const short = (text) => (text.length > 24 ? `${text.slice(0, 23)}…` : text);
  const height = Math.max(120, items.length * (names.length * 11 + 10) + 56);
  const opts = {
    height,
    scales: {
      x: { time: false, ori: 1, dir: -1, range: [-0.5, Math.max(0.5, items.length - 0.5)] },
      y: { ori: 0, range: (u, low, high) => [0, percent ? 1 : Math.max(high ?? 0, 0) * 1.05 || 1] },
    },
    axes: [
      axis("", { side: 3, grid: { show: false }, splits: () => indices, values: (u, splits) => splits.map((i) => short(items[i]?.label ?? "")) }),
      axis(options.valueLabel || "", { side: 2, values: (u, splits) => splits.map((v) => axisLabel(v, percent)) }),
    ],
    series: [
      { label: options.header || "", value: (u, i) => items[i]?.label ?? "—" },
      ...names.map((name, j) => {
        const { color } = seriesStyle(j);
        return {
          label: name,
          stroke: color,
          fill: `${color}cc`,
          width: 1,
          points: { show: false },
          paths: uPlot.paths.bars({ size: [names.length === 1 ? 0.7 : 0.42, 28], align: names.length === 1 ? 0 : j === 0 ? -1 : 1 }),
          value: (u, v) => formatValue(v, percent),
        };
      }),
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
  };
  const key = JSON.stringify(["bars", items.map((r) => r.label), names, percent, height]);
  const plot = render(figure, key, opts, data, options.label);
  figure.classList.add("chart-figure", "chart-bars");
  figure.dataset.series = String(names.length);
  table(fallback, options.header || "", names, items.map((r) => [r.label, ...names.map((_, j) => formatValue(r.values[j], percent))]));
  return plot;
}
