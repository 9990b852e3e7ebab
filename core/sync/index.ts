/**
 * The sync index: the item ids of a replica's current winning records, kept
 * sorted, so that range-based set reconciliation (see protocol.ts) can
 * fingerprint any id range in O(1).
 *
 * Item id: the first 16 bytes of SHA-256 over
 * `u32 len(soul) ‖ soul ‖ u32 len(field) ‖ field ‖ stateHi ‖ stateLo ‖ actorHi ‖ actorLo ‖ value`
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
 * Memory: about 50 bytes per item plus the key's UTF-8 bytes, all in typed
 * arrays (no object or string per item): a slot per (soul, field) holds its
 * id (16 bytes) and its key's offset in a byte arena (4 + key bytes); an
 * open-addressing table maps a key to its slot (~7 bytes); a snapshot adds
 * the sorted order (4 bytes) and a prefix sum per 64 items. The index this
 * replaced kept a string key, a Map entry and copies of the ids per item:
 * ~330 bytes per record (847 MB RSS for 2.3M records).
 *
 * Updates: `Database.onCommit` writes each record's id into its key's slot
 * (records are never removed, only replaced, so a slot's key never changes).
 * {@link SyncIndex.snapshot} sorts only the slots changed since the last one
 * and merges them in; the immutable view it returns reads the columns as
 * they were: the id column is kept in chunks of 65,536 slots, and a slot a
 * snapshot can see is changed in a copy of its chunk (1 MiB; copying the
 * whole column would cost 37 MB and ~15 ms on the commit path at 2.3M).
 *
 * Saved index: {@link SyncIndex.save} writes the columns to the store
 * (`Store.writeAux`, a file beside SQLite) with the store's seq; a later
 * {@link SyncIndex.build} loads them (their bytes become the columns) and
 * reads only the records changed since that seq, instead of reading and
 * hashing every record (measured on 2.3M records: bench/open_big.bench.ts).
 * The network saves it when it stops, and while it runs once enough
 * records changed ({@link SyncIndex.saveEvery}), so that a start after a
 * crash reads only what came since the last save; a build that had to read
 * many records saves it at once. A save gathers the slots in id order a
 * chunk at a time, yielding to the event loop, without moving the live
 * columns. The store accepts a saved index only if the
 * commits before it survived (see `Store.readAux`); anything else (no file,
 * another format, a check failing) means a full build.
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
import type { FieldKey, FieldRecord } from "../store.ts";

/** Bytes of an item id. */
export const ID_BYTES = 16;
/** Bytes of a range fingerprint on the wire: a 16-byte sum and a u32 count. */
export const FINGERPRINT_BYTES = 20;
/** Name of the saved index among the store's auxiliary files ({@link Store.writeAux}). */
export const AUX_NAME = "sync-index";

/** log2 of the slots per chunk of the id column: 65,536 slots, 1 MiB of words (see SyncIndex). */
const CHUNK_SHIFT = 16;
const CHUNK_SLOTS = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_SLOTS - 1;
/** log2 of the items per stored prefix sum (64): a range sum adds at most 2 × 63 ids to two stored sums. */
const BUCKET_SHIFT = 6;
/** A build that read at least this many records (or a sixteenth of the items) saves the index at once. */
const SAVE_AFTER_READS = 65_536;
/** A running index saves itself once this many records (or a sixteenth of the items) changed since its last save. */
export const SAVE_EVERY_RECORDS = 100_000;
/** …and looks at most this often (ms): periodic saves are at least this far apart. */
export const SAVE_INTERVAL_MS = 60_000;
/** A build reading every record gives the event loop a turn after this long (ms). */
const YIELD_MS = 20;
/** Longest soul or field in the key arena (u16 lengths; the data model allows 512 UTF-8 bytes). */
const MAX_KEY_PART = 0xffff;
/** First word of a saved index, and its format version. */
const SAVED_MAGIC = 0x4c534931; // "LSI1"
const SAVED_VERSION = 1;
/** Header words of a saved index: magic, version, byte-order mark, count, seq (hi, lo), arena bytes, table entries. */
const SAVED_HEADER_WORDS = 8;
const BYTE_ORDER_MARK = 0x01020304;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

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
    view.setUint32(pos, r.stateHi);
    view.setUint32(pos + 4, r.stateLo);
    view.setUint32(pos + 8, r.actorHi);
    view.setUint32(pos + 12, r.actorLo);
    buf.set(r.value, pos + 16);
    pos += 16 + r.value.length;
    ends[i] = pos;
  }
  const digests = kernels.sha256Batch(buf.subarray(0, pos), ends);
  const out = new Uint8Array(ID_BYTES * n);
  for (let i = 0; i < n; i++) out.set(digests.subarray(32 * i, 32 * i + ID_BYTES), ID_BYTES * i);
  return out;
}

function wordAt(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

/** Whether the id of slot `a` sorts before that of slot `b` (`orEqual`: or equals it). */
function slotBefore(chunks: readonly Uint32Array[], a: number, b: number, orEqual: boolean): boolean {
  const w = chunks[a >>> CHUNK_SHIFT], x = (a & CHUNK_MASK) << 2;
  const v = chunks[b >>> CHUNK_SHIFT], y = (b & CHUNK_MASK) << 2;
  return w[x] !== v[y]
    ? w[x] < v[y]
    : w[x + 1] !== v[y + 1]
    ? w[x + 1] < v[y + 1]
    : w[x + 2] !== v[y + 2]
    ? w[x + 2] < v[y + 2]
    : orEqual
    ? w[x + 3] <= v[y + 3]
    : w[x + 3] < v[y + 3];
}

/** Writes `s` as UTF-8 into `b` at `at` (room for 3 bytes per unit); returns the bytes written. */
function putUtf8(s: string, b: Uint8Array, at: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return utf8.encodeInto(s, b.subarray(at)).written; // not ASCII: the slow way
    b[at + i] = c;
  }
  return n;
}

/** The (soul, field) stored at `off` in a key arena: u16 soul bytes, u16 field bytes, soul, field. */
function keyAt(arena: Uint8Array, off: number): FieldKey {
  const s = (arena[off] << 8) | arena[off + 1], f = (arena[off + 2] << 8) | arena[off + 3];
  const at = off + 4;
  return {
    soul: utf8Decoder.decode(arena.subarray(at, at + s)),
    field: utf8Decoder.decode(arena.subarray(at + s, at + s + f)),
  };
}

/** Bytes of the key stored at `off` in an arena, header included. */
function keyBytesAt(arena: Uint8Array, off: number): number {
  return 4 + ((arena[off] << 8) | arena[off + 1]) + ((arena[off + 2] << 8) | arena[off + 3]);
}

/** FNV-1a over `b[at, at + n)`, finished with a multiply-xorshift so that low bits mix well. */
function hashBytes(b: Uint8Array, at: number, n: number): number {
  let h = 0x811c9dc5;
  for (let i = at; i < at + n; i++) h = Math.imul(h ^ b[i], 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

/**
 * An immutable, sorted view of the index: what one sync session reconciles.
 * It reads the index's columns as they were when it was taken (the index
 * copies a chunk of ids before changing a slot a snapshot can see), so taking one
 * costs no copy of the ids: only the sorted order (4 bytes per item) and a
 * prefix sum per 64 items.
 */
export class IndexSnapshot {
  /** Number of items. */
  readonly size: number;
  /** Slots in ascending id order. */
  readonly #order: Uint32Array;
  /** The ids by slot: 4 big-endian words each, in chunks of CHUNK_SLOTS slots. */
  readonly #chunks: readonly Uint32Array[];
  readonly #keyOff: Uint32Array;
  readonly #arena: Uint8Array;
  /** `4 * (buckets + 1)` words: the sum mod 2^128 of the first `64 * b` ids. */
  readonly #sums: Uint32Array;

  /** @internal Taken by {@link SyncIndex.snapshot}. */
  constructor(
    size: number,
    order: Uint32Array,
    chunks: readonly Uint32Array[],
    keyOff: Uint32Array,
    arena: Uint8Array,
  ) {
    this.size = size;
    this.#order = order;
    this.#chunks = chunks;
    this.#keyOff = keyOff;
    this.#arena = arena;
    const buckets = size >>> BUCKET_SHIFT;
    const sums = new Uint32Array(4 * (buckets + 1));
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (let i = 0, b = 1; b <= buckets; b++) {
      for (const end = b << BUCKET_SHIFT; i < end; i++) {
        const slot = order[i], words = chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
        // 128-bit add, low word first; each partial sum stays below 2^33, exact in a double.
        let s = a3 + words[x + 3];
        a3 = s >>> 0;
        s = a2 + words[x + 2] + (s > 0xffffffff ? 1 : 0);
        a2 = s >>> 0;
        s = a1 + words[x + 1] + (s > 0xffffffff ? 1 : 0);
        a1 = s >>> 0;
        a0 = (a0 + words[x] + (s > 0xffffffff ? 1 : 0)) >>> 0;
      }
      sums[4 * b] = a0, sums[4 * b + 1] = a1, sums[4 * b + 2] = a2, sums[4 * b + 3] = a3;
    }
    this.#sums = sums;
  }

  /** Index of the first item whose id is ≥ `bound` (16 bytes, or fewer: zero-padded; `null` = +∞). */
  lowerBound(bound: Uint8Array | null): number {
    if (bound === null) return this.size;
    const b = new Uint8Array(ID_BYTES);
    b.set(bound.subarray(0, ID_BYTES));
    const w0 = wordAt(b, 0), w1 = wordAt(b, 4), w2 = wordAt(b, 8), w3 = wordAt(b, 12);
    const chunks = this.#chunks, order = this.#order;
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, slot = order[mid];
      const ids = chunks[slot >>> CHUNK_SHIFT], m = (slot & CHUNK_MASK) << 2;
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
    const slot = this.#order[i], words = this.#chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
    for (let w = 0; w < 4; w++) if (words[x + w] !== wordAt(id, 4 * w)) return -1;
    return i;
  }

  /** The id of item `i` as 16 bytes. */
  id(i: number): Uint8Array {
    const out = new Uint8Array(ID_BYTES);
    this.copyIds(i, i + 1, out, 0);
    return out;
  }

  /** The (soul, field) of item `i`. */
  key(i: number): FieldKey {
    return keyAt(this.#arena, this.#keyOff[this.#order[i]]);
  }

  /** Writes the ids of items `[from, to)` into `out` at `offset` (16 bytes each). */
  copyIds(from: number, to: number, out: Uint8Array, offset: number): void {
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const chunks = this.#chunks, order = this.#order;
    for (let i = from; i < to; i++) {
      const slot = order[i], w = chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
      const at = offset + ID_BYTES * (i - from);
      v.setUint32(at, w[x]);
      v.setUint32(at + 4, w[x + 1]);
      v.setUint32(at + 8, w[x + 2]);
      v.setUint32(at + 12, w[x + 3]);
    }
  }

  /** The sum mod 2^128 of the first `i` ids, into `out[at..at+3]`. */
  #prefix(i: number, out: Float64Array, at: number): void {
    const b = i >>> BUCKET_SHIFT, s = this.#sums, chunks = this.#chunks, order = this.#order;
    let a0 = s[4 * b], a1 = s[4 * b + 1], a2 = s[4 * b + 2], a3 = s[4 * b + 3];
    for (let k = b << BUCKET_SHIFT; k < i; k++) {
      const slot = order[k], w = chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
      let t = a3 + w[x + 3];
      a3 = t >>> 0;
      t = a2 + w[x + 2] + (t > 0xffffffff ? 1 : 0);
      a2 = t >>> 0;
      t = a1 + w[x + 1] + (t > 0xffffffff ? 1 : 0);
      a1 = t >>> 0;
      a0 = (a0 + w[x] + (t > 0xffffffff ? 1 : 0)) >>> 0;
    }
    out[at] = a0, out[at + 1] = a1, out[at + 2] = a2, out[at + 3] = a3;
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
    const p = new Float64Array(8);
    for (let k = 0; k < n; k++) {
      const at = FINGERPRINT_BYTES * k;
      this.#prefix(starts[k], p, 0);
      this.#prefix(ends[k], p, 4);
      let borrow = 0;
      for (let w = 3; w >= 0; w--) {
        const d = p[4 + w] - p[w] - borrow;
        v.setUint32(at + 4 * w, d >>> 0);
        borrow = d < 0 ? 1 : 0;
      }
      v.setUint32(at + 16, ends[k] - starts[k]);
    }
    return out;
  }
}

/** Progress of {@link SyncIndex.build}, for tests and status. */
export interface SyncIndexBuildStats {
  /** Whether a saved index was loaded (else every record was read and hashed). */
  readonly loaded: boolean;
  /** Records read from the store while building (only those changed since the save, after a load). */
  readonly recordsRead: number;
}

/** When a running index saves itself ({@link SyncIndex.saveEvery}). */
export interface SyncIndexSavePolicy {
  /**
   * Save once at least this many records were indexed since the last save
   * (default: {@link SAVE_EVERY_RECORDS} or a sixteenth of the items, the larger).
   */
  readonly records?: number;
  /** Check this often, in ms (default {@link SAVE_INTERVAL_MS}): saves are at least this far apart. */
  readonly intervalMs?: number;
  /** Told of a save that failed (it is tried again at a later check); default: nothing. */
  readonly onError?: (error: unknown) => void;
}

/**
 * The live index of one database, as columns indexed by slot (one slot per
 * (soul, field), kept for good: records are never removed, only replaced):
 * the id (4 words), the key's offset in a byte arena; an open-addressing
 * table from key to slot; and the sorted order of the last snapshot.
 */
export class SyncIndex {
  readonly kernels: Kernels;
  /** Number of slots (= items). */
  #n = 0;
  /**
   * The ids by slot, in chunks of CHUNK_SLOTS slots: changing a slot a
   * snapshot can see copies its chunk (1 MiB), not the column (37 MB at
   * 2.3M items), and the column grows by adding chunks.
   */
  #chunks: Uint32Array[] = [];
  /** Per chunk: whether a snapshot holds it (then a slot it sees is changed in a copy). */
  #chunkShared: boolean[] = [];
  #keyOff: Uint32Array = new Uint32Array(1024);
  #arena: Uint8Array = new Uint8Array(16 * 1024);
  #arenaLen = 0;
  /** Slot + 1 per entry, 0 = empty; a power of two, at most 3/4 full. */
  #table: Int32Array = new Int32Array(2048);
  /** Slots in id order as of the last snapshot, which saw slots `[0, #sortedN)`. */
  #sorted: Uint32Array = new Uint32Array(0);
  #sortedN = 0;
  /** Slots below #sortedN whose id changed since the last snapshot (each once, flagged in #dirty). */
  #changed: number[] = [];
  #dirty: Uint8Array = new Uint8Array(1024);
  /** Whether slot = position in id order for every slot (see #renumber); any change ends it. */
  #inOrder = false;
  #snapshot: IndexSnapshot | undefined;
  #scratch = new Uint8Array(4 + 6 * 512);
  #db: Database | undefined;
  #unsubscribe: (() => void) | undefined;
  #stats: SyncIndexBuildStats = { loaded: false, recordsRead: 0 };
  /** Records indexed since the columns were last handed to the store (what a build after a crash rereads). */
  #sinceSave = 0;
  /** The save running or queued last (saves run one at a time, in order). */
  #saving: Promise<void> | undefined;
  /** The timer of {@link saveEvery}. */
  #saveTimer: ReturnType<typeof setInterval> | undefined;
  /** Saves done (for tests and status). */
  #saves = 0;

  /** An empty index (use {@link SyncIndex.build} to follow a database). */
  constructor(kernels: Kernels) {
    this.kernels = kernels;
  }

  /**
   * The index of `db`'s current records, kept current through `db.onCommit`
   * until {@link SyncIndex.close}. When the store holds a saved index (see
   * {@link save}), it is loaded and only the records changed since are read;
   * else every record is read (a page at a time, yielding to the event loop
   * between pages) and hashed, and the result is saved in the background.
   */
  static async build(db: Database, options: { pageSize?: number } = {}): Promise<SyncIndex> {
    let index = new SyncIndex(db.kernels);
    const pageSize = options.pageSize ?? 10_000;
    let pending: (readonly FieldRecord[])[] | undefined = [];
    // Subscribe first so nothing committed during the scan is missed; commits seen
    // meanwhile are applied after the scan, in commit order, so the newest wins.
    const listener = (records: readonly FieldRecord[]): void => {
      if (pending) pending.push(records);
      else index.update(records);
    };
    const unsubscribe = db.onCommit(listener);
    try {
      let after = 0, loaded = false, read = 0, lastYield = performance.now();
      const saved = await db.readAux(AUX_NAME).catch(() => undefined);
      const from = saved === undefined ? undefined : SyncIndex.#decode(db.kernels, saved);
      if (from !== undefined) {
        index = from.index;
        after = from.seq;
        loaded = true;
      }
      for (let cursor: number | undefined;;) {
        const page = await db.changes(after, { limit: pageSize, cursor });
        read += page.records.length;
        index.update(page.records);
        if ((cursor = page.cursor) === undefined) break;
        if (performance.now() - lastYield > YIELD_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0)); // let other work run
          lastYield = performance.now();
        }
      }
      for (const records of pending) index.update(records);
      if (!loaded) index.#renumber(); // nothing has seen the columns yet
      index.#stats = { loaded, recordsRead: read };
    } catch (e) {
      unsubscribe();
      throw e;
    } finally {
      pending = undefined;
    }
    index.#db = db;
    index.#unsubscribe = unsubscribe;
    if (!index.#stats.loaded || index.#stats.recordsRead >= Math.max(SAVE_AFTER_READS, index.#n >>> 4)) {
      index.save().catch(() => {}); // the next build loads it; a failed save only means a full build
    }
    return index;
  }

  /** How the last {@link build} went. */
  get buildStats(): SyncIndexBuildStats {
    return this.#stats;
  }

  /** Number of items. */
  get size(): number {
    return this.#n;
  }

  /** Inserts records, each replacing whatever version of its (soul, field) the index held. */
  update(records: readonly FieldRecord[]): void {
    if (records.length === 0) return;
    this.#sinceSave += records.length;
    const ids = itemIds(this.kernels, records);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const len = this.#encodeKey(r.soul, r.field);
      const mask = this.#table.length - 1;
      let pos = hashBytes(this.#scratch, 0, len) & mask, slot = -1;
      for (let e; (e = this.#table[pos]) !== 0; pos = (pos + 1) & mask) {
        if (this.#keyIs(e - 1, len)) {
          slot = e - 1;
          break;
        }
      }
      if (slot < 0) {
        slot = this.#append(len);
        this.#table[pos] = slot + 1;
        if (4 * this.#n > 3 * this.#table.length) this.#rehash(2 * this.#table.length);
      } else if (this.#sameId(slot, ids, ID_BYTES * i)) continue;
      else if (slot < this.#sortedN) {
        const c = slot >>> CHUNK_SHIFT;
        if (this.#chunkShared[c]) {
          this.#chunks[c] = this.#chunks[c].slice();
          this.#chunkShared[c] = false;
        }
        if (this.#dirty[slot] === 0) {
          this.#dirty[slot] = 1;
          this.#changed.push(slot);
        }
      }
      const w = this.#chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2, at = ID_BYTES * i;
      w[x] = wordAt(ids, at);
      w[x + 1] = wordAt(ids, at + 4);
      w[x + 2] = wordAt(ids, at + 8);
      w[x + 3] = wordAt(ids, at + 12);
      this.#snapshot = undefined;
      this.#inOrder = false;
    }
  }

  /** Writes the key `(soul, field)` into the scratch buffer as the arena holds it; returns its length. */
  #encodeKey(soul: string, field: string): number {
    const need = 4 + 3 * (soul.length + field.length);
    if (need > this.#scratch.length) this.#scratch = new Uint8Array(need);
    const b = this.#scratch;
    const s = putUtf8(soul, b, 4);
    const f = putUtf8(field, b, 4 + s);
    if (s > MAX_KEY_PART || f > MAX_KEY_PART) {
      throw new RangeError(`Cannot index a record: its soul or field exceeds ${MAX_KEY_PART} bytes`);
    }
    b[0] = s >>> 8, b[1] = s & 0xff, b[2] = f >>> 8, b[3] = f & 0xff;
    return 4 + s + f;
  }

  /** Whether slot `slot` holds the key in the scratch buffer. */
  #keyIs(slot: number, len: number): boolean {
    const a = this.#arena, off = this.#keyOff[slot], b = this.#scratch;
    if (keyBytesAt(a, off) !== len) return false;
    for (let i = 0; i < len; i++) if (a[off + i] !== b[i]) return false;
    return true;
  }

  #sameId(slot: number, ids: Uint8Array, at: number): boolean {
    const w = this.#chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
    return w[x] === wordAt(ids, at) && w[x + 1] === wordAt(ids, at + 4) &&
      w[x + 2] === wordAt(ids, at + 8) && w[x + 3] === wordAt(ids, at + 12);
  }

  /** A new slot for the key in the scratch buffer (its id is written by the caller). */
  #append(len: number): number {
    const slot = this.#n++;
    if (
      slot >= this.#keyOff.length || slot >= this.#chunks.length << CHUNK_SHIFT ||
      this.#arenaLen + len > this.#arena.length
    ) this.#grow(slot + 1, len);
    this.#arena.set(this.#scratch.subarray(0, len), this.#arenaLen);
    this.#keyOff[slot] = this.#arenaLen;
    this.#arenaLen += len;
    return slot;
  }

  /**
   * Makes room for `slots` slots and `len` more arena bytes. Columns grow by
   * an eighth (amortized O(1), and little slack: at 2.3M items doubling
   * would hold 60 MB for nothing; columns loaded from a saved index start
   * full).
   */
  #grow(slots: number, len: number): void {
    const slack = (n: number) => n + Math.max(1024, n >>> 3);
    while (this.#chunks.length << CHUNK_SHIFT < slots) {
      this.#chunks.push(new Uint32Array(4 * CHUNK_SLOTS));
      this.#chunkShared.push(false);
    }
    if (slots > this.#keyOff.length) {
      const cap = slack(slots), n = this.#n - 1;
      const keyOff = new Uint32Array(cap);
      keyOff.set(this.#keyOff.subarray(0, n));
      this.#keyOff = keyOff;
      const dirty = new Uint8Array(cap);
      dirty.set(this.#dirty.subarray(0, Math.min(n, this.#dirty.length)));
      this.#dirty = dirty;
    }
    if (this.#arenaLen + len > this.#arena.length) {
      const arena = new Uint8Array(Math.max(16 * 1024, slack(this.#arenaLen + len)));
      arena.set(this.#arena.subarray(0, this.#arenaLen));
      this.#arena = arena;
    }
  }

  /** Rebuilds the key table with `size` entries (a power of two). */
  #rehash(size: number): void {
    const table = new Int32Array(size), mask = size - 1, a = this.#arena, off = this.#keyOff;
    for (let slot = 0; slot < this.#n; slot++) {
      let pos = hashBytes(a, off[slot], keyBytesAt(a, off[slot])) & mask;
      while (table[pos] !== 0) pos = (pos + 1) & mask;
      table[pos] = slot + 1;
    }
    this.#table = table;
  }

  /** The current sorted view; rebuilt (in O(n + k log k) for k changes) only after changes. */
  snapshot(): IndexSnapshot {
    if (this.#snapshot) return this.#snapshot;
    this.#sort();
    this.#chunkShared.fill(true);
    this.#snapshot = new IndexSnapshot(
      this.#n,
      this.#sorted,
      this.#chunks.slice(),
      this.#keyOff,
      this.#arena,
    );
    return this.#snapshot;
  }

  /** Brings #sorted up to date: the changed and new slots sorted, merged with the others. */
  #sort(): void {
    if (this.#changed.length === 0 && this.#sortedN === this.#n) return;
    const w = this.#chunks, n = this.#n, old = this.#sorted, oldN = this.#sortedN;
    const changed = this.#changed;
    const added = new Uint32Array(changed.length + n - oldN);
    for (let i = 0; i < changed.length; i++) added[i] = changed[i];
    for (let s = oldN, i = changed.length; s < n; s++, i++) added[i] = s;
    sortSlots(added, w);
    // Merge the kept (sorted) slots with the sorted new and changed ones.
    const merged = new Uint32Array(n), dirty = this.#dirty;
    let i = 0, j = 0, k = 0;
    while (j < added.length) {
      while (i < oldN && dirty[old[i]] === 1) i++;
      if (i < oldN && slotBefore(w, old[i], added[j], true)) merged[k++] = old[i++];
      else merged[k++] = added[j++];
    }
    if (changed.length === 0) merged.set(old.subarray(i, oldN), k);
    else for (; i < oldN; i++) if (dirty[old[i]] === 0) merged[k++] = old[i];
    for (const s of changed) dirty[s] = 0;
    this.#changed = [];
    this.#sorted = merged;
    this.#sortedN = n;
  }

  /**
   * Renumbers the slots in id order (slot = position in the snapshot), in
   * place, so that a snapshot's pass over the ids in order reads memory in
   * sequence: at 2.3M items, summing them through a random slot order costs
   * ~450 ms in cache misses, in sequence ~20 ms. Done after a full build,
   * before anything has seen the columns (a loaded index is in order
   * already); changes since then go to the end or in place and only slowly
   * spoil the order. A save writes the slots in id order without moving the
   * live columns.
   */
  #renumber(): void {
    this.#sort();
    const n = this.#n, order = this.#sorted, off = this.#keyOff, pos = new Uint32Array(n);
    const chunks = this.#chunks;
    // Follow each cycle of the permutation, with #dirty (all 0 after #sort) marking done positions.
    const done = this.#dirty;
    for (let i = 0; i < n; i++) {
      if (done[i] === 1) continue;
      const v = chunks[i >>> CHUNK_SHIFT], x = (i & CHUNK_MASK) << 2;
      const w0 = v[x], w1 = v[x + 1], w2 = v[x + 2], w3 = v[x + 3], o = off[i];
      for (let j = i;;) {
        const k = order[j], w = chunks[j >>> CHUNK_SHIFT], y = (j & CHUNK_MASK) << 2;
        done[j] = 1;
        pos[k] = j;
        if (k === i) {
          w[y] = w0, w[y + 1] = w1, w[y + 2] = w2, w[y + 3] = w3, off[j] = o;
          break;
        }
        const u = chunks[k >>> CHUNK_SHIFT], z = (k & CHUNK_MASK) << 2;
        w[y] = u[z], w[y + 1] = u[z + 1], w[y + 2] = u[z + 2], w[y + 3] = u[z + 3], off[j] = off[k];
        j = k;
      }
    }
    done.fill(0, 0, n);
    const table = this.#table;
    for (let j = 0; j < table.length; j++) if (table[j] !== 0) table[j] = pos[table[j] - 1] + 1;
    this.#chunkShared = chunks.map(() => true);
    this.#sorted = identity(n);
    this.#inOrder = true;
    this.#snapshot = new IndexSnapshot(n, this.#sorted, chunks.slice(), off, this.#arena);
  }

  /** Records indexed since the last save began (a build after a crash would read about this many). */
  get unsaved(): number {
    return this.#sinceSave;
  }

  /** Saves done since this index was built (including the one a build may start). */
  get saves(): number {
    return this.#saves;
  }

  /**
   * Saves the index in the store (`writeAux`), for the next {@link build} to
   * load. The saved index holds every commit up to the store's seq when the
   * call began: everything committed up to then is applied first (the
   * database goes idle), and the next build reads what was committed since.
   * Saves run one at a time: a call while one runs waits for it and then
   * saves again. Does nothing for a store that keeps no auxiliary data.
   */
  save(): Promise<void> {
    const next = (this.#saving ?? Promise.resolve()).then(() => this.#save(), () => this.#save());
    this.#saving = next;
    const done = () => {
      if (this.#saving === next) this.#saving = undefined;
    };
    next.then(done, done);
    return next;
  }

  /**
   * Saves the index from time to time while it follows the database, so that
   * a build after a crash (which finds the last save) reads a bounded number
   * of records: every `intervalMs` it checks, and saves if at least `records`
   * were indexed since the last save and no save is running. A failed save
   * (a full disk: `DiskFullError`) goes to `onError` and is tried again at a
   * later check. Replaces an earlier policy; {@link close} ends it. Does
   * nothing for a store that keeps no auxiliary data.
   */
  saveEvery(policy: SyncIndexSavePolicy = {}): void {
    const interval = policy.intervalMs ?? SAVE_INTERVAL_MS;
    if (!(interval > 0) || (policy.records !== undefined && !(policy.records >= 1))) {
      throw new RangeError(
        "Cannot save the sync index periodically: intervalMs and records must be positive",
      );
    }
    if (this.#saveTimer !== undefined) clearInterval(this.#saveTimer);
    this.#saveTimer = undefined;
    if (this.#db?.canSaveAux !== true) return; // nowhere to save (a memory store)
    this.#saveTimer = setInterval(() => {
      const due = policy.records ?? Math.max(SAVE_EVERY_RECORDS, this.#n >>> 4);
      if (this.#saving !== undefined || this.#sinceSave < due || this.#unsubscribe === undefined) return;
      this.save().catch((e) => policy.onError?.(e));
    }, interval);
    (this.#saveTimer as { unref?: () => void }).unref?.();
  }

  async #save(): Promise<void> {
    const db = this.#db;
    if (db === undefined || !db.canSaveAux) return;
    const seq = await db.lastSeq();
    await db.idle(); // every commit up to `seq` has reached onCommit, so the index holds it
    if (this.#unsubscribe === undefined) return; // closed meanwhile: it may have missed commits
    // What is saved is the index as of now, read across later turns: the sorted order is a
    // new array at each sort, the id chunks are copied before a slot below n changes (as
    // for a snapshot), key offsets and arena bytes below n are never changed, and the key
    // table (changed in place by inserts) is copied.
    this.#sort();
    this.#chunkShared.fill(true);
    const n = this.#n, order = this.#sorted, keyOff = this.#keyOff, arenaLen = this.#arenaLen;
    const arena = this.#arena.subarray(0, arenaLen), table = this.#table.slice();
    const chunks = this.#chunks.slice(0, (n + CHUNK_MASK) >>> CHUNK_SHIFT);
    const inOrder = this.#inOrder;
    const unsaved = this.#sinceSave;
    this.#sinceSave = 0;
    try {
      const bytes = (a: Uint32Array | Int32Array, words: number) =>
        new Uint8Array(a.buffer, a.byteOffset, 4 * words);
      const header = new Uint32Array(SAVED_HEADER_WORDS);
      header[0] = SAVED_MAGIC, header[1] = SAVED_VERSION, header[2] = BYTE_ORDER_MARK, header[3] = n;
      header[4] = Math.floor(seq / 2 ** 32), header[5] = seq >>> 0, header[6] = arenaLen;
      header[7] = table.length;
      const parts = [bytes(header, SAVED_HEADER_WORDS)];
      const words = (c: number) => 4 * Math.min(CHUNK_SLOTS, n - (c << CHUNK_SHIFT));
      if (inOrder) {
        for (let c = 0; c < chunks.length; c++) parts.push(bytes(chunks[c], words(c)));
        parts.push(bytes(keyOff, n), bytes(table, table.length), arena);
      } else {
        // The file holds slots in id order (what build loads): gathered here, a chunk at a time,
        // giving the event loop a turn every YIELD_MS (at 2.3M items, renumbering the live
        // columns instead blocked for 150-200 ms).
        const offs = new Uint32Array(n), pos = new Uint32Array(n);
        let last = performance.now();
        for (let c = 0, i = 0; c < chunks.length; c++) {
          const out = new Uint32Array(words(c));
          for (let y = 0; y < out.length; y += 4, i++) {
            const slot = order[i], w = chunks[slot >>> CHUNK_SHIFT], x = (slot & CHUNK_MASK) << 2;
            out[y] = w[x], out[y + 1] = w[x + 1], out[y + 2] = w[x + 2], out[y + 3] = w[x + 3];
            offs[i] = keyOff[slot];
            pos[slot] = i;
          }
          parts.push(bytes(out, out.length));
          if (performance.now() - last > YIELD_MS) last = await nextTurn();
        }
        for (let j = 0; j < table.length; j++) {
          if (table[j] !== 0) table[j] = pos[table[j] - 1] + 1;
          if ((j & 0xffff) === 0xffff && performance.now() - last > YIELD_MS) last = await nextTurn();
        }
        parts.push(bytes(offs, n), bytes(table, table.length), arena);
      }
      await db.writeAux(AUX_NAME, parts);
    } catch (e) {
      this.#sinceSave += unsaved; // still unsaved: the next check tries again
      throw e;
    }
    this.#saves++;
  }

  /** A saved index (as {@link save} wrote it) and its seq, or `undefined` when it is not one this code wrote. */
  static #decode(kernels: Kernels, saved: Uint8Array[]): { index: SyncIndex; seq: number } | undefined {
    if (saved.length < 4 || saved[0].length !== 4 * SAVED_HEADER_WORDS) return undefined;
    // Each part is a column (a view of its bytes, or of a copy where they are not aligned).
    const u32 = (b: Uint8Array) => {
      const a = b.byteOffset % 4 === 0 ? b : b.slice();
      return new Uint32Array(a.buffer, a.byteOffset, a.length >>> 2);
    };
    const h = u32(saved[0]);
    if (h[0] !== SAVED_MAGIC || h[1] !== SAVED_VERSION || h[2] !== BYTE_ORDER_MARK) return undefined;
    const n = h[3], seq = h[4] * 2 ** 32 + h[5], arenaLen = h[6], size = h[7];
    const c = (n + CHUNK_MASK) >>> CHUNK_SHIFT, rest = saved.slice(1 + c);
    if (
      saved.length !== 4 + c || rest[0].length !== 4 * n || rest[1].length !== 4 * size ||
      rest[2].length !== arenaLen || size < 2048 || (size & (size - 1)) !== 0 || 4 * n > 3 * size
    ) {
      return undefined;
    }
    // The id column's chunks, each in the buffer of its part when that has room for a whole
    // chunk (see Store.readAux); the other columns take the room after their part.
    const chunks: Uint32Array[] = [];
    for (let i = 0; i < c; i++) {
      const part = saved[1 + i];
      if (part.length !== 16 * Math.min(CHUNK_SLOTS, n - (i << CHUNK_SHIFT))) return undefined;
      if (part.byteOffset === 0 && part.buffer.byteLength >= 16 * CHUNK_SLOTS) {
        chunks.push(new Uint32Array(part.buffer, 0, 4 * CHUNK_SLOTS));
      } else {
        const chunk = new Uint32Array(4 * CHUNK_SLOTS);
        chunk.set(u32(part));
        chunks.push(chunk);
      }
    }
    const room = (b: Uint8Array, unit: number) =>
      b.byteOffset === 0 ? Math.floor(b.buffer.byteLength / unit) : 0;
    const cap = Math.max(n, room(rest[0], 4));
    const index = new SyncIndex(kernels);
    index.#chunks = chunks;
    index.#chunkShared = chunks.map(() => false);
    const keyOff = index.#keyOff = cap > n ? new Uint32Array(rest[0].buffer, 0, cap) : u32(rest[0]);
    const t = u32(rest[1]);
    const table = index.#table = new Int32Array(t.buffer, t.byteOffset, size);
    const arena = index.#arena = room(rest[2], 1) > arenaLen ? new Uint8Array(rest[2].buffer) : rest[2];
    // Check what a wrong file could break (O(n), sequential): ids strictly ascending, keys
    // inside the arena, the table naming each slot once.
    for (let s = 0; s < n; s++) {
      if (s > 0 && !slotBefore(chunks, s - 1, s, false)) return undefined;
      const off = keyOff[s];
      if (off + 4 > arenaLen || off + keyBytesAt(arena, off) > arenaLen) return undefined;
    }
    const seen = new Uint8Array(n);
    let entries = 0;
    for (let j = 0; j < size; j++) {
      const e = table[j];
      if (e === 0) continue;
      if (e < 0 || e > n || seen[e - 1] === 1) return undefined;
      seen[e - 1] = 1;
      entries++;
    }
    if (entries !== n) return undefined;
    index.#n = index.#sortedN = n;
    index.#arenaLen = arenaLen;
    index.#sorted = identity(n);
    index.#inOrder = true;
    index.#dirty = new Uint8Array(cap);
    return { index, seq };
  }

  /** Stops following the database. The index stays readable. Idempotent. */
  close(): void {
    if (this.#saveTimer !== undefined) clearInterval(this.#saveTimer);
    this.#saveTimer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

/** Resolves at a later turn of the event loop, with the time then. */
function nextTurn(): Promise<number> {
  return new Promise((resolve) => setTimeout(() => resolve(performance.now()), 0));
}

/** `[0, 1, ..., n - 1]`. */
function identity(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/**
 * Sorts slots by their ids in place. Each slot is packed with the top bits of
 * its id's first word into one exact double (bits · 2^slotBits + slot) and
 * sorted natively; runs with equal top bits are then ordered by the full id.
 */
function sortSlots(slots: Uint32Array, chunks: readonly Uint32Array[]): void {
  const n = slots.length;
  if (n < 2) return;
  let max = 0;
  for (let i = 0; i < n; i++) if (slots[i] > max) max = slots[i];
  const slotBits = Math.max(1, 32 - Math.clz32(max)), wordBits = Math.min(32, 53 - slotBits);
  const scale = 2 ** slotBits, drop = 32 - wordBits;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = slots[i], first = chunks[s >>> CHUNK_SHIFT][(s & CHUNK_MASK) << 2];
    const top = drop === 0 ? first : first >>> drop;
    packed[i] = top * scale + slots[i];
  }
  packed.sort();
  for (let i = 0; i < n; i++) slots[i] = packed[i] % scale;
  for (let i = 1; i < n; i++) {
    // Insertion sort within runs of equal top bits (rare: about n² / 2^(wordBits + 1) pairs).
    for (let j = i; j > 0 && slotBefore(chunks, slots[j], slots[j - 1], false); j--) {
      const t = slots[j];
      slots[j] = slots[j - 1];
      slots[j - 1] = t;
    }
  }
}
