/**
 * Declarations of vector indexes: what `createIndex` takes
 * ({@link IndexOptions}), checks and fills in, what `indexes()` reports
 * ({@link IndexInfo}), and how the declarations are kept in the store's
 * metadata (one JSON list under `vector-indexes`), local to the replica.
 *
 * The HNSW parameters (`m`, `efConstruction`, `ef`) and `quantize` are
 * checked and kept with the declaration; the index's graph is built with
 * them (hnsw_nearest.ts, which holds them to the kernel's bounds). A
 * declaration kept before `quantize` existed reads as one without it.
 *
 * @module
 */
import type { Metric } from "../kernels/types.ts";
import { checkField } from "../value.ts";
import { MAX_DIM } from "./vector_value.ts";

/**
 * What `db.createIndex` takes: the field whose values are vectors, their
 * dimension, the metric (default `cosine`) and the HNSW parameters
 * (defaults `m` 16, `efConstruction` 200, `ef` 50).
 *
 * @example
 * ```ts
 * import { type IndexOptions, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * const options: IndexOptions = { field: "embedding", dim: 384, metric: "cosine" };
 * console.log(await db.createIndex(options)); // { field: "embedding", dim: 384, metric: "cosine", m: 16, … }
 * await db.close();
 * ```
 */
export interface IndexOptions {
  readonly field: string;
  /** Components per vector, 1–65,536. */
  readonly dim: number;
  /** `cosine` (default), `dot` or `l2`. */
  readonly metric?: Metric;
  /** HNSW: links per node, 2–128 (default 16; the graph uses at most 64). */
  readonly m?: number;
  /** HNSW: candidates while building, 1–10,000 (default 200; the graph uses at most 4096). */
  readonly efConstruction?: number;
  /** HNSW: default candidates while searching, 1–10,000 (default 50; at most 4096 are used). */
  readonly ef?: number;
  /**
   * `"int8"`: the graph keeps each vector as int8 codes with a per-vector
   * scale instead of f32 components (384 dimensions: 392 B instead of
   * 1,536 B; with the graph's links about 0.32× the f32 index's memory), and
   * the candidates it returns are re-scored in f32 from the stored vectors
   * before results are returned, so scores are the f32 ones and `exact`
   * searches the true top k. Left out: f32.
   */
  readonly quantize?: "int8";
}

/**
 * A declared vector index, as `db.indexes()` lists it: its settings,
 * `count`, how many nodes have a vector in it now, `dead`, how many removed
 * or replaced vectors its graph still holds as waypoints, and `state`:
 * `"building"` while its HNSW graph is built in the background — after open
 * or `createIndex` (searches are exact scans meanwhile), or a compaction
 * (the graph rebuilt from its live vectors once `dead` passes half of
 * `count`; the old graph answers meanwhile); `building` tells how many
 * vectors the new graph holds of how many — and `"ready"` once the graph
 * answers.
 *
 * @example
 * ```ts
 * import { type IndexInfo, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.createIndex({ field: "embedding", dim: 2, metric: "l2" });
 * await db.put("a", { embedding: [1, 0] });
 * const [info]: IndexInfo[] = db.indexes();
 * console.log(info.field, info.dim, info.metric, info.count, info.state); // embedding 2 l2 1 ready
 * await db.close();
 * ```
 */
export interface IndexInfo {
  readonly field: string;
  readonly dim: number;
  readonly metric: Metric;
  readonly m: number;
  readonly efConstruction: number;
  readonly ef: number;
  /** `"int8"` when the graph keeps vectors quantized (see {@link IndexOptions.quantize}); absent for f32. */
  readonly quantize?: "int8";
  /** How many nodes have a vector in the index. */
  readonly count: number;
  /** Removed or replaced vectors the graph still holds as waypoints, until the next compaction reclaims them. */
  readonly dead: number;
  /** `"building"`: a stand-in answers (exact scans, or the old graph in a compaction) until the new graph is complete; `"ready"`: the graph answers. */
  readonly state: "building" | "ready";
  /** While building: vectors in the graph (`done`) of all of them (`total`). */
  readonly building?: { readonly done: number; readonly total: number };
  /** Texts waiting for their vector (`open({ embed })`), when there are any: out of the index until it lands. */
  readonly embedding?: number;
}

/** A declaration as kept: the settings of {@link IndexInfo}. */
export type IndexSpec = Omit<IndexInfo, "count" | "dead" | "state" | "building" | "embedding">;

/** The metadata key of the declarations. */
export const INDEXES_META = "vector-indexes";
/** Largest `ef` a search may ask for, and largest `efConstruction`. */
export const MAX_EF = 10_000;

const KEYS = new Set(["field", "dim", "metric", "m", "efConstruction", "ef", "quantize"]);
const METRICS: readonly Metric[] = ["cosine", "dot", "l2"];

function intIn(
  options: IndexOptions,
  key: "dim" | "m" | "efConstruction" | "ef",
  min: number,
  max: number,
  dflt?: number,
): number {
  const v = options[key] ?? dflt;
  if (typeof v !== "number") throw new TypeError(`createIndex: ${key} must be a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`createIndex: ${key} must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

/** Checks `createIndex` options and fills in the defaults (`TypeError`/`RangeError`). */
export function checkIndexOptions(options: IndexOptions): IndexSpec {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      "createIndex takes an options object { field, dim, metric?, m?, efConstruction?, ef?, quantize? }",
    );
  }
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new TypeError(`createIndex: unknown option ${JSON.stringify(key)}`);
  }
  checkField(options.field);
  if (options.dim === undefined) throw new TypeError("createIndex needs dim, the number of components");
  const dim = intIn(options, "dim", 1, MAX_DIM);
  const metric = options.metric ?? "cosine";
  if (!METRICS.includes(metric)) {
    throw new RangeError(`createIndex: metric must be cosine, dot or l2, got ${JSON.stringify(metric)}`);
  }
  if (options.quantize !== undefined && options.quantize !== "int8") {
    throw new RangeError(
      `createIndex: quantize must be "int8" or left out (f32), got ${JSON.stringify(options.quantize)}`,
    );
  }
  const spec: IndexSpec = {
    field: options.field,
    dim,
    metric,
    m: intIn(options, "m", 2, 128, 16),
    efConstruction: intIn(options, "efConstruction", 1, MAX_EF, 200),
    ef: intIn(options, "ef", 1, MAX_EF, 50),
  };
  // Absent, not undefined, for f32: declarations and saves of f32 indexes keep their JSON.
  return options.quantize === undefined ? spec : { ...spec, quantize: options.quantize };
}

/** Whether two declarations have the same settings. */
export function sameSpec(a: IndexSpec, b: IndexSpec): boolean {
  return a.field === b.field && a.dim === b.dim && a.metric === b.metric && a.m === b.m &&
    a.efConstruction === b.efConstruction && a.ef === b.ef && a.quantize === b.quantize;
}

/** The declarations kept under {@link INDEXES_META} (none when absent); throws on unreadable metadata. */
export function parseSpecs(text: string | undefined): IndexSpec[] {
  if (text === undefined) return [];
  const list = JSON.parse(text) as IndexSpec[];
  if (!Array.isArray(list)) throw new SyntaxError(`The metadata ${INDEXES_META} is not a list`);
  return list.map((s) => checkIndexOptions(s));
}
