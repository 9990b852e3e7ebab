/**
 * Vectors as field values. The data model has no float array, so a vector is
 * stored as bytes: its f32 components little-endian, 4 bytes each (a
 * `Uint8Array` of `4 × dim` bytes), which `get` returns as it returns any
 * bytes and {@link decodeVector} turns back into a `Float32Array`. A `put`
 * to an indexed field takes a `Float32Array`, an array of numbers, or those
 * bytes; anything of the wrong dimension, or with a component that is not a
 * finite f32, is refused before anything is stored.
 *
 * Foreign ops are not refused (convergence comes first: every replica must
 * store what the others store): a stored value that is not a valid vector of
 * the index's dimension is simply not indexed ({@link vectorFromEncoded}).
 *
 * @module
 */
import type { Store } from "../store.ts";
import type { QueryMeter } from "../query_budget.ts";

/** Most components of an indexed vector (a value is at most 1 MiB; this keeps one at 256 KiB). */
export const MAX_DIM = 65_536;

/**
 * The components of `bytes`, a vector as `get` returns an indexed field's
 * value (little-endian f32, 4 bytes each). Throws `RangeError` unless the
 * length is a multiple of 4.
 *
 * @example
 * ```ts
 * import { decodeVector, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.createIndex({ field: "embedding", dim: 3 });
 * await db.put("doc", { embedding: [0.5, -1, 2] });
 * const { embedding } = (await db.get("doc"))!;
 * console.log(decodeVector(embedding as Uint8Array)); // Float32Array(3) [ 0.5, -1, 2 ]
 * await db.close();
 * ```
 */
export function decodeVector(bytes: Uint8Array): Float32Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("decodeVector takes a Uint8Array");
  if (bytes.length % 4 !== 0) {
    throw new RangeError(`A vector's bytes come 4 per component; ${bytes.length} bytes are not`);
  }
  const out = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/**
 * `v` as the f32 components of a `dim`-dimensional vector: a `Float32Array`,
 * an array of numbers, or (`bytesToo`) the stored bytes. Throws `TypeError`
 * for another kind of value, `RangeError` for another dimension or a
 * component that is not a finite f32; messages start with `what`.
 */
export function toVector(v: unknown, dim: number, what: string, bytesToo: boolean): Float32Array {
  let out: Float32Array;
  if (v instanceof Float32Array) out = v;
  else if (Array.isArray(v)) {
    if (v.length !== dim) throw wrongDim(what, dim, v.length);
    out = new Float32Array(dim);
    for (let i = 0; i < dim; i++) {
      const x = v[i];
      if (typeof x !== "number") throw new TypeError(`${what}: component ${i} is not a number`);
      out[i] = x;
    }
  } else if (bytesToo && v instanceof Uint8Array) {
    if (v.length !== 4 * dim) {
      throw new RangeError(`${what}: ${v.length} bytes are not a vector of ${dim} f32 components`);
    }
    out = decodeVector(v);
  } else {
    throw new TypeError(
      `${what} must be a Float32Array or an array of ${dim} numbers${bytesToo ? " (or its bytes)" : ""}`,
    );
  }
  if (out.length !== dim) throw wrongDim(what, dim, out.length);
  for (let i = 0; i < dim; i++) {
    if (!Number.isFinite(out[i])) {
      const given = Array.isArray(v) ? v[i] : out[i];
      throw new RangeError(`${what}: component ${i} is ${given}, not a finite 32-bit float`);
    }
  }
  return out;
}

function wrongDim(what: string, dim: number, got: number): RangeError {
  return new RangeError(`${what}: the index takes ${dim} components, got ${got}`);
}

/** The stored bytes of vector `v` (little-endian f32). */
export function vectorBytes(v: Float32Array): Uint8Array {
  const out = new Uint8Array(4 * v.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(4 * i, v[i], true);
  return out;
}

/**
 * Reads the vector of `dim` components held by `encoded` (a stored value's
 * canonical encoding: MessagePack bin 8, 16 or 32) into `out`. False, with
 * `out` left in any state, when it holds something else: another type,
 * another length, or a component that is not finite (a foreign op's value,
 * stored but not indexed).
 */
export function vectorFromEncoded(encoded: Uint8Array, dim: number, out: Float32Array): boolean {
  const bytes = 4 * dim, n = encoded.length, t = encoded[0];
  let at: number;
  if (t === 0xc4 && n === bytes + 2 && encoded[1] === bytes) at = 2;
  else if (t === 0xc5 && n === bytes + 3 && ((encoded[1] << 8) | encoded[2]) === bytes) at = 3;
  else if (t === 0xc6 && n === bytes + 5) at = 5;
  else return false;
  const view = new DataView(encoded.buffer, encoded.byteOffset + at, bytes);
  if (at === 5 && new DataView(encoded.buffer, encoded.byteOffset + 1, 4).getUint32(0) !== bytes) {
    return false;
  }
  for (let i = 0; i < dim; i++) {
    const x = view.getFloat32(4 * i, true);
    if (!Number.isFinite(x)) return false;
    out[i] = x;
  }
  return true;
}

/**
 * `data` (a put's object) with every array and `Float32Array` in it or its
 * nested plain objects replaced by `fn(value)`: copies of the objects that
 * change. For those who cannot know which fields are indexed (the HTTP
 * client, the CLI before it opens the database): they check the rest of a
 * put as the library does and send vectors on, for the database to judge.
 */
export function mapVectors(data: unknown, fn: (v: Float32Array | unknown[]) => unknown, depth = 0): unknown {
  if (typeof data !== "object" || data === null || depth > 64) return data;
  const proto = Object.getPrototypeOf(data);
  if (proto !== Object.prototype && proto !== null) return data;
  let out = data as Record<string, unknown>;
  for (const [key, v] of Object.entries(data)) {
    const next = v instanceof Float32Array || Array.isArray(v) ? fn(v) : mapVectors(v, fn, depth + 1);
    if (next !== v) {
      if (out === data) out = { ...data };
      out[key] = next;
    }
  }
  return out;
}

/** Keys read per store call by {@link eachStoredVector}. */
const READ_BATCH = 1024;

/**
 * Calls `each` with the vector in `field` of every soul of `souls` that has
 * one, read from the store (`Store.readFields`, a batch at a time); for a
 * stored value that is not a vector (a text, indexed through `embed`: its
 * vector is not stored) with `held(soul)`, the index's own vector, when there
 * is one. Each read counts as a node read on `meter`, and the work yields
 * when the meter says so; `check` throws once the database is closed. The
 * vector given to `each` is only valid during the call.
 */
export async function eachStoredVector(
  store: Store,
  field: string,
  dim: number,
  souls: readonly string[],
  held: (soul: string) => Float32Array | undefined,
  meter: QueryMeter,
  check: () => void,
  each: (soul: string, v: Float32Array) => void,
): Promise<void> {
  const scratch = new Float32Array(dim);
  for (let at = 0; at < souls.length; at += READ_BATCH) {
    const part = souls.slice(at, at + READ_BATCH);
    const records = await store.readFields(part.map((soul) => ({ soul, field })));
    check();
    for (let i = 0; i < part.length; i++) {
      meter.visit();
      const r = records[i];
      if (r !== undefined) {
        if (vectorFromEncoded(r.value, dim, scratch)) each(part[i], scratch);
        else {
          const v = held(part[i]);
          if (v !== undefined) each(part[i], v);
        }
      }
      if (meter.spend(1)) {
        await meter.pause();
        check();
      }
    }
  }
}
