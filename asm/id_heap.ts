// The bounded max-heap of the id-table searches (id_table.ts scans,
// id_index.ts ranges): the k nearest candidates so far, the farthest of them
// at the root, as 40-byte entries in caller-provided scratch. One search runs
// at a time, so its entry count is a module global.

/** Bytes of one heap entry: d0 (i64, sign-flipped), d1, d2, d3 (u64), slot (u32), padding. */
const ENTRY: usize = 40;

/** Live entries in the heap during a search (a global: `offer` updates it). */
let heapCount: u32 = 0;

/** Empties the heap, before a search. */
export function resetHeap(): void {
  heapCount = 0;
}

/** Entries in the heap: after a search, its result count. */
export function heapSize(): u32 {
  return heapCount;
}

/**
 * Offers a candidate at distance (d0 sign-flipped, d1, d2, d3) to the
 * bounded heap; returns the new first-word threshold. Candidates must arrive
 * so that equal distances come in increasing slot order (true for the slot
 * scan and for the index, where duplicates sit together in slot order), so
 * an equal distance never displaces the root.
 */
export function offer(d0: i64, d1: u64, d2: u64, d3: u64, slot: u32, k: u32, heap: usize, thr: i64): i64 {
  const count = heapCount;
  if (count < k) {
    // Sift up from the new leaf, moving farther parents down.
    let h = count;
    while (h > 0) {
      const parent = (h - 1) >> 1;
      const q = heap + <usize> parent * ENTRY;
      if (!entryGreater(d0, d1, d2, d3, slot, q)) break;
      moveEntry(heap + <usize> h * ENTRY, q);
      h = parent;
    }
    putEntry(heap + <usize> h * ENTRY, d0, d1, d2, d3, slot);
    heapCount = count + 1;
    return count + 1 == k ? load<i64>(heap) : i64.MAX_VALUE;
  }
  if (!entryLess(d0, d1, d2, d3, heap)) return thr;
  siftDown(heap, count, d0, d1, d2, d3, slot);
  return load<i64>(heap);
}

/** Copies a heap entry (explicit moves: V8 compiles memory.copy as a call into the runtime). */
function moveEntry(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u64>(dst, load<u64>(src, 16), 16);
  store<u64>(dst, load<u64>(src, 24), 24);
  store<u32>(dst, load<u32>(src, 32), 32);
}

function putEntry(q: usize, d0: i64, d1: u64, d2: u64, d3: u64, slot: u32): void {
  store<i64>(q, d0);
  store<u64>(q, d1, 8);
  store<u64>(q, d2, 16);
  store<u64>(q, d3, 24);
  store<u32>(q, slot, 32);
}

/** Whether the distance (d0..d3) is strictly less than that of the entry at `q`. */
function entryLess(d0: i64, d1: u64, d2: u64, d3: u64, q: usize): bool {
  const e0 = load<i64>(q);
  if (d0 != e0) return d0 < e0;
  let e = load<u64>(q, 8);
  if (d1 != e) return d1 < e;
  e = load<u64>(q, 16);
  if (d2 != e) return d2 < e;
  return d3 < load<u64>(q, 24);
}

/** Whether (d0..d3, slot) orders after the entry at `q`. */
function entryGreater(d0: i64, d1: u64, d2: u64, d3: u64, slot: u32, q: usize): bool {
  const e0 = load<i64>(q);
  if (d0 != e0) return d0 > e0;
  let e = load<u64>(q, 8);
  if (d1 != e) return d1 > e;
  e = load<u64>(q, 16);
  if (d2 != e) return d2 > e;
  e = load<u64>(q, 24);
  if (d3 != e) return d3 > e;
  return slot > load<u32>(q, 32);
}

/** Replaces the root of the `count`-entry heap by (d..., slot) and restores heap order. */
function siftDown(heap: usize, count: u32, d0: i64, d1: u64, d2: u64, d3: u64, slot: u32): void {
  let h: u32 = 0;
  for (;;) {
    let c: u32 = 2 * h + 1;
    if (c >= count) break;
    let q = heap + <usize> c * ENTRY;
    if (c + 1 < count) {
      const r = q + ENTRY;
      if (
        entryGreater(load<i64>(r), load<u64>(r, 8), load<u64>(r, 16), load<u64>(r, 24), load<u32>(r, 32), q)
      ) {
        c++;
        q = r;
      }
    }
    // Slots are distinct, so "child not below the new entry" means "child above it".
    if (entryGreater(d0, d1, d2, d3, slot, q)) break;
    moveEntry(heap + <usize> h * ENTRY, q);
    h = c;
  }
  putEntry(heap + <usize> h * ENTRY, d0, d1, d2, d3, slot);
}

/** Pops the heap in order, writing slots nearest first to `out`. */
export function emit(heap: usize, count: u32, out: usize): void {
  for (let n = count; n > 0;) {
    n--;
    const q = heap;
    store<u32>(out + (<usize> n << 2), load<u32>(q, 32));
    const last = heap + <usize> n * ENTRY;
    siftDown(
      heap,
      n,
      load<i64>(last),
      load<u64>(last, 8),
      load<u64>(last, 16),
      load<u64>(last, 24),
      load<u32>(last, 32),
    );
  }
}
