/**
 * Vector arithmetic of the `js` kernels: `dot`, `cosine`, `l2` and the
 * resident {@link VectorIndex} with exact top-k search.
 *
 * Each loop follows the arithmetic rules of `types.ts`: element i goes to
 * lane i & 3, every product and sum rounded to f32 (`Math.fround`), so the
 * results are bit-identical to the WASM kernels'.
 *
 * @module
 */
import { checkCount, checkMetric, checkPair, checkVector, disposedError } from "../_check.ts";
import { Slots } from "../_slots.ts";
import type { Metric, TopK, VectorIndex } from "../types.ts";
import { drainSlots, offerSlot } from "./topk_heap.ts";

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

export function dot(a: Float32Array, b: Float32Array): number {
  checkPair(a, b);
  return dotAt(a, b, 0, a.length);
}

export function cosine(a: Float32Array, b: Float32Array): number {
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

export function l2(a: Float32Array, b: Float32Array): number {
  checkPair(a, b);
  return Math.fround(Math.sqrt(sqDistAt(a, b, 0, a.length)));
}

/**
 * Resident f32 matrix, one row per slot, grown by doubling. The squared norm
 * of every row is kept beside it (computed at add/set) so cosine search costs
 * one dot product per row.
 */
export class JsVectorIndex implements VectorIndex {
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

    // Bounded heap of the n best (js/topk_heap.ts), filled in slot order.
    if (this.#heap.length < n) this.#heap = new Uint32Array(n);
    const heap = this.#heap, ascending = metric === "l2";
    let count = 0;
    for (let s = 0; s < high; s++) if (live[s] !== 0) count = offerSlot(heap, score, count, n, s, ascending);
    drainSlots(heap, score, count, ascending, slots);
    // One NaN bit pattern for every runtime (hardware NaNs may carry a sign bit).
    for (let i = 0; i < count; i++) {
      const v = score[slots[i]];
      scores[i] = v === v ? v : NaN;
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
    if (this.#disposed) throw disposedError("vector index");
  }

  #write(slot: number, v: Float32Array): void {
    this.#rows.set(v, slot * this.dim);
    this.#norms[slot] = dotAt(v, v, 0, this.dim);
  }
}
