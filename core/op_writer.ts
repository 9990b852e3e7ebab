/**
 * The op encoding of `op.ts` written straight from stored records: the
 * counterpart of `op_reader.ts`, for the paths that send what the store
 * holds (sync pushes, gossip of local commits).
 *
 * `encodeOps(records.map(recordToOp))` gives the same bytes but makes an op
 * per record on the way: its value decoded from the record's canonical
 * encoding only to be encoded again, its state and actor made hex strings
 * only to be parsed back into bytes. Here a record's value bytes are copied
 * as they are (a record holds its value's canonical encoding, which is what
 * `encodeOps` writes for it) and its state and actor words are written as
 * the two 8-byte bins. `tests/op_writer.test.ts` holds the two to the same
 * bytes.
 *
 * @module
 */
import { encodeParts, type PartWriter } from "./msgpack.ts";
import { OPS_FORMAT_VERSION } from "./op.ts";
import type { FieldRecord } from "./store.ts";

/**
 * Encodes `records[from, to)` as the ops they represent (`[1, op, op, ...]`),
 * exactly as `encodeOps` encodes those ops.
 */
export function encodeRecordsAsOps(
  records: readonly FieldRecord[],
  from = 0,
  to: number = records.length,
): Uint8Array {
  return encodeParts((w) => {
    w.arrayHeader(to - from + 1);
    w.value(OPS_FORMAT_VERSION);
    for (let i = from; i < to; i++) {
      const r = records[i];
      w.arrayHeader(r.sig ? 6 : 5);
      w.value(r.soul);
      w.value(r.field);
      const value = r.value;
      w.ensure(value.length);
      w.buf.set(value, w.pos);
      w.pos += value.length;
      words64(w, r.stateHi, r.stateLo);
      words64(w, r.actorHi, r.actorLo);
      if (r.sig) w.value(r.sig);
    }
  });
}

/** Two 32-bit words as a bin of 8 bytes, big-endian (the bytes of their 16 hex digits). */
function words64(w: PartWriter, hi: number, lo: number): void {
  w.binHeader(8);
  w.ensure(8);
  const b = w.buf, at = w.pos;
  b[at] = hi >>> 24, b[at + 1] = (hi >>> 16) & 0xff, b[at + 2] = (hi >>> 8) & 0xff, b[at + 3] = hi & 0xff;
  b[at + 4] = lo >>> 24, b[at + 5] = (lo >>> 16) & 0xff, b[at + 6] = (lo >>> 8) & 0xff, b[at + 7] = lo & 0xff;
  w.pos = at + 8;
}
