/* The images to label, in the queue's order, and the next and previous ones fetched ahead:
   their annotations (JSON) and their pixels (decoded), so that moving on draws at once. */

const PAGE = 100;
const SCAN_PAGES = 20; // pages read to find the current image when its position was wrong
const KEEP = 5; // images held decoded (a 4000×3000 photo is 48 MB of pixels)

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

/** The image's pixels, decoded now. An ImageBitmap keeps them decoded for the canvas: an
    HTMLImageElement's decode() does not, and drawing the next image then decoded it again
    (60–180 ms for 4000×3000; 17 ms from a bitmap, benchmarks/studio_bench.py). Bitmaps are
    not closed by hand: the one on screen may sit in the cache too; the GC frees the rest. */
function decoded(url) {
  const image = new Image();
  image.decoding = "async";
  image.src = url;
  const ready = image.decode();
  if (typeof createImageBitmap !== "function") return ready.then(() => image);
  return ready.then(() => createImageBitmap(image)).catch(() => image);
}

export class Queue {
  constructor({ itemsUrl, itemUrl, queue = "all" }) {
    this.itemsUrl = itemsUrl; // GET ?queue=&offset=&limit=
    this.itemUrl = itemUrl; // GET <itemUrl><uid>
    this.queue = queue;
    this.uids = []; // sparse: index in the queue → item uid
    this.total = 0;
    this.index = -1;
    this.cache = new Map(); // uid → Promise<{payload, image}>, most recent last
  }

  async _page(offset) {
    const url = `${this.itemsUrl}?queue=${this.queue}&offset=${offset}&limit=${PAGE}`;
    const page = await getJson(url);
    this.total = page.total;
    page.items.forEach((item, i) => (this.uids[page.offset + i] = item.uid));
    return page;
  }

  /** Find an image's place in the queue, starting at the page its position hint names. */
  async locate(uid, position = 0) {
    const first = Math.max(0, Math.floor(position / PAGE) * PAGE);
    await this._page(first);
    let at = this.uids.indexOf(uid);
    for (let offset = 0, n = 0; at < 0 && offset < this.total && n < SCAN_PAGES; offset += PAGE, n++) {
      if (offset !== first) await this._page(offset);
      at = this.uids.indexOf(uid);
    }
    this.index = at;
    return at;
  }

  async uidAt(index) {
    if (index < 0 || index >= this.total) return null;
    if (!this.uids[index]) await this._page(Math.floor(index / PAGE) * PAGE);
    return this.uids[index] || null;
  }

  /** The image and its annotations: from the cache, or fetched now. */
  load(uid) {
    if (!this.cache.has(uid)) {
      const entry = getJson(`${this.itemUrl}${uid}`).then(async (payload) => ({
        payload,
        image: await decoded(payload.item.image),
      }));
      entry.catch(() => this.cache.delete(uid)); // a failed fetch is tried again next time
      this.cache.set(uid, entry);
    } else {
      const entry = this.cache.get(uid);
      this.cache.delete(uid);
      this.cache.set(uid, entry);
    }
    while (this.cache.size > KEEP) this.cache.delete(this.cache.keys().next().value);
    return this.cache.get(uid);
  }

  /** What the page now shows of an image (its edits included), for when it is shown again. */
  remember(uid, payload, image) {
    this.cache.set(uid, Promise.resolve({ payload, image }));
  }

  forget(uid = null) {
    if (uid) this.cache.delete(uid);
    else this.cache.clear();
  }

  /** Fetch the images before and after the current one. */
  async prefetch() {
    if (this.index < 0) return;
    for (const index of [this.index + 1, this.index - 1]) {
      const uid = await this.uidAt(index).catch(() => null);
      if (uid) this.load(uid).catch(() => {});
    }
  }
}
