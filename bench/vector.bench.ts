/**
 * The `vector` suite: approximate nearest-neighbour search. Lattice's HNSW
 * kernel (`createHnsw`, WASM-SIMD and JS twins) against `hnswlib-wasm` 0.8.2
 * and exact SIMD search (the `createVectorIndex` top-k kernel), all with
 * M = 16 and efConstruction = 200, one thread, one query at a time.
 *
 * Data (seeded, tests/_vectors.ts): 10k × 384 clustered (20 Gaussian centres,
 * noise 0.35, cosine) and 10k × 128 uniform (l2), plus 200 held-out queries
 * each. Per data set:
 * - build: the time to insert the 10k vectors, measured once per impl;
 * - query at recall@10 ≥ 0.95: for each impl the smallest ef of a ladder whose
 *   recall@10 against exact search (over the 200 queries) is ≥ 0.95, then one
 *   query per iteration at that ef (the notes give each ef and recall);
 * - bytes per vector: Lattice, the index's records and links at their
 *   allocated capacity (`byteLength / size`); hnswlib-wasm, a lower bound from
 *   its layout (see `hnswlibBytesPerVector`).
 *
 * Targets (issue 14): QPS ≥ 1.5× hnswlib-wasm and build time ≤ 0.5×
 * hnswlib-wasm at recall@10 ≥ 0.95.
 *
 * Run: `deno task bench vector [--json]` or `bun scripts/bench.ts vector`.
 *
 * @module
 */
import { createJsKernels, detectWasm, type HnswIndex, loadWasmKernels } from "../core/kernels/mod.ts";
import type { Metric } from "../core/kernels/types.ts";
import type { BenchCase, BenchSuite, SetupContext } from "../scripts/bench.ts";
import { clustered, uniform, type VectorSet } from "../tests/_vectors.ts";

const SEED = 0x5eed_0014;
const COUNT = 10_000;
const QUERIES = 200;
const K = 10;
const M = 16;
const EF_CONSTRUCTION = 200;
const TARGET_RECALL = 0.95;
const EF_LADDER = [10, 16, 24, 32, 40, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512];

/** One searchable implementation: search at an ef, returning ids. */
interface Searcher {
  search(q: Float32Array, ef: number): ArrayLike<number>;
}

interface HnswlibIndex {
  initIndex(max: number, m: number, efConstruction: number, seed: number): void;
  addPoint(v: Float32Array, label: number, replaceDeleted: boolean): void;
  setEfSearch(ef: number): void;
  searchKnn(q: Float32Array, k: number, filter: undefined): { neighbors: number[] };
}
interface Hnswlib {
  HierarchicalNSW: new (space: string, dim: number, file: string) => HnswlibIndex;
  HEAPU8: Uint8Array;
}

/** hnswlib-wasm outside a browser: it wants `window`, and its package entry pulls in IndexedDB glue. */
async function loadHnswlibWasm(): Promise<Hnswlib> {
  (globalThis as { window?: unknown }).window ??= globalThis;
  const mod = await import("hnswlib-wasm/dist/hnswlib.js") as unknown as { loadHnswlib(): Promise<Hnswlib> };
  return await mod.loadHnswlib();
}

/**
 * hnswlib's bytes per vector from its layout (hnswalg.h, wasm32): the layer-0 record (count, 2M links, the
 * vector, a 4-byte label), the level and the link-list pointer, and the expected upper lists (1 + M words at
 * 1 / (M - 1) levels per element). A lower bound: its label map, locks and allocator overhead come on top.
 * (Its WASM memory cannot be measured: the module starts with 16 MiB and shares it between indexes.)
 */
function hnswlibBytesPerVector(dim: number): number {
  return Math.round(4 * (1 + 2 * M) + 4 * dim + 4 + 8 + (4 * (1 + M)) / (M - 1));
}

function recallAt(searcher: Searcher, queries: Float32Array[], truth: Set<number>[], ef: number): number {
  let hits = 0;
  queries.forEach((q, i) => {
    for (const id of Array.from(searcher.search(q, ef))) if (truth[i].has(id)) hits++;
  });
  return hits / (K * queries.length);
}

/** The smallest ef of the ladder reaching the target recall (the largest if none does). */
function efFor(
  searcher: Searcher,
  queries: Float32Array[],
  truth: Set<number>[],
): { ef: number; recall: number } {
  let recall = 0;
  for (const ef of EF_LADDER) {
    recall = recallAt(searcher, queries, truth, ef);
    if (recall >= TARGET_RECALL) return { ef, recall };
  }
  return { ef: EF_LADDER[EF_LADDER.length - 1], recall };
}

const cycle = <T>(items: readonly T[]): () => T => {
  let i = 0;
  return () => items[i++ % items.length];
};

async function dataSet(
  label: string,
  set: VectorSet,
  metric: Metric,
  context: SetupContext,
): Promise<{ cases: BenchCase[]; notes: string[]; dispose: () => void }> {
  const log = (s: string) => context.json ? console.error(s) : console.log(s);
  const rows = set.rows.slice(0, COUNT), queries = set.rows.slice(COUNT);
  const notes: string[] = [];
  const builds: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  const searchers = new Map<string, Searcher>();
  const disposers: (() => void)[] = [];

  const kernels = [["lattice-wasm", await loadWasmKernels({ simd: detectWasm() === "simd" })], [
    "lattice-js",
    createJsKernels(),
  ]] as const;
  for (const [name, k] of kernels) {
    log(`${label}: building ${name}`);
    const index: HnswIndex = k.createHnsw({
      dim: set.dim,
      metric,
      m: M,
      efConstruction: EF_CONSTRUCTION,
      seed: 1,
    });
    const t = performance.now();
    rows.forEach((v, i) => index.insert(i, v));
    builds[name] = (performance.now() - t) * 1e6;
    bytes[name] = Math.round(index.byteLength / index.size);
    searchers.set(name, { search: (q, ef) => index.search(q, K, ef).ids });
    disposers.push(() => index.dispose());
    if (name === "lattice-wasm") {
      // Ground truth: the exact scan of the same kernel set.
      const exact = k.createVectorIndex(set.dim);
      rows.forEach((v) => exact.add(v));
      disposers.push(() => exact.dispose());
      searchers.set("exact-simd", { search: (q) => exact.topK(q, K, metric).slots });
    }
  }
  const exact = searchers.get("exact-simd")!;
  const truth = queries.map((q) => new Set(Array.from(exact.search(q, 0))));

  log(`${label}: building hnswlib-wasm`);
  const lib = await loadHnswlibWasm();
  const peer = new lib.HierarchicalNSW(
    metric === "l2" ? "l2" : metric === "dot" ? "ip" : "cosine",
    set.dim,
    "",
  );
  const t = performance.now();
  peer.initIndex(COUNT, M, EF_CONSTRUCTION, 1);
  rows.forEach((v, i) => peer.addPoint(v, i, false));
  builds["hnswlib-wasm"] = (performance.now() - t) * 1e6;
  bytes["hnswlib-wasm"] = hnswlibBytesPerVector(set.dim);
  searchers.set("hnswlib-wasm", {
    search: (q, ef) => {
      peer.setEfSearch(ef);
      return peer.searchKnn(q, K, undefined).neighbors;
    },
  });

  const impls: Record<string, () => unknown> = {};
  for (const [name, searcher] of searchers) {
    if (name === "exact-simd") {
      notes.push(`${label}: exact-simd recall 1 (it is the ground truth)`);
      impls[name] = ((q) => () => searcher.search(q(), 0))(cycle(queries));
      continue;
    }
    const { ef, recall } = efFor(searcher, queries, truth);
    notes.push(`${label}: ${name} reaches recall@10 ${recall.toFixed(3)} at ef ${ef}`);
    impls[name] = ((q) => () => searcher.search(q(), ef))(cycle(queries));
  }
  const ordered = (o: Record<string, number | (() => unknown)>) =>
    Object.fromEntries(
      ["lattice-wasm", "lattice-js", "hnswlib-wasm", "exact-simd"].filter((n) => n in o).map((
        n,
      ) => [n, o[n]]),
    );
  return {
    cases: [
      {
        name: `build ${label}`,
        impls: {},
        measured: ordered(builds) as Record<string, number>,
        subject: "lattice-wasm",
        targets: [{ over: "hnswlib-wasm", atLeast: 2 }],
      },
      {
        name: `query ${label} at recall@10 ≥ ${TARGET_RECALL}`,
        impls: ordered(impls) as Record<string, () => unknown>,
        subject: "lattice-wasm",
        targets: [{ over: "hnswlib-wasm", atLeast: 1.5 }],
      },
      {
        name: `bytes per vector ${label}`,
        impls: {},
        unit: "count",
        measured: ordered(bytes) as Record<string, number>,
        subject: "lattice-wasm",
      },
    ],
    notes,
    dispose: () => disposers.forEach((d) => d()),
  };
}

/** The vector suite. */
export const suite: BenchSuite = {
  description:
    "HNSW vector search: Lattice WASM/JS vs hnswlib-wasm vs exact SIMD (build, QPS at recall 0.95, bytes)",
  async setup(context: SetupContext) {
    const sets = [
      await dataSet("10k x 384 clustered cosine", clustered(SEED, COUNT + QUERIES, 384), "cosine", context),
      await dataSet("10k x 128 uniform l2", uniform(SEED, COUNT + QUERIES, 128), "l2", context),
    ];
    return {
      cases: sets.flatMap((s) => s.cases),
      notes: [
        ...sets.flatMap((s) => s.notes),
        `inputs from seed 0x${SEED.toString(16)}; M ${M}, efConstruction ${EF_CONSTRUCTION}, k ${K}, ` +
        `${QUERIES} queries cycled; build times are one run each`,
      ],
      dispose: () => sets.forEach((s) => s.dispose()),
    };
  },
};
