// Try it for a segmentation model: static/js/try_it.js posts the photo and hands the answer
// ({width, height, size: [h, w], classes: [{index, name, share}], masks: {"<channel>": RLE
// counts}}) to ManabiTry.segmentation, which decodes each class's COCO compressed RLE, paints
// the classes' colours on a canvas of the mask's size (stretched over the photo by CSS), and
// lists the classes found with their share of the image. An opacity slider sets how strongly
// the mask covers the photo.
import { PALETTE } from "./charts.js";
import { stringToRuns } from "./studio/rle.js"; // pycocotools' rleFrString, one copy

const MAX_SIDE = 4096; // a mask larger than this is no answer of the trainer's

/**
 * A (height, width) 0/1 mask in row-major order (a canvas's) from RLE counts text, whose runs
 * go down the columns (Fortran order) starting with background; null when malformed (a
 * negative run, or runs that do not cover exactly the mask's pixels).
 */
export function decodeRle(text, height, width) {
  const counts = stringToRuns(String(text));
  if (!counts) return null;
  const total = height * width;
  const mask = new Uint8Array(total);
  let start = 0;
  let value = 0;
  for (const run of counts) {
    if (!Number.isInteger(run) || run < 0 || start + run > total) return null;
    if (value) {
      for (let j = start; j < start + run; j += 1) mask[(j % height) * width + Math.floor(j / height)] = 1;
    }
    start += run;
    value ^= 1;
  }
  return start === total ? mask : null;
}

const colour = (channel) => PALETTE[(channel - 1) % PALETTE.length]; // channel i + 1 is class i
const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

function setOpacity(form) {
  const slider = form.querySelector("input[data-try-opacity]");
  if (!slider) return;
  const value = Number(slider.value);
  form.querySelector(".try-opacity-value").textContent = value.toFixed(2);
  form.querySelector(".try-mask").style.opacity = String(value);
}

function swatch(hex) {
  const mark = document.createElement("span");
  mark.className = "det-swatch";
  mark.style.setProperty("--swatch", hex);
  mark.setAttribute("aria-hidden", "true");
  return mark;
}

/** Paint the answer's masks on the form's canvas; the pixels each channel got, by channel. */
function paint(form, answer) {
  const [height, width] = Array.isArray(answer.size) ? answer.size : [];
  const canvas = form.querySelector(".try-mask");
  const painted = {};
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0 && height <= MAX_SIDE && width <= MAX_SIDE)) {
    canvas.hidden = true;
    return painted;
  }
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height); // (H, W, 4), clear
  for (const [key, counts] of Object.entries(answer.masks || {})) {
    const channel = Number(key);
    const mask = Number.isInteger(channel) && channel > 0 ? decodeRle(counts, height, width) : null;
    if (!mask) continue; // a malformed class is left out, the others drawn
    const [r, g, b] = rgb(colour(channel));
    let pixels = 0;
    for (let i = 0; i < mask.length; i += 1) {
      if (!mask[i]) continue;
      image.data.set([r, g, b, 255], 4 * i);
      pixels += 1;
    }
    painted[channel] = pixels;
  }
  context.putImageData(image, 0, 0);
  canvas.hidden = false;
  return painted;
}

/** Draw a segmentation answer: the mask over the photo and the classes found, largest first. */
function showMasks(form, answer) {
  const painted = paint(form, answer);
  const legend = form.querySelector(".try-legend");
  const found = (answer.classes || [])
    .filter((c) => Number.isInteger(c.index) && c.index > 0)
    .sort((a, b) => b.share - a.share);
  legend.replaceChildren(
    ...found.map(({ index, name, share }) => {
      const item = document.createElement("li");
      item.dataset.channel = String(index);
      item.dataset.share = String(share);
      item.dataset.pixels = String(painted[index] ?? 0);
      item.append(swatch(colour(index)), `${name} ${(100 * share).toFixed(1)}%`);
      return item;
    }),
  );
  if (!found.length) {
    const item = document.createElement("li");
    item.className = "muted";
    item.textContent = legend.dataset.none;
    legend.append(item);
  }
  setOpacity(form);
}

// A new photo's mask is not the last one's: clear it as soon as another is chosen or sent.
function clear(form) {
  if (!form || !form.querySelector(".try-mask")) return;
  form.querySelector(".try-mask").hidden = true;
  form.querySelector(".try-legend").replaceChildren();
}

document.addEventListener("input", (event) => {
  if (event.target.matches("input[data-try-opacity]")) setOpacity(event.target.closest("form[data-try]"));
});
document.addEventListener("change", (event) => {
  if (event.target.type === "file") clear(event.target.closest("form[data-try]"));
});
document.addEventListener("click", (event) => {
  const shoot = event.target.closest("[data-camera=shoot]");
  if (shoot) clear(shoot.closest("form[data-try]"));
});

window.ManabiTry = window.ManabiTry || {};
window.ManabiTry.segmentation = (form, answer) => showMasks(form, answer);
