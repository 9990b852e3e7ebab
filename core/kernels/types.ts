/**
 * The kernel contract: the hot loops of Lattice behind one interface with two
 * implementations (`wasm`, built from `asm/`, and `js`, plain TypeScript).
 *
 * Both implementations must return bit-identical results for every input,
 * including ties, NaN, empty inputs and `k` larger than the data. The exact
 * arithmetic is specified here so that either side can be checked against it.
 *
 * @module
 */

/**
 * Which implementation a kernel set runs on.
 *
 * @example
 * ```ts
 * import { type KernelName, loadKernels } from "../../mod.ts";
 * const name: KernelName = (await loadKernels()).name;
 * console.log(name); // "wasm-simd" on Deno, Bun and Chromium; "js" where WebAssembly is missing
 * ```
 */
export type KernelName = "wasm-simd" | "wasm" | "js";

/**
 * Where `sha256`/`sha256Batch` are computed. `native` is the runtime's own hash (node:crypto).
 *
 * @example
 * ```ts
 * import { type HashBackend, loadKernels } from "../../mod.ts";
 * const backend: HashBackend = (await loadKernels({ kernels: "js", nativeHash: false })).hashBackend;
 * console.log(backend); // js
 * ```
 */
export type HashBackend = "native" | "wasm" | "js";

/**
 * Similarity / distance measure for vector kernels.
 *
 * @example
 * ```ts
 * import { loadKernels, type Metric } from "../../mod.ts";
 * const index = (await loadKernels()).createVectorIndex(2);
 * index.add(new Float32Array([10, 0])); // slot 0: long, pointing along x
 * index.add(new Float32Array([1, 1])); // slot 1: short, near the query
 * for (const metric of ["dot", "l2"] as Metric[]) {
 *   console.log(metric, index.topK(new Float32Array([1, 1]), 1, metric).slots[0]); // dot 0, then l2 1
 * }
 * index.dispose();
 * ```
 */
export type Metric = "dot" | "cosine" | "l2";

/**
 * Length in bytes of an id (peer id digest, soul key): a SHA-256 digest.
 *
 * @example
 * ```ts
 * import { ID_BYTES, loadKernels } from "../../mod.ts";
 * const kernels = await loadKernels();
 * const key = kernels.sha256(new TextEncoder().encode("alice")); // a soul key: its SHA-256
 * console.log(key.length === ID_BYTES); // true
 * ```
 */
export const ID_BYTES = 32;

/**
 * A resident table of 32-byte ids (peer ids, keys) kept inside the kernel's
 * memory so that repeated searches do not copy them.
 *
 * Slots: `add` reuses the most recently freed slot first, otherwise takes the
 * next never-used slot (0, 1, 2, ...). Both implementations share this rule,
 * so slot numbers agree.
 *
 * XOR order: id `x` is closer to `t` than id `y` when the bytes of `x ^ t`,
 * read as a 256-bit big-endian unsigned integer, are smaller than those of
 * `y ^ t`. Equal distances (duplicate ids) are ordered by lower slot first.
 *
 * @example
 * ```ts
 * import { type IdTable, loadKernels } from "../../mod.ts";
 * const table: IdTable = (await loadKernels()).createIdTable();
 * const id = (byte: number) => new Uint8Array(32).fill(byte);
 * for (const byte of [0x10, 0xf0, 0x11]) table.add(id(byte)); // slots 0, 1, 2
 * console.log([...table.closest(id(0x10), 2)]); // [0, 2]: nearest by XOR distance
 * table.dispose();
 * ```
 */
export interface IdTable {
  /** Number of live ids. */
  readonly size: number;
  /** Adds a 32-byte id and returns its slot. Throws `RangeError` if `id.length !== 32`. */
  add(id: Uint8Array): number;
  /** Frees a slot. Throws `RangeError` if the slot is not live. */
  remove(slot: number): void;
  /** Returns a copy of the id in a live slot. Throws `RangeError` if the slot is not live. */
  get(slot: number): Uint8Array;
  /**
   * Slots of the `k` live ids closest to `target` by XOR distance, nearest
   * first. Returns `min(k, size)` slots. `k` must be a non-negative integer.
   */
  closest(target: Uint8Array, k: number): Uint32Array;
  /**
   * Batch replica placement: for each of the M keys packed in `keys`
   * (`keys.length === M * 32`), the `r` closest live ids. Returns
   * `M * min(r, size)` slots, row-major (key 0's replicas first, nearest first).
   */
  place(keys: Uint8Array, r: number): Uint32Array;
  /** Releases the table's memory. Any later call throws. */
  dispose(): void;
}

/**
 * One side of a batch of HAM merge inputs, as six columns of unsigned 32-bit
 * words, one entry per field:
 * - `hlcHi`, `hlcLo`: the 64-bit hybrid logical clock (48-bit ms, 16-bit counter)
 *   as `hi = floor(ms / 65536)`, `lo = (ms % 65536) * 65536 + counter`;
 * - `hashHi`, `hashLo`: the first 8 bytes of SHA-256 of the encoded value, big-endian;
 * - `actorHi`, `actorLo`: the writer's 64-bit actor id, big-endian.
 *
 * @example
 * ```ts
 * import { loadKernels, type MergeColumns } from "../../mod.ts";
 * const kernels = await loadKernels();
 * const batch = kernels.createMergeBatch(1);
 * const fill = (c: MergeColumns, ...words: number[]) =>
 *   [c.hlcHi, c.hlcLo, c.hashHi, c.hashLo, c.actorHi, c.actorLo].forEach((column, i) => column[0] = words[i]);
 * fill(batch.a, 0, 5, 0, 9, 0, 1);
 * fill(batch.b, 0, 5, 0, 9, 0, 2); // same state and value: the higher actor wins
 * console.log(kernels.merge(batch, 1)[0]); // 1
 * batch.dispose();
 * ```
 */
export interface MergeColumns {
  readonly hlcHi: Uint32Array;
  readonly hlcLo: Uint32Array;
  readonly hashHi: Uint32Array;
  readonly hashLo: Uint32Array;
  readonly actorHi: Uint32Array;
  readonly actorLo: Uint32Array;
}

/**
 * A reusable batch for {@link Kernels.merge}. Its typed arrays may live in
 * WASM memory: fill them in place, then call `merge`. They stay valid until
 * `dispose`.
 *
 * @example
 * ```ts
 * import { loadKernels, type MergeBatch } from "../../mod.ts";
 * const kernels = await loadKernels();
 * const batch: MergeBatch = kernels.createMergeBatch(2);
 * for (const c of [batch.a, batch.b]) for (const column of Object.values(c)) column.fill(0);
 * batch.a.hlcLo.set([5, 9]); // the stored writes of pairs 0 and 1, by state
 * batch.b.hlcLo.set([7, 7]); // the incoming ones: later in pair 0, earlier in pair 1
 * console.log([...kernels.merge(batch, 2)]); // [1, 0]
 * batch.dispose();
 * ```
 */
export interface MergeBatch {
  /** Maximum number of pairs. */
  readonly capacity: number;
  /** The current (incumbent) state of each field. */
  readonly a: MergeColumns;
  /** The incoming state of each field. */
  readonly b: MergeColumns;
  /** Output of `merge`: `out[i] === 1` when `b` wins pair `i`, else `0`. */
  readonly out: Uint8Array;
  /** Releases the batch's memory. */
  dispose(): void;
}

/**
 * Result of a top-k vector search.
 *
 * @example
 * ```ts
 * import { loadKernels, type TopK } from "../../mod.ts";
 * const index = (await loadKernels()).createVectorIndex(2);
 * index.add(new Float32Array([1, 0]));
 * index.add(new Float32Array([0, 1]));
 * const best: TopK = index.topK(new Float32Array([0, 2]), 2, "dot");
 * console.log([...best.slots], [...best.scores]); // [1, 0] [2, 0]
 * index.dispose();
 * ```
 */
export interface TopK {
  /** Slots of the best rows, best first. */
  readonly slots: Uint32Array;
  /** The score of each returned slot (similarity for dot/cosine, distance for l2). */
  readonly scores: Float32Array;
}

/**
 * A resident f32 matrix of `dim`-dimensional vectors for exact top-k search.
 * Rows are added, replaced and removed one at a time without re-copying the
 * matrix. Slots follow the same reuse rule as {@link IdTable}.
 *
 * @example
 * ```ts
 * import { loadKernels, type VectorIndex } from "../../mod.ts";
 * const index: VectorIndex = (await loadKernels()).createVectorIndex(3);
 * const cat = index.add(new Float32Array([0.9, 0.1, 0]));
 * index.add(new Float32Array([0, 0.2, 0.9]));
 * console.log(index.topK(new Float32Array([1, 0, 0]), 1, "cosine").slots[0] === cat); // true
 * index.remove(cat);
 * console.log(index.size); // 1
 * index.dispose();
 * ```
 */
export interface VectorIndex {
  readonly dim: number;
  /** Number of live rows. */
  readonly size: number;
  /** Adds a row (`v.length === dim`, else `RangeError`) and returns its slot. */
  add(v: Float32Array): number;
  /** Replaces the row in a live slot. */
  set(slot: number, v: Float32Array): void;
  /** Frees a live slot. */
  remove(slot: number): void;
  /**
   * The `k` best live rows for `query` under `metric`: highest score first for
   * `dot` and `cosine`, lowest distance first for `l2`. NaN scores rank after
   * every number; equal scores rank lower slot first. Returns `min(k, size)` rows.
   */
  topK(query: Float32Array, k: number, metric: Metric): TopK;
  /** Releases the index's memory. */
  dispose(): void;
}

/**
 * Parameters of an HNSW index ({@link Kernels.createHnsw}).
 *
 * @example
 * ```ts
 * import { type HnswOptions, loadKernels } from "../../mod.ts";
 * const options: HnswOptions = { dim: 3, metric: "cosine", m: 16, efConstruction: 200, ef: 64, seed: 7 };
 * const index = (await loadKernels()).createHnsw(options);
 * console.log(index.size); // 0
 * index.dispose();
 * ```
 */
export interface HnswOptions {
  /** Dimension of every vector: an integer from 1 to 65536. */
  readonly dim: number;
  /** Distance measure; default `"cosine"`. */
  readonly metric?: Metric;
  /** Links per node on the upper layers (twice as many on layer 0); 2 to 64, default 16. */
  readonly m?: number;
  /** Candidate list size while inserting; 1 to 4096, default 200. */
  readonly efConstruction?: number;
  /** Candidate list size of a search that gives none; 1 to 4096, default 256 (recall@10 ≥ 0.95 on hard data). */
  readonly ef?: number;
  /** Seed of the level generator (an unsigned 32-bit integer); default 0. Same seed and order, same graph. */
  readonly seed?: number;
  /** Below this many live vectors `search` is exact (a scan of every vector); default 1024. */
  readonly exactBelow?: number;
  /**
   * `"int8"`: keep each vector as int8 codes with a per-vector scale instead
   * of f32 components (a quarter of the vector bytes; for cosine the vector
   * is normalised first). Distances, in the graph and to the query (itself
   * quantized), are those of the dequantized vectors, computed from an exact
   * integer dot product; scores are approximate, within
   * {@link HnswIndex.errorBound} of the f32 ones, so callers re-score the
   * candidates they keep. Default: f32.
   */
  readonly quantize?: "int8";
}

/**
 * Result of an HNSW search: ids best first and their scores (similarity for
 * `dot` and `cosine`, distance for `l2`, as {@link TopK}).
 *
 * @example
 * ```ts
 * import { type HnswHits, loadKernels } from "../../mod.ts";
 * const index = (await loadKernels()).createHnsw({ dim: 2, metric: "l2" });
 * index.insert(10, new Float32Array([0, 0]));
 * index.insert(20, new Float32Array([3, 4]));
 * const hits: HnswHits = index.search(new Float32Array([3, 4]), 2);
 * console.log([...hits.ids], [...hits.scores]); // [20, 10] [0, 5]
 * index.dispose();
 * ```
 */
export interface HnswHits {
  /** The ids given to `insert`, best first. */
  readonly ids: Uint32Array;
  /** The score of each id. */
  readonly scores: Float32Array;
}

/**
 * A hierarchical navigable small world graph (Malkov & Yashunin) over
 * vectors named by unsigned 32-bit ids, for approximate nearest-neighbour
 * search.
 *
 * Deterministic: levels come from a PRNG seeded by `seed` and neighbours are
 * chosen by the paper's heuristic with distance ties broken by insertion
 * order, so the same options and the same sequence of calls build the same
 * graph and return the same results in every implementation, bit for bit
 * (`serialize` returns the same bytes).
 *
 * @example
 * ```ts
 * import { type HnswIndex, loadKernels } from "../../mod.ts";
 * const index: HnswIndex = (await loadKernels()).createHnsw({ dim: 2, metric: "cosine", seed: 1 });
 * index.insert(1, new Float32Array([1, 0]));
 * index.insert(2, new Float32Array([0, 1]));
 * index.insert(3, new Float32Array([1, 1]));
 * index.remove(3);
 * console.log([...index.search(new Float32Array([1, 0.9]), 2).ids]); // [1, 2]
 * index.dispose();
 * ```
 */
export interface HnswIndex {
  /** Dimension of every vector. */
  readonly dim: number;
  /** The distance measure searches rank by. */
  readonly metric: Metric;
  /** `"int8"` when vectors are kept quantized ({@link HnswOptions.quantize}). */
  readonly quantize: "int8" | undefined;
  /** Number of live vectors. */
  readonly size: number;
  /**
   * Number of nodes in the graph: the live vectors and the removed or
   * replaced ones that stay as waypoints. `nodes - size` is what a rebuild
   * from the live vectors reclaims.
   */
  readonly nodes: number;
  /** Bytes of memory the index holds for its vectors and graph (capacity, not scratch). */
  readonly byteLength: number;
  /**
   * Adds `vector` under `id` (an unsigned 32-bit integer). An id already
   * present is replaced: its old vector is removed first. `RangeError` on a
   * wrong length or a NaN or infinite component; nothing changes then.
   */
  insert(id: number, vector: Float32Array): void;
  /** Removes `id`: it is never returned again (its node stays in the graph as a waypoint). Returns whether it was present. */
  remove(id: number): boolean;
  /** Whether `id` is present. */
  has(id: number): boolean;
  /**
   * A copy of the vector of `id` as the index holds it, or `undefined` when
   * `id` is not present. Quantized: the dequantized vector (codes × scale;
   * for cosine, of the normalised vector).
   */
  vector(id: number): Float32Array | undefined;
  /**
   * The `k` nearest live vectors to `query`, best first, searching with a
   * candidate list of `max(ef, k)` (default: the index's `ef`). Exact below
   * `exactBelow` live vectors.
   */
  search(query: Float32Array, k: number, ef?: number): HnswHits;
  /**
   * The exact `k` nearest live vectors (a scan of all of them, ties by
   * insertion order). Quantized: exact over the dequantized vectors, each
   * score within {@link errorBound} of its f32 score.
   */
  searchExact(query: Float32Array, k: number): HnswHits;
  /**
   * A bound on `|f32 score − returned score|` for `query` and any live
   * vector (the f32 score being `Kernels.cosine`/`dot`/`l2` of the query and
   * the vector inserted): 0 when not quantized. With it a caller can tell
   * which vectors an exact re-scoring must look at.
   */
  errorBound(query: Float32Array): number;
  /** The whole index as bytes (versioned; identical in every implementation), for {@link Kernels.restoreHnsw}. */
  serialize(): Uint8Array;
  /** Releases the index's memory. Any later call throws. */
  dispose(): void;
}

/**
 * The kernel set. Every method is synchronous and batch-shaped: one call
 * handles a whole array.
 *
 * Float arithmetic (dot, cosine, l2, top-k), identical in every implementation:
 * - every product and sum is rounded to f32 (no fused multiply-add);
 * - element `i` accumulates into lane `i & 3` of four f32 accumulators, in
 *   increasing `i` (`acc[i & 3] = f32(acc[i & 3] + f32(a[i] * b[i]))`);
 * - the lanes reduce as `f32(f32(acc0 + acc1) + f32(acc2 + acc3))`;
 * - `dot(a, b)` is that sum of products; `l2(a, b)` is
 *   `f32(sqrt(sum of f32(a[i] - b[i]) squared))`;
 * - `cosine(a, b)` is `f32(dot / sqrt(f64(|a|²) * f64(|b|²)))` computed in f64
 *   from the f32 lane sums, and `0` when either squared norm is `0`;
 * - a NaN result is returned as NaN (`Number.isNaN`).
 *
 * @example
 * ```ts
 * import { type Kernels, loadKernels } from "../../mod.ts";
 * const kernels: Kernels = await loadKernels();
 * const digest = kernels.sha256(new TextEncoder().encode("abc"));
 * console.log(Array.from(digest.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join("")); // ba7816bf
 * console.log(kernels.dot(new Float32Array([1, 2]), new Float32Array([3, 4]))); // 11
 * ```
 */
export interface Kernels {
  /** The implementation in use. */
  readonly name: KernelName;
  /** Where SHA-256 runs for `sha256`/`sha256Batch`. */
  readonly hashBackend: HashBackend;

  // ---- XOR distance (Kademlia) ----
  /** Indices `0..N-1` of the N ids packed in `ids` ordered by XOR distance to `target` (ties: lower index first). */
  xorSort(ids: Uint8Array, target: Uint8Array): Uint32Array;
  /** For each packed id, the length in bits (0..256) of its common prefix with `self`: its k-bucket index. */
  bucketIndex(ids: Uint8Array, self: Uint8Array): Uint16Array;
  /** A new, empty resident id table. */
  createIdTable(): IdTable;

  // ---- SHA-256 ----
  /** SHA-256 of one input. */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * SHA-256 of many inputs in one call. Input `i` is
   * `data.subarray(i === 0 ? 0 : ends[i - 1], ends[i])`; `ends` must be
   * non-decreasing and end within `data`. Returns (or fills `out`, which must
   * hold `32 * ends.length` bytes) the digests back to back.
   */
  sha256Batch(data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array;

  // ---- HAM merge ----
  /** A reusable batch of `capacity` field pairs. */
  createMergeBatch(capacity: number): MergeBatch;
  /**
   * Decides the first `length` pairs of `batch`: `b` wins pair `i` when its
   * `(hlcHi, hlcLo, hashHi, hashLo, actorHi, actorLo)` is lexicographically
   * greater (unsigned) than `a`'s; an equal tuple keeps `a`. Fills and
   * returns `batch.out.subarray(0, length)`.
   */
  merge(batch: MergeBatch, length: number): Uint8Array;

  // ---- Vectors ----
  /** Dot product (see the arithmetic rules above). Throws `RangeError` on a length mismatch. */
  dot(a: Float32Array, b: Float32Array): number;
  /** Cosine similarity (0 when either vector is all zeros). */
  cosine(a: Float32Array, b: Float32Array): number;
  /** Euclidean distance. */
  l2(a: Float32Array, b: Float32Array): number;
  /** A new, empty resident vector index of dimension `dim` (a positive integer). */
  createVectorIndex(dim: number): VectorIndex;
  /** A new, empty HNSW index. `RangeError` on a bad option. */
  createHnsw(options: HnswOptions): HnswIndex;
  /** An HNSW index from the bytes of {@link HnswIndex.serialize} (of either implementation). `RangeError` on bad bytes. */
  restoreHnsw(bytes: Uint8Array): HnswIndex;
}
