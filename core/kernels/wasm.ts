/**
 * The `wasm` kernels: the {@link Kernels} contract on the WebAssembly module
 * built from `asm/` (embedded as base64 in `_wasm_bytes.ts`).
 *
 * One compiled module per flavour (SIMD or scalar), compiled asynchronously
 * once. Every call is batch-shaped: arguments are copied into linear memory,
 * one export runs, results are copied out.
 *
 * Instances and memory:
 * - a shared instance serves the stateless calls (`xorSort`, `bucketIndex`,
 *   `sha256`, `sha256Batch`, `dot`, `cosine`, `l2`); its memory is scratch only;
 * - every resident structure ({@link IdTable}, {@link VectorIndex},
 *   {@link MergeBatch}) gets its own instance: resident data from the
 *   module's heap base, transient scratch behind it. Growing capacity appends
 *   memory (`memory.grow`, amortised doubling) and never moves resident data;
 * - a merge batch sizes its memory once and never grows it, so the column
 *   views it hands out stay valid until `dispose`;
 * - an id table also keeps a search index (ids sorted, with a prefix table)
 *   behind its resident ids once queries repeat without changes in between,
 *   so `closest` and `place` read a few ids per key instead of all of them.
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
import { WASM_SCALAR_BASE64, WASM_SIMD_BASE64 } from "./_wasm_bytes.ts";

/** Options of {@link loadWasmKernels}. */
export interface WasmKernelOptions {
  /** Load the SIMD build (needs WebAssembly SIMD; see `detectWasm` in `mod.ts`). */
  simd: boolean;
}

/** The exports of the module built from `asm/index.ts` (pointers and lengths are byte offsets and counts). */
interface Exports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  xorSort(
    ids: number,
    n: number,
    target: number,
    out: number,
    d: number,
    tmp: number,
    tbl: number,
    bits: number,
  ): void;
  bucketIndex(ids: number, n: number, self: number, out: number): void;
  idStore(h: number, slot: number, src: number): void;
  idLoad(h: number, slot: number, dst: number): void;
  idSetLive(h: number, slot: number, live: number): void;
  idClosest(h: number, high: number, target: number, k: number, heap: number, out: number): number;
  idPlace(h: number, high: number, keys: number, m: number, r: number, heap: number, out: number): number;
  idIndex(h: number, high: number, bits: number, tbl: number, recs: number): number;
  idClosestIx(
    tbl: number,
    bits: number,
    recs: number,
    target: number,
    k: number,
    heap: number,
    out: number,
  ): number;
  idPlaceIx(
    tbl: number,
    bits: number,
    recs: number,
    keys: number,
    m: number,
    r: number,
    heap: number,
    out: number,
  ): number;
  sha256(p: number, len: number, out: number): void;
  sha256Batch(data: number, ends: number, n: number, out: number): void;
  sha256Init(state: number): void;
  sha256Blocks(state: number, p: number, blocks: number): void;
  sha256Final(state: number, p: number, len: number, totalBits: number, out: number): void;
  merge(base: number, stride: number, out: number, length: number): void;
  dot(a: number, b: number, n: number): number;
  cosine(a: number, b: number, n: number): number;
  l2(a: number, b: number, n: number): number;
  vecCommit(rec: number, dim: number, dimPad: number): void;
  vecKill(rec: number, dimPad: number): void;
  vecTopK(
    h: number,
    dim: number,
    dimPad: number,
    high: number,
    q: number,
    k: number,
    metric: number,
    scores: number,
    heap: number,
    outSlots: number,
    outScores: number,
  ): number;
}

const PAGE = 65536;
const MAX_PAGES = 65536;
/** Slots of the first chunk of an id table (asm/xor.ts `C0`); later chunks double. */
const ID_CHUNK0 = 256;
/** Bytes per id slot in an id table: four u64 words and a live flag (asm/xor.ts). */
const ID_SLOT_BYTES = 33;
/** Bytes of one heap entry of the id-table search (asm/xor.ts `ENTRY`). */
const ID_HEAP_ENTRY = 40;
/** Bytes of one record of the id-table search index (asm/xor.ts `REC`). */
const ID_INDEX_RECORD = 40;
/**
 * Searches (one per key) served by full scans since the last change before
 * the index is rebuilt: a rebuild costs a few scans, so this bounds the
 * overhead when adds and queries interleave, and repeated queries over a
 * stable table go through the index.
 */
const ID_INDEX_AFTER = 8;
/** Metric codes of `vecTopK`. */
const METRIC_CODE: Record<Metric, number> = { dot: 0, cosine: 1, l2: 2 };
/** Inputs of `sha256Batch` are hashed in groups of about this many bytes, so scratch stays small. */
const HASH_WINDOW = 1 << 20;
/** ...and of at most this many inputs (ends and digests take scratch too). */
const HASH_GROUP = 1 << 15;

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function disposed(what: string): TypeError {
  return new TypeError(`Cannot use the ${what}: it has been disposed`);
}

/** Decodes base64 (whitespace allowed) to bytes with web-standard `atob`. */
function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/**
 * One instance and typed-array views of its memory. Only this class grows the
 * memory (the module never does), so it tracks the size itself; growing
 * detaches the old buffer, which empties the old views, and that is what the
 * getters check before handing a view out.
 */
class Heap {
  readonly ex: Exports;
  /** First free byte after the module's static data, 64-byte aligned. */
  readonly base: number;
  #size = 0;
  #u8: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #u32: Uint32Array<ArrayBuffer> = new Uint32Array(0);
  #f32: Float32Array<ArrayBuffer> = new Float32Array(0);

  constructor(module: WebAssembly.Module) {
    this.ex = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    this.base = align(this.ex.heapBase(), 64);
    this.#refresh();
  }

  get u8(): Uint8Array<ArrayBuffer> {
    if (this.#u8.length === 0) this.#refresh();
    return this.#u8;
  }

  get u32(): Uint32Array<ArrayBuffer> {
    if (this.#u32.length === 0) this.#refresh();
    return this.#u32;
  }

  get f32(): Float32Array<ArrayBuffer> {
    if (this.#f32.length === 0) this.#refresh();
    return this.#f32;
  }

  /** Makes bytes [0, end) addressable, at least doubling the memory when it has to grow. */
  ensure(end: number): void {
    if (end <= this.#size) return;
    const pages = this.#size / PAGE;
    const need = Math.ceil(end / PAGE);
    if (need > MAX_PAGES) {
      throw new RangeError(`Cannot grow WASM memory to ${end} bytes: the limit is 4 GiB`);
    }
    this.ex.memory.grow(Math.min(MAX_PAGES, Math.max(need, pages * 2)) - pages);
    this.#refresh();
  }

  #refresh(): void {
    // The module declares an unshared memory, so its buffer is a plain ArrayBuffer.
    const buffer = this.ex.memory.buffer as ArrayBuffer;
    this.#size = buffer.byteLength;
    this.#u8 = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#f32 = new Float32Array(buffer);
  }
}

/**
 * Heaps of disposed resident tables, kept for reuse: creating an instance
 * with its own memory is cheap on V8 but costly on JavaScriptCore, and
 * programs (and property tests) create and drop tables often. Only heaps
 * whose views never left this module are pooled (not merge batches, whose
 * columns are public and could outlive `dispose`).
 */
class HeapPool {
  static readonly MAX_HEAPS = 4;
  static readonly MAX_BYTES = 32 * 1024 * 1024;
  readonly #module: WebAssembly.Module;
  readonly #free: Heap[] = [];

  constructor(module: WebAssembly.Module) {
    this.#module = module;
  }

  /** A heap whose memory past `base` is all zeros, as a new instance's is. */
  take(): Heap {
    const heap = this.#free.pop();
    if (!heap) return new Heap(this.#module);
    heap.u8.fill(0, heap.base);
    return heap;
  }

  give(heap: Heap): void {
    if (this.#free.length < HeapPool.MAX_HEAPS && heap.u8.length <= HeapPool.MAX_BYTES) this.#free.push(heap);
  }
}

// ---------------------------------------------------------------------------
// Resident id table

/** Where the current search index of an id table lives. */
interface IdIndex {
  readonly bits: number;
  readonly tbl: number;
  readonly recs: number;
  /** First byte after the index. */
  readonly end: number;
}

/**
 * Ids live in chunks that double (see asm/xor.ts): the chunk of slots
 * [s, 2s) sits at `h + 33 * s`, so capacity grows by appending memory.
 * Behind the chunks: the search index when it is current (derived data,
 * rebuilt on demand after changes), then per-call scratch.
 */
class WasmIdTable implements IdTable {
  #slots = new Slots();
  #heap: Heap | null;
  /** 32-byte transfer area for add/get. */
  #io: number;
  /** Start of the resident chunks. */
  #h: number;
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
    this.#h = heap.base + 64;
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
    heap.ex.idStore(this.#h, slot, this.#io);
    return slot;
  }

  remove(slot: number): void {
    const heap = this.#alive();
    this.#slots.release(slot);
    this.#changed();
    heap.ex.idSetLive(this.#h, slot, 0);
  }

  get(slot: number): Uint8Array {
    const heap = this.#alive();
    this.#slots.check(slot);
    heap.ex.idLoad(this.#h, slot, this.#io);
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
    if (ix) heap.ex.idClosestIx(ix.tbl, ix.bits, ix.recs, t, n, entries, out);
    else heap.ex.idClosest(this.#h, this.#slots.high, t, n, entries, out);
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
    if (ix) heap.ex.idPlaceIx(ix.tbl, ix.bits, ix.recs, src, m, n, entries, out);
    else heap.ex.idPlace(this.#h, this.#slots.high, src, m, n, entries, out);
    return heap.u32.slice(out >>> 2, (out >>> 2) + m * n);
  }

  dispose(): void {
    if (this.#heap) this.#pool.give(this.#heap);
    this.#heap = null;
  }

  #alive(): Heap {
    if (this.#heap === null) throw disposed("id table");
    return this.#heap;
  }

  /** First byte of per-call scratch: after the index if it is current, else after the chunks. */
  #scratch(): number {
    return this.#index ? this.#index.end : this.#chunksEnd();
  }

  #chunksEnd(): number {
    return align(this.#h + ID_SLOT_BYTES * this.#cap, 64);
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
    heap.ex.idIndex(this.#h, this.#slots.high, bits, tbl, recs);
    this.#index = { bits, tbl, recs, end };
    return this.#index;
  }
}

// ---------------------------------------------------------------------------
// Resident vector index

/**
 * One record per slot at `h + slot * stride`: the row padded with zeros to a
 * multiple of four floats, then its squared norm and live flag.
 */
class WasmVectorIndex implements VectorIndex {
  readonly dim: number;
  #slots = new Slots();
  #heap: Heap | null;
  #dimPad: number;
  #stride: number;
  #h: number;
  #cap = 0;

  readonly #pool: HeapPool;

  constructor(pool: HeapPool, dim: number) {
    this.dim = dim;
    const heap = pool.take();
    this.#pool = pool;
    this.#heap = heap;
    this.#dimPad = align(dim, 4);
    this.#stride = this.#dimPad * 4 + 16;
    this.#h = heap.base;
  }

  get size(): number {
    return this.#heap ? this.#slots.size : 0;
  }

  add(v: Float32Array): number {
    const heap = this.#alive();
    checkVector(v, this.dim);
    const slot = this.#slots.take();
    if (slot >= this.#cap) {
      this.#cap = Math.max(16, this.#cap * 2);
      heap.ensure(this.#scratch());
    }
    this.#write(heap, slot, v);
    return slot;
  }

  set(slot: number, v: Float32Array): void {
    const heap = this.#alive();
    this.#slots.check(slot);
    checkVector(v, this.dim);
    this.#write(heap, slot, v);
  }

  remove(slot: number): void {
    const heap = this.#alive();
    this.#slots.release(slot);
    heap.ex.vecKill(this.#h + slot * this.#stride, this.#dimPad);
  }

  topK(query: Float32Array, k: number, metric: Metric): TopK {
    const heap = this.#alive();
    checkVector(query, this.dim, "query");
    checkCount(k);
    checkMetric(metric);
    const n = Math.min(k, this.#slots.size);
    if (n === 0) return { slots: new Uint32Array(0), scores: new Float32Array(0) };
    // Scratch: query, per-slot scores, heap keys (u64), output slots and scores.
    const high = this.#slots.high;
    const q = this.#scratch();
    const scores = q + this.#dimPad * 4;
    const keys = align(scores + 4 * high, 8);
    const outSlots = keys + 8 * n;
    const outScores = outSlots + 4 * n;
    heap.ensure(outScores + 4 * n);
    heap.f32.set(query, q >>> 2);
    heap.ex.vecTopK(
      this.#h,
      this.dim,
      this.#dimPad,
      high,
      q,
      n,
      METRIC_CODE[metric],
      scores,
      keys,
      outSlots,
      outScores,
    );
    return {
      slots: heap.u32.slice(outSlots >>> 2, (outSlots >>> 2) + n),
      scores: heap.f32.slice(outScores >>> 2, (outScores >>> 2) + n),
    };
  }

  dispose(): void {
    if (this.#heap) this.#pool.give(this.#heap);
    this.#heap = null;
  }

  #alive(): Heap {
    if (this.#heap === null) throw disposed("vector index");
    return this.#heap;
  }

  #scratch(): number {
    return this.#h + this.#stride * this.#cap;
  }

  #write(heap: Heap, slot: number, v: Float32Array): void {
    const rec = this.#h + slot * this.#stride;
    heap.f32.set(v, rec >>> 2);
    heap.ex.vecCommit(rec, this.dim, this.#dimPad);
  }
}

// ---------------------------------------------------------------------------
// HAM merge

/**
 * Twelve u32 columns and the output bytes, all inside the batch's own
 * instance memory, which is sized once and never grows.
 */
class WasmMergeBatch implements MergeBatch {
  readonly capacity: number;
  readonly a: MergeColumns;
  readonly b: MergeColumns;
  readonly out: Uint8Array;
  #ex: Exports | null;
  #base: number;
  #stride: number;
  #outPtr: number;

  constructor(module: WebAssembly.Module, capacity: number) {
    this.capacity = capacity;
    const heap = new Heap(module);
    // Columns start on cache-line boundaries so that a 16-pair SIMD step reads one line per column.
    const stride = align(capacity * 4, 64);
    this.#base = heap.base;
    this.#stride = stride;
    this.#outPtr = heap.base + 12 * stride;
    heap.ensure(this.#outPtr + capacity);
    this.#ex = heap.ex;
    const buffer = heap.ex.memory.buffer;
    const column = (i: number) => new Uint32Array(buffer, this.#base + i * stride, capacity);
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
    this.out = new Uint8Array(buffer, this.#outPtr, capacity);
  }

  dispose(): void {
    this.#ex = null;
  }

  /** Decides pairs [0, length) of `batch` (made by any wasm kernels) into `batch.out`. */
  static merge(batch: unknown, length: number): Uint8Array {
    if (!(typeof batch === "object" && batch !== null && #ex in batch)) {
      throw new TypeError("batch was not created by createMergeBatch of these kernels");
    }
    const ex = batch.#ex;
    if (ex === null) throw disposed("merge batch");
    checkMergeLength(length, batch.capacity);
    ex.merge(batch.#base, batch.#stride, batch.#outPtr, length);
    return batch.out.subarray(0, length);
  }
}

// ---------------------------------------------------------------------------
// Stateless calls on one shared instance

function createKernels(module: WebAssembly.Module, simd: boolean): Kernels {
  const shared = new Heap(module);
  const pool = new HeapPool(module);
  const { ex } = shared;
  const s = shared.base;

  function xorSort(ids: Uint8Array, target: Uint8Array): Uint32Array {
    const n = checkIds(ids);
    checkId(target, "target");
    if (n === 0) return new Uint32Array(0);
    // About one id per bucket of the counting sort.
    const bits = Math.min(16, Math.max(1, Math.floor(Math.log2(n))));
    const t = s, src = t + ID_BYTES, out = src + ids.length, d = align(out + 4 * n, 8);
    const tmp = d + 8 * n, tbl = tmp + 4 * n;
    shared.ensure(tbl + 4 * (2 ** bits + 1));
    const u8 = shared.u8;
    u8.set(target, t);
    u8.set(ids, src);
    ex.xorSort(src, n, t, out, d, tmp, tbl, bits);
    return shared.u32.slice(out >>> 2, (out >>> 2) + n);
  }

  function bucketIndex(ids: Uint8Array, self: Uint8Array): Uint16Array {
    const n = checkIds(ids);
    checkId(self, "self");
    if (n === 0) return new Uint16Array(0);
    const me = s, src = me + ID_BYTES, out = src + ids.length;
    shared.ensure(out + 2 * n);
    const u8 = shared.u8;
    u8.set(self, me);
    u8.set(ids, src);
    ex.bucketIndex(src, n, me, out);
    return new Uint16Array(u8.slice(out, out + 2 * n).buffer);
  }

  function sha256(data: Uint8Array): Uint8Array {
    checkBytes(data, "data");
    const len = data.length;
    const out = s, p = s + 64;
    if (len <= HASH_WINDOW) {
      shared.ensure(p + len);
      shared.u8.set(data, p);
      ex.sha256(p, len, out);
      return shared.u8.slice(out, out + 32);
    }
    // Long input: stream whole blocks through a fixed window.
    const state = s + 32;
    shared.ensure(p + HASH_WINDOW);
    ex.sha256Init(state);
    let at = 0;
    for (const whole = len - (len % 64); at < whole;) {
      const take = Math.min(HASH_WINDOW, whole - at);
      shared.u8.set(data.subarray(at, at + take), p);
      ex.sha256Blocks(state, p, take / 64);
      at += take;
    }
    shared.u8.set(data.subarray(at), p);
    ex.sha256Final(state, p, len - at, len * 8, out);
    return shared.u8.slice(out, out + 32);
  }

  function sha256Batch(data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array {
    const n = checkBatch(data, ends, out);
    const dst = out ?? new Uint8Array(32 * n);
    // Groups of consecutive inputs spanning about HASH_WINDOW bytes (or one larger input).
    for (let i = 0; i < n;) {
      const from = i === 0 ? 0 : ends[i - 1];
      let j = i + 1;
      while (j < n && j - i < HASH_GROUP && ends[j] - from <= HASH_WINDOW) j++;
      const last = ends[j - 1];
      if (j === i + 1 && last - from > HASH_WINDOW) {
        dst.set(sha256(data.subarray(from, last)), 32 * i);
        i = j;
        continue;
      }
      const count = j - i;
      const e = s, digests = e + 4 * count, src = digests + 32 * count;
      shared.ensure(src + (last - from));
      const u32 = shared.u32;
      for (let x = 0, at = e >>> 2; x < count; x++) u32[at + x] = ends[i + x] - from;
      const u8 = shared.u8;
      u8.set(data.subarray(from, last), src);
      ex.sha256Batch(src, e, count, digests);
      dst.set(u8.subarray(digests, digests + 32 * count), 32 * i);
      i = j;
    }
    return dst;
  }

  /** Copies `a` and `b` into scratch; returns their offsets. */
  function pair(a: Float32Array, b: Float32Array): [number, number] {
    checkPair(a, b);
    const pb = align(s + 4 * a.length, 16);
    shared.ensure(pb + 4 * b.length);
    const f32 = shared.f32;
    f32.set(a, s >>> 2);
    f32.set(b, pb >>> 2);
    return [s, pb];
  }

  return Object.freeze(
    {
      name: simd ? "wasm-simd" : "wasm",
      hashBackend: "wasm",
      xorSort,
      bucketIndex,
      createIdTable: (): IdTable => new WasmIdTable(pool),
      sha256,
      sha256Batch,
      createMergeBatch(capacity: number): MergeBatch {
        checkCount(capacity, "capacity");
        return new WasmMergeBatch(module, capacity);
      },
      merge: (batch: MergeBatch, length: number): Uint8Array => WasmMergeBatch.merge(batch, length),
      dot(a: Float32Array, b: Float32Array): number {
        const [pa, pb] = pair(a, b);
        return ex.dot(pa, pb, a.length);
      },
      cosine(a: Float32Array, b: Float32Array): number {
        const [pa, pb] = pair(a, b);
        return ex.cosine(pa, pb, a.length);
      },
      l2(a: Float32Array, b: Float32Array): number {
        const [pa, pb] = pair(a, b);
        return ex.l2(pa, pb, a.length);
      },
      createVectorIndex(dim: number): VectorIndex {
        checkDim(dim);
        return new WasmVectorIndex(pool, dim);
      },
    } satisfies Kernels,
  );
}

const modules = new Map<boolean, Promise<WebAssembly.Module>>();

/** Compiles one flavour once (asynchronously: no synchronous compile on a browser main thread). */
function compileModule(simd: boolean): Promise<WebAssembly.Module> {
  let module = modules.get(simd);
  if (module === undefined) {
    module = WebAssembly.compile(decodeBase64(simd ? WASM_SIMD_BASE64 : WASM_SCALAR_BASE64)).catch(
      (cause: unknown) => {
        modules.delete(simd);
        const why = cause instanceof Error ? cause.message : String(cause);
        throw new Error(`Cannot compile the ${simd ? "wasm-simd" : "wasm"} kernels: ${why}`, { cause });
      },
    );
    modules.set(simd, module);
  }
  return module;
}

/**
 * Loads the WASM kernel set: `name` is `"wasm-simd"` or `"wasm"`,
 * `hashBackend` is `"wasm"`. The module is compiled once per flavour;
 * each call returns a kernel set with its own scratch memory. Rejects when
 * the runtime cannot compile the requested build (e.g. SIMD unsupported).
 *
 * @example
 * ```ts
 * import { loadWasmKernels } from "./wasm.ts";
 *
 * const kernels = await loadWasmKernels({ simd: true });
 * const peers = kernels.createIdTable();
 * for (let i = 0; i < 4; i++) peers.add(new Uint8Array(32).fill(i));
 * const nearest = peers.closest(new Uint8Array(32).fill(3), 2);
 * if (nearest.join() !== "3,2") throw new Error("unexpected order");
 * peers.dispose();
 *
 * const digest = kernels.sha256(new TextEncoder().encode("abc"));
 * if (digest[0] !== 0xba) throw new Error("unexpected digest");
 * ```
 */
export async function loadWasmKernels(options: WasmKernelOptions): Promise<Kernels> {
  if (typeof options !== "object" || options === null || typeof options.simd !== "boolean") {
    throw new TypeError("loadWasmKernels needs { simd: boolean }");
  }
  return createKernels(await compileModule(options.simd), options.simd);
}
