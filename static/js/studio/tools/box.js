/* The box tool: drag to draw, click to select, drag the selected box to move it, its handles
   to resize it, arrow keys to nudge it. Boxes are clamped to the image and snap to its edges
   within a few screen pixels. Strokes and handles keep their size on screen at any zoom; the
   box itself is in image pixels, so it grows with the image. A crosshair follows the pointer. */

const Konva = window.Konva;
const HANDLE = 9; // screen px: a handle's side
const GRAB = 9; // screen px: how near a handle the pointer grabs it
const SNAP = 6; // screen px: an edge this near the image's edge lands on it
const CLICK = 3; // screen px: a smaller drag is a click
const HANDLES = {
  nw: [0, 0], n: [0.5, 0], ne: [1, 0], e: [1, 0.5],
  se: [1, 1], s: [0.5, 1], sw: [0, 1], w: [0, 0.5],
};
const CURSORS = {
  nw: "nwse-resize", se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize",
  n: "ns-resize", s: "ns-resize", e: "ew-resize", w: "ew-resize",
};
const CROSS = "rgba(0, 229, 255, 0.9)";

let ui = null; // while active: {gesture, cross, drawing, handles, off}

const round = (v) => Math.round(v * 100) / 100;

function selectedBox(studio) {
  const annotation = studio.selected && studio.shown(studio.selected);
  return annotation && box.draws(annotation) ? annotation : null;
}

/** A point clamped to the image, snapped to an edge within SNAP screen pixels. */
function snapPoint(studio, p) {
  const { width, height } = studio.image;
  const snap = SNAP / studio.scale;
  let x = Math.min(width, Math.max(0, p.x));
  let y = Math.min(height, Math.max(0, p.y));
  if (x < snap) x = 0;
  if (width - x < snap) x = width;
  if (y < snap) y = 0;
  if (height - y < snap) y = height;
  return { x, y };
}

/** A box moved by (dx, dy), kept inside the image, snapped to its edges. */
function moved(studio, [x, y, w, h], dx, dy) {
  const { width, height } = studio.image;
  const snap = SNAP / studio.scale;
  let nx = Math.min(width - w, Math.max(0, x + dx));
  let ny = Math.min(height - h, Math.max(0, y + dy));
  if (nx < snap) nx = 0;
  if (width - (nx + w) < snap) nx = width - w;
  if (ny < snap) ny = 0;
  if (height - (ny + h) < snap) ny = height - h;
  return [round(nx), round(ny), w, h];
}

function fromCorners(a, b) {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return [round(x), round(y), round(Math.abs(a.x - b.x)), round(Math.abs(a.y - b.y))];
}

function resized([x, y, w, h], handle, p) {
  let [left, top, right, bottom] = [x, y, x + w, y + h];
  if (handle.includes("w")) left = p.x;
  if (handle.includes("e")) right = p.x;
  if (handle.includes("n")) top = p.y;
  if (handle.includes("s")) bottom = p.y;
  return fromCorners({ x: left, y: top }, { x: right, y: bottom });
}

function handleAt(studio, p) {
  const annotation = selectedBox(studio);
  if (!annotation) return null;
  const [x, y, w, h] = annotation.bbox;
  const reach = GRAB / studio.scale;
  let best = null;
  let bestDistance = Infinity;
  for (const [name, [fx, fy]] of Object.entries(HANDLES)) {
    const d = Math.hypot(p.x - (x + fx * w), p.y - (y + fy * h));
    if (d <= reach && d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

function inside(annotation, p) {
  const [x, y, w, h] = annotation.bbox;
  return p.x >= x && p.x <= x + w && p.y >= y && p.y <= y + h;
}

function drawHandles(studio) {
  if (!ui) return;
  ui.handles?.destroy();
  ui.handles = null;
  const annotation = selectedBox(studio);
  if (annotation) {
    const [x, y, w, h] = annotation.bbox;
    const group = new Konva.Group({ listening: false });
    for (const [fx, fy] of Object.values(HANDLES)) {
      const square = new Konva.Rect({
        x: x + fx * w,
        y: y + fy * h,
        width: HANDLE,
        height: HANDLE,
        offsetX: HANDLE / 2,
        offsetY: HANDLE / 2,
        fill: "#fff",
        stroke: studio.color(annotation.category),
        strokeWidth: 1.5,
        listening: false,
        perfectDrawEnabled: false,
      });
      group.add(studio.fixedSize(square));
    }
    const label = new Konva.Label({ x, y: y + h, listening: false });
    label.add(new Konva.Tag({ fill: studio.color(annotation.category), cornerRadius: 2 }));
    label.add(new Konva.Text({ text: studio.categoryName(annotation.category), fontSize: 12, padding: 3, fill: "#fff" }));
    label.offsetY(-HANDLE);
    group.add(studio.fixedSize(label));
    studio.overlay.add(group);
    ui.handles = group;
  }
  studio.overlay.batchDraw();
}

function drawCross(studio, p) {
  if (!ui) return;
  const far = 1e6;
  if (!ui.cross) {
    const line = { stroke: CROSS, strokeWidth: 1, strokeScaleEnabled: false, listening: false, dash: [5, 4] };
    ui.cross = [new Konva.Line(line), new Konva.Line(line)];
    studio.overlay.add(...ui.cross);
  }
  const visible = p !== null;
  ui.cross.forEach((line) => line.visible(visible));
  if (visible) {
    ui.cross[0].points([-far, p.y, far, p.y]);
    ui.cross[1].points([p.x, -far, p.x, far]);
  }
  studio.overlay.batchDraw();
}

function endGesture(studio) {
  if (!ui?.gesture) return;
  const { uid } = ui.gesture;
  ui.drawing?.destroy();
  ui.drawing = null;
  ui.gesture = null;
  if (uid) studio.preview(uid, null);
  drawHandles(studio);
}

const box = {
  name: "box",
  key: "b",
  words: "tool-box",
  cursor: "crosshair",
  draws: (a) => Array.isArray(a.bbox) && !a.segmentation && !a.keypoints,

  render(studio, annotation, group) {
    const [x, y, width, height] = annotation.bbox;
    const color = studio.color(annotation.category);
    const selected = studio.selected === annotation.uid;
    group.add(
      new Konva.Rect({
        x, y, width, height,
        stroke: color,
        strokeWidth: selected ? 3 : 2,
        strokeScaleEnabled: false,
        fill: selected ? `${color}33` : undefined,
        listening: false,
        perfectDrawEnabled: false,
        shadowForStrokeEnabled: false,
      }),
    );
  },

  /** Every plain box at once: one path per class colour, only those in view. */
  paint(context, studio, annotations) {
    const view = studio.visibleRect();
    const byColour = new Map();
    for (const annotation of annotations) {
      const [x, y, w, h] = annotation.bbox;
      if (x > view.right || y > view.bottom || x + w < view.x || y + h < view.y) continue;
      const colour = studio.color(annotation.category);
      if (!byColour.has(colour)) byColour.set(colour, []);
      byColour.get(colour).push(annotation.bbox);
    }
    // One strokeRect per box: in software drawing, 2,000 of them rasterise in about 3 ms where
    // one path of 2,000 rectangles takes about 26 ms (benchmarks/studio_bench.py).
    context.lineWidth = 2 / studio.scale;
    for (const [colour, boxes] of byColour) {
      context.strokeStyle = colour;
      for (const [x, y, w, h] of boxes) context.strokeRect(x, y, w, h);
    }
  },

  activate(studio) {
    ui = { gesture: null, cross: null, drawing: null, handles: null, off: [] };
    const refresh = (uid) => {
      if (!ui?.gesture && (uid === undefined || uid === studio.selected)) drawHandles(studio);
    };
    ui.off.push(
      studio.on("select", () => drawHandles(studio)),
      studio.on("change", refresh),
      studio.on("load", () => drawHandles(studio)),
    );
    drawHandles(studio);
  },

  deactivate(studio) {
    if (!ui) return;
    endGesture(studio);
    ui.off.forEach((off) => off());
    ui.cross?.forEach((line) => line.destroy());
    ui.handles?.destroy();
    ui = null;
    studio.overlay.batchDraw();
  },

  pointerdown(studio, p, event) {
    if (!ui || event.button > 0) return;
    const handle = handleAt(studio, p);
    const current = selectedBox(studio);
    if (handle) {
      ui.gesture = { mode: "resize", handle, uid: current.uid, box: current.bbox, start: p };
    } else if (current && inside(current, p)) {
      ui.gesture = { mode: "move", uid: current.uid, box: current.bbox, start: p, moved: false };
    } else {
      ui.gesture = { mode: "pending", start: p, from: snapPoint(studio, p) };
    }
  },

  pointermove(studio, p) {
    if (!ui) return;
    drawCross(studio, snapPoint(studio, p));
    const g = ui.gesture;
    if (!g) {
      const handle = handleAt(studio, p);
      studio.container.style.cursor = handle ? CURSORS[handle] : "crosshair";
      return;
    }
    const far = Math.hypot(p.x - g.start.x, p.y - g.start.y) * studio.scale >= CLICK;
    if (g.mode === "pending" && far) g.mode = "draw";
    if (g.mode === "draw") {
      const rect = fromCorners(g.from, snapPoint(studio, p));
      if (!ui.drawing) {
        ui.drawing = new Konva.Rect({
          stroke: studio.color(studio.category),
          strokeWidth: 2,
          strokeScaleEnabled: false,
          listening: false,
          perfectDrawEnabled: false,
        });
        studio.overlay.add(ui.drawing);
      }
      ui.drawing.setAttrs({ x: rect[0], y: rect[1], width: rect[2], height: rect[3] });
      studio.overlay.batchDraw();
    } else if (g.mode === "move" && (g.moved || far)) {
      g.moved = true;
      studio.preview(g.uid, { bbox: moved(studio, g.box, p.x - g.start.x, p.y - g.start.y) });
      ui.handles?.destroy();
      ui.handles = null;
    } else if (g.mode === "resize") {
      studio.preview(g.uid, { bbox: resized(g.box, g.handle, snapPoint(studio, p)) });
      ui.handles?.destroy();
      ui.handles = null;
    }
  },

  pointerup(studio, p) {
    if (!ui?.gesture) return;
    const g = ui.gesture;
    const bbox = studio.shown(g.uid)?.bbox;
    endGesture(studio);
    if (g.mode === "draw") {
      const rect = fromCorners(g.from, snapPoint(studio, p));
      if (rect[2] * studio.scale >= CLICK && rect[3] * studio.scale >= CLICK) {
        studio.select(studio.add({ category: studio.category, bbox: rect }));
      }
    } else if (g.mode === "pending") {
      studio.select(studio.hit(p));
    } else if (g.mode === "move" && !g.moved) {
      const under = studio.hit(p);
      if (under && under !== g.uid) studio.select(under);
    } else if ((g.mode === "move" || g.mode === "resize") && bbox) {
      if (bbox[2] > 0 && bbox[3] > 0) studio.update(g.uid, { bbox });
    }
  },

  pointerleave(studio) {
    drawCross(studio, null);
  },

  cancel(studio) {
    endGesture(studio);
  },

  keydown(studio, event) {
    if (event.key === "Escape" && ui?.gesture) {
      endGesture(studio);
      return true;
    }
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const current = selectedBox(studio);
    if (!(event.key in arrows) || !current || event.ctrlKey || event.metaKey || event.altKey) return false;
    const step = (event.shiftKey ? 10 : 1) * Math.max(1, Math.round(1 / studio.scale));
    const [dx, dy] = arrows[event.key];
    studio.update(current.uid, { bbox: moved(studio, current.bbox, dx * step, dy * step) }, { merge: "nudge" });
    return true;
  },

  shortcuts: [
    { key: "b", words: "key-box-tool" },
    { key: "drag", words: "key-box-draw" },
    { key: "click", words: "key-box-select" },
    { key: "←↑→↓", words: "key-box-nudge" },
    { key: "Shift+←↑→↓", words: "key-box-nudge-more" },
  ],
};

export default box;
