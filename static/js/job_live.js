// A job's live page: /ws/jobs/<id>/?after=N replays stored events, then streams live ones.
// Events carry a job-wide `seq`; the page keeps the last one, so a reconnect asks only for what
// it missed, and an event seen twice is dropped. While the job waits, the page polls the API for
// its queue position; once it has succeeded, the result partial is loaded below the curves.
// What the curves show is the run's kind's (webapp/jobs/kinds.live_view, in #live-text "kind"):
// the figures of the first chart (accuracy, mAP, mIoU, PCK), those of the loss chart (the loss
// and its parts), the figure whose best is shown and the one the test split is read by; a new
// kind needs no change here.
import { chartWords, formatValue, lineChart } from "./charts.js";

const script = document.querySelector("script[data-job]");
const jobId = script.dataset.job;
const page = document.getElementById("job-page");
const say = page.dataset;
const FORBIDDEN = 4403;
const TRAIN = "#0072b2";
const VAL = "#d55e00";
const names = chartWords().metrics; // epoch key → {label, percent}
const words = JSON.parse(document.getElementById("live-text").textContent);
const kind = words.kind; // {curves, losses, best, final}
// The epoch figures each chart may show, in legend order; each keeps its look on every chart.
const CURVES = { curves: kind.curves, "loss-curves": kind.losses };
const DASHED = [7, 4];
const DOTTED = [2, 3];
const OTHERS = ["#009e73", "#cc79a7", "#e69f00", "#56b4e9"];
// Training in blue, validation in orange; a kind's further figures in the palette's next colours
// (in the order the chart lists them); losses dashed, their parts dotted.
const TRAINING = ["train_loss", "train_acc"];
function look(key, keys) {
  const plain = (k) => !TRAINING.includes(k) && k !== "val_loss" && k !== kind.best;
  const others = keys.filter(plain);
  const colour = TRAINING.includes(key) ? TRAIN : plain(key) ? OTHERS[others.indexOf(key) % OTHERS.length] : VAL;
  const loss = kind.losses.includes(key);
  const part = loss && key !== "train_loss" && key !== "val_loss";
  return { color: colour, ...(loss ? { dash: part ? DOTTED : DASHED } : {}) };
}
const fill = (template, values) =>
  template.replace(/%\((\w+)\)s/g, (_, key) => values[key]).replace(/%%/g, "%");
const percent = (v) => (v == null ? "—" : `${(100 * v).toFixed(1)}%`);
const epochsPerFold = Number(say.epochs) || 1;
const folds = Math.max(1, Number(say.folds) || 1);

let last = 0;
let delay = 1000;
let state = say.status;
let resultsAsked = false;
let fold = 0;
let run = null; // {time, progress} when the current attempt started: the base of the ETA
const epochs = new Map(); // "fold:epoch" → epoch event (a resumed attempt replaces its epochs)
const batchLoss = [];

function text(id, value) {
  const element = document.getElementById(id);
  if (element) element.textContent = value;
}

function status(value) {
  state = value;
  const badge = document.getElementById("job-status");
  badge.className = `badge job-${value}`;
  badge.textContent = badge.dataset[value] || value;
  const cancel = document.getElementById("cancel-form");
  if (cancel && value !== "running" && value !== "queued") cancel.remove();
  document.getElementById("queue-card").hidden = value !== "queued";
  if (value !== "running") text("eta", "—");
}

const finite = (value) => value != null && Number.isFinite(value);

function drawEpochs() {
  const rows = [...epochs.values()].filter((e) => (e.fold || 0) === fold);
  for (const [id, keys] of Object.entries(CURVES)) {
    const figure = document.getElementById(id);
    const shown = keys.filter((key) => rows.some((e) => finite(e[key])));
    lineChart(figure, {
      series: shown.map((key) => ({ label: names[key]?.label || key, ...look(key, shown), points: rows.map((e) => [e.epoch, e[key]]) })),
      percent: shown.length > 0 && shown.every((key) => names[key]?.percent),
      xLabel: say.epochAxis,
      yLabel: id === "curves" ? say.accAxis : say.lossAxis,
      empty: say.noData,
    });
  }
  const all = [...epochs.values()];
  if (all.some((e) => finite(e[kind.best]))) {
    text("best-val", formatValue(Math.max(...all.map((e) => (finite(e[kind.best]) ? e[kind.best] : -1))), true));
  }
}

function drawBatches() {
  lineChart(document.getElementById("batch-curves"), {
    series: [{ label: say.batchLoss, color: TRAIN, width: 1.2, points: batchLoss }],
    xLabel: say.stepAxis,
    yLabel: say.lossAxis,
    empty: say.noData,
    minX: 0,
    table: false, // thousands of batches: a summary line instead
  });
}

// Many events can arrive at once (a replay): draw once after them, not once per event.
const waiting = new Set();
function soon(draw) {
  if (waiting.has(draw)) return;
  waiting.add(draw);
  setTimeout(() => {
    waiting.delete(draw);
    draw();
  }, 100);
}

// The log line of an epoch: a classification job's own words, else its main figures.
function epochNote(data) {
  if (finite(data.train_acc)) {
    return fill(words.epoch, { epoch: data.epoch, train: (100 * data.train_acc).toFixed(1), val: data.val_acc == null ? "—" : (100 * data.val_acc).toFixed(1) });
  }
  const figures = [...kind.curves, "train_loss", "val_loss"].filter((key) => finite(data[key]))
    .map((key) => `${names[key]?.label || key} ${formatValue(data[key], names[key]?.percent)}`);
  return fill(say.epochLine, { epoch: data.epoch, figures: figures.join(", ") });
}

function duration(seconds) {
  return seconds >= 90
    ? fill(say.minutes, { n: Math.round(seconds / 60) })
    : fill(say.seconds, { n: Math.max(1, Math.round(seconds)) });
}

function progress(value, time) {
  const bar = document.getElementById("progress-bar");
  bar.value = Math.min(1, value);
  text("progress-pct", `${Math.floor(100 * Math.min(1, value))}%`);
  if (run && time && value > run.progress && state === "running") {
    const elapsed = (Date.parse(time) - run.time) / 1000;
    const left = (elapsed * (1 - value)) / (value - run.progress);
    if (elapsed > 2 && Number.isFinite(left)) text("eta", fill(say.eta, { time: duration(left) }));
  }
}

const LOG_LINES = 200; // the newest lines; a long run's thousands would only slow the page

function note(message) {
  const item = document.createElement("li");
  item.textContent = message;
  const log = document.getElementById("log");
  log.append(item);
  while (log.childElementCount > LOG_LINES) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

// A transfer says what became of the source's classifier: kept, reordered by name, or new.
function headNotice(data) {
  const key = data.head === "new" ? `new:${data.head_reason}` : data.head;
  const element = document.getElementById("head-notice");
  if (!element || !words.head[key]) return;
  element.textContent = words.head[key];
  element.className = `alert small ${data.head === "new" ? "warn-note" : "ok"}`;
  element.hidden = false;
}

function handle(event) {
  if (event.seq <= last) return; // seen already (replay and live overlap)
  last = event.seq;
  const data = event;
  if (event.type === "started") {
    status("running");
    fold = data.fold || 0;
    const done = (fold * epochsPerFold + (data.resumed_from || 0)) / (folds * epochsPerFold);
    run = { time: Date.parse(event.time), progress: done };
    if (fold > 0) batchLoss.length = 0;
    note(fill(words.started, { parameters: data.parameters, device: data.device }));
    headNotice(data);
    if (folds > 1) note(fill(say.fold, { n: fold }));
    soon(drawEpochs);
  } else if (event.type === "batch") {
    const step = (data.epoch - 1) * data.steps + data.step;
    while (batchLoss.length && batchLoss[batchLoss.length - 1][0] >= step) batchLoss.pop(); // a resume
    batchLoss.push([step, data.loss]);
    soon(drawBatches);
    text("progress", fill(words.progress, data));
    if (data.images_per_s) text("speed", `${Math.round(data.images_per_s)} img/s`);
    const done = fold * epochsPerFold + data.epoch - 1 + data.step / data.steps;
    progress(done / (folds * epochsPerFold), event.time);
  } else if (event.type === "epoch") {
    epochs.set(`${data.fold || 0}:${data.epoch}`, data);
    soon(drawEpochs);
    if (data.images_per_s) text("speed", `${Math.round(data.images_per_s)} img/s`);
    progress(((data.fold || 0) * epochsPerFold + data.epoch) / (folds * epochsPerFold), event.time);
    note(epochNote(data));
  } else if (event.type === "finished") {
    status("succeeded");
    progress(1);
    text("progress", words.finished);
    if (data.test) text("test-acc", percent(data.test[kind.final]));
    else if (data.kfold) text("test-acc", percent(data.kfold.mean_accuracy));
    note(words.finished);
    loadResults();
  } else if (event.type === "failed") {
    status(data.cancelled ? "cancelled" : "failed");
    note(data.reason);
  } else if (event.type === "log") {
    note(data.message);
  }
}

async function api() {
  const response = await fetch(say.apiUrl, { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

// The trainer reports "finished" a moment before the worker marks the job succeeded.
async function loadResults() {
  if (resultsAsked) return;
  resultsAsked = true;
  for (let tries = 0; tries < 60; tries += 1) {
    const job = await api().catch(() => null);
    if (job && job.status === "succeeded") break;
    if (job && job.status !== "running") return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await window.htmx.ajax("GET", say.resultUrl, { target: "#results", swap: "innerHTML" });
}

async function pollQueue() {
  if (state !== "queued") return;
  const job = await api().catch(() => null);
  if (job && job.status === "queued") {
    text("queue-position", job.queue_position == null ? say.queueNext : fill(say.queuePosition, { n: job.queue_position }));
    const start = job.estimated_start ? new Date(job.estimated_start) : null;
    const clock = start && start.toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
    text("queue-start", clock ? fill(say.queueStart, { time: clock }) : "");
  } else if (job && job.status !== state && state === "queued") {
    status(job.status); // the websocket brings the events; this only updates the badge sooner
  }
  setTimeout(pollQueue, 3000);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/jobs/${jobId}/?after=${last}`);
  socket.addEventListener("open", () => { delay = 1000; });
  socket.addEventListener("message", (message) => handle(JSON.parse(message.data)));
  socket.addEventListener("close", (closing) => {
    if (closing.code === FORBIDDEN) return;
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

// The misclassified gallery: sort by confidence, most or least confident first.
document.addEventListener("click", (click) => {
  const button = click.target.closest("[data-sort]");
  if (!button) return;
  const gallery = document.getElementById("mistakes");
  const sign = button.dataset.sort === "asc" ? 1 : -1;
  const tiles = [...gallery.children].sort((a, b) => sign * (a.dataset.confidence - b.dataset.confidence));
  gallery.append(...tiles);
  for (const other of button.parentElement.querySelectorAll("[data-sort]")) {
    other.classList.toggle("active", other === button);
    other.setAttribute("aria-pressed", String(other === button));
  }
});

drawEpochs();
drawBatches();
if (state === "succeeded") {
  progress(1);
  loadResults();
}
pollQueue();
connect();
