// Distances of a quantized HNSW index (`quantize: "int8"`, see
// core/kernels/_hnsw_int8.ts): records hold int8 codes, their f32 scale and
// residual bound, and (at `meta`) the sum of the squared codes. The codes'
// dot product is an exact i32 sum (|code| ≤ 127, at most 65,536 of them:
// below 2^31), so any summation order gives the same integer and the SIMD
// loop needs no lane rule; the rest is a few f64 operations written in the
// same order as core/kernels/js/hnsw_int8.ts, so both twins agree bit for bit.

import { heapPop, heapPush, keyDist, toKey } from "./hnsw_heap";

/** Dot product of the `n` int8 codes (a multiple of 16) at `a` and `b`. */
export function idot(a: usize, b: usize, n: u32): i32 {
  const end = <usize> n;
  let s: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = i32x4.splat(0);
    for (let o: usize = 0; o < end; o += 16) {
      const x = v128.load(a + o), y = v128.load(b + o);
      acc = i32x4.add(
        acc,
        i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(x), i16x8.extend_low_i8x16_s(y)),
      );
      acc = i32x4.add(
        acc,
        i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(x), i16x8.extend_high_i8x16_s(y)),
      );
    }
    s = i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 1) + i32x4.extract_lane(acc, 2) +
      i32x4.extract_lane(acc, 3);
  } else {
    for (let o: usize = 0; o < end; o++) s += <i32> load<i8>(a + o) * <i32> load<i8>(b + o);
  }
  return s;
}

/**
 * Graph distance between the quantized records at `a` and `b` (`n` codes,
 * sum of squares at `meta`): -dot, -cosine or squared l2 of the dequantized
 * vectors, in f64 and rounded once to f32; -0 → +0.
 */
export function qdist(a: usize, b: usize, n: u32, meta: usize, metric: u32): f32 {
  const dp = <f64> idot(a, b, n);
  let d: f32;
  if (metric == 1) {
    const ia = <f64> load<u32>(a + meta), ib = <f64> load<u32>(b + meta);
    d = ia == 0 || ib == 0 ? 0 : -<f32> (dp / Math.sqrt(ia * ib));
  } else {
    const sa = <f64> load<f32>(a + <usize> n), sb = <f64> load<f32>(b + <usize> n);
    if (metric == 2) {
      const ia = <f64> load<u32>(a + meta), ib = <f64> load<u32>(b + meta);
      const t = sa * sa * ia + sb * sb * ib - 2 * sa * sb * dp;
      d = t > 0 ? <f32> t : 0;
    } else d = -<f32> (dp * sa * sb);
  }
  if (d != d) return Infinity;
  return d == 0 ? 0 : d;
}

/** Sum of the squared codes of the record at `a` (`n` codes). */
export function qsum(a: usize, n: u32): u32 {
  return <u32> idot(a, a, n);
}

/**
 * Exact top-k over the live quantized records among the first `high`, for
 * the query record at `q`: ranks by (distance, node) as the graph does,
 * writes nodes and scores (similarity, or l2 distance) best first; returns
 * the count. Scratch: `heap` (k u64).
 */
export function hnswExactInt8(
  records: usize,
  stride: usize,
  n: u32,
  meta: usize,
  metric: u32,
  high: u32,
  q: usize,
  k: u32,
  heap: usize,
  outNodes: usize,
  outScores: usize,
): u32 {
  let count: u32 = 0;
  if (k == 0) return 0;
  for (let node: u32 = 0; node < high; node++) {
    const rec = records + <usize> node * stride;
    if (load<u32>(rec + meta, 4) == 0) continue;
    const key = toKey(qdist(q, rec, n, meta, metric), node);
    if (count < k) count = heapPush(heap, count, key, true);
    else if (key < load<u64>(heap)) {
      count = heapPop(heap, count, true);
      count = heapPush(heap, count, key, true);
    }
  }
  for (let i = count; i > 0;) {
    i--;
    const key = load<u64>(heap);
    store<u32>(outNodes + (<usize> i << 2), <u32> key);
    const d = keyDist(key);
    store<f32>(outScores + (<usize> i << 2), metric == 2 ? sqrt<f32>(d) : -d);
    heapPop(heap, i + 1, true);
  }
  return count;
}
