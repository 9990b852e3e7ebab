/**
 * Vector arithmetic of the `wasm` kernels: `dot`, `cosine`, `l2` on the
 * shared instance, and the resident {@link VectorIndex} on its own
 * (asm/vector.ts).
 *
 * @module
 */
import { checkCount, checkMetric, checkPair, checkVector, disposedError } from "../_check.ts";
import { Slots } from "../_slots.ts";
import type { Metric, TopK, VectorIndex } from "../types.ts";
import { align, type Heap, type HeapPool } from "./instance.ts";

/** Metric codes of `vecTopK`. */
const METRIC_CODE: Record<Metric, number> = { dot: 0, cosine: 1, l2: 2 };

/** Copies `a` and `b` into the scratch of `shared`; returns their offsets. */
function pair(shared: Heap, a: Float32Array, b: Float32Array): [number, number] {
  checkPair(a, b);
  const s = shared.base;
  const pb = align(s + 4 * a.length, 16);
  shared.ensure(pb + 4 * b.length);
  const f32 = shared.f32;
  f32.set(a, s >>> 2);
  f32.set(b, pb >>> 2);
  return [s, pb];
}

/** Dot product on the shared instance. */
export function dot(shared: Heap, a: Float32Array, b: Float32Array): number {
  const [pa, pb] = pair(shared, a, b);
  return shared.exports.dot(pa, pb, a.length);
}

/** Cosine similarity on the shared instance. */
export function cosine(shared: Heap, a: Float32Array, b: Float32Array): number {
  const [pa, pb] = pair(shared, a, b);
  return shared.exports.cosine(pa, pb, a.length);
}

/** Euclidean distance on the shared instance. */
export function l2(shared: Heap, a: Float32Array, b: Float32Array): number {
  const [pa, pb] = pair(shared, a, b);
  return shared.exports.l2(pa, pb, a.length);
}

/**
 * One record per slot at `h + slot * stride`: the row padded with zeros to a
 * multiple of four floats, then its squared norm and live flag. Behind the
 * `cap` records, one code record per slot (asm/vector_codes.ts: the row in
 * int8, by which the SIMD scan skips rows that cannot reach the top k; 27%
 * more memory at 384 dimensions for 2× the speed), then the scratch of topK.
 * Growing the capacity moves the code records up behind the larger row region.
 */
export class WasmVectorIndex implements VectorIndex {
  readonly dim: number;
  #slots = new Slots();
  #heap: Heap | null;
  #dimPad: number;
  #stride: number;
  #codePad: number;
  #codeStride: number;
  #rows: number;
  #cap = 0;

  readonly #pool: HeapPool;

  constructor(pool: HeapPool, dim: number) {
    this.dim = dim;
    const heap = pool.take();
    this.#pool = pool;
    this.#heap = heap;
    this.#dimPad = align(dim, 4);
    this.#stride = this.#dimPad * 4 + 16;
    this.#codePad = align(this.#dimPad, 16);
    this.#codeStride = this.#codePad + 32;
    this.#rows = heap.base;
  }

  get size(): number {
    return this.#heap ? this.#slots.size : 0;
  }

  add(v: Float32Array): number {
    const heap = this.#alive();
    checkVector(v, this.dim);
    const slot = this.#slots.take();
    if (slot >= this.#cap) {
      const codes = this.#codes(), used = this.#codeStride * this.#cap;
      this.#cap = Math.max(16, this.#cap * 2);
      heap.ensure(this.#scratch());
      heap.u8.copyWithin(this.#codes(), codes, codes + used);
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
    heap.exports.vecKill(
      this.#rows + slot * this.#stride,
      this.#dimPad,
      this.#codes() + slot * this.#codeStride,
    );
  }

  topK(query: Float32Array, k: number, metric: Metric): TopK {
    const heap = this.#alive();
    checkVector(query, this.dim, "query");
    checkCount(k);
    checkMetric(metric);
    const n = Math.min(k, this.#slots.size);
    if (n === 0) return { slots: new Uint32Array(0), scores: new Float32Array(0) };
    // Scratch: query, its codes (i16), per-slot scores, heap keys (u64) and 16 bytes, output slots and scores.
    const high = this.#slots.high;
    const q = this.#scratch();
    const qc = align(q + this.#dimPad * 4, 16);
    const scores = qc + this.#codePad * 2;
    const keys = align(scores + 4 * high, 8);
    const outSlots = keys + 8 * n + 16;
    const outScores = outSlots + 4 * n;
    heap.ensure(outScores + 4 * n);
    heap.f32.set(query, q >>> 2);
    heap.exports.vecTopK(
      this.#rows,
      this.#codes(),
      this.dim,
      this.#dimPad,
      high,
      q,
      qc,
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
    if (this.#heap === null) throw disposedError("vector index");
    return this.#heap;
  }

  #codes(): number {
    return this.#rows + this.#stride * this.#cap;
  }

  #scratch(): number {
    return this.#codes() + this.#codeStride * this.#cap;
  }

  #write(heap: Heap, slot: number, v: Float32Array): void {
    const rec = this.#rows + slot * this.#stride;
    heap.f32.set(v, rec >>> 2);
    heap.exports.vecCommit(rec, this.dim, this.#dimPad, this.#codes() + slot * this.#codeStride);
  }
}
