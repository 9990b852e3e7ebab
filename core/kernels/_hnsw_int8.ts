/**
 * Scalar quantization of an HNSW index (`quantize: "int8"`): each vector is
 * kept as int8 codes with one f32 scale per vector instead of its f32
 * components, a quarter of the bytes (384 dimensions: 384 B of codes and 8 B
 * of scale and residual where f32 takes 1,536 B). The wrapper
 * (`_hnsw_index.ts`) quantizes here, once for both twins, so the codes are
 * the same bytes everywhere; the engines only compute distances over them
 * (asm/hnsw_int8.ts, js/hnsw_int8.ts).
 *
 * Quantizing: for `cosine` the vector is first normalised (in f64); the
 * scale is `max |x_i| / 127` (rounded to f32) and code `i` is
 * `round(x_i / scale)`, so the largest component maps to ±127 and -128 is
 * never used. Beside the scale, a record keeps a bound on its residual,
 * `‖x − scale · codes‖` (rounded up), from which {@link errorBound} says how
 * far a quantized score can be from the f32 one: what an exact search needs
 * to know which candidates to re-score.
 *
 * @module
 */
import type { Metric } from "./types.ts";

/** 1 + 2^-20: the residual is stored rounded up (f32 rounding is within 2^-24). */
const UP = 1 + 2 ** -20;

/**
 * Writes the codes of `v` (`dimPad` bytes, padding zero) at byte `at` of
 * `u8`, then its scale and residual bound as f32 words behind them (`f32`
 * views the same bytes; `at` is a multiple of 4). Returns the sum of the
 * squared codes.
 */
export function quantizeInto(
  v: Float32Array,
  cosine: boolean,
  u8: Uint8Array,
  f32: Float32Array,
  at: number,
  dimPad: number,
): number {
  const dim = v.length;
  let norm = 1;
  if (cosine) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += v[i] * v[i];
    norm = Math.sqrt(ss);
  }
  let max = 0;
  if (norm > 0) { for (let i = 0; i < dim; i++) max = Math.max(max, Math.abs(v[i] / norm)); }
  const scale = Math.fround(max / 127);
  let sum = 0, r2 = 0;
  for (let i = 0; i < dim; i++) {
    const x = norm > 0 ? v[i] / norm : 0;
    let c = scale > 0 ? Math.round(x / scale) : 0;
    if (c > 127) c = 127;
    else if (c < -127) c = -127;
    u8[at + i] = c & 0xff;
    sum += c * c;
    const e = x - scale * c;
    r2 += e * e;
  }
  u8.fill(0, at + dim, at + dimPad);
  f32[(at + dimPad) >>> 2] = scale;
  f32[(at + dimPad + 4) >>> 2] = Math.fround(Math.sqrt(r2) * UP);
  return sum;
}

/**
 * A bound on `|f32 score − quantized score|` for a query (norm `qNorm`,
 * residual bound `qResidual` — of the normalised query for cosine) against
 * any vector whose residual bound is at most `maxResidual` and whose
 * dequantized norm is at most `maxNorm`, including the f32 rounding of both
 * scores (the `eps` terms, generous: `(dim + 16) · 2^-21` relative).
 *
 * With `q = q̂ + e_q` and `x = x̂ + e_x`: `q·x − q̂·x̂ = q·e_x + e_q·x̂`, so
 * dot is off by at most `‖q‖ r_x + r_q ‖x̂‖`; l2 distances by at most
 * `r_q + r_x` (triangle inequality); cosine, on normalised vectors whose
 * dequantized norms are within r of 1, by at most `2 (r_q + r_x)`.
 */
export function errorBound(
  metric: Metric,
  dim: number,
  qNorm: number,
  qResidual: number,
  maxResidual: number,
  maxNorm: number,
): number {
  const eps = (dim + 16) * 2 ** -21;
  if (metric === "cosine") return 2 * (maxResidual + qResidual) + eps;
  const xNorm = maxNorm + maxResidual;
  if (metric === "l2") return maxResidual + qResidual + eps * (qNorm + xNorm);
  return qNorm * maxResidual + qResidual * maxNorm + eps * qNorm * xNorm;
}
