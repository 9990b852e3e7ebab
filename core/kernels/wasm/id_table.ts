/**
 * The resident id table of the `wasm` kernels ({@link IdTable}) on its own
 * instance: ids in doubling chunks (asm/id_table.ts), the search index behind
 * them once queries repeat over an unchanged table (asm/id_index.ts), and
 * per-call scratch behind that.
 *
 * @module
 */
import { checkCount, checkId, checkIds, disposedError } from "../_check.ts";
import { Slots } from "../_slots.ts";
import { ID_BYTES, type IdTable } from "../types.ts";
import { align, type Heap, type HeapPool } from "./instance.ts";

/** Slots of the first chunk of an id table (asm/id_table.ts `C0`); later chunks double. */
const ID_CHUNK0 = 256;
/** Bytes per id slot in an id table: four u64 words and a live flag (asm/id_table.ts). */
const ID_SLOT_BYTES = 33;
/** Bytes of one heap entry of the id-table search (asm/id_heap.ts `ENTRY`). */
const ID_HEAP_ENTRY = 40;
/** Bytes of one record of the id-table search index (asm/id_index.ts `REC`). */
const ID_INDEX_RECORD = 40;
/**
 * Searches (one per key) served by full scans since the last change before
 * the index is rebuilt: a rebuild costs a few scans, so this bounds the
 * overhead when adds and queries interleave, and repeated queries over a
 * stable table go through the index.
 */
const ID_INDEX_AFTER = 8;

/** Where the current search index of an id table lives. */
interface IdIndex {
  readonly bits: number;
  readonly tbl: number;
  readonly recs: number;
  /** First byte after the index. */
  readonly end: number;
}

/**
 * Ids live in chunks that double (see asm/id_table.ts): the chunk of slots
 * [s, 2s) sits at `h + 33 * s`, so capacity grows by appending memory.
 * Behind the chunks: the search index when it is current (derived data,
 * rebuilt on demand after changes), then per-call scratch.
 */
export class WasmIdTable implements IdTable {
  #slots = new Slots();
  #heap: Heap | null;
  /** 32-byte transfer area for add/get. */
  #io: number;
  /** Start of the resident chunks. */
  #chunks: number;
  /** Capacity in slots: 0, then ID_CHUNK0 times a power of two. */
  #cap = 0;
  /** The search index, or null when ids changed since it was built. */
  #index: IdIndex | null = null;
  /** Searches served by scans since the last change. */
  #scans = 0;

  readonly #pool: HeapPool;

  constructor(pool: HeapPool) {
    const heap = pool.take();
    this.#pool = pool;
    this.#heap = heap;
    this.#io = heap.base;
    this.#chunks = heap.base + 64;
  }

  get size(): number {
    return this.#heap ? this.#slots.size : 0;
  }

  add(id: Uint8Array): number {
    const heap = this.#alive();
    checkId(id);
    const slot = this.#slots.take();
    this.#changed();
    if (slot >= this.#cap) {
      this.#cap = this.#cap === 0 ? ID_CHUNK0 : this.#cap * 2;
      heap.ensure(this.#scratch());
    }
    heap.u8.set(id, this.#io);
    heap.exports.idStore(this.#chunks, slot, this.#io);
    return slot;
  }

  remove(slot: number): void {
    const heap = this.#alive();
    this.#slots.release(slot);
    this.#changed();
    heap.exports.idSetLive(this.#chunks, slot, 0);
  }

  get(slot: number): Uint8Array {
    const heap = this.#alive();
    this.#slots.check(slot);
    heap.exports.idLoad(this.#chunks, slot, this.#io);
    return heap.u8.slice(this.#io, this.#io + ID_BYTES);
  }

  closest(target: Uint8Array, k: number): Uint32Array {
    const heap = this.#alive();
    checkId(target, "target");
    checkCount(k);
    const n = Math.min(k, this.#slots.size);
    if (n === 0) return new Uint32Array(0);
    const ix = this.#indexFor(heap, 1);
    // Scratch: target, output slots, heap entries.
    const t = this.#scratch();
    const out = t + ID_BYTES;
    const entries = align(out + 4 * n, 8);
    heap.ensure(entries + ID_HEAP_ENTRY * n);
    heap.u8.set(target, t);
    if (ix) heap.exports.idClosestIx(ix.tbl, ix.bits, ix.recs, t, n, entries, out);
    else heap.exports.idClosest(this.#chunks, this.#slots.high, t, n, entries, out);
    return heap.u32.slice(out >>> 2, (out >>> 2) + n);
  }

  place(keys: Uint8Array, r: number): Uint32Array {
    const heap = this.#alive();
    const m = checkIds(keys, "keys");
    checkCount(r, "r");
    const n = Math.min(r, this.#slots.size);
    if (n === 0 || m === 0) return new Uint32Array(0);
    const ix = this.#indexFor(heap, m);
    // Scratch: keys, output rows, heap entries.
    const src = this.#scratch();
    const out = src + keys.length;
    const entries = align(out + 4 * m * n, 8);
    heap.ensure(entries + ID_HEAP_ENTRY * n);
    heap.u8.set(keys, src);
    if (ix) heap.exports.idPlaceIx(ix.tbl, ix.bits, ix.recs, src, m, n, entries, out);
    else heap.exports.idPlace(this.#chunks, this.#slots.high, src, m, n, entries, out);
    return heap.u32.slice(out >>> 2, (out >>> 2) + m * n);
  }

  dispose(): void {
    if (this.#heap) this.#pool.give(this.#heap);
    this.#heap = null;
  }

  #alive(): Heap {
    if (this.#heap === null) throw disposedError("id table");
    return this.#heap;
  }

  /** First byte of per-call scratch: after the index if it is current, else after the chunks. */
  #scratch(): number {
    return this.#index ? this.#index.end : this.#chunksEnd();
  }

  #chunksEnd(): number {
    return align(this.#chunks + ID_SLOT_BYTES * this.#cap, 64);
  }

  #changed(): void {
    this.#index = null;
    this.#scans = 0;
  }

  /**
   * The index for a call doing `searches` searches, built now if the scans
   * it would otherwise cost (with those since the last change) reach
   * ID_INDEX_AFTER; null means "scan".
   */
  #indexFor(heap: Heap, searches: number): IdIndex | null {
    if (this.#index) return this.#index;
    if (this.#scans + searches < ID_INDEX_AFTER) {
      this.#scans += searches;
      return null;
    }
    const live = this.#slots.size;
    // About one id per prefix bucket.
    const bits = Math.min(22, Math.max(1, Math.floor(Math.log2(live))));
    const tbl = this.#chunksEnd();
    const recs = align(tbl + 4 * (2 ** bits + 1), 8);
    const end = align(recs + ID_INDEX_RECORD * live, 64);
    heap.ensure(end);
    heap.exports.idIndex(this.#chunks, this.#slots.high, bits, tbl, recs);
    this.#index = { bits, tbl, recs, end };
    return this.#index;
  }
}
