/**
 * The approximate nearest-neighbour index of one field: the kernels' HNSW
 * graph (`Kernels.createHnsw`) with the index's declared `m`,
 * `efConstruction` and `ef`, and a soul ↔ id map beside it (the graph names
 * vectors by u32 ids). It takes the place of the exact matrix
 * (exact_index.ts) behind {@link NearestIndex}, so `db.search` is
 * approximate by default and exact on request: the graph scans every vector
 * itself for `exact` rankings and below `exactBelow` (1024) vectors.
 *
 * Ids are never reused within a process: a soul keeps its id while it has a
 * vector, a replaced vector is re-inserted under that id (the kernel drops
 * the old one first) and a removed soul's id is retired, so a ranking can
 * never name a soul for another soul's vector.
 *
 * @module
 */
import type { HnswIndex, Kernels, Metric } from "../kernels/types.ts";
import type { NearestIndex, Ranked, RankOptions } from "./exact_index.ts";
import type { IndexSpec } from "./vector_spec.ts";

/** The kernel's bounds on `m`, `efConstruction` and a search's candidate list. */
const KERNEL_MAX_M = 64;
const KERNEL_MAX_EF = 4096;

/**
 * An HNSW index over one field's vectors, by soul.
 *
 * @example
 * ```ts
 * import { loadKernels } from "../../mod.ts";
 * import { HnswNearest } from "./hnsw_nearest.ts";
 * const spec = { field: "v", dim: 2, metric: "l2" as const, m: 16, efConstruction: 200, ef: 50 };
 * const index = new HnswNearest(await loadKernels(), spec);
 * index.set("a", new Float32Array([0, 0]));
 * index.set("b", new Float32Array([3, 4]));
 * console.log(index.ranked(new Float32Array([3, 3]), 1, "l2").souls); // ["b"]
 * index.dispose();
 * ```
 */
export class HnswNearest implements NearestIndex {
  readonly #graph: HnswIndex;
  readonly #ef: number;
  readonly #idOf = new Map<string, number>();
  readonly #soulOf = new Map<number, string>();
  #nextId = 0;

  constructor(kernels: Kernels, spec: IndexSpec, seed = 0) {
    // The declaration allows larger settings than the kernel; beyond its bounds they change nothing measurable.
    this.#ef = Math.min(spec.ef, KERNEL_MAX_EF);
    this.#graph = kernels.createHnsw({
      dim: spec.dim,
      metric: spec.metric,
      m: Math.min(spec.m, KERNEL_MAX_M),
      efConstruction: Math.min(spec.efConstruction, KERNEL_MAX_EF),
      ef: this.#ef,
      seed,
    });
  }

  get size(): number {
    return this.#idOf.size;
  }

  set(soul: string, v: Float32Array): void {
    let id = this.#idOf.get(soul);
    if (id === undefined) {
      if (this.#nextId > 0xffffffff) throw new RangeError("The HNSW index ran out of ids (2^32 vectors set)");
      id = this.#nextId++;
      this.#idOf.set(soul, id);
      this.#soulOf.set(id, soul);
    }
    this.#graph.insert(id, v);
  }

  remove(soul: string): void {
    const id = this.#idOf.get(soul);
    if (id === undefined) return;
    this.#graph.remove(id);
    this.#idOf.delete(soul);
    this.#soulOf.delete(id);
  }

  ranked(query: Float32Array, n: number, _metric: Metric, options?: RankOptions): Ranked {
    const hits = options?.exact === true
      ? this.#graph.searchExact(query, n)
      : this.#graph.search(query, n, Math.min(Math.max(options?.ef ?? this.#ef, 1), KERNEL_MAX_EF));
    const souls = new Array<string>(hits.ids.length);
    for (let i = 0; i < hits.ids.length; i++) souls[i] = this.#soulOf.get(hits.ids[i])!;
    return { souls, scores: hits.scores };
  }

  dispose(): void {
    this.#graph.dispose();
    this.#idOf.clear();
    this.#soulOf.clear();
  }
}
