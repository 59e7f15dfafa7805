/* The annotation studio's canvas: one Konva stage (window.Konva, loaded by a classic script
   before this module) with three layers, the image, the annotations, and the tools' overlay.

   The document is `studio.annotations` (uid → annotation in the API's JSON shape). Every
   change goes through add / update / remove / accept (or several inside batch): one undo step,
   one delta for the autosave, and only that annotation's Konva group drawn again.

   Tools (static/js/studio/tools/<name>.js) export the object of /tmp/seam/contract.md:
   {name, key, words, draws, render, activate, deactivate, pointerdown, pointermove, pointerup,
   keydown, shortcuts}. Optional extras a tool may add: `hit(studio, annotation, point)` (is the
   point on it; default: inside its bbox), `cancel(studio)` (a gesture interrupted by a second
   finger), `pointerleave(studio)`, `cursor` (CSS cursor over the canvas), and
   `paint(context2d, studio, annotations)`: draw many plain annotations at once in image
   pixels (the stage's transform is set; divide widths by studio.scale). Konva costs some
   microseconds per node, so 2,000 boxes as 2,000 nodes take 15–40 ms a frame; painted as one
   shape they take about 1 ms. A painting tool's `render` is still used for the selected
   annotation, the one being dragged, and proposals.
   Helpers for tools beyond the contract: `studio.fixedSize(node)` keeps a node's size in screen
   pixels whatever the zoom (handles, labels, points); `studio.preview(uid, fields|null)` draws
   an annotation with fields not yet committed (while dragging), `studio.hit(point)`,
   `studio.on(event, fn)` (events: change, select, view, load, tool) returning an unsubscribe.

   The shapes layer does not listen (no hit canvas: a redraw of 2,000 boxes paints once); the
   studio finds what is under the pointer itself (`hit`). The overlay layer listens, for tools
   that want Konva events on their own handles. */

import { History } from "./history.js";
import { View } from "./view.js";

const Konva = window.Konva;
export const PALETTE = [
  "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
  "#bfef45", "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9",
];
const FIELDS = ["category", "bbox", "segmentation", "keypoints", "iscrowd"];
const EDGE = 4; // screen px: how near a box's edge still counts as on it

/** A random UUID, also where crypto.randomUUID is missing (plain http on a school LAN). */
export function newUid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class Studio {
  constructor({ container, words = {}, categories = [], editable = false, saver = null }) {
    this.container = container;
    this.words = new Proxy(words, { get: (w, key) => (key in w ? w[key] : String(key)) });
    this.categories = categories;
    this.category = categories.length ? categories[0].index : 0;
    this.editable = editable;
    this.saver = saver; // {push(change)}: the autosave, or null when read-only
    this.tools = []; // registry order: the first whose draws() says yes renders an annotation
    this.tool = null;
    this.item = null;
    this.image = { width: 0, height: 0 };
    this.annotations = new Map();
    this.selected = null;
    this.history = new History();
    this._groups = new Map(); // uid → Konva.Group on the shapes layer
    this._painted = new Map(); // tool → uids it paints in bulk (tools with `paint`)
    this._fixed = new Map(); // uid → nodes kept at screen size; "" for the overlay's
    this._fixedNow = null;
    this._previews = new Map(); // uid → annotation drawn instead, while a gesture lasts
    this._listeners = new Map();
    this._batch = null;

    this.stage = new Konva.Stage({
      container,
      width: Math.max(1, container.clientWidth),
      height: Math.max(1, container.clientHeight),
    });
    this.imageLayer = new Konva.Layer({ listening: false });
    this.layer = new Konva.Layer({ listening: false });
    this.overlay = new Konva.Layer();
    this.stage.add(this.imageLayer, this.layer, this.overlay);
    this.view = new View(this);
    this._followGestures();
    this._bindPointers();
    new ResizeObserver(() => this._resize()).observe(container);
  }

  // --- events ------------------------------------------------------------------------------

  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event).delete(fn);
  }

  emit(event, ...args) {
    for (const fn of this._listeners.get(event) || []) fn(...args);
  }

  // --- tools -------------------------------------------------------------------------------

  register(tool) {
    this.tools.push(tool);
  }

  use(name) {
    const tool = this.tools.find((t) => t.name === name);
    if (!tool || tool === this.tool) return;
    this.tool?.deactivate?.(this);
    this.tool = tool;
    this.container.style.cursor = tool.cursor || "default";
    if (this.editable) tool.activate?.(this);
    this.emit("tool", tool.name);
    this.overlay.batchDraw();
  }

  toolFor(annotation) {
    return this.tools.find((t) => t.draws(annotation)) || null;
  }

  // --- the image and its annotations -------------------------------------------------------

  /** Show an image (a decoded ImageBitmap or HTMLImageElement) and its annotations; fit it. */
  load(item, imageElement, annotations, { editable = this.editable } = {}) {
    this.tool?.deactivate?.(this);
    this.item = item;
    this.image = {
      width: item.width || imageElement.naturalWidth || imageElement.width,
      height: item.height || imageElement.naturalHeight || imageElement.height,
    };
    this.editable = editable;
    this.imageLayer.destroyChildren();
    this.imageLayer.add(
      new Konva.Image({ image: imageElement, width: this.image.width, height: this.image.height, listening: false }),
    );
    this.annotations = new Map(annotations.map((a) => [a.uid, a]));
    this.selected = null;
    this._previews.clear();
    this.redraw();
    this.view.fit();
    if (this.tool && this.editable) this.tool.activate?.(this);
    this.emit("load", item);
  }

  get scale() {
    return this.view.scale;
  }

  color(category) {
    return PALETTE[((category % PALETTE.length) + PALETTE.length) % PALETTE.length];
  }

  categoryName(index) {
    return this.categories.find((c) => c.index === index)?.name ?? `#${index}`;
  }

  /** Add an annotation (fields of the API's shape) to the image; returns its new uid. */
  add(fields) {
    const uid = fields.uid || newUid();
    const annotation = {
      uid,
      item: this.item.uid,
      revision: 0,
      category: this.category,
      bbox: null,
      segmentation: null,
      keypoints: null,
      iscrowd: false,
      area: 0,
      proposal: null,
      ...fields,
    };
    annotation.uid = uid;
    this._apply([{ uid, before: null, after: annotation }]);
    return uid;
  }

  update(uid, fields, { merge = null } = {}) {
    const before = this.annotations.get(uid);
    if (!before) return;
    const after = { ...before, ...fields, uid, item: before.item, revision: before.revision };
    if (before.proposal && !("proposal" in fields)) after.proposal = null; // corrected: accepted
    if (same(before, after)) {
      if (this._previews.has(uid)) this.preview(uid, null);
      return;
    }
    this._apply([{ uid, before, after }], merge);
  }

  /** Delete an annotation; for a proposal, reject it. */
  remove(uid) {
    const before = this.annotations.get(uid);
    if (!before) return;
    if (this.selected === uid) this.select(null);
    // The server keeps no rejected or accepted proposal to restore, so neither is an undo step.
    this._apply([{ uid, before, after: null }], null, !before.proposal);
  }

  /** A proposal becomes a plain annotation (the model's suggestion accepted as it is). */
  accept(uid) {
    const before = this.annotations.get(uid);
    if (!before || !before.proposal) return;
    this._apply([{ uid, before, after: { ...before, proposal: null } }], null, false);
  }

  /** Several changes as one undo step (their deltas still go one by one). */
  batch(fn) {
    if (this._batch) return fn();
    this._batch = [];
    try {
      fn();
    } finally {
      const steps = this._batch;
      this._batch = null;
      if (steps.length) this.history.push(this.item.uid, steps);
    }
  }

  select(uid) {
    if (uid !== null && !this.annotations.has(uid)) uid = null;
    if (uid === this.selected) return;
    const previous = this.selected;
    this.selected = uid;
    if (previous) this._render(previous);
    if (uid) this._render(uid);
    this.layer.batchDraw();
    this.emit("select", uid, previous);
  }

  /** Draw an annotation with some fields changed, without committing them (null: stop). */
  preview(uid, fields) {
    // While a shape is dragged its group lives on the overlay layer: each move redraws that
    // one shape, not the layer of every other (2,000 boxes: 88 → 30 ms a move, measured by
    // benchmarks/studio_bench.py). The shapes layer is drawn once when the drag starts (the
    // shape leaves its bulk painting) and once when it ends.
    const annotation = this.annotations.get(uid);
    if (!annotation) return;
    const started = fields && !this._previews.has(uid);
    if (fields) this._previews.set(uid, { ...annotation, ...fields });
    else this._previews.delete(uid);
    this._render(uid);
    const group = this._groups.get(uid);
    if (fields && group) {
      group.moveTo(this.overlay);
      if (started) this.layer.batchDraw();
    } else {
      if (group) group.moveTo(this.layer);
      this.layer.batchDraw();
    }
    this.overlay.batchDraw();
    this.emit("preview", uid);
  }

  shown(uid) {
    return this._previews.get(uid) || this.annotations.get(uid) || null;
  }

  undo() {
    const steps = this.item && this.history.undo(this.item.uid);
    if (steps) this._apply(steps, null, false);
    return Boolean(steps);
  }

  redo() {
    const steps = this.item && this.history.redo(this.item.uid);
    if (steps) this._apply(steps, null, false);
    return Boolean(steps);
  }

  /** Set annotations from outside (the server's answer to a conflict): no undo, no delta. */
  replace(uid, annotation) {
    if (annotation) this.annotations.set(uid, annotation);
    else this.annotations.delete(uid);
    if (!annotation && this.selected === uid) this.select(null);
    this._render(uid);
    this.layer.batchDraw();
    this.emit("change", uid, null, annotation);
  }

  _apply(steps, merge = null, record = true) {
    const selected = this.selected;
    for (const step of steps) {
      const current = this.annotations.get(step.uid) || null;
      let after = step.after;
      // The revision is the server's: undo and redo keep the one last seen. A proposal once
      // accepted (or corrected) stays accepted: undo brings back its shape, not its doubt.
      if (after && current) after = { ...after, revision: current.revision };
      if (after?.proposal && current && !current.proposal) after = { ...after, proposal: null };
      if (after) this.annotations.set(step.uid, after);
      else this.annotations.delete(step.uid);
      if (!after && this.selected === step.uid) this.selected = null;
      this._previews.delete(step.uid);
      const delta = this._delta(current, after, step.uid);
      if (delta && this.saver) this.saver.push(delta);
      this._render(step.uid);
      this.emit("change", step.uid, current, after);
    }
    if (record) {
      if (this._batch) this._batch.push(...steps);
      else this.history.push(this.item.uid, steps, merge);
    }
    this.layer.batchDraw();
    if (selected !== this.selected) this.emit("select", this.selected, selected);
    this.emit("history");
  }

  _delta(before, after, uid) {
    const item = (after || before).item;
    const data = (a) => Object.fromEntries(FIELDS.map((f) => [f, a[f] ?? (f === "iscrowd" ? false : null)]));
    if (!after) return { op: "delete", item, uid, revision: before.revision };
    if (!before) {
      // Undoing the delete of a committed annotation brings its row back as an update.
      return after.revision > 0
        ? { op: "update", item, uid, revision: after.revision, data: data(after) }
        : { op: "create", item, uid, data: data(after) };
    }
    const sameData = same(data(before), data(after));
    if (before.proposal && !after.proposal && sameData) return { op: "accept", item, uid };
    if (sameData) return null;
    return { op: "update", item, uid, revision: before.revision, data: data(after) };
  }

  // --- drawing -----------------------------------------------------------------------------

  /** Draw one annotation again, or all of them (no uid). */
  redraw(uid) {
    if (uid === undefined) {
      this.layer.destroyChildren();
      for (const group of this._groups.values()) group.destroy(); // one dragged on the overlay
      this._groups.clear();
      this._painted.clear();
      for (const key of [...this._fixed.keys()]) if (key !== "") this._fixed.delete(key);
      for (const id of this.annotations.keys()) this._render(id);
    } else {
      this._render(uid);
    }
    this.layer.batchDraw();
  }

  /** Keep a node the same size on screen at any zoom (its scale follows 1 / studio.scale). */
  fixedSize(node) {
    const s = 1 / this.scale;
    node.scale({ x: s, y: s });
    const key = this._fixedNow ?? "";
    if (!this._fixed.has(key)) this._fixed.set(key, []);
    this._fixed.get(key).push(node);
    return node;
  }

  _render(uid) {
    const annotation = this.shown(uid);
    const tool = annotation && this.toolFor(annotation);
    for (const painted of this._painted.values()) painted.delete(uid);
    let group = this._groups.get(uid);
    // Plain annotations of a tool that paints in bulk join its one shape; the selected one,
    // one being dragged and proposals get a group of their own (emphasis, dashes, score).
    const bulk = tool?.paint && !annotation.proposal && uid !== this.selected && !this._previews.has(uid);
    if (!annotation || bulk) {
      group?.destroy();
      this._groups.delete(uid);
      this._fixed.delete(uid);
      if (bulk) this._paintedBy(tool).add(uid);
      return;
    }
    if (group) {
      group.destroyChildren();
      if (!this._previews.has(uid) && group.getParent() !== this.layer) group.moveTo(this.layer);
    } else {
      group = new Konva.Group({ listening: false });
      this.layer.add(group);
      this._groups.set(uid, group);
    }
    this._fixed.delete(uid);
    this._fixedNow = uid;
    try {
      if (tool) tool.render(this, annotation, group);
      else if (annotation.bbox) this._plainBox(annotation, group);
      if (annotation.proposal) this._markProposal(annotation, group);
    } finally {
      this._fixedNow = null;
    }
  }

  /** The uids a tool paints in bulk, drawn by one Konva shape at the bottom of the layer. */
  _paintedBy(tool) {
    let painted = this._painted.get(tool);
    if (!painted) {
      painted = new Set();
      this._painted.set(tool, painted);
      const shape = new Konva.Shape({
        listening: false,
        perfectDrawEnabled: false,
        sceneFunc: (context) => {
          const annotations = [];
          for (const uid of painted) annotations.push(this.annotations.get(uid));
          tool.paint(context._context, this, annotations);
        },
      });
      this.layer.add(shape);
      shape.moveToBottom();
    }
    return painted;
  }

  /** The part of the image in view, in image pixels: {x, y, right, bottom}. */
  visibleRect() {
    const s = this.scale;
    const x = -this.stage.x() / s;
    const y = -this.stage.y() / s;
    return { x, y, right: x + this.stage.width() / s, bottom: y + this.stage.height() / s };
  }

  /** An annotation no loaded tool draws (a polygon in a detection dataset): its box. */
  _plainBox(annotation, group) {
    const [x, y, width, height] = annotation.bbox;
    group.add(
      new Konva.Rect({
        x, y, width, height,
        stroke: this.color(annotation.category),
        strokeWidth: 1,
        strokeScaleEnabled: false,
        listening: false,
        perfectDrawEnabled: false,
      }),
    );
  }

  /** Proposals: every stroke dashed, and the model's score at the top left. */
  _markProposal(annotation, group) {
    const walk = (node) => {
      if (node.getChildren) node.getChildren().forEach(walk);
      else if (node.stroke && node.stroke()) node.dash([6, 4]);
    };
    walk(group);
    const [x, y] = annotation.bbox || annotation.keypoints || [0, 0];
    const label = new Konva.Label({ x, y, listening: false });
    label.add(new Konva.Tag({ fill: this.color(annotation.category), cornerRadius: 2 }));
    label.add(
      new Konva.Text({
        text: `${this.words["proposal-short"]} ${Number(annotation.proposal.score ?? 0).toFixed(2)}`,
        fontSize: 12,
        padding: 2,
        fill: "#fff",
      }),
    );
    label.offsetY(18);
    group.add(this.fixedSize(label));
  }

  _viewChanged() {
    const s = 1 / this.scale;
    for (const [key, nodes] of this._fixed) {
      const alive = key === "" ? nodes.filter((n) => n.getStage()) : nodes;
      if (key === "") this._fixed.set(key, alive);
      for (const node of alive) node.scale({ x: s, y: s });
    }
    // Pixels stay sharp squares when zoomed in far enough to label them one by one.
    this.imageLayer.imageSmoothingEnabled(this.scale < 3);
    this.emit("view", this.scale);
    if (this.view.inGesture()) this._moveDrawn();
    else this.stage.batchDraw();
  }

  /** While a pan, pinch or wheel zoom lasts, the image and shapes layers are not drawn again
      at each step: their canvases, as last drawn, are moved and scaled by a CSS transform (the
      compositor's work), and drawn afresh 150 ms after the gesture stops. Redrawing 2,000 boxes
      or 300 polygons at every step took 43–80 ms a frame in software drawing; this keeps
      frames under 16 ms (benchmarks/studio_bench.py). The overlay (handles, crosshair) is
      drawn each step: it is small. */
  _followGestures() {
    this._drawn = [this.imageLayer, this.layer].map((layer) => {
      const canvas = layer.getCanvas()._canvas;
      canvas.style.transformOrigin = "0 0";
      const entry = { canvas, at: null };
      layer.on("draw", () => {
        entry.at = { scale: this.stage.scaleX(), x: this.stage.x(), y: this.stage.y() };
        canvas.style.transform = ""; // drawn for the view as it is now
      });
      return entry;
    });
    this._settleTimer = null;
    // Konva draws the whole stage by itself when the stage's scale or position changes (its
    // auto-draw): during a gesture that draw becomes the transform too.
    this._drawAll = this.stage.batchDraw.bind(this.stage);
    this.stage.batchDraw = () => {
      if (this.view?.inGesture()) this._moveDrawn();
      else this._drawAll();
      return this.stage;
    };
  }

  _moveDrawn() {
    const scale = this.stage.scaleX();
    for (const { canvas, at } of this._drawn) {
      if (!at) continue;
      const k = scale / at.scale;
      const dx = this.stage.x() - at.x * k;
      const dy = this.stage.y() - at.y * k;
      canvas.style.transform = `translate(${dx}px, ${dy}px) scale(${k})`;
    }
    this.overlay.batchDraw();
    clearTimeout(this._settleTimer);
    this._settleTimer = setTimeout(() => {
      this._settleTimer = null;
      this._drawAll(); // each layer's draw clears its transform
    }, 150);
  }

  _resize() {
    const w = Math.max(1, this.container.clientWidth);
    const h = Math.max(1, this.container.clientHeight);
    if (w === this.stage.width() && h === this.stage.height()) return;
    const fitted = !this._everResized;
    this._everResized = true;
    this.stage.size({ width: w, height: h });
    if (fitted || !this.item) this.view.fit();
    else this.stage.batchDraw();
  }

  // --- what is under the pointer -----------------------------------------------------------

  /** The uid of the annotation at an image point: the smallest one there, or null. */
  hit(point) {
    const tolerance = EDGE / this.scale;
    let best = null;
    let bestArea = Infinity;
    for (const annotation of this.annotations.values()) {
      const tool = this.toolFor(annotation);
      let inside;
      if (tool?.hit) inside = tool.hit(this, annotation, point);
      else if (annotation.bbox) {
        const [x, y, w, h] = annotation.bbox;
        inside =
          point.x >= x - tolerance && point.x <= x + w + tolerance &&
          point.y >= y - tolerance && point.y <= y + h + tolerance;
      }
      if (!inside) continue;
      const area = annotation.bbox ? annotation.bbox[2] * annotation.bbox[3] : 0;
      if (area < bestArea) {
        best = annotation.uid;
        bestArea = area;
      }
    }
    return best;
  }

  _bindPointers() {
    const el = this.container;
    el.style.touchAction = "none";
    el.addEventListener("wheel", (e) => this.view.wheel(e), { passive: false });
    el.addEventListener("contextmenu", (e) => e.preventDefault());
    el.addEventListener("pointerdown", (e) => {
      el.focus({ preventScroll: true });
      el.setPointerCapture?.(e.pointerId);
      if (e.button === 1) e.preventDefault();
      if (this.view.down(e)) return;
      if (this.tool && this.editable && this.item) this.tool.pointerdown?.(this, this._point(e), e);
      else if (this.item && e.button === 0) this.select(this.hit(this._point(e)));
    });
    el.addEventListener("pointermove", (e) => {
      if (this.view.move(e)) return;
      if (this.tool && this.editable && this.item) this.tool.pointermove?.(this, this._point(e), e);
    });
    const up = (e) => {
      if (this.view.up(e)) return;
      if (e.type === "pointercancel") return this._cancelGesture();
      if (this.tool && this.editable && this.item) this.tool.pointerup?.(this, this._point(e), e);
    };
    el.addEventListener("pointerup", up);
    el.addEventListener("pointercancel", up);
    el.addEventListener("pointerleave", () => {
      this.view.last = null;
      if (this.tool && this.editable) this.tool.pointerleave?.(this);
    });
  }

  _point(event) {
    return this.view.toImage(this.view.screenOf(event));
  }

  _cancelGesture() {
    if (this.tool && this.editable) this.tool.cancel?.(this);
  }
}
