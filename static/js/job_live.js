// A job's live page: /ws/jobs/<id>/?after=N replays stored events, then streams live ones.
// Events carry a number; the page keeps the last one, so a reconnect asks only for what it
// missed, and an event seen twice is dropped. Curves are drawn as SVG polylines.
const script = document.querySelector("script[data-job]");
const jobId = script.dataset.job;
const FORBIDDEN = 4403;
const svg = document.getElementById("curves");
const log = document.getElementById("log");
const words = JSON.parse(document.getElementById("live-text").textContent);
const fill = (template, values) =>
  template.replace(/%\((\w+)\)s/g, (_, key) => values[key]).replace(/%%/g, "%");
let last = 0;
let delay = 1000;
const epochs = [];

function text(id, value) {
  const element = document.getElementById(id);
  if (element) element.textContent = value;
}

function status(value) {
  const badge = document.getElementById("job-status");
  badge.className = `badge job-${value}`;
  badge.textContent = badge.dataset[value] || value;
  const cancel = document.getElementById("cancel-form");
  if (cancel && value !== "running" && value !== "queued") cancel.remove();
}

function line(points, color, dashed) {
  if (points.length < 1) return "";
  const d = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  return `<polyline fill="none" stroke="${color}" stroke-width="2" ${dashed ? 'stroke-dasharray="5 4"' : ""} points="${d}"/>`;
}

function draw() {
  const n = Math.max(epochs.length, 2);
  const x = (i) => 40 + (i * 540) / (n - 1);
  const maxLoss = Math.max(...epochs.map((e) => Math.max(e.train_loss || 0, e.val_loss || 0)), 1e-6);
  const acc = (v) => 230 - v * 210;
  const loss = (v) => 230 - (v / maxLoss) * 210;
  const pick = (key, scale) => epochs.map((e, i) => (e[key] == null ? null : [x(i), scale(e[key])])).filter(Boolean);
  svg.innerHTML =
    `<line x1="40" y1="230" x2="580" y2="230" stroke="#ccc"/><line x1="40" y1="20" x2="40" y2="230" stroke="#ccc"/>` +
    `<text x="4" y="24" font-size="11" fill="#777">100%</text><text x="14" y="234" font-size="11" fill="#777">0</text>` +
    line(pick("train_acc", acc), "#2f5bd3", false) + line(pick("val_acc", acc), "#e6194b", false) +
    line(pick("train_loss", loss), "#2f5bd3", true) + line(pick("val_loss", loss), "#e6194b", true);
}

function note(message) {
  const item = document.createElement("li");
  item.textContent = message;
  log.append(item);
}

function handle(event) {
  if (event.seq <= last) return; // seen already (replay and live overlap)
  last = event.seq;
  const data = event;
  if (event.type === "started") {
    status("running");
    note(fill(words.started, { parameters: data.parameters, device: data.device }));
  } else if (event.type === "batch") {
    text("progress", fill(words.progress, data));
    text("speed", `${Math.round(data.images_per_s)} img/s`);
  } else if (event.type === "epoch") {
    epochs.push(data);
    draw();
    const percent = (v) => (v == null ? "—" : (100 * v).toFixed(1));
    note(fill(words.epoch, { epoch: data.epoch, train: percent(data.train_acc), val: percent(data.val_acc) }));
  } else if (event.type === "finished") {
    status("succeeded");
    if (data.test) text("test-acc", data.test.accuracy.toFixed(4));
    note(words.finished);
  } else if (event.type === "failed") {
    status(data.cancelled ? "cancelled" : "failed");
    note(data.reason);
  } else if (event.type === "log") {
    note(data.message);
  }
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

draw();
connect();
