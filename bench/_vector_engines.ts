/**
 * The engines of the `vector` suite (bench/vector.bench.ts): what one is
 * ({@link Engine}: builds an index of a data set; {@link Built}: searches it
 * at an ef, tells its bytes per vector, times a restore) and Lattice's own:
 * the HNSW kernel index (`createHnsw`, given any extra options, so that a
 * variant such as an int8-quantized index is one more entry in the suite's
 * list) and the exact top-k over the resident matrix (`createVectorIndex`).
 * The peers (hnswlib-wasm, hnswlib-node) are in bench/_vector_peers.ts.
 * Not a suite.
 *
 * @module
 */
import type { HnswIndex, HnswOptions, Kernels } from "../core/kernels/types.ts";
import {
  type DataSet,
  EF_CONSTRUCTION,
  K,
  type Log,
  M,
  medianMs,
  progress,
  type Search,
} from "./_vector_measure.ts";

/** A restore's time, or why the engine has none. */
export type Restore = { readonly ms: number; readonly how: string } | { readonly na: string };

/** An index an engine built over a data set's rows (ids = row numbers). */
export interface Built {
  /** Time to insert every row, once. */
  readonly buildMs: number;
  /** Searches query `i` of the data set. */
  readonly search: Search;
  /** Bytes of memory per vector, and how the figure was found. */
  readonly bytes: { readonly perVector: number; readonly how: string };
  /** Times a restore of this index (from its bytes or a file); the reason where there is none. */
  restore(): Restore | Promise<Restore>;
  /** Exact searches this index offers besides its own kind (name → search), reported as rows of their own. */
  readonly exact?: Readonly<Record<string, Search>>;
  dispose(): void;
}

/** One engine of the suite. */
export interface Engine {
  readonly name: string;
  /** `hnsw`: approximate, searched at the smallest ef reaching the target recall; `exact`: a scan. */
  readonly kind: "hnsw" | "exact";
  /** Why it cannot run here (the suite says so and goes on without it). */
  readonly missing?: string;
  /** Why it leaves out data set `set` (e.g. too slow to build at that size), or `undefined` to run. */
  skip?(set: DataSet): string | undefined;
  build(set: DataSet, log: Log): Built | Promise<Built>;
}

/** An engine that cannot run here, with the reason. */
export function missing(name: string, kind: Engine["kind"], reason: string): Engine {
  return {
    name,
    kind,
    missing: reason,
    build() {
      throw new Error(`${name} is not available: ${reason}`);
    },
  };
}

/** Inserts every row with `insert`, logging progress; returns the milliseconds it took. */
export function timedInserts(
  set: DataSet,
  log: Log,
  name: string,
  insert: (i: number, v: Float32Array) => void,
): number {
  const tick = progress(log, `${set.label}: ${name} building`, set.rows.length);
  const t = performance.now();
  for (let i = 0; i < set.rows.length; i++) {
    insert(i, set.rows[i]);
    tick(i);
  }
  return performance.now() - t;
}

/** Options of {@link latticeHnsw}. */
export interface LatticeHnswOptions {
  /** Options of `createHnsw` on top of the suite's M, efConstruction and seed, e.g. `{ quantize: "int8" }`. */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** Report the index's own exact scan (`searchExact`) as a row too. */
  readonly exact?: boolean;
  /** Leave out data sets of more rows than this, saying `why`. */
  readonly maxRows?: number;
  readonly why?: string;
}

/**
 * Lattice's HNSW index on `kernels`, with M, efConstruction and seed of the
 * suite (and `options.extra` on top). Restore: `serialize` (not timed), then
 * `restoreHnsw` of those bytes.
 */
export function latticeHnsw(name: string, kernels: Kernels, options: LatticeHnswOptions = {}): Engine {
  const { extra = {}, exact = false, maxRows = Infinity, why = "" } = options;
  return {
    name,
    kind: "hnsw",
    skip: (set) => set.rows.length > maxRows ? why : undefined,
    build(set, log) {
      const options = {
        dim: set.dim,
        metric: set.metric,
        m: M,
        efConstruction: EF_CONSTRUCTION,
        seed: 1,
        ...extra,
      };
      const index: HnswIndex = kernels.createHnsw(options as HnswOptions);
      const buildMs = timedInserts(set, log, name, (i, v) => index.insert(i, v));
      const queries = set.queries;
      return {
        buildMs,
        search: (i, ef) => index.search(queries[i], K, ef).ids,
        bytes: { perVector: index.byteLength / index.size, how: "byteLength / size" },
        restore() {
          const bytes = index.serialize();
          const restored: HnswIndex[] = [];
          const ms = medianMs(3, () => restored.push(kernels.restoreHnsw(bytes)));
          const sizes = restored.map((r) => r.size);
          restored.forEach((r) => r.dispose());
          if (sizes.some((s) => s !== index.size)) {
            throw new Error(`${name}: restored ${sizes}, not ${index.size}`);
          }
          return { ms, how: `restoreHnsw of the ${(bytes.length / 1e6).toFixed(1)} MB of serialize` };
        },
        exact: exact ? { [`${name} searchExact`]: (i) => index.searchExact(queries[i], K).ids } : undefined,
        dispose: () => index.dispose(),
      };
    },
  };
}

/** Lattice's exact top-k over the resident f32 matrix (`createVectorIndex(dim).topK`) on `kernels`. */
export function latticeExact(name: string, kernels: Kernels): Engine {
  return {
    name,
    kind: "exact",
    build(set, log) {
      const index = kernels.createVectorIndex(set.dim);
      const buildMs = timedInserts(set, log, name, (i, v) => {
        if (index.add(v) !== i) throw new Error(`${name}: row ${i} got another slot`);
      });
      const queries = set.queries, metric = set.metric;
      return {
        buildMs,
        search: (i) => index.topK(queries[i], K, metric).slots,
        // The WASM matrix's layout (core/kernels/wasm/vector.ts): an f32 row padded to 4 with 16 bytes of
        // norm and flags, and the int8 codes padded to 16 with 32 bytes of scale and bounds.
        bytes: {
          perVector: Math.ceil(set.dim / 4) * 16 + 16 + Math.ceil(set.dim / 16) * 16 + 32,
          how: "layout: the f32 row and its int8 codes",
        },
        restore: () => ({ na: "nothing to restore: the rows are read back from the store" }),
        dispose: () => index.dispose(),
      };
    },
  };
}
