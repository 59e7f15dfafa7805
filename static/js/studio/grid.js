/* The annotation studio's classification grid: pages of thumbnails from the studio API, each
   with its label in the caller's draft and, where a model proposed one, the proposal (dashed,
   with its score). Number keys label the selected images (or the one in focus); a bulk label is
   one undo step and one batch of changes. Labels are saved as draft changes through the shared
   Autosave (kept in localStorage while offline); undo and redo through the shared History.

   Selection follows a file manager: click selects one, Shift+click a range from the anchor,
   Ctrl/Cmd+click toggles one; arrows move the focus (and the selection with it), Shift+arrows
   extend it, Ctrl+arrows move the focus alone, Space toggles the focused image. */

import { Autosave } from "./autosave.js";
import { wireDraftBar } from "./grid_draft.js";
import { History } from "./history.js";

const config = JSON.parse(document.getElementById("grid-config").textContent);
const words = config.words;
const grid = document.getElementById("grid");
const classList = document.getElementById("class-list");
const message = document.getElementById("grid-message");
const range = document.getElementById("grid-range");
const prevButton = document.getElementById("page-prev");
const nextButton = document.getElementById("page-next");
const saveState = document.getElementById("autosave-state");
const csrf = config.csrf;
const HISTORY_KEY = "grid"; // one stack for the whole grid: a bulk label is one entry

let categories = []; // [{index, name}] in index order; the first ten have the number keys
const counts = new Map(Object.entries(config.counts).map(([k, n]) => [Number(k), n]));
let unlabelled = config.unlabelled;
let tiles = []; // this page's images: {uid, id, thumb, category, proposal, el}
let byUid = new Map();
let focus = -1; // index into tiles
let anchor = -1; // where a Shift range starts
const selected = new Set(); // uids
let queue = config.queue;
let offset = 0;
let offsets = []; // the offsets of the pages before this one (Previous)
let total = 0;
let columns = 1;
const history = new History();

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_m, key) => String(values[key] ?? ""));
}

function say(text) {
  if (message) message.textContent = text;
}

function nameOf(index) {
  const category = categories.find((c) => c.index === index);
  return category ? category.name : String(index);
}

// --- the autosave ------------------------------------------------------------------------

const saver = config.editable
  ? new Autosave({
      url: config.api.changes,
      csrfToken: config.csrf,
      storageKey: config.storageKey,
      onState: (next, detail) => {
        if (!saveState) return;
        saveState.dataset.state = next;
        saveState.textContent = words[next] || next;
        saveState.title = detail || "";
      },
      onAnswer: (answer) => {
        if (answer.draft) setChanges(answer.draft.changes);
        const refused = answer.refused || [];
        if (refused.length) say(format(words.failed, { detail: refused[0].detail }));
      },
    })
  : null;

/** Sends what is waiting; true once every change reached the server. */
async function whenSaved() {
  if (!saver || !saver.pending().length) return true;
  return saver.flush();
}

// --- classes -----------------------------------------------------------------------------

function renderClasses() {
  classList.replaceChildren(
    ...categories.map((category, position) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "class-btn";
      button.dataset.index = category.index;
      button.disabled = !config.editable;
      const key = document.createElement("kbd");
      key.textContent = config.keys[position] ?? "";
      key.hidden = position >= config.keys.length;
      const name = document.createElement("span");
      name.className = "class-name";
      name.textContent = category.name;
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = counts.get(category.index) || 0;
      button.append(key, name, count);
      if (position < config.keys.length) button.setAttribute("aria-keyshortcuts", config.keys[position]);
      button.addEventListener("click", () => assign(category.index));
      li.append(button);
      return li;
    }),
  );
  document.getElementById("unlabelled-count").textContent = unlabelled;
}

function count(category, delta) {
  if (category === null || category === undefined) unlabelled += delta;
  else counts.set(category, (counts.get(category) || 0) + delta);
}

async function loadCategories() {
  const response = await fetch(config.api.categories, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(String(response.status));
  categories = (await response.json()).map((c) => ({ index: c.index, name: c.name }));
  renderClasses();
}

// --- tiles -------------------------------------------------------------------------------

function renderTile(tile) {
  const el = tile.el;
  const label = el.querySelector(".g-label");
  label.textContent = tile.category === null ? words.unlabelled : nameOf(tile.category);
  label.classList.toggle("none", tile.category === null);
  const proposal = el.querySelector(".g-proposal");
  const shown = tile.proposal && tile.proposal.category !== undefined;
  proposal.hidden = !shown;
  proposal.textContent = shown
    ? format(words.proposal, {
        name: nameOf(tile.proposal.category),
        score: Number(tile.proposal.score).toFixed(2),
      })
    : "";
  el.classList.toggle("has-proposal", Boolean(shown));
  el.classList.toggle("labelled", tile.category !== null);
  el.setAttribute("aria-selected", selected.has(tile.uid) ? "true" : "false");
}

function makeTile(row, number) {
  const el = document.createElement("li");
  el.className = "g-tile";
  el.id = `tile-${row.uid}`;
  el.setAttribute("role", "option");
  el.dataset.uid = row.uid;
  const img = document.createElement("img");
  img.src = row.thumb;
  img.alt = format(words.image, { n: number });
  img.loading = "lazy";
  img.width = 96;
  img.height = 96;
  img.draggable = false;
  const label = document.createElement("span");
  label.className = "g-label";
  const proposal = document.createElement("span");
  proposal.className = "g-proposal";
  el.append(img, label, proposal);
  const tile = { ...row, el };
  el.addEventListener("click", (event) => onClick(tile, event));
  el.addEventListener("mousedown", (event) => {
    if (event.shiftKey) event.preventDefault(); // no text selection on Shift+click
  });
  renderTile(tile);
  return tile;
}

async function loadPage(at) {
  grid.setAttribute("aria-busy", "true");
  const url = `${config.api.items}?queue=${queue}&offset=${at}&limit=${config.pageSize}`;
  let page;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    page = await response.json();
  } catch {
    say(words.loadFailed);
    grid.setAttribute("aria-busy", "false");
    return;
  }
  offset = page.offset;
  total = page.total;
  tiles = page.items.map((row, i) => makeTile(row, offset + i + 1));
  byUid = new Map(tiles.map((tile) => [tile.uid, tile]));
  selected.clear();
  grid.replaceChildren(...tiles.map((tile) => tile.el));
  if (!tiles.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = words.none;
    grid.append(li);
  }
  range.textContent = tiles.length
    ? format(words.range, { first: offset + 1, last: offset + tiles.length, total })
    : "";
  prevButton.disabled = offsets.length === 0;
  nextButton.disabled = page.next === null;
  document.getElementById("grid-pager").hidden = prevButton.disabled && nextButton.disabled;
  grid.setAttribute("aria-busy", "false");
  setFocus(tiles.length ? 0 : -1, { select: false });
  anchor = focus;
  measureColumns();
}

/** Where the next page starts. In the `unlabelled` and `least_confident` queues an image this
    page labelled (or whose proposal was settled) moved behind the rest, so the next page starts
    after the images of this page that are still in front, not a whole page further. */
function nextOffset() {
  if (queue === "all") return offset + tiles.length;
  const stillFirst = tiles.filter((t) =>
    queue === "unlabelled" ? t.category === null : Boolean(t.proposal),
  ).length;
  return offset + stillFirst;
}

async function goNext() {
  if (nextButton.disabled) return;
  await whenSaved(); // the server's queue must know this page's labels first
  offsets.push(offset);
  await loadPage(nextOffset());
}

async function goPrevious() {
  if (!offsets.length) return;
  await whenSaved();
  await loadPage(offsets.pop());
}

function measureColumns() {
  if (tiles.length < 2) {
    columns = 1;
    return;
  }
  const top = tiles[0].el.offsetTop;
  const next = tiles.findIndex((tile) => tile.el.offsetTop !== top);
  columns = next === -1 ? tiles.length : next;
}

// --- focus and selection -----------------------------------------------------------------

function setFocus(index, { select = true, extend = false } = {}) {
  if (!tiles.length) {
    focus = -1;
    grid.removeAttribute("aria-activedescendant");
    return;
  }
  index = Math.max(0, Math.min(tiles.length - 1, index));
  tiles[focus]?.el.classList.remove("focused");
  focus = index;
  const tile = tiles[focus];
  tile.el.classList.add("focused");
  grid.setAttribute("aria-activedescendant", tile.el.id);
  tile.el.scrollIntoView({ block: "nearest" });
  if (extend) selectRange(anchor, focus, false);
  else if (select) {
    selected.clear();
    selected.add(tile.uid);
    anchor = focus;
  }
  renderSelection();
}

function selectRange(from, to, keep) {
  if (!keep) selected.clear();
  const [low, high] = from <= to ? [from, to] : [to, from];
  for (let i = Math.max(low, 0); i <= high; i++) selected.add(tiles[i].uid);
}

function renderSelection() {
  for (const tile of tiles) {
    tile.el.setAttribute("aria-selected", selected.has(tile.uid) ? "true" : "false");
  }
}

// "Select several": a tap adds or removes one image, as Ctrl+click does (a tablet has no Ctrl).
const multiple = document.getElementById("select-several");
multiple.addEventListener("click", () => {
  multiple.setAttribute("aria-pressed", multiple.getAttribute("aria-pressed") === "true" ? "false" : "true");
});

function onClick(tile, event) {
  const index = tiles.indexOf(tile);
  if (event.shiftKey && anchor >= 0) {
    selectRange(anchor, index, event.ctrlKey || event.metaKey);
    setFocus(index, { select: false });
  } else if (event.ctrlKey || event.metaKey || multiple.getAttribute("aria-pressed") === "true") {
    if (selected.has(tile.uid)) selected.delete(tile.uid);
    else selected.add(tile.uid);
    anchor = index;
    setFocus(index, { select: false });
  } else {
    setFocus(index);
  }
  grid.focus({ preventScroll: true });
}

/** The images a key acts on: the selection, else the one in focus. */
function targets() {
  const chosen = tiles.filter((tile) => selected.has(tile.uid));
  if (chosen.length) return chosen;
  return focus >= 0 ? [tiles[focus]] : [];
}

// --- changes, undo and redo --------------------------------------------------------------

/** What undo gives back: the label. A label change settles the image's proposal in the draft
    (accepted or corrected), so the proposal does not come back with it. */
function stateOf(tile) {
  return { category: tile.category, proposal: null };
}

/** Apply one step: the counts (from the step, so that an undo of an image on another page
    counts too), the tile where it is on this page, and the change queued for the server. */
function show(step, op = "label") {
  count(step.before.category, -1);
  count(step.after.category, +1);
  const tile = byUid.get(step.uid);
  if (tile) {
    tile.category = step.after.category;
    tile.proposal = step.after.proposal;
    renderTile(tile);
  }
  if (op === "accept") saver.push({ op: "accept", item: step.uid, uid: step.uid });
  else saver.push({ op: "label", item: step.uid, category: step.after.category });
}

/** One user action on several images: one undo entry, one batch of changes. */
function change(steps, op) {
  if (!steps.length) return 0;
  for (const step of steps) show(step, op);
  history.push(HISTORY_KEY, steps);
  renderClasses();
  return steps.length;
}

function advanceAfter(chosen) {
  // One image labelled from the keyboard: move on to the next, as a labeller expects.
  if (chosen.length === 1 && focus < tiles.length - 1 && tiles[focus] === chosen[0]) {
    setFocus(focus + 1);
  }
}

function assign(category) {
  if (!config.editable) return;
  const chosen = targets();
  const steps = chosen
    .filter((tile) => tile.category !== category || tile.proposal)
    .map((tile) => ({ uid: tile.uid, before: stateOf(tile), after: { category, proposal: null } }));
  const n = change(steps);
  if (n) say(format(words.assigned, { n, name: nameOf(category) }));
  advanceAfter(chosen);
}

function clearLabels() {
  if (!config.editable) return;
  const chosen = targets();
  const steps = chosen
    .filter((tile) => tile.category !== null || tile.proposal)
    .map((tile) => ({
      uid: tile.uid,
      before: stateOf(tile),
      after: { category: null, proposal: null },
    }));
  const n = change(steps);
  if (n) say(format(words.cleared, { n }));
  advanceAfter(chosen);
}

function accept() {
  if (!config.editable) return;
  const chosen = targets().filter((tile) => tile.proposal && tile.proposal.category !== undefined);
  if (!chosen.length) {
    say(words.nothingToAccept);
    return;
  }
  const steps = chosen.map((tile) => ({
    uid: tile.uid,
    before: stateOf(tile),
    after: { category: tile.proposal.category, proposal: null },
  }));
  change(steps, "accept");
  say(format(words.accepted, { n: steps.length }));
  advanceAfter(chosen);
}

function undo(redo = false) {
  if (!config.editable) return;
  const steps = redo ? history.redo(HISTORY_KEY) : history.undo(HISTORY_KEY);
  if (!steps) return;
  for (const step of steps) show(step);
  renderClasses();
  say(redo ? words.redone : words.undone);
}

// --- adding a class ----------------------------------------------------------------------

async function addClass(name) {
  const response = await fetch(config.api.changes, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    body: JSON.stringify({ changes: [{ op: "category", uid: crypto.randomUUID(), name }] }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || (answer.refused && answer.refused.length)) {
    const detail = answer.detail || answer.refused?.[0]?.detail || String(response.status);
    say(format(words.failed, { detail }));
    return false;
  }
  if (answer.categories) {
    categories = answer.categories.map((c) => ({ index: c.index, name: c.name }));
  }
  if (answer.draft) setChanges(answer.draft.changes);
  renderClasses();
  say(format(words.classAdded, { name }));
  return true;
}

const addForm = document.getElementById("add-class");
addForm?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = addForm.elements.name;
  const name = input.value.trim();
  if (name && (await addClass(name))) input.value = "";
});

// --- the keyboard ------------------------------------------------------------------------

const TEXT_FIELDS = "textarea, select, [contenteditable], input:not([type=radio]):not([type=checkbox])";

function typing(target) {
  return target.closest(TEXT_FIELDS) !== null;
}

document.addEventListener("keydown", (event) => {
  if (document.querySelector("dialog[open]") || typing(event.target)) return;
  const control = event.ctrlKey || event.metaKey;
  // Enter, Space and the arrows keep their meaning on a focused button, link or radio button.
  const onButton = event.target.closest("button, a, input") !== null;
  const key = event.key;
  if (control && key.toLowerCase() === "z") {
    event.preventDefault();
    undo(event.shiftKey);
  } else if (control && key.toLowerCase() === "y") {
    event.preventDefault();
    undo(true);
  } else if (control && key.toLowerCase() === "a") {
    event.preventDefault();
    tiles.forEach((tile) => selected.add(tile.uid));
    renderSelection();
    say(format(words.selected, { n: selected.size }));
  } else if (!control && !event.altKey && config.keys.includes(key)) {
    const category = categories[config.keys.indexOf(key)];
    event.preventDefault();
    if (category) assign(category.index);
    else say(format(words.noClassKey, { key }));
  } else if (key === "?") {
    event.preventDefault();
    openDialog("shortcuts-dialog");
  } else if (key === "x" && !control) {
    event.preventDefault();
    clearLabels();
  } else if (key === "Enter" && !onButton) {
    event.preventDefault();
    accept();
  } else if (key === " " && !onButton) {
    event.preventDefault();
    const tile = tiles[focus];
    if (!tile) return;
    if (selected.has(tile.uid)) selected.delete(tile.uid);
    else selected.add(tile.uid);
    anchor = focus;
    renderSelection();
  } else if (key === "Escape") {
    selected.clear();
    renderSelection();
  } else if (key === "PageDown") {
    event.preventDefault();
    goNext();
  } else if (key === "PageUp") {
    event.preventDefault();
    goPrevious();
  } else {
    const move = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns }[key];
    if (move === undefined || !tiles.length || onButton) return;
    event.preventDefault();
    if (focus < 0) setFocus(0);
    else setFocus(focus + move, { select: !control, extend: event.shiftKey });
    grid.focus({ preventScroll: true });
  }
});

// --- the shortcut sheet and the draft bar ------------------------------------------------

function openDialog(id) {
  const dialog = document.getElementById(id);
  if (dialog && !dialog.open) dialog.showModal();
  return dialog;
}

for (const button of document.querySelectorAll("dialog [data-close]")) {
  button.addEventListener("click", () => button.closest("dialog").close());
}
document.getElementById("shortcuts-open").addEventListener("click", () => openDialog("shortcuts-dialog"));

const draftBar = wireDraftBar({
  config,
  words,
  whenSaved,
  say,
  nameOf,
  onCommitted: () => history.clear(),
  reload: () => reload(),
});
const setChanges = draftBar.setChanges;

// --- queues and pages --------------------------------------------------------------------

for (const radio of document.querySelectorAll("input[name=queue]")) {
  radio.addEventListener("change", async () => {
    queue = radio.value;
    const url = new URL(window.location.href);
    url.searchParams.set("queue", queue);
    window.history.replaceState(null, "", url);
    await whenSaved();
    offsets = [];
    await loadPage(0);
  });
}
prevButton.addEventListener("click", goPrevious);
nextButton.addEventListener("click", goNext);
window.addEventListener("resize", measureColumns);

/** Read everything again (the pre-annotation panel calls this when a round is done or its
    proposals were settled): the class counts from this page's own config, the classes, and the
    page of images being looked at. */
async function reload() {
  await whenSaved();
  history.clear(); // what undo would give back is no longer what the server holds
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
  if (response.ok) {
    const html = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = JSON.parse(html.getElementById("grid-config")?.textContent || "null");
    if (fresh) {
      counts.clear();
      for (const [index, n] of Object.entries(fresh.counts)) counts.set(Number(index), n);
      unlabelled = fresh.unlabelled;
      setChanges(fresh.changes);
    }
  }
  await loadCategories().catch(() => say(words.loadFailed));
  await loadPage(offset);
}
window.manabiGrid = { reload };

setChanges(config.changes);
try {
  await loadCategories();
} catch {
  say(words.loadFailed);
}
await loadPage(0);
grid.dataset.ready = "true";
