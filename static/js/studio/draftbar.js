/* The draft bar: how many changes wait in the draft, "Commit version…" (a message, then a new
   dataset version, or the conflicts that stop it listed), and "Discard draft". */

async function send(url, method, csrf, body = undefined) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).catch(() => null);
  const answer = response && response.status !== 204 ? await response.json().catch(() => ({})) : {};
  return { status: response ? response.status : 0, answer };
}

export function wireDraft({ config, studio, saver, say, reload }) {
  const changes = document.getElementById("studio-changes");
  const commitDialog = document.getElementById("studio-commit");
  const discardDialog = document.getElementById("studio-discard");
  const count = (n) => {
    if (changes) changes.textContent = String(n);
  };
  if (!discardDialog) return { count };

  const refresh = async () => {
    const { status, answer } = await send(config.urls.draft, "GET", config.csrf);
    count(status === 200 ? answer.changes ?? 0 : 0);
  };

  if (commitDialog) wireCommit({ config, studio, saver, say, reload, refresh, commitDialog });
  wireDiscard({ config, studio, saver, say, reload, count, discardDialog });
  return { count };
}

function wireCommit({ config, studio, saver, say, reload, refresh, commitDialog }) {
  const words = studio.words;
  const result = document.getElementById("studio-commit-result");
  const error = document.getElementById("studio-commit-error");
  const conflicts = document.getElementById("studio-commit-conflicts");
  document.getElementById("studio-commit-open").addEventListener("click", () => {
    error.textContent = "";
    conflicts.replaceChildren();
    commitDialog.showModal();
  });
  commitDialog.querySelector("[data-close]").addEventListener("click", () => commitDialog.close());
  commitDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = commitDialog.querySelector("textarea").value.trim();
    if (!message) {
      error.textContent = words["commit-message-needed"];
      return;
    }
    const button = commitDialog.querySelector("[type=submit]");
    button.disabled = true;
    error.textContent = words["commit-saving"];
    try {
      if (saver) {
        await saver.flush();
        if (saver.pending().length) {
          error.textContent = words["commit-unsaved"];
          return;
        }
      }
      const { status, answer } = await send(config.urls.commit, "POST", config.csrf, { message });
      if (status === 201) {
        commitDialog.close();
        commitDialog.querySelector("textarea").value = "";
        result.textContent = words["committed"].replace("%(n)s", answer.version);
        result.dataset.version = answer.version;
        say(result.textContent);
        studio.history.clear();
        await refresh();
        await reload();
      } else if (status === 409) {
        error.textContent = words["commit-conflicts"];
        conflicts.replaceChildren(
          ...(answer.conflicts || []).map((c) => {
            const li = document.createElement("li");
            const what = c.yours || c.theirs;
            li.textContent = what ? `${studio.categoryName(what.category)} (${c.uid.slice(0, 8)})` : c.uid;
            return li;
          }),
        );
      } else {
        error.textContent = answer.detail || words["commit-failed"];
      }
    } finally {
      button.disabled = false;
    }
  });

}

function wireDiscard({ config, studio, saver, say, reload, count, discardDialog }) {
  const words = studio.words;
  document.getElementById("studio-discard-open").addEventListener("click", () => discardDialog.showModal());
  discardDialog.querySelector("[data-close]").addEventListener("click", () => discardDialog.close());
  discardDialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { status, answer } = await send(config.urls.draft, "DELETE", config.csrf);
    discardDialog.close();
    if (status !== 204 && status !== 200) return say(answer.detail || words["discard-failed"]);
    saver?.clear();
    studio.history.clear();
    count(0);
    say(words["discarded"]);
    await reload();
  });
}
