/**
 * XOR distance (Kademlia) in the `js` kernels: `xorSort` and `bucketIndex`
 * over packed ids, and the id-as-words helpers the id table shares.
 *
 * Ids are read as eight big-endian 32-bit words, so a distance is eight XORs
 * and comparisons stay on small integers (no BigInt, no byte loops).
 *
 * @module
 */
import { checkId, checkIds } from "../_check.ts";
import { ID_BYTES } from "../types.ts";

/** 32-bit words per id. */
export const ID_WORDS = ID_BYTES / 4;

/** Largest N for which `xorSort` packs (first distance word, index) exactly into one f64 sort key. */
const PACKED_SORT_MAX = 2 ** 21;

/** Reads the 32-bit big-endian word at `off` of `b` (any offset; result is a signed int32). */
export function wordBE(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}

/** Reads the 8 big-endian words of the id at `off` of `src` into `dst[at..at + 8)`. */
export function readId(src: Uint8Array, off: number, dst: Int32Array, at: number): void {
  for (let w = 0; w < ID_WORDS; w++, off += 4) dst[at + w] = wordBE(src, off);
}

export function xorSort(ids: Uint8Array, target: Uint8Array): Uint32Array {
  const n = checkIds(ids);
  checkId(target, "target");
  const order = new Uint32Array(n);
  if (n === 0) return order;
  const t = new Int32Array(ID_WORDS);
  readId(target, 0, t, 0);

  /** Orders two indices by the remaining distance bytes (after the first word), then by index. */
  const compareFrom = (word: number) => (x: number, y: number): number => {
    for (let w = word; w < ID_WORDS; w++) {
      const dx = (wordBE(ids, x * ID_BYTES + w * 4) ^ t[w]) >>> 0;
      const dy = (wordBE(ids, y * ID_BYTES + w * 4) ^ t[w]) >>> 0;
      if (dx !== dy) return dx < dy ? -1 : 1;
    }
    return x - y;
  };

  if (n > PACKED_SORT_MAX) {
    for (let i = 0; i < n; i++) order[i] = i;
    return order.sort(compareFrom(0));
  }

  // Sort by the first distance word with the engine's native numeric sort:
  // the key `d0 * n + i` is an exact integer below 2^53 and ties break by index.
  const t0 = t[0];
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = ((wordBE(ids, i * ID_BYTES) ^ t0) >>> 0) * n + i;
  keys.sort();
  for (let i = 0; i < n; i++) order[i] = keys[i] % n;

  // Runs sharing the first distance word (rare for random ids) are refined on the other words.
  let compare: ((x: number, y: number) => number) | undefined;
  for (let i = 0; i < n;) {
    const d0 = (keys[i] - order[i]) / n;
    let j = i + 1;
    while (j < n && (keys[j] - order[j]) / n === d0) j++;
    if (j - i > 1) order.subarray(i, j).sort(compare ??= compareFrom(1));
    i = j;
  }
  return order;
}

export function bucketIndex(ids: Uint8Array, self: Uint8Array): Uint16Array {
  const n = checkIds(ids);
  checkId(self, "self");
  const s = new Int32Array(ID_WORDS);
  readId(self, 0, s, 0);
  const out = new Uint16Array(n);
  for (let i = 0, off = 0; i < n; i++, off += ID_BYTES) {
    let prefix = 256;
    for (let w = 0; w < ID_WORDS; w++) {
      const d = wordBE(ids, off + w * 4) ^ s[w];
      if (d !== 0) {
        prefix = w * 32 + Math.clz32(d);
        break;
      }
    }
    out[i] = prefix;
  }
  return out;
}
