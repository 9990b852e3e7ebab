/**
 * The `js` kernels: the {@link Kernels} contract in plain TypeScript.
 *
 * This is the fallback for runtimes without WebAssembly and the baseline the
 * WASM kernels are measured against, so it is written to be fast in its own
 * right: resident data in growable typed arrays, ids as big-endian 32-bit
 * words, bounded heaps for k-selection, no allocation in inner loops. Float
 * arithmetic follows the rules in `types.ts` exactly (`Math.fround` on every
 * product and sum, four lane accumulators), so results are bit-identical to
 * the WASM kernels.
 *
 * @module
 */
import { checkBatch, checkBytes, checkDim } from "./_check.ts";
import type { HnswIndex, HnswOptions, IdTable, Kernels, VectorIndex } from "./types.ts";
import { HnswCore, restoreHnsw } from "./_hnsw_index.ts";
import { hnswParams } from "./_hnsw_layout.ts";
import { JsHnswEngine } from "./js/hnsw.ts";
import { JsIdTable } from "./js/id_table.ts";
import { createMergeBatch, merge } from "./js/merge.ts";
import { sha256 as sha256Js, sha256Batch as sha256BatchJs } from "./js/sha256.ts";
import { cosine, dot, JsVectorIndex, l2 } from "./js/vector.ts";
import { bucketIndex, xorSort } from "./js/xor.ts";

/**
 * Creates the plain-TypeScript kernel set (`name` and `hashBackend` are
 * `"js"`). It needs no WebAssembly and no initialisation, and returns
 * bit-identical results to the WASM kernels.
 *
 * @example
 * ```ts
 * import { createJsKernels } from "./js.ts";
 *
 * const kernels = createJsKernels();
 *
 * // Kademlia: the two peers nearest a key by XOR distance.
 * const peers = kernels.createIdTable();
 * for (let i = 0; i < 4; i++) peers.add(new Uint8Array(32).fill(i));
 * const nearest = peers.closest(new Uint8Array(32).fill(3), 2);
 * if (nearest.join() !== "3,2") throw new Error("unexpected order");
 *
 * // Hashing and vector arithmetic.
 * const digest = kernels.sha256(new TextEncoder().encode("abc"));
 * if (digest[0] !== 0xba) throw new Error("unexpected digest");
 * if (kernels.dot(new Float32Array([1, 2]), new Float32Array([3, 4])) !== 11) throw new Error("unexpected dot");
 * ```
 */
export function createJsKernels(): Kernels {
  return Object.freeze({
    name: "js",
    hashBackend: "js",
    xorSort,
    bucketIndex,
    createIdTable: (): IdTable => new JsIdTable(),
    sha256(data: Uint8Array): Uint8Array {
      checkBytes(data, "data");
      return sha256Js(data);
    },
    sha256Batch(data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array {
      const n = checkBatch(data, ends, out);
      return sha256BatchJs(data, ends, out ?? new Uint8Array(n * 32));
    },
    createMergeBatch,
    merge,
    dot,
    cosine,
    l2,
    createVectorIndex(dim: number): VectorIndex {
      checkDim(dim);
      return new JsVectorIndex(dim);
    },
    createHnsw: (options: HnswOptions): HnswIndex => new HnswCore(new JsHnswEngine(), hnswParams(options)),
    restoreHnsw: (bytes: Uint8Array): HnswIndex => restoreHnsw(bytes, () => new JsHnswEngine()),
  });
}
