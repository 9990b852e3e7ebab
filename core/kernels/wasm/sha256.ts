/**
 * SHA-256 of the `wasm` kernels on the shared instance (asm/sha256.ts): one
 * input copied in whole, or streamed through a fixed window when long; many
 * inputs hashed in groups that fit the window.
 *
 * @module
 */
import { checkBatch, checkBytes } from "../_check.ts";
import type { Heap } from "./instance.ts";

/** Inputs of `sha256Batch` are hashed in groups of about this many bytes, so scratch stays small. */
const HASH_WINDOW = 1 << 20;
/** ...and of at most this many inputs (ends and digests take scratch too). */
const HASH_GROUP = 1 << 15;

/** SHA-256 of `data`, computed on `shared`. */
export function sha256(shared: Heap, data: Uint8Array): Uint8Array {
  checkBytes(data, "data");
  const exports = shared.exports, s = shared.base;
  const len = data.length;
  const out = s, p = s + 64;
  if (len <= HASH_WINDOW) {
    shared.ensure(p + len);
    shared.u8.set(data, p);
    exports.sha256(p, len, out);
    return shared.u8.slice(out, out + 32);
  }
  // Long input: stream whole blocks through a fixed window.
  const state = s + 32;
  shared.ensure(p + HASH_WINDOW);
  exports.sha256Init(state);
  let at = 0;
  for (const whole = len - (len % 64); at < whole;) {
    const take = Math.min(HASH_WINDOW, whole - at);
    shared.u8.set(data.subarray(at, at + take), p);
    exports.sha256Blocks(state, p, take / 64);
    at += take;
  }
  shared.u8.set(data.subarray(at), p);
  exports.sha256Final(state, p, len - at, len * 8, out);
  return shared.u8.slice(out, out + 32);
}

/** SHA-256 of each input of a batch (see `Kernels.sha256Batch`), computed on `shared`. */
export function sha256Batch(shared: Heap, data: Uint8Array, ends: Uint32Array, out?: Uint8Array): Uint8Array {
  const n = checkBatch(data, ends, out);
  const s = shared.base;
  const dst = out ?? new Uint8Array(32 * n);
  // Groups of consecutive inputs spanning about HASH_WINDOW bytes (or one larger input).
  for (let i = 0; i < n;) {
    const from = i === 0 ? 0 : ends[i - 1];
    let j = i + 1;
    while (j < n && j - i < HASH_GROUP && ends[j] - from <= HASH_WINDOW) j++;
    const last = ends[j - 1];
    if (j === i + 1 && last - from > HASH_WINDOW) {
      dst.set(sha256(shared, data.subarray(from, last)), 32 * i);
      i = j;
      continue;
    }
    const count = j - i;
    const e = s, digests = e + 4 * count, src = digests + 32 * count;
    shared.ensure(src + (last - from));
    const u32 = shared.u32;
    for (let x = 0, at = e >>> 2; x < count; x++) u32[at + x] = ends[i + x] - from;
    const u8 = shared.u8;
    u8.set(data.subarray(from, last), src);
    shared.exports.sha256Batch(src, e, count, digests);
    dst.set(u8.subarray(digests, digests + 32 * count), 32 * i);
    i = j;
  }
  return dst;
}
