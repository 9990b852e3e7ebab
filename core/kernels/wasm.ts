/**
 * The `wasm` kernels: the {@link Kernels} contract on the WebAssembly module
 * built from `asm/` (embedded as base64 in `_wasm_bytes.ts`).
 *
 * One compiled module per flavour (SIMD or scalar), compiled asynchronously
 * once. Every call is batch-shaped: arguments are copied into linear memory,
 * one export runs, results are copied out.
 *
 * Instances and memory:
 * - a shared instance serves the stateless calls (`xorSort`, `bucketIndex`,
 *   `sha256`, `sha256Batch`, `dot`, `cosine`, `l2`); its memory is scratch only;
 * - every resident structure ({@link IdTable}, {@link VectorIndex},
 *   {@link MergeBatch}) gets its own instance: resident data from the
 *   module's heap base, transient scratch behind it. Growing capacity appends
 *   memory (`memory.grow`, amortised doubling) and never moves resident data;
 * - a merge batch sizes its memory once and never grows it, so the column
 *   views it hands out stay valid until `dispose`;
 * - an id table also keeps a search index (ids sorted, with a prefix table)
 *   behind its resident ids once queries repeat without changes in between,
 *   so `closest` and `place` read a few ids per key instead of all of them.
 *
 * @module
 */
import { checkCount, checkDim } from "./_check.ts";
import type { HnswIndex, HnswOptions, IdTable, Kernels, MergeBatch, VectorIndex } from "./types.ts";
import { HnswCore, restoreHnsw } from "./_hnsw_index.ts";
import { hnswParams } from "./_hnsw_layout.ts";
import { WasmHnswEngine } from "./wasm/hnsw.ts";
import { WASM_SCALAR_BASE64, WASM_SIMD_BASE64 } from "./_wasm_bytes.ts";
import { WasmIdTable } from "./wasm/id_table.ts";
import { Heap, HeapPool } from "./wasm/instance.ts";
import { WasmMergeBatch } from "./wasm/merge.ts";
import { sha256, sha256Batch } from "./wasm/sha256.ts";
import { cosine, dot, l2, WasmVectorIndex } from "./wasm/vector.ts";
import { bucketIndex, xorSort } from "./wasm/xor.ts";

/** Options of {@link loadWasmKernels}. */
export interface WasmKernelOptions {
  /** Load the SIMD build (needs WebAssembly SIMD; see `detectWasm` in `mod.ts`). */
  simd: boolean;
}

/** Decodes base64 (whitespace allowed) to bytes with web-standard `atob`. */
function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/**
 * The kernel set on `module`: stateless calls share one instance (its memory
 * is scratch only), resident structures get their own (see `wasm/`).
 */
function createKernels(module: WebAssembly.Module, simd: boolean): Kernels {
  const shared = new Heap(module);
  const pool = new HeapPool(module);
  return Object.freeze(
    {
      name: simd ? "wasm-simd" : "wasm",
      hashBackend: "wasm",
      xorSort: (ids: Uint8Array, target: Uint8Array): Uint32Array => xorSort(shared, ids, target),
      bucketIndex: (ids: Uint8Array, self: Uint8Array): Uint16Array => bucketIndex(shared, ids, self),
      createIdTable: (): IdTable => new WasmIdTable(pool),
      sha256: (data: Uint8Array): Uint8Array => sha256(shared, data),
      sha256Batch: (data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array =>
        sha256Batch(shared, data, ends, out),
      createMergeBatch(capacity: number): MergeBatch {
        checkCount(capacity, "capacity");
        return new WasmMergeBatch(module, capacity);
      },
      merge: (batch: MergeBatch, length: number): Uint8Array => WasmMergeBatch.merge(batch, length),
      dot: (a: Float32Array, b: Float32Array): number => dot(shared, a, b),
      cosine: (a: Float32Array, b: Float32Array): number => cosine(shared, a, b),
      l2: (a: Float32Array, b: Float32Array): number => l2(shared, a, b),
      createVectorIndex(dim: number): VectorIndex {
        checkDim(dim);
        return new WasmVectorIndex(pool, dim);
      },
      createHnsw(options: HnswOptions): HnswIndex {
        const params = hnswParams(options);
        return new HnswCore(new WasmHnswEngine(pool), params);
      },
      restoreHnsw: (bytes: Uint8Array): HnswIndex => restoreHnsw(bytes, () => new WasmHnswEngine(pool)),
    } satisfies Kernels,
  );
}

const modules = new Map<boolean, Promise<WebAssembly.Module>>();

/** Compiles one flavour once (asynchronously: no synchronous compile on a browser main thread). */
function compileModule(simd: boolean): Promise<WebAssembly.Module> {
  let module = modules.get(simd);
  if (module === undefined) {
    module = WebAssembly.compile(decodeBase64(simd ? WASM_SIMD_BASE64 : WASM_SCALAR_BASE64)).catch(
      (cause: unknown) => {
        modules.delete(simd);
        const why = cause instanceof Error ? cause.message : String(cause);
        throw new Error(`Cannot compile the ${simd ? "wasm-simd" : "wasm"} kernels: ${why}`, { cause });
      },
    );
    modules.set(simd, module);
  }
  return module;
}

/**
 * Loads the WASM kernel set: `name` is `"wasm-simd"` or `"wasm"`,
 * `hashBackend` is `"wasm"`. The module is compiled once per flavour;
 * each call returns a kernel set with its own scratch memory. Rejects when
 * the runtime cannot compile the requested build (e.g. SIMD unsupported).
 *
 * @example
 * ```ts
 * import { loadWasmKernels } from "./wasm.ts";
 *
 * const kernels = await loadWasmKernels({ simd: true });
 * const peers = kernels.createIdTable();
 * for (let i = 0; i < 4; i++) peers.add(new Uint8Array(32).fill(i));
 * const nearest = peers.closest(new Uint8Array(32).fill(3), 2);
 * if (nearest.join() !== "3,2") throw new Error("unexpected order");
 * peers.dispose();
 *
 * const digest = kernels.sha256(new TextEncoder().encode("abc"));
 * if (digest[0] !== 0xba) throw new Error("unexpected digest");
 * ```
 */
export async function loadWasmKernels(options: WasmKernelOptions): Promise<Kernels> {
  if (typeof options !== "object" || options === null || typeof options.simd !== "boolean") {
    throw new TypeError("loadWasmKernels needs { simd: boolean }");
  }
  return createKernels(await compileModule(options.simd), options.simd);
}
