/**
 * The HAM merge of the `wasm` kernels: a batch whose twelve u32 columns and
 * output bytes live in the batch's own instance (asm/merge.ts decides them).
 *
 * @module
 */
import { checkMergeLength, disposedError } from "../_check.ts";
import type { MergeBatch, MergeColumns } from "../types.ts";
import { mergeSides } from "../_merge_columns.ts";
import { align, type Exports, Heap } from "./instance.ts";

/**
 * Twelve u32 columns and the output bytes, all inside the batch's own
 * instance memory, which is sized once and never grows.
 */
export class WasmMergeBatch implements MergeBatch {
  readonly capacity: number;
  readonly a: MergeColumns;
  readonly b: MergeColumns;
  readonly out: Uint8Array;
  #exports: Exports | null;
  #base: number;
  #stride: number;
  #outPtr: number;

  constructor(module: WebAssembly.Module, capacity: number) {
    this.capacity = capacity;
    const heap = new Heap(module);
    // Columns start on cache-line boundaries so that a 16-pair SIMD step reads one line per column.
    const stride = align(capacity * 4, 64);
    this.#base = heap.base;
    this.#stride = stride;
    this.#outPtr = heap.base + 12 * stride;
    heap.ensure(this.#outPtr + capacity);
    this.#exports = heap.exports;
    const buffer = heap.exports.memory.buffer;
    const column = (i: number) => new Uint32Array(buffer, this.#base + i * stride, capacity);
    ({ a: this.a, b: this.b } = mergeSides(column));
    this.out = new Uint8Array(buffer, this.#outPtr, capacity);
  }

  dispose(): void {
    this.#exports = null;
  }

  /** Decides pairs [0, length) of `batch` (made by any wasm kernels) into `batch.out`. */
  static merge(batch: unknown, length: number): Uint8Array {
    if (!(typeof batch === "object" && batch !== null && #exports in batch)) {
      throw new TypeError("batch was not created by createMergeBatch of these kernels");
    }
    const exports = batch.#exports;
    if (exports === null) throw disposedError("merge batch");
    checkMergeLength(length, batch.capacity);
    exports.merge(batch.#base, batch.#stride, batch.#outPtr, length);
    return batch.out.subarray(0, length);
  }
}
