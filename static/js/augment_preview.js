// The augmentation preview: a few of the dataset's own training images, each drawn with random
// values of the chosen settings by the same affine warp the trainer applies (trainer/data.py,
// Augment: theta maps output to input coordinates, edges repeat the border pixels).
const SIZE = 64; // pixels of each preview canvas
const DRAWS = 5; // random versions next to each original

function uniform(low, high) {
  return Math.random() * (high - low) + low;
}

/** A random 2×3 matrix (output → input, in -1…1 coordinates), as Augment draws one per image. */
export function randomTheta(s) {
  const angle = (uniform(-s.rotation, s.rotation) * Math.PI) / 180;
  const shear = uniform(-s.shear, s.shear);
  const zoom = uniform(1 - s.zoom, 1 + s.zoom);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const t = [
    [cos / zoom, (-sin + shear * cos) / zoom, 0],
    [sin / zoom, (cos + shear * sin) / zoom, 0],
  ];
  if (s.hflip && Math.random() < 0.5) {
    t[0][0] *= -1;
    t[1][0] *= -1;
  }
  if (s.vflip && Math.random() < 0.5) {
    t[0][1] *= -1;
    t[1][1] *= -1;
  }
  return t;
}

/** Warp RGBA pixels (SIZE×SIZE) by theta: bilinear, border padding (grid_sample's rule). */
function warp(source, target, t) {
  const src = source.data;
  const out = target.data;
  const pixel = (v) => Math.min(SIZE - 1, Math.max(0, ((v + 1) * SIZE - 1) / 2));
  for (let y = 0; y < SIZE; y++) {
    const yo = (2 * y + 1) / SIZE - 1;
    for (let x = 0; x < SIZE; x++) {
      const xo = (2 * x + 1) / SIZE - 1;
      const px = pixel(t[0][0] * xo + t[0][1] * yo + t[0][2]);
      const py = pixel(t[1][0] * xo + t[1][1] * yo + t[1][2]);
      const x0 = Math.floor(px);
      const y0 = Math.floor(py);
      const x1 = Math.min(SIZE - 1, x0 + 1);
      const y1 = Math.min(SIZE - 1, y0 + 1);
      const fx = px - x0;
      const fy = py - y0;
      const o = 4 * (y * SIZE + x);
      for (let c = 0; c < 4; c++) {
        const top = src[4 * (y0 * SIZE + x0) + c] * (1 - fx) + src[4 * (y0 * SIZE + x1) + c] * fx;
        const low = src[4 * (y1 * SIZE + x0) + c] * (1 - fx) + src[4 * (y1 * SIZE + x1) + c] * fx;
        out[o + c] = top * (1 - fy) + low * fy;
      }
    }
  }
}

function canvas(caption, original) {
  const figure = document.createElement("figure");
  if (original) figure.className = "original";
  const c = document.createElement("canvas");
  c.width = SIZE;
  c.height = SIZE;
  figure.append(c);
  if (caption) {
    const label = document.createElement("figcaption");
    label.textContent = caption;
    figure.append(label);
  }
  return { figure, context: c.getContext("2d", { willReadFrequently: true }) };
}

/** Draw the preview into `grid`; `settings()` gives {rotation, shear, zoom, hflip, vflip}. */
export function initAugmentPreview({ grid, urls, settings, text }) {
  const rows = [];
  for (const [i, url] of urls.entries()) {
    const image = new Image();
    const original = canvas(i === 0 ? text.original : "", true);
    const draws = Array.from({ length: DRAWS }, (_, k) =>
      canvas(i === 0 ? `${text.random} ${k + 1}` : "", false),
    );
    grid.append(original.figure, ...draws.map((d) => d.figure));
    const row = { image, original, draws, pixels: null };
    rows.push(row);
    image.addEventListener("load", () => {
      original.context.drawImage(image, 0, 0, SIZE, SIZE); // resized square, as the trainer does
      row.pixels = original.context.getImageData(0, 0, SIZE, SIZE);
      drawRow(row);
    });
    image.src = url;
  }

  function drawRow(row) {
    if (!row.pixels) return;
    const s = settings();
    for (const draw of row.draws) {
      const target = draw.context.createImageData(SIZE, SIZE);
      warp(row.pixels, target, randomTheta(s));
      draw.context.putImageData(target, 0, 0);
    }
  }

  return {
    redraw() {
      rows.forEach(drawRow);
    },
  };
}
