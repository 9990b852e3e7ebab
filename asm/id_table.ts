// The resident id table: ids stored by slot in doubling chunks, searched by
// a full scan of the first-word column (`idClosest`, `idPlace`). The JS side
// (core/kernels/wasm/id_table.ts) lays out its memory and switches to the
// search index (id_index.ts) when queries repeat over an unchanged table.
//
//
// The table lives at `H` in chunks that double: chunk 0 holds slots [0, C0),
// chunk j >= 1 holds [C0 << (j - 1), C0 << j). A chunk starting at slot `s`
// with `n` slots sits at `H + 33 * s` and holds five columns: the first,
// second, third and fourth stored words (n u64 each), then n live flags. So
// adding a chunk appends memory and never moves existing ids, and the scan
// reads only the first-word column (8 bytes per id).

import { emit, heapSize, offer, resetHeap } from "./id_heap";
import { be64, SIGN } from "./xor";

/** Slots in the first chunk of an id table; later chunks double (see `chunkStart`). */
export const C0: u32 = 256;

/** First slot of the chunk holding `slot`. */
function chunkStart(slot: u32): u32 {
  return slot < C0 ? 0 : <u32> 1 << (31 - clz(slot));
}

/** Number of slots of the chunk starting at `start`. */
export function chunkSize(start: u32): u32 {
  return start == 0 ? C0 : start;
}

/** Stores the 32-byte id at `src` in `slot` and marks it live. */
export function idStore(H: usize, slot: u32, src: usize): void {
  const s = chunkStart(slot), n = <usize> chunkSize(s);
  const p = H + <usize> s * 33 + (<usize> (slot - s) << 3);
  store<u64>(p, be64(src) ^ SIGN);
  store<u64>(p + (n << 3), be64(src, 8));
  store<u64>(p + (n << 4), be64(src, 16));
  store<u64>(p + n * 24, be64(src, 24));
  store<u8>(H + <usize> s * 33 + (n << 5) + (slot - s), 1);
}

/** Copies the id in `slot` to the 32 bytes at `dst`. */
export function idLoad(H: usize, slot: u32, dst: usize): void {
  const s = chunkStart(slot), n = <usize> chunkSize(s);
  const p = H + <usize> s * 33 + (<usize> (slot - s) << 3);
  store<u64>(dst, bswap<u64>(load<u64>(p) ^ SIGN));
  store<u64>(dst, bswap<u64>(load<u64>(p + (n << 3))), 8);
  store<u64>(dst, bswap<u64>(load<u64>(p + (n << 4))), 16);
  store<u64>(dst, bswap<u64>(load<u64>(p + n * 24)), 24);
}

/** Marks `slot` dead (`live` = 0) or live. */
export function idSetLive(H: usize, slot: u32, live: u8): void {
  const s = chunkStart(slot);
  store<u8>(H + <usize> s * 33 + (<usize> chunkSize(s) << 5) + (slot - s), live);
}

/**
 * Slots of the `k` (>= 1) live ids closest to the id at `target` among slots
 * [0, high), nearest first, into `out`; returns how many (min(k, live)).
 * `heap` is scratch for k entries of 40 bytes.
 */
export function idClosest(H: usize, high: u32, target: usize, k: u32, heap: usize, out: usize): u32 {
  const count = select(H, high, target, k, heap);
  emit(heap, count, out);
  return count;
}

/**
 * Batch placement: for each of the `m` ids at `keys`, the slots of its `r`
 * (>= 1) closest live ids, nearest first, written row-major to `out`; rows
 * are min(r, live) wide, which is returned.
 */
export function idPlace(H: usize, high: u32, keys: usize, m: u32, r: u32, heap: usize, out: usize): u32 {
  let width: u32 = 0;
  for (let i: u32 = 0; i < m; i++) {
    width = select(H, high, keys + (<usize> i << 5), r, heap);
    emit(heap, width, out + <usize> i * width * 4);
  }
  return width;
}

/**
 * Fills `heap` with a max-heap of the `k` closest live ids (the root is the
 * farthest of them) and returns their number.
 */
function select(H: usize, high: u32, target: usize, k: u32, heap: usize): u32 {
  const t0 = be64(target), t1 = be64(target, 8), t2 = be64(target, 16), t3 = be64(target, 24);
  resetHeap();
  // A candidate can only enter when its first word is <= the root's; while
  // the heap is filling, everything enters.
  let thr: i64 = i64.MAX_VALUE;
  for (let start: u32 = 0; start < high;) {
    const n = chunkSize(start);
    const base = H + <usize> start * 33;
    const end = min(n, high - start);
    let i: u32 = 0;
    if (ASC_FEATURE_SIMD) {
      // Eight first words per step: a step with no candidate costs four
      // loads, XORs and compares and one branch. On a hit, only the lanes
      // that pass are offered to the heap.
      const T0 = i64x2.splat(<i64> t0);
      let THR = i64x2.splat(thr);
      for (; i + 8 <= end; i += 8) {
        const p = base + (<usize> i << 3);
        const c0 = i64x2.le_s(v128.xor(v128.load(p), T0), THR);
        const c1 = i64x2.le_s(v128.xor(v128.load(p, 16), T0), THR);
        const c2 = i64x2.le_s(v128.xor(v128.load(p, 32), T0), THR);
        const c3 = i64x2.le_s(v128.xor(v128.load(p, 48), T0), THR);
        if (v128.any_true(v128.or(v128.or(c0, c1), v128.or(c2, c3)))) {
          let m = i64x2.bitmask(c0) | (i64x2.bitmask(c1) << 2) | (i64x2.bitmask(c2) << 4) |
            (i64x2.bitmask(c3) << 6);
          while (m != 0) {
            thr = visit(base, n, i + ctz(m), start, t0, t1, t2, t3, k, heap, thr);
            m &= m - 1;
          }
          THR = i64x2.splat(thr);
        }
      }
    } else {
      for (; i + 4 <= end; i += 4) {
        const p = base + (<usize> i << 3);
        let m = <u32> (<i64> (load<u64>(p) ^ t0) <= thr) |
          (<u32> (<i64> (load<u64>(p, 8) ^ t0) <= thr) << 1) |
          (<u32> (<i64> (load<u64>(p, 16) ^ t0) <= thr) << 2) |
          (<u32> (<i64> (load<u64>(p, 24) ^ t0) <= thr) << 3);
        while (m != 0) {
          thr = visit(base, n, i + ctz(m), start, t0, t1, t2, t3, k, heap, thr);
          m &= m - 1;
        }
      }
    }
    for (; i < end; i++) thr = visit(base, n, i, start, t0, t1, t2, t3, k, heap, thr);
    start += n;
  }
  return heapSize();
}

/**
 * Offers index `i` of the chunk at `base` (`n` slots, first slot `start`) to
 * the heap; returns the new first-word threshold.
 */
function visit(
  base: usize,
  n: u32,
  i: u32,
  start: u32,
  t0: u64,
  t1: u64,
  t2: u64,
  t3: u64,
  k: u32,
  heap: usize,
  thr: i64,
): i64 {
  const p = base + (<usize> i << 3);
  const d0 = <i64> (load<u64>(p) ^ t0);
  if (d0 > thr) return thr;
  if (load<u8>(base + (<usize> n << 5) + i) == 0) return thr;
  const nb = <usize> n << 3;
  const d1 = load<u64>(p + nb) ^ t1, d2 = load<u64>(p + 2 * nb) ^ t2, d3 = load<u64>(p + 3 * nb) ^ t3;
  return offer(d0, d1, d2, d3, start + i, k, heap, thr);
}
