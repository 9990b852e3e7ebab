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
 * const a = { soul: "s", field: "f", value: new Uint8Array([1]), stateHi: 1, stateLo: 0, actorHi: 0, actorLo: 1 };
 * const b = { ...a, stateLo: 1 };
 * console.log(wins(b, a, k), wins(a, b, k)); // true false
 * ```
 *
 * @module
 */
import type { Kernels, MergeBatch } from "./kernels/types.ts";
import type { FieldRecord } from "./store.ts";

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
  if (b.stateHi !== a.stateHi) return b.stateHi > a.stateHi;
  if (b.stateLo !== a.stateLo) return b.stateLo > a.stateLo;
  const [bh, bl] = valueHash(kernels, b.value), [actorHi, actorLo] = valueHash(kernels, a.value);
  if (bh !== actorHi) return bh > actorHi;
  if (bl !== actorLo) return bl > actorLo;
  if (b.actorHi !== a.actorHi) return b.actorHi > a.actorHi;
  return b.actorLo > a.actorLo;
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
    a.hlcHi[i] = cur.stateHi,
      a.hlcLo[i] = cur.stateLo,
      a.actorHi[i] = cur.actorHi,
      a.actorLo[i] = cur.actorLo;
    b.hlcHi[i] = r.stateHi, b.hlcLo[i] = r.stateLo, b.actorHi[i] = r.actorHi, b.actorLo[i] = r.actorLo;
    if (cur.stateHi === r.stateHi && cur.stateLo === r.stateLo) {
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
