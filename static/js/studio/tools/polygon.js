// The polygon tool: click to add vertices; close by clicking the first vertex, with Enter or a
// double-click; Esc cancels and Backspace takes back the last vertex. A click inside a polygon
// selects it; the selected polygon shows its vertices and the midpoints of its edges: drag a
// vertex to move it, drag a midpoint to insert a vertex there, drag inside to move the whole
// polygon, Alt+click a vertex (or click it and press Delete) to delete it. Shift+click always
// adds a vertex (to start a polygon inside another one). Stored as COCO polygons,
// `segmentation: [[x1, y1, x2, y2, ...], ...]`, with their bbox.
//
// Speed (300 polygons of 50 vertices): the plain polygons are painted in bulk (`paint`: one path
// per class colour, only those in view), as the studio's one shape for the tool; the selected,
// dragged and proposed ones are closed Konva.Lines that do not listen (hit tests are done here,
// on the numbers), and the selected polygon's handles are one Konva.Shape drawing every vertex.

const HANDLE = 5; // a vertex handle's radius, screen pixels
const REACH = 8; // how far from a vertex a click may land, screen pixels (touch: twice that)
const DOUBLE_MS = 400; // two clicks at one place within this close the polygon

const state = {
  drawing: null, // {points: [x, y, ...], lastAt, closing, group, line, band, dots}
  drag: null, // {uid, rings, ring, index (-1: the whole polygon, from origin), moved}
  vertex: null, // {uid, ring, index}: the vertex Delete removes
  hover: false,
};

const round = (v) => Math.round(v * 100) / 100;
const konva = () => window.Konva;

export function isPolygon(annotation) {
  const segmentation = annotation && annotation.segmentation;
  return !annotation.keypoints && Array.isArray(segmentation) && segmentation.length > 0;
}

/** [x, y, w, h] around every ring. */
export function ringsBox(rings) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const ring of rings) {
    for (let i = 0; i + 1 < ring.length; i += 2) {
      x0 = Math.min(x0, ring[i]);
      x1 = Math.max(x1, ring[i]);
      y0 = Math.min(y0, ring[i + 1]);
      y1 = Math.max(y1, ring[i + 1]);
    }
  }
  return [round(x0), round(y0), round(x1 - x0), round(y1 - y0)];
}

function nearEdge(ring, point, distance) {
  const n = ring.length / 2;
  for (let i = 0; i < n; i += 1) {
    const j = (i + 1) % n;
    const ax = ring[2 * i];
    const ay = ring[2 * i + 1];
    const dx = ring[2 * j] - ax;
    const dy = ring[2 * j + 1] - ay;
    const along = ((point.x - ax) * dx + (point.y - ay) * dy) / (dx * dx + dy * dy || 1);
    const t = Math.max(0, Math.min(1, along)); // the nearest point of the edge
    if (Math.hypot(ax + t * dx - point.x, ay + t * dy - point.y) <= distance) return true;
  }
  return false;
}

/** Whether (x, y) is inside a ring (even–odd rule). */
function inside(ring, x, y) {
  let hit = false;
  for (let i = 0, j = ring.length - 2; i < ring.length; j = i, i += 2) {
    const xi = ring[i];
    const yi = ring[i + 1];
    const xj = ring[j];
    const yj = ring[j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function reach(studio, event) {
  return ((event && event.pointerType === "touch" ? 2 : 1) * REACH) / (studio.scale || 1);
}

function clamp(studio, point) {
  const { width, height } = studio.image;
  return {
    x: round(Math.min(Math.max(point.x, 0), width)),
    y: round(Math.min(Math.max(point.y, 0), height)),
  };
}

function rgba(colour, alpha) {
  const c = konva().Util.colorToRGBA(colour) || { r: 0, g: 114, b: 178 };
  return `rgba(${c.r}, ${c.g}, ${c.b}, ${alpha})`;
}

function redrawLayer(studio) {
  studio.layer.batchDraw();
}

function inBox(box, point) {
  return point.x >= box[0] && point.y >= box[1] && point.x <= box[0] + box[2] && point.y <= box[1] + box[3];
}

/** The topmost polygon annotation under an image point, or null. */
export function polygonAt(studio, point) {
  const found = [...studio.annotations.values()].filter(isPolygon);
  for (let k = found.length - 1; k >= 0; k -= 1) {
    const annotation = found[k];
    const box = annotation.bbox;
    if (box && !inBox(box, point)) continue;
    if (annotation.segmentation.some((ring) => inside(ring, point.x, point.y))) return annotation.uid;
  }
  return null;
}

function selectedPolygon(studio) {
  const annotation = studio.selected ? studio.annotations.get(studio.selected) : null;
  return annotation && isPolygon(annotation) ? annotation : null;
}

function nearestVertex(rings, point, distance) {
  let best = null;
  rings.forEach((ring, r) => {
    for (let i = 0; i + 1 < ring.length; i += 2) {
      const d = Math.hypot(ring[i] - point.x, ring[i + 1] - point.y);
      if (d <= distance && (!best || d < best.d)) best = { ring: r, index: i / 2, d };
    }
  });
  return best;
}

function nearestMidpoint(rings, point, distance) {
  let best = null;
  rings.forEach((ring, r) => {
    const n = ring.length / 2;
    for (let i = 0; i < n; i += 1) {
      const j = (i + 1) % n;
      const x = (ring[2 * i] + ring[2 * j]) / 2;
      const y = (ring[2 * i + 1] + ring[2 * j + 1]) / 2;
      const d = Math.hypot(x - point.x, y - point.y);
      if (d <= distance && (!best || d < best.d)) best = { ring: r, index: i, x, y, d };
    }
  });
  return best;
}

/** The selected polygon's handles: one shape that draws vertices and edge midpoints. */
function handles(entry, colour) {
  return new (konva().Shape)({
    listening: false,
    perfectDrawEnabled: false,
    sceneFunc(ctx, shape) {
      const s = shape.getAbsoluteScale().x || 1;
      const r = HANDLE / s;
      ctx.setAttr("lineWidth", 1.5 / s);
      ctx.setAttr("strokeStyle", colour);
      entry.rings.forEach((ring, k) => {
        const n = ring.length / 2;
        for (let i = 0; i < n; i += 1) {
          const j = (i + 1) % n;
          ctx.beginPath(); // the midpoint: a small hollow square
          const mx = (ring[2 * i] + ring[2 * j]) / 2;
          const my = (ring[2 * i + 1] + ring[2 * j + 1]) / 2;
          ctx.rect(mx - r * 0.6, my - r * 0.6, r * 1.2, r * 1.2);
          ctx.setAttr("fillStyle", "rgba(255, 255, 255, 0.6)");
          ctx.fill();
          ctx.stroke();
        }
        for (let i = 0; i < n; i += 1) {
          const v = state.vertex;
          const chosen = v && v.uid === entry.uid && v.ring === k && v.index === i;
          ctx.beginPath();
          ctx.arc(ring[2 * i], ring[2 * i + 1], chosen ? r * 1.4 : r, 0, Math.PI * 2);
          ctx.setAttr("fillStyle", chosen ? colour : "#ffffff");
          ctx.fill();
          ctx.stroke();
        }
      });
    },
  });
}

function lineFor(ring, colour, selected) {
  return new (konva().Line)({
    points: ring.slice(),
    closed: true,
    fill: rgba(colour, selected ? 0.35 : 0.2),
    stroke: colour,
    strokeWidth: selected ? 2.5 : 1.5,
    strokeScaleEnabled: false,
    listening: false,
    perfectDrawEnabled: false,
    shadowForStrokeEnabled: false,
  });
}

// --- drawing a new polygon -----------------------------------------------------------------

function startDrawing(studio, point) {
  const K = konva();
  const colour = studio.color(studio.category);
  const drawing = { points: [point.x, point.y], lastAt: performance.now() };
  drawing.group = new K.Group({ listening: false });
  drawing.line = new K.Line({
    points: drawing.points.slice(),
    stroke: colour,
    strokeWidth: 2,
    strokeScaleEnabled: false,
    listening: false,
    perfectDrawEnabled: false,
  });
  drawing.band = new K.Line({
    points: [],
    stroke: colour,
    strokeWidth: 1,
    dash: [4, 4],
    strokeScaleEnabled: false,
    listening: false,
    perfectDrawEnabled: false,
  });
  drawing.dots = new K.Shape({
    listening: false,
    perfectDrawEnabled: false,
    sceneFunc(ctx, shape) {
      const s = shape.getAbsoluteScale().x || 1;
      const pts = drawing.points;
      ctx.setAttr("lineWidth", 1.5 / s);
      ctx.setAttr("strokeStyle", colour);
      for (let i = 0; i < pts.length; i += 2) {
        const first = i === 0;
        ctx.beginPath();
        ctx.arc(pts[i], pts[i + 1], (first && drawing.closing ? 2 : 1) * HANDLE / s, 0, Math.PI * 2);
        ctx.setAttr("fillStyle", first ? colour : "#ffffff");
        ctx.fill();
        ctx.stroke();
      }
    },
  });
  drawing.group.add(drawing.line, drawing.band, drawing.dots);
  studio.overlay.add(drawing.group);
  state.drawing = drawing;
  studio.overlay.batchDraw();
}

function showDrawing(studio, cursor) {
  const d = state.drawing;
  d.line.points(d.points.slice());
  const n = d.points.length;
  const band = cursor ? [d.points[n - 2], d.points[n - 1], cursor.x, cursor.y, d.points[0], d.points[1]] : [];
  d.band.points(band); // from the last vertex to the pointer and back to the first
  studio.overlay.batchDraw();
}

function cancelDrawing(studio) {
  if (!state.drawing) return;
  state.drawing.group.destroy();
  state.drawing = null;
  studio.overlay.batchDraw();
}

/** Twice the signed area a ring encloses (shoelace): its sign says which way round it goes. */
function signedArea(ring) {
  let sum = 0;
  for (let i = 0, j = ring.length - 2; i < ring.length; j = i, i += 2) {
    sum += ring[j] * ring[i + 1] - ring[i] * ring[j + 1];
  }
  return sum;
}

function closeDrawing(studio) {
  const d = state.drawing;
  if (!d || d.points.length < 6 || Math.abs(signedArea(d.points)) < 1e-6) return false;
  const ring = d.points.slice();
  cancelDrawing(studio);
  const uid = studio.add({
    category: studio.category, // a number key pressed while drawing chose the class
    bbox: ringsBox([ring]),
    segmentation: [ring],
    keypoints: null,
    iscrowd: false,
  });
  if (uid) studio.select(uid);
  return true;
}

function addVertex(studio, point, event) {
  const d = state.drawing;
  const n = d.points.length / 2;
  const distance = reach(studio, event);
  const now = performance.now();
  const first = { x: d.points[0], y: d.points[1] };
  const last = { x: d.points[2 * n - 2], y: d.points[2 * n - 1] };
  if (n >= 3 && Math.hypot(point.x - first.x, point.y - first.y) <= distance) return closeDrawing(studio);
  if (Math.hypot(point.x - last.x, point.y - last.y) <= distance) {
    // the second click of a double-click (or a tap on the last vertex again)
    if (n >= 3 && now - d.lastAt < DOUBLE_MS) closeDrawing(studio);
    return true;
  }
  d.points.push(point.x, point.y);
  d.lastAt = now;
  showDrawing(studio, point);
  return true;
}

// --- editing the selected polygon ----------------------------------------------------------

function applyRings(studio, uid, rings) {
  const kept = rings.filter((ring) => ring.length >= 6);
  if (!kept.length) studio.remove(uid);
  else studio.update(uid, { segmentation: kept, bbox: ringsBox(kept) });
}

function deleteVertex(studio, vertex) {
  const annotation = studio.annotations.get(vertex.uid);
  if (!annotation || !isPolygon(annotation)) return false;
  const rings = annotation.segmentation.map((ring) => ring.slice());
  rings[vertex.ring].splice(2 * vertex.index, 2);
  state.vertex = null;
  applyRings(studio, vertex.uid, rings); // a ring left with two vertices goes, and so on
  return true;
}

function showDrag(studio) {
  const rings = state.drag.rings;
  studio.preview(state.drag.uid, { segmentation: rings, bbox: ringsBox(rings) });
}

function setCursor(studio, cursor) {
  if (cursor) {
    studio.container.style.cursor = cursor;
    state.hover = true;
  } else if (state.hover) {
    studio.container.style.cursor = "crosshair";
    state.hover = false;
  }
}

export default {
  name: "polygon",
  key: "p",
  words: "tool-polygon",
  cursor: "crosshair",
  shortcuts: [
    { key: "Enter", words: "close-polygon" },
    { key: "Esc", words: "cancel-polygon" },
    { key: "Backspace", words: "undo-vertex" },
    { key: "Alt+click", words: "delete-vertex" },
    { key: "Delete", words: "delete-vertex" },
    { key: "Shift+click", words: "polygon-inside" },
  ],

  draws: isPolygon,

  /** Inside one of its rings, or within reach of an edge. */
  hit(studio, annotation, point) {
    const rings = annotation.segmentation;
    if (rings.some((ring) => inside(ring, point.x, point.y))) return true;
    const distance = REACH / (studio.scale || 1);
    return rings.some((ring) => nearEdge(ring, point, distance));
  },

  /** Every plain polygon at once: one path per class colour, only those in view. */
  paint(context, studio, annotations) {
    const view = studio.visibleRect();
    const byColour = new Map();
    for (const annotation of annotations) {
      const box = annotation.bbox;
      const outside = box && (box[0] > view.right || box[1] > view.bottom || box[0] + box[2] < view.x);
      if (outside || (box && box[1] + box[3] < view.y)) continue;
      const colour = studio.color(annotation.category);
      if (!byColour.has(colour)) byColour.set(colour, []);
      byColour.get(colour).push(annotation.segmentation);
    }
    // A 1-pixel outline is Skia's fast hairline path: 300 polygons of 50 points rasterise in
    // 9–15 ms instead of 39–57 ms at 1.5 px (benchmarks/studio_bench.py, software drawing).
    context.lineWidth = 1 / studio.scale;
    context.lineJoin = "round";
    for (const [colour, shapes] of byColour) {
      context.beginPath();
      for (const rings of shapes) {
        for (const ring of rings) {
          if (!Array.isArray(ring) || ring.length < 6) continue;
          // every ring the same way round: overlapping ones fill once (nonzero rule), none cancels
          const n = ring.length / 2;
          const forward = signedArea(ring) >= 0;
          for (let k = 0; k < n; k += 1) {
            const i = 2 * (forward ? k : n - 1 - k);
            if (k === 0) context.moveTo(ring[i], ring[i + 1]);
            else context.lineTo(ring[i], ring[i + 1]);
          }
          context.closePath();
        }
      }
      context.fillStyle = rgba(colour, 0.2);
      context.fill();
      context.strokeStyle = colour;
      context.stroke();
    }
  },

  render(studio, annotation, group) {
    const colour = studio.color(annotation.category);
    const selected = studio.selected === annotation.uid;
    const rings = annotation.segmentation.filter((ring) => Array.isArray(ring) && ring.length >= 6);
    group.add(...rings.map((ring) => lineFor(ring, colour, selected)));
    if (selected && studio.editable) group.add(handles({ uid: annotation.uid, rings }, colour));
  },

  /** A second finger came down (a pinch): the first one's tap was no vertex. */
  cancel(studio) {
    const d = state.drawing;
    if (d && performance.now() - d.lastAt < DOUBLE_MS) {
      d.points.splice(-2, 2);
      if (!d.points.length) cancelDrawing(studio);
      else showDrawing(studio, null);
    }
    if (state.drag) {
      studio.preview(state.drag.uid, null);
      state.drag = null;
    }
  },

  pointerleave(studio) {
    if (state.drawing) showDrawing(studio, null);
  },

  activate(studio) {
    state.vertex = null;
  },

  deactivate(studio) {
    cancelDrawing(studio);
    if (state.drag) studio.preview(state.drag.uid, null);
    state.drag = null;
    state.vertex = null;
    setCursor(studio, null);
    redrawLayer(studio);
  },

  pointerdown(studio, point, event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    const p = clamp(studio, point);
    if (state.drawing) {
      addVertex(studio, p, event);
      return;
    }
    const distance = reach(studio, event);
    const selected = selectedPolygon(studio);
    if (selected && !event.shiftKey) {
      const rings = selected.segmentation.map((ring) => ring.slice());
      const vertex = nearestVertex(rings, p, distance);
      if (vertex) {
        const chosen = { uid: selected.uid, ring: vertex.ring, index: vertex.index };
        if (event.altKey) {
          deleteVertex(studio, chosen);
          return;
        }
        state.vertex = chosen;
        state.drag = { uid: selected.uid, rings, ring: vertex.ring, index: vertex.index, moved: false };
        redrawLayer(studio);
        return;
      }
      const middle = nearestMidpoint(rings, p, distance);
      if (middle) {
        rings[middle.ring].splice(2 * middle.index + 2, 0, round(middle.x), round(middle.y));
        state.vertex = { uid: selected.uid, ring: middle.ring, index: middle.index + 1 };
        state.drag = { uid: selected.uid, rings, ring: middle.ring, index: middle.index + 1, moved: true };
        showDrag(studio);
        return;
      }
    }
    const hit = event.shiftKey ? null : polygonAt(studio, p);
    if (hit) {
      state.vertex = null;
      if (hit !== studio.selected) studio.select(hit);
      const annotation = studio.annotations.get(hit);
      const rings = annotation.segmentation.map((ring) => ring.slice());
      const origin = rings.map((ring) => ring.slice());
      state.drag = { uid: hit, rings, ring: -1, index: -1, from: p, origin, moved: false };
      return;
    }
    state.vertex = null;
    if (studio.selected) studio.select(null);
    startDrawing(studio, p);
  },

  pointermove(studio, point, event) {
    const p = clamp(studio, point);
    const drag = state.drag;
    if (drag) {
      if (drag.index >= 0) {
        drag.rings[drag.ring][2 * drag.index] = p.x;
        drag.rings[drag.ring][2 * drag.index + 1] = p.y;
      } else {
        // the whole polygon, kept inside the image
        const box = ringsBox(drag.origin);
        const { width, height } = studio.image;
        const dx = Math.min(Math.max(p.x - drag.from.x, -box[0]), width - box[0] - box[2]);
        const dy = Math.min(Math.max(p.y - drag.from.y, -box[1]), height - box[1] - box[3]);
        if (!drag.moved && Math.hypot(dx, dy) * (studio.scale || 1) < 3) return; // a click, not a drag
        drag.rings = drag.origin.map((ring) => ring.map((v, i) => round(v + (i % 2 ? dy : dx))));
      }
      drag.moved = true;
      showDrag(studio);
      return;
    }
    if (state.drawing) {
      const d = state.drawing;
      const first = Math.hypot(p.x - d.points[0], p.y - d.points[1]);
      d.closing = d.points.length >= 6 && first <= reach(studio, event); // a click here closes it
      setCursor(studio, d.closing ? "pointer" : null);
      showDrawing(studio, p);
      return;
    }
    const selected = selectedPolygon(studio);
    if (selected) {
      const distance = reach(studio, event);
      const rings = selected.segmentation;
      const near = nearestVertex(rings, p, distance) || nearestMidpoint(rings, p, distance);
      setCursor(studio, near ? "pointer" : null);
    }
  },

  pointerup(studio) {
    const drag = state.drag;
    state.drag = null;
    if (drag && drag.moved) applyRings(studio, drag.uid, drag.rings);
  },

  keydown(studio, event) {
    const key = event.key;
    if (state.drawing) {
      if (key === "Enter") return closeDrawing(studio) || true;
      if (key === "Escape") {
        cancelDrawing(studio);
        return true;
      }
      if (key === "Backspace" || key === "Delete") {
        state.drawing.points.splice(-2, 2);
        if (!state.drawing.points.length) cancelDrawing(studio);
        else showDrawing(studio, null);
        return true;
      }
      return false;
    }
    if (state.vertex && (key === "Delete" || key === "Backspace")) return deleteVertex(studio, state.vertex);
    if (state.vertex && key === "Escape") {
      state.vertex = null;
      redrawLayer(studio);
      return true;
    }
    return false;
  },
};
