/**
 * The bounded heap of the JS exact top-k scans (`vector.ts` over the resident
 * matrix, `hnsw_distance.ts` over HNSW records): slots ranked by score, best
 * first, NaN last, ties to the lower slot — the order of asm/vector_topk.ts's
 * rank keys. The heap holds the k best so far with the worst at the root, so
 * a slot touches it only when it beats that root.
 *
 * @module
 */

/** Whether slot `x` with score `sx` ranks after slot `y` with `sy` (`ascending`: lower scores are better). */
export function rankedAfter(sx: number, sy: number, x: number, y: number, ascending: boolean): boolean {
  if (sx !== sx) return sy === sy || x > y;
  if (sy !== sy) return false;
  if (sx === sy) return x > y;
  return ascending ? sx > sy : sx < sy;
}

/**
 * Offers `slot` (its score in `scores[slot]`) to the heap of `count` slots
 * holding at most `k`; returns the new count.
 */
export function offerSlot(
  heap: Uint32Array,
  scores: ArrayLike<number>,
  count: number,
  k: number,
  slot: number,
  ascending: boolean,
): number {
  const s = scores[slot];
  if (count < k) {
    let i = count++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!rankedAfter(s, scores[heap[p]], slot, heap[p], ascending)) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = slot;
  } else if (count > 0 && rankedAfter(scores[heap[0]], s, heap[0], slot, ascending)) {
    siftDown(heap, scores, count, slot, ascending);
  }
  return count;
}

/** Replaces the root of the `count`-slot heap by `slot` and restores order. */
export function siftDown(
  heap: Uint32Array,
  scores: ArrayLike<number>,
  count: number,
  slot: number,
  ascending: boolean,
): void {
  const s = scores[slot];
  let i = 0;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= count) break;
    if (c + 1 < count && rankedAfter(scores[heap[c + 1]], scores[heap[c]], heap[c + 1], heap[c], ascending)) {
      c++;
    }
    if (!rankedAfter(scores[heap[c]], s, heap[c], slot, ascending)) break;
    heap[i] = heap[c];
    i = c;
  }
  heap[i] = slot;
}

/** Empties the heap of `count` slots into `outSlots[0..count)`, best first. */
export function drainSlots(
  heap: Uint32Array,
  scores: ArrayLike<number>,
  count: number,
  ascending: boolean,
  outSlots: Uint32Array,
): void {
  while (count > 0) {
    const slot = heap[0];
    outSlots[--count] = slot;
    if (count > 0) siftDown(heap, scores, count, heap[count], ascending);
  }
}
