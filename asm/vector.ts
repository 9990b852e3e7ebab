// Vector kernels: dot, cosine, l2, and the rows of the resident f32 matrix
// (the exact top-k scan over them is asm/vector_topk.ts).
//
// Arithmetic follows types.ts exactly: element i accumulates into lane i & 3
// of four f32 accumulators, products and sums rounded to f32 (no fused
// multiply-add), lanes reduced as (l0 + l1) + (l2 + l3). That is precisely
// what f32x4.mul/f32x4.add do, so the SIMD loop over whole groups of four is
// the rule itself; tail elements are added to their lanes afterwards.
// Accumulators start at +0 and IEEE addition never turns +0 into -0, so
// zero padding (0 * 0 added to a lane) leaves every lane unchanged.
// Operands keep the JS kernels' order (query first, accumulator first).

import { codePad, rowCodes } from "./vector_codes";

function reduce(l0: f32, l1: f32, l2: f32, l3: f32): f32 {
  return (l0 + l1) + (l2 + l3);
}

/** Dot product of the `n` floats at `a` and `b`. */
export function dot(a: usize, b: usize, n: u32): f32 {
  const end = <usize> (n & ~3) << 2, len = <usize> n << 2;
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  let o: usize = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    for (; o < end; o += 16) acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    l0 = f32x4.extract_lane(acc, 0);
    l1 = f32x4.extract_lane(acc, 1);
    l2 = f32x4.extract_lane(acc, 2);
    l3 = f32x4.extract_lane(acc, 3);
  } else {
    for (; o < end; o += 16) {
      l0 += load<f32>(a + o) * load<f32>(b + o);
      l1 += load<f32>(a + o, 4) * load<f32>(b + o, 4);
      l2 += load<f32>(a + o, 8) * load<f32>(b + o, 8);
      l3 += load<f32>(a + o, 12) * load<f32>(b + o, 12);
    }
  }
  if (o < len) l0 += load<f32>(a + o) * load<f32>(b + o);
  if (o + 4 < len) l1 += load<f32>(a + o, 4) * load<f32>(b + o, 4);
  if (o + 8 < len) l2 += load<f32>(a + o, 8) * load<f32>(b + o, 8);
  return reduce(l0, l1, l2, l3);
}

/** Sum of squared differences of the `n` floats at `a` and `b` (before the square root). */
export function sqDist(a: usize, b: usize, n: u32): f32 {
  const end = <usize> (n & ~3) << 2, len = <usize> n << 2;
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  let o: usize = 0;
  if (ASC_FEATURE_SIMD) {
    let acc = f32x4.splat(0);
    for (; o < end; o += 16) {
      const d = f32x4.sub(v128.load(a + o), v128.load(b + o));
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    l0 = f32x4.extract_lane(acc, 0);
    l1 = f32x4.extract_lane(acc, 1);
    l2 = f32x4.extract_lane(acc, 2);
    l3 = f32x4.extract_lane(acc, 3);
  } else {
    for (; o < end; o += 16) {
      const d0 = load<f32>(a + o) - load<f32>(b + o), d1 = load<f32>(a + o, 4) - load<f32>(b + o, 4);
      const d2 = load<f32>(a + o, 8) - load<f32>(b + o, 8), d3 = load<f32>(a + o, 12) - load<f32>(b + o, 12);
      l0 += d0 * d0;
      l1 += d1 * d1;
      l2 += d2 * d2;
      l3 += d3 * d3;
    }
  }
  if (o < len) {
    const d = load<f32>(a + o) - load<f32>(b + o);
    l0 += d * d;
  }
  if (o + 4 < len) {
    const d = load<f32>(a + o, 4) - load<f32>(b + o, 4);
    l1 += d * d;
  }
  if (o + 8 < len) {
    const d = load<f32>(a + o, 8) - load<f32>(b + o, 8);
    l2 += d * d;
  }
  return reduce(l0, l1, l2, l3);
}

/** Euclidean distance of the `n` floats at `a` and `b`. */
export function l2(a: usize, b: usize, n: u32): f32 {
  return sqrt<f32>(sqDist(a, b, n));
}

/** Cosine from a dot product and two squared norms (all f32), computed in f64 as types.ts specifies. */
export function cosineOf(d: f32, aa: f32, bb: f32): f32 {
  if (aa == 0 || bb == 0) return 0;
  return <f32> (<f64> d / Math.sqrt(<f64> aa * <f64> bb));
}

/** Cosine similarity of the `n` floats at `a` and `b` (0 when either is all zeros). */
export function cosine(a: usize, b: usize, n: u32): f32 {
  return cosineOf(dot(a, b, n), dot(a, a, n), dot(b, b, n));
}

// ---------------------------------------------------------------------------
// Resident index: rows at `H`, one record of `vecStride(dimPad)` bytes per
// slot, so a new slot only appends memory; the rows' int8 codes
// (vector_codes.ts) in a region of their own.

/** Bytes of a row record: `dimPad` floats, then the squared norm (f32), live flag (u32), 8 spare bytes. */
export function vecStride(dimPad: u32): usize {
  return (<usize> dimPad << 2) + 16;
}

/**
 * Finishes the row just written at `rec` (`dim` floats): zeroes the padding up
 * to `dimPad`, stores its squared norm, marks it live and, when `code` is not
 * 0, writes its code record there.
 */
export function vecCommit(rec: usize, dim: u32, dimPad: u32, code: usize): void {
  for (let i = dim; i < dimPad; i++) store<f32>(rec + (<usize> i << 2), 0);
  const meta = rec + (<usize> dimPad << 2);
  store<f32>(meta, dot(rec, rec, dimPad));
  store<u32>(meta, 1, 4);
  if (code != 0) rowCodes(rec, dimPad, code);
}

/** Marks the row at `rec` dead, and its code record at `code` when that is not 0. */
export function vecKill(rec: usize, dimPad: u32, code: usize): void {
  store<u32>(rec + (<usize> dimPad << 2), 0, 4);
  if (code != 0) store<u32>(code + codePad(dimPad), 0, 20);
}
