/**
 * What the SQLite engine does when its disk is full, in numbers: how long
 * it waits before it tries a fold again (a back-off that doubles), how much
 * free space a fold needs before it is tried at all, and the error a write
 * gets while what is journaled cannot be folded. A fold that could not
 * finish would take the space the journal needs for new writes, so it is
 * not tried until the disk has room for it (storage/sqlite_journaled.ts).
 *
 * @module
 */
import { DiskFullError } from "./disk_full.ts";
import type { FrozenMemtable, Memtable } from "./memtable.ts";
import { DB_FILE } from "./sqlite_schema.ts";

/**
 * After a fold failed for want of space, the next is tried this long after
 * it at the earliest, doubling after each failure up to the maximum.
 */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
/** Free space a fold waits for beyond what its records take (see {@link foldNeed}). */
const FOLD_SLACK = 1 << 20;
/** Records written to SQLite per background fold step (one transaction, ~20–40 ms). */
export const FOLD_CHUNK = 8192;

/**
 * The back-off of folds while the disk is full: no fold is tried before
 * `retryAt` (ms since the epoch); `delay` is the wait after the next failure.
 */
export interface FullDisk {
  retryAt: number;
  delay: number;
}

/** A back-off with nothing to wait for yet. */
export function fullDisk(): FullDisk {
  return { retryAt: 0, delay: RETRY_MIN_MS };
}

/** Notes a failed fold at `now`: the next waits `delay`, and the one after twice as long. */
export function backOff(full: FullDisk, now: number): void {
  full.retryAt = now + full.delay;
  full.delay = Math.min(2 * full.delay, RETRY_MAX_MS);
}

/** What a part of {@link FOLD_CHUNK} records of `records` taking `bytes` takes. */
function partBytes(bytes: number, records: number): number {
  return records <= FOLD_CHUNK ? bytes : bytes * FOLD_CHUNK / records;
}

/**
 * Bytes of free space a fold of what is journaled may take, about: the
 * records once in the database file and, in parts of {@link FOLD_CHUNK}
 * records, twice a part's in the WAL (a fold on a full disk goes in parts),
 * plus {@link FOLD_SLACK}. Counted in the memtables' measure, which is more
 * than the records take on disk.
 */
export function foldNeed(active: Memtable, frozen: FrozenMemtable | undefined): number {
  const f = frozen;
  // What is left of the frozen memtable (its folded parts are in the database file already).
  const bytes = active.bytes + (f === undefined ? 0 : f.mem.bytes * f.left / f.mem.count);
  const records = active.count + (f?.left ?? 0);
  return bytes + 2 * partBytes(bytes, records) + FOLD_SLACK;
}

/** Whether `free` bytes (`undefined`: not known) leave room for the next part of the fold of `frozen`. */
export function roomForPart(frozen: FrozenMemtable | undefined, free: number | undefined): boolean {
  return frozen === undefined || free === undefined ||
    free >= 2 * partBytes(frozen.mem.bytes, frozen.mem.count) + FOLD_SLACK;
}

/**
 * The error of a write that needs what is journaled folded first, and
 * cannot: `need` bytes must be free in `dir`, `free` are (when known).
 */
export function heldError(dir: string, need: number, free: number | undefined): DiskFullError {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  return new DiskFullError(
    `Cannot fold the journal into ${DB_FILE} in ${dir}: the disk is full (about ${mib(need)} must be free${
      free === undefined ? "" : `, ${mib(free)} is`
    }); writes resume once space is freed`,
    { dir },
  );
}
