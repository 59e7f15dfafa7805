// Live class pages (the dashboard, an assignment, the queue): listens on /ws/courses/<id>/ and, when an
// event of a kind named in data-kinds arrives, fires "course-live" on <body>; elements with
// hx-trigger="course-live from:body" then fetch their fresh HTML. At most one refresh a second,
// and the last change always lands (a burst of events ends with one refresh after the burst).
// After a reconnect the page refreshes once, for whatever happened while it was away.

const script = document.querySelector("script[data-course]");
const courseId = script.dataset.course;
const kinds = new Set((script.dataset.kinds || "").split(",").filter(Boolean));
const assignment = script.dataset.assignment ? Number(script.dataset.assignment) : null;
const state = document.getElementById("live-state");
const FORBIDDEN = 4403;
const MIN_INTERVAL_MS = 1000;
let delay = 1000;
let lastRefresh = 0;
let timer = null;
let connectedBefore = false;

function show(ok) {
  if (!state) return;
  state.textContent = ok ? state.dataset.ok : state.dataset.off;
  state.classList.toggle("on", ok);
}

function refreshSoon() {
  if (timer !== null) return; // one refresh is already due: it will read the newest state
  const wait = Math.max(0, lastRefresh + MIN_INTERVAL_MS - Date.now());
  timer = setTimeout(() => {
    timer = null;
    lastRefresh = Date.now();
    document.body.dispatchEvent(new CustomEvent("course-live"));
  }, wait);
}

function wanted(event) {
  if (!kinds.has(event.kind)) return false;
  // An assignment page only cares about its own assignment's news.
  return event.kind !== "assignment" || assignment === null || event.assignment === assignment;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/courses/${courseId}/`);
  socket.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.kind === "hello") {
      delay = 1000;
      show(true);
      if (connectedBefore) refreshSoon();
      connectedBefore = true;
    } else if (event.kind === "access.changed") {
      location.reload(); // the role this page was drawn for is gone (the socket closes 4403)
    } else if (wanted(event)) {
      refreshSoon();
    }
  });
  socket.addEventListener("close", (closing) => {
    show(false);
    if (closing.code === FORBIDDEN) return;
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

connect();
