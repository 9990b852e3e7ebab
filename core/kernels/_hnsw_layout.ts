/**
 * What both HNSW implementations share: the options and their defaults, the
 * level generator, the byte layout of the graph in memory, and the engine
 * contract ({@link HnswEngine}) that `js/hnsw.ts` and `wasm/hnsw.ts` fulfil.
 *
 * One layout for both twins is what makes them provably identical: the
 * wrapper (`_hnsw_index.ts`) writes vectors, ids and levels into the same
 * bytes, each engine links nodes in place, and `serialize` copies the bytes
 * out — so equal graphs are equal bytes.
 *
 * Node record (`stride` bytes, a multiple of 16, node `i` at `records + i * stride`):
 * - `dimPad` f32: the vector, zero-padded to a multiple of four;
 * - at `V = 4 * dimPad`: squared norm (f32), live flag (u32; the layout of
 *   the exact top-k kernel's rows, so it scans these records as they are),
 *   level (u32), byte offset of the node's first upper block in the upper
 *   arena (u32), id (u32), layer-0 link count (u32), then `2m` links (u32).
 *
 * Quantized record (`quantize: "int8"`, `_hnsw_int8.ts`): instead of the
 * f32 vector, `dimPad` int8 codes (the dimension rounded up to 16, padding
 * zero), the scale (f32) and the residual bound (f32); then, at `V =
 * dimPad + 8`, the same words as above, the first holding the sum of the
 * squared codes (u32) instead of the squared norm.
 *
 * Upper arena: for a node of level L ≥ 1, L consecutive blocks (layers 1..L)
 * of `1 + m` u32 words (count, then links), allocated in insertion order.
 *
 * @module
 */
import { checkDim, checkMetric } from "./_check.ts";
import type { HnswOptions, Metric } from "./types.ts";

/** Highest level a node can get (the generator stops there; P = m^-16). */
export const MAX_LEVEL = 16;
/** "No node" (the entry point of an empty index). */
export const NONE = 0xffffffff;
/** Metric codes shared with asm/hnsw.ts and asm/vector.ts. */
export const METRIC_CODE: Record<Metric, number> = { dot: 0, cosine: 1, l2: 2 };
/** Metrics by code. */
export const METRICS: readonly Metric[] = ["dot", "cosine", "l2"];

/**
 * Default search list size. Measured (bench `vector`, M 16, efConstruction
 * 200): recall@10 reaches 0.95 at ef 32 on 10k × 384 clustered data but only
 * at ef ≈ 220 on 10k × 128 uniform data (hnswlib needs the same), so the
 * default is the one that holds on both; pass `ef` to trade recall for speed.
 */
export const DEFAULT_EF = 256;

/** Options with the defaults applied. */
export interface HnswParams {
  readonly dim: number;
  readonly metric: Metric;
  readonly m: number;
  readonly efConstruction: number;
  readonly ef: number;
  readonly seed: number;
  readonly exactBelow: number;
  /** `"int8"`: records hold int8 codes instead of f32 components (`_hnsw_int8.ts`). */
  readonly quantize: "int8" | undefined;
}

function intIn(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** Checks `options` and applies the defaults (`RangeError` on a bad value). */
export function hnswParams(options: HnswOptions): HnswParams {
  if (typeof options !== "object" || options === null) throw new TypeError("HNSW options must be an object");
  checkDim(options.dim);
  const metric = options.metric ?? "cosine";
  checkMetric(metric);
  return {
    dim: options.dim,
    metric,
    m: intIn(options.m, "m", 2, 64, 16),
    efConstruction: intIn(options.efConstruction, "efConstruction", 1, 4096, 200),
    ef: intIn(options.ef, "ef", 1, 4096, DEFAULT_EF),
    seed: intIn(options.seed, "seed", 0, 0xffffffff, 0),
    exactBelow: intIn(options.exactBelow, "exactBelow", 0, 0xffffffff, 1024),
    quantize: checkQuantize(options.quantize),
  };
}

function checkQuantize(q: unknown): "int8" | undefined {
  if (q === undefined || q === "int8") return q;
  throw new RangeError(`quantize must be "int8" or left out, got ${JSON.stringify(q)}`);
}

/** Byte offsets inside a node record, from the dimension and `m`. */
export interface RecordShape {
  /** Components of a record (f32 floats, or int8 codes when `quant`), a multiple of four (of 16 when `quant`). */
  readonly dimPad: number;
  /** Offset of the squared norm; live flag +4, level +8, upper offset +12, id +16, count +20, links +24. */
  readonly meta: number;
  /** Whether records hold int8 codes. */
  readonly quant: boolean;
  /** Bytes of the query (a record's vector part, and for `quant` its scale, residual and code sum). */
  readonly queryBytes: number;
  readonly stride: number;
  /** Links on layer 0. */
  readonly m0: number;
  /** Bytes of one upper block (count + m links). */
  readonly block: number;
}

/** The record shape for vectors of `dim` floats and `m` links per upper layer, f32 or `quant` (int8). */
export function recordShape(dim: number, m: number, quant = false): RecordShape {
  const dimPad = quant ? Math.ceil(dim / 16) * 16 : Math.ceil(dim / 4) * 4;
  const meta = quant ? dimPad + 8 : dimPad * 4;
  return {
    dimPad,
    meta,
    quant,
    queryBytes: quant ? meta + 16 : meta,
    stride: Math.ceil((meta + 24 + 8 * m) / 16) * 16,
    m0: 2 * m,
    block: 4 * (1 + m),
  };
}

/** Where everything lives in an engine's memory (byte offsets, all 16-aligned). */
export interface HnswLayout {
  readonly records: number;
  /** Node capacity of the records region. */
  readonly capacity: number;
  readonly upper: number;
  /** The query (`shape.queryBytes`). */
  readonly query: number;
  /**
   * Scratch of the WASM engine: visit marks, candidate heap, result heap, candidate list, and `pick`:
   * the heuristic's picks, then the neighbours being scored (`m0 + 4` entries of 8 bytes each).
   */
  readonly visited: number;
  readonly heapC: number;
  readonly heapW: number;
  readonly sel: number;
  readonly pick: number;
  /** Entries the result heap and candidate list hold (at least `max(ef, efConstruction, 2m + 1)`). */
  readonly width: number;
  /** Output of a search: nodes (u32) and scores (f32), `max(width, capacity)` each. */
  readonly outNodes: number;
  readonly outScores: number;
  /** Scratch of the exact scan: scores (f32) and a heap (u64), `capacity` each. */
  readonly exactScores: number;
  readonly exactHeap: number;
  readonly end: number;
}

const a16 = (n: number): number => Math.ceil(n / 16) * 16;

/** The layout for `capacity` nodes, an upper arena of `upperBytes` and lists of `width` entries. */
export function hnswLayout(
  base: number,
  shape: RecordShape,
  capacity: number,
  upperBytes: number,
  width: number,
): HnswLayout {
  const records = a16(base);
  const upper = records + capacity * shape.stride;
  const query = a16(upper + upperBytes);
  const visited = a16(query + shape.queryBytes);
  const heapC = a16(visited + 4 * capacity);
  const heapW = a16(heapC + 8 * (capacity + 2));
  const sel = a16(heapW + 8 * (width + 2));
  const pick = a16(sel + 8 * (width + 2));
  const out = Math.max(width, capacity);
  const outNodes = a16(pick + 16 * (shape.m0 + 4));
  const outScores = a16(outNodes + 4 * out);
  const exactScores = a16(outScores + 4 * out);
  const exactHeap = a16(exactScores + 4 * capacity);
  const end = exactHeap + 8 * capacity;
  return {
    records,
    capacity,
    upper,
    query,
    visited,
    heapC,
    heapW,
    sel,
    pick,
    width,
    outNodes,
    outScores,
    exactScores,
    exactHeap,
    end,
  };
}

/** Typed-array views of an engine's memory; `ensure` makes bytes [0, end) addressable, keeping the contents. */
export interface HnswMemory {
  readonly base: number;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly f32: Float32Array;
  ensure(end: number): void;
}

/**
 * The graph algorithms of one implementation, working in place on the
 * layout's memory. The wrapper writes records and calls these.
 */
export interface HnswEngine {
  readonly memory: HnswMemory;
  /** Where everything is now (after every growth); clears the visit marks. */
  setLayout(layout: HnswLayout, shape: RecordShape, params: HnswParams): void;
  /** Stores the squared norm of `node`'s vector (already written, padding zeroed). */
  commit(node: number): void;
  /** Links `node` (record and upper blocks written, counts 0) into the graph. */
  insert(node: number, level: number, entry: number, maxLevel: number): void;
  /** Approximate search for the query: writes ≤ k nodes and scores, best first; returns the count. */
  search(entry: number, maxLevel: number, k: number, ef: number): number;
  /** Exact top-k of the live nodes among the first `high`: writes nodes and scores; returns the count. */
  exact(high: number, k: number): number;
  dispose(): void;
}

/**
 * The level generator: mulberry32 steps, and a level is the number of
 * leading draws below 2³² / m (so P(level ≥ l) = m^-l, the paper's
 * distribution with mL = 1 / ln m) — integers only, so every runtime agrees.
 */
export class LevelGenerator {
  state: number;
  readonly #threshold: number;

  constructor(m: number, state: number) {
    this.#threshold = Math.floor(0x100000000 / m);
    this.state = state >>> 0;
  }

  #next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  next(): number {
    let level = 0;
    while (level < MAX_LEVEL && this.#next() < this.#threshold) level++;
    return level;
  }
}
