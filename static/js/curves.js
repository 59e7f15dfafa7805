// Line charts as plain SVG: axes with round ticks, grid lines, one polyline per series, points
// with a tooltip. Used by the live job page and the compare page; no library, no build step.
const NS = "http://www.w3.org/2000/svg";
const M = { left: 52, right: 14, top: 12, bottom: 36 };

// Distinct, colour-blind friendly colours (Okabe–Ito, then a few more).
export const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#999933"];

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 2.5, 5, 10].find((f) => f * power >= raw) || 10;
  return unit * power;
}

function ticks(low, high, count) {
  const step = niceStep(high - low || 1, count);
  const first = Math.ceil(low / step) * step;
  const out = [];
  for (let v = first; v <= high + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text != null) node.textContent = text;
  return node;
}

function label(value, percent) {
  if (percent) return `${Math.round(value * 100)}%`;
  if (Math.abs(value) >= 100) return value.toFixed(0);
  return Number(value.toPrecision(3)).toString();
}

/**
 * Draw `series` ([{label, color, dash, points: [[x, y], ...]}]) into an <svg> at its viewBox size.
 * Options: percent (y from 0 to 100%), xLabel, yLabel, empty (text shown without data),
 * minX (the x axis starts there), maxPoints (longer series are thinned for drawing), zoom.
 */
export function lineChart(svg, series, options = {}) {
  const { percent = false, xLabel = "", yLabel = "", empty = "", minX = 1 } = options;
  const { width: W, height: H } = svg.viewBox.baseVal;
  svg.replaceChildren();
  const drawn = series.map((s) => ({ ...s, points: s.points.filter(([, y]) => y != null && Number.isFinite(y)) }));
  const all = drawn.flatMap((s) => s.points);
  if (all.length === 0) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-empty" }, empty));
    return;
  }
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const x0 = Math.min(minX, ...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  // zoom: a percent axis starts just below the lowest value, so close runs can be told apart.
  const y0 = percent
    ? (options.zoom ? Math.max(0, Math.floor((Math.min(...ys) - 0.02) * 10) / 10) : 0)
    : Math.min(0, ...ys);
  const yTop = percent ? 1 : Math.max(...ys) * 1.05 || 1;
  const yTicks = ticks(y0, yTop, 5);
  const y1 = percent ? 1 : Math.max(yTop, yTicks[yTicks.length - 1]);
  const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const grid = el("g", { class: "chart-grid" });
  for (const t of yTicks) {
    grid.append(el("line", { x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t) }));
    grid.append(el("text", { x: M.left - 6, y: sy(t) + 4, "text-anchor": "end" }, label(t, percent)));
  }
  const xTicks = ticks(x0, x1, Math.min(8, x1 - x0)).filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    grid.append(el("text", { x: sx(t), y: H - M.bottom + 16, "text-anchor": "middle" }, String(t)));
  }
  grid.append(el("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  grid.append(el("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));
  grid.append(el("text", { x: (M.left + W - M.right) / 2, y: H - 4, "text-anchor": "middle", class: "chart-axis-label" }, xLabel));
  grid.append(el("text", { x: 12, y: M.top + (H - M.top - M.bottom) / 2, "text-anchor": "middle", class: "chart-axis-label", transform: `rotate(-90 12 ${M.top + (H - M.top - M.bottom) / 2})` }, yLabel));
  svg.append(grid);
  for (const s of drawn) {
    if (s.points.length === 0) continue;
    const step = Math.ceil(s.points.length / (options.maxPoints || 1500));
    const shown = s.points.filter((_, i) => i % step === 0 || i === s.points.length - 1);
    svg.append(el("polyline", {
      fill: "none",
      stroke: s.color,
      "stroke-width": s.thin ? 1.2 : 2.2,
      "stroke-dasharray": s.dash ? "6 4" : "none",
      points: shown.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "),
      "data-series": s.label,
    }));
    if ((s.points.length <= 60 && !s.thin) || s.points.length === 1) {
      for (const [x, y] of s.points) {
        const dot = el("circle", { cx: sx(x), cy: sy(y), r: 3, fill: s.color });
        dot.append(el("title", {}, `${s.label} · ${xLabel} ${x}: ${percent ? `${(y * 100).toFixed(1)}%` : y.toFixed(4)}`));
        svg.append(dot);
      }
    }
  }
}

/** A legend under a chart: one coloured key per series (dashed keys for dashed lines). */
export function legend(element, series) {
  element.replaceChildren(
    ...series.map((s) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      const key = document.createElement("span");
      key.className = `key${s.dash ? " dashed" : ""}`;
      key.style.setProperty("--key", s.color);
      item.append(key, document.createTextNode(s.label));
      return item;
    }),
  );
}
