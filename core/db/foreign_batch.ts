/**
 * How a checked foreign batch is held until it is committed: as records (one
 * object per op, the rule), or — a large batch on a store that commits in
 * parts — in columns, with no object per op ({@link OpsInParts}), made into
 * records a part at a time as it is committed (see {@link PARTS_MIN}).
 *
 * Shared by the intake that checks a batch (apply.ts) and the commit queue
 * that writes it (commit_queue.ts), so neither imports the other.
 *
 * @module
 */
import { copyValueBytes } from "../value_encoding.ts";
import type { FieldRecord } from "../store.ts";

/**
 * Foreign batches of at least this many ops go to a store that can commit in
 * parts (`SyncStore.beginParts`) {@link PART_OPS} records at a time:
 * records are made, read against the store, merged and written a part at a
 * time, in one transaction. A part's records die young (a batch of 1M ops
 * held as records survived several young collections, about a tenth of the
 * apply), and every pass over a part stays in the CPU's cache.
 */
export const PARTS_MIN = 32_768;
export const PART_OPS = 8_192;

/**
 * A large foreign batch, checked but not yet made into records, in columns
 * (no object per op): souls, fields, the values' encodings end to end, state
 * and actor words, sigs. A copy, taken while checking: the caller may change
 * its ops or its array once `applyOps` has returned. Ops marked in
 * `deferred` are stored aside instead.
 */
export interface OpsInParts {
  readonly n: number;
  readonly souls: string[];
  readonly fields: string[];
  /** The values' encodings, op after op; op `i`'s ends at `valueEnd[i]`. */
  readonly values: Uint8Array;
  readonly valueEnd: Uint32Array;
  readonly stateHi: Uint32Array;
  readonly stateLo: Uint32Array;
  readonly actorHi: Uint32Array;
  readonly actorLo: Uint32Array;
  readonly sigs: (Uint8Array | undefined)[] | undefined;
  readonly deferred: Uint8Array | undefined;
}

/** The record of a checked foreign op: its value's encoding, its state and actor words. */
export function foreignRecord(
  soul: string,
  field: string,
  value: Uint8Array,
  stateHi: number,
  stateLo: number,
  actorHi: number,
  actorLo: number,
  sig: Uint8Array | undefined,
): FieldRecord {
  return sig
    ? { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig }
    : { soul, field, value, stateHi, stateLo, actorHi, actorLo };
}

/** Op `i` of a batch in columns as a record. */
export function columnRecord(c: OpsInParts, i: number): FieldRecord {
  const value = copyValueBytes(c.values, i === 0 ? 0 : c.valueEnd[i - 1], c.valueEnd[i]);
  return foreignRecord(
    c.souls[i],
    c.fields[i],
    value,
    c.stateHi[i],
    c.stateLo[i],
    c.actorHi[i],
    c.actorLo[i],
    c.sigs?.[i],
  );
}
