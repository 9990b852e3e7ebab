/**
 * The {@link HnswIndex} both kernel sets hand out: ids, levels, memory and
 * checks live here, once; the graph algorithms are the engine's
 * (`js/hnsw.ts` or `wasm/hnsw.ts`). Because this file writes every byte but
 * the links and norms, the twins can only differ in the algorithms, and the
 * conformance tests compare those byte for byte.
 *
 * Removal marks the node dead: it stays in the graph as a waypoint (so no
 * link needs repair and recall holds), and searches never return it. An id
 * inserted again gets a new node. Dead nodes are reclaimed only by a rebuild
 * from the live vectors (`nodes - size` of them; the Database rebuilds an
 * index in the background once they pass a share of it: core/db/staged_nearest.ts).
 *
 * A quantized index (`quantize: "int8"`) writes int8 codes where the f32
 * vector would be (`_hnsw_int8.ts`), the query too, and keeps the largest
 * residual bound and dequantized norm it has stored, for {@link HnswCore.errorBound}.
 *
 * @module
 */
import { checkCount, checkFinite, checkVector, disposedError } from "./_check.ts";
import {
  type HnswEngine,
  type HnswLayout,
  hnswLayout,
  type HnswParams,
  LevelGenerator,
  NONE,
  type RecordShape,
  recordShape,
} from "./_hnsw_layout.ts";
import { decodeHnsw, encodeHnsw, type HnswState } from "./_hnsw_format.ts";
import { errorBound, quantizeInto } from "./_hnsw_int8.ts";
import type { HnswHits, HnswIndex, Metric } from "./types.ts";

export type { HnswState };

function checkId(id: unknown): asserts id is number {
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
    throw new RangeError(`id must be an integer from 0 to 4294967295, got ${String(id)}`);
  }
}

/** An index over `engine` from the bytes of `serialize` (`RangeError` when they are not a valid index). */
export function restoreHnsw(bytes: Uint8Array, engine: (params: HnswParams) => HnswEngine): HnswCore {
  const decoded = decodeHnsw(bytes);
  const index = new HnswCore(engine(decoded.params), decoded.params);
  index.load(decoded.records, decoded.upper, decoded.state, decoded.ids);
  return index;
}

/** The index over one engine (see the module comment). */
export class HnswCore implements HnswIndex {
  readonly params: HnswParams;
  readonly shape: RecordShape;
  readonly state: HnswState;
  #engine: HnswEngine | null;
  #levels: LevelGenerator;
  #ids = new Map<number, number>();
  #layout: HnswLayout;
  #upperCap = 0;
  /** Quantized: the largest residual bound and dequantized norm stored (never lowered by removal). */
  #maxResidual = 0;
  #maxNorm = 0;
  #scratch: Float32Array | undefined;

  constructor(engine: HnswEngine, params: HnswParams) {
    this.#engine = engine;
    this.params = params;
    this.shape = recordShape(params.dim, params.m, params.quantize === "int8");
    this.#levels = new LevelGenerator(params.m, params.seed);
    this.state = { levelState: params.seed, count: 0, entry: NONE, maxLevel: 0, upperUsed: 0 };
    const width = Math.max(params.ef, params.efConstruction, this.shape.m0 + 1);
    this.#layout = hnswLayout(engine.memory.base, this.shape, 0, 0, width);
    this.#apply(this.#layout);
  }

  get dim(): number {
    return this.params.dim;
  }

  get metric(): Metric {
    return this.params.metric;
  }

  get quantize(): "int8" | undefined {
    return this.params.quantize;
  }

  get size(): number {
    return this.#engine ? this.#ids.size : 0;
  }

  get nodes(): number {
    return this.#engine ? this.state.count : 0;
  }

  get byteLength(): number {
    return this.#engine ? this.#layout.capacity * this.shape.stride + this.#upperCap : 0;
  }

  insert(id: number, vector: Float32Array): void {
    const engine = this.#alive();
    checkId(id);
    checkVector(vector, this.params.dim);
    checkFinite(vector, "vector");
    this.remove(id);
    const { shape, state } = this;
    const node = state.count;
    const level = this.#levels.next();
    state.levelState = this.#levels.state;
    const upperNeed = level * shape.block;
    this.#reserve(node + 1, state.upperUsed + upperNeed);
    const { u8, u32, f32 } = engine.memory;
    const rec = this.#layout.records + node * shape.stride;
    // Whole records and blocks are cleared: the memory may hold the engine's old scratch, and
    // every byte is serialized.
    u8.fill(0, rec, rec + shape.stride);
    if (shape.quant) quantizeInto(vector, this.params.metric === "cosine", u8, f32, rec, shape.dimPad);
    else f32.set(vector, rec >>> 2);
    const m = (rec + shape.meta) >>> 2;
    u32[m + 1] = 1;
    u32[m + 2] = level;
    u32[m + 3] = level > 0 ? state.upperUsed : 0;
    u32[m + 4] = id;
    const blocks = this.#layout.upper + state.upperUsed;
    u8.fill(0, blocks, blocks + upperNeed);
    state.upperUsed += upperNeed;
    engine.commit(node);
    if (shape.quant) this.#track(node);
    if (state.entry === NONE) {
      state.entry = node;
      state.maxLevel = level;
    } else {
      engine.insert(node, level, state.entry, state.maxLevel);
      if (level > state.maxLevel) {
        state.entry = node;
        state.maxLevel = level;
      }
    }
    state.count++;
    this.#ids.set(id, node);
  }

  remove(id: number): boolean {
    const engine = this.#alive();
    checkId(id);
    const node = this.#ids.get(id);
    if (node === undefined) return false;
    this.#ids.delete(id);
    engine.memory.u32[(this.#layout.records + node * this.shape.stride + this.shape.meta + 4) >>> 2] = 0;
    return true;
  }

  has(id: number): boolean {
    this.#alive();
    checkId(id);
    return this.#ids.has(id);
  }

  vector(id: number): Float32Array | undefined {
    const engine = this.#alive();
    checkId(id);
    const node = this.#ids.get(id);
    if (node === undefined) return undefined;
    const rec = this.#layout.records + node * this.shape.stride;
    const { u8, f32 } = engine.memory;
    if (!this.shape.quant) return f32.slice(rec >>> 2, (rec >>> 2) + this.params.dim);
    // Quantized: the dequantized vector, codes × scale (for cosine, of the normalised vector).
    const scale = f32[(rec + this.shape.dimPad) >>> 2];
    const out = new Float32Array(this.params.dim);
    for (let i = 0; i < out.length; i++) out[i] = ((u8[rec + i] << 24) >> 24) * scale;
    return out;
  }

  search(query: Float32Array, k: number, ef?: number): HnswHits {
    const engine = this.#alive();
    this.#checkQuery(query, k);
    if (ef !== undefined && (typeof ef !== "number" || !Number.isInteger(ef) || ef < 1 || ef > 4096)) {
      throw new RangeError(`ef must be an integer from 1 to 4096, got ${String(ef)}`);
    }
    const n = Math.min(k, this.#ids.size);
    if (n === 0) return { ids: new Uint32Array(0), scores: new Float32Array(0) };
    if (this.#ids.size < this.params.exactBelow) return this.#exact(engine, query, n);
    const width = Math.max(ef ?? this.params.ef, n);
    if (width > this.#layout.width) this.#relayout(this.#layout.capacity, this.#upperCap, width);
    this.#writeQuery(query);
    const { state } = this;
    return this.#hits(engine.search(state.entry, state.maxLevel, n, width));
  }

  searchExact(query: Float32Array, k: number): HnswHits {
    const engine = this.#alive();
    this.#checkQuery(query, k);
    const n = Math.min(k, this.#ids.size);
    if (n === 0) return { ids: new Uint32Array(0), scores: new Float32Array(0) };
    return this.#exact(engine, query, n);
  }

  serialize(): Uint8Array {
    const { u8 } = this.#alive().memory;
    const lay = this.#layout;
    return encodeHnsw(
      this.params,
      this.state,
      u8.subarray(lay.records, lay.records + this.state.count * this.shape.stride),
      u8.subarray(lay.upper, lay.upper + this.state.upperUsed),
    );
  }

  /**
   * A bound on how far any score `search` or `searchExact` returns for
   * `query` is from the f32 score of the vector inserted (`Kernels.cosine`,
   * `dot`, `l2` of query and vector, in that order): 0 unless quantized.
   */
  errorBound(query: Float32Array): number {
    this.#alive();
    checkVector(query, this.params.dim, "query");
    checkFinite(query, "query");
    if (!this.shape.quant) return 0;
    const { dim, metric } = this.params, n = this.shape.dimPad;
    const scratch = this.#scratch ??= new Float32Array(n / 4 + 2);
    quantizeInto(query, metric === "cosine", new Uint8Array(scratch.buffer), scratch, 0, n);
    let qq = 0;
    for (let i = 0; i < dim; i++) qq += query[i] * query[i];
    return errorBound(metric, dim, Math.sqrt(qq), scratch[n / 4 + 1], this.#maxResidual, this.#maxNorm);
  }

  dispose(): void {
    this.#engine?.dispose();
    this.#engine = null;
    this.#ids.clear();
  }

  /** Takes over a decoded (and checked) graph; norms are recomputed rather than trusted. */
  load(records: Uint8Array, upper: Uint8Array, state: HnswState, ids: Map<number, number>): void {
    const engine = this.#alive();
    this.#reserve(state.count, state.upperUsed);
    const { u8 } = engine.memory;
    u8.set(records, this.#layout.records);
    u8.set(upper, this.#layout.upper);
    Object.assign(this.state, state);
    this.#levels.state = state.levelState;
    this.#ids = ids;
    for (let node = 0; node < state.count; node++) {
      engine.commit(node);
      if (this.shape.quant) this.#track(node);
    }
  }

  /** Takes the residual bound and dequantized norm of quantized `node` into the maxima. */
  #track(node: number): void {
    const { u32, f32 } = this.#alive().memory;
    const rec = this.#layout.records + node * this.shape.stride, n = this.shape.dimPad;
    const scale = f32[(rec + n) >>> 2], residual = f32[(rec + n + 4) >>> 2];
    const norm = scale * Math.sqrt(u32[(rec + this.shape.meta) >>> 2]);
    if (residual > this.#maxResidual) this.#maxResidual = residual;
    if (norm > this.#maxNorm) this.#maxNorm = norm;
  }

  #alive(): HnswEngine {
    if (this.#engine === null) throw disposedError("HNSW index");
    return this.#engine;
  }

  #checkQuery(query: Float32Array, k: number): void {
    checkVector(query, this.params.dim, "query");
    checkFinite(query, "query");
    checkCount(k);
  }

  #writeQuery(query: Float32Array): void {
    const { u8, u32, f32 } = this.#alive().memory;
    if (this.shape.quant) {
      const at = this.#layout.query, cosine = this.params.metric === "cosine";
      u32[(at + this.shape.meta) >>> 2] = quantizeInto(query, cosine, u8, f32, at, this.shape.dimPad);
      return;
    }
    const q = this.#layout.query >>> 2;
    f32.set(query, q);
    f32.fill(0, q + this.params.dim, q + this.shape.dimPad);
  }

  #exact(engine: HnswEngine, query: Float32Array, n: number): HnswHits {
    this.#writeQuery(query);
    return this.#hits(engine.exact(this.state.count, n));
  }

  #hits(count: number): HnswHits {
    const { u32, f32 } = this.#alive().memory;
    const { outNodes, outScores, records } = this.#layout;
    const ids = new Uint32Array(count);
    const idAt = (records + this.shape.meta + 16) >>> 2, step = this.shape.stride >>> 2;
    for (let i = 0; i < count; i++) ids[i] = u32[idAt + u32[(outNodes >>> 2) + i] * step];
    return { ids, scores: f32.slice(outScores >>> 2, (outScores >>> 2) + count) };
  }

  /** Makes room for `nodes` records and `upperBytes` of upper blocks. */
  #reserve(nodes: number, upperBytes: number): void {
    const lay = this.#layout;
    if (nodes <= lay.capacity && upperBytes <= this.#upperCap) return;
    const capacity = nodes <= lay.capacity
      ? lay.capacity
      : Math.max(16, nodes, Math.ceil(1.5 * lay.capacity));
    const upperCap = upperBytes <= this.#upperCap
      ? this.#upperCap
      : Math.max(1024, upperBytes, Math.ceil(1.5 * this.#upperCap));
    this.#relayout(capacity, upperCap, lay.width);
  }

  #relayout(capacity: number, upperCap: number, width: number): void {
    const engine = this.#alive();
    const old = this.#layout;
    const next = hnswLayout(engine.memory.base, this.shape, capacity, upperCap, width);
    engine.memory.ensure(next.end);
    // Regions only move up, so moving the upper arena before anything is written behind it is safe.
    if (next.upper !== old.upper && this.state.upperUsed > 0) {
      engine.memory.u8.copyWithin(next.upper, old.upper, old.upper + this.state.upperUsed);
    }
    this.#upperCap = upperCap;
    this.#apply(next);
  }

  #apply(layout: HnswLayout): void {
    this.#layout = layout;
    this.#alive().setLayout(layout, this.shape, this.params);
  }
}
