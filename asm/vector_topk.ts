// Exact top-k over row records (the resident matrix of vector.ts, and the
// HNSW node records of hnsw.ts, which begin with the same row record).
//
// One pass in slot order: rows are scored four at a time (four independent
// f32x4 chains sharing each query load, each chain the very operations dot()
// and sqDist() run, so every score is bit for bit theirs), and a score goes
// to the bounded heap only when its rank key beats the current k-th. The
// resident matrix adds int8 codes (vector_codes.ts): once the heap is full, a
// row whose bound cannot beat the k-th is not scored in f32 at all. The f32
// rows are what bounds the scan otherwise: 10k × 384 is 15.5 MB, which one
// core here streams from L3 in ~0.55 ms with any arithmetic.

import { cosineOf, dot, sqDist, vecStride } from "./vector";
import { codeDots4, codePad, codeStride, QOK, queryCodes, skip } from "./vector_codes";

/** Metric codes shared with wasm.ts: 0 dot, 1 cosine, 2 l2. */
const COSINE: u32 = 1;
const L2: u32 = 2;

// The scan under way (one instance runs one scan at a time).
let SCORES: usize = 0; // f32 per slot: the score of every slot offered
let HEAP: usize = 0; // u64 rank keys, a max-heap: the root is the worst kept
let K: u32 = 0;
let COUNT: u32 = 0;
let ROOT: u64 = 0;
let HIGHER: bool = true; // whether higher scores are better (not l2)
let IDOTS: usize = 0; // 4 × i32 of codeDots4, in the scratch behind the heap

/**
 * Top-k over the live rows among slots [0, high) of the matrix at `H` for the
 * query at `q` (`dim` floats, room for `dimPad`). With `C` not 0, the rows'
 * code records are at `C` (codeStride(dimPad) bytes per slot) and `qc` has
 * room for the query's codes (2·codePad(dimPad) bytes). Writes min(k, live)
 * slots best first to `outSlots` and their scores to `outScores`, returns the
 * count. Scratch: `scores` (high f32), `heap` (k u64, then 16 bytes).
 */
export function vecTopK(
  H: usize,
  C: usize,
  dim: u32,
  dimPad: u32,
  high: u32,
  q: usize,
  qc: usize,
  k: u32,
  metric: u32,
  scores: usize,
  heap: usize,
  outSlots: usize,
  outScores: usize,
): u32 {
  start(dim, dimPad, q, k, metric, scores, heap);
  const qq = dot(q, q, dimPad);
  if (ASC_FEATURE_SIMD && C != 0) {
    queryCodes(q, dimPad, qc, qq);
    if (QOK) scanCoded(H, vecStride(dimPad), C, dimPad, high, q, qc, metric, qq);
    else scan(H, vecStride(dimPad), dimPad, 0, high, q, metric, qq);
  } else {
    scan(H, vecStride(dimPad), dimPad, 0, high, q, metric, qq);
  }
  return drain(outSlots, outScores);
}

/**
 * {@link vecTopK} over records of `stride` bytes (a multiple of 16) that
 * begin with the row record (the HNSW node records of hnsw.ts do), without
 * codes.
 */
export function vecTopKRows(
  H: usize,
  stride: usize,
  dim: u32,
  dimPad: u32,
  high: u32,
  q: usize,
  k: u32,
  metric: u32,
  scores: usize,
  heap: usize,
  outSlots: usize,
  outScores: usize,
): u32 {
  start(dim, dimPad, q, k, metric, scores, heap);
  scan(H, stride, dimPad, 0, high, q, metric, dot(q, q, dimPad));
  return drain(outSlots, outScores);
}

function start(dim: u32, dimPad: u32, q: usize, k: u32, metric: u32, scores: usize, heap: usize): void {
  for (let i = dim; i < dimPad; i++) store<f32>(q + (<usize> i << 2), 0);
  SCORES = scores;
  HEAP = heap;
  IDOTS = heap + (<usize> k << 3);
  K = k;
  COUNT = 0;
  ROOT = 0;
  HIGHER = metric != L2;
}

/** Scores and offers the rows of slots [from, high) (dead rows are skipped, or scored and ignored). */
function scan(
  H: usize,
  stride: usize,
  dimPad: u32,
  from: u32,
  high: u32,
  q: usize,
  metric: u32,
  qq: f32,
): void {
  const meta = <usize> dimPad << 2;
  let s = from;
  if (ASC_FEATURE_SIMD) {
    for (; s + 4 <= high; s += 4) {
      const r0 = H + <usize> s * stride;
      score4(r0, stride, q, dimPad, metric, SCORES + (<usize> s << 2));
      for (let j: u32 = 0; j < 4; j++) {
        const rec = r0 + <usize> j * stride;
        if (load<u32>(rec + meta, 4) == 0) continue;
        const p = SCORES + (<usize> (s + j) << 2);
        let x = load<f32>(p);
        if (metric == COSINE) {
          // A dot ≤ 0 gives a cosine ≤ 0, which cannot beat a positive k-th: spare its division.
          if (x <= 0 && COUNT == K && load<f32>(SCORES + (<usize> <u32> ROOT << 2)) > 0) continue;
          x = cosineOf(x, qq, load<f32>(rec + meta));
        }
        offer(s + j, x);
      }
    }
  }
  for (; s < high; s++) {
    const rec = H + <usize> s * stride;
    if (load<u32>(rec + meta, 4) == 0) continue;
    offer(s, exact(rec, q, dimPad, metric, qq));
  }
}

/**
 * {@link scan} with the codes at `C`: exact until the heap is full, then each
 * block of four rows gets its integer dots first and only the rows whose
 * bound may beat the k-th are scored in f32.
 */
function scanCoded(
  H: usize,
  stride: usize,
  C: usize,
  dimPad: u32,
  high: u32,
  q: usize,
  qc: usize,
  metric: u32,
  qq: f32,
): void {
  const cstride = codeStride(dimPad), pad = codePad(dimPad);
  let s: u32 = 0;
  // Fill the heap exactly, in whole blocks of four.
  while (COUNT < K && s + 4 <= high) {
    scan(H, stride, dimPad, s, s + 4, q, metric, qq);
    s += 4;
  }
  for (; s + 4 <= high; s += 4) {
    codeDots4(C + <usize> s * cstride, cstride, pad, qc, IDOTS);
    for (let j: u32 = 0; j < 4; j++) {
      const slot = s + j;
      const code = C + <usize> slot * cstride + pad;
      if (load<u32>(code, 20) == 0) continue;
      const kth = <f64> load<f32>(SCORES + (<usize> <u32> ROOT << 2));
      if (skip(load<i32>(IDOTS + (<usize> j << 2)), code, metric, kth)) continue;
      offer(slot, exact(H + <usize> slot * stride, q, dimPad, metric, qq));
    }
  }
  scan(H, stride, dimPad, s, high, q, metric, qq);
}

/** The score of the row at `rec`, computed as score4 computes it. */
function exact(rec: usize, q: usize, dimPad: u32, metric: u32, qq: f32): f32 {
  if (metric == L2) return sqrt<f32>(sqDist(q, rec, dimPad));
  const d = dot(q, rec, dimPad);
  return metric == COSINE ? cosineOf(d, qq, load<f32>(rec + (<usize> dimPad << 2))) : d;
}

/** Offers `slot` with `score` to the bounded heap: kept when fewer than k are, or when it beats the root. */
function offer(slot: u32, score: f32): void {
  store<f32>(SCORES + (<usize> slot << 2), score);
  const key = rankKey(score, HIGHER, slot);
  if (COUNT < K) {
    let h = COUNT++;
    while (h > 0) {
      const parent = (h - 1) >> 1;
      const pk = load<u64>(HEAP + (<usize> parent << 3));
      if (pk >= key) break;
      store<u64>(HEAP + (<usize> h << 3), pk);
      h = parent;
    }
    store<u64>(HEAP + (<usize> h << 3), key);
    ROOT = load<u64>(HEAP);
  } else if (key < ROOT) {
    siftDown64(HEAP, COUNT, key);
    ROOT = load<u64>(HEAP);
  }
}

/** Empties the heap into `outSlots`/`outScores`, best first; returns the count. */
function drain(outSlots: usize, outScores: usize): u32 {
  const count = COUNT;
  for (let n = count; n > 0;) {
    n--;
    const top = load<u64>(HEAP);
    const slot = <u32> top;
    store<u32>(outSlots + (<usize> n << 2), slot);
    // One NaN bit pattern on every runtime, as the JS kernels write (hardware NaNs may carry a sign bit).
    let x = load<f32>(SCORES + (<usize> slot << 2));
    if (x != x) x = reinterpret<f32>(0x7fc00000);
    store<f32>(outScores + (<usize> n << 2), x);
    siftDown64(HEAP, n, load<u64>(HEAP + (<usize> n << 3)));
  }
  return count;
}

/**
 * Total order key: better scores give smaller keys, NaN after every number,
 * -0 equal to +0, and the slot in the low half so ties go to the lower slot.
 */
function rankKey(score: f32, higherBetter: bool, slot: u32): u64 {
  const x = higherBetter ? -score : score;
  let k: u32;
  if (x != x) k = 0xffffffff;
  else if (x == 0) k = 0x80000000;
  else {
    const bits = reinterpret<u32>(x);
    k = bits >> 31 ? ~bits : bits | 0x80000000;
  }
  return (<u64> k << 32) | <u64> slot;
}

/** Replaces the root of the `count`-key max-heap by `key` and restores order. */
function siftDown64(heap: usize, count: u32, key: u64): void {
  let h: u32 = 0;
  for (;;) {
    let c: u32 = 2 * h + 1;
    if (c >= count) break;
    let ck = load<u64>(heap + (<usize> c << 3));
    if (c + 1 < count) {
      const rk = load<u64>(heap + (<usize> (c + 1) << 3));
      if (rk > ck) {
        c++;
        ck = rk;
      }
    }
    if (ck <= key) break;
    store<u64>(heap + (<usize> h << 3), ck);
    h = c;
  }
  store<u64>(heap + (<usize> h << 3), key);
}

function reduce4(acc: v128): f32 {
  return (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) +
    (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
}

/**
 * Raw scores (dot, or l2 distance for metric 2) of four consecutive rows
 * against the query: four independent accumulator chains, so the f32x4 add
 * latency overlaps instead of serialising one row's chain.
 */
function score4(r0: usize, stride: usize, q: usize, dimPad: u32, metric: u32, out: usize): void {
  const r1 = r0 + stride, r2 = r1 + stride, r3 = r2 + stride;
  const end = <usize> dimPad << 2;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  if (metric == L2) {
    for (let o: usize = 0; o < end; o += 16) {
      const x = v128.load(q + o);
      const d0 = f32x4.sub(x, v128.load(r0 + o)), d1 = f32x4.sub(x, v128.load(r1 + o));
      const d2 = f32x4.sub(x, v128.load(r2 + o)), d3 = f32x4.sub(x, v128.load(r3 + o));
      a0 = f32x4.add(a0, f32x4.mul(d0, d0));
      a1 = f32x4.add(a1, f32x4.mul(d1, d1));
      a2 = f32x4.add(a2, f32x4.mul(d2, d2));
      a3 = f32x4.add(a3, f32x4.mul(d3, d3));
    }
    store<f32>(out, sqrt<f32>(reduce4(a0)));
    store<f32>(out, sqrt<f32>(reduce4(a1)), 4);
    store<f32>(out, sqrt<f32>(reduce4(a2)), 8);
    store<f32>(out, sqrt<f32>(reduce4(a3)), 12);
  } else {
    for (let o: usize = 0; o < end; o += 16) {
      const x = v128.load(q + o);
      a0 = f32x4.add(a0, f32x4.mul(x, v128.load(r0 + o)));
      a1 = f32x4.add(a1, f32x4.mul(x, v128.load(r1 + o)));
      a2 = f32x4.add(a2, f32x4.mul(x, v128.load(r2 + o)));
      a3 = f32x4.add(a3, f32x4.mul(x, v128.load(r3 + o)));
    }
    store<f32>(out, reduce4(a0));
    store<f32>(out, reduce4(a1), 4);
    store<f32>(out, reduce4(a2), 8);
    store<f32>(out, reduce4(a3), 12);
  }
}
