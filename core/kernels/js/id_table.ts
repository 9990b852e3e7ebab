/**
 * The resident id table of the `js` kernels ({@link IdTable}): live ids by
 * slot, a dense first-word column for scans, and the search index built once
 * queries repeat over an unchanged table. The searches themselves are in
 * `id_search.ts`.
 *
 * @module
 */
import { checkCount, checkId, checkIds, disposedError } from "../_check.ts";
import { Slots } from "../_slots.ts";
import { ID_BYTES, type IdTable } from "../types.ts";
import { buildIndex, nearest, nearestIndexed } from "./id_search.ts";
import { ID_WORDS, readId } from "./xor.ts";

/**
 * Searches (one per key) served by full scans since the last change before the
 * search index is built: the rule of the WASM kernels (`ID_INDEX_AFTER` in
 * `wasm/id_table.ts`), so both do the same work. A build costs a few scans, so a table
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
 * as the WASM kernels' (`idIndex` in `asm/id_index.ts`): the live ids sorted by id
 * then slot (`#ixWords`, `#ixFirst`, `#ixSlot`: one record per id), and
 * `#prefix[p]`, the first record whose top `#bits` bits are `>= p`. If the
 * ids sharing the top L bits with the target number at least k, the k nearest
 * are among them (every other id differs within those bits, so it is
 * farther), so a query runs the heap over the deepest such range alone.
 */
export class JsIdTable implements IdTable {
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
    if (this.#disposed) throw disposedError("id table");
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
