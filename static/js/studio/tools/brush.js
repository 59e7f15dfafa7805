// The brush and the eraser: paint a class's mask at the image's own resolution, stored as COCO
// compressed RLE, `segmentation: {"size": [h, w], "counts": "..."}`, with its bbox. There is one
// mask annotation per class: a stroke goes into the selected mask, else into the mask of the
// current class, else it starts one. `[` and `]` (or the slider) set the size, `e` switches
// between brush and eraser (the right button erases too), `h` fills the holes of the mask
// (what the background cannot reach from the image's border becomes mask).
//
// A mask is a Uint8Array in COCO's column-major order (rle.js). The mask being painted has a
// canvas as large as the image, shown as one Konva.Image; a stroke changes only the pixels it
// covers, in the mask and in that canvas (fast at 4000×3000). Other masks are drawn from a
// canvas cut to their bbox. A stroke is one change (one undo step, one delta) on pointerup.

import { decodeMask, encodeWithBox, maskToRuns, runsBox } from "../rle.js";
import { newUid } from "../studio.js";

const OPACITY = 0.45;
const OPACITY_SELECTED = 0.6;
const MAX_SIZE = 500; // image pixels

// uid → entry {uid, counts, colour, mask, h, w, box, canvas, x, y, full, node}: box [x0, y0, x1,
// y1] holds every pixel of the mask (null: none), the canvas's top left is (x, y) in the image,
// node is the Konva.Image last drawn from it (a stroke widens its crop as it goes).
const cache = new Map();
// A transparent canvas as large as the image, made while the brush waits: the first stroke of a
// new mask then does not wait for the browser to allocate 48 MB (4000×3000).
let spare = null;
const state = {
  mode: "paint", // or "erase"
  size: 0, // brush diameter in image pixels; 0 until an image sets a default
  stroke: null, // {entry, value, last, category, node (a new mask's overlay image)}
  ring: null, // the brush's outline on the overlay
  controls: null, // the side panel's slider, buttons and output
  studio: null,
};

const konva = () => window.Konva;

export function isMask(annotation) {
  const s = annotation && annotation.segmentation;
  return Boolean(s && !annotation.keypoints && !Array.isArray(s) && typeof s.counts === "string");
}

function rgb(colour) {
  return konva().Util.colorToRGBA(colour) || { r: 0, g: 114, b: 178 };
}

/** Colour a rectangle of an entry's canvas from its mask (canvas coordinates offset by x, y). */
function paint(entry, x0, y0, x1, y1) {
  const { mask, h, canvas } = entry;
  const rw = x1 - x0 + 1;
  const rh = y1 - y0 + 1;
  if (rw <= 0 || rh <= 0 || !canvas) return;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(rw, rh);
  const data = pixels.data;
  const { r, g, b } = rgb(entry.colour);
  for (let x = x0; x <= x1; x += 1) {
    const column = x * h;
    let o = (x - x0) * 4;
    for (let y = y0; y <= y1; y += 1, o += rw * 4) {
      if (mask[column + y]) {
        data[o] = r;
        data[o + 1] = g;
        data[o + 2] = b;
        data[o + 3] = 255;
      }
    }
  }
  ctx.putImageData(pixels, x0 - entry.x, y0 - entry.y);
}

/** [x0, y0, x1, y1] around a mask's pixels; null when it has none. */
function boxOf(mask, h) {
  const found = runsBox(maskToRuns(mask), h);
  if (!found) return null;
  const [x, y, w, hh] = found.bbox;
  return [x, y, x + w - 1, y + hh - 1];
}

/**
 * Give an entry its canvas: as large as the image (full: the mask being painted) or cut to the
 * mask's box. Only the box is coloured: the rest of a new canvas is transparent already.
 */
function makeCanvas(entry, full) {
  entry.full = full;
  entry.node = null;
  const box = entry.box;
  if (!full && !box) {
    entry.canvas = null;
    return;
  }
  const old = entry.canvas;
  entry.canvas = full ? takeSpare(entry.w, entry.h) : document.createElement("canvas");
  if (!full) {
    entry.canvas.width = box[2] - box[0] + 1;
    entry.canvas.height = box[3] - box[1] + 1;
  }
  if (!full && old && old.width === entry.w && old.height === entry.h && !spare) {
    old.getContext("2d").clearRect(0, 0, old.width, old.height); // the next full canvas
    spare = old;
  }
  entry.x = full ? 0 : box[0];
  entry.y = full ? 0 : box[1];
  if (box) paint(entry, ...box);
}

function takeSpare(w, h) {
  let canvas = spare;
  spare = null;
  if (!canvas || canvas.width !== w || canvas.height !== h) {
    canvas = document.createElement("canvas"); // setting the size again would clear it anew
    canvas.width = w;
    canvas.height = h;
  }
  return canvas;
}

function prepareSpare(studio) {
  const { width: w, height: h } = studio.image;
  if (!w || !h || (spare && spare.width === w && spare.height === h)) return;
  spare = document.createElement("canvas");
  spare.width = w;
  spare.height = h;
  spare.getContext("2d").putImageData(new ImageData(1, 1), 0, 0); // the backing store, now
}

/** Widen an entry's box by a rectangle a stroke touched, and the crop of the image showing it. */
function grow(entry, x0, y0, x1, y1) {
  const b = entry.box;
  entry.box = b
    ? [Math.min(b[0], x0), Math.min(b[1], y0), Math.max(b[2], x1), Math.max(b[3], y1)]
    : [x0, y0, x1, y1];
  if (entry.node) entry.node.setAttrs(imageAttrs(entry));
}

/** Where a Konva.Image shows an entry: its box only, cut from the canvas (cheap to draw). */
function imageAttrs(entry) {
  const [x0, y0, x1, y1] = entry.box;
  const width = x1 - x0 + 1;
  const height = y1 - y0 + 1;
  return { x: x0, y: y0, width, height, crop: { x: x0 - entry.x, y: y0 - entry.y, width, height } };
}

/** The cached entry of a mask annotation, decoded again only when its counts changed. */
function entryFor(studio, annotation) {
  const { uid, segmentation } = annotation;
  const [h, w] = segmentation.size;
  const colour = studio.color(annotation.category);
  let entry = cache.get(uid);
  if (entry && entry.counts === segmentation.counts && entry.h === h && entry.w === w) {
    if (entry.colour !== colour) {
      entry.colour = colour;
      makeCanvas(entry, entry.full);
    }
    return entry;
  }
  const mask = decodeMask(segmentation.counts, h, w);
  if (!mask) return null;
  forget(studio); // masks of images left behind (12 MB each at 4000×3000)
  entry = { uid, counts: segmentation.counts, colour, mask, h, w, box: boxOf(mask, h), full: false };
  makeCanvas(entry, false);
  cache.set(uid, entry);
  return entry;
}

function forget(studio) {
  for (const [uid, entry] of cache) {
    if (!studio.annotations.has(uid) && !(state.stroke && state.stroke.entry === entry)) cache.delete(uid);
  }
}

/** The mask a stroke goes into: the selected one, else the current class's; null: a new one. */
function target(studio) {
  const selected = studio.selected && studio.annotations.get(studio.selected);
  if (selected && isMask(selected)) return selected;
  let found = null;
  for (const annotation of studio.annotations.values()) {
    const ours = annotation.category === studio.category && !annotation.proposal;
    if (ours && isMask(annotation)) found = annotation;
  }
  return found;
}

/** Only one mask keeps a canvas as large as the image: the one being painted. */
function makeFull(studio, entry) {
  for (const other of cache.values()) {
    if (other !== entry && other.full) {
      makeCanvas(other, false);
      if (studio.annotations.has(other.uid)) studio.redraw(other.uid);
    }
  }
  if (!entry.full) {
    makeCanvas(entry, true);
    if (entry.uid && studio.annotations.has(entry.uid)) studio.redraw(entry.uid);
  }
}

/** Set (value 1) or clear (0) the pixels whose centres lie within r of the segment a–b. */
function stamp(entry, a, b, r, value) {
  const { mask, h, w } = entry;
  const x0 = Math.max(0, Math.floor(Math.min(a.x, b.x) - r));
  const x1 = Math.min(w - 1, Math.ceil(Math.max(a.x, b.x) + r));
  const y0 = Math.max(0, Math.floor(Math.min(a.y, b.y) - r));
  const y1 = Math.min(h - 1, Math.ceil(Math.max(a.y, b.y) + r));
  if (x1 < x0 || y1 < y0) return;
  if (value === 1) grow(entry, x0, y0, x1, y1);
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const length2 = dx * dx + dy * dy;
  const r2 = r * r;
  for (let x = x0; x <= x1; x += 1) {
    const cx = x + 0.5;
    const column = x * h;
    for (let y = y0; y <= y1; y += 1) {
      const cy = y + 0.5;
      const t = length2 ? Math.min(1, Math.max(0, ((cx - a.x) * dx + (cy - a.y) * dy) / length2)) : 0;
      const ex = a.x + t * dx - cx;
      const ey = a.y + t * dy - cy;
      if (ex * ex + ey * ey <= r2) mask[column + y] = value;
    }
  }
  if (value === 0) {
    // cleared pixels must become transparent: wipe the rectangle, then colour what is left
    entry.canvas.getContext("2d").clearRect(x0 - entry.x, y0 - entry.y, x1 - x0 + 1, y1 - y0 + 1);
  }
  paint(entry, x0, y0, x1, y1);
}

/**
 * Fill a mask's holes: the background that cannot be reached from the image's border becomes
 * mask (4-connected, as scipy's binary_fill_holes). Only the mask's box, one pixel wider, is
 * searched: everything outside it is background joined to the border. Returns {mask, filled}.
 */
export function fillHoles(mask, h, w, box = boxOf(mask, h)) {
  const out = mask.slice(); // 1 mask, 0 not reached (yet), 2 background reached
  if (!box) return { mask: out, filled: 0 };
  const x0 = Math.max(0, box[0] - 1);
  const y0 = Math.max(0, box[1] - 1);
  const x1 = Math.min(w - 1, box[2] + 1);
  const y1 = Math.min(h - 1, box[3] + 1);
  const queue = new Int32Array((x1 - x0 + 1) * (y1 - y0 + 1));
  let tail = 0;
  for (let x = x0; x <= x1; x += 1) {
    for (let y = y0; y <= y1; y += 1) {
      const i = x * h + y;
      if ((x === x0 || x === x1 || y === y0 || y === y1) && out[i] === 0) {
        out[i] = 2;
        queue[tail] = i;
        tail += 1;
      }
    }
  }
  for (let head = 0; head < tail; head += 1) {
    const i = queue[head];
    const y = i % h;
    const x = (i - y) / h;
    // the four neighbours inside the searched rectangle: above, below, left, right
    const next = [y > y0 ? i - 1 : -1, y < y1 ? i + 1 : -1, x > x0 ? i - h : -1, x < x1 ? i + h : -1];
    for (const j of next) {
      if (j >= 0 && out[j] === 0) {
        out[j] = 2;
        queue[tail] = j;
        tail += 1;
      }
    }
  }
  let filled = 0;
  for (let x = x0; x <= x1; x += 1) {
    for (let i = x * h + y0, end = x * h + y1; i <= end; i += 1) {
      if (out[i] === 0) {
        out[i] = 1;
        filled += 1;
      } else if (out[i] === 2) out[i] = 0;
    }
  }
  return { mask: out, filled };
}

function segmentationOf(entry) {
  const { counts, bbox } = encodeWithBox(entry.mask, entry.h);
  return { segmentation: { size: [entry.h, entry.w], counts }, bbox, counts };
}

/** The exact box again after a stroke (erasing may have shrunk it). */
function setBox(entry, bbox) {
  const before = entry.box;
  entry.box = bbox ? [bbox[0], bbox[1], bbox[0] + bbox[2] - 1, bbox[1] + bbox[3] - 1] : null;
  if (entry.node && entry.box && String(before) !== String(entry.box)) entry.node.setAttrs(imageAttrs(entry));
}

/** Store an entry's mask as the annotation's (or a new one); an emptied mask goes. */
function commit(studio, entry, category) {
  const { segmentation, bbox, counts } = segmentationOf(entry);
  entry.counts = counts;
  setBox(entry, bbox);
  if (!entry.uid) {
    if (!bbox) return;
    entry.uid = newUid(); // cached before it is drawn: the canvas painted so far is used as it is
    cache.set(entry.uid, entry);
    studio.add({ uid: entry.uid, category, segmentation, bbox, keypoints: null, iscrowd: false });
    return;
  }
  if (!bbox) {
    cache.delete(entry.uid);
    studio.remove(entry.uid);
    return;
  }
  studio.update(entry.uid, { segmentation, bbox });
}

// --- the brush's size, mode and controls ----------------------------------------------------

function defaultSize(studio) {
  const side = Math.min(studio.image.width || 64, studio.image.height || 64);
  return Math.max(1, Math.min(MAX_SIZE, Math.round(side / 16)));
}

function maxSize(studio) {
  const side = Math.min(studio.image.width || 64, studio.image.height || 64);
  return Math.max(8, Math.min(MAX_SIZE, Math.round(side / 2)));
}

function setSize(studio, size) {
  state.size = Math.max(1, Math.min(maxSize(studio), Math.round(size)));
  showControls(studio);
  showRing(studio, null);
}

function setMode(studio, mode) {
  state.mode = mode;
  showControls(studio);
  showRing(studio, null);
}

function showControls(studio) {
  const c = state.controls;
  if (!c) return;
  c.panel.hidden = false;
  c.size.max = String(maxSize(studio));
  c.size.value = String(state.size);
  c.output.textContent = String(state.size);
  for (const button of c.modes) {
    button.setAttribute("aria-pressed", String(button.dataset.brushMode === state.mode));
  }
}

function bindControls(studio) {
  const panel = document.querySelector("[data-brush-controls]");
  if (!panel) return null;
  const controls = {
    panel,
    size: panel.querySelector("[data-brush-size]"),
    output: panel.querySelector("[data-brush-size-value]"),
    modes: [...panel.querySelectorAll("[data-brush-mode]")],
    fill: panel.querySelector("[data-brush-fill]"),
  };
  if (!panel.dataset.bound) {
    // the page keeps one studio: listeners are added once and reach it through state.studio
    panel.dataset.bound = "1";
    controls.size.addEventListener("input", () => setSize(state.studio, Number(controls.size.value)));
    for (const button of controls.modes) {
      button.addEventListener("click", () => setMode(state.studio, button.dataset.brushMode));
    }
    controls.fill.addEventListener("click", () => fillSelected(state.studio));
  }
  return controls;
}

function showRing(studio, point) {
  if (!state.ring) return;
  if (point) state.ring.position(point);
  state.ring.radius(state.size / 2);
  state.ring.dash(state.mode === "erase" ? [4, 3] : []);
  if (point) state.ring.visible(true);
  studio.overlay.batchDraw();
}

function fillSelected(studio) {
  const annotation = studio && target(studio);
  if (!annotation) return false;
  const entry = entryFor(studio, annotation);
  if (!entry) return false;
  const { mask, filled } = fillHoles(entry.mask, entry.h, entry.w, entry.box);
  if (!filled) return true;
  entry.mask = mask; // the box stays: holes lie inside it
  makeCanvas(entry, entry.full);
  commit(studio, entry, annotation.category);
  return true;
}

function endStroke(studio, keep) {
  const stroke = state.stroke;
  state.stroke = null;
  if (!stroke) return;
  if (stroke.node) stroke.node.destroy();
  if (keep) commit(studio, stroke.entry, stroke.category);
  else if (stroke.entry.uid) {
    cache.delete(stroke.entry.uid); // painted pixels not kept: decode the stored mask again
    studio.redraw(stroke.entry.uid);
  }
  studio.overlay.batchDraw();
}

export default {
  name: "brush",
  key: "m",
  words: "tool-brush",
  cursor: "crosshair",
  shortcuts: [
    { key: "e", words: "brush-eraser" },
    { key: "[", words: "brush-smaller" },
    { key: "]", words: "brush-larger" },
    { key: "h", words: "fill-holes" },
  ],

  draws: isMask,

  hit(studio, annotation, point) {
    const entry = entryFor(studio, annotation);
    if (!entry) return false;
    const x = Math.floor(point.x);
    const y = Math.floor(point.y);
    return x >= 0 && y >= 0 && x < entry.w && y < entry.h && entry.mask[x * entry.h + y] === 1;
  },

  render(studio, annotation, group) {
    studio.layer.imageSmoothingEnabled(false); // a mask's pixels stay squares when zoomed in
    const entry = entryFor(studio, annotation);
    if (!entry || !entry.canvas || !entry.box) return;
    const K = konva();
    const selected = studio.selected === annotation.uid;
    entry.node = new K.Image({
      image: entry.canvas,
      ...imageAttrs(entry),
      opacity: selected ? OPACITY_SELECTED : OPACITY,
      listening: false,
    });
    group.add(entry.node);
    if ((selected || annotation.proposal) && annotation.bbox) { // a proposal's box: dashed, with its score
      const [x, y, width, height] = annotation.bbox;
      group.add(
        new K.Rect({
          x,
          y,
          width,
          height,
          stroke: entry.colour,
          strokeWidth: 1,
          dash: [4, 4],
          strokeScaleEnabled: false,
          listening: false,
          perfectDrawEnabled: false,
        }),
      );
    }
  },

  activate(studio) {
    state.studio = studio;
    if (!state.size || state.size > maxSize(studio)) state.size = defaultSize(studio);
    state.controls = bindControls(studio);
    showControls(studio);
    forget(studio);
    const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));
    later(() => studio.tool && studio.tool.name === "brush" && prepareSpare(studio));
    state.ring = new (konva().Circle)({
      radius: state.size / 2,
      stroke: "#ffffff",
      strokeWidth: 1.5,
      shadowColor: "#000000",
      shadowBlur: 2,
      shadowOpacity: 0.9,
      strokeScaleEnabled: false,
      listening: false,
      visible: false,
    });
    studio.overlay.add(state.ring);
  },

  deactivate(studio) {
    endStroke(studio, true);
    if (state.ring) state.ring.destroy();
    state.ring = null;
    if (state.controls) state.controls.panel.hidden = true;
    studio.overlay.batchDraw();
  },

  pointerdown(studio, point, event) {
    const rightButton = event.pointerType !== "touch" && (event.button === 2 || event.button === 5);
    if (event.pointerType === "mouse" && event.button !== 0 && event.button !== 2) return;
    const erase = state.mode === "erase" || rightButton; // 5: a pen's eraser end
    const annotation = target(studio);
    if (!annotation && erase) return;
    let entry;
    let node = null;
    const category = annotation ? annotation.category : studio.category;
    if (annotation) {
      entry = entryFor(studio, annotation);
      if (!entry) return;
    } else {
      const { width: w, height: h } = studio.image;
      const mask = new Uint8Array(w * h);
      entry = { uid: null, counts: "", colour: studio.color(category), mask, h, w, box: null };
    }
    makeFull(studio, entry);
    if (!annotation) {
      // a new mask shows on the overlay until its first stroke ends and makes it an annotation
      const shown = { image: entry.canvas, width: 1, height: 1, opacity: OPACITY, listening: false };
      node = new (konva().Image)(shown); // its crop grows with the stroke
      studio.overlay.add(node);
      node.moveToBottom();
      entry.node = node;
    }
    state.stroke = { entry, value: erase ? 0 : 1, last: point, category, node };
    stamp(entry, point, point, state.size / 2, state.stroke.value);
    studio.layer.batchDraw();
    showRing(studio, point);
  },

  pointermove(studio, point) {
    const stroke = state.stroke;
    if (stroke) {
      stamp(stroke.entry, stroke.last, point, state.size / 2, stroke.value);
      stroke.last = point;
      studio.layer.batchDraw();
    }
    showRing(studio, point);
  },

  pointerup(studio) {
    endStroke(studio, true);
  },

  pointerleave(studio) {
    if (state.ring) state.ring.visible(false);
    studio.overlay.batchDraw();
  },

  /** A second finger came down: the stroke its first finger began was a pinch. */
  cancel(studio) {
    endStroke(studio, false);
  },

  keydown(studio, event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return false;
    const step = Math.max(1, Math.round(state.size * 0.2));
    if (event.key === "[") setSize(studio, state.size - step);
    else if (event.key === "]") setSize(studio, state.size + step);
    else if (event.key === "e" || event.key === "E") {
      setMode(studio, state.mode === "erase" ? "paint" : "erase");
    }
    else if (event.key === "h" || event.key === "H") fillSelected(studio);
    else return false;
    return true;
  },
};
