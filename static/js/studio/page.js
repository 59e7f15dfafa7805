/* The canvas page's bootstrap: reads the page's config (json_script "studio-config"), makes
   the Studio, registers the tools of the dataset's kind, wires the autosave, the side panel,
   the toolbar, the keys, the queue (next / previous, prefetched) and the draft bar. */

import { Autosave } from "./autosave.js";
import { Panel } from "./panel.js";
import { Queue } from "./queue.js";
import { handleKey, handleKeyUp, openSheet } from "./shortcuts.js";
import { Studio } from "./studio.js";
import { wireDraft } from "./draftbar.js";
import box from "./tools/box.js";
import brush from "./tools/brush.js";
import keypoints from "./tools/keypoints.js";
import polygon from "./tools/polygon.js";

// The tools of each kind, in the toolbar's order (the first is active at the start).
const KIND_TOOLS = {
  classification: [],
  detection: [box],
  segmentation: [polygon, brush, box],
  keypoints: [keypoints, box],
};

const config = JSON.parse(document.getElementById("studio-config").textContent);
const words = config.words;

function overlayPending(annotations, pending, item) {
  const byUid = new Map(annotations.map((a) => [a.uid, a]));
  for (const change of pending) {
    if (change.item !== item) continue;
    const current = byUid.get(change.uid);
    if (change.op === "delete") byUid.delete(change.uid);
    else if (change.op === "create" || change.op === "update") {
      byUid.set(change.uid, {
        uid: change.uid,
        item,
        revision: change.revision ?? current?.revision ?? 0,
        area: current?.area ?? 0,
        proposal: null,
        ...change.data,
      });
    } else if (change.op === "accept" && current) byUid.set(change.uid, { ...current, proposal: null });
  }
  return [...byUid.values()];
}

async function boot() {
  const container = document.getElementById("studio-canvas");
  const status = document.getElementById("studio-message");
  const say = (text) => {
    status.textContent = text;
  };
  let panel = null;
  const saver = config.editable
    ? new Autosave({
        url: config.urls.changes,
        csrfToken: config.csrf,
        storageKey: config.storage_key,
        onState: (state, detail) => panel?.saveState(state, detail),
        onAnswer: (answer) => onAnswer(answer),
      })
    : null;
  const studio = new Studio({ container, words, categories: config.categories, editable: config.editable, saver });
  window.manabiStudio = studio;

  (KIND_TOOLS[config.kind] || [box]).forEach((tool) => studio.register(tool));

  const toolButtons = document.querySelectorAll("[data-tool]");
  toolButtons.forEach((button) => {
    if (!studio.tools.some((t) => t.name === button.dataset.tool)) button.hidden = true;
    button.addEventListener("click", () => useTool(button.dataset.tool));
  });
  const hint = document.getElementById("studio-canvas-help");
  function useTool(name) {
    studio.use(name);
    toolButtons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === name)));
    if (hint && studio.editable && config.words[`help-${name}`]) {
      hint.textContent = config.words[`help-${name}`]; // what this tool does, not the box's
    }
  }

  function chooseClass(index) {
    studio.category = index;
    panel.currentClass();
    if (studio.selected && studio.editable) studio.update(studio.selected, { category: index });
  }

  async function addClass(name) {
    const response = await fetch(config.urls.changes, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf },
      body: JSON.stringify({ changes: [{ op: "category", uid: crypto.randomUUID?.() || String(Date.now()), name }] }),
    }).catch(() => null);
    const answer = response?.ok ? await response.json() : null;
    if (!answer?.categories) {
      say(words["class-not-added"]);
      return false;
    }
    const known = new Set(studio.categories.map((c) => c.index));
    studio.categories = answer.categories;
    panel.renderClasses();
    const added = answer.categories.find((c) => !known.has(c.index));
    if (added) chooseClass(added.index);
    say(words["class-added"].replace("%(name)s", name));
    return true;
  }

  async function resolve(conflict, keep, li) {
    const response = await fetch(config.urls.resolve, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf },
      body: JSON.stringify({ uid: conflict.uid, keep }),
    }).catch(() => null);
    if (!response?.ok) return say(words["resolve-failed"]);
    if (conflict.item === studio.item?.uid) {
      if (keep === "theirs") studio.replace(conflict.uid, conflict.theirs);
      else {
        // Mine now stands on their revision (or, where they deleted it, comes back as new).
        const mine = studio.annotations.get(conflict.uid);
        if (mine) studio.replace(conflict.uid, { ...mine, revision: conflict.theirs?.revision ?? 0 });
      }
    }
    queue.forget(conflict.item);
    panel.resolved(li);
    saver?.resolved(panel.conflictCount());
    say(words[keep === "mine" ? "kept-mine" : "took-theirs"]);
  }

  panel = new Panel(studio, document.getElementById("studio-side"), {
    onChooseClass: chooseClass,
    onAddClass: addClass,
    onResolve: resolve,
  });
  panel.renderClasses();
  panel.saveState(saver ? (saver.pending().length ? "saving" : "saved") : "readonly");
  const selection = document.getElementById("studio-selection");
  studio.on("select", (uid) => {
    const annotation = uid && studio.annotations.get(uid);
    if (annotation) {
      studio.category = annotation.category;
      panel.currentClass();
    }
    selection.textContent = annotation ? panel.describe(annotation) : ""; // for screen readers
  });

  // After a commit, a discard or a model's proposals, every image read ahead is out of date
  // (revisions, proposals): read them again.
  const reload = () => {
    queue.forget();
    return show(studio.item.uid, { fresh: true });
  };
  const draft = wireDraft({ config, studio, saver, say, reload });

  function onAnswer(answer) {
    if (answer.refused?.length) {
      say(answer.refused.map((r) => `${words["refused"]}: ${r.field ? `${r.field}: ` : ""}${r.detail || ""}`).join(" "));
    }
    if (answer.conflicts?.length) panel.addConflicts(answer.conflicts);
    if (answer.categories) {
      studio.categories = answer.categories;
      panel.renderClasses();
    }
    if (answer.draft) draft.count(answer.draft.changes);
  }

  // --- the queue: the current image, next / previous -----------------------------------
  const queue = new Queue({ itemsUrl: config.urls.items, itemUrl: config.urls.item, queue: config.queue });
  const position = document.getElementById("studio-position");
  const title = document.getElementById("studio-item-name");
  let current = null; // {payload, image}

  function showPayload({ payload, image }) {
    if (current && studio.item) {
      const annotations = [...studio.annotations.values()];
      queue.remember(studio.item.uid, { ...current.payload, annotations }, current.image);
    }
    current = { payload, image };
    const pending = saver ? saver.pending() : [];
    const annotations = overlayPending(payload.annotations, pending, payload.item.uid);
    studio.load(payload.item, image, annotations, { editable: Boolean(config.editable && payload.editable) });
    if (studio.editable && !studio.tool && studio.tools.length) useTool(studio.tools[0].name);
    title.textContent = payload.item.path;
    document.title = `${payload.item.path} · ${config.dataset_name}`;
    panel.showOthers(payload.others_editing || []);
    if (payload.conflicts?.length) panel.addConflicts(payload.conflicts);
    document.getElementById("studio-readonly").hidden = studio.editable || !config.editable;
    updatePosition();
  }

  function updatePosition() {
    position.textContent = queue.index >= 0 ? `${queue.index + 1} / ${queue.total}` : "";
    document.getElementById("studio-previous").disabled = queue.index <= 0;
    document.getElementById("studio-next").disabled = queue.index < 0 || queue.index >= queue.total - 1;
  }

  async function show(uid, { fresh = false, push = false } = {}) {
    if (fresh) queue.forget(uid);
    try {
      const entry = await queue.load(uid);
      if (fresh) current = null; // the server's view replaces what the page held
      showPayload(entry);
    } catch {
      return say(words["load-failed"]);
    }
    if (push) history.pushState({ uid }, "", `${config.urls.page}${uid}/`);
    queue.prefetch();
  }

  async function go(step) {
    if (queue.index < 0) return;
    const uid = await queue.uidAt(queue.index + step);
    if (!uid) return say(words[step > 0 ? "queue-end" : "queue-start"]);
    queue.index += step;
    await show(uid, { push: true });
  }

  window.addEventListener("popstate", async (event) => {
    const uid = event.state?.uid;
    if (!uid) return;
    queue.index = queue.uids.indexOf(uid);
    await show(uid);
  });

  document.getElementById("studio-next").addEventListener("click", () => go(1));
  document.getElementById("studio-previous").addEventListener("click", () => go(-1));
  document.getElementById("studio-undo").addEventListener("click", () => studio.undo());
  document.getElementById("studio-redo").addEventListener("click", () => studio.redo());
  document.getElementById("studio-zoom-in").addEventListener("click", () => studio.view.zoomKey(1.25));
  document.getElementById("studio-zoom-out").addEventListener("click", () => studio.view.zoomKey(1 / 1.25));
  document.getElementById("studio-fit").addEventListener("click", () => studio.view.fit());
  const sheet = document.getElementById("studio-keys");
  const help = () => openSheet(sheet, studio);
  document.getElementById("studio-help").addEventListener("click", help);
  sheet.querySelector("[data-close]").addEventListener("click", () => sheet.close());
  const undoButtons = () => {
    const item = studio.item?.uid;
    document.getElementById("studio-undo").disabled = !item || !studio.history.canUndo(item);
    document.getElementById("studio-redo").disabled = !item || !studio.history.canRedo(item);
  };
  studio.on("history", undoButtons);
  studio.on("load", undoButtons);

  const actions = { next: () => go(1), previous: () => go(-1), help, chooseClass, useTool };
  document.addEventListener("keydown", (event) => handleKey(studio, event, actions));
  document.addEventListener("keyup", (event) => handleKeyUp(studio, event));

  if (saver?.pending().length) await Promise.race([saver.flush(), new Promise((r) => setTimeout(r, 1500))]);
  studio.reload = reload;
  history.replaceState({ uid: config.item }, "", location.href);
  await show(config.item);
  queue.locate(config.item, config.position).then(() => {
    updatePosition();
    queue.prefetch();
  });
  container.dataset.ready = "true";
}

boot();
