// The layer builder: a table of the trainer's layers (trainer/models/layers.py) with their
// settings. After every change the list goes to POST /api/v1/models/summary, and the trainer's
// own shape inference answers with the output shape and parameters after each layer, or the
// layer that does not fit and why.
const DEBOUNCE_MS = 350;
const fill = (template, values) =>
  template.replace(/%\((\w+)\)s/g, (_, key) => values[key]).replace(/%%/g, "%");
const shape = (dims) => (dims && dims.length ? dims.join("×") : "—");
const count = (n) => (n == null ? "—" : n.toLocaleString());
const STEP = { rate: "any", slope: "any" };

export function initLayerBuilder({ config, csrf, input, active, sizeOf, onChange }) {
  const text = config.text;
  const body = document.getElementById("layer-rows");
  const typeSelect = document.getElementById("layer-type");
  const typeHelp = document.getElementById("layer-type-help");
  const status = document.getElementById("layers-status");
  const errorLine = document.getElementById("layers-shape-error");
  let layers = [];
  try {
    layers = JSON.parse(input.value || "[]");
  } catch {
    layers = [];
  }
  let timer = null;
  let asked = 0;

  for (const type of Object.keys(config.layerTypes)) {
    typeSelect.add(new Option(type, type));
  }
  typeSelect.value = "Conv2d";
  const showTypeHelp = () => (typeHelp.textContent = text.layerHelp[typeSelect.value] || "");
  typeSelect.addEventListener("change", showTypeHelp);
  showTypeHelp();
  document.getElementById("add-layer").addEventListener("click", () => {
    layers.push({ type: typeSelect.value, ...config.layerTypes[typeSelect.value] });
    changed();
  });

  function settingInput(layer, key) {
    const label = document.createElement("label");
    label.append(text.settings[key] || key);
    let control;
    if (key === "activation" || key === "padding") {
      control = document.createElement("select");
      const options = key === "activation" ? config.activations : ["same", "valid"];
      for (const option of options) control.add(new Option(option, option));
      control.value = layer[key] ?? "none";
    } else {
      control = document.createElement("input");
      control.type = "number";
      control.step = STEP[key] || "1";
      control.value = layer[key] ?? "";
    }
    control.name = `layer-${key}`;
    control.addEventListener("change", () => {
      const raw = control.value.trim();
      if (raw === "") delete layer[key];
      else if (control.tagName === "SELECT") layer[key] = raw;
      else layer[key] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
      changed();
    });
    label.append(control);
    return label;
  }

  function tool(label, symbol, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.title = label;
    button.setAttribute("aria-label", label);
    button.textContent = symbol;
    button.addEventListener("click", action);
    return button;
  }

  function render() {
    body.replaceChildren();
    layers.forEach((layer, i) => {
      const row = body.insertRow();
      row.dataset.index = i;
      row.insertCell().textContent = i + 1;
      const name = row.insertCell();
      name.innerHTML = `<b></b>`;
      name.firstChild.textContent = layer.type;
      name.title = text.layerHelp[layer.type] || "";
      const settings = row.insertCell();
      const box = document.createElement("div");
      box.className = "settings-cell";
      for (const key of Object.keys(config.layerTypes[layer.type] || {})) {
        box.append(settingInput(layer, key));
      }
      const problem = document.createElement("div");
      problem.className = "row-error";
      settings.append(box, problem);
      const out = row.insertCell();
      out.className = "shape";
      out.textContent = "…";
      const params = row.insertCell();
      params.className = "num";
      const tools = row.insertCell();
      tools.className = "tools";
      tools.append(
        tool(text.up, "↑", () => move(i, -1)),
        tool(text.down, "↓", () => move(i, 1)),
        tool(text.remove, "✕", () => {
          layers.splice(i, 1);
          changed();
        }),
      );
    });
    document.getElementById("output-label").textContent = text.output;
  }

  function move(i, step) {
    const j = i + step;
    if (j < 0 || j >= layers.length) return;
    [layers[i], layers[j]] = [layers[j], layers[i]];
    changed();
  }

  function changed() {
    input.value = JSON.stringify(layers);
    render();
    onChange();
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(summarize, DEBOUNCE_MS);
  }

  function showRows(rows, bad) {
    const cells = [...body.rows];
    for (const row of cells) {
      row.classList.remove("bad");
      row.cells[3].textContent = "—";
      row.cells[4].textContent = "";
      row.querySelector(".row-error").textContent = "";
    }
    let total = 0;
    for (const r of rows) {
      total += r.params;
      if (r.type === "output") {
        document.getElementById("output-shape").textContent = shape(r.shape);
        document.getElementById("output-params").textContent = count(r.params);
      } else if (cells[r.index]) {
        cells[r.index].cells[3].textContent = shape(r.shape);
        cells[r.index].cells[4].textContent = count(r.params);
      }
    }
    if (bad && cells[bad.index]) {
      cells[bad.index].classList.add("bad");
      cells[bad.index].cells[3].textContent = "✕";
      cells[bad.index].querySelector(".row-error").textContent = bad.message;
    }
    return total;
  }

  async function summarize() {
    if (!active()) return;
    const ask = ++asked;
    status.textContent = text.checking;
    document.getElementById("input-shape").textContent = "";
    let response;
    let answer;
    try {
      response = await fetch(config.summaryUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ model: layers, input_size: sizeOf(), classes: config.classes }),
      });
      answer = await response.json();
    } catch {
      response = null;
    }
    if (ask !== asked) return; // a newer list is being checked
    status.textContent = "";
    errorLine.textContent = "";
    document.getElementById("output-shape").textContent = "—";
    document.getElementById("output-params").textContent = "";
    if (!response || response.status === 503) {
      status.textContent = text.busy;
      return;
    }
    if (answer.input) {
      document.getElementById("input-shape").textContent = shape(answer.input);
    }
    const totalCell = document.getElementById("total-params").firstElementChild;
    if (response.ok) {
      showRows(answer.rows, null);
      totalCell.textContent = fill(text.parameters, { n: count(answer.parameters) });
      return;
    }
    totalCell.textContent = "";
    const index = answer.index ?? -1;
    if (index >= 0 && index < layers.length) {
      showRows(answer.rows || [], { index, message: answer.detail });
    } else {
      showRows(answer.rows || [], null);
      errorLine.textContent = answer.detail;
    }
  }

  render();
  return {
    layers: () => layers,
    setLayers(list) {
      layers = JSON.parse(JSON.stringify(list));
      changed();
    },
    refresh: schedule,
  };
}
