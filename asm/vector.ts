// Vector kernels: dot, cosine, l2, and exact top-k over a resident f32 matrix.
//
// Arithmetic follows types.ts exactly: element i accumulates into lane i & 3
// of four f32 accumulators, products and sums rounded to f32 (no fused
// multiply-add), lanes reduced as (l0 + l1) + (l2 + l3). That is precisely
// what f32x4.mul/f32x4.add do, so the SIMD loop over whole groups of four is
// the rule itself; tail elements are added to their lanes afterwards.
// Accumulators start at +0 and IEEE addition never turns +0 into -0, so
// zero padding (0 * 0 added to a lane) leaves every lane unchanged.
// Operands keep the JS kernels' order (query first, accumulator first).

/** Bytes of a row record: `dimPad` floats, then the squared norm (f32), live flag (u32), 8 spare bytes. */
function vecStride(dimPad: u32): usize {
  return (<usize> dimPad << 2) + 16;
}

function reduce(l0: f32, l1: f32, l2: f32, l3: f32): f32 {
  return (l0 + l1) + (l2 + l3);
}

function reduce4(acc: v128): f32 {
  return reduce(
    f32x4.extract_lane(acc, 0),
    f32x4.extract_lane(acc, 1),
    f32x4.extract_lane(acc, 2),
    f32x4.extract_lane(acc, 3),
  );
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
// slot, so a new slot only appends memory.

/**
 * Finishes the row just written at `rec` (`dim` floats): zeroes the padding up
 * to `dimPad`, stores its squared norm and marks it live.
 */
export function vecCommit(rec: usize, dim: u32, dimPad: u32): void {
  for (let i = dim; i < dimPad; i++) store<f32>(rec + (<usize> i << 2), 0);
  const meta = rec + (<usize> dimPad << 2);
  store<f32>(meta, dot(rec, rec, dimPad));
  store<u32>(meta, 1, 4);
}

/** Marks the row at `rec` dead. */
export function vecKill(rec: usize, dimPad: u32): void {
  store<u32>(rec + (<usize> dimPad << 2), 0, 4);
}

/** Metric codes shared with wasm.ts: 0 dot, 1 cosine, 2 l2. */
const COSINE: u32 = 1;
const L2: u32 = 2;

/**
 * Top-k over the live rows among slots [0, high) of the matrix at `H` for the
 * query at `q` (`dim` floats, room for `dimPad`). Writes min(k, live) slots
 * best first to `outSlots` and their scores to `outScores`, returns the count.
 * Scratch: `scores` (high f32), `heap` (k u64).
 */
export function vecTopK(
  H: usize,
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
  return vecTopKRows(
    H,
    vecStride(dimPad),
    dim,
    dimPad,
    high,
    q,
    k,
    metric,
    scores,
    heap,
    outSlots,
    outScores,
  );
}

/**
 * {@link vecTopK} over records of `stride` bytes (a multiple of 16) that
 * begin with the row record (the HNSW node records of hnsw.ts do).
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
  for (let i = dim; i < dimPad; i++) store<f32>(q + (<usize> i << 2), 0);
  const meta = <usize> dimPad << 2;

  // Pass 1: raw scores of every slot (dead rows are scored too and ignored).
  let s: u32 = 0;
  if (ASC_FEATURE_SIMD) {
    for (; s + 4 <= high; s += 4) {
      score4(H + <usize> s * stride, stride, q, dimPad, metric, scores + (<usize> s << 2));
    }
  }
  for (; s < high; s++) {
    const rec = H + <usize> s * stride;
    store<f32>(
      scores + (<usize> s << 2),
      metric == L2 ? sqrt<f32>(sqDist(q, rec, dimPad)) : dot(q, rec, dimPad),
    );
  }
  if (metric == COSINE) {
    const qq = dot(q, q, dimPad);
    for (s = 0; s < high; s++) {
      const p = scores + (<usize> s << 2);
      store<f32>(p, cosineOf(load<f32>(p), qq, load<f32>(H + <usize> s * stride + meta)));
    }
  }

  // Pass 2: a bounded max-heap of rank keys; the root is the worst kept.
  const higherBetter = metric != L2;
  let count: u32 = 0;
  let root: u64 = 0;
  for (s = 0; s < high; s++) {
    if (load<u32>(H + <usize> s * stride + meta, 4) == 0) continue;
    const key = rankKey(load<f32>(scores + (<usize> s << 2)), higherBetter, s);
    if (count < k) {
      let h = count++;
      while (h > 0) {
        const parent = (h - 1) >> 1;
        const pk = load<u64>(heap + (<usize> parent << 3));
        if (pk >= key) break;
        store<u64>(heap + (<usize> h << 3), pk);
        h = parent;
      }
      store<u64>(heap + (<usize> h << 3), key);
      root = load<u64>(heap);
    } else if (key < root) {
      siftDown64(heap, count, key);
      root = load<u64>(heap);
    }
  }
  for (let n = count; n > 0;) {
    n--;
    const top = load<u64>(heap);
    const slot = <u32> top;
    store<u32>(outSlots + (<usize> n << 2), slot);
    // One NaN bit pattern on every runtime, as the JS kernels write (hardware NaNs may carry a sign bit).
    let x = load<f32>(scores + (<usize> slot << 2));
    if (x != x) x = reinterpret<f32>(0x7fc00000);
    store<f32>(outScores + (<usize> n << 2), x);
    siftDown64(heap, n, load<u64>(heap + (<usize> n << 3)));
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
