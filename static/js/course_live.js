// Live class page: listens on /ws/courses/<id>/ and refreshes the roster when people join or leave.
// Reconnects with back-off after a network drop; stops for good when the server says 4403 (forbidden).

const script = document.querySelector("script[data-course]");
const courseId = script.dataset.course;
const state = document.getElementById("live-state");
const FORBIDDEN = 4403;
let delay = 1000;

function show(ok) {
  if (!state) return;
  state.textContent = ok ? state.dataset.ok : state.dataset.off;
  state.classList.toggle("on", ok);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/courses/${courseId}/`);
  socket.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (event.kind === "hello") {
      delay = 1000;
      show(true);
    } else if (event.kind === "roster.changed") {
      document.body.dispatchEvent(new CustomEvent("roster-changed"));
    } else if (event.kind === "access.changed") {
      location.reload(); // the role this page was drawn for is gone (the socket closes 4403)
    } else if (event.kind === "course.changed") {
      const title = document.getElementById("course-name");
      if (title && title.firstChild) title.firstChild.textContent = event.name + " ";
    }
  });
  socket.addEventListener("close", (closing) => {
    show(false);
    if (closing.code === FORBIDDEN) return;
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

document.body.addEventListener("htmx:afterSwap", (swap) => {
  if (swap.detail.target.id !== "roster") return;
  const table = swap.detail.target.querySelector("table[data-active-count]");
  const count = document.getElementById("member-count");
  if (table && count) count.textContent = table.dataset.activeCount;
});

connect();
