/**
 * HAM merge: which of two writes of the same field wins.
 *
 * The higher state (hybrid logical clock) wins; equal states are broken by
 * the higher value hash (first 8 bytes of SHA-256 of the encoded value),
 * then by the higher actor id; a write equal in all three to the stored one
 * changes nothing. This is a total order on writes, so merging is
 * commutative, associative and idempotent: every delivery order converges.
 *
 * @example
 * ```ts
 * import { wins } from "./merge.ts";
 * import { createJsKernels } from "./kernels/js.ts";
 * const k = createJsKernels();
 * const a = { soul: "s", field: "f", value: new Uint8Array([1]), sh: 1, sl: 0, ah: 0, al: 1 };
 * const b = { ...a, sl: 1 };
 * console.log(wins(b, a, k), wins(a, b, k)); // true false
 * ```
 *
 * @module
 */
import type { Kernels, MergeBatch } from "./kernels/types.ts";
import type { FieldRecord } from "../storage/store.ts";

/** Batches of at least this many contested fields are decided by the merge kernel; smaller ones in plain JS. */
export const KERNEL_MERGE_MIN = 64;

/** First 8 bytes of SHA-256 of encoded value bytes, as two big-endian 32-bit words. */
export function valueHash(kernels: Kernels, value: Uint8Array): [number, number] {
  const h = kernels.sha256(value);
  return [
    ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0,
    ((h[4] << 24) | (h[5] << 16) | (h[6] << 8) | h[7]) >>> 0,
  ];
}

/** Whether write `b` beats write `a` of the same field. */
export function wins(b: FieldRecord, a: FieldRecord, kernels: Kernels): boolean {
  if (b.sh !== a.sh) return b.sh > a.sh;
  if (b.sl !== a.sl) return b.sl > a.sl;
  const [bh, bl] = valueHash(kernels, b.value), [ah, al] = valueHash(kernels, a.value);
  if (bh !== ah) return bh > ah;
  if (bl !== al) return bl > al;
  if (b.ah !== a.ah) return b.ah > a.ah;
  return b.al > a.al;
}

/** The winner of two writes of the same field (either argument order gives the same result). */
export function merge(a: FieldRecord, b: FieldRecord, kernels: Kernels): FieldRecord {
  return wins(b, a, kernels) ? b : a;
}

/**
 * Decides many `[incoming, stored]` pairs in one kernel call: `out[i] === 1`
 * when the incoming write of pair `i` wins. Value hashes are computed only
 * for pairs with equal states, the only ones they can decide.
 */
export function mergeBatch(
  kernels: Kernels,
  pairs: readonly (readonly [FieldRecord, FieldRecord])[],
): Uint8Array {
  const batch = reusableBatch(kernels, pairs.length);
  const { a, b } = batch;
  for (let i = 0; i < pairs.length; i++) {
    const [r, cur] = pairs[i];
    a.hlcHi[i] = cur.sh, a.hlcLo[i] = cur.sl, a.actorHi[i] = cur.ah, a.actorLo[i] = cur.al;
    b.hlcHi[i] = r.sh, b.hlcLo[i] = r.sl, b.actorHi[i] = r.ah, b.actorLo[i] = r.al;
    if (cur.sh === r.sh && cur.sl === r.sl) {
      [a.hashHi[i], a.hashLo[i]] = valueHash(kernels, cur.value);
      [b.hashHi[i], b.hashLo[i]] = valueHash(kernels, r.value);
    } else {
      a.hashHi[i] =
        a.hashLo[i] =
        b.hashHi[i] =
        b.hashLo[i] =
          0;
    }
  }
  return kernels.merge(batch, pairs.length).slice();
}

/** One merge batch per kernel set, replaced by a larger one when a bigger batch comes. */
const batches = new WeakMap<Kernels, MergeBatch>();

function reusableBatch(kernels: Kernels, n: number): MergeBatch {
  let batch = batches.get(kernels);
  if (!batch || batch.capacity < n) {
    batch?.dispose();
    batch = kernels.createMergeBatch(Math.max(n, 2 * (batch?.capacity ?? 0), 1024));
    batches.set(kernels, batch);
  }
  return batch;
}
