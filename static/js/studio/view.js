/* Zoom and pan of the studio's stage, and the pointers that drive them.

   Wheel (or a trackpad pinch, which arrives as a wheel with ctrlKey) zooms about the cursor;
   space + drag, the middle button, or two fingers pan; two fingers also pinch-zoom. Every
   other pointer goes to the active tool in image pixels. */

const MIN_SCALE = 0.02;
const MAX_SCALE = 64;

export class View {
  constructor(studio) {
    this.studio = studio;
    this.stage = studio.stage;
    this.touches = new Map(); // pointerId → {x, y} screen points of the fingers down
    this.pan = null; // {x, y} the last screen point of a pan drag
    this.pinch = null; // {distance, mid}
    this.space = false;
    this.last = null; // the last screen point over the canvas (keys zoom about it)
    this.wheeled = -Infinity; // when the last wheel event came (a wheel zoom is a gesture)
  }

  /** Whether the view is moving under a pan, a pinch or a wheel (studio._moveDrawn). */
  inGesture() {
    return Boolean(this.pan || this.pinch) || performance.now() - this.wheeled < 30;
  }

  get scale() {
    return this.stage.scaleX();
  }

  /** A screen point (relative to the container) in image pixels. */
  toImage(screen) {
    const s = this.scale;
    return { x: (screen.x - this.stage.x()) / s, y: (screen.y - this.stage.y()) / s };
  }

  screenOf(event) {
    const rect = this.stage.container().getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  set(scale, x, y) {
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
    this.stage.scale({ x: s, y: s });
    this.stage.position({ x, y });
    this.studio._viewChanged();
  }

  zoomAt(screen, factor) {
    const before = this.toImage(screen);
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    this.set(s, screen.x - before.x * s, screen.y - before.y * s);
  }

  zoomKey(factor) {
    const centre = this.last || { x: this.stage.width() / 2, y: this.stage.height() / 2 };
    this.zoomAt(centre, factor);
  }

  panBy(dx, dy) {
    this.set(this.scale, this.stage.x() + dx, this.stage.y() + dy);
  }

  /** The whole image in view, centred, with a small margin. */
  fit() {
    const { width, height } = this.studio.image;
    if (!width || !height) return;
    const w = this.stage.width();
    const h = this.stage.height();
    const s = Math.min((w - 24) / width, (h - 24) / height);
    this.set(s, (w - width * s) / 2, (h - height * s) / 2);
  }

  wheel(event) {
    event.preventDefault();
    this.wheeled = performance.now();
    const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
    const dy = event.deltaY * unit;
    const screen = this.screenOf(event);
    this.last = screen;
    if (event.shiftKey && !event.ctrlKey) return this.panBy(-dy, 0);
    this.zoomAt(screen, Math.exp(-dy * (event.ctrlKey ? 0.01 : 0.0015)));
  }

  /** Returns true when the pointer starts a pan or a pinch (the tool does not see it). */
  down(event) {
    const screen = this.screenOf(event);
    if (event.pointerType === "touch") {
      this.touches.set(event.pointerId, screen);
      if (this.touches.size === 2) {
        this.studio._cancelGesture();
        this.pinch = this._pinchState();
        return true;
      }
      if (this.touches.size > 2) return true;
    }
    if (event.button === 1 || (event.button === 0 && this.space)) {
      this.pan = screen;
      this.stage.container().classList.add("panning");
      return true;
    }
    return false;
  }

  /** Returns true when the move belonged to a pan or pinch. */
  move(event) {
    const screen = this.screenOf(event);
    this.last = screen;
    if (event.pointerType === "touch" && this.touches.has(event.pointerId)) {
      this.touches.set(event.pointerId, screen);
      if (this.pinch && this.touches.size === 2) {
        const now = this._pinchState();
        const s = this.scale * (now.distance / (this.pinch.distance || 1));
        const anchor = this.toImage(this.pinch.mid);
        const clamped = Math.min(MAX_SCALE, Math.max(MIN_SCALE, s));
        this.set(clamped, now.mid.x - anchor.x * clamped, now.mid.y - anchor.y * clamped);
        this.pinch = now;
        return true;
      }
    }
    if (this.pan) {
      this.panBy(screen.x - this.pan.x, screen.y - this.pan.y);
      this.pan = screen;
      return true;
    }
    return Boolean(this.pinch);
  }

  /** Returns true when the pointer ended a pan or pinch. */
  up(event) {
    let ours = false;
    if (event.pointerType === "touch") {
      this.touches.delete(event.pointerId);
      if (this.pinch) {
        ours = true;
        if (this.touches.size < 2) this.pinch = this.touches.size ? this.pinch : null;
        if (!this.touches.size) this.pinch = null;
      }
    }
    if (this.pan) {
      this.pan = null;
      this.stage.container().classList.remove("panning");
      ours = true;
    }
    return ours;
  }

  _pinchState() {
    const [a, b] = [...this.touches.values()];
    return {
      distance: Math.hypot(a.x - b.x, a.y - b.y),
      mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 },
    };
  }
}
