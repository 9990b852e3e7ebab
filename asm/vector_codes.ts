// Int8 codes of the resident matrix's rows, used only to skip rows: a row
// whose score provably cannot reach the current k-th best is not scored in
// f32. Results stay those of the plain f32 scan (asm/vector_topk.ts), bit for
// bit, because every row that can still enter the top k is scored exactly as
// before; the codes only decide which rows need not be.
//
// Why: the f32 scan of 10k × 384 reads 15.5 MB per query, and on the bench
// machine one core streams that from L3 in ~0.55 ms whatever the arithmetic
// (native SSE and AVX-512 loops alike). The code records are 416 B per row
// at 384 dimensions, 4.2 MB.
//
// A row x is stored as x = s·c + e (c in [-127, 127], s its scale, e the
// rounding residual), the query as q = t·d + f (d in [-127, 127] too, F ≥ ‖f‖,
// QN ≥ ‖q‖).
// Then |q·x − t·s·(d·c)| ≤ ‖q‖·‖e‖ + ‖f‖·‖s·c‖ (q·e and f·(s·c)), and the f32
// dot the exact scan computes differs from q·x by at most γ·‖q‖·‖x‖ +
// n·2^-149 (n = dimPad; γ bounds the rounding of n/4 + 3 chained f32
// operations, no overflow since ‖q‖² and ‖x‖² stay below 1e36; the subnormal
// term covers underflowing products). So with, beside the codes,
//   A ≥ ‖e‖ + (γ + 2^-39)·NXE,  NXE ≥ ‖x‖ + ‖e‖,  RX ≤ √xx,  XN2 ≤ ‖x‖²
// (xx the row's stored f32 squared norm, 2^-39 covering the f64 rounding of
// the bound itself), the scan's f32 dot is at most
//   ub = t·s·(d·c) + QN·A + F·NXE + n·2^-149.
// A row or query outside that range, or with a NaN or infinite component,
// gets a NaN bound: NaN compares false, so it is never skipped.

/**
 * Bytes of one code record for rows of `dimPad` floats: the codes padded to 16, then s, A, NXE, RX, XN2 (f32), the
 * live flag (u32, a copy of the row record's, so the scan reads no f32 row it skips), 8 spare.
 */
export function codeStride(dimPad: u32): usize {
  return codePad(dimPad) + 32;
}

/** Codes per row: `dimPad` rounded up to a multiple of 16. */
export function codePad(dimPad: u32): usize {
  return (<usize> dimPad + 15) & ~(<usize> 15);
}

/** Largest squared norm whose f32 arithmetic cannot overflow (see the file comment). */
const NORM2_MAX: f64 = 1e36;
/** Below this largest magnitude a vector is bounded by its norm alone (scales would underflow). */
const TINY: f64 = 1e-30;
/** Relative slack for the f64 sums of the bounds (≥ n·2^-53 for n ≤ 65536). */
const REL: f64 = 9.313225746154785e-10; // 2^-30
const U: f64 = 5.960464477539063e-8; // 2^-24, the f32 unit roundoff
const P20: f64 = 9.5367431640625e-7; // 2^-20
const P40: f64 = 9.094947017729282e-13; // 2^-40

/** `v` (≥ 0) rounded up to an f32. */
function up(v: f64): f32 {
  return <f32> (v * (1 + P20) + 1.1754943508222875e-38);
}

/** `v` (≥ 0) rounded down to an f32 (0 when tiny). */
function down(v: f64): f32 {
  return v < TINY ? 0 : <f32> (v * (1 - P20));
}

/** Writes the code record at `code` for the committed row at `rec` (`dimPad` floats, padding zeroed). */
export function rowCodes(rec: usize, dimPad: u32, code: usize): void {
  const n = <usize> dimPad, pad = codePad(dimPad);
  let m: f64 = 0, xx: f64 = 0;
  let finite = true;
  for (let i: usize = 0; i < n; i++) {
    const x = <f64> load<f32>(rec + (i << 2));
    if (x - x != 0) finite = false;
    m = max<f64>(m, abs<f64>(x));
    xx += x * x;
  }
  const meta = code + pad;
  if (!finite || xx >= NORM2_MAX) {
    for (let i: usize = 0; i < pad; i += 2) store<u8>(code + i, 128);
    store<f32>(meta, 0);
    store<f32>(meta, NaN, 4);
    store<f32>(meta, NaN, 8);
    store<f32>(meta, NaN, 12);
    store<f32>(meta, NaN, 16);
    store<u32>(meta, 1, 20);
    return;
  }
  const s: f64 = m < TINY ? 0 : <f64> <f32> (m / 127);
  let ee: f64 = 0;
  for (let i: usize = 0; i < pad; i++) {
    const x: f64 = i < n ? <f64> load<f32>(rec + (i << 2)) : 0;
    let c: f64 = 0;
    if (s != 0) c = min<f64>(127, max<f64>(-127, nearest<f64>(x / s)));
    store<u8>(code + i, <u8> (<i32> c + (i & 1 ? 0 : 128)));
    const e = x - s * c;
    ee += e * e;
  }
  const e = Math.sqrt(ee) * (1 + REL);
  const nxe = Math.sqrt(xx) * (1 + REL) + e;
  store<f32>(meta, <f32> s);
  store<f32>(meta, up(e + (gamma(dimPad) + 2 * P40) * nxe), 4);
  store<f32>(meta, up(nxe), 8);
  store<f32>(meta, down(Math.sqrt(<f64> load<f32>(rec + (n << 2)))), 12);
  store<f32>(meta, down(xx * (1 - REL)), 16);
  store<u32>(meta, 1, 20);
}

/** Relative bound γ of the rounding of the scan's f32 dot (and sum of squares) over `dimPad` floats. */
function gamma(dimPad: u32): f64 {
  return <f64> (dimPad + 8) * U * 1.01;
}

// The query's codes and bounds, set by queryCodes for one scan.
export let QOK = false; // whether rows may be skipped at all
export let QS: f64 = 0; // scale t
export let QC0: i32 = 0; // −128·Σ d over even dimensions: the offset of the even row codes
export let QN: f64 = 0; // ≥ ‖q‖
export let QF: f64 = 0; // ≥ ‖f‖
export let QN2: f64 = 0; // ≤ ‖q‖²
export let SQ: f64 = 0; // ≤ √qq, qq the query's f32 squared norm
export let GAMMA: f64 = 0; // gamma(dimPad)
export let TINYABS: f64 = 0; // underflow bound n·2^-149 (doubled)

/**
 * Writes the codes of the query at `q` (`dimPad` floats, padding zeroed) to
 * `qc` as codeDots4 reads them (per 16 dimensions, eight i16 W1 then eight
 * W2: 2·codePad(dimPad) bytes) and sets the query globals. |Σ d·c| ≤
 * codePad·127² < 2^31, so the integer dot is exact.
 */
export function queryCodes(q: usize, dimPad: u32, qc: usize, qq: f32): void {
  const n = <usize> dimPad, pad = codePad(dimPad);
  let m: f64 = 0, sum: f64 = 0;
  let finite = true;
  for (let i: usize = 0; i < n; i++) {
    const x = <f64> load<f32>(q + (i << 2));
    if (x - x != 0) finite = false;
    m = max<f64>(m, abs<f64>(x));
    sum += x * x;
  }
  QOK = finite && sum < NORM2_MAX;
  const dmax: f64 = 127;
  // An f32 scale keeps t·d (≤ 39 bits) and x − t·d exact in f64, as s·c and x − s·c are for rows.
  const t: f64 = QOK && m >= TINY ? <f64> <f32> (m / dmax) : 0;
  let ff: f64 = 0, even: i32 = 0;
  for (let i: usize = 0; i < pad; i += 2) {
    const x0: f64 = i < n ? <f64> load<f32>(q + (i << 2)) : 0;
    const x1: f64 = i + 1 < n ? <f64> load<f32>(q + (i << 2), 4) : 0;
    let d0: f64 = 0, d1: f64 = 0;
    if (t != 0) {
      d0 = min<f64>(dmax, max<f64>(-dmax, nearest<f64>(x0 / t)));
      d1 = min<f64>(dmax, max<f64>(-dmax, nearest<f64>(x1 / t)));
    }
    // Block of 16 dimensions at qc + 2·(i & ~15): lane (i & 15) / 2 of W1, then of W2.
    const lane = qc + ((i & ~15) << 1) + ((i & 15) << 0);
    store<i16>(lane, <i16> d0);
    store<i16>(lane, <i16> (d1 - 256 * d0), 16);
    even += <i32> d0;
    const f0 = x0 - t * d0, f1 = x1 - t * d1;
    ff += f0 * f0 + f1 * f1;
  }
  QC0 = -128 * even;
  QS = t;
  QN = Math.sqrt(sum) * (1 + REL);
  QF = Math.sqrt(ff) * (1 + REL);
  QN2 = sum * (1 - REL);
  SQ = Math.sqrt(<f64> qq) * (1 - P40);
  GAMMA = gamma(dimPad);
  TINYABS = <f64> n * 1.401298464324817e-45 * 2;
}

function hsum(a: v128): i32 {
  return (i32x4.extract_lane(a, 0) + i32x4.extract_lane(a, 1)) +
    (i32x4.extract_lane(a, 2) + i32x4.extract_lane(a, 3));
}

/** One row's step: the 16 codes at `c` against one block of query weights (see codeDots4). */
// @ts-ignore: decorator
function step(acc: v128, c: v128, w1: v128, w2: v128): v128 {
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(c, w1), i32x4.dot_i16x8_s(i16x8.shr_s(c, 8), w2)));
}

/**
 * Integer dots d·c of the query codes at `qc` with the four code records
 * from `c0` (`stride` apart), written as i32 to `out`. Read as i16 lanes, 16
 * codes are 256·c_odd + (c_even + 128): the even codes are stored offset to
 * unsigned, so `lane >> 8` is c_odd exactly and
 *   Σ lane·W1 + Σ (lane >> 8)·W2 = Σ c_even·d_even + Σ c_odd·d_odd + 128·Σ d_even
 * with W1 = d_even, W2 = d_odd − 256·d_even (queryCodes; |d| ≤ 127 keeps W2
 * in i16; the i32 sums may wrap, the result does not). One shift and two
 * pmaddwd per 16 codes: sign-extending the bytes instead costs three
 * shuffles, which all queue on one port on x86 (measured 5% slower per query).
 */
export function codeDots4(c0: usize, stride: usize, pad: usize, qc: usize, out: usize): void {
  const c1 = c0 + stride, c2 = c1 + stride, c3 = c2 + stride;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  for (let o: usize = 0; o < pad; o += 16) {
    const w1 = v128.load(qc + (o << 1)), w2 = v128.load(qc + (o << 1), 16);
    a0 = step(a0, v128.load(c0 + o), w1, w2);
    a1 = step(a1, v128.load(c1 + o), w1, w2);
    a2 = step(a2, v128.load(c2 + o), w1, w2);
    a3 = step(a3, v128.load(c3 + o), w1, w2);
  }
  store<i32>(out, hsum(a0) + QC0);
  store<i32>(out, hsum(a1) + QC0, 4);
  store<i32>(out, hsum(a2) + QC0, 8);
  store<i32>(out, hsum(a3) + QC0, 12);
}

/**
 * Whether the row with integer dot `idot` and code record meta at `meta`
 * provably scores no better than `kth` (a number; NaN never skips): for a
 * similarity an upper bound of its score is below `kth`, for l2 a lower
 * bound above it. Rows scanned in slot order lose ties to the kept rows
 * (lower slots), so "no better" suffices.
 */
export function skip(idot: i32, meta: usize, metric: u32, kth: f64): bool {
  const ub = QS * <f64> load<f32>(meta) * <f64> idot + QN * <f64> load<f32>(meta, 4) +
    QF * <f64> load<f32>(meta, 8) + TINYABS;
  if (metric == 1) {
    // The score is f32(d / den), den = sqrt(qq·xx) rounded in f64, d ≤ ub: below ub / (SQ·RX) up to
    // a few f64 roundings, which the factor covers. Only for a positive k-th (the usual case).
    return kth > 0 && ub * (1 + P40) < kth * SQ * <f64> load<f32>(meta, 12);
  }
  if (metric == 2) {
    // ‖q − x‖² = ‖q‖² + ‖x‖² − 2 q·x, less the f32 rounding of the scan's sum of squares; compared
    // with kth² rather than through a square root.
    const a = QN2 + <f64> load<f32>(meta, 16);
    const lower = ((a - 2 * ub) - (a + 2 * abs<f64>(ub)) * REL) * (1 - GAMMA) - TINYABS;
    return lower > kth * kth * (1 + P40);
  }
  return ub < kth;
}
