/* The studio's side panel: the classes (the current one, 1–9, adding one), the objects of the
   image as a text list (class and box: the canvas's content for screen readers and keyboards),
   the save state, conflicts with "keep mine" / "take theirs", and who else edits the image. */

// Objects listed one by one; beyond that a count says how many more. 2,000 list items cost
// 200 ms of script and layout on each image (benchmarks/studio_bench.py); 200 cost 20.
const MAX_LISTED = 200;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

export class Panel {
  constructor(studio, root, { onChooseClass, onAddClass, onResolve }) {
    this.studio = studio;
    this.root = root;
    this.words = studio.words;
    this.onChooseClass = onChooseClass;
    this.onResolve = onResolve;
    this.classes = root.querySelector("#studio-classes");
    this.objects = root.querySelector("#studio-objects");
    this.count = root.querySelector("#studio-object-count");
    this.more = root.querySelector("#studio-objects-more");
    this.conflicts = root.querySelector("#studio-conflicts");
    this.others = root.querySelector("#studio-others");
    this.save = document.querySelector("#studio-save");
    this.items = new Map(); // uid → <li>
    const form = root.querySelector("#studio-add-class");
    form?.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = form.querySelector("input");
      const name = input.value.trim();
      if (name) onAddClass(name).then((ok) => ok && (input.value = ""));
    });
    studio.on("load", () => this.renderObjects());
    studio.on("change", (uid, before, after) => this.objectChanged(uid, after));
    studio.on("select", (uid, previous) => this.selected(uid, previous));
  }

  // --- classes -----------------------------------------------------------------------------

  renderClasses() {
    const { studio } = this;
    this.classes.replaceChildren(
      ...studio.categories.map((category, i) =>
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: "class-button",
              "data-index": category.index,
              "aria-pressed": String(category.index === studio.category),
              onclick: () => this.onChooseClass(category.index),
            },
            el("span", { class: "swatch", style: `background:${studio.color(category.index)}`, "aria-hidden": "true" }),
            el("span", { class: "class-name", text: category.name }),
            i < 9 ? el("kbd", { text: String(i + 1), "aria-hidden": "true" }) : "",
          ),
        ),
      ),
    );
  }

  currentClass() {
    for (const button of this.classes.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.index) === this.studio.category));
    }
  }

  // --- objects -----------------------------------------------------------------------------

  describe(annotation) {
    const { studio, words } = this;
    const name = studio.categoryName(annotation.category);
    let text = name;
    if (annotation.bbox) {
      const [x, y, w, h] = annotation.bbox.map((v) => Math.round(v));
      text += " — " + format(words["object-box"], { x, y, w, h });
    }
    if (annotation.segmentation) {
      const shape = Array.isArray(annotation.segmentation) ? "object-polygon" : "object-mask";
      text += ` · ${words[shape]}`;
    }
    if (annotation.keypoints) text += ` · ${words["object-keypoints"]}`;
    if (annotation.proposal) {
      text += ` · ${format(words["object-proposal"], { score: Number(annotation.proposal.score ?? 0).toFixed(2) })}`;
    }
    return text;
  }

  _item(annotation) {
    const button = el("button", {
      type: "button",
      class: "object",
      text: this.describe(annotation),
      "aria-current": annotation.uid === this.studio.selected ? "true" : null,
      onclick: () => this.studio.select(annotation.uid),
    });
    const li = el("li", { "data-uid": annotation.uid, class: annotation.proposal ? "proposal" : "" }, button);
    li.style.setProperty("--swatch", this.studio.color(annotation.category));
    this.items.set(annotation.uid, li);
    return li;
  }

  renderObjects() {
    this.items.clear();
    const all = [...this.studio.annotations.values()];
    this.objects.replaceChildren(...all.slice(0, MAX_LISTED).map((a) => this._item(a)));
    this._counts();
  }

  objectChanged(uid, after) {
    const li = this.items.get(uid);
    if (!after) {
      li?.remove();
      this.items.delete(uid);
    } else if (li) {
      li.replaceWith(this._item(after));
    } else if (this.items.size < MAX_LISTED) {
      this.objects.append(this._item(after));
    }
    this._counts();
  }

  _counts() {
    const total = this.studio.annotations.size;
    this.count.textContent = String(total);
    const hidden = total - this.items.size;
    this.more.hidden = hidden <= 0;
    this.more.textContent = hidden > 0 ? format(this.words["objects-more"], { count: hidden }) : "";
  }

  selected(uid, previous) {
    this.items.get(previous)?.querySelector("button").removeAttribute("aria-current");
    const li = this.items.get(uid);
    if (li) {
      li.querySelector("button").setAttribute("aria-current", "true");
      li.scrollIntoView({ block: "nearest" });
    }
  }

  // --- save state, conflicts, others -------------------------------------------------------

  saveState(state, detail = "") {
    this.save.dataset.state = state;
    this.save.textContent = this.words[`save-${state}`] + (detail && state === "error" ? ` (${detail})` : "");
  }

  showOthers(names) {
    this.others.hidden = !names.length;
    this.others.textContent = names.length ? format(this.words["others-editing"], { names: names.join(", ") }) : "";
  }

  addConflicts(conflicts) {
    for (const conflict of conflicts) {
      this.conflicts.querySelector(`[data-uid="${conflict.uid}"]`)?.remove();
      const theirs = conflict.theirs;
      const yours = conflict.yours;
      const what = this.describe(yours || theirs || { category: 0 });
      const who = theirs?.by || conflict.by || this.words["conflict-someone"];
      const text = theirs
        ? format(this.words["conflict-changed"], { what, who })
        : format(this.words["conflict-deleted"], { what, who });
      const li = el(
        "li",
        { "data-uid": conflict.uid },
        el("p", { text }),
        theirs ? el("p", { class: "small muted", text: `${this.words["conflict-theirs"]}: ${this.describe(theirs)}` }) : "",
        el(
          "div",
          { class: "row" },
          el("button", { type: "button", class: "btn small", "data-keep": "mine", text: this.words["keep-mine"], onclick: () => this.onResolve(conflict, "mine", li) }),
          el("button", { type: "button", class: "btn small", "data-keep": "theirs", text: this.words["take-theirs"], onclick: () => this.onResolve(conflict, "theirs", li) }),
        ),
      );
      this.conflicts.querySelector("ul").append(li);
    }
    this.conflicts.hidden = !this.conflicts.querySelector("li");
  }

  conflictCount() {
    return this.conflicts.querySelectorAll("li").length;
  }

  resolved(li) {
    li.remove();
    this.conflicts.hidden = !this.conflicts.querySelector("li");
  }
}
