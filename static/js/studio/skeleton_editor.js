// The keypoint-schema editor (templates/studio/_skeleton.html), for who may edit the dataset:
// rename, add and remove a class's keypoints, set their OKS sigmas and edit its skeleton's
// lines, then PUT /api/v1/datasets/{id}/categories/{index}/keypoints
// {keypoints, skeleton, sources, sigmas}, which makes a new version at once; the page then
// reloads to draw every skeleton with the new names.

const config = JSON.parse(document.getElementById("studio-config").textContent);
const form = document.getElementById("kp-editor-form");
const word = (key) => form.dataset[key] || "";
const names = document.getElementById("kp-editor-names");
const pairs = document.getElementById("kp-editor-pairs");
const chooser = document.getElementById("kp-editor-class");
const error = document.getElementById("kp-editor-error");
const status = document.getElementById("kp-editor-status");
const MAX_POINTS = 100;

// pairs are 1-based, as in COCO; sources[k] is the saved point (1-based) new point k was, or null;
// sigmas[k] is point k's σ as typed ("": the default)
let model = { index: 0, names: [], pairs: [], sources: [], sigmas: [] };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** The trainer's default σ of each point for these names (trainer/keypoint_metrics.py's
 * default_sigmas): COCO's own when they are COCO's 17 in order, else one value for all. */
function defaultSigmas(list) {
  const rule = config.oks_defaults;
  const coco =
    list.length === rule.coco_names.length &&
    list.every((name, k) => name.trim() === rule.coco_names[k]);
  return list.map((_name, k) => (coco ? rule.coco_sigmas[k] : rule.sigma));
}

function load(index) {
  const category = config.categories.find((c) => c.index === index) || config.categories[0];
  model = {
    index: category ? category.index : 0,
    names: [...((category && category.keypoints) || [])],
    pairs: ((category && category.skeleton) || []).map((pair) => [...pair]),
  };
  model.sources = model.names.map((_name, k) => k + 1); // a renamed point keeps its place
  const own = (category && category.sigmas) || []; // [] : the defaults
  const hasOwn = own.length === model.names.length;
  model.sigmas = model.names.map((_name, k) => (hasOwn ? String(own[k]) : ""));
  render();
}

/** The σ fields' placeholders: the defaults for the names as they stand now. */
function showDefaults() {
  const defaults = defaultSigmas(model.names);
  names.querySelectorAll("input[data-sigma]").forEach((input, k) => {
    input.placeholder = String(defaults[k]);
  });
}

function pointChooser(value, label) {
  const select = el("select", { "aria-label": label });
  model.names.forEach((name, k) => {
    const option = el("option", { value: String(k + 1), text: `${k + 1}. ${name}` });
    if (k + 1 === value) option.selected = true;
    select.append(option);
  });
  return select;
}

function render() {
  names.replaceChildren(
    ...model.names.map((name, k) => {
      const input = el("input", {
        type: "text",
        maxlength: "60",
        value: name,
        "aria-label": `${word("wordName")} ${k + 1}`,
      });
      input.addEventListener("input", () => {
        model.names[k] = input.value;
      });
      input.addEventListener("change", () => {
        renderPairs(); // the lines' choices show the new name
        showDefaults(); // COCO's 17 names have COCO's defaults
      });
      const sigma = el("input", {
        type: "number",
        class: "kp-sigma",
        step: "0.001",
        min: "0.001",
        max: "1",
        inputmode: "decimal",
        "data-sigma": "",
        "aria-label": `${word("wordSigma")} ${k + 1}`,
        "aria-describedby": "kp-editor-sigma-help",
      });
      sigma.value = model.sigmas[k];
      model.sigmas[k] = sigma.value; // what the field shows (a number input drops what is not one)
      sigma.addEventListener("input", () => {
        sigma.removeAttribute("aria-invalid");
        model.sigmas[k] = sigma.validity.badInput ? "?" : sigma.value; // "1e": no number
      });
      const sign = el("span", { class: "kp-sigma-sign", text: "σ", "aria-hidden": "true" });
      const label = `${word("wordRemovePoint")} ${k + 1}`;
      const remove = el("button", { type: "button", class: "btn small", "aria-label": label, text: "×" });
      remove.addEventListener("click", () => removePoint(k));
      const number = el("span", { class: "kp-number", text: `${k + 1}.` });
      return el("li", { class: "kp-editor-row" }, number, input, sign, sigma, remove);
    }),
  );
  showDefaults();
  document.getElementById("kp-editor-add-name").disabled = model.names.length >= MAX_POINTS;
  renderPairs();
}

/** The sigmas to send: [] when every σ is empty (the defaults), else one per point, the empty
 * ones given their default; or {bad: k} for the first point whose σ is not in (0, 1]. */
function sigmasToSend() {
  const typed = model.sigmas.map((text) => String(text).trim());
  if (typed.every((text) => text === "")) return { sigmas: [] };
  const defaults = defaultSigmas(model.names);
  const sigmas = [];
  for (const [k, text] of typed.entries()) {
    const value = text === "" ? defaults[k] : Number(text);
    if (!Number.isFinite(value) || value <= 0 || value > 1) return { bad: k };
    sigmas.push(value);
  }
  return { sigmas };
}

function renderPairs() {
  pairs.replaceChildren(
    ...model.pairs.map((pair, i) => {
      const from = pointChooser(pair[0], `${word("wordFrom")} (${i + 1})`);
      const to = pointChooser(pair[1], `${word("wordTo")} (${i + 1})`);
      from.addEventListener("change", () => (pair[0] = Number(from.value)));
      to.addEventListener("change", () => (pair[1] = Number(to.value)));
      const label = `${word("wordRemoveLine")} (${i + 1})`;
      const remove = el("button", { type: "button", class: "btn small", "aria-label": label, text: "×" });
      remove.addEventListener("click", () => {
        model.pairs.splice(i, 1);
        renderPairs();
      });
      const dash = el("span", { text: "–", "aria-hidden": "true" });
      return el("li", { class: "kp-editor-row" }, from, dash, to, remove);
    }),
  );
  document.getElementById("kp-editor-add-pair").disabled = model.names.length < 2;
}

/** Remove point k: its lines go, and the lines' numbers above it move down by one. */
function removePoint(k) {
  model.names.splice(k, 1);
  model.sources.splice(k, 1);
  model.sigmas.splice(k, 1);
  model.pairs = model.pairs
    .filter((pair) => !pair.includes(k + 1))
    .map((pair) => pair.map((v) => (v > k + 1 ? v - 1 : v)));
  render();
}

document.getElementById("kp-editor-add-name").addEventListener("click", () => {
  model.names.push("");
  model.sources.push(null); // a new point: absent in every skeleton until placed
  model.sigmas.push(""); // and its σ the default
  render();
  names.querySelector("li:last-child input").focus();
});

document.getElementById("kp-editor-add-pair").addEventListener("click", () => {
  model.pairs.push([1, Math.min(2, model.names.length)]);
  renderPairs();
});

chooser.addEventListener("change", () => load(Number(chooser.value)));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  status.textContent = "";
  const save = document.getElementById("studio-save");
  if (save && save.dataset.state && !["saved", "readonly"].includes(save.dataset.state)) {
    error.textContent = word("wordUnsaved"); // changes still on their way were made with the old names
    return;
  }
  const { sigmas, bad } = sigmasToSend();
  if (bad !== undefined) {
    const text = config.words["kp-sigma-bad"] || "";
    const name = model.names[bad].trim() || "?";
    error.textContent = text.replace("%(n)s", String(bad + 1)).replace("%(name)s", () => name);
    const field = names.querySelectorAll("input[data-sigma]")[bad];
    field.setAttribute("aria-invalid", "true");
    field.focus();
    return;
  }
  const body = {
    keypoints: model.names.map((name) => name.trim()),
    skeleton: model.pairs,
    sources: model.sources,
    sigmas,
  };
  const response = await fetch(`${form.dataset.url}${model.index}/keypoints`, {
    method: "PUT",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf },
    body: JSON.stringify(body),
  }).catch(() => null);
  if (!response || !response.ok) {
    const answer = response ? await response.json().catch(() => null) : null;
    const fields = answer && answer.errors ? Object.values(answer.errors).join(" ") : "";
    error.textContent = (answer && answer.detail) || word("wordFailed");
    if (fields && !error.textContent.includes(fields)) error.textContent += ` ${fields}`;
    return;
  }
  status.textContent = word("wordSaved");
  setTimeout(() => location.reload(), 600);
});

const options = config.categories.map((c) => el("option", { value: String(c.index), text: c.name }));
chooser.replaceChildren(...options);
load(config.categories.length ? config.categories[0].index : 0);
