// The Train page: shows the pane of the chosen model source, checks every setting as it is typed
// (in the page's language), asks POST /api/v1/jobs/validate about the whole spec, keeps the
// transfer choices consistent with the model, and hosts the layer builder and the augmentation
// preview. The spec built here is the one the server builds from the same form (launch_form.py).
import { initAugmentPreview } from "./augment_preview.js";
import { initLayerBuilder } from "./layer_builder.js";

const config = JSON.parse(document.getElementById("train-config").textContent);
const text = config.text;
const form = document.getElementById("train-form");
const csrf = form.elements.csrfmiddlewaretoken.value;
const VALIDATE_MS = 500;
const fill = (template, values) =>
  template.replace(/%\((\w+)\)s/g, (_, key) => values[key]).replace(/%%/g, "%");
const field = (name) => form.elements[name];
const box = (name) => form.querySelector(`[data-field="${name}"]`);
const clientErrors = {};
let serverErrors = {};
for (const span of form.querySelectorAll("[data-error-for]")) {
  if (span.textContent.trim()) serverErrors[span.dataset.errorFor] = span.textContent.trim();
}

// --- the model ------------------------------------------------------------------------------
const modelSource = () => form.querySelector("[name=model_source]:checked")?.value || "preset";
const inputSize = () => {
  const value = Number(field("input_size").value);
  return field("input_size").value.trim() && Number.isInteger(value) ? value : null;
};
const builder = initLayerBuilder({
  config,
  csrf,
  input: field("layers"),
  active: () => modelSource() === "layers",
  sizeOf: inputSize,
  onChange: changed,
});

function currentModel() {
  const source = modelSource();
  if (source === "layers") return builder.layers();
  if (source === "preset") return form.querySelector("[name=preset]:checked")?.value || "";
  return field("torchvision").value;
}

function showPanes() {
  for (const pane of form.querySelectorAll("[data-pane]")) {
    pane.hidden = pane.dataset.pane !== modelSource();
  }
  const option = field("torchvision").selectedOptions[0];
  document.getElementById("torchvision-help").textContent = option ? option.dataset.help : "";
}

let summaryTimer = null;
let summaryAsked = 0;
let summaryKey = null; // the named model and input size the line describes (or will)

/** After any change: a new named model or size makes the line stale until its answer comes. */
function scheduleSummary() {
  const line = document.getElementById("model-summary");
  const key = modelSource() === "layers" ? null : `${currentModel()}@${inputSize()}`;
  if (key === summaryKey) return;
  summaryKey = key;
  summaryAsked++; // an answer about the previous model is dropped
  line.textContent = key ? text.checking : "";
  clearTimeout(summaryTimer);
  if (key) summaryTimer = setTimeout(namedSummary, VALIDATE_MS);
}

async function namedSummary() {
  const line = document.getElementById("model-summary");
  const ask = ++summaryAsked;
  const model = currentModel();
  try {
    const response = await fetch(config.summaryUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ model, input_size: inputSize(), classes: config.classes }),
    });
    const answer = await response.json();
    if (ask !== summaryAsked) return;
    if (response.status === 503) line.textContent = text.busy;
    else if (!response.ok) line.textContent = answer.detail;
    else {
      const input = answer.input.join("×");
      const params = fill(text.parameters, { n: answer.parameters.toLocaleString() });
      line.textContent = `${model}: ${params} · ${text.input} ${input} → ${config.classes}`;
    }
  } catch {
    if (ask === summaryAsked) line.textContent = text.busy;
  }
}

// --- checks -----------------------------------------------------------------------------------
function checkNumber(input) {
  const raw = input.value.trim();
  if (raw === "") return input.dataset.optional ? "" : text.value;
  const value = Number(raw);
  if (!Number.isFinite(value)) return text.number;
  if (input.dataset.kind === "int" && !Number.isInteger(value)) return text.wholeNumber;
  if (input.name === "kfold" && value === 1) return text.kfold;
  const low = Number(input.dataset.low);
  const high = Number(input.dataset.high);
  const tooLow = input.dataset.above ? value <= low : value < low;
  const tooHigh = input.dataset.below ? value >= high : value > high;
  if (!tooLow && !tooHigh) return "";
  const key = input.dataset.above ? "rangeAbove" : input.dataset.below ? "rangeBelow" : "rangeClosed";
  return fill(text[key], { low, high });
}

function visible(element) {
  return !element.closest("[hidden]");
}

function checkAll() {
  for (const input of form.querySelectorAll("input[type=number][data-kind]")) {
    clientErrors[input.name] = visible(input) ? checkNumber(input) : "";
  }
}

function showErrors() {
  for (const span of form.querySelectorAll("[data-error-for]")) {
    const name = span.dataset.errorFor;
    const message = clientErrors[name] || serverErrors[name] || "";
    span.textContent = message;
    box(name)?.classList.toggle("has-error", Boolean(message));
  }
  document.getElementById("server-check").textContent = serverErrors.__all__ || "";
}

function fieldFor(key) {
  const path = key.replace(/^spec\./, "");
  if (path === "model" || path.startsWith("model.")) {
    return modelSource();
  }
  return config.fieldOfPath[path] || config.fieldOfPath[path.split(".")[0]] || "__all__";
}

/** The spec this form makes: the same as launch_form.read makes of it on the server. */
export function buildSpec() {
  const number = (name) => (field(name).value.trim() === "" ? null : Number(field(name).value));
  const spec = {
    model: currentModel(),
    epochs: number("epochs"),
    batch_size: number("batch_size"),
    optimizer: field("optimizer").value,
    lr: number("lr"),
  };
  if (spec.optimizer === "sgd") spec.momentum = number("momentum");
  const optional = { weight_decay: 0, schedule: "none", input_size: null };
  Object.assign(optional, { label_smoothing: 0, seed: 0, kfold: 0 });
  for (const [name, usual] of Object.entries(optional)) {
    const value = name === "schedule" ? field(name).value : number(name);
    if (value !== null && value !== usual) spec[name] = value;
  }
  if (field("early_stopping").checked) spec.early_stopping = { patience: number("patience") };
  if (field("augment").checked) {
    spec.augmentation = {
      rotation: number("aug_rotation"),
      shear: number("aug_shear"),
      zoom: number("aug_zoom"),
      hflip: field("aug_hflip").checked,
      vflip: field("aug_vflip").checked,
    };
  }
  const source = field("transfer_source").value;
  if (source !== "none") spec.transfer = { source, mode: field("transfer_mode").value };
  return spec;
}
window.manabiTrain = { buildSpec };

let validateTimer = null;
let validateAsked = 0;
async function validate() {
  const ask = ++validateAsked;
  let body;
  try {
    const response = await fetch(config.validateUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ dataset: config.dataset, spec: buildSpec() }),
    });
    body = await response.json();
  } catch {
    return; // offline for a moment: the submit checks again
  }
  if (ask !== validateAsked) return;
  serverErrors = {};
  for (const [key, message] of Object.entries(body.errors || {})) {
    serverErrors[fieldFor(key)] ??= message;
  }
  showErrors();
}

// --- transfer and comparisons -------------------------------------------------------------
function updateTransfer() {
  const source = field("transfer_source");
  const chosen = field("torchvision").selectedOptions[0];
  const reasons = [];
  // Pretrained weights: offered for a torchvision model whose file the administrator provided
  // (data-imagenet, data-coco); the COCO option is on the page only where some model has it.
  for (const [value, label, noModel, noFile] of [
    ["imagenet", "ImageNet", text.noImagenet, text.noWeights],
    ["coco", "COCO", text.noCoco, text.noCocoWeights],
  ]) {
    const option = source.querySelector(`option[value=${value}]`);
    if (!option) continue;
    let reason = "";
    if (modelSource() !== "torchvision") reason = noModel;
    else if (chosen?.dataset[value] !== "1") reason = noFile;
    option.disabled = Boolean(reason);
    if (reason && source.value === value) source.value = "none";
    if (reason) reasons.push(`${label}: ${reason}`);
  }
  const kept = switched?.source === source.value ? switched.message : "";
  const lines = [kept, ...reasons].filter(Boolean);
  document.getElementById("source-note").textContent = lines.join(" ");
  document.getElementById("imagenet-where").hidden = modelSource() !== "torchvision";
  const none = source.value === "none";
  for (const radio of form.querySelectorAll("[name=transfer_mode]")) {
    radio.disabled = none && radio.value !== "scratch";
    if (none && radio.value === "scratch") radio.checked = true;
  }
  document.getElementById("compare-modes").disabled = none || !config.ready;
}

let switched = null; // {source, message}: the note stays while that run is the source
function useSourceModel() {
  const option = field("transfer_source").selectedOptions[0];
  if (!option?.dataset.model) return;
  const model = JSON.parse(option.dataset.model);
  if (JSON.stringify(model) === JSON.stringify(currentModel())) return;
  if (Array.isArray(model)) {
    form.querySelector("[name=model_source][value=layers]").checked = true;
    builder.setLayers(model);
  } else if (form.querySelector(`[name=preset][value="${model}"]`)) {
    form.querySelector("[name=model_source][value=preset]").checked = true;
    form.querySelector(`[name=preset][value="${model}"]`).checked = true;
  } else {
    form.querySelector("[name=model_source][value=torchvision]").checked = true;
    field("torchvision").value = model;
  }
  const name = Array.isArray(model) ? text.yourLayers : model;
  switched = { source: option.value, message: fill(text.sourceModel, { model: name }) };
}

const variable = field("compare_variable");
let example = variable.selectedOptions[0].dataset.example;
function updateCompare() {
  const option = variable.selectedOptions[0];
  const values = field("compare_values");
  if (values.value.trim() === "" || values.value === example) values.value = option.dataset.example;
  example = option.dataset.example;
  const help = option.dataset.help ? `${option.dataset.help} ` : "";
  document.getElementById("compare-help").textContent = `${help}${text.example} ${example}`;
}

function showSummary() {
  const spec = buildSpec();
  const model = Array.isArray(spec.model) ? fill(text.nLayers, { n: spec.model.length }) : spec.model;
  const optimizer = field("optimizer").selectedOptions[0].textContent;
  const parts = [model, fill(text.epochs, { n: spec.epochs ?? "?" }), `${optimizer} (η = ${spec.lr})`];
  parts.push(fill(text.batch, { n: spec.batch_size ?? "?" }));
  if (spec.augmentation) parts.push(text.augmented);
  if (spec.kfold) parts.push(fill(text.folds, { n: spec.kfold }));
  if (spec.transfer) {
    const mode = form.querySelector("[name=transfer_mode]:checked");
    const label = mode?.closest("label").querySelector("b").textContent;
    parts.push(fill(text.transfer, { mode: label }));
  }
  document.getElementById("spec-summary").textContent = parts.join(" · ");
}

// --- wiring ---------------------------------------------------------------------------------
function showDependent() {
  box("momentum").hidden = field("optimizer").value !== "sgd";
  box("patience").hidden = !field("early_stopping").checked;
  document.getElementById("augment-body").hidden = !field("augment").checked;
}

function changed() {
  showPanes();
  showDependent();
  updateTransfer();
  checkAll();
  showErrors();
  showSummary();
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validate, VALIDATE_MS);
  scheduleSummary();
  preview?.redraw();
}

const previewRoot = document.getElementById("augment-preview");
const preview = previewRoot
  ? initAugmentPreview({
      grid: document.getElementById("preview-grid"),
      urls: previewRoot.dataset.samples.split(" ").filter(Boolean),
      settings: () => ({
        rotation: Number(field("aug_rotation").value) || 0,
        shear: Number(field("aug_shear").value) || 0,
        zoom: Number(field("aug_zoom").value) || 0,
        hflip: field("aug_hflip").checked,
        vflip: field("aug_vflip").checked,
      }),
      text,
    })
  : null;
document.getElementById("shuffle")?.addEventListener("click", () => preview.redraw());
document.getElementById("lecture-preset").addEventListener("click", () => {
  field("augment").checked = true;
  Object.assign(field("aug_rotation"), { value: "45" });
  Object.assign(field("aug_shear"), { value: "0.3" });
  Object.assign(field("aug_zoom"), { value: "0.4" });
  field("aug_hflip").checked = true;
  field("aug_vflip").checked = false;
  changed();
});

form.addEventListener("change", (event) => {
  if (event.target.name?.startsWith("layer-")) return; // the builder handles its own inputs
  if (event.target === field("transfer_source")) useSourceModel();
  if (event.target === variable) updateCompare();
  if (event.target.name === "input_size") builder.refresh();
  if (event.target.name === "model_source") builder.refresh();
  changed();
});
form.addEventListener("input", (event) => {
  if (event.target.matches("input[type=number][data-kind]")) {
    clientErrors[event.target.name] = checkNumber(event.target);
    delete serverErrors[event.target.name]; // said of the old value: ask again
    validateAsked++; // and forget an answer still on its way
    showErrors();
    clearTimeout(validateTimer);
    validateTimer = setTimeout(validate, VALIDATE_MS);
  }
});
form.addEventListener("submit", (event) => {
  checkAll();
  showErrors();
  const bad = Object.entries(clientErrors).find(([, message]) => message);
  const summary = document.getElementById("client-summary");
  summary.textContent = "";
  if (bad) {
    event.preventDefault();
    summary.textContent = text.fixFirst;
    field(bad[0])?.focus();
  }
});

showPanes();
showDependent();
updateTransfer();
updateCompare();
showErrors();
showSummary();
builder.refresh();
scheduleSummary();
