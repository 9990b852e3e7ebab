/**
 * Kernel selection: one {@link Kernels} set chosen once at start-up.
 *
 * `"auto"` prefers WASM with SIMD, then scalar WASM, then plain JS; `"wasm"`
 * and `"js"` force one side. Where the runtime offers a faster synchronous
 * SHA-256 (node:crypto on Deno and Bun), it is plugged in for large inputs.
 *
 * @example
 * ```ts
 * import { selectKernels } from "./mod.ts";
 * const k = await selectKernels({ kernels: "auto" });
 * console.log(k.name, k.sha256(new TextEncoder().encode("abc")).length); // "wasm-simd" 32
 * ```
 *
 * @module
 */
import { createJsKernels } from "./js.ts";
import { loadWasmKernels } from "./wasm.ts";
import type { Kernels } from "./types.ts";
import { checkBatch, checkBytes } from "./_check.ts";

export type {
  HashBackend,
  HnswHits,
  HnswIndex,
  HnswOptions,
  IdTable,
  KernelName,
  Kernels,
  MergeBatch,
  MergeColumns,
  Metric,
  TopK,
  VectorIndex,
} from "./types.ts";
export { ID_BYTES } from "./types.ts";
export { createJsKernels } from "./js.ts";
export { loadWasmKernels } from "./wasm.ts";

/**
 * What the caller asks for: the best available, or one side forced.
 *
 * @example
 * ```ts
 * import { type KernelChoice, loadKernels } from "../../mod.ts";
 * const choice: KernelChoice = "js"; // force the plain TypeScript kernels
 * console.log((await loadKernels({ kernels: choice })).name); // js
 * ```
 */
export type KernelChoice = "auto" | "wasm" | "js";

/**
 * A synchronous SHA-256 provided by the runtime; `undefined` when it cannot
 * answer yet (still loading), and the kernels hash instead.
 */
export type NativeSha256 = (data: Uint8Array) => Uint8Array | undefined;

/** Options of {@link selectKernels}. */
export interface SelectKernelsOptions {
  /** `"auto"` (default), `"wasm"` or `"js"`. */
  kernels?: KernelChoice;
  /** The runtime's own SHA-256, used for inputs of at least {@link NATIVE_HASH_MIN_BYTES}. */
  nativeSha256?: NativeSha256;
  /**
   * The WebAssembly namespace to detect support with; defaults to
   * `globalThis.WebAssembly`. `null` means "none" (tests use this to prove
   * the fallbacks).
   */
  webAssembly?: Pick<typeof WebAssembly, "validate"> | null;
}

/**
 * Inputs at least this long go to the native hash when there is one: below
 * it the per-call cost of node:crypto exceeds the whole WASM/JS compression
 * (see bench `kernels`).
 */
export const NATIVE_HASH_MIN_BYTES = 512;

// (module (func (result v128) v128.const i32x4 0 0 0 0)): validates only where SIMD is supported.
const SIMD_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b, // type: () -> v128
  0x03,
  0x02,
  0x01,
  0x00, // func 0: type 0
  0x0a,
  0x16,
  0x01,
  0x14,
  0x00,
  0xfd,
  0x0c, // code: v128.const
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0x0b, // end
]);

/** What the runtime supports: `"simd"`, `"scalar"` WASM, or `"none"`. */
export function detectWasm(
  webAssembly: Pick<typeof WebAssembly, "validate"> | null | undefined = globalThis.WebAssembly,
): "simd" | "scalar" | "none" {
  if (!webAssembly || typeof webAssembly.validate !== "function") return "none";
  try {
    return webAssembly.validate(SIMD_PROBE) ? "simd" : "scalar";
  } catch {
    return "scalar";
  }
}

/** Parses a kernel choice (e.g. from `LATTICE_KERNELS`); throws `RangeError` on anything else. */
export function parseKernelChoice(value: string, source = "kernels"): KernelChoice {
  if (value === "auto" || value === "wasm" || value === "js") return value;
  throw new RangeError(`${source} must be "auto", "wasm" or "js", got ${JSON.stringify(value)}`);
}

/**
 * Loads the kernel set for `options.kernels`. `"auto"` falls back from SIMD to
 * scalar WASM to JS, also when instantiating WASM fails (e.g. a content
 * security policy forbids it); `"wasm"` throws when the runtime has no
 * WebAssembly.
 */
export async function selectKernels(options: SelectKernelsOptions = {}): Promise<Kernels> {
  const choice = parseKernelChoice(options.kernels ?? "auto");
  const wasm = detectWasm(options.webAssembly === undefined ? globalThis.WebAssembly : options.webAssembly);
  let kernels: Kernels;
  if (choice === "js" || (choice === "auto" && wasm === "none")) {
    kernels = createJsKernels();
  } else if (wasm === "none") {
    throw new Error('Kernels "wasm" were requested but this runtime has no WebAssembly');
  } else if (choice === "wasm") {
    kernels = await loadWasmKernels({ simd: wasm === "simd" });
  } else {
    try {
      kernels = await loadWasmKernels({ simd: wasm === "simd" });
    } catch {
      kernels = createJsKernels();
    }
  }
  return options.nativeSha256 ? withNativeHash(kernels, options.nativeSha256) : kernels;
}

/**
 * Returns `kernels` with SHA-256 of inputs of at least
 * {@link NATIVE_HASH_MIN_BYTES} routed to `native`. Digests are identical
 * either way; only speed differs.
 */
export function withNativeHash(kernels: Kernels, native: NativeSha256): Kernels {
  const k = kernels;
  return {
    name: k.name,
    hashBackend: "native",
    xorSort: (ids, target) => k.xorSort(ids, target),
    bucketIndex: (ids, self) => k.bucketIndex(ids, self),
    createIdTable: () => k.createIdTable(),
    sha256(data: Uint8Array): Uint8Array {
      checkBytes(data, "data");
      return (data.length >= NATIVE_HASH_MIN_BYTES ? native(data) : undefined) ?? k.sha256(data);
    },
    sha256Batch(data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array {
      const n = checkBatch(data, ends, out);
      if (n === 0 || data.length < n * NATIVE_HASH_MIN_BYTES) return k.sha256Batch(data, ends, out);
      const dst = out ?? new Uint8Array(32 * n);
      for (let i = 0, start = 0; i < n; start = ends[i++]) {
        const input = data.subarray(start, ends[i]);
        dst.set(
          (input.length >= NATIVE_HASH_MIN_BYTES ? native(input) : undefined) ?? k.sha256(input),
          32 * i,
        );
      }
      return dst;
    },
    createMergeBatch: (capacity) => k.createMergeBatch(capacity),
    merge: (batch, length) => k.merge(batch, length),
    dot: (a, b) => k.dot(a, b),
    cosine: (a, b) => k.cosine(a, b),
    l2: (a, b) => k.l2(a, b),
    createVectorIndex: (dim) => k.createVectorIndex(dim),
    createHnsw: (options) => k.createHnsw(options),
    restoreHnsw: (bytes) => k.restoreHnsw(bytes),
  };
}
