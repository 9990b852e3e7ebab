/**
 * The nearest-neighbour index of one field, by soul: the exact one, the
 * kernels' resident f32 matrix (`Kernels.createVectorIndex`, SIMD top-k)
 * with a soul ↔ slot map beside it. Every search scores every vector, so its
 * answers are exact. The {@link NearestIndex} interface is what the search
 * (vector_search.ts) uses, so an approximate index (HNSW) can take its place
 * without the search or the Database changing.
 *
 * @module
 */
import type { Kernels, Metric, VectorIndex } from "../kernels/types.ts";

/** The candidates of a search: souls best first, with their scores. */
export interface Ranked {
  readonly souls: readonly string[];
  readonly scores: Float32Array;
}

/** How a ranking is made: exactly, or approximately with `ef` candidates (the index's default when left out). */
export interface RankOptions {
  /** Score every vector (an approximate index ranks exactly too). */
  readonly exact?: boolean;
  /** Candidates of an approximate ranking; ignored by an exact index. */
  readonly ef?: number;
}

/** What the search needs of an index over one field's vectors. */
export interface NearestIndex {
  /** How many souls have a vector in the index. */
  readonly size: number;
  /** Sets (adds or replaces) the vector of `soul`. */
  set(soul: string, v: Float32Array): void;
  /** Drops the vector of `soul`, if it has one. */
  remove(soul: string): void;
  /**
   * The `n` best souls for `query` under `metric`, best first (higher
   * similarity for dot and cosine, lower distance for l2). Equal scores come
   * in an order the caller must not rely on (the search orders them by soul).
   * Exact when `options.exact` is set; an approximate index may miss some
   * of the true best otherwise.
   */
  ranked(query: Float32Array, n: number, metric: Metric, options?: RankOptions): Ranked;
  /** Releases its memory. */
  dispose(): void;
}

/**
 * The exact index: the kernels' resident matrix, searched in full (every
 * ranking is exact, `options` changes nothing). The Database uses the HNSW
 * index (hnsw_nearest.ts), whose `exact` rankings scan every vector as this
 * one does; this one stays for a caller that wants exact answers without
 * paying for a graph build.
 */
export class ExactIndex implements NearestIndex {
  readonly #matrix: VectorIndex;
  readonly #slotOf = new Map<string, number>();
  readonly #soulAt: (string | undefined)[] = [];

  constructor(kernels: Kernels, dim: number) {
    this.#matrix = kernels.createVectorIndex(dim);
  }

  get size(): number {
    return this.#slotOf.size;
  }

  set(soul: string, v: Float32Array): void {
    const slot = this.#slotOf.get(soul);
    if (slot !== undefined) return this.#matrix.set(slot, v);
    const s = this.#matrix.add(v);
    this.#slotOf.set(soul, s);
    this.#soulAt[s] = soul;
  }

  remove(soul: string): void {
    const slot = this.#slotOf.get(soul);
    if (slot === undefined) return;
    this.#matrix.remove(slot);
    this.#slotOf.delete(soul);
    this.#soulAt[slot] = undefined;
  }

  ranked(query: Float32Array, n: number, metric: Metric, _options?: RankOptions): Ranked {
    const { slots, scores } = this.#matrix.topK(query, n, metric);
    const souls = new Array<string>(slots.length);
    for (let i = 0; i < slots.length; i++) souls[i] = this.#soulAt[slots[i]]!;
    return { souls, scores };
  }

  dispose(): void {
    this.#matrix.dispose();
    this.#slotOf.clear();
  }
}
