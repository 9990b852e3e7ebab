/**
 * One instance of the kernels' WebAssembly module and typed-array views of
 * its memory ({@link Heap}), the pool that recycles them ({@link HeapPool}),
 * and the module's exports as TypeScript sees them.
 *
 * Every binding in this folder works through a `Heap`: it copies arguments
 * into linear memory, calls one export, and copies results out.
 *
 * @module
 */

/** The exports of the module built from `asm/index.ts` (pointers and lengths are byte offsets and counts). */
export interface Exports {
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
  vecCommit(rec: number, dim: number, dimPad: number, code: number): void;
  vecKill(rec: number, dimPad: number, code: number): void;
  vecTopK(
    h: number,
    codes: number,
    dim: number,
    dimPad: number,
    high: number,
    q: number,
    qc: number,
    k: number,
    metric: number,
    scores: number,
    heap: number,
    outSlots: number,
    outScores: number,
  ): number;
  vecTopKRows(
    h: number,
    stride: number,
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
  hnswLayout(
    records: number,
    stride: number,
    dimPad: number,
    metric: number,
    m: number,
    efConstruction: number,
    upper: number,
    query: number,
    visited: number,
    capacity: number,
    heapC: number,
    heapW: number,
    sel: number,
    pick: number,
    outNodes: number,
    outScores: number,
  ): void;
  hnswCommit(node: number): void;
  hnswInsert(node: number, level: number, entry: number, maxLevel: number): void;
  hnswSearch(entry: number, maxLevel: number, k: number, ef: number): number;
  hnswQuant(meta: number): void;
  hnswExactInt8(
    records: number,
    stride: number,
    n: number,
    meta: number,
    metric: number,
    high: number,
    q: number,
    k: number,
    heap: number,
    outNodes: number,
    outScores: number,
  ): number;
}

const PAGE = 65536;
const MAX_PAGES = 65536;

/** `n` rounded up to a multiple of `to`. */
export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/**
 * One instance and typed-array views of its memory. Only this class grows the
 * memory (the module never does), so it tracks the size itself; growing
 * detaches the old buffer, which empties the old views, and that is what the
 * getters check before handing a view out.
 */
export class Heap {
  readonly exports: Exports;
  /** First free byte after the module's static data, 64-byte aligned. */
  readonly base: number;
  #size = 0;
  #u8: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #u32: Uint32Array<ArrayBuffer> = new Uint32Array(0);
  #f32: Float32Array<ArrayBuffer> = new Float32Array(0);

  constructor(module: WebAssembly.Module) {
    this.exports = new WebAssembly.Instance(module, {}).exports as unknown as Exports;
    this.base = align(this.exports.heapBase(), 64);
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
    this.exports.memory.grow(Math.min(MAX_PAGES, Math.max(need, pages * 2)) - pages);
    this.#refresh();
  }

  #refresh(): void {
    // The module declares an unshared memory, so its buffer is a plain ArrayBuffer.
    const buffer = this.exports.memory.buffer as ArrayBuffer;
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
export class HeapPool {
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
