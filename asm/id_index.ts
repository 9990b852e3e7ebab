// The search index of the resident id table (id_table.ts).
//
// A scan reads every id; the index narrows a query to a few. It holds one
// 40-byte record per live id sorted by id, then slot: the four words as
// unsigned big-endian values (the first one unflipped) and the slot; plus a
// table of 2^B + 1 offsets, `tbl[p]` being the first record whose top B bits
// are >= p. If the ids sharing the top L bits with the target number at least
// k, the k nearest are among them: every other id differs within the top L
// bits, so it is farther than all of them. A query takes the deepest such
// prefix range and runs the heap over it alone. The caller rebuilds the
// index (O(n) counting sort on the top B bits) after adds and removes.

import { emit, heapSize, offer, resetHeap } from "./id_heap";
import { chunkSize } from "./id_table";
import { be64, SIGN } from "./xor";

/** Bytes of one index record. */
const REC: usize = 40;

/**
 * Builds the index of the live ids among slots [0, high) of the table at `H`
 * into `tbl` (2^B + 1 u32) and `recs` (one record per live id). Returns the
 * number of live ids.
 */
export function idIndex(H: usize, high: u32, B: u32, tbl: usize, recs: usize): u32 {
  const buckets = <u32> 1 << B;
  const shift = <u64> (64 - B);
  for (let b: u32 = 0; b <= buckets; b++) store<u32>(tbl + (<usize> b << 2), 0);
  // Count ids per prefix, shifted by one so the prefix sum gives starts.
  for (let start: u32 = 0; start < high;) {
    const n = chunkSize(start), base = H + <usize> start * 33, end = min(n, high - start);
    const flags = base + (<usize> n << 5);
    for (let i: u32 = 0; i < end; i++) {
      if (load<u8>(flags + i) == 0) continue;
      const b = <u32> ((load<u64>(base + (<usize> i << 3)) ^ SIGN) >>> shift);
      const q = tbl + (<usize> (b + 1) << 2);
      store<u32>(q, load<u32>(q) + 1);
    }
    start += n;
  }
  let sum: u32 = 0;
  for (let b: u32 = 0; b <= buckets; b++) {
    const q = tbl + (<usize> b << 2);
    sum += load<u32>(q);
    store<u32>(q, sum);
  }
  // Scatter in slot order (tbl[b] runs from the start of bucket b to the start of b + 1).
  for (let start: u32 = 0; start < high;) {
    const n = chunkSize(start), base = H + <usize> start * 33, end = min(n, high - start);
    const nb = <usize> n << 3, flags = base + (<usize> n << 5);
    for (let i: u32 = 0; i < end; i++) {
      if (load<u8>(flags + i) == 0) continue;
      const p = base + (<usize> i << 3);
      const u0 = load<u64>(p) ^ SIGN;
      const q = tbl + (<usize> <u32> (u0 >>> shift) << 2);
      const at = load<u32>(q);
      store<u32>(q, at + 1);
      const r = recs + <usize> at * REC;
      store<u64>(r, u0);
      store<u64>(r, load<u64>(p + nb), 8);
      store<u64>(r, load<u64>(p + 2 * nb), 16);
      store<u64>(r, load<u64>(p + 3 * nb), 24);
      store<u32>(r, start + i, 32);
    }
    start += n;
  }
  for (let b = buckets; b > 0; b--) {
    store<u32>(tbl + (<usize> b << 2), load<u32>(tbl + (<usize> (b - 1) << 2)));
  }
  store<u32>(tbl, 0);
  // Sort each bucket by id (insertion sort: buckets hold about one id; it is
  // stable, so equal ids stay in slot order).
  for (let b: u32 = 0; b < buckets; b++) {
    const lo = load<u32>(tbl + (<usize> b << 2)), hi = load<u32>(tbl + (<usize> (b + 1) << 2));
    for (let i = lo + 1; i < hi; i++) {
      let j = i;
      while (j > lo && recLess(recs + <usize> j * REC, recs + <usize> (j - 1) * REC)) {
        swapRec(recs + <usize> j * REC, recs + <usize> (j - 1) * REC);
        j--;
      }
    }
  }
  return sum;
}

/** Whether the id of record `a` is less than that of record `b`. */
function recLess(a: usize, b: usize): bool {
  for (let o: usize = 0; o < 32; o += 8) {
    const x = load<u64>(a + o), y = load<u64>(b + o);
    if (x != y) return x < y;
  }
  return false;
}

function swapRec(a: usize, b: usize): void {
  for (let o: usize = 0; o < REC; o += 8) {
    const x = load<u64>(a + o);
    store<u64>(a + o, load<u64>(b + o));
    store<u64>(b + o, x);
  }
}

/** Bit `bit` (0 = most significant) of the 256-bit value in words (w0, w1, w2, w3). */
function bitOf(w0: u64, w1: u64, w2: u64, w3: u64, bit: u32): u32 {
  const w = bit >>> 6;
  const x = w == 0 ? w0 : w == 1 ? w1 : w == 2 ? w2 : w3;
  return <u32> (x >>> (63 - <u64> (bit & 63))) & 1;
}

/** Like `select`, through the index (`live` >= k records). */
function selectIx(tbl: usize, B: u32, recs: usize, target: usize, k: u32, heap: usize): u32 {
  const u0 = be64(target), t1 = be64(target, 8), t2 = be64(target, 16), t3 = be64(target, 24);
  const top = <u32> (u0 >>> <u64> (64 - B));
  // The deepest prefix of the target (at most B bits) whose range holds >= k ids.
  let L = B;
  let lo: u32 = 0, hi: u32 = 0;
  for (;;) {
    const sh = B - L;
    const first = (top >>> sh) << sh;
    lo = load<u32>(tbl + (<usize> first << 2));
    hi = load<u32>(tbl + (<usize> (first + (<u32> 1 << sh)) << 2));
    if (hi - lo >= k || L == 0) break;
    L--;
  }
  // Clustered ids: keep splitting on deeper bits (binary search) while the range is large.
  if (L == B) {
    let bit = B;
    while (hi - lo > (k << 1) + 32 && bit < 256) {
      let a = lo, z = hi;
      while (a < z) {
        const mid = a + ((z - a) >>> 1);
        const r = recs + <usize> mid * REC;
        if (bitOf(load<u64>(r), load<u64>(r, 8), load<u64>(r, 16), load<u64>(r, 24), bit) == 0) a = mid + 1;
        else z = mid;
      }
      const nlo = bitOf(u0, t1, t2, t3, bit) == 0 ? lo : a;
      const nhi = bitOf(u0, t1, t2, t3, bit) == 0 ? a : hi;
      if (nhi - nlo < k) break;
      lo = nlo;
      hi = nhi;
      bit++;
    }
  }
  resetHeap();
  let thr: i64 = i64.MAX_VALUE;
  const f0 = u0 ^ SIGN;
  for (let i = lo; i < hi; i++) {
    const r = recs + <usize> i * REC;
    const d0 = <i64> (load<u64>(r) ^ f0);
    if (d0 > thr) continue;
    thr = offer(
      d0,
      load<u64>(r, 8) ^ t1,
      load<u64>(r, 16) ^ t2,
      load<u64>(r, 24) ^ t3,
      load<u32>(r, 32),
      k,
      heap,
      thr,
    );
  }
  return heapSize();
}

/** `idClosest` through the index built by `idIndex`. */
export function idClosestIx(
  tbl: usize,
  B: u32,
  recs: usize,
  target: usize,
  k: u32,
  heap: usize,
  out: usize,
): u32 {
  const count = selectIx(tbl, B, recs, target, k, heap);
  emit(heap, count, out);
  return count;
}

/** `idPlace` through the index built by `idIndex`. */
export function idPlaceIx(
  tbl: usize,
  B: u32,
  recs: usize,
  keys: usize,
  m: u32,
  r: u32,
  heap: usize,
  out: usize,
): u32 {
  let width: u32 = 0;
  for (let i: u32 = 0; i < m; i++) {
    width = selectIx(tbl, B, recs, keys + (<usize> i << 5), r, heap);
    emit(heap, width, out + <usize> i * width * 4);
  }
  return width;
}
