/**
 * The item id of a record: what range-based set reconciliation compares.
 *
 * Item id: the first 16 bytes of SHA-256 over
 * `u32 len(soul) ‖ soul ‖ u32 len(field) ‖ field ‖ stateHi ‖ stateLo ‖ actorHi ‖ actorLo ‖ value`
 * (UTF-8 strings, big-endian u32 words, `value` the canonical encoded value).
 * The signature is not part of the id: two records that differ only in their
 * signature are the same write. With 128-bit ids, the chance that any two of
 * n distinct records collide is about n² / 2^129 (≈ 2^-89 for a million
 * records); a collision would only make two different records look equal to
 * reconciliation, and a writer able to find SHA-256 prefix collisions could
 * at worst hide its own writes.
 *
 * @module
 */
import type { Kernels } from "../kernels/types.ts";
import type { FieldRecord } from "../store.ts";

/** Bytes of an item id. */
export const ID_BYTES = 16;

const utf8 = new TextEncoder();

/**
 * Item ids of `records`, 16 bytes each back to back, computed with one
 * `sha256Batch` call.
 */
export function itemIds(kernels: Kernels, records: readonly FieldRecord[]): Uint8Array {
  const n = records.length;
  if (n === 0) return new Uint8Array(0);
  let cap = 64 * n;
  for (const r of records) cap += r.value.length;
  let buf = new Uint8Array(cap);
  let view = new DataView(buf.buffer);
  const ends = new Uint32Array(n);
  let pos = 0;
  const grow = (need: number): void => {
    if (pos + need <= buf.length) return;
    const next = new Uint8Array(Math.max(buf.length * 2, pos + need));
    next.set(buf.subarray(0, pos));
    buf = next;
    view = new DataView(buf.buffer);
  };
  const str = (s: string): void => {
    grow(4 + 3 * s.length);
    const { written } = utf8.encodeInto(s, buf.subarray(pos + 4));
    view.setUint32(pos, written);
    pos += 4 + written;
  };
  for (let i = 0; i < n; i++) {
    const r = records[i];
    str(r.soul);
    str(r.field);
    grow(16 + r.value.length);
    view.setUint32(pos, r.stateHi);
    view.setUint32(pos + 4, r.stateLo);
    view.setUint32(pos + 8, r.actorHi);
    view.setUint32(pos + 12, r.actorLo);
    buf.set(r.value, pos + 16);
    pos += 16 + r.value.length;
    ends[i] = pos;
  }
  const digests = kernels.sha256Batch(buf.subarray(0, pos), ends);
  const out = new Uint8Array(ID_BYTES * n);
  for (let i = 0; i < n; i++) out.set(digests.subarray(32 * i, 32 * i + ID_BYTES), ID_BYTES * i);
  return out;
}
