// COCO compressed RLE, as pycocotools writes and reads it (maskApi.c: rleEncode, rleToString,
// rleFrString, rleDecode). A mask here is a Uint8Array of 0/1 in COCO's own order, down the
// columns (Fortran order: index x * height + y), so that encoding and decoding are one linear
// pass even at 4000×3000; the runs start with background.
//
// The counts text: each run length is written in 5-bit chunks, low first, as characters from
// "0" (48); a chunk with 0x20 set continues the number, 0x10 in the last chunk makes it
// negative; from the fourth run on, what is written is the difference from the run two places
// before (runs of the same value are alike, so the differences are small).

const MAX_DIGITS = 7; // 5-bit chunks of one number: 35 bits, far past any image's pixels

/** The run lengths of a column-major mask, starting with a run of 0s (maybe empty). */
export function maskToRuns(mask) {
  const runs = [];
  let value = 0;
  let from = 0;
  for (;;) {
    const next = mask.indexOf(value ^ 1, from); // native search: fast on 12 million pixels
    if (next < 0) break;
    runs.push(next - from);
    from = next;
    value ^= 1;
  }
  runs.push(mask.length - from);
  return runs;
}

/** Run lengths written as pycocotools' counts text (rleToString). */
export function runsToString(runs) {
  const out = [];
  for (let i = 0; i < runs.length; i += 1) {
    let x = runs[i];
    if (i > 2) x -= runs[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f; // x fits in 32 bits: runs are at most the pixels of one image
      x >>= 5; // arithmetic shift: a negative difference stays negative
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out.push(String.fromCharCode(c + 48));
    }
  }
  return out.join("");
}

/** The run lengths in counts text (rleFrString); null when the text is not such counts. */
export function stringToRuns(text) {
  const runs = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      if (p >= text.length || k >= MAX_DIGITS || c < 0 || c > 63) return null;
      x += (c & 0x1f) * 2 ** (5 * k); // no bit operators: they stop at 32 bits
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // the sign: every bit above set
    }
    if (runs.length > 2) x += runs[runs.length - 2];
    runs.push(x);
  }
  return runs;
}

/** COCO counts text of a column-major 0/1 mask. */
export function encodeMask(mask) {
  return runsToString(maskToRuns(mask));
}

/**
 * The column-major 0/1 mask of (height, width) that counts text describes; null when it is
 * malformed (not counts, a negative run, or runs that do not cover exactly the mask's pixels).
 */
export function decodeMask(text, height, width) {
  const runs = stringToRuns(String(text));
  if (!runs) return null;
  const total = height * width;
  const mask = new Uint8Array(total);
  let start = 0;
  let value = 0;
  for (const run of runs) {
    if (!Number.isInteger(run) || run < 0 || start + run > total) return null;
    if (value) mask.fill(1, start, start + run);
    start += run;
    value ^= 1;
  }
  return start === total ? mask : null;
}

/**
 * {bbox: [x, y, w, h], area} of the pixels that run lengths cover in an image `height` pixels
 * tall (pycocotools' toBbox and area); null when they cover none.
 */
export function runsBox(runs, height) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  let area = 0;
  let start = 0;
  for (let i = 0; i < runs.length; i += 1) {
    const run = runs[i];
    if (i % 2 === 1 && run > 0) {
      const end = start + run - 1; // the run's last pixel
      const left = Math.floor(start / height);
      const right = Math.floor(end / height);
      x0 = Math.min(x0, left);
      x1 = Math.max(x1, right);
      if (left === right) {
        y0 = Math.min(y0, start % height);
        y1 = Math.max(y1, end % height);
      } else {
        y0 = 0; // the run wraps into the next column: every row is covered somewhere
        y1 = height - 1;
      }
      area += run;
    }
    start += run;
  }
  if (area === 0) return null;
  return { bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1], area };
}

/** {counts, bbox, area} of a column-major mask of (height, width); bbox null when empty. */
export function encodeWithBox(mask, height) {
  const runs = maskToRuns(mask);
  const box = runsBox(runs, height);
  return { counts: runsToString(runs), bbox: box ? box.bbox : null, area: box ? box.area : 0 };
}
