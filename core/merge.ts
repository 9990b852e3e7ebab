/**
 * HAM merge: which of two writes of the same field wins, and which records
 * of a drain of the commit queue win against the store.
 *
 * The higher state (hybrid logical clock) wins; equal states are broken by
 * the higher value hash (first 8 bytes of SHA-256 of the encoded value),
 * then by the higher actor id; a write equal in all three to the stored one
 * changes nothing. This is a total order on writes, so merging is
 * commutative, associative and idempotent: every delivery order converges.
 *
 * Merge planning (the second half): a drain reads the stored records of the
 * keys its foreign ops touch ({@link planReads}), then keeps the records that
 * beat them ({@link mergePlanned}; {@link winners} for the usual drain of one
 * batch with no key twice, matched by position without maps). Local writes
 * always win: their states are ticked past everything this replica has seen.
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
import type { FieldKey, FieldRecord, StoredRecord } from "./store.ts";

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

// ---------------------------------------------------------------- planning a drain

/** What merge planning needs of one job of a drain: its records, and whether they are local writes. */
export interface MergeJob {
  readonly local: boolean;
  readonly records: readonly FieldRecord[];
}

/** What a drain reads before merging (see {@link planReads}). */
export interface ReadPlan {
  /** The keys to read: records (their soul and field). */
  readonly pairs: readonly FieldKey[];
  /** Per job, its greatest record per key (foreign jobs only); absent for a single batch of unique keys. */
  readonly bests?: (Map<string, FieldRecord> | undefined)[];
  /** The key of each pair; absent for a single batch of unique keys (matched by position). */
  readonly keys?: string[];
}

/** A map key for (soul, field): the soul's length first, so no two pairs share a key. */
export const keyOf = (soul: string, field: string): string => `${soul.length}:${soul}${field}`;

/**
 * Whether some (soul, field) occurs twice in `records`. Cheap for the usual
 * shape of a batch — each soul's fields together — without building keys:
 * souls go in a set, fields are compared within each run of one soul. A soul
 * that comes back after another counts as a repeat (the caller then dedupes).
 */
export function repeatsKeys(records: readonly FieldKey[]): boolean {
  if (records.length < 2) return false;
  // While each run's soul sorts after the one before (a batch in soul order, as exports of new
  // nodes mostly are), no soul can come again: the set of souls is needed only past that.
  let souls: Set<string> | undefined;
  let last = "";
  for (let i = 0; i < records.length;) {
    const soul = records[i].soul;
    if (souls === undefined && (i === 0 || soul > last)) last = soul;
    else {
      if (souls === undefined) {
        souls = new Set();
        for (let k = 0; k < i; k++) souls.add(records[k].soul);
      }
      if (souls.has(soul)) return true;
      souls.add(soul);
    }
    let end = i + 1;
    while (end < records.length && records[end].soul === soul) end++;
    // Fields in ascending order (as a node's fields mostly come) cannot repeat; else compared pairwise.
    let ascending = true;
    for (let a = i + 1; a < end && ascending; a++) ascending = records[a - 1].field < records[a].field;
    if (ascending) {
      i = end;
      continue;
    }
    if (end - i <= 16) {
      for (let a = i; a < end; a++) {
        for (let b = a + 1; b < end; b++) if (records[a].field === records[b].field) return true;
      }
    } else {
      const fields = new Set<string>();
      for (let a = i; a < end; a++) {
        if (fields.has(records[a].field)) return true;
        fields.add(records[a].field);
      }
    }
    i = end;
  }
  return false;
}

/**
 * What a drain must read before merging: the stored records of every key a
 * foreign op touches. One foreign batch with no key twice (the common
 * foreign drain) needs no maps: its records are matched by position.
 */
export function planReads(jobs: readonly MergeJob[], kernels: Kernels): ReadPlan {
  if (jobs.length === 1 && !jobs[0].local && !repeatsKeys(jobs[0].records)) {
    return { pairs: jobs[0].records }; // the records are their own keys
  }
  // Per foreign job, the greatest op per key (keyed once, reused when merging).
  let bests: (Map<string, FieldRecord> | undefined)[] | undefined;
  let maps = 0;
  for (let i = 0; i < jobs.length; i++) {
    if (jobs[i].local) continue;
    bests ??= new Array(jobs.length);
    bests[i] = bestPerKey(jobs[i].records, kernels);
    maps++;
  }
  const keys: string[] = [];
  const pairs: FieldRecord[] = [];
  if (bests === undefined) return { pairs, bests, keys }; // only local writes: every record wins
  let seen: Set<string> | undefined;
  for (const best of bests) {
    if (best === undefined) continue;
    if (maps > 1) seen ??= new Set();
    for (const [k, r] of best) {
      if (seen) {
        if (seen.has(k)) continue;
        seen.add(k);
      }
      keys.push(k);
      pairs.push(r);
    }
  }
  return { pairs, bests, keys };
}

/** The records of each job that win against `found` (the stored records of the plan's keys), in decision order. */
export function mergePlanned(
  jobs: readonly MergeJob[],
  plan: ReadPlan,
  found: readonly (StoredRecord | undefined)[],
  kernels: Kernels,
): FieldRecord[][] {
  const wonPerJob: FieldRecord[][] = new Array(jobs.length);
  const { bests, keys } = plan;
  if (keys === undefined) { // one foreign batch, each key once
    wonPerJob[0] = winners(jobs[0].records, found, kernels);
    return wonPerJob;
  }
  if (bests === undefined) {
    for (let i = 0; i < jobs.length; i++) wonPerJob[i] = jobs[i].records as FieldRecord[];
    return wonPerJob;
  }
  // Current winners of every key a foreign op touches.
  const current = new Map<string, FieldRecord>();
  for (let i = 0; i < found.length; i++) {
    const r = found[i];
    if (r) current.set(keys[i], r);
  }
  for (let i = 0; i < jobs.length; i++) {
    const best = bests[i];
    const won = best === undefined ? jobs[i].records as FieldRecord[] : mergeForeign(best, current, kernels);
    wonPerJob[i] = won;
    // Later foreign jobs of this drain merge against what won here.
    if (i < jobs.length - 1) { for (const r of won) current.set(keyOf(r.soul, r.field), r); }
  }
  return wonPerJob;
}

/** The records of one foreign batch with no key twice that beat `found`, their stored records by position. */
export function winners(
  records: readonly FieldRecord[],
  found: readonly (StoredRecord | undefined)[],
  kernels: Kernels,
): FieldRecord[] {
  let stored = 0;
  while (stored < found.length && found[stored] === undefined) stored++;
  if (stored === found.length) return records as FieldRecord[]; // nothing stored: every op wins outright
  const out: FieldRecord[] = [];
  const contested: [FieldRecord, FieldRecord][] = []; // [incoming, stored]
  for (let i = 0; i < records.length; i++) {
    const cur = found[i];
    if (!cur) out.push(records[i]); // nothing stored yet: the op wins outright
    else contested.push([records[i], cur]);
  }
  decide(contested, out, kernels);
  return out;
}

/**
 * The records of a drain of several jobs in commit order: each job's winners
 * in turn. A key may come more than once; its last record is the winner
 * (a later job's record for a key is only among its winners if it beat the
 * earlier ones, see {@link mergePlanned}), and stores keep the last record of
 * a key in a batch.
 */
export function commitOrder(won: readonly (readonly FieldRecord[])[]): FieldRecord[] {
  let total = 0;
  for (const w of won) total += w.length;
  const out: FieldRecord[] = new Array(total);
  let at = 0;
  for (const w of won) for (let i = 0; i < w.length; i++) out[at++] = w[i];
  return out;
}

/** Appends to `out` the incoming records of `contested` that beat the stored ones. */
function decide(contested: [FieldRecord, FieldRecord][], out: FieldRecord[], kernels: Kernels): void {
  if (contested.length < KERNEL_MERGE_MIN) {
    for (const [r, cur] of contested) if (wins(r, cur, kernels)) out.push(r);
  } else {
    const decided = mergeBatch(kernels, contested);
    for (let i = 0; i < contested.length; i++) if (decided[i] === 1) out.push(contested[i][0]);
  }
}

/** The greatest record per key of one foreign batch, in first-seen key order. */
function bestPerKey(records: readonly FieldRecord[], kernels: Kernels): Map<string, FieldRecord> {
  const best = new Map<string, FieldRecord>();
  for (const r of records) {
    const k = keyOf(r.soul, r.field);
    const prev = best.get(k);
    if (!prev || wins(r, prev, kernels)) best.set(k, r);
  }
  return best;
}

/**
 * The records of one foreign batch (its greatest op per key) that beat what
 * is stored (or already won earlier in this drain); large batches are
 * decided by the merge kernel.
 */
function mergeForeign(
  best: Map<string, FieldRecord>,
  current: Map<string, FieldRecord>,
  kernels: Kernels,
): FieldRecord[] {
  const out: FieldRecord[] = [];
  if (current.size === 0) { // nothing stored yet for any key: every op wins outright
    for (const r of best.values()) out.push(r);
    return out;
  }
  const contested: [FieldRecord, FieldRecord][] = []; // [incoming, stored]
  for (const [k, r] of best) {
    const cur = current.get(k);
    if (!cur) out.push(r); // nothing stored yet: the op wins outright
    else contested.push([r, cur]);
  }
  decide(contested, out, kernels);
  return out;
}
