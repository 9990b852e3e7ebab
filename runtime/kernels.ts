/**
 * Loads the kernel set for this runtime: honours `LATTICE_KERNELS` and plugs
 * in the native SHA-256 where there is one. It also tunes the one engine
 * choice of the core's hot paths, how small encoded values get their memory
 * (`setSmallValueMemory`): the core itself never asks which runtime it is on.
 *
 * @module
 */
import { type KernelChoice, parseKernelChoice, selectKernels } from "../core/kernels/mod.ts";
import type { Kernels } from "../core/kernels/types.ts";
import { setSmallValueMemory } from "../core/value_encoding.ts";
import { jsEngine } from "./detect.ts";
import { getEnv } from "./env.ts";
import { loadNativeSha256 } from "./native_hash.ts";

/**
 * Options of {@link loadKernels}.
 *
 * @example
 * ```ts
 * import { loadKernels, type LoadKernelsOptions } from "../mod.ts";
 * const options: LoadKernelsOptions = { kernels: "js", nativeHash: false };
 * const kernels = await loadKernels(options);
 * console.log(kernels.name, kernels.hashBackend); // js js
 * ```
 */
export interface LoadKernelsOptions {
  /** `"auto"`, `"wasm"` or `"js"`; defaults to `LATTICE_KERNELS`, else `"auto"`. */
  kernels?: KernelChoice;
  /** Use the runtime's native SHA-256 for large inputs when it has one (default `true`). */
  nativeHash?: boolean;
}

/**
 * The kernel set for this runtime, chosen once: WASM-SIMD, then scalar WASM,
 * then JS, unless forced by `options.kernels` or `LATTICE_KERNELS`.
 *
 * @example
 * ```ts
 * import { loadKernels } from "../mod.ts";
 * const kernels = await loadKernels();
 * console.log(kernels.name); // "wasm-simd" on Deno, Bun and Chromium
 * ```
 */
export async function loadKernels(options: LoadKernelsOptions = {}): Promise<Kernels> {
  setSmallValueMemory(jsEngine() === "javascriptcore" ? "own" : "slab");
  const fromEnv = getEnv("LATTICE_KERNELS");
  const kernels = options.kernels ??
    (fromEnv ? parseKernelChoice(fromEnv, "LATTICE_KERNELS") : "auto");
  const nativeSha256 = options.nativeHash === false ? undefined : loadNativeSha256();
  return await selectKernels({ kernels, nativeSha256 });
}
