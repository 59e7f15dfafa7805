// The keypoint tool: the class's keypoint names and skeleton (the page's categories), placed in
// order with the next name shown by the cursor and in the side panel. `v` switches the next
// point between visible (2) and occluded (1), `n` skips it (absent, 0), Backspace steps back,
// Enter finishes early (the rest absent), Esc cancels. The skeleton is drawn live while placing.
// A finished person is one annotation: `keypoints: [x1, y1, v1, ...]` (COCO) with a bbox around
// its placed points. Points of a person already there are dragged to move them; a chosen point
// (click it, or its name in the panel) switches visibility with `v`, becomes absent with Delete,
// and, when absent, is placed again by the next click.

const POINT = 4.5; // a point's radius, screen pixels
const REACH = 9; // how far from a point a click may land, screen pixels (touch: twice that)

const state = {
  placing: null, // {category, names, skeleton, points: [x, y, v, ...], next, shape, label}
  visibility: 2, // what the next point placed gets: 2 visible, 1 occluded
  drag: null, // {uid, index, points, moved}
  point: null, // {uid, index}: the chosen point of a person already there
  cursor: null, // the last pointer position (image pixels)
  panel: null,
  studio: null,
  off: null, // unsubscribes from the studio's events
};

const konva = () => window.Konva;
const round = (v) => Math.round(v * 100) / 100;

export function isPose(annotation) {
  return Array.isArray(annotation && annotation.keypoints) && annotation.keypoints.length >= 3;
}

/** {names, skeleton} of a class (1-based skeleton pairs, as in COCO). */
export function schemaOf(studio, index) {
  const categories = studio.categories || [];
  const category = categories.find((c) => c.index === index);
  return {
    names: (category && category.keypoints) || [],
    skeleton: ((category && category.skeleton) || []).filter((p) => Array.isArray(p) && p.length === 2),
  };
}

/** [x, y, w, h] around the placed points (v > 0); null when none is placed. */
export function poseBox(points) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i + 2 < points.length; i += 3) {
    if (points[i + 2] > 0) {
      x0 = Math.min(x0, points[i]);
      x1 = Math.max(x1, points[i]);
      y0 = Math.min(y0, points[i + 1]);
      y1 = Math.max(y1, points[i + 1]);
    }
  }
  if (x0 === Infinity) return null;
  // at least a pixel wide and tall: one point, or points in a line, still make a box
  return [round(x0), round(y0), round(Math.max(x1 - x0, 1)), round(Math.max(y1 - y0, 1))];
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

/**
 * Draw a pose on a Konva context at screen size s: the skeleton's lines (dashed where a point is
 * occluded), points filled when visible and hollow when occluded, and lines from the placed
 * neighbours of `next` to the cursor while placing.
 */
function drawPose(ctx, s, pose) {
  const { points, skeleton, colour, chosen, next, cursor, names, proposal } = pose;
  const at = (k) => (points[3 * k + 2] > 0 ? [points[3 * k], points[3 * k + 1], points[3 * k + 2]] : null);
  ctx.setAttr("lineWidth", 2 / s);
  ctx.setAttr("strokeStyle", colour);
  for (const [a, b] of skeleton) {
    const pa = at(a - 1);
    const pb = at(b - 1);
    if (!pa || !pb) continue;
    ctx.setLineDash(proposal || pa[2] === 1 || pb[2] === 1 ? [5 / s, 4 / s] : []); // a model's: dashed
    ctx.beginPath();
    ctx.moveTo(pa[0], pa[1]);
    ctx.lineTo(pb[0], pb[1]);
    ctx.stroke();
  }
  if (cursor && next !== null) {
    ctx.setLineDash([3 / s, 3 / s]);
    ctx.setAttr("lineWidth", 1.5 / s);
    for (const [a, b] of skeleton) {
      const other = a - 1 === next ? b - 1 : b - 1 === next ? a - 1 : null;
      const p = other === null ? null : at(other);
      if (!p) continue;
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
      ctx.lineTo(cursor.x, cursor.y);
      ctx.stroke();
    }
  }
  ctx.setLineDash([]);
  ctx.setAttr("lineWidth", 1.5 / s);
  const count = points.length / 3;
  for (let k = 0; k < count; k += 1) {
    const p = at(k);
    if (!p) continue;
    const big = chosen === k;
    ctx.beginPath();
    ctx.arc(p[0], p[1], ((big ? 1.6 : 1) * POINT) / s, 0, Math.PI * 2);
    ctx.setAttr("fillStyle", p[2] === 2 ? colour : "#ffffff");
    ctx.setAttr("strokeStyle", p[2] === 2 ? "#ffffff" : colour);
    ctx.fill();
    ctx.stroke();
    if (names && names[k]) {
      ctx.setAttr("font", `${12 / s}px sans-serif`);
      ctx.setAttr("fillStyle", "#ffffff");
      ctx.setAttr("strokeStyle", "rgba(0, 0, 0, 0.8)");
      ctx.setAttr("lineWidth", 3 / s);
      ctx.strokeText(names[k], p[0] + 7 / s, p[1] - 6 / s);
      ctx.fillText(names[k], p[0] + 7 / s, p[1] - 6 / s);
      ctx.setAttr("lineWidth", 1.5 / s);
    }
  }
}

function poseShape(pose) {
  return new (konva().Shape)({
    listening: false,
    perfectDrawEnabled: false,
    sceneFunc(ctx, shape) {
      drawPose(ctx, shape.getAbsoluteScale().x || 1, typeof pose === "function" ? pose() : pose);
    },
  });
}

/** The nearest placed point of any person within reach: {uid, index}, the selected first. */
function pointAt(studio, p, distance) {
  let best = null;
  for (const annotation of studio.annotations.values()) {
    if (!isPose(annotation)) continue;
    const points = annotation.keypoints;
    for (let k = 0; k * 3 + 2 < points.length; k += 1) {
      if (!(points[3 * k + 2] > 0)) continue;
      let d = Math.hypot(points[3 * k] - p.x, points[3 * k + 1] - p.y);
      if (d > distance) continue;
      if (annotation.uid === studio.selected) d -= distance; // the selected person's points win
      if (!best || d < best.d) best = { uid: annotation.uid, index: k, d };
    }
  }
  return best && { uid: best.uid, index: best.index };
}

// --- the side panel ---------------------------------------------------------------------------

const VISIBILITY = { 0: "kp-absent-state", 1: "kp-occluded", 2: "kp-visible" };
const format = (text, name) => String(text).replace("%(name)s", name);

function showPanel(studio) {
  const panel = state.panel;
  if (!panel) return;
  panel.hidden = false;
  const placing = state.placing;
  const selected = !placing && studio.selected ? studio.annotations.get(studio.selected) : null;
  const pose = selected && isPose(selected) ? selected : null;
  const category = placing ? placing.category : pose ? pose.category : studio.category;
  const { names } = schemaOf(studio, category);
  const points = placing ? placing.points : pose ? pose.keypoints : null;
  const next = placing ? placing.next : null;
  const list = panel.querySelector("[data-keypoint-list]");
  const status = panel.querySelector("[data-keypoint-next]");
  panel.querySelector("[data-keypoint-none]").hidden = names.length > 0;
  list.replaceChildren(
    ...names.map((name, k) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "kp-name";
      button.dataset.keypoint = String(k);
      const v = points && (k < (next ?? Infinity) || !placing) ? points[3 * k + 2] : null;
      const label = document.createElement("span");
      label.textContent = name;
      const mark = document.createElement("span");
      mark.className = "kp-state";
      mark.textContent = v === null || v === undefined ? "" : studio.words[VISIBILITY[v] || VISIBILITY[0]];
      button.append(label, " ", mark);
      if (v !== null && v !== undefined) button.dataset.visibility = String(v);
      if (k === next) button.setAttribute("aria-current", "step");
      const chosen = state.point && pose && state.point.uid === pose.uid && state.point.index === k;
      button.setAttribute("aria-pressed", String(Boolean(chosen)));
      button.disabled = !pose;
      item.append(button);
      return item;
    }),
  );
  if (placing && next < names.length) {
    const word = state.visibility === 1 ? ` (${studio.words["kp-occluded"]})` : "";
    status.textContent = format(studio.words["kp-next"], names[next]) + word;
  } else status.textContent = names.length && !pose ? format(studio.words["kp-start"], names[0]) : "";
}

function bindPanel(studio) {
  const panel = document.querySelector("[data-keypoints-panel]");
  if (!panel) return null;
  if (!panel.dataset.bound) {
    panel.dataset.bound = "1";
    panel.addEventListener("click", (event) => {
      const button = event.target.closest("[data-keypoint]");
      const studio = state.studio;
      if (!button || !studio || !studio.selected) return;
      state.point = { uid: studio.selected, index: Number(button.dataset.keypoint) };
      studio.redraw(studio.selected);
      showPanel(studio);
    });
  }
  return panel;
}

// --- placing a new person ---------------------------------------------------------------------

function startPlacing(studio) {
  const { names, skeleton } = schemaOf(studio, studio.category);
  if (!names.length) {
    showPanel(studio);
    return false;
  }
  const K = konva();
  const placing = {
    category: studio.category,
    names,
    skeleton,
    points: new Array(names.length * 3).fill(0),
    next: 0,
  };
  const colour = studio.color(studio.category);
  placing.shape = poseShape(() => ({
    points: placing.points,
    skeleton,
    colour,
    chosen: null,
    next: placing.next,
    cursor: state.cursor,
  }));
  placing.label = new K.Label({ listening: false, visible: false, offsetX: -14, offsetY: 26 });
  placing.label.add(new K.Tag({ fill: "rgba(0, 0, 0, 0.75)", cornerRadius: 3 }));
  placing.label.add(new K.Text({ text: "", fontSize: 13, padding: 4, fill: "#ffffff" }));
  studio.overlay.add(placing.shape, studio.fixedSize(placing.label));
  state.placing = placing;
  if (studio.selected) studio.select(null);
  state.point = null;
  return true;
}

function showPlacing(studio) {
  const placing = state.placing;
  if (!placing) return;
  const label = placing.label;
  if (state.cursor && placing.next < placing.names.length) {
    const occluded = state.visibility === 1 ? ` (${studio.words["kp-occluded"]})` : "";
    label.getText().text(`${placing.next + 1}. ${placing.names[placing.next]}${occluded}`);
    label.position(state.cursor);
    label.visible(true);
  } else label.visible(false);
  studio.overlay.batchDraw();
  showPanel(studio);
}

function stopPlacing(studio) {
  const placing = state.placing;
  if (!placing) return;
  placing.shape.destroy();
  placing.label.destroy();
  state.placing = null;
  state.visibility = 2;
  studio.overlay.batchDraw();
  showPanel(studio);
}

function finishPlacing(studio) {
  const placing = state.placing;
  if (!placing) return;
  const points = placing.points.slice();
  stopPlacing(studio);
  const bbox = poseBox(points);
  if (!bbox) return; // every point absent: nobody was placed
  const fields = { category: placing.category, keypoints: points, bbox, segmentation: null };
  const uid = studio.add({ ...fields, iscrowd: false });
  if (uid) studio.select(uid);
  showPanel(studio);
}

/** Give the next point a place (or none: absent) and move on; the last one finishes. */
function advance(studio, point) {
  const placing = state.placing;
  const k = placing.next;
  if (point) placing.points.splice(3 * k, 3, point.x, point.y, state.visibility);
  else placing.points.splice(3 * k, 3, 0, 0, 0);
  placing.next += 1;
  state.visibility = 2;
  if (placing.next >= placing.names.length) finishPlacing(studio);
  else showPlacing(studio);
}

// --- a person already there -------------------------------------------------------------------

function setPoint(studio, uid, index, values) {
  const annotation = studio.annotations.get(uid);
  if (!annotation) return;
  const points = annotation.keypoints.slice();
  points.splice(3 * index, 3, ...values);
  const bbox = poseBox(points);
  if (!bbox) {
    state.point = null;
    studio.remove(uid);
  } else studio.update(uid, { keypoints: points, bbox });
  showPanel(studio);
}

export default {
  name: "keypoints",
  key: "k",
  words: "tool-keypoints",
  cursor: "crosshair",
  shortcuts: [
    { key: "v", words: "kp-visibility" },
    { key: "n", words: "kp-skip" },
    { key: "Backspace", words: "kp-back" },
    { key: "Enter", words: "kp-finish" },
    { key: "Delete", words: "kp-absent" },
  ],

  draws: isPose,

  hit(studio, annotation, point) {
    const distance = REACH / (studio.scale || 1);
    const points = annotation.keypoints;
    for (let i = 0; i + 2 < points.length; i += 3) {
      const d = Math.hypot(points[i] - point.x, points[i + 1] - point.y);
      if (points[i + 2] > 0 && d <= distance) return true;
    }
    const box = annotation.bbox;
    if (!box) return false;
    return point.x >= box[0] && point.y >= box[1] && point.x <= box[0] + box[2] && point.y <= box[1] + box[3];
  },

  render(studio, annotation, group) {
    const selected = studio.selected === annotation.uid;
    const { names, skeleton } = schemaOf(studio, annotation.category);
    const chosen = state.point && state.point.uid === annotation.uid ? state.point.index : null;
    group.add(
      poseShape({
        points: annotation.keypoints,
        skeleton,
        colour: studio.color(annotation.category),
        chosen,
        next: null,
        names: selected ? names : null,
        proposal: Boolean(annotation.proposal),
      }),
    );
  },

  activate(studio) {
    state.studio = studio;
    state.panel = bindPanel(studio);
    state.off = [
      studio.on("select", () => {
        if (state.point && state.point.uid !== studio.selected) state.point = null;
        showPanel(studio);
      }),
      studio.on("change", () => showPanel(studio)),
    ];
    showPanel(studio);
  },

  deactivate(studio) {
    stopPlacing(studio);
    if (state.drag) studio.preview(state.drag.uid, null);
    state.drag = null;
    state.point = null;
    for (const off of state.off || []) off();
    state.off = null;
    if (state.panel) state.panel.hidden = true;
  },

  pointerdown(studio, point, event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    const p = clamp(studio, point);
    state.cursor = p;
    if (state.placing) {
      advance(studio, p);
      return;
    }
    const hit = pointAt(studio, p, reach(studio, event));
    if (hit) {
      if (hit.uid !== studio.selected) studio.select(hit.uid);
      state.point = hit;
      const points = studio.annotations.get(hit.uid).keypoints.slice();
      state.drag = { uid: hit.uid, index: hit.index, points, from: p, moved: false };
      studio.redraw(hit.uid);
      showPanel(studio);
      return;
    }
    const chosen = state.point && studio.annotations.get(state.point.uid);
    if (chosen && !(chosen.keypoints[3 * state.point.index + 2] > 0)) {
      // the chosen point is absent: this click gives it a place
      setPoint(studio, chosen.uid, state.point.index, [p.x, p.y, state.visibility]);
      state.visibility = 2;
      return;
    }
    if (startPlacing(studio)) advance(studio, p);
  },

  pointermove(studio, point) {
    const p = clamp(studio, point);
    state.cursor = p;
    const drag = state.drag;
    if (drag) {
      if (!drag.moved && Math.hypot(p.x - drag.from.x, p.y - drag.from.y) * (studio.scale || 1) < 2) return;
      drag.moved = true;
      drag.points[3 * drag.index] = p.x;
      drag.points[3 * drag.index + 1] = p.y;
      studio.preview(drag.uid, { keypoints: drag.points.slice(), bbox: poseBox(drag.points) });
      return;
    }
    if (state.placing) showPlacing(studio);
  },

  pointerup(studio) {
    const drag = state.drag;
    state.drag = null;
    if (drag && drag.moved) studio.update(drag.uid, { keypoints: drag.points, bbox: poseBox(drag.points) });
  },

  pointerleave(studio) {
    state.cursor = null;
    if (state.placing) showPlacing(studio);
  },

  /** A second finger came down: a point its first finger placed was the start of a pinch. */
  cancel(studio) {
    const placing = state.placing;
    if (placing && placing.next > 0) {
      placing.next -= 1;
      placing.points.splice(3 * placing.next, 3, 0, 0, 0);
      if (placing.next === 0) stopPlacing(studio);
      else showPlacing(studio);
    }
    if (state.drag) studio.preview(state.drag.uid, null);
    state.drag = null;
  },

  keydown(studio, event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return false;
    const key = event.key;
    const placing = state.placing;
    if (key === "v" || key === "V") {
      if (placing || !state.point) {
        state.visibility = state.visibility === 2 ? 1 : 2;
        if (placing) showPlacing(studio);
        else showPanel(studio);
        return true;
      }
      const annotation = studio.annotations.get(state.point.uid);
      if (!annotation) return false;
      const k = state.point.index;
      const points = annotation.keypoints;
      if (!(points[3 * k + 2] > 0)) {
        state.visibility = state.visibility === 2 ? 1 : 2; // for when it is placed
        showPanel(studio);
        return true;
      }
      const v = points[3 * k + 2] === 2 ? 1 : 2;
      setPoint(studio, annotation.uid, k, [points[3 * k], points[3 * k + 1], v]);
      return true;
    }
    if (key === "n" || key === "N") {
      if (!placing && !startPlacing(studio)) return true;
      advance(studio, null);
      return true;
    }
    if (placing) {
      if (key === "Enter") finishPlacing(studio);
      else if (key === "Escape") stopPlacing(studio);
      else if (key === "Backspace") {
        if (placing.next === 0) stopPlacing(studio);
        else {
          placing.next -= 1;
          placing.points.splice(3 * placing.next, 3, 0, 0, 0);
          showPlacing(studio);
        }
      } else return false;
      return true;
    }
    if (state.point && (key === "Delete" || key === "Backspace")) {
      setPoint(studio, state.point.uid, state.point.index, [0, 0, 0]);
      return true;
    }
    if (state.point && key === "Escape") {
      const uid = state.point.uid;
      state.point = null;
      studio.redraw(uid);
      showPanel(studio);
      return true;
    }
    return false;
  },
};
