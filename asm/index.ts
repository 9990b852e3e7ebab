// Entry point of the Lattice kernels module (see core/kernels/wasm.ts).
// Every export takes pointers and lengths into linear memory; the caller lays
// out memory (resident data from `heapBase()`, scratch behind it). No managed
// objects, no allocator, no imports.

export { bucketIndex, xorSort } from "./xor";
export { idClosest, idLoad, idPlace, idSetLive, idStore } from "./id_table";
export { idClosestIx, idIndex, idPlaceIx } from "./id_index";
export { sha256, sha256Batch, sha256Blocks, sha256Final, sha256Init } from "./sha256";
export { merge } from "./merge";
export { cosine, dot, l2, vecCommit, vecKill } from "./vector";
export { vecTopK, vecTopKRows } from "./vector_topk";
export { hnswCommit, hnswInsert, hnswLayout, hnswQuant, hnswSearch } from "./hnsw";
export { hnswExactInt8 } from "./hnsw_int8";

/** First byte after the static data: where callers may start their own layout. */
export function heapBase(): usize {
  return __heap_base;
}
