/**
 * XOR distance (Kademlia) of the `wasm` kernels on the shared instance:
 * `xorSort` (a counting sort on the first distance bits, asm/xor.ts) and
 * `bucketIndex`.
 *
 * @module
 */
import { checkId, checkIds } from "../_check.ts";
import { ID_BYTES } from "../types.ts";
import { align, type Heap } from "./instance.ts";

/** Indices of the ids packed in `ids`, ordered by XOR distance to `target`, computed on `shared`. */
export function xorSort(shared: Heap, ids: Uint8Array, target: Uint8Array): Uint32Array {
  const n = checkIds(ids);
  checkId(target, "target");
  if (n === 0) return new Uint32Array(0);
  // About one id per bucket of the counting sort.
  const bits = Math.min(16, Math.max(1, Math.floor(Math.log2(n))));
  const t = shared.base, src = t + ID_BYTES, out = src + ids.length, d = align(out + 4 * n, 8);
  const tmp = d + 8 * n, tbl = tmp + 4 * n;
  shared.ensure(tbl + 4 * (2 ** bits + 1));
  const u8 = shared.u8;
  u8.set(target, t);
  u8.set(ids, src);
  shared.exports.xorSort(src, n, t, out, d, tmp, tbl, bits);
  return shared.u32.slice(out >>> 2, (out >>> 2) + n);
}

/** For each id packed in `ids`, the length of its common prefix with `self`, computed on `shared`. */
export function bucketIndex(shared: Heap, ids: Uint8Array, self: Uint8Array): Uint16Array {
  const n = checkIds(ids);
  checkId(self, "self");
  if (n === 0) return new Uint16Array(0);
  const me = shared.base, src = me + ID_BYTES, out = src + ids.length;
  shared.ensure(out + 2 * n);
  const u8 = shared.u8;
  u8.set(self, me);
  u8.set(ids, src);
  shared.exports.bucketIndex(src, n, me, out);
  return new Uint16Array(u8.slice(out, out + 2 * n).buffer);
}
