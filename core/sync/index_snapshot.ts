/**
 * A sorted, immutable view of the sync index, and the range fingerprints
 * that range-based set reconciliation (reconcile.ts) compares.
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
 * @module
 */
import type { FieldKey } from "../store.ts";
import { CHUNK_MASK, CHUNK_SHIFT, keyAt, wordAt } from "./_columns.ts";
import { ID_BYTES } from "./item_id.ts";

/** Bytes of a range fingerprint on the wire: a 16-byte sum and a u32 count. */
export const FINGERPRINT_BYTES = 20;
/** log2 of the items per stored prefix sum (64): a range sum adds at most 2 × 63 ids to two stored sums. */
const BUCKET_SHIFT = 6;

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
