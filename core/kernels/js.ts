/**
 * The `js` kernels: the {@link Kernels} contract in plain TypeScript.
 *
 * This is the fallback for runtimes without WebAssembly and the baseline the
 * WASM kernels are measured against, so it is written to be fast in its own
 * right: resident data in growable typed arrays, ids as big-endian 32-bit
 * words, bounded heaps for k-selection, no allocation in inner loops. Float
 * arithmetic follows the rules in `types.ts` exactly (`Math.fround` on every
 * product and sum, four lane accumulators), so results are bit-identical to
 * the WASM kernels.
 *
 * @module
 */
import {
  checkBatch,
  checkBytes,
  checkCount,
  checkDim,
  checkId,
  checkIds,
  checkMergeLength,
  checkMetric,
  checkPair,
  checkVector,
} from "./_check.ts";
import { sha256 as sha256Js, sha256Batch as sha256BatchJs } from "./_sha256.ts";
import { Slots } from "./_slots.ts";
import {
  ID_BYTES,
  type IdTable,
  type Kernels,
  type MergeBatch,
  type MergeColumns,
  type Metric,
  type TopK,
  type VectorIndex,
} from "./types.ts";

/** 32-bit words per id. */
const ID_WORDS = ID_BYTES / 4;

/** Largest N for which `xorSort` packs (first distance word, index) exactly into one f64 sort key. */
const PACKED_SORT_MAX = 2 ** 21;

function disposed(what: string): TypeError {
  return new TypeError(`Cannot use the ${what}: it has been disposed`);
}

/** Reads the 32-bit big-endian word at `off` of `b` (any offset; result is a signed int32). */
function wordBE(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}

/** Reads the 8 big-endian words of the id at `off` of `src` into `dst[at..at + 8)`. */
function readId(src: Uint8Array, off: number, dst: Int32Array, at: number): void {
  for (let w = 0; w < ID_WORDS; w++, off += 4) dst[at + w] = wordBE(src, off);
}

// ---------------------------------------------------------------------------
// XOR distance

function xorSort(ids: Uint8Array, target: Uint8Array): Uint32Array {
  const n = checkIds(ids);
  checkId(target, "target");
  const order = new Uint32Array(n);
  if (n === 0) return order;
  const t = new Int32Array(ID_WORDS);
  readId(target, 0, t, 0);

  /** Orders two indices by the remaining distance bytes (after the first word), then by index. */
  const compareFrom = (word: number) => (x: number, y: number): number => {
    for (let w = word; w < ID_WORDS; w++) {
      const dx = (wordBE(ids, x * ID_BYTES + w * 4) ^ t[w]) >>> 0;
      const dy = (wordBE(ids, y * ID_BYTES + w * 4) ^ t[w]) >>> 0;
      if (dx !== dy) return dx < dy ? -1 : 1;
    }
    return x - y;
  };

  if (n > PACKED_SORT_MAX) {
    for (let i = 0; i < n; i++) order[i] = i;
    return order.sort(compareFrom(0));
  }

  // Sort by the first distance word with the engine's native numeric sort:
  // the key `d0 * n + i` is an exact integer below 2^53 and ties break by index.
  const t0 = t[0];
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = ((wordBE(ids, i * ID_BYTES) ^ t0) >>> 0) * n + i;
  keys.sort();
  for (let i = 0; i < n; i++) order[i] = keys[i] % n;

  // Runs sharing the first distance word (rare for random ids) are refined on the other words.
  let compare: ((x: number, y: number) => number) | undefined;
  for (let i = 0; i < n;) {
    const d0 = (keys[i] - order[i]) / n;
    let j = i + 1;
    while (j < n && (keys[j] - order[j]) / n === d0) j++;
    if (j - i > 1) order.subarray(i, j).sort(compare ??= compareFrom(1));
    i = j;
  }
  return order;
}

function bucketIndex(ids: Uint8Array, self: Uint8Array): Uint16Array {
  const n = checkIds(ids);
  checkId(self, "self");
  const s = new Int32Array(ID_WORDS);
  readId(self, 0, s, 0);
  const out = new Uint16Array(n);
  for (let i = 0, off = 0; i < n; i++, off += ID_BYTES) {
    let prefix = 256;
    for (let w = 0; w < ID_WORDS; w++) {
      const d = wordBE(ids, off + w * 4) ^ s[w];
      if (d !== 0) {
        prefix = w * 32 + Math.clz32(d);
        break;
      }
    }
    out[i] = prefix;
  }
  return out;
}

/**
 * Searches (one per key) served by full scans since the last change before the
 * search index is built: the rule of the WASM kernels (`ID_INDEX_AFTER` in
 * `wasm.ts`), so both do the same work. A build costs a few scans, so a table
 * that changes between every query stays on the scan, and repeated queries
 * over a stable table go through the index.
 */
const INDEX_AFTER = 8;

/** Most prefix bits of the search index (a table of 2^22 + 1 offsets). */
const INDEX_MAX_BITS = 22;

/**
 * Resident id table. Ids are kept by slot as big-endian words in one growable
 * Int32Array. Beside it, the first word of every live id sits in a dense
 * column (`#first`, with `#slotAt` naming each entry's slot): a scan streams
 * through that column and reads a whole id only when the first words tie,
 * which for ids that are hashes is rare.
 *
 * A table queried repeatedly without changes gets a search index, the same
 * as the WASM kernels' (`idIndex` in `asm/xor.ts`): the live ids sorted by id
 * then slot (`#ixWords`, `#ixFirst`, `#ixSlot`: one record per id), and
 * `#prefix[p]`, the first record whose top `#bits` bits are `>= p`. If the
 * ids sharing the top L bits with the target number at least k, the k nearest
 * are among them (every other id differs within those bits, so it is
 * farther), so a query runs the heap over the deepest such range alone.
 */
class JsIdTable implements IdTable {
  #slots = new Slots();
  /** Id words by slot. */
  #words = new Int32Array(16 * ID_WORDS);
  /** First word of each live id, dense: entries `0..size-1`, in no particular order. */
  #first = new Int32Array(16);
  /** Slot of each dense entry. */
  #slotAt = new Uint32Array(16);
  /** Dense entry of each live slot. */
  #entry = new Uint32Array(16);
  #target = new Int32Array(ID_WORDS);
  #heap = new Uint32Array(16);
  /** Sign-flipped first distance word of each heap entry (see `nearest`). */
  #heapKey = new Int32Array(16);
  /** Whether the search index describes the live ids. */
  #indexed = false;
  /** Searches served by scans since the last change. */
  #scans = 0;
  /** Prefix bits of the index. */
  #bits = 0;
  /** `#prefix[p]`: first index record whose top `#bits` bits are `>= p` (2^bits + 1 entries). */
  #prefix = new Uint32Array(0);
  /** Index records, sorted by id then slot: the id's words, ... */
  #ixWords = new Int32Array(0);
  /** ... its first word with the sign bit flipped (compares signed as the word does unsigned), ... */
  #ixFirst = new Int32Array(0);
  /** ... and its slot. */
  #ixSlot = new Uint32Array(0);
  #disposed = false;

  get size(): number {
    return this.#disposed ? 0 : this.#slots.size;
  }

  add(id: Uint8Array): number {
    this.#alive();
    checkId(id);
    const slot = this.#slots.take();
    this.#changed();
    if (slot >= this.#entry.length) this.#grow();
    readId(id, 0, this.#words, slot * ID_WORDS);
    const e = this.#slots.size - 1;
    this.#first[e] = this.#words[slot * ID_WORDS];
    this.#slotAt[e] = slot;
    this.#entry[slot] = e;
    return slot;
  }

  remove(slot: number): void {
    this.#alive();
    this.#slots.release(slot);
    this.#changed();
    // Move the last dense entry into the freed one.
    const e = this.#entry[slot];
    const last = this.#slots.size;
    const moved = this.#slotAt[last];
    this.#first[e] = this.#first[last];
    this.#slotAt[e] = moved;
    this.#entry[moved] = e;
  }

  get(slot: number): Uint8Array {
    this.#alive();
    this.#slots.check(slot);
    const out = new Uint8Array(ID_BYTES);
    const words = this.#words;
    for (let w = 0, at = slot * ID_WORDS, off = 0; w < ID_WORDS; w++, off += 4) {
      const v = words[at + w];
      out[off] = v >>> 24;
      out[off + 1] = v >>> 16;
      out[off + 2] = v >>> 8;
      out[off + 3] = v;
    }
    return out;
  }

  closest(target: Uint8Array, k: number): Uint32Array {
    this.#alive();
    checkId(target, "target");
    checkCount(k);
    const n = Math.min(k, this.#slots.size);
    const out = new Uint32Array(n);
    if (n > 0) this.#select(this.#useIndex(1), target, 1, n, out);
    return out;
  }

  place(keys: Uint8Array, r: number): Uint32Array {
    this.#alive();
    const m = checkIds(keys, "keys");
    checkCount(r, "r");
    const n = Math.min(r, this.#slots.size);
    const out = new Uint32Array(m * n);
    if (n > 0 && m > 0) this.#select(this.#useIndex(m), keys, m, n, out);
    return out;
  }

  dispose(): void {
    this.#disposed = true;
    this.#indexed = false;
    this.#words = new Int32Array(0);
    this.#first = new Int32Array(0);
    this.#slotAt = new Uint32Array(0);
    this.#entry = new Uint32Array(0);
    this.#heap = new Uint32Array(0);
    this.#heapKey = new Int32Array(0);
    this.#prefix = new Uint32Array(0);
    this.#ixWords = new Int32Array(0);
    this.#ixFirst = new Int32Array(0);
    this.#ixSlot = new Uint32Array(0);
  }

  #alive(): void {
    if (this.#disposed) throw disposed("id table");
  }

  #changed(): void {
    this.#indexed = false;
    this.#scans = 0;
  }

  /** Doubles every per-slot array, keeping its contents. */
  #grow(): void {
    const cap = this.#entry.length * 2;
    const words = new Int32Array(cap * ID_WORDS);
    words.set(this.#words);
    this.#words = words;
    const first = new Int32Array(cap);
    first.set(this.#first);
    this.#first = first;
    const slotAt = new Uint32Array(cap);
    slotAt.set(this.#slotAt);
    this.#slotAt = slotAt;
    const entry = new Uint32Array(cap);
    entry.set(this.#entry);
    this.#entry = entry;
  }

  /**
   * Whether a call doing `searches` searches goes through the index, building
   * it now if the scans it would otherwise cost (with those since the last
   * change) reach INDEX_AFTER.
   */
  #useIndex(searches: number): boolean {
    if (this.#indexed) return true;
    if (this.#scans + searches < INDEX_AFTER) {
      this.#scans += searches;
      return false;
    }
    const live = this.#slots.size;
    // About one id per prefix bucket (live >= 1 here).
    const bits = Math.min(INDEX_MAX_BITS, Math.max(1, 31 - Math.clz32(live)));
    if (this.#prefix.length < (1 << bits) + 1) this.#prefix = new Uint32Array((1 << bits) + 1);
    if (this.#ixSlot.length < live) {
      // Per-slot capacity: a power of two at least `live`.
      const cap = this.#entry.length;
      this.#ixWords = new Int32Array(cap * ID_WORDS);
      this.#ixFirst = new Int32Array(cap);
      this.#ixSlot = new Uint32Array(cap);
    }
    buildIndex(
      this.#words,
      this.#slots.flags(),
      bits,
      this.#prefix,
      this.#ixWords,
      this.#ixFirst,
      this.#ixSlot,
    );
    this.#bits = bits;
    this.#indexed = true;
    return true;
  }

  /**
   * For each of the `m` ids packed in `src`, writes the slots of the `n`
   * (1 ≤ n ≤ size) live ids closest to it to `out` (row `i` at `i * n`),
   * nearest first: through the index when `indexed` (it must then be
   * current), else by scans.
   */
  #select(indexed: boolean, src: Uint8Array, m: number, n: number, out: Uint32Array): void {
    if (this.#heap.length < n) {
      this.#heap = new Uint32Array(n);
      this.#heapKey = new Int32Array(n);
    }
    const t = this.#target, heap = this.#heap, key = this.#heapKey;
    if (indexed) {
      const prefix = this.#prefix, bits = this.#bits;
      const ixWords = this.#ixWords, ixFirst = this.#ixFirst, ixSlot = this.#ixSlot;
      for (let i = 0; i < m; i++) {
        readId(src, i * ID_BYTES, t, 0);
        nearestIndexed(prefix, bits, ixWords, ixFirst, ixSlot, t, n, heap, key, out, i * n);
      }
    } else {
      const words = this.#words, first = this.#first, slotAt = this.#slotAt, size = this.#slots.size;
      for (let i = 0; i < m; i++) {
        readId(src, i * ID_BYTES, t, 0);
        nearest(words, first, slotAt, size, t, n, heap, key, out, i * n);
      }
    }
  }
}

/** Whether id slot `x` (sign-flipped first distance word `kx`) is farther from `t` than slot `y` (`ky`). */
function farther(words: Int32Array, t: Int32Array, kx: number, x: number, ky: number, y: number): boolean {
  if (kx !== ky) return kx > ky;
  for (let w = 1, xo = x * ID_WORDS, yo = y * ID_WORDS; w < ID_WORDS; w++) {
    const dx = words[xo + w] ^ t[w];
    const dy = words[yo + w] ^ t[w];
    if (dx !== dy) return (dx >>> 0) > (dy >>> 0);
  }
  return x > y;
}

/** Restores the max-heap (farthest at the root) of `count` slots after the root changed. */
function siftDownFarthest(
  words: Int32Array,
  t: Int32Array,
  heap: Uint32Array,
  key: Int32Array,
  count: number,
): void {
  const s = heap[0], ks = key[0];
  let i = 0;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= count) break;
    if (c + 1 < count && farther(words, t, key[c + 1], heap[c + 1], key[c], heap[c])) c++;
    if (!farther(words, t, key[c], heap[c], ks, s)) break;
    heap[i] = heap[c];
    key[i] = key[c];
    i = c;
  }
  heap[i] = s;
  key[i] = ks;
}

/** Inserts slot `s` (sign-flipped first distance word `d0`) as entry `count` of the max-heap, sifting it up. */
function pushFarthest(
  words: Int32Array,
  t: Int32Array,
  heap: Uint32Array,
  key: Int32Array,
  count: number,
  s: number,
  d0: number,
): void {
  let i = count;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!farther(words, t, d0, s, key[p], heap[p])) break;
    heap[i] = heap[p];
    key[i] = key[p];
    i = p;
  }
  heap[i] = s;
  key[i] = d0;
}

/**
 * The `n` ids nearest to target words `t` among the `size` dense entries
 * (`first`, `slotAt`) of a table, written as slots to `out[at..at + n)`,
 * nearest first. `heap`/`key` are scratch of at least `n` entries: a max-heap
 * holding the farthest of the best so far at its root.
 */
function nearest(
  words: Int32Array,
  first: Int32Array,
  slotAt: Uint32Array,
  size: number,
  t: Int32Array,
  n: number,
  heap: Uint32Array,
  key: Int32Array,
  out: Uint32Array,
  at: number,
): void {
  // First distance words are compared as signed int32 with the sign bit
  // flipped: that orders them as unsigned and keeps them small integers.
  const t0 = t[0] ^ 0x80000000;
  let e = 0;
  for (; e < n; e++) pushFarthest(words, t, heap, key, e, slotAt[e], first[e] ^ t0);
  // Most entries are rejected on their first word alone.
  let top = key[0];
  for (; e < size; e++) {
    const d0 = first[e] ^ t0;
    if (d0 > top) continue;
    const s = slotAt[e];
    if (!farther(words, t, top, heap[0], d0, s)) continue;
    heap[0] = s;
    key[0] = d0;
    siftDownFarthest(words, t, heap, key, n);
    top = key[0];
  }
  // Pop the farthest repeatedly, filling the output from the back.
  for (let count = n; count > 0;) {
    out[at + --count] = heap[0];
    heap[0] = heap[count];
    key[0] = key[count];
    siftDownFarthest(words, t, heap, key, count);
  }
}

/**
 * Builds the search index of the live ids (`live[s] !== 0`, words by slot in
 * `words`) with `bits` prefix bits: fills `prefix` (`2^bits + 1` entries) and
 * one record per live id in `ixWords`, `ixFirst`, `ixSlot`, sorted by id,
 * then slot. A counting sort on the top bits (scattering in slot order), then
 * an insertion sort, which for about one id per bucket is one comparison per
 * record and never moves a record past its bucket.
 */
function buildIndex(
  words: Int32Array,
  live: Uint8Array,
  bits: number,
  prefix: Uint32Array,
  ixWords: Int32Array,
  ixFirst: Int32Array,
  ixSlot: Uint32Array,
): void {
  const buckets = 1 << bits, shift = 32 - bits, high = live.length;
  // Count ids per prefix, shifted by one so the prefix sum gives starts.
  prefix.fill(0, 0, buckets + 1);
  for (let s = 0; s < high; s++) if (live[s] !== 0) prefix[(words[s * ID_WORDS] >>> shift) + 1]++;
  for (let b = 1; b <= buckets; b++) prefix[b] += prefix[b - 1];
  let count = 0;
  for (let s = 0; s < high; s++) {
    if (live[s] === 0) continue;
    const o = s * ID_WORDS, w0 = words[o];
    const e = prefix[w0 >>> shift]++;
    for (let w = 0, r = e * ID_WORDS; w < ID_WORDS; w++) ixWords[r + w] = words[o + w];
    ixFirst[e] = w0 ^ 0x80000000;
    ixSlot[e] = s;
    count++;
  }
  // prefix[b] is now the end of bucket b: shift to starts.
  prefix.copyWithin(1, 0, buckets);
  prefix[0] = 0;
  // Stable, so equal ids stay in slot order.
  for (let i = 1; i < count; i++) {
    for (let j = i; j > 0 && recordLess(ixWords, ixFirst, j, j - 1); j--) {
      swapRecords(ixWords, ixFirst, ixSlot, j, j - 1);
    }
  }
}

/** Whether the id of index record `a` is less than that of record `b`. */
function recordLess(ixWords: Int32Array, ixFirst: Int32Array, a: number, b: number): boolean {
  const fa = ixFirst[a], fb = ixFirst[b];
  if (fa !== fb) return fa < fb;
  for (let w = 1, ao = a * ID_WORDS, bo = b * ID_WORDS; w < ID_WORDS; w++) {
    const x = ixWords[ao + w], y = ixWords[bo + w];
    if (x !== y) return (x >>> 0) < (y >>> 0);
  }
  return false;
}

function swapRecords(
  ixWords: Int32Array,
  ixFirst: Int32Array,
  ixSlot: Uint32Array,
  a: number,
  b: number,
): void {
  for (let w = 0, ao = a * ID_WORDS, bo = b * ID_WORDS; w < ID_WORDS; w++) {
    const x = ixWords[ao + w];
    ixWords[ao + w] = ixWords[bo + w];
    ixWords[bo + w] = x;
  }
  const f = ixFirst[a];
  ixFirst[a] = ixFirst[b];
  ixFirst[b] = f;
  const s = ixSlot[a];
  ixSlot[a] = ixSlot[b];
  ixSlot[b] = s;
}

/**
 * Like {@link nearest}, through the index built by {@link buildIndex}. The
 * heap holds record numbers: records of equal ids sit in slot order, so they
 * break ties as slots do; `out` gets their slots.
 */
function nearestIndexed(
  prefix: Uint32Array,
  bits: number,
  ixWords: Int32Array,
  ixFirst: Int32Array,
  ixSlot: Uint32Array,
  t: Int32Array,
  n: number,
  heap: Uint32Array,
  key: Int32Array,
  out: Uint32Array,
  at: number,
): void {
  // The deepest prefix of the target (at most `bits` bits, `bits - sh` of
  // them) whose range holds at least n records.
  const top = t[0] >>> (32 - bits);
  let lo = 0, hi = 0, sh = 0;
  for (;;) {
    const p = (top >>> sh) << sh;
    lo = prefix[p];
    hi = prefix[p + (1 << sh)];
    if (hi - lo >= n || sh === bits) break;
    sh++;
  }
  // Clustered ids: keep splitting on deeper bits (binary search) while the
  // range is large. Its records share the bits above `bit` and are sorted.
  if (sh === 0) {
    const limit = 2 * n + 32;
    for (let bit = bits; hi - lo > limit && bit < 256; bit++) {
      const w = bit >>> 5, b = 31 - (bit & 31);
      let a = lo, z = hi;
      while (a < z) {
        const mid = (a + z) >>> 1;
        if (((ixWords[mid * ID_WORDS + w] >>> b) & 1) === 0) a = mid + 1;
        else z = mid;
      }
      const one = ((t[w] >>> b) & 1) !== 0;
      const nlo = one ? a : lo, nhi = one ? hi : a;
      if (nhi - nlo < n) break;
      lo = nlo;
      hi = nhi;
    }
  }
  // The records' first words are stored sign-flipped: XOR with the plain
  // target word gives the sign-flipped distance word, as in `nearest`.
  const t0 = t[0];
  let e = lo;
  for (const end = lo + n; e < end; e++) pushFarthest(ixWords, t, heap, key, e - lo, e, ixFirst[e] ^ t0);
  let top0 = key[0];
  for (; e < hi; e++) {
    const d0 = ixFirst[e] ^ t0;
    if (d0 > top0) continue;
    if (!farther(ixWords, t, top0, heap[0], d0, e)) continue;
    heap[0] = e;
    key[0] = d0;
    siftDownFarthest(ixWords, t, heap, key, n);
    top0 = key[0];
  }
  for (let count = n; count > 0;) {
    out[at + --count] = ixSlot[heap[0]];
    heap[0] = heap[count];
    key[0] = key[count];
    siftDownFarthest(ixWords, t, heap, key, count);
  }
}

// ---------------------------------------------------------------------------
// HAM merge

/** The brand of batches made by these kernels; `merge` accepts no others. */
class JsMergeBatch implements MergeBatch {
  readonly capacity: number;
  readonly a: MergeColumns;
  readonly b: MergeColumns;
  readonly out: Uint8Array;
  #disposed = false;

  constructor(capacity: number) {
    this.capacity = capacity;
    // All twelve columns and the output share one buffer.
    const buffer = new ArrayBuffer(capacity * (12 * 4 + 1));
    const column = (i: number) => new Uint32Array(buffer, i * capacity * 4, capacity);
    this.a = Object.freeze({
      hlcHi: column(0),
      hlcLo: column(1),
      hashHi: column(2),
      hashLo: column(3),
      actorHi: column(4),
      actorLo: column(5),
    });
    this.b = Object.freeze({
      hlcHi: column(6),
      hlcLo: column(7),
      hashHi: column(8),
      hashLo: column(9),
      actorHi: column(10),
      actorLo: column(11),
    });
    this.out = new Uint8Array(buffer, 12 * 4 * capacity, capacity);
  }

  dispose(): void {
    this.#disposed = true;
  }

  static check(batch: unknown): asserts batch is JsMergeBatch {
    if (!(typeof batch === "object" && batch !== null && #disposed in batch)) {
      throw new TypeError("batch was not created by createMergeBatch of these kernels");
    }
    if ((batch as JsMergeBatch).#disposed) throw disposed("merge batch");
  }
}

function createMergeBatch(capacity: number): MergeBatch {
  checkCount(capacity, "capacity");
  return new JsMergeBatch(capacity);
}

function merge(batch: MergeBatch, length: number): Uint8Array {
  JsMergeBatch.check(batch);
  checkMergeLength(length, batch.capacity);
  const {
    hlcHi: aHlcHi,
    hlcLo: aHlcLo,
    hashHi: aHashHi,
    hashLo: aHashLo,
    actorHi: aActorHi,
    actorLo: aActorLo,
  } = batch.a;
  const {
    hlcHi: bHlcHi,
    hlcLo: bHlcLo,
    hashHi: bHashHi,
    hashLo: bHashLo,
    actorHi: bActorHi,
    actorLo: bActorLo,
  } = batch.b;
  const out = batch.out;
  for (let i = 0; i < length; i++) {
    // Compare the tuples field by field; Uint32Array reads are already unsigned.
    let x = aHlcHi[i], y = bHlcHi[i];
    if (x === y) {
      x = aHlcLo[i];
      y = bHlcLo[i];
      if (x === y) {
        x = aHashHi[i];
        y = bHashHi[i];
        if (x === y) {
          x = aHashLo[i];
          y = bHashLo[i];
          if (x === y) {
            x = aActorHi[i];
            y = bActorHi[i];
            if (x === y) {
              x = aActorLo[i];
              y = bActorLo[i];
            }
          }
        }
      }
    }
    out[i] = y > x ? 1 : 0;
  }
  return out.subarray(0, length);
}

// ---------------------------------------------------------------------------
// Vectors. Each loop below follows the arithmetic rules of `types.ts`: element
// i goes to lane i & 3, every product and sum rounded to f32.

/** Dot product of `a` and `b[off..off + n)`. */
function dotAt(a: Float32Array, b: Float32Array, off: number, n: number): number {
  let l0 = 0, l1 = 0, l2 = 0, l3 = 0;
  let i = 0;
  for (const end = n & ~3; i < end; i += 4) {
    const o = off + i;
    l0 = Math.fround(l0 + Math.fround(a[i] * b[o]));
    l1 = Math.fround(l1 + Math.fround(a[i + 1] * b[o + 1]));
    l2 = Math.fround(l2 + Math.fround(a[i + 2] * b[o + 2]));
    l3 = Math.fround(l3 + Math.fround(a[i + 3] * b[o + 3]));
  }
  if (i < n) l0 = Math.fround(l0 + Math.fround(a[i] * b[off + i]));
  if (i + 1 < n) l1 = Math.fround(l1 + Math.fround(a[i + 1] * b[off + i + 1]));
  if (i + 2 < n) l2 = Math.fround(l2 + Math.fround(a[i + 2] * b[off + i + 2]));
  return Math.fround(Math.fround(l0 + l1) + Math.fround(l2 + l3));
}

/** Sum of squared differences of `a` and `b[off..off + n)` (before the square root). */
function sqDistAt(a: Float32Array, b: Float32Array, off: number, n: number): number {
  let l0 = 0, l1 = 0, l2 = 0, l3 = 0;
  let i = 0;
  for (const end = n & ~3; i < end; i += 4) {
    const o = off + i;
    const d0 = Math.fround(a[i] - b[o]);
    const d1 = Math.fround(a[i + 1] - b[o + 1]);
    const d2 = Math.fround(a[i + 2] - b[o + 2]);
    const d3 = Math.fround(a[i + 3] - b[o + 3]);
    l0 = Math.fround(l0 + Math.fround(d0 * d0));
    l1 = Math.fround(l1 + Math.fround(d1 * d1));
    l2 = Math.fround(l2 + Math.fround(d2 * d2));
    l3 = Math.fround(l3 + Math.fround(d3 * d3));
  }
  for (; i < n; i++) {
    const d = Math.fround(a[i] - b[off + i]);
    const p = Math.fround(d * d);
    switch (i & 3) {
      case 0:
        l0 = Math.fround(l0 + p);
        break;
      case 1:
        l1 = Math.fround(l1 + p);
        break;
      default:
        l2 = Math.fround(l2 + p);
    }
  }
  return Math.fround(Math.fround(l0 + l1) + Math.fround(l2 + l3));
}

/** Cosine from a dot product and two squared norms, all f32 values. */
function cosineOf(dot: number, aa: number, bb: number): number {
  if (aa === 0 || bb === 0) return 0;
  return Math.fround(dot / Math.sqrt(aa * bb));
}

function dot(a: Float32Array, b: Float32Array): number {
  checkPair(a, b);
  return dotAt(a, b, 0, a.length);
}

function cosine(a: Float32Array, b: Float32Array): number {
  checkPair(a, b);
  const n = a.length;
  // The three sums in one pass: each is accumulated exactly as a separate dot would be.
  let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  let b0 = 0, b1 = 0, b2 = 0, b3 = 0;
  let i = 0;
  for (const end = n & ~3; i < end; i += 4) {
    const x0 = a[i], x1 = a[i + 1], x2 = a[i + 2], x3 = a[i + 3];
    const y0 = b[i], y1 = b[i + 1], y2 = b[i + 2], y3 = b[i + 3];
    d0 = Math.fround(d0 + Math.fround(x0 * y0));
    d1 = Math.fround(d1 + Math.fround(x1 * y1));
    d2 = Math.fround(d2 + Math.fround(x2 * y2));
    d3 = Math.fround(d3 + Math.fround(x3 * y3));
    a0 = Math.fround(a0 + Math.fround(x0 * x0));
    a1 = Math.fround(a1 + Math.fround(x1 * x1));
    a2 = Math.fround(a2 + Math.fround(x2 * x2));
    a3 = Math.fround(a3 + Math.fround(x3 * x3));
    b0 = Math.fround(b0 + Math.fround(y0 * y0));
    b1 = Math.fround(b1 + Math.fround(y1 * y1));
    b2 = Math.fround(b2 + Math.fround(y2 * y2));
    b3 = Math.fround(b3 + Math.fround(y3 * y3));
  }
  for (; i < n; i++) {
    const x = a[i], y = b[i];
    const p = Math.fround(x * y), q = Math.fround(x * x), r = Math.fround(y * y);
    switch (i & 3) {
      case 0:
        d0 = Math.fround(d0 + p);
        a0 = Math.fround(a0 + q);
        b0 = Math.fround(b0 + r);
        break;
      case 1:
        d1 = Math.fround(d1 + p);
        a1 = Math.fround(a1 + q);
        b1 = Math.fround(b1 + r);
        break;
      default:
        d2 = Math.fround(d2 + p);
        a2 = Math.fround(a2 + q);
        b2 = Math.fround(b2 + r);
    }
  }
  return cosineOf(
    Math.fround(Math.fround(d0 + d1) + Math.fround(d2 + d3)),
    Math.fround(Math.fround(a0 + a1) + Math.fround(a2 + a3)),
    Math.fround(Math.fround(b0 + b1) + Math.fround(b2 + b3)),
  );
}

function l2(a: Float32Array, b: Float32Array): number {
  checkPair(a, b);
  return Math.fround(Math.sqrt(sqDistAt(a, b, 0, a.length)));
}

/**
 * Resident f32 matrix, one row per slot, grown by doubling. The squared norm
 * of every row is kept beside it (computed at add/set) so cosine search costs
 * one dot product per row.
 */
class JsVectorIndex implements VectorIndex {
  readonly dim: number;
  #slots = new Slots();
  #rows: Float32Array;
  #norms: Float32Array;
  #scores = new Float32Array(0);
  #heap = new Uint32Array(0);
  #disposed = false;

  constructor(dim: number) {
    this.dim = dim;
    // Start small: with dim up to 65536 a row alone may be 256 KiB.
    this.#rows = new Float32Array(4 * dim);
    this.#norms = new Float32Array(4);
  }

  get size(): number {
    return this.#disposed ? 0 : this.#slots.size;
  }

  add(v: Float32Array): number {
    this.#alive();
    checkVector(v, this.dim);
    const slot = this.#slots.take();
    if (slot >= this.#norms.length) {
      const rows = new Float32Array(this.#rows.length * 2);
      rows.set(this.#rows);
      this.#rows = rows;
      const norms = new Float32Array(this.#norms.length * 2);
      norms.set(this.#norms);
      this.#norms = norms;
    }
    this.#write(slot, v);
    return slot;
  }

  set(slot: number, v: Float32Array): void {
    this.#alive();
    this.#slots.check(slot);
    checkVector(v, this.dim);
    this.#write(slot, v);
  }

  remove(slot: number): void {
    this.#alive();
    this.#slots.release(slot);
  }

  topK(query: Float32Array, k: number, metric: Metric): TopK {
    this.#alive();
    checkVector(query, this.dim, "query");
    checkCount(k);
    checkMetric(metric);
    const n = Math.min(k, this.#slots.size);
    const slots = new Uint32Array(n);
    const scores = new Float32Array(n);
    if (n === 0) return { slots, scores };

    const dim = this.dim;
    const rows = this.#rows;
    const live = this.#slots.flags();
    const high = live.length;
    if (this.#scores.length < high) this.#scores = new Float32Array(this.#norms.length);
    const score = this.#scores;
    if (metric === "dot") {
      for (let s = 0; s < high; s++) if (live[s] !== 0) score[s] = dotAt(query, rows, s * dim, dim);
    } else if (metric === "cosine") {
      const norms = this.#norms;
      const qq = dotAt(query, query, 0, dim);
      for (let s = 0; s < high; s++) {
        if (live[s] !== 0) score[s] = cosineOf(dotAt(query, rows, s * dim, dim), qq, norms[s]);
      }
    } else {
      for (let s = 0; s < high; s++) {
        if (live[s] !== 0) score[s] = Math.fround(Math.sqrt(sqDistAt(query, rows, s * dim, dim)));
      }
    }

    const ascending = metric === "l2";
    /** Whether slot `x` ranks after slot `y`: NaN last, then by score, then higher slot last. */
    const after = (x: number, y: number): boolean => {
      const sx = score[x], sy = score[y];
      if (sx !== sx) return sy === sy || x > y;
      if (sy !== sy) return false;
      if (sx === sy) return x > y;
      return ascending ? sx > sy : sx < sy;
    };

    if (this.#heap.length < n) this.#heap = new Uint32Array(n);
    const heap = this.#heap;
    const siftDown = (count: number): void => {
      const top = heap[0];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= count) break;
        if (c + 1 < count && after(heap[c + 1], heap[c])) c++;
        if (!after(heap[c], top)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = top;
    };

    // Max-heap (by rank) of the n best so far; the root is the worst of them.
    let count = 0;
    for (let s = 0; s < high; s++) {
      if (live[s] === 0) continue;
      if (count < n) {
        let i = count++;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (!after(s, heap[p])) break;
          heap[i] = heap[p];
          i = p;
        }
        heap[i] = s;
      } else if (after(heap[0], s)) {
        heap[0] = s;
        siftDown(count);
      }
    }
    while (count > 0) {
      const s = heap[0];
      const v = score[s];
      slots[--count] = s;
      // One NaN bit pattern for every runtime (hardware NaNs may carry a sign bit).
      scores[count] = v === v ? v : NaN;
      heap[0] = heap[count];
      siftDown(count);
    }
    return { slots, scores };
  }

  dispose(): void {
    this.#disposed = true;
    this.#rows = new Float32Array(0);
    this.#norms = new Float32Array(0);
    this.#scores = new Float32Array(0);
    this.#heap = new Uint32Array(0);
  }

  #alive(): void {
    if (this.#disposed) throw disposed("vector index");
  }

  #write(slot: number, v: Float32Array): void {
    this.#rows.set(v, slot * this.dim);
    this.#norms[slot] = dotAt(v, v, 0, this.dim);
  }
}

// ---------------------------------------------------------------------------

/**
 * Creates the plain-TypeScript kernel set (`name` and `hashBackend` are
 * `"js"`). It needs no WebAssembly and no initialisation, and returns
 * bit-identical results to the WASM kernels.
 *
 * @example
 * ```ts
 * import { createJsKernels } from "./js.ts";
 *
 * const kernels = createJsKernels();
 *
 * // Kademlia: the two peers nearest a key by XOR distance.
 * const peers = kernels.createIdTable();
 * for (let i = 0; i < 4; i++) peers.add(new Uint8Array(32).fill(i));
 * const nearest = peers.closest(new Uint8Array(32).fill(3), 2);
 * if (nearest.join() !== "3,2") throw new Error("unexpected order");
 *
 * // Hashing and vector arithmetic.
 * const digest = kernels.sha256(new TextEncoder().encode("abc"));
 * if (digest[0] !== 0xba) throw new Error("unexpected digest");
 * if (kernels.dot(new Float32Array([1, 2]), new Float32Array([3, 4])) !== 11) throw new Error("unexpected dot");
 * ```
 */
export function createJsKernels(): Kernels {
  return Object.freeze({
    name: "js",
    hashBackend: "js",
    xorSort,
    bucketIndex,
    createIdTable: (): IdTable => new JsIdTable(),
    sha256(data: Uint8Array): Uint8Array {
      checkBytes(data, "data");
      return sha256Js(data);
    },
    sha256Batch(data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array {
      const n = checkBatch(data, ends, out);
      return sha256BatchJs(data, ends, out ?? new Uint8Array(n * 32));
    },
    createMergeBatch,
    merge,
    dot,
    cosine,
    l2,
    createVectorIndex(dim: number): VectorIndex {
      checkDim(dim);
      return new JsVectorIndex(dim);
    },
  });
}
