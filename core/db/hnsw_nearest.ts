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
 * {@link HnswNearest.saved} gives the graph's bytes and the soul map, from
 * which the constructor restores the index in a later process
 * (saved_vectors.ts keeps them in the store: restoring 100k × 384 takes
 * ~0.6 s where rebuilding the graph takes ~75 s).
 *
 * A quantized declaration (`quantize: "int8"`) gives a quantized graph: its
 * rankings carry approximate scores, which rescore.ts replaces by the f32
 * ones read from the store ({@link HnswNearest.score}, `errorBound`).
 *
 * @module
 */
import type { HnswIndex, Kernels, Metric } from "../kernels/types.ts";
import type { NearestIndex, Ranked, RankOptions } from "./exact_index.ts";
import type { IndexSpec } from "./vector_spec.ts";

/** An index as saved: its graph (`HnswIndex.serialize`) and which soul each id is. */
export interface SavedHnsw {
  readonly ids: Uint32Array;
  readonly souls: readonly string[];
  readonly graph: Uint8Array;
}

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
  readonly #kernels: Kernels;
  readonly #metric: Metric;
  readonly #ef: number;
  readonly #idOf = new Map<string, number>();
  readonly #soulOf = new Map<number, string>();
  #nextId = 0;

  /** An empty index; with `saved`, the index {@link saved} returned (`RangeError` when it does not fit `spec`). */
  constructor(kernels: Kernels, spec: IndexSpec, saved?: SavedHnsw) {
    // The declaration allows larger settings than the kernel; beyond its bounds they change nothing measurable.
    this.#ef = Math.min(spec.ef, KERNEL_MAX_EF);
    this.#kernels = kernels;
    this.#metric = spec.metric;
    if (saved === undefined) {
      this.#graph = kernels.createHnsw({
        dim: spec.dim,
        metric: spec.metric,
        m: Math.min(spec.m, KERNEL_MAX_M),
        efConstruction: Math.min(spec.efConstruction, KERNEL_MAX_EF),
        ef: this.#ef,
        seed: 0,
        quantize: spec.quantize,
      });
      return;
    }
    this.#graph = kernels.restoreHnsw(saved.graph);
    try {
      this.#adopt(spec, saved);
    } catch (e) {
      this.#graph.dispose();
      throw e;
    }
  }

  /** Takes the soul map of `saved`, checked against the restored graph: every soul's id in it, and nothing else. */
  #adopt(spec: IndexSpec, saved: SavedHnsw): void {
    const graph = this.#graph;
    const { ids, souls } = saved;
    if (
      graph.dim !== spec.dim || graph.metric !== spec.metric || graph.quantize !== spec.quantize ||
      ids.length !== souls.length
    ) {
      throw new RangeError("The saved HNSW index does not match its declaration");
    }
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i], soul = souls[i];
      if (typeof soul !== "string" || this.#idOf.has(soul) || this.#soulOf.has(id) || !graph.has(id)) {
        throw new RangeError("The saved HNSW index has a soul map that does not match its graph");
      }
      this.#idOf.set(soul, id);
      this.#soulOf.set(id, soul);
      if (id >= this.#nextId) this.#nextId = id + 1;
    }
    if (graph.size !== ids.length) throw new RangeError("The saved HNSW index holds vectors of no soul");
  }

  /** The index as {@link SavedHnsw}, for the constructor of a later process (the graph's bytes are a copy). */
  saved(): SavedHnsw {
    const ids = new Uint32Array(this.#idOf.size);
    const souls = new Array<string>(ids.length);
    let i = 0;
    for (const [soul, id] of this.#idOf) {
      ids[i] = id;
      souls[i++] = soul;
    }
    return { ids, souls, graph: this.#graph.serialize() };
  }

  get size(): number {
    return this.#idOf.size;
  }

  /** Nodes in the graph: the live vectors and the removed or replaced ones kept as waypoints. */
  get nodes(): number {
    return this.#graph.nodes;
  }

  /** The souls that have a vector, in the order they were first set. */
  souls(): IterableIterator<string> {
    return this.#idOf.keys();
  }

  /** A copy of the vector of `soul`, or `undefined` when it has none. */
  vectorOf(soul: string): Float32Array | undefined {
    const id = this.#idOf.get(soul);
    return id === undefined ? undefined : this.#graph.vector(id);
  }

  /** Whether the graph keeps its vectors quantized: its scores are then approximate. */
  get quantized(): boolean {
    return this.#graph.quantize !== undefined;
  }

  /** How far any score of a ranking for `query` may be from the f32 one (0 unless quantized). */
  errorBound(query: Float32Array): number {
    return this.#graph.errorBound(query);
  }

  /** The f32 score of `v` for `query` (the index's metric), as an f32 index ranks it. */
  score(query: Float32Array, v: Float32Array): number {
    return this.#kernels[this.#metric](query, v);
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
