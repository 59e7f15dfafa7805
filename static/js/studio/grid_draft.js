/* The label grid's draft bar: how many changes the draft holds, "Commit version…" (a message,
   then one new version and a link to train on it) and "Discard". A commit that would overwrite
   labels somebody else committed meanwhile is refused (409); its conflicts are listed in the
   dialog, each image with its two labels and "Keep mine" / "Take theirs" (POST draft/resolve),
   after which the commit can be tried again. */

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_m, key) => String(values[key] ?? ""));
}

export function wireDraftBar({ config, words, whenSaved, say, nameOf, onCommitted, reload }) {
  const count = document.getElementById("draft-count");
  const dialog = document.getElementById("commit-dialog");
  const error = document.getElementById("commit-error");
  const conflicts = document.getElementById("commit-conflicts");
  const message = document.getElementById("commit-message");
  const headers = { "Content-Type": "application/json", "X-CSRFToken": config.csrf, Accept: "application/json" };

  function setChanges(n) {
    if (!count) return;
    count.textContent =
      n === 0 ? words.changesNone : n === 1 ? words.changesOne : format(words.changes, { n });
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = !text;
  }

  const label = (category) => (category === null || category === undefined ? words.unlabelled : nameOf(category));

  async function resolve(uid, keep, row) {
    const response = await fetch(`${config.api.draft}/resolve`, {
      method: "POST",
      headers,
      body: JSON.stringify({ uid, keep }),
    }).catch(() => null);
    if (!response || !response.ok) {
      const answer = response ? await response.json().catch(() => ({})) : {};
      showError(answer.detail || words.notSaved);
      return;
    }
    row.remove();
    if (!conflicts.children.length) showError("");
  }

  async function listConflicts(found) {
    const rows = await Promise.all(
      found.map(async (conflict) => {
        const li = document.createElement("li");
        li.className = "conflict";
        const response = await fetch(`${config.api.items}/${conflict.item}`, { headers }).catch(() => null);
        const view = response && response.ok ? await response.json() : null;
        if (view) {
          const img = document.createElement("img");
          img.src = view.item.thumb;
          img.alt = view.item.path;
          img.width = img.height = 48;
          li.append(img);
        }
        const text = document.createElement("span");
        text.textContent = format(words.conflictLine, {
          yours: label(conflict.yours?.category),
          theirs: label(conflict.theirs?.category),
        });
        const mine = document.createElement("button");
        mine.type = "button";
        mine.className = "btn small";
        mine.textContent = words.keepMine;
        mine.addEventListener("click", () => resolve(conflict.uid, "mine", li));
        const theirs = mine.cloneNode();
        theirs.textContent = words.takeTheirs;
        theirs.addEventListener("click", () => resolve(conflict.uid, "theirs", li));
        li.append(text, mine, theirs);
        return li;
      }),
    );
    conflicts.replaceChildren(...rows);
  }

  function showCommitted(version) {
    const link = document.createElement("a");
    link.href = config.trainUrl;
    link.id = "train-link";
    link.textContent = words.trainOn;
    document.getElementById("commit-result").replaceChildren(format(words.committed, { n: version }), " ", link);
  }

  async function commit(event) {
    event.preventDefault();
    const submit = document.getElementById("commit-submit");
    submit.disabled = true;
    try {
      if (!(await whenSaved())) return showError(words.notSaved);
      const response = await fetch(config.api.commit, {
        method: "POST",
        headers,
        body: JSON.stringify({ message: message.value }),
      }).catch(() => null);
      if (!response) return showError(words.notSaved);
      const answer = await response.json().catch(() => ({}));
      if (response.status === 409 && answer.conflicts?.length) {
        showError(answer.detail);
        return listConflicts(answer.conflicts);
      }
      if (response.status !== 201) return showError(answer.detail || String(response.status));
      dialog.close();
      message.value = "";
      setChanges(0);
      showCommitted(answer.version);
      onCommitted();
      await reload(); // a commit copies the rows it changed: read the page again
    } finally {
      submit.disabled = false;
    }
  }

  async function discard(event) {
    event.preventDefault();
    // What is still waiting goes first, so that the discard takes it too.
    const response = (await whenSaved())
      ? await fetch(config.api.draft, { method: "DELETE", headers }).catch(() => null)
      : null;
    document.getElementById("discard-dialog").close();
    if (response === null) {
      say(words.notSaved);
    } else if (response.status !== 204) {
      const answer = await response.json().catch(() => ({}));
      say(format(words.failed, { detail: answer.detail || response.status }));
    } else {
      window.location.reload(); // counts and labels as the head has them
    }
  }

  document.getElementById("commit-open")?.addEventListener("click", () => {
    showError("");
    conflicts.replaceChildren();
    dialog.showModal();
  });
  document.getElementById("commit-form")?.addEventListener("submit", commit);
  document.getElementById("discard-open")?.addEventListener("click", () =>
    document.getElementById("discard-dialog").showModal(),
  );
  document.getElementById("discard-submit")?.addEventListener("click", discard);
  return { setChanges };
}
