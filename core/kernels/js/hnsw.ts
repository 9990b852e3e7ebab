/**
 * The HNSW graph algorithms of the `js` kernels (Malkov & Yashunin, "Efficient
 * and robust approximate nearest neighbor search using Hierarchical Navigable
 * Small World graphs"): greedy descent through the upper layers, beam search
 * (`ef`) on a layer, and the neighbour-selection heuristic (their algorithm 4,
 * as hnswlib runs it). asm/hnsw.ts is the same code line for line; both work
 * on the record layout of `_hnsw_layout.ts`.
 *
 * Order: candidates compare by (distance, node), node being insertion order,
 * so every comparison is strict and both twins visit, keep and link the same
 * nodes. Distances are the f32 arithmetic of `types.ts` (`Math.fround` on
 * every step, four lanes): negated similarity for dot and cosine, squared
 * distance for l2, NaN as +Infinity and -0 as +0. A quantized index
 * (`shape.quant`) uses the int8 distances of `hnsw_int8.ts` instead.
 *
 * @module
 */
import type { HnswEngine, HnswLayout, HnswMemory, HnswParams, RecordShape } from "../_hnsw_layout.ts";
import { before, PairHeap } from "./hnsw_heap.ts";
import { distance, dotAt, exactTopK } from "./hnsw_distance.ts";
import { exactTopKInt8, qdistance, qsum } from "./hnsw_int8.ts";

/** Memory of the JS engine: one ArrayBuffer, copied into a larger one when it grows. */
export class JsHnswMemory implements HnswMemory {
  readonly base = 0;
  u8: Uint8Array = new Uint8Array(0);
  u32: Uint32Array = new Uint32Array(0);
  f32: Float32Array = new Float32Array(0);
  /** The same bytes as int8 codes (quantized records). */
  i8: Int8Array = new Int8Array(0);

  ensure(end: number): void {
    if (end <= this.u8.length) return;
    const grown = new Uint8Array(Math.max(end, 2 * this.u8.length));
    grown.set(this.u8);
    this.u8 = grown;
    this.u32 = new Uint32Array(grown.buffer);
    this.f32 = new Float32Array(grown.buffer);
    this.i8 = new Int8Array(grown.buffer);
  }

  /** Drops the memory (the index is disposed). */
  release(): void {
    this.u8 = new Uint8Array(0);
    this.u32 = new Uint32Array(0);
    this.f32 = new Float32Array(0);
    this.i8 = new Int8Array(0);
  }
}

/** The engine: see the module comment. */
export class JsHnswEngine implements HnswEngine {
  readonly memory: JsHnswMemory = new JsHnswMemory();
  #lay!: HnswLayout;
  #shape!: RecordShape;
  #params!: HnswParams;
  #metric = 0;
  #quant = false;
  /** Word offset of a record's norm (code sum when quantized): its live flag is one word on. */
  #metaW = 0;
  #visited = new Uint32Array(0);
  #stamp = 0;
  #cand = new PairHeap(16, false);
  #best = new PairHeap(16, true);
  #listD = new Float64Array(0);
  #listN = new Uint32Array(0);
  #pickD = new Float64Array(0);
  #pickN = new Uint32Array(0);

  setLayout(layout: HnswLayout, shape: RecordShape, params: HnswParams): void {
    this.#lay = layout;
    this.#shape = shape;
    this.#params = params;
    this.#metric = params.metric === "dot" ? 0 : params.metric === "cosine" ? 1 : 2;
    this.#quant = shape.quant;
    this.#metaW = shape.meta >>> 2;
    this.#visited = new Uint32Array(layout.capacity);
    this.#stamp = 0;
    this.#cand = new PairHeap(layout.capacity + 2, false);
    this.#best = new PairHeap(layout.width + 2, true);
    this.#listD = new Float64Array(layout.width + 2);
    this.#listN = new Uint32Array(layout.width + 2);
    this.#pickD = new Float64Array(shape.m0 + 2);
    this.#pickN = new Uint32Array(shape.m0 + 2);
  }

  commit(node: number): void {
    const v = this.#vec(node);
    if (this.#quant) {
      this.memory.u32[v + this.#metaW] = qsum(this.memory.i8, 4 * v, this.#shape.dimPad);
      return;
    }
    const f32 = this.memory.f32;
    f32[v + this.#shape.dimPad] = dotAt(f32, v, v, this.#shape.dimPad);
  }

  insert(node: number, level: number, entry: number, maxLevel: number): void {
    const q = this.#vec(node);
    const qq = this.#norm(node);
    let ep = entry;
    for (let l = maxLevel; l > level; l--) ep = this.#greedy(q, qq, ep, this.#dist(q, qq, ep), l);
    const { m, efConstruction } = this.#params;
    for (let l = Math.min(level, maxLevel); l >= 0; l--) {
      this.#searchLayer(q, qq, ep, efConstruction, l, false);
      const n = this.#drainSorted();
      const picked = this.#select(this.#listD, this.#listN, n, m);
      const at = this.#list(node, l);
      const u32 = this.memory.u32;
      u32[at] = picked;
      for (let i = 0; i < picked; i++) u32[at + 1 + i] = this.#pickN[i];
      // #link reuses the list and the picks as scratch: take the next entry point first.
      ep = this.#listN[0];
      for (let i = 0; i < picked; i++) this.#link(u32[at + 1 + i], node, l);
    }
  }

  search(entry: number, maxLevel: number, k: number, ef: number): number {
    const q = this.#lay.query >>> 2;
    const f32 = this.memory.f32;
    const qq = this.#quant ? 0 : dotAt(f32, q, q, this.#shape.dimPad);
    let ep = entry;
    for (let l = maxLevel; l > 0; l--) ep = this.#greedy(q, qq, ep, this.#dist(q, qq, ep), l);
    this.#searchLayer(q, qq, ep, ef, 0, true);
    const n = this.#drainSorted();
    const count = Math.min(n, k);
    const u32 = this.memory.u32;
    const outN = this.#lay.outNodes >>> 2, outS = this.#lay.outScores >>> 2;
    for (let i = 0; i < count; i++) {
      u32[outN + i] = this.#listN[i];
      const d = this.#listD[i];
      f32[outS + i] = this.#metric === 2 ? Math.fround(Math.sqrt(d)) : -d;
    }
    return count;
  }

  exact(high: number, k: number): number {
    const { records, query, outNodes, outScores } = this.#lay;
    if (this.#quant) {
      const mem = this.memory;
      return exactTopKInt8(
        mem,
        mem.i8,
        records,
        this.#shape,
        this.#metric,
        high,
        query,
        k,
        outNodes,
        outScores,
      );
    }
    return exactTopK(
      this.memory,
      records,
      this.#shape,
      this.#metric,
      high,
      query,
      k,
      outNodes,
      outScores,
    );
  }

  dispose(): void {
    this.memory.release();
    this.#visited = new Uint32Array(0);
  }

  /** Float index of `node`'s vector. */
  #vec(node: number): number {
    return (this.#lay.records + node * this.#shape.stride) >>> 2;
  }

  #norm(node: number): number {
    return this.memory.f32[this.#vec(node) + this.#metaW];
  }

  /** Word index of `node`'s link list on `layer` (count, then links). */
  #list(node: number, layer: number): number {
    const meta = (this.#lay.records + node * this.#shape.stride + this.#shape.meta) >>> 2;
    if (layer === 0) return meta + 5;
    return (this.#lay.upper + this.memory.u32[meta + 3] + (layer - 1) * this.#shape.block) >>> 2;
  }

  #live(node: number): boolean {
    return this.memory.u32[this.#vec(node) + this.#metaW + 1] !== 0;
  }

  /** Distance from the vector at float `q` (squared norm `qq`) to `node`. */
  #dist(q: number, qq: number, node: number): number {
    const v = this.#vec(node);
    const n = this.#shape.dimPad;
    if (this.#quant) {
      return qdistance(this.memory, this.memory.i8, 4 * q, 4 * v, n, this.#shape.meta, this.#metric);
    }
    const f32 = this.memory.f32;
    return distance(f32, q, v, n, this.#metric, qq, f32[v + n]);
  }

  /** Distance between two nodes. */
  #between(a: number, b: number): number {
    return this.#dist(this.#vec(a), this.#norm(a), b);
  }

  /** Greedy walk on `layer` from `ep` (at distance `epD`) to a local minimum. */
  #greedy(q: number, qq: number, ep: number, epD: number, layer: number): number {
    const u32 = this.memory.u32;
    let cur = ep, curD = epD;
    for (let changed = true; changed;) {
      changed = false;
      const at = this.#list(cur, layer);
      const n = u32[at];
      for (let i = 1; i <= n; i++) {
        const e = u32[at + i];
        const d = this.#dist(q, qq, e);
        if (d < curD || (d === curD && e < cur)) {
          cur = e;
          curD = d;
          changed = true;
        }
      }
    }
    return cur;
  }

  /**
   * Beam search on `layer` from `ep`: leaves the `ef` best nodes found in
   * the result heap (only live ones when `liveOnly`).
   */
  #searchLayer(q: number, qq: number, ep: number, ef: number, layer: number, liveOnly: boolean): void {
    const u32 = this.memory.u32;
    const visited = this.#visited;
    if (++this.#stamp === 0xffffffff) {
      visited.fill(0);
      this.#stamp = 1;
    }
    const stamp = this.#stamp;
    const cand = this.#cand, best = this.#best;
    cand.clear();
    best.clear();
    visited[ep] = stamp;
    const epD = this.#dist(q, qq, ep);
    cand.push(epD, ep);
    if (!liveOnly || this.#live(ep)) best.push(epD, ep);
    while (cand.size > 0) {
      const cd = cand.topD(), cn = cand.topN();
      if (best.size >= ef && before(best.topD(), best.topN(), cd, cn)) break;
      cand.pop();
      const at = this.#list(cn, layer);
      const n = u32[at];
      for (let i = 1; i <= n; i++) {
        const e = u32[at + i];
        if (visited[e] === stamp) continue;
        visited[e] = stamp;
        const d = this.#dist(q, qq, e);
        if (best.size < ef || before(d, e, best.topD(), best.topN())) {
          cand.push(d, e);
          if (!liveOnly || this.#live(e)) {
            best.push(d, e);
            if (best.size > ef) best.pop();
          }
        }
      }
    }
  }

  /** Empties the result heap into the list, best first; returns the count. */
  #drainSorted(): number {
    const best = this.#best;
    const n = best.size;
    for (let i = n - 1; i >= 0; i--) {
      this.#listD[i] = best.topD();
      this.#listN[i] = best.topN();
      best.pop();
    }
    return n;
  }

  /**
   * The heuristic: walks the `n` candidates (sorted best first) and keeps one
   * unless a kept node is closer to it than the base is, or as close when
   * that kept node is as far from the base as it is (so copies of one vector
   * do not keep each other and fill the list: a group of identical vectors
   * would link only among itself, and no search could reach it); stops at
   * `max`. Fewer than `max` candidates are all kept. Writes the picks;
   * returns their count.
   */
  #select(ds: Float64Array, ns: Uint32Array, n: number, max: number): number {
    const pickD = this.#pickD, pickN = this.#pickN;
    if (n < max) {
      for (let i = 0; i < n; i++) {
        pickD[i] = ds[i];
        pickN[i] = ns[i];
      }
      return n;
    }
    let count = 0;
    for (let i = 0; i < n && count < max; i++) {
      const e = ns[i], d = ds[i];
      let good = true;
      for (let j = 0; j < count; j++) {
        const b = this.#between(e, pickN[j]);
        if (b < d || (b === d && pickD[j] === d)) {
          good = false;
          break;
        }
      }
      if (good) {
        pickD[count] = d;
        pickN[count++] = e;
      }
    }
    return count;
  }

  /** Adds the link `from → to` on `layer`; a full list is re-chosen by the heuristic among its links and `to`. */
  #link(from: number, to: number, layer: number): void {
    const u32 = this.memory.u32;
    const at = this.#list(from, layer);
    const cap = layer === 0 ? this.#shape.m0 : this.#params.m;
    const n = u32[at];
    if (n < cap) {
      u32[at] = n + 1;
      u32[at + 1 + n] = to;
      return;
    }
    // Candidates: the current links and `to`, sorted by (distance from `from`, node); insertion sort.
    const ds = this.#listD, ns = this.#listN;
    for (let i = 0; i <= n; i++) {
      const e = i < n ? u32[at + 1 + i] : to;
      const d = this.#between(from, e);
      let j = i;
      while (j > 0 && (ds[j - 1] > d || (ds[j - 1] === d && ns[j - 1] > e))) {
        ds[j] = ds[j - 1];
        ns[j] = ns[j - 1];
        j--;
      }
      ds[j] = d;
      ns[j] = e;
    }
    const picked = this.#select(ds, ns, n + 1, cap);
    u32[at] = picked;
    for (let i = 0; i < picked; i++) u32[at + 1 + i] = this.#pickN[i];
  }
}
