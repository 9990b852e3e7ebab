/**
 * The HNSW engine of the `wasm` kernels: the graph algorithms of
 * asm/hnsw.ts on an instance of its own (from the pool), whose memory holds
 * the layout of `_hnsw_layout.ts`. The shared wrapper (`_hnsw_index.ts`)
 * writes records; this file only forwards the calls (to the int8 ones of
 * asm/hnsw_int8.ts for a quantized index).
 *
 * @module
 */
import {
  type HnswEngine,
  type HnswLayout,
  type HnswParams,
  METRIC_CODE,
  type RecordShape,
} from "../_hnsw_layout.ts";
import type { Heap, HeapPool } from "./instance.ts";

/** The engine: see the module comment. */
export class WasmHnswEngine implements HnswEngine {
  readonly memory: Heap;
  readonly #pool: HeapPool;
  #lay!: HnswLayout;
  #shape!: RecordShape;
  #params!: HnswParams;

  constructor(pool: HeapPool) {
    this.#pool = pool;
    this.memory = pool.take();
  }

  setLayout(layout: HnswLayout, shape: RecordShape, params: HnswParams): void {
    this.#lay = layout;
    this.#shape = shape;
    this.#params = params;
    this.memory.ensure(layout.end);
    this.memory.exports.hnswLayout(
      layout.records,
      shape.stride,
      shape.dimPad,
      METRIC_CODE[params.metric],
      params.m,
      params.efConstruction,
      layout.upper,
      layout.query,
      layout.visited,
      layout.capacity,
      layout.heapC,
      layout.heapW,
      layout.sel,
      layout.pick,
      layout.outNodes,
      layout.outScores,
    );
    if (shape.quant) this.memory.exports.hnswQuant(shape.meta);
  }

  commit(node: number): void {
    this.memory.exports.hnswCommit(node);
  }

  insert(node: number, level: number, entry: number, maxLevel: number): void {
    this.memory.exports.hnswInsert(node, level, entry, maxLevel);
  }

  search(entry: number, maxLevel: number, k: number, ef: number): number {
    return this.memory.exports.hnswSearch(entry, maxLevel, k, ef);
  }

  exact(high: number, k: number): number {
    const lay = this.#lay, shape = this.#shape;
    if (shape.quant) {
      return this.memory.exports.hnswExactInt8(
        lay.records,
        shape.stride,
        shape.dimPad,
        shape.meta,
        METRIC_CODE[this.#params.metric],
        high,
        lay.query,
        k,
        lay.exactHeap,
        lay.outNodes,
        lay.outScores,
      );
    }
    return this.memory.exports.vecTopKRows(
      lay.records,
      shape.stride,
      this.#params.dim,
      shape.dimPad,
      high,
      lay.query,
      k,
      METRIC_CODE[this.#params.metric],
      lay.exactScores,
      lay.exactHeap,
      lay.outNodes,
      lay.outScores,
    );
  }

  dispose(): void {
    this.#pool.give(this.memory);
  }
}
