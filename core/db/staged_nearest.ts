/**
 * The index of one field while its HNSW graph is built in the background:
 * an exact index (exact_index.ts, the kernels' resident matrix, built from
 * 100k × 384 vectors in under a second) answers every ranking exactly until
 * the graph (hnsw_nearest.ts, ~75 s for the same vectors) holds every
 * vector; then the graph answers and the exact index is released. So
 * opening a database, or declaring an index over data already there, never
 * waits for a graph build.
 *
 * While the graph is built, every set and remove reaches the exact index at
 * once. The graph gets each soul's latest vector: souls not yet inserted
 * wait in `pending` (insertion order, with their latest vector: a later set
 * replaces it, a remove drops it), souls the builder has passed, and new
 * ones once the fill is over, go to the graph directly. No write is lost or
 * undone by an older one.
 *
 * @module
 */
import type { Kernels, Metric } from "../kernels/types.ts";
import { ExactIndex, type NearestIndex, type Ranked, type RankOptions } from "./exact_index.ts";
import { HnswNearest } from "./hnsw_nearest.ts";
import type { IndexSpec } from "./vector_spec.ts";

/** Where an index's graph is: being built (searches are exact scans meanwhile) or answering. */
export type IndexState = "building" | "ready";

/**
 * A nearest index whose graph is built in slices ({@link StagedNearest.step})
 * while an exact index answers.
 *
 * @example
 * ```ts
 * import { loadKernels } from "../../mod.ts";
 * import { StagedNearest } from "./staged_nearest.ts";
 * const spec = { field: "v", dim: 2, metric: "l2" as const, m: 16, efConstruction: 200, ef: 50 };
 * const index = new StagedNearest(await loadKernels(), spec);
 * index.set("a", new Float32Array([0, 0]));
 * index.set("b", new Float32Array([3, 4]));
 * index.filled();
 * console.log(index.state, index.ranked(new Float32Array([3, 3]), 1, "l2").souls); // building ["b"] (exact)
 * while (!index.step(() => 0, 10)); // the graph, a slice at a time
 * console.log(index.state, index.ranked(new Float32Array([3, 3]), 1, "l2").souls); // ready ["b"]
 * index.dispose();
 * ```
 */
export class StagedNearest implements NearestIndex {
  readonly graph: HnswNearest;
  #exact: ExactIndex | undefined;
  /** Souls not yet in the graph, with their latest vector, in the order they came. */
  #pending: Map<string, Float32Array> | undefined;
  /** Whether the initial fill (the scan of the store) still runs: new souls wait in `pending`. */
  #filling: boolean;

  /** An index being filled (then built), or with `restored`, that graph ready at once. */
  constructor(kernels: Kernels, spec: IndexSpec, restored?: HnswNearest) {
    if (restored !== undefined) {
      this.graph = restored;
      this.#filling = false;
      return;
    }
    this.graph = new HnswNearest(kernels, spec);
    this.#exact = new ExactIndex(kernels, spec.dim);
    this.#pending = new Map();
    this.#filling = true;
  }

  /** `"ready"` once the graph holds every vector and answers. */
  get state(): IndexState {
    return this.#exact === undefined ? "ready" : "building";
  }

  /** Vectors in the graph and vectors in all, while building. */
  get progress(): { done: number; total: number } {
    const total = this.size;
    return { done: total - (this.#pending?.size ?? 0), total };
  }

  get size(): number {
    return this.#exact?.size ?? this.graph.size;
  }

  /** The initial fill is over: from now on new souls go to the graph directly. */
  filled(): void {
    this.#filling = false;
    if (this.#pending?.size === 0) this.#finish();
  }

  set(soul: string, v: Float32Array): void {
    const exact = this.#exact, pending = this.#pending;
    if (exact === undefined || pending === undefined) return this.graph.set(soul, v);
    exact.set(soul, v);
    if (this.#filling || pending.has(soul)) pending.set(soul, v.slice());
    else this.graph.set(soul, v);
  }

  remove(soul: string): void {
    this.#exact?.remove(soul);
    this.#pending?.delete(soul);
    this.graph.remove(soul);
  }

  /**
   * Inserts pending vectors into the graph until `budgetMs` of `clock` has
   * passed (checked after every insert: a clock read is ~0.1 µs, an insert
   * 10 µs to 1 ms); returns whether the graph is complete (then the exact
   * index is released).
   */
  step(clock: () => number, budgetMs: number): boolean {
    const pending = this.#pending;
    if (pending === undefined) return true;
    if (this.#filling) return false;
    const started = clock();
    for (const [soul, v] of pending) {
      pending.delete(soul);
      this.graph.set(soul, v);
      if (clock() - started >= budgetMs) break;
    }
    if (pending.size > 0) return false;
    this.#finish();
    return true;
  }

  #finish(): void {
    this.#exact?.dispose();
    this.#exact = undefined;
    this.#pending = undefined;
  }

  ranked(query: Float32Array, n: number, metric: Metric, options?: RankOptions): Ranked {
    return this.#exact !== undefined
      ? this.#exact.ranked(query, n, metric)
      : this.graph.ranked(query, n, metric, options);
  }

  dispose(): void {
    this.#finish();
    this.graph.dispose();
  }
}
