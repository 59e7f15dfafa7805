/* "Pre-annotate with a model" (templates/studio/_assist.html), on the grid and the canvas page.

   Start a round (POST /assist: the answer comes at once, a worker does the work), poll its
   progress (GET /assist/{round}) until it is done, then have the page read its images again:
   the canvas page's `window.manabiStudio.reload()` or the grid's `window.manabiGrid.reload()`
   where the page offers one, else a reload of the page. "Accept all above" and "Reject the
   rest" settle the draft's proposals by score on the server and reload the same way. */

const config = JSON.parse(document.getElementById("assist-config").textContent);
const words = config.words;
const form = document.getElementById("assist-form");
const startButton = document.getElementById("assist-start");
const progress = document.getElementById("assist-progress");
const bar = document.getElementById("assist-bar");
const status = document.getElementById("assist-status");
const waitingLine = document.getElementById("assist-waiting");
const threshold = document.getElementById("assist-threshold");
const acceptButton = document.getElementById("assist-accept");
const rejectButton = document.getElementById("assist-reject");
const message = document.getElementById("assist-message");
const POLL_MS = [500, 1000, 1000, 2000]; // then every 2 s
const OPEN = new Set(["queued", "running"]);
const SAID = "manabi-assist-message"; // what the panel said before it reloaded the page

function format(text, values) {
  return text.replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

async function call(method, path, body) {
  const response = await fetch(config.api + path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const field = Object.values(answer.errors || {})[0];
    throw new Error(field && field !== answer.detail ? `${answer.detail} ${field}` : answer.detail || response.statusText);
  }
  return answer;
}

function say(text) {
  message.textContent = text;
}

function showWaiting(n) {
  config.waiting = n;
  waitingLine.textContent = format(words.waiting, { n });
  acceptButton.disabled = rejectButton.disabled = n === 0;
}

function showRound(round) {
  progress.hidden = false;
  bar.max = Math.max(round.total, 1);
  bar.value = round.done;
  status.dataset.state = round.status;
  const text = {
    queued: words.queued,
    running: words.running,
    done: words.done,
    failed: words.failed,
  }[round.status];
  status.textContent = format(text, round);
  if (startButton) startButton.disabled = OPEN.has(round.status);
}

/** Have the page read its images and annotations again, by its own hook where it has one;
    else reload it, keeping the message to say once it is back. */
async function reloadPage() {
  for (const page of [window.manabiStudio, window.manabiGrid]) {
    if (typeof page?.reload === "function") return page.reload();
  }
  sessionStorage.setItem(SAID, message.textContent);
  window.location.reload();
}

async function follow(round) {
  showRound(round);
  let tries = 0;
  while (OPEN.has(round.status)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS[Math.min(tries++, POLL_MS.length - 1)]));
    try {
      round = await call("GET", `/assist/${round.id}`);
    } catch {
      status.textContent = words.offline; // keep polling: the worker goes on without the page
      continue;
    }
    showRound(round);
  }
  if (round.status === "done" && round.proposed > 0) {
    showWaiting(config.waiting + round.proposed);
    await reloadPage();
  }
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const limit = Number(form.elements.limit.value);
  say("");
  startButton.disabled = true;
  try {
    const round = await call("POST", "/assist", { job: Number(form.elements.job.value), limit });
    await follow(round);
  } catch (error) {
    say(format(words.refused, { detail: error.message }));
    startButton.disabled = false;
  }
});

async function settle(path, body, key) {
  say("");
  acceptButton.disabled = rejectButton.disabled = true;
  try {
    const answer = await call("POST", path, body);
    showWaiting(answer.proposals);
    say(format(words[key], { n: answer[key] }));
    if (answer[key] > 0) await reloadPage();
  } catch (error) {
    say(format(words.refused, { detail: error.message }));
    showWaiting(config.waiting);
  }
}

function thresholdValue() {
  const value = Number(threshold.value);
  if (!threshold.checkValidity() || Number.isNaN(value)) {
    threshold.reportValidity();
    return null;
  }
  return value;
}

acceptButton.addEventListener("click", () => {
  const value = thresholdValue();
  if (value !== null) settle("/draft/accept", { threshold: value }, "accepted");
});
rejectButton.addEventListener("click", () => {
  const value = thresholdValue();
  if (value !== null) settle("/draft/reject", { below: value }, "rejected");
});

showWaiting(config.waiting);
say(sessionStorage.getItem(SAID) || "");
sessionStorage.removeItem(SAID);
if (config.round) {
  // A round still running when the page opened is followed; a finished one is only shown
  // (the page already reads what it wrote).
  if (OPEN.has(config.round.status)) follow(config.round);
  else showRound(config.round);
}
