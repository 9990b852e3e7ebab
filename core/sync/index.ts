/**
 * The sync index: the item ids of a replica's current winning records, kept
 * sorted in typed arrays with prefix sums, so that range-based set
 * reconciliation (see protocol.ts) can fingerprint any id range in O(1).
 *
 * Item id: the first 16 bytes of SHA-256 over
 * `u32 len(soul) ‖ soul ‖ u32 len(field) ‖ field ‖ sh ‖ sl ‖ ah ‖ al ‖ value`
 * (UTF-8 strings, big-endian u32 words, `value` the canonical encoded value).
 * The signature is not part of the id: two records that differ only in their
 * signature are the same write. With 128-bit ids, the chance that any two of
 * n distinct records collide is about n² / 2^129 (≈ 2^-89 for a million
 * records); a collision would only make two different records look equal to
 * reconciliation, and a writer able to find SHA-256 prefix collisions could
 * at worst hide its own writes.
 *
 * Range fingerprint: the sum modulo 2^128 of the ids (read as big-endian
 * 128-bit integers) in the range, and the count, sent as they are (20 bytes).
 * A sum (unlike XOR) does not cancel equal pairs; two different sets of
 * random ids with the same count agree with probability 2^-128. A sum is
 * invertible, so a range's sum is the difference of two prefix sums, and it
 * is not hashed so that a range differing by exactly one item yields that
 * item's id (their sum minus ours), which ends the search there (protocol.ts).
 * A sum is linear, so a writer who can create very many records could in
 * principle craft two different sets with equal sums (a generalized-birthday
 * search); negentropy accepts the same trade-off for its sum fingerprint.
 *
 * Updates: `Database.onCommit` inserts new versions and removes the version a
 * record replaces (the index maps each (soul, field) to its slot). Changes are
 * collected and folded in lazily by {@link SyncIndex.snapshot}, which returns
 * an immutable view that a sync session keeps for its whole run.
 *
 * @example
 * ```ts
 * import { open } from "../../mod.ts";
 * import { SyncIndex } from "./index.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("a", { x: 1 });
 * const index = await SyncIndex.build(db);
 * console.log(index.size); // 1
 * index.close();
 * await db.close();
 * ```
 *
 * @module
 */
import type { Database } from "../database.ts";
import type { Kernels } from "../kernels/types.ts";
import type { FieldKey, FieldRecord } from "../../storage/store.ts";

/** Bytes of an item id. */
export const ID_BYTES = 16;
/** Bytes of a range fingerprint on the wire: a 16-byte sum and a u32 count. */
export const FINGERPRINT_BYTES = 20;

const utf8 = new TextEncoder();

/** A map key for (soul, field): the soul's length first, so no two pairs share a key. */
function keyOf(soul: string, field: string): string {
  return `${soul.length}:${soul}${field}`;
}

/** The (soul, field) behind a key made by {@link keyOf}. */
export function splitKey(key: string): FieldKey {
  const colon = key.indexOf(":");
  const n = Number(key.slice(0, colon));
  return { soul: key.slice(colon + 1, colon + 1 + n), field: key.slice(colon + 1 + n) };
}

/**
 * Item ids of `records`, 16 bytes each back to back, computed with one
 * `sha256Batch` call.
 */
export function itemIds(kernels: Kernels, records: readonly FieldRecord[]): Uint8Array {
  const n = records.length;
  if (n === 0) return new Uint8Array(0);
  let cap = 64 * n;
  for (const r of records) cap += r.value.length;
  let buf = new Uint8Array(cap);
  let view = new DataView(buf.buffer);
  const ends = new Uint32Array(n);
  let pos = 0;
  const grow = (need: number): void => {
    if (pos + need <= buf.length) return;
    const next = new Uint8Array(Math.max(buf.length * 2, pos + need));
    next.set(buf.subarray(0, pos));
    buf = next;
    view = new DataView(buf.buffer);
  };
  const str = (s: string): void => {
    grow(4 + 3 * s.length);
    const { written } = utf8.encodeInto(s, buf.subarray(pos + 4));
    view.setUint32(pos, written);
    pos += 4 + written;
  };
  for (let i = 0; i < n; i++) {
    const r = records[i];
    str(r.soul);
    str(r.field);
    grow(16 + r.value.length);
    view.setUint32(pos, r.sh);
    view.setUint32(pos + 4, r.sl);
    view.setUint32(pos + 8, r.ah);
    view.setUint32(pos + 12, r.al);
    buf.set(r.value, pos + 16);
    pos += 16 + r.value.length;
    ends[i] = pos;
  }
  const digests = kernels.sha256Batch(buf.subarray(0, pos), ends);
  const out = new Uint8Array(ID_BYTES * n);
  for (let i = 0; i < n; i++) out.set(digests.subarray(32 * i, 32 * i + ID_BYTES), ID_BYTES * i);
  return out;
}

/**
 * An immutable, sorted view of the index: what one sync session reconciles.
 * Ids are 4 big-endian u32 words each, in ascending order.
 */
export class IndexSnapshot {
  /** Number of items. */
  readonly size: number;
  /** `4 * size` words: the sorted ids. */
  readonly ids: Uint32Array;
  /** `4 * (size + 1)` words: `prefix[4i..4i+3]` is the sum mod 2^128 of the first `i` ids. */
  readonly prefix: Uint32Array;
  /** The (soul, field) key of each item, in id order (see {@link splitKey}). */
  readonly keys: readonly string[];

  constructor(ids: Uint32Array, keys: readonly string[]) {
    this.size = keys.length;
    this.ids = ids;
    this.keys = keys;
    const p = new Uint32Array(4 * (this.size + 1));
    for (let i = 0; i < this.size; i++) {
      const a = 4 * i, b = a + 4;
      let carry = 0;
      for (let w = 3; w >= 0; w--) {
        const s = p[a + w] + ids[a + w] + carry;
        p[b + w] = s >>> 0;
        carry = s > 0xffffffff ? 1 : 0;
      }
    }
    this.prefix = p;
  }

  /** Index of the first item whose id is ≥ `bound` (16 bytes, or fewer: zero-padded; `null` = +∞). */
  lowerBound(bound: Uint8Array | null): number {
    if (bound === null) return this.size;
    const b = new Uint8Array(ID_BYTES);
    b.set(bound.subarray(0, ID_BYTES));
    const w0 = wordAt(b, 0), w1 = wordAt(b, 4), w2 = wordAt(b, 8), w3 = wordAt(b, 12);
    const ids = this.ids;
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, m = 4 * mid;
      const less = ids[m] !== w0
        ? ids[m] < w0
        : ids[m + 1] !== w1
        ? ids[m + 1] < w1
        : ids[m + 2] !== w2
        ? ids[m + 2] < w2
        : ids[m + 3] < w3;
      if (less) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Position of the item with exactly this 16-byte id, or -1. */
  find(id: Uint8Array): number {
    const i = this.lowerBound(id);
    if (i >= this.size) return -1;
    for (let w = 0; w < 4; w++) if (this.ids[4 * i + w] !== wordAt(id, 4 * w)) return -1;
    return i;
  }

  /** The id of item `i` as 16 bytes. */
  id(i: number): Uint8Array {
    const out = new Uint8Array(ID_BYTES);
    const v = new DataView(out.buffer);
    for (let w = 0; w < 4; w++) v.setUint32(4 * w, this.ids[4 * i + w]);
    return out;
  }

  /** Writes the ids of items `[from, to)` into `out` at `offset` (16 bytes each). */
  copyIds(from: number, to: number, out: Uint8Array, offset: number): void {
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = from; i < to; i++) {
      for (let w = 0; w < 4; w++) v.setUint32(offset + 16 * (i - from) + 4 * w, this.ids[4 * i + w]);
    }
  }

  /**
   * The fingerprints of the item ranges `[starts[k], ends[k])`,
   * {@link FINGERPRINT_BYTES} each back to back: the sum mod 2^128 of the ids
   * (16 bytes, big-endian) followed by the count (u32, big-endian).
   */
  fingerprints(starts: readonly number[], ends: readonly number[]): Uint8Array {
    const n = starts.length;
    const out = new Uint8Array(FINGERPRINT_BYTES * n);
    const v = new DataView(out.buffer);
    const p = this.prefix;
    for (let k = 0; k < n; k++) {
      const a = 4 * starts[k], b = 4 * ends[k], at = FINGERPRINT_BYTES * k;
      let borrow = 0;
      for (let w = 3; w >= 0; w--) {
        const d = p[b + w] - p[a + w] - borrow;
        v.setUint32(at + 4 * w, d >>> 0);
        borrow = d < 0 ? 1 : 0;
      }
      v.setUint32(at + 16, ends[k] - starts[k]);
    }
    return out;
  }
}

function wordAt(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/**
 * The live index of one database: slots of ids in typed arrays, a key → slot
 * map, and a lazily rebuilt sorted snapshot.
 */
export class SyncIndex {
  readonly kernels: Kernels;
  #words = new Uint32Array(4 * 1024);
  #live = new Uint8Array(1024);
  #keys: (string | undefined)[] = [];
  #slotOf = new Map<string, number>();
  #free: number[] = [];
  /** Slots freed since the last rebuild: not reused until then, so the old order stays valid. */
  #freed: number[] = [];
  #next = 0;
  #sorted = new Uint32Array(0);
  #added: number[] = [];
  #snapshot: IndexSnapshot | undefined;
  #unsubscribe: (() => void) | undefined;

  /** An empty index (use {@link SyncIndex.build} to follow a database). */
  constructor(kernels: Kernels) {
    this.kernels = kernels;
  }

  /**
   * Builds the index of `db`'s current records (paging through
   * `store.changes`) and keeps it current through `db.onCommit` until
   * {@link SyncIndex.close}.
   */
  static async build(db: Database, options: { pageSize?: number } = {}): Promise<SyncIndex> {
    const index = new SyncIndex(db.kernels);
    const pageSize = options.pageSize ?? 10_000;
    let pending: FieldRecord[] | undefined = [];
    // Subscribe first so nothing committed during the scan is missed; commits seen
    // meanwhile are applied after the scan, in commit order, so the newest wins.
    index.#unsubscribe = db.onCommit((records) => {
      if (pending) pending.push(...records);
      else index.update(records);
    });
    try {
      for (let cursor: number | undefined;;) {
        const page = await db.store.changes(0, { limit: pageSize, cursor });
        index.update(page.records);
        if ((cursor = page.cursor) === undefined) break;
      }
      index.update(pending);
    } catch (e) {
      index.close();
      throw e;
    } finally {
      pending = undefined;
    }
    return index;
  }

  /** Number of items. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Inserts records, each replacing whatever version of its (soul, field) the index held. */
  update(records: readonly FieldRecord[]): void {
    if (records.length === 0) return;
    const ids = itemIds(this.kernels, records);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const key = keyOf(r.soul, r.field);
      const old = this.#slotOf.get(key);
      if (old !== undefined) {
        if (this.#sameId(old, ids, 16 * i)) continue;
        this.#live[old] = 0;
        this.#keys[old] = undefined;
        this.#freed.push(old);
      }
      const slot = this.#alloc();
      for (let w = 0; w < 4; w++) this.#words[4 * slot + w] = wordAt(ids, 16 * i + 4 * w);
      this.#live[slot] = 1;
      this.#keys[slot] = key;
      this.#slotOf.set(key, slot);
      this.#added.push(slot);
      this.#snapshot = undefined;
    }
  }

  #sameId(slot: number, ids: Uint8Array, at: number): boolean {
    for (let w = 0; w < 4; w++) if (this.#words[4 * slot + w] !== wordAt(ids, at + 4 * w)) return false;
    return true;
  }

  #alloc(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#next++;
    if (slot >= this.#live.length) {
      const words = new Uint32Array(this.#words.length * 2);
      words.set(this.#words);
      this.#words = words;
      const live = new Uint8Array(this.#live.length * 2);
      live.set(this.#live);
      this.#live = live;
    }
    return slot;
  }

  #compare = (a: number, b: number): number => {
    const w = this.#words, x = 4 * a, y = 4 * b;
    for (let i = 0; i < 4; i++) {
      if (w[x + i] !== w[y + i]) return w[x + i] < w[y + i] ? -1 : 1;
    }
    return 0;
  };

  /** The current sorted view; rebuilt (in O(n + k log k) for k changes) only after changes. */
  snapshot(): IndexSnapshot {
    if (this.#snapshot) return this.#snapshot;
    const live = this.#live, w = this.#words;
    const added = this.#sortSlots(this.#added.filter((s) => live[s] === 1));
    const kept = this.#sorted.filter((s) => live[s] === 1);
    // Merge the kept (sorted) slots with the sorted new ones.
    const merged = new Uint32Array(kept.length + added.length);
    let i = 0, j = 0, k = 0;
    while (i < kept.length && j < added.length) {
      const x = 4 * kept[i], y = 4 * added[j];
      const keptFirst = w[x] !== w[y]
        ? w[x] < w[y]
        : w[x + 1] !== w[y + 1]
        ? w[x + 1] < w[y + 1]
        : w[x + 2] !== w[y + 2]
        ? w[x + 2] < w[y + 2]
        : w[x + 3] <= w[y + 3];
      merged[k++] = keptFirst ? kept[i++] : added[j++];
    }
    while (i < kept.length) merged[k++] = kept[i++];
    while (j < added.length) merged[k++] = added[j++];
    this.#sorted = merged;
    this.#added = [];
    for (const s of this.#freed) this.#free.push(s);
    this.#freed = [];
    const ids = new Uint32Array(4 * merged.length);
    const keys: string[] = new Array(merged.length);
    for (let n = 0; n < merged.length; n++) {
      const s = 4 * merged[n], d = 4 * n;
      ids[d] = w[s];
      ids[d + 1] = w[s + 1];
      ids[d + 2] = w[s + 2];
      ids[d + 3] = w[s + 3];
      keys[n] = this.#keys[merged[n]] as string;
    }
    this.#snapshot = new IndexSnapshot(ids, keys);
    return this.#snapshot;
  }

  /**
   * Slots sorted by id. Below 2^21 slots, each slot is packed with its id's
   * first word into one exact float (word · 2^21 + slot) and sorted natively;
   * runs with equal first words are then ordered by the full id.
   */
  #sortSlots(slots: number[]): Uint32Array {
    const n = slots.length;
    if (this.#next > 1 << 21) return Uint32Array.from(slots).sort(this.#compare);
    const packed = new Float64Array(n);
    for (let i = 0; i < n; i++) packed[i] = this.#words[4 * slots[i]] * 2097152 + slots[i];
    packed.sort();
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = packed[i] % 2097152;
    for (let i = 1; i < n; i++) {
      // Insertion sort within runs of equal first words (rare: about n²/2^33 pairs).
      for (let j = i; j > 0 && this.#compare(out[j - 1], out[j]) > 0; j--) {
        const t = out[j];
        out[j] = out[j - 1];
        out[j - 1] = t;
      }
    }
    return out;
  }

  /** Stops following the database. The index stays readable. Idempotent. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
