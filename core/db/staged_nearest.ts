/**
 * The index of one field while its HNSW graph is built in the background:
 * a stand-in answers every ranking until the graph holds every vector;
 * then the graph answers and the stand-in is released. So opening a
 * database, declaring an index over data already there, or compacting an
 * index never waits for a graph build (~75 s for 100k × 384).
 *
 * Two builds use it. The first build of an index (on open without a save,
 * or by `createIndex`) stands an exact index (exact_index.ts, the kernels'
 * resident matrix, filled in under a second) in for the graph. A compaction
 * stands the old graph in for a new one built from its live vectors: a
 * removed or replaced vector stays in a graph as a dead waypoint (the
 * kernel never unlinks nodes), so an index whose vectors change keeps
 * growing until it is rebuilt; {@link StagedNearest.wantsCompaction} says
 * when the dead nodes are worth a rebuild ({@link COMPACT_SHARE}).
 *
 * While the graph is built, every set and remove reaches the stand-in at
 * once. The graph gets each soul's latest vector: souls not yet inserted
 * wait in `pending` (insertion order, with their latest vector: a later set
 * replaces it, a remove drops it; in a compaction the latest vector is the
 * old graph's, read when the soul's turn comes), souls the builder has
 * passed, and new ones once the fill is over, go to the graph directly. No
 * write is lost or undone by an older one.
 *
 * @module
 */
import type { Kernels, Metric } from "../kernels/types.ts";
import { ExactIndex, type NearestIndex, type Ranked, type RankOptions } from "./exact_index.ts";
import { HnswNearest } from "./hnsw_nearest.ts";
import type { IndexSpec } from "./vector_spec.ts";

/**
 * A graph is compacted (rebuilt from its live vectors) once its dead nodes
 * are at least this share of its live ones, and at least
 * {@link COMPACT_MIN}: memory stays within about 1.5 times the live
 * graph's between rebuilds (2.5 times during one), and each rebuild is paid
 * for by as many updates as half the index.
 */
export const COMPACT_SHARE = 0.5;
/** Fewest dead nodes worth a rebuild. */
export const COMPACT_MIN = 512;

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
  readonly #kernels: Kernels;
  readonly #spec: IndexSpec;
  #graph: HnswNearest;
  /** What answers while the graph is built: an exact index (a first build) or the previous graph (a compaction). */
  #stand: ExactIndex | HnswNearest | undefined;
  /** Souls not yet in the graph, with their latest vector (`null`: the previous graph's), in the order they came. */
  #pending: Map<string, Float32Array | null> | undefined;
  /** Whether the initial fill (the scan of the store) still runs: new souls wait in `pending`. */
  #filling: boolean;

  /** An index being filled (then built), or with `restored`, that graph ready at once. */
  constructor(kernels: Kernels, spec: IndexSpec, restored?: HnswNearest) {
    this.#kernels = kernels;
    this.#spec = spec;
    if (restored !== undefined) {
      this.#graph = restored;
      this.#filling = false;
      return;
    }
    this.#graph = new HnswNearest(kernels, spec);
    this.#stand = new ExactIndex(kernels, spec.dim);
    this.#pending = new Map();
    this.#filling = true;
  }

  /** The graph: being built while `state` is `"building"`, answering once `"ready"`. */
  get graph(): HnswNearest {
    return this.#graph;
  }

  /**
   * The graph that answers rankings: the graph once ready, the old one
   * during a compaction; `undefined` while a first build's exact index does.
   */
  get answering(): HnswNearest | undefined {
    return this.#stand === undefined
      ? this.#graph
      : this.#stand instanceof HnswNearest
      ? this.#stand
      : undefined;
  }

  /** `"ready"` once the graph holds every vector and answers. */
  get state(): IndexState {
    return this.#stand === undefined ? "ready" : "building";
  }

  /** Vectors in the graph and vectors in all, while building. */
  get progress(): { done: number; total: number } {
    const total = this.size;
    return { done: total - (this.#pending?.size ?? 0), total };
  }

  get size(): number {
    return this.#stand?.size ?? this.#graph.size;
  }

  /** Removed or replaced vectors the answering graph still holds as waypoints (a compaction reclaims them). */
  get dead(): number {
    const g = this.#stand instanceof HnswNearest ? this.#stand : this.#graph;
    return g.nodes - g.size;
  }

  /** The initial fill is over: from now on new souls go to the graph directly. */
  filled(): void {
    this.#filling = false;
    if (this.#pending?.size === 0) this.#finish();
  }

  /** Whether the ready graph holds enough dead nodes to be rebuilt ({@link COMPACT_SHARE}). */
  wantsCompaction(): boolean {
    if (this.#stand !== undefined) return false;
    const dead = this.#graph.nodes - this.#graph.size;
    return dead >= COMPACT_MIN && dead >= COMPACT_SHARE * this.#graph.size;
  }

  /**
   * Starts rebuilding the graph from its live vectors ({@link step} builds
   * it, a slice at a time); the old graph answers until the new one is
   * complete. Only on a ready index.
   */
  compact(): void {
    if (this.#stand !== undefined) throw new Error("compact: the index is still being built");
    const old = this.#graph;
    const pending = new Map<string, Float32Array | null>();
    for (const soul of old.souls()) pending.set(soul, null);
    this.#graph = new HnswNearest(this.#kernels, this.#spec);
    this.#stand = old;
    this.#pending = pending;
    if (pending.size === 0) this.#finish();
  }

  set(soul: string, v: Float32Array): void {
    const stand = this.#stand, pending = this.#pending;
    if (stand === undefined || pending === undefined) return this.#graph.set(soul, v);
    stand.set(soul, v);
    if (this.#filling) pending.set(soul, v.slice());
    else if (pending.has(soul)) pending.set(soul, stand instanceof HnswNearest ? null : v.slice());
    else this.#graph.set(soul, v);
  }

  /** A copy of the latest vector of `soul`, or `undefined` when it has none. */
  vectorOf(soul: string): Float32Array | undefined {
    const waiting = this.#pending?.get(soul);
    if (waiting) return waiting.slice();
    if (waiting === null) return (this.#stand as HnswNearest).vectorOf(soul);
    return this.#graph.vectorOf(soul);
  }

  remove(soul: string): void {
    this.#stand?.remove(soul);
    this.#pending?.delete(soul);
    this.#graph.remove(soul);
  }

  /**
   * Inserts pending vectors into the graph until `budgetMs` of `clock` has
   * passed (checked after every insert: a clock read is ~0.1 µs, an insert
   * 10 µs to 1 ms); returns whether the graph is complete (then the stand-in
   * is released).
   */
  step(clock: () => number, budgetMs: number): boolean {
    const pending = this.#pending, stand = this.#stand;
    if (pending === undefined || stand === undefined) return true;
    if (this.#filling) return false;
    const started = clock();
    for (const [soul, v] of pending) {
      pending.delete(soul);
      const latest = v ?? (stand as HnswNearest).vectorOf(soul);
      if (latest !== undefined) this.#graph.set(soul, latest);
      if (clock() - started >= budgetMs) break;
    }
    if (pending.size > 0) return false;
    this.#finish();
    return true;
  }

  #finish(): void {
    this.#stand?.dispose();
    this.#stand = undefined;
    this.#pending = undefined;
  }

  ranked(query: Float32Array, n: number, metric: Metric, options?: RankOptions): Ranked {
    return this.#stand !== undefined
      ? this.#stand.ranked(query, n, metric, options)
      : this.#graph.ranked(query, n, metric, options);
  }

  dispose(): void {
    this.#finish();
    this.#graph.dispose();
  }
}
