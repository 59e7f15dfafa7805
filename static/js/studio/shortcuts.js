/* Every key of the studio in one place: the keydown handler and the `?` sheet read the same
   lists (the studio's own here, each tool's `shortcuts`), so the sheet cannot drift from what
   the keys do. The sheet is a <dialog> (modal: focus moves in, Escape closes, focus returns). */

export const STUDIO_KEYS = [
  { key: "?", words: "key-help" },
  { key: "Ctrl+Z", words: "key-undo" },
  { key: "Ctrl+Shift+Z / Ctrl+Y", words: "key-redo" },
  { key: "1 … 9", words: "key-class" },
  { key: "Tab / Shift+Tab", words: "key-cycle" },
  { key: "Esc", words: "key-deselect" },
  { key: "Delete / Backspace", words: "key-delete" },
  { key: "Enter", words: "key-accept" },
  { key: "d / →", words: "key-next" },
  { key: "a / ←", words: "key-previous" },
  { key: "+ / −", words: "key-zoom" },
  { key: "0", words: "key-fit" },
  { key: "wheel", words: "key-wheel" },
  { key: "Space+drag", words: "key-pan" },
  { key: "pinch", words: "key-touch" },
];

const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);
// Keys that also work a focused button or link: only taken from the canvas or the page itself.
const FOCUS_KEYS = new Set(["Enter", " ", "Tab", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Delete", "Backspace"]);

/** Handle one keydown for the studio; `actions` = {next, previous, help}. */
export function handleKey(studio, event, actions) {
  const target = event.target;
  if (TYPING.has(target.tagName) || target.isContentEditable || target.closest?.("dialog")) return;
  // The canvas, the page itself, and the list of objects (whose buttons have no use for them).
  const onCanvas =
    target === studio.container || target === document.body || studio.container.contains(target) ||
    (Boolean(target.closest?.("[data-studio-keys]")) && !["Enter", " ", "Tab"].includes(event.key));
  if (FOCUS_KEYS.has(event.key) && !onCanvas) return;
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const done = () => event.preventDefault();

  if (key === " ") {
    studio.view.space = true;
    studio.container.classList.add("pan-ready");
    return done();
  }
  if (mod && key === "z") {
    if (event.shiftKey) studio.redo();
    else studio.undo();
    return done();
  }
  if (mod && key === "y") {
    studio.redo();
    return done();
  }
  if (mod || event.altKey) return;
  if (studio.editable && studio.tool?.keydown?.(studio, event)) return done();

  if (key === "?") return done(actions.help());
  if (/^[1-9]$/.test(key)) {
    const category = studio.categories[Number(key) - 1];
    if (category) actions.chooseClass(category.index);
    return done();
  }
  if (key === "Escape") return studio.selected ? done(studio.select(null)) : undefined;
  if (key === "Tab") {
    if (target !== studio.container) return; // elsewhere Tab moves the focus, as always
    const uids = [...studio.annotations.keys()];
    if (!uids.length) return;
    const at = uids.indexOf(studio.selected);
    const next = at + (event.shiftKey ? -1 : 1);
    if (at >= 0 && (next < 0 || next >= uids.length)) return studio.select(null); // focus moves on
    studio.select(uids[at < 0 ? (event.shiftKey ? uids.length - 1 : 0) : next]);
    return done();
  }
  if ((key === "Delete" || key === "Backspace") && studio.selected && studio.editable) {
    studio.remove(studio.selected);
    return done();
  }
  if (key === "Enter" && studio.selected && studio.editable) {
    studio.accept(studio.selected);
    return done();
  }
  if (key === "d" || (key === "ArrowRight" && !studio.selected)) return done(actions.next());
  if (key === "a" || (key === "ArrowLeft" && !studio.selected)) return done(actions.previous());
  if (key === "+" || key === "=") return done(studio.view.zoomKey(1.25));
  if (key === "-" || key === "_") return done(studio.view.zoomKey(1 / 1.25));
  if (key === "0") return done(studio.view.fit());
  const tool = studio.tools.find((t) => t.key === key);
  if (tool && studio.editable) return done(actions.useTool(tool.name));
}

export function handleKeyUp(studio, event) {
  if (event.key === " ") {
    studio.view.space = false;
    studio.container.classList.remove("pan-ready");
  }
}

/** Fill the `?` sheet's dialog with the studio's keys and each tool's, in the page language. */
export function fillSheet(dialog, studio) {
  const body = dialog.querySelector("[data-keys]");
  body.replaceChildren();
  const section = (title, keys) => {
    const table = document.createElement("table");
    table.className = "table keys";
    const caption = table.createCaption();
    caption.textContent = title;
    const head = table.createTHead().insertRow();
    for (const word of ["keys-key", "keys-action"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = studio.words[word];
      head.append(th);
    }
    const rows = table.createTBody();
    for (const { key, words } of keys) {
      const row = rows.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      const kbd = document.createElement("kbd");
      kbd.textContent = studio.words[`keyname-${key}`] === `keyname-${key}` ? key : studio.words[`keyname-${key}`];
      th.append(kbd);
      row.append(th);
      row.insertCell().textContent = studio.words[words];
    }
    body.append(table);
  };
  section(studio.words["keys-studio"], STUDIO_KEYS);
  for (const tool of studio.tools) {
    const keys = tool.shortcuts || [];
    const own = keys.some((k) => k.key === tool.key) ? [] : [{ key: tool.key, words: tool.words }];
    section(studio.words[tool.words], [...own, ...keys]);
  }
}

export function openSheet(dialog, studio) {
  fillSheet(dialog, studio);
  const back = document.activeElement;
  dialog.addEventListener("close", () => back?.focus?.(), { once: true });
  dialog.showModal();
}
