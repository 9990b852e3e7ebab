/**
 * Checks every engine applies to what it is asked to commit, so that all
 * engines refuse the same malformed batches with the same errors; and the
 * few answers every engine gives the same way (a closed store's error, where
 * a `list` starts).
 *
 * @module
 */
import { compareCodePoints } from "../core/order.ts";
import type { ChangesOptions, CommitBatch, DeferOp, FieldRecord, ListOptions } from "../core/store.ts";

/** The error of any call to a closed store. */
export function closedError(): Error {
  return new Error("The store is closed");
}

/**
 * Where a `list` starts: past the cursor `after` when it is not before the
 * prefix (`past`: the start itself is excluded), else at the prefix.
 */
export function listStart(options: ListOptions): { from: string; past: boolean } {
  const { prefix = "", after } = options;
  return after !== undefined && compareCodePoints(after, prefix) >= 0
    ? { from: after, past: true }
    : { from: prefix, past: false };
}

/** Throws unless record `i` of a batch is well formed. */
export function checkRecord(r: FieldRecord, i: number): void {
  if (typeof r.soul !== "string" || typeof r.field !== "string") {
    throw new TypeError(`Record ${i}: soul and field must be strings`);
  }
  if (!(r.value instanceof Uint8Array)) {
    throw new TypeError(`Record ${i} (${r.soul}/${r.field}): value must be a Uint8Array`);
  }
  if (
    (r.stateHi >>> 0) !== r.stateHi || (r.stateLo >>> 0) !== r.stateLo || (r.actorHi >>> 0) !== r.actorHi ||
    (r.actorLo >>> 0) !== r.actorLo
  ) {
    throw new RangeError(
      `Record ${i} (${r.soul}/${r.field}): state and actor halves must be unsigned 32-bit integers`,
    );
  }
  if (r.sig !== undefined && !(r.sig instanceof Uint8Array)) {
    throw new TypeError(`Record ${i} (${r.soul}/${r.field}): sig must be a Uint8Array`);
  }
}

/** Throws unless a deferred op is well formed. */
export function checkDeferred(d: DeferOp): void {
  if (!Number.isFinite(d.due) || !(d.op instanceof Uint8Array)) {
    throw new TypeError("A deferred op needs a finite due time and its encoding as a Uint8Array");
  }
  if (d.source !== undefined && typeof d.source !== "string") {
    throw new TypeError("A deferred op's source must be a string");
  }
}

/** The metadata key under which an engine may keep its count of live nodes (`Store.countLive`): not for batches. */
export const LIVE_NODES_KEY = "nodes.live";

/** Throws unless a metadata value is a string and its key is not one the engines keep for themselves. */
export function checkMeta(key: string, value: unknown): void {
  if (key === LIVE_NODES_KEY) throw new RangeError(`Meta key ${key} is kept by the store itself`);
  if (typeof value !== "string") throw new TypeError(`Meta value of ${key} must be a string`);
}

/** Checks a whole batch up front (for engines that cannot roll back). */
export function checkBatch(batch: CommitBatch): void {
  const { records, defer, meta } = batch;
  if (records !== undefined) { for (let i = 0; i < records.length; i++) checkRecord(records[i], i); }
  if (defer !== undefined) { for (let i = 0; i < defer.length; i++) checkDeferred(defer[i]); }
  if (meta !== undefined) { for (const key of Object.keys(meta)) checkMeta(key, meta[key]); }
}

/** Throws unless the arguments of `Store.changes` are sound. */
export function checkChanges(after: number, options: ChangesOptions): void {
  if (!(after >= 0)) throw new RangeError(`changes: after must be a seq (≥ 0), got ${after}`);
  if (!(options.limit >= 1)) throw new RangeError(`changes: limit must be at least 1, got ${options.limit}`);
  if (options.cursor !== undefined && !(options.cursor >= after)) {
    throw new RangeError(`changes: cursor must be a seq ≥ after, got ${options.cursor}`);
  }
}
