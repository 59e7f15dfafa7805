/* Undo and redo for the annotation studio, one stack pair per image.

   An entry is a list of steps {uid, before, after}: the whole annotation before and after
   (null where it did not exist). Undoing an entry applies each step's `before` in reverse
   order, so the inverse change (a delete for a create, the old box for a move) is derived,
   never stored twice. Repeated small changes with the same `merge` key (arrow-key nudges)
   within MERGE_MS become one entry, keeping the first `before`. */

const LIMIT = 500; // entries kept per image
const MERGE_MS = 1000;

export class History {
  constructor() {
    this.stacks = new Map(); // item uid → {undo: [], redo: []}
  }

  _stack(item) {
    let stack = this.stacks.get(item);
    if (!stack) {
      stack = { undo: [], redo: [] };
      this.stacks.set(item, stack);
    }
    return stack;
  }

  push(item, steps, merge = null) {
    const stack = this._stack(item);
    const last = stack.undo[stack.undo.length - 1];
    const now = Date.now();
    if (merge && last && last.merge === merge && now - last.at < MERGE_MS) {
      for (const step of steps) {
        const earlier = last.steps.find((s) => s.uid === step.uid);
        if (earlier) earlier.after = step.after;
        else last.steps.push(step);
      }
      last.at = now;
    } else {
      stack.undo.push({ steps, merge, at: now });
      if (stack.undo.length > LIMIT) stack.undo.shift();
    }
    stack.redo.length = 0;
  }

  /** The steps that undo the latest entry (before and after swapped, last first), or null. */
  undo(item) {
    const stack = this._stack(item);
    const entry = stack.undo.pop();
    if (!entry) return null;
    stack.redo.push(entry);
    return entry.steps
      .slice()
      .reverse()
      .map((s) => ({ uid: s.uid, before: s.after, after: s.before }));
  }

  /** The steps that redo the latest undone entry, or null. */
  redo(item) {
    const stack = this._stack(item);
    const entry = stack.redo.pop();
    if (!entry) return null;
    stack.undo.push(entry);
    return entry.steps.map((s) => ({ uid: s.uid, before: s.before, after: s.after }));
  }

  canUndo(item) {
    return this._stack(item).undo.length > 0;
  }

  canRedo(item) {
    return this._stack(item).redo.length > 0;
  }

  /** Forget an image's stacks (a discarded draft, a committed version reloaded). */
  clear(item = null) {
    if (item === null) this.stacks.clear();
    else this.stacks.delete(item);
  }
}
