/**
 * Argument checks shared by both kernel implementations, so that they reject
 * the same inputs with the same errors.
 *
 * @module
 */
import { ID_BYTES, type Metric } from "./types.ts";

/** Throws `TypeError` unless `v` is a Uint8Array. */
export function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

/** Throws unless `id` is one 32-byte id. */
export function checkId(id: unknown, what = "id"): asserts id is Uint8Array {
  checkBytes(id, what);
  if (id.length !== ID_BYTES) {
    throw new RangeError(`${what} must be ${ID_BYTES} bytes, got ${id.length}`);
  }
}

/** Throws unless `ids` packs whole 32-byte ids; returns their count. */
export function checkIds(ids: unknown, what = "ids"): number {
  checkBytes(ids, what);
  if (ids.length % ID_BYTES !== 0) {
    throw new RangeError(`${what} length ${ids.length} is not a multiple of ${ID_BYTES}`);
  }
  return ids.length / ID_BYTES;
}

/** Throws `RangeError` unless `k` is a non-negative safe integer. */
export function checkCount(k: unknown, what = "k"): asserts k is number {
  if (typeof k !== "number" || !Number.isSafeInteger(k) || k < 0) {
    throw new RangeError(`${what} must be a non-negative integer, got ${String(k)}`);
  }
}

/** Throws unless `v` is a Float32Array of length `dim` (when given). */
export function checkVector(v: unknown, dim: number | undefined, what = "vector"): asserts v is Float32Array {
  if (!(v instanceof Float32Array)) throw new TypeError(`${what} must be a Float32Array`);
  if (dim !== undefined && v.length !== dim) {
    throw new RangeError(`${what} has length ${v.length}, expected ${dim}`);
  }
}

/** Throws `RangeError` unless every component of `v` is finite (no NaN, no ±Infinity). */
export function checkFinite(v: ArrayLike<number>, what: string): void {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x - x !== 0) throw new RangeError(`${what}[${i}] is ${x}: components must be finite numbers`);
  }
}

/** Throws `RangeError` unless the two vectors have equal length. */
export function checkPair(a: unknown, b: unknown): void {
  checkVector(a, undefined, "a");
  checkVector(b, a.length, "b");
}

/** Throws `RangeError` unless `metric` is a known metric. */
export function checkMetric(metric: unknown): asserts metric is Metric {
  if (metric !== "dot" && metric !== "cosine" && metric !== "l2") {
    throw new RangeError(`Unknown metric ${JSON.stringify(metric)}: use "dot", "cosine" or "l2"`);
  }
}

/** Throws `RangeError` unless `dim` is a positive integer no larger than 65536. */
export function checkDim(dim: unknown): asserts dim is number {
  if (typeof dim !== "number" || !Number.isInteger(dim) || dim < 1 || dim > 65536) {
    throw new RangeError(`dim must be an integer from 1 to 65536, got ${String(dim)}`);
  }
}

/** Throws unless `ends` describes inputs inside `data`; returns the input count. */
export function checkBatch(data: unknown, ends: unknown, out: unknown): number {
  checkBytes(data, "data");
  if (!(ends instanceof Uint32Array)) throw new TypeError("ends must be a Uint32Array");
  let prev = 0;
  for (let i = 0; i < ends.length; i++) {
    const e = ends[i];
    if (e < prev || e > data.length) {
      throw new RangeError(`ends[${i}] = ${e} is out of order or past the data (${data.length} bytes)`);
    }
    prev = e;
  }
  if (out !== undefined) {
    checkBytes(out, "out");
    if (out.length < ends.length * 32) {
      throw new RangeError(`out holds ${out.length} bytes, needs ${ends.length * 32}`);
    }
  }
  return ends.length;
}

/** Throws `RangeError` unless `length` fits in a merge batch of `capacity`. */
export function checkMergeLength(length: unknown, capacity: number): asserts length is number {
  checkCount(length, "length");
  if (length > capacity) throw new RangeError(`length ${length} exceeds the batch capacity ${capacity}`);
}

/** The error of any call on a disposed resident structure (`what`: "id table", "vector index", …). */
export function disposedError(what: string): TypeError {
  return new TypeError(`Cannot use the ${what}: it has been disposed`);
}
