/**
 * The peer engines of the `vector` suite (bench/vector.bench.ts), as
 * {@link Engine}s: `hnswlib-wasm` 0.8.2 (the package the design names) and
 * `hnswlib-node` (native hnswlib, an optional dependency: where it did not
 * install, the suite says so and goes on without it), both with the suite's
 * M, efConstruction and seed, plus hnswlib-node's `BruteforceSearch` as the
 * native exact peer. Not a suite.
 *
 * Bytes per vector are lower bounds from hnswlib's layout: hnswlib-wasm's
 * memory cannot be measured (one WASM memory, grown but never shrunk,
 * shared by every index of the module), and this process's RSS growth over
 * hnswlib-node's build was tried and is not meaningful (the collector gives
 * back more than the index takes: it came out negative at 2k vectors).
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Metric } from "../core/kernels/types.ts";
import { type Engine, missing, timedInserts } from "./_vector_engines.ts";
import { EF_CONSTRUCTION, K, M, medianMs } from "./_vector_measure.ts";

type Space = "l2" | "ip" | "cosine";
const space = (metric: Metric): Space => metric === "l2" ? "l2" : metric === "dot" ? "ip" : "cosine";

// ---------------------------------------------------------------- hnswlib-wasm

interface WasmIndex {
  initIndex(max: number, m: number, efConstruction: number, seed: number): void;
  addPoint(v: Float32Array, label: number, replaceDeleted: boolean): void;
  setEfSearch(ef: number): void;
  searchKnn(q: Float32Array, k: number, filter: undefined): { neighbors: number[] };
  writeIndex(file: string): void;
  readIndex(file: string, max: number): void;
  getCurrentCount(): number;
  delete(): void;
}
interface WasmLib {
  HierarchicalNSW: new (space: Space, dim: number, autoSave: string) => WasmIndex;
}

/**
 * hnswlib-wasm outside a browser: it wants `window`, and its package entry
 * pulls in IndexedDB glue. It logs an IndexedDB assertion (its file system's
 * sync to IndexedDB fails) and works in memory.
 */
async function loadHnswlibWasm(): Promise<WasmLib> {
  (globalThis as { window?: unknown }).window ??= globalThis;
  const mod = await import("hnswlib-wasm/dist/hnswlib.js") as unknown as { loadHnswlib(): Promise<WasmLib> };
  return await mod.loadHnswlib();
}

/**
 * hnswlib's bytes per vector from its layout (hnswalg.h, wasm32): the layer-0
 * record (count, 2M links, the vector, a 4-byte label), the level and the
 * link-list pointer, and the expected upper lists (1 + M words at 1 / (M - 1)
 * levels per element). A lower bound: its label map, locks and allocator
 * overhead come on top.
 */
function hnswlibWasmBytesPerVector(dim: number): number {
  return 4 * (1 + 2 * M) + 4 * dim + 4 + 8 + (4 * (1 + M)) / (M - 1);
}

let fileNumber = 0;

/** hnswlib-wasm's HNSW. Restore: `writeIndex` to its in-memory file system (not timed), then `readIndex`. */
export async function hnswlibWasm(): Promise<Engine> {
  let lib: WasmLib;
  try {
    lib = await loadHnswlibWasm();
  } catch (e) {
    return missing("hnswlib-wasm", "hnsw", `it did not load: ${(e as Error).message}`);
  }
  return {
    name: "hnswlib-wasm",
    kind: "hnsw",
    build(set, log) {
      const index = new lib.HierarchicalNSW(space(set.metric), set.dim, "");
      const n = set.rows.length;
      const t = performance.now();
      index.initIndex(n, M, EF_CONSTRUCTION, 1);
      const initMs = performance.now() - t;
      const buildMs = initMs + timedInserts(set, log, "hnswlib-wasm", (i, v) => index.addPoint(v, i, false));
      const queries = set.queries;
      return {
        buildMs,
        search: (i, ef) => {
          index.setEfSearch(ef);
          return index.searchKnn(queries[i], K, undefined).neighbors;
        },
        bytes: { perVector: hnswlibWasmBytesPerVector(set.dim), how: "layout, a lower bound" },
        restore() {
          const file = `vector-bench-${fileNumber++}.bin`;
          index.writeIndex(file);
          const restored: WasmIndex[] = [];
          const ms = medianMs(3, () => {
            const r = new lib.HierarchicalNSW(space(set.metric), set.dim, "");
            r.readIndex(file, n);
            restored.push(r);
          });
          const sizes = restored.map((r) => r.getCurrentCount());
          restored.forEach((r) => r.delete());
          if (sizes.some((s) => s !== n)) throw new Error(`hnswlib-wasm: restored ${sizes}, not ${n}`);
          return { ms, how: "readIndex from its in-memory file system (writeIndex not timed)" };
        },
        dispose: () => index.delete(),
      };
    },
  };
}

// ---------------------------------------------------------------- hnswlib-node

interface NodeSearch {
  initIndex(max: number, m?: number, efConstruction?: number, seed?: number): void;
  addPoint(v: number[], label: number): void;
  searchKnn(q: number[], k: number): { neighbors: number[] };
  writeIndexSync(file: string): void;
  readIndexSync(file: string): void;
  getCurrentCount(): number;
  setEf?(ef: number): void;
}
interface NodeLib {
  HierarchicalNSW: new (space: Space, dim: number) => NodeSearch;
  BruteforceSearch: new (space: Space, dim: number) => NodeSearch;
}

/** hnswlib-node, or why it is not here (an optional dependency whose native build may have failed). */
async function loadHnswlibNode(): Promise<NodeLib | string> {
  try {
    const mod = await import("hnswlib-node") as unknown as { default: NodeLib };
    const lib = mod.default;
    if (typeof lib?.HierarchicalNSW !== "function") return "it loaded without HierarchicalNSW";
    return lib;
  } catch (e) {
    return `it is not installed or its native build failed (${(e as Error).message.split("\n")[0]})`;
  }
}

/**
 * Native hnswlib's bytes per vector from its layout (hnswalg.h, x86-64): as
 * {@link hnswlibWasmBytesPerVector} with an 8-byte label and link-list
 * pointer, plus the per-element `std::mutex` of its link-list locks (40
 * bytes). A lower bound: its label map and allocator overhead come on top.
 */
function hnswlibNodeBytesPerVector(dim: number): number {
  return 4 * (1 + 2 * M) + 4 * dim + 8 + 4 + 8 + 40 + (4 * (1 + M)) / (M - 1);
}

/** Builds `index` over the rows: plain arrays, as hnswlib-node takes no typed array (the copy is timed too). */
function nodeBuild(
  index: NodeSearch,
  set: Parameters<Engine["build"]>[0],
  log: Parameters<Engine["build"]>[1],
  name: string,
  init: () => void,
): number {
  const t = performance.now();
  init();
  const initMs = performance.now() - t;
  return initMs + timedInserts(set, log, name, (i, v) => index.addPoint(Array.from(v), i));
}

/** hnswlib-node's HNSW and its brute-force search (missing engines where it is not installed). */
export async function hnswlibNode(): Promise<Engine[]> {
  const lib = await loadHnswlibNode();
  if (typeof lib === "string") {
    return [missing("hnswlib-node", "hnsw", lib), missing("hnswlib-node brute force", "exact", lib)];
  }
  const asArrays = (qs: readonly Float32Array[]) => qs.map((q) => Array.from(q));
  const hnsw: Engine = {
    name: "hnswlib-node",
    kind: "hnsw",
    build(set, log) {
      const index = new lib.HierarchicalNSW(space(set.metric), set.dim);
      const n = set.rows.length;
      const buildMs = nodeBuild(
        index,
        set,
        log,
        "hnswlib-node",
        () => index.initIndex(n, M, EF_CONSTRUCTION, 1),
      );
      const queries = asArrays(set.queries);
      return {
        buildMs,
        bytes: { perVector: hnswlibNodeBytesPerVector(set.dim), how: "layout, a lower bound" },
        search: (i, ef) => {
          index.setEf!(ef);
          return index.searchKnn(queries[i], K).neighbors;
        },
        restore() {
          const dir = mkdtempSync(join(tmpdir(), "lattice-bench-vector-"));
          try {
            const file = join(dir, "index.bin");
            index.writeIndexSync(file);
            const ms = medianMs(3, () => {
              const r = new lib.HierarchicalNSW(space(set.metric), set.dim);
              r.readIndexSync(file);
              if (r.getCurrentCount() !== n) throw new Error(`hnswlib-node: restored ${r.getCurrentCount()}`);
            });
            return { ms, how: "readIndexSync of a temp file in the page cache (writeIndexSync not timed)" };
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
        dispose() {},
      };
    },
  };
  const brute: Engine = {
    name: "hnswlib-node brute force",
    kind: "exact",
    build(set, log) {
      const index = new lib.BruteforceSearch(space(set.metric), set.dim);
      const n = set.rows.length;
      const buildMs = nodeBuild(index, set, log, "hnswlib-node brute force", () => index.initIndex(n));
      const queries = asArrays(set.queries);
      return {
        buildMs,
        // bruteforce.h: the vector and an 8-byte label per element, then its label map.
        bytes: { perVector: 4 * set.dim + 8, how: "layout, a lower bound" },
        search: (i) => index.searchKnn(queries[i], K).neighbors,
        restore: () => ({ na: "exact peer: not measured" }),
        dispose() {},
      };
    },
  };
  return [hnsw, brute];
}
