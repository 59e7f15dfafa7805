/* Autosave: the studio's changes go to the server as deltas as soon as the event that made
   them is handled (the changes one event makes go together, and those made while a request is
   on its way go in the next one), and nothing is lost when the network drops.

     const saver = new Autosave({url, csrfToken, storageKey, onState, onAnswer});
     saver.push({op: "update", item, uid, revision, data});

   Changes to the same thing (uid; an image's label by its item) coalesce while they wait: a
   create then an update is one create, a create then a delete is nothing. Pending changes are
   kept in localStorage under `storageKey`, so a reload or a closed tab sends them later. A
   failed request (no network, a server error) is retried with a growing delay (offline); a
   refused one (signed out, no longer allowed) waits for the next change or reload (error).
   States: saved | saving | offline | conflict | error; `onState(state, detail)` hears each. */

// No idle wait: a save must reach the database within 100 ms (benchmarks/studio_bench.py measured
// 340 ms p95 with a 300 ms wait, 36–55 ms without); requests in flight batch what follows.
const IDLE_MS = 0;
const BATCH = 500; // the API's limit per call
const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];

function keyOf(change) {
  return change.op === "label" ? `label:${change.item}` : `${change.op === "category" ? "c" : "a"}:${change.uid}`;
}

/** A change and a later one to the same thing as one change; null: neither is needed. */
function merged(earlier, later) {
  if (earlier.op === "create" && later.op === "update") return { ...earlier, data: later.data };
  if (earlier.op === "create" && later.op === "delete") return null;
  if (earlier.op === "update" && (later.op === "update" || later.op === "delete")) {
    return { ...later, revision: earlier.revision };
  }
  if (earlier.op === "delete" && (later.op === "create" || later.op === "update")) return later;
  if (earlier.op === "label" && later.op === "label") return later;
  return undefined; // keep both, in order (an accept after its create, ...)
}

export class Autosave {
  constructor({ url, csrfToken, storageKey, onState = () => {}, onAnswer = () => {}, idleMs = IDLE_MS }) {
    this.url = url;
    this.csrfToken = csrfToken;
    this.storageKey = storageKey;
    this.onState = onState;
    this.onAnswer = onAnswer;
    this.idleMs = idleMs;
    this.queue = this._load(); // [{change, key, sending}]
    this.state = "saved";
    this.conflicts = 0;
    this._timer = null;
    this._flight = null;
    this._retry = 0;
    this._batch = BATCH;
    window.addEventListener("online", () => this.flush());
    window.addEventListener("pagehide", () => this._store());
    if (this.queue.length) this._schedule(0);
  }

  /** Queue one change (the API's delta shape); it is sent after a short idle time. */
  push(change) {
    const key = keyOf(change);
    let at = -1;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i].key === key) {
        at = this.queue[i].sending ? -1 : i;
        break;
      }
    }
    const both = at >= 0 ? merged(this.queue[at].change, change) : undefined;
    if (both === undefined) this.queue.push({ change, key, sending: false });
    else if (both === null) this.queue.splice(at, 1);
    else this.queue[at].change = both;
    if (this.state === "offline") this._store(); // a closed tab or a crash loses nothing either
    this._setState(this.state === "offline" || this.state === "conflict" ? this.state : "saving");
    this._schedule(this.idleMs);
  }

  /** The changes not yet acknowledged by the server, oldest first. */
  pending() {
    return this.queue.map((entry) => entry.change);
  }

  /** Send what is waiting now; resolves when the queue is empty or a send failed. */
  async flush() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._flight) return this._flight;
    this._flight = this._sendAll().finally(() => {
      this._flight = null;
    });
    return this._flight;
  }

  /** Forget every waiting change (the draft was discarded on the server). */
  clear() {
    clearTimeout(this._timer);
    this.queue = [];
    this.conflicts = 0;
    this._store();
    this._setState("saved");
  }

  /** Conflicts were resolved elsewhere on the page: the state follows the queue again. */
  resolved(remaining = 0) {
    this.conflicts = remaining;
    if (!remaining && this.state === "conflict") this._setState(this.queue.length ? "saving" : "saved");
  }

  async _sendAll() {
    this._store();
    while (this.queue.length) {
      const batch = this.queue.slice(0, this._batch);
      batch.forEach((entry) => (entry.sending = true));
      let response;
      try {
        this._setState(this.conflicts ? "conflict" : "saving");
        response = await fetch(this.url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": this.csrfToken },
          body: JSON.stringify({ changes: batch.map((entry) => entry.change) }),
        });
      } catch (err) {
        batch.forEach((entry) => (entry.sending = false));
        return this._offline(String(err));
      }
      batch.forEach((entry) => (entry.sending = false));
      if (response.status === 413 && batch.length > 1) {
        this._batch = Math.max(1, Math.floor(batch.length / 2));
        continue;
      }
      if (response.status >= 500 || response.status === 429 || response.status === 408) {
        return this._offline(`HTTP ${response.status}`);
      }
      const answer = await response.json().catch(() => ({}));
      if (response.status === 401 || response.status === 403) {
        this._setState("error", answer.detail || `HTTP ${response.status}`);
        return false; // kept: a reload after signing in again sends them
      }
      this._retry = 0;
      this.queue = this.queue.filter((entry) => !batch.includes(entry));
      this._store();
      if (!response.ok) {
        // The batch as a whole was refused (malformed): sending it again cannot help.
        this._setState("error", answer.detail || `HTTP ${response.status}`);
        this.onAnswer({ refused: batch.map((e, index) => ({ index, uid: e.change.uid, detail: answer.detail })) }, batch.map((e) => e.change));
        return false;
      }
      this.conflicts += (answer.conflicts || []).length;
      this.onAnswer(answer, batch.map((entry) => entry.change));
    }
    this._setState(this.conflicts ? "conflict" : "saved");
    return true;
  }

  _offline(detail) {
    this._setState("offline", detail);
    const delay = RETRY_MS[Math.min(this._retry, RETRY_MS.length - 1)];
    this._retry += 1;
    this._schedule(delay);
    return false;
  }

  _schedule(ms) {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.flush(), ms);
  }

  _setState(state, detail = "") {
    if (state === this.state && !detail) return;
    this.state = state;
    this.onState(state, detail);
  }

  _store() {
    try {
      if (this.queue.length) {
        localStorage.setItem(this.storageKey, JSON.stringify(this.queue.map((e) => e.change)));
      } else {
        localStorage.removeItem(this.storageKey);
      }
    } catch {
      // Private mode or a full storage: the changes are still sent from memory.
    }
  }

  _load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey) || "[]");
      return Array.isArray(saved) ? saved.map((change) => ({ change, key: keyOf(change), sending: false })) : [];
    } catch {
      return [];
    }
  }
}
