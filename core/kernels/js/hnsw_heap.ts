/**
 * The binary heaps of the JS HNSW engine: (distance, node) pairs in two
 * parallel typed arrays, ordered by distance and then node, so that no two
 * entries are ever equal and the popping order is the same in any correct
 * heap (the WASM engine's keeps u64 keys instead).
 *
 * @module
 */

/** Whether (d1, n1) comes before (d2, n2): smaller distance, then smaller node. */
export function before(d1: number, n1: number, d2: number, n2: number): boolean {
  return d1 < d2 || (d1 === d2 && n1 < n2);
}

/** A heap of (distance, node) pairs: the least on top, or the greatest when `max`. */
export class PairHeap {
  size = 0;
  #d: Float64Array;
  #n: Uint32Array;
  readonly #max: boolean;

  constructor(capacity: number, max: boolean) {
    this.#d = new Float64Array(capacity);
    this.#n = new Uint32Array(capacity);
    this.#max = max;
  }

  clear(): void {
    this.size = 0;
  }

  topD(): number {
    return this.#d[0];
  }

  topN(): number {
    return this.#n[0];
  }

  /** Whether (d1, n1) belongs above (d2, n2). */
  #above(d1: number, n1: number, d2: number, n2: number): boolean {
    return this.#max ? before(d2, n2, d1, n1) : before(d1, n1, d2, n2);
  }

  push(d: number, n: number): void {
    const ds = this.#d, ns = this.#n;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#above(d, n, ds[p], ns[p])) break;
      ds[i] = ds[p];
      ns[i] = ns[p];
      i = p;
    }
    ds[i] = d;
    ns[i] = n;
  }

  pop(): void {
    const ds = this.#d, ns = this.#n;
    const count = --this.size;
    if (count === 0) return;
    const d = ds[count], n = ns[count];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= count) break;
      if (c + 1 < count && this.#above(ds[c + 1], ns[c + 1], ds[c], ns[c])) c++;
      if (!this.#above(ds[c], ns[c], d, n)) break;
      ds[i] = ds[c];
      ns[i] = ns[c];
      i = c;
    }
    ds[i] = d;
    ns[i] = n;
  }
}
