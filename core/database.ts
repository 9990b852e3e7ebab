/**
 * The Database: the graph on top of a {@link Store}, with HAM merge on hybrid
 * logical clocks, group commit, deferred future ops, watches and queries.
 * Runtime-free: the store and kernels are injected (see `open` in mod.ts).
 *
 * Every mutation — local `put`/`delete` and foreign `applyOps` — goes through
 * one ordered write queue. The queue is drained in one store transaction per
 * drain (group commit), so concurrent writers share a commit while each
 * caller's promise still resolves only after its own data is committed.
 *
 * Ops stamped too far ahead wait in the store's deferred table, bounded: a
 * horizon past which they are refused, quotas in all and per source, read
 * by due time only (see "Deferred ops" in docs/ARCHITECTURE.md).
 *
 * @module
 */
import {
  Clock,
  DEFAULT_MAX_DRIFT_MS,
  formatHlc,
  type Hlc,
  hlcFromWords,
  hlcMs,
  hlcWords,
  wordsMs,
} from "./clock.ts";
import type { Kernels } from "./kernels/types.ts";
import {
  actorWords,
  checkOpWords,
  decodeOpRecords,
  decodeOps,
  encodeOps,
  isHex64,
  type Op,
  opToRecord,
  OpWords,
  recordToOp,
} from "./op.ts";

export { opToRecord, recordToOp };
import { ByteWriter } from "./byte_writer.ts";
import { checkField, checkSoul, flattenFields, isLink, type NodeData, type Value } from "./value.ts";
import {
  copyValueBytes,
  decodeValue,
  encodeValue,
  isTombstone,
  nodeData,
  setField,
  TOMBSTONE,
  writeValue,
} from "./value_encoding.ts";
import {
  type CommitBatch,
  type DeferOp,
  type DeferredOp,
  type FieldKey,
  type FieldRecord,
  isSyncStore,
  type Store,
  type StoredRecord,
  type SyncStore,
} from "./store.ts";
import { KERNEL_MERGE_MIN, mergeBatch, wins } from "./merge.ts";
import { compareCodePoints } from "./order.ts";
import { checkQueryBudget, DEFAULT_QUERY_BUDGET, type QueryBudget, QueryMeter } from "./query_budget.ts";

/** Options of {@link Database.create}. */
export interface DatabaseOptions {
  readonly store: Store;
  readonly kernels: Kernels;
  /** Wall clock in ms (default `Date.now`). */
  readonly now?: () => number;
  /** States further ahead of the wall clock than this are deferred (default 10 min). */
  readonly maxDrift?: number;
  /**
   * States further ahead of the wall clock than this are refused, not
   * deferred (ms, default one day; at least `maxDrift`; `Infinity` for none).
   */
  readonly horizon?: number;
  /** Most ops deferred at once (default 100,000); past it more are refused. */
  readonly maxDeferred?: number;
  /** Most ops deferred at once from one source, a peer or (local calls) an op's actor (default 10,000). */
  readonly maxDeferredPerSource?: number;
  /** Limits on the work of one `query` (core/query_budget.ts; defaults `DEFAULT_QUERY_BUDGET`). */
  readonly queryBudget?: Partial<QueryBudget>;
}

/** Options of {@link Database.applyOps}. */
export interface ApplyOptions {
  /**
   * The peer the ops came from. Ops a peer should not send — stamped beyond
   * the horizon, or deferred past its quota — are then dropped and counted
   * (`refused`) instead of failing the batch, and its deferred ops count
   * against its quota (without it, against their actor's).
   */
  readonly source?: string;
}

/** What {@link Database.deferredStatus} reports. */
export interface DeferredStatus {
  /** Ops deferred (stored aside until their time comes). */
  readonly count: number;
  /** When the earliest of them comes due (wall-clock ms), or `null` when none waits. */
  readonly next: number | null;
  /**
   * Ops refused since the database opened: from peers (beyond the horizon or
   * over a quota), and those beyond the horizon found deferred on open.
   */
  readonly refused: number;
}

/** A change seen by a watcher: the fields of one node that changed, `null` meaning deleted. */
export interface Change {
  readonly soul: string;
  readonly changes: NodeData;
  /** `local` for this replica's writes, `remote` for merged foreign ops. */
  readonly source: "local" | "remote";
}

/** What `watch` listens to: one soul, or every soul under a prefix. */
export type WatchTarget = string | { readonly prefix: string };

/** Result of a write. */
export interface WriteResult {
  readonly soul: string;
  /** The state (HLC) the write was stamped with. */
  readonly state: Hlc;
}

/** Result of {@link Database.applyOps}. */
export interface ApplyResult {
  /** Ops that won their field and were stored. */
  readonly applied: number;
  /** Ops that lost to (or equalled) the stored state. */
  readonly ignored: number;
  /** Ops too far in the future, kept until their time comes. */
  readonly deferred: number;
  /**
   * Ops refused, not stored: only with {@link ApplyOptions.source}, and only
   * when some were (stamped beyond the horizon, or deferred over a quota).
   */
  readonly refused?: number;
}

/** A node in list and query results. */
export interface Entry {
  readonly soul: string;
  readonly data: NodeData;
}

/** A `where` condition on one field. */
export interface Condition {
  eq?: Value;
  lt?: number | string;
  gt?: number | string;
  prefix?: string;
}

/** A graph query: start at `from`, follow `path`, keep nodes matching `where`. */
export interface Query {
  /** Start soul(s). */
  readonly from: string | readonly string[];
  /** Fields to follow in turn; `"*"` follows every link of a node. */
  readonly path?: readonly string[];
  /** Conditions on the fields of the nodes reached (all must hold). A bare value means `{ eq: value }`. */
  readonly where?: Readonly<Record<string, Condition | Value>>;
  /** At most this many results (default 1000). */
  readonly limit?: number;
}

/** Options of {@link Database.list}. */
export interface ListOptions {
  readonly prefix?: string;
  readonly limit?: number;
  /** Start after this soul (the last soul of the previous page). */
  readonly cursor?: string;
}

const DEFAULT_LIMIT = 1000;

/**
 * A large foreign batch, checked but not yet made into records, in columns
 * (no object per op): souls, fields, the values' encodings end to end, state
 * and actor words, sigs. A copy, taken while checking: the caller may change
 * its ops or its array once `applyOps` has returned. Ops marked in
 * `deferred` are stored aside instead.
 */
interface OpsInParts {
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

/** Op `i` of a batch in columns as a record. */
function columnRecord(c: OpsInParts, i: number): FieldRecord {
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

/**
 * Foreign batches of at least this many ops go to a store that can commit in
 * parts ({@link SyncStore.beginParts}) {@link PART_OPS} records at a time:
 * records are made, read against the store, merged and written a part at a
 * time, in one transaction. A part's records die young (a batch of 1M ops
 * held as records survived several young collections, about a tenth of the
 * apply), and every pass over a part stays in the CPU's cache.
 */
const PARTS_MIN = 32_768;
const PART_OPS = 8_192;

/**
 * Deferral bounds: how far ahead an op may be stamped and still be kept
 * (beyond, it is refused: year 10889 was accepted once and waited forever),
 * and how many ops may wait, in all and per source (a peer, or the actor of
 * ops applied locally), so that no source fills the table or crowds out others.
 */
const DEFAULT_HORIZON_MS = 86_400_000;
const DEFAULT_MAX_DEFERRED = 100_000;
const DEFAULT_MAX_DEFERRED_PER_SOURCE = 10_000;
/** Deferred ops read and applied per round when they come due. */
const DUE_BATCH = 4_096;

/** What a drain reads before merging (see `Database.#plan`). */
interface ReadPlan {
  /** The keys to read: records (their soul and field). */
  readonly pairs: readonly FieldKey[];
  /** Per job, its greatest record per key (foreign jobs only); absent for a single batch of unique keys. */
  readonly bests?: (Map<string, FieldRecord> | undefined)[];
  /** The key of each pair; absent for a single batch of unique keys (matched by position). */
  readonly keys?: string[];
}

/** A drain decided and ready for the store (see `Database.#seal`). */
interface Sealed {
  readonly batch: CommitBatch;
  /** Per job, its records that won (were stored). */
  readonly applied: number[];
  readonly events: Change[];
  readonly committed: { records: readonly FieldRecord[]; local: boolean }[];
  /** The clock bound the batch raises, if it does (see `Database.#raiseMark`). */
  readonly mark: [number, number] | undefined;
}

/** What a committed drain reports to watchers and commit listeners. */
interface Settled {
  readonly events: Change[];
  readonly committed: { records: readonly FieldRecord[]; local: boolean }[];
}

interface Job {
  readonly local: boolean;
  readonly records: readonly FieldRecord[];
  readonly defer: readonly DeferOp[];
  readonly undefer: readonly number[];
  /** What a local write resolves with; a foreign job resolves with its {@link ApplyResult}. */
  readonly result: WriteResult | undefined;
  /** A large foreign batch whose records are made part by part as it is committed (no `records`). */
  readonly parts?: OpsInParts;
  readonly resolve: (r: WriteResult | ApplyResult) => void;
  readonly reject: (e: unknown) => void;
}

/** A map key for (soul, field): the soul's length first, so no two pairs share a key. */
const keyOf = (soul: string, field: string): string => `${soul.length}:${soul}${field}`;

/**
 * How far ahead of the clock the persisted clock bound (`meta.clock`) is set.
 *
 * Writing the clock with every commit costs a metadata upsert per
 * transaction. Instead the store keeps a high-water mark: a state at least as
 * late as every state issued or observed by a commit that is durable. A
 * commit whose clock has passed the mark (or would pass it) raises it to the
 * clock plus this many ms, in the same transaction as its records, so the
 * mark is rewritten about once per this interval under steady writes.
 *
 * Why a restart never issues a state ≤ one issued before: a state is only
 * given out (put/delete resolve, onCommit, exportOps) after the commit that
 * stores it, and that commit either found the clock — which is ≥ every state
 * in it — at or below the persisted mark, or wrote a new mark above it in the
 * same transaction. So every durable state is ≤ the durable mark, and on open
 * the clock starts at the mark: its next tick is later than all of them. (A
 * write whose commit failed or never ran gave out no state, except `delete`
 * of a node with no fields, which writes nothing — as before, such a state is
 * not persisted.) The cost: after a restart local states may run up to this
 * much ahead of the wall clock, until the wall clock catches up.
 */
const CLOCK_MARK_AHEAD_MS = 1000;
const MAX_HLC_MS = 2 ** 48 - 1;

const NONE: readonly never[] = Object.freeze([]);
const RESOLVED: Promise<void> = Promise.resolve();
/** A report's lists for nobody (frozen and empty: see `Database.#report`). */
const NO_EVENTS: Change[] = NONE as never[];
const NO_COMMITS: Settled["committed"] = NONE as never[];
/** The report of a drain nobody watches or listens to. */
const QUIET: Settled = Object.freeze({ events: NO_EVENTS, committed: NO_COMMITS });

/**
 * Whether some (soul, field) occurs twice in `records`. Cheap for the usual
 * shape of a batch — each soul's fields together — without building keys:
 * souls go in a set, fields are compared within each run of one soul. A soul
 * that comes back after another counts as a repeat (the caller then dedupes).
 */
function repeatsKeys(records: readonly FieldKey[]): boolean {
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
 * The records of a drain of several jobs in commit order: each job's winners
 * in turn. A key may come more than once; its last record is the winner
 * (a later job's record for a key is only among its winners if it beat the
 * earlier ones, see `Database.#merge`), and stores keep the last record of a
 * key in a batch.
 */
function commitOrder(won: readonly (readonly FieldRecord[])[]): FieldRecord[] {
  let total = 0;
  for (const w of won) total += w.length;
  const out: FieldRecord[] = new Array(total);
  let at = 0;
  for (const w of won) for (let i = 0; i < w.length; i++) out[at++] = w[i];
  return out;
}

/**
 * Resolves a committed job's writer: a local write with its result, a
 * foreign batch with its counts (`applied` of its `stored` ops, those not
 * deferred, won their field).
 */
function answer(job: Job, applied: number, stored: number): void {
  job.resolve(job.result ?? { applied, ignored: stored - applied, deferred: job.defer.length });
}

/** A rejection that throws: a write committed at once fails its caller's call, as its commit does. */
const rethrow = (e: unknown): never => {
  throw e;
};

/** {@link checkOpWords} of op `i` of a batch: an error names the op. */
function checkOpAt(op: unknown, i: number, w: OpWords): asserts op is Op {
  try {
    checkOpWords(op, w);
  } catch (e) {
    (e as Error).message = `Op ${i} is invalid: ${(e as Error).message}`;
    throw e;
  }
}

/** The record of a checked foreign op: its value's encoding, its state and actor words. */
function foreignRecord(
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

/** The embedded graph database. */
export class Database {
  readonly store: Store;
  readonly kernels: Kernels;
  readonly clock: Clock;
  /** This replica's 64-bit actor id, 16 hex digits. */
  readonly actor: string;
  #actorHi: number;
  #actorLo: number;
  /** The persisted clock bound (`meta.clock`) as words: see {@link CLOCK_MARK_AHEAD_MS}. */
  #markH = 0;
  #markL = 0;
  #queue: Job[] = [];
  #draining: Promise<void> | undefined;
  #watchers = new Set<{ target: WatchTarget; cb: (c: Change) => void }>();
  #commitListeners = new Set<(records: readonly FieldRecord[], local: boolean) => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the earliest deferred op known comes due (the timer is set for it); `Infinity` when none. */
  #timerDue = Infinity;
  #horizon: number;
  #maxDeferred: number;
  #maxPerSource: number;
  /** Ops deferred: stored, or queued to be (reserved by {@link #admit}). */
  #deferredCount = 0;
  /** The same per source, for the sources met since open (read from the store once each). */
  #perSource = new Map<string, number>();
  /** Rounds of due ops committed: a count read from the store during one is stale (see {@link #admit}). */
  #undeferRounds = 0;
  /** The rounds of due ops, one after another. */
  #dueRounds: Promise<void> = RESOLVED;
  #refused = 0;
  #closed = false;
  /** Scratch of applyOps's checks (synchronous, so one serves every call). */
  #words = new OpWords();
  /** The store's synchronous twins, when it has them. */
  #sync: SyncStore | undefined;
  #queryBudget: QueryBudget = DEFAULT_QUERY_BUDGET;

  private constructor(store: Store, kernels: Kernels, clock: Clock, actor: string, options: DatabaseOptions) {
    this.store = store;
    this.kernels = kernels;
    this.clock = clock;
    this.actor = actor;
    [this.#actorHi, this.#actorLo] = actorWords(actor);
    this.#sync = isSyncStore(store) ? store : undefined;
    this.#horizon = options.horizon ?? Math.max(DEFAULT_HORIZON_MS, clock.maxDrift);
    this.#maxDeferred = options.maxDeferred ?? DEFAULT_MAX_DEFERRED;
    this.#maxPerSource = options.maxDeferredPerSource ?? DEFAULT_MAX_DEFERRED_PER_SOURCE;
  }

  /** Opens a database over `store`: restores (or creates) the actor id and clock, resumes deferred ops. */
  static async create(options: DatabaseOptions): Promise<Database> {
    const { store, kernels } = options;
    checkDeferralOptions(options);
    const queryBudget = checkQueryBudget(options.queryBudget);
    let actor = await store.getMeta("actor");
    if (!isHex64(actor)) {
      const b = crypto.getRandomValues(new Uint8Array(8));
      actor = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
      await store.commit({ meta: { actor } });
    }
    const last = await store.getMeta("clock");
    const clock = new Clock({ now: options.now, maxDrift: options.maxDrift, last: last ?? undefined });
    const db = new Database(store, kernels, clock, actor, options);
    db.#queryBudget = queryBudget;
    if (last !== undefined && last !== null) [db.#markH, db.#markL] = clock.lastWords;
    // Deferred ops stay on disk: counted, and only those due are read (lazily, by due time). Those
    // beyond the horizon, which a store written before there was one may hold, are dropped.
    if (store.dropDeferredAfter !== undefined && db.#horizon !== Infinity) {
      db.#refused += await store.dropDeferredAfter(clock.now() + db.#horizon - clock.maxDrift);
    }
    db.#deferredCount = await countDeferred(store);
    await db.#processDue();
    return db;
  }

  #check(): void {
    if (this.#closed) throw new Error("The database is closed");
  }

  // ---------------------------------------------------------------- writes

  /**
   * Merges the fields of `data` into node `soul`; nested objects become linked
   * child nodes (`soul/field`). Resolves after the write is committed.
   */
  put(soul: string, data: Record<string, unknown>): Promise<WriteResult> {
    try {
      return this.#put(soul, data);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@link put}, throwing for bad input: the promise is the commit's own (no await of it here). */
  #put(soul: string, data: Record<string, unknown>): Promise<WriteResult> {
    this.#check();
    const fields = flattenFields(soul, data);
    const [stateHi, stateLo] = this.clock.tickWords();
    const actorHi = this.#actorHi, actorLo = this.#actorLo;
    const records: FieldRecord[] = [];
    for (const node of fields) {
      const s = node[0] as string;
      for (let i = 1; i < node.length; i += 2) {
        records.push({
          soul: s,
          field: node[i] as string,
          value: encodeValue(node[i + 1] as Value),
          stateHi,
          stateLo,
          actorHi,
          actorLo,
        });
      }
    }
    return this.#enqueue(true, records, NONE, NONE, {
      soul,
      state: hlcFromWords(stateHi, stateLo),
    }) as Promise<
      WriteResult
    >;
  }

  /** Deletes field `field` of `soul`, or every field of the node, by writing tombstones. */
  async delete(soul: string, field?: string): Promise<WriteResult> {
    this.#check();
    checkSoul(soul);
    if (field !== undefined) checkField(field);
    const fields = field !== undefined
      ? [field]
      : (await this.store.readNode(soul)).filter((r) => !isTombstone(r.value)).map((r) => r.field);
    const [stateHi, stateLo] = this.clock.tickWords();
    const state = hlcFromWords(stateHi, stateLo);
    const records = fields.map((f) => ({
      soul,
      field: f,
      value: TOMBSTONE,
      stateHi,
      stateLo,
      actorHi: this.#actorHi,
      actorLo: this.#actorLo,
    }));
    const result = { soul, state };
    if (records.length > 0) await this.#enqueue(true, records, NONE, NONE, result);
    return result;
  }

  /**
   * Validates, merges and commits a batch of foreign ops atomically. A batch
   * with any invalid op is rejected whole (`TypeError`/`RangeError`/
   * `SyntaxError`) and nothing is stored. Ops more than `maxDrift` ahead of
   * the wall clock are stored aside and applied when their time comes; ops
   * beyond the horizon (default one day ahead), or deferred past a quota,
   * are refused: a `RangeError` for the batch, or with `options.source` (a
   * peer) dropped and counted in `refused`.
   */
  applyOps(ops: readonly Op[] | Uint8Array, options?: ApplyOptions): Promise<ApplyResult> {
    try {
      return this.#applyOps(ops, options === undefined ? undefined : checkSource(options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@link applyOps}, throwing for bad input. */
  #applyOps(ops: readonly Op[] | Uint8Array, source: string | undefined): Promise<ApplyResult> {
    this.#check();
    if (ops instanceof Uint8Array) return this.#applyEncoded(ops, source);
    if (!Array.isArray(ops)) throw new TypeError("applyOps takes an array of ops or their encoding");
    if (ops.length >= PARTS_MIN && this.#sync?.beginParts !== undefined) {
      return this.#applyInParts(ops, source);
    }
    const limit = this.clock.futureLimit();
    let now: FieldRecord[] = NONE as never[];
    let defer: DeferOp[] = NONE as never[];
    let refused = 0;
    const w = this.#words; // checked and read in one pass; a repeated actor only once
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      checkOpAt(op, i, w);
      const ms = wordsMs(w.stateHi, w.stateLo);
      if (ms > limit) {
        const d = this.#deferral(op, ms, i, source);
        if (d === undefined) refused++;
        else (defer.length === 0 ? defer = [] : defer).push(d);
        continue;
      }
      const r = foreignRecord(
        op.soul,
        op.field,
        encodeValue(op.value),
        w.stateHi,
        w.stateLo,
        w.actorHi,
        w.actorLo,
        op.sig,
      );
      if (now.length === 0) now = [r]; // one slot (a batch of one op is the rule), where a first push reserves 17
      else now.push(r);
    }
    return this.#applyNow(now, defer, refused, source);
  }

  /**
   * Commits the checked records of a foreign batch (or its `parts`) and
   * stores its deferred ops aside; `refused` of its ops were dropped (a
   * peer's, see {@link ApplyOptions.source}).
   */
  #applyNow(
    now: readonly FieldRecord[],
    defer: readonly DeferOp[],
    refused: number,
    source: string | undefined,
    parts?: OpsInParts,
  ): Promise<ApplyResult> {
    if (defer.length === 0 && refused === 0) { // the rule
      return this.#enqueue(false, now, NONE, NONE, undefined, parts) as Promise<ApplyResult>;
    }
    return this.#applyDeferring(now, defer, refused, source === undefined, parts);
  }

  /** {@link #applyNow} of a batch that defers or refuses ops: they are admitted under the quotas first. */
  async #applyDeferring(
    now: readonly FieldRecord[],
    defer: readonly DeferOp[],
    refused: number,
    local: boolean,
    parts: OpsInParts | undefined,
  ): Promise<ApplyResult> {
    const kept = defer.length === 0 ? defer : await this.#admit(defer, local);
    refused += defer.length - kept.length;
    this.#refused += refused;
    let r: ApplyResult;
    try {
      this.#check();
      r = await (this.#enqueue(false, now, kept, NONE, undefined, parts) as Promise<ApplyResult>);
    } catch (e) {
      this.#release(kept);
      throw e;
    }
    let first = Infinity;
    for (const d of kept) if (d.due < first) first = d.due;
    this.#arm(first);
    return refused === 0 ? r : { ...r, refused };
  }

  /**
   * A checked op too far ahead of the wall clock (op `i` of its batch, at
   * `ms`), as it is stored aside until its time comes; `undefined` when it
   * is beyond the horizon and came from a peer (refused, a local call
   * throws).
   */
  #deferral(op: Op, ms: number, i: number, source: string | undefined): DeferOp | undefined {
    const ahead = ms - this.clock.now();
    if (ahead > this.#horizon) {
      if (source !== undefined) return undefined;
      throw new RangeError(
        `Op ${i} is refused: its state is ${ahead} ms ahead of this replica's clock, beyond the horizon of ${this.#horizon} ms`,
      );
    }
    return { due: this.clock.dueAt(op.state), op: encodeOps([op]), source: source ?? op.actor };
  }

  /** {@link applyOps} of an encoded batch: decoded and checked as decodeOps does, straight into records. */
  #applyEncoded(ops: Uint8Array, source: string | undefined): Promise<ApplyResult> {
    const limit = this.clock.futureLimit();
    const records = decodeOpRecords(ops);
    let due = 0; // records before the first future one
    while (due < records.length && wordsMs(records[due].stateHi, records[due].stateLo) <= limit) due++;
    if (due === records.length) return this.#applyNow(records, NONE, 0, source); // nothing to defer (the rule)
    const now = records.slice(0, due), defer: DeferOp[] = [];
    let refused = 0;
    for (let i = due; i < records.length; i++) {
      const r = records[i], ms = wordsMs(r.stateHi, r.stateLo);
      if (ms <= limit) now.push(r);
      else {
        const d = this.#deferral(recordToOp(r), ms, i, source);
        if (d === undefined) refused++;
        else defer.push(d);
      }
    }
    return this.#applyNow(now, defer, refused, source);
  }

  /**
   * {@link applyOps} of a large batch (see {@link PARTS_MIN}) on a store
   * that commits in parts: checked and copied into columns, then committed
   * in parts unless a key comes twice.
   */
  #applyInParts(list: readonly Op[], source: string | undefined): Promise<ApplyResult> {
    const limit = this.clock.futureLimit();
    const n = list.length;
    const cols = {
      souls: new Array<string>(n),
      fields: new Array<string>(n),
      valueEnd: new Uint32Array(n),
      stateHi: new Uint32Array(n),
      stateLo: new Uint32Array(n),
      actorHi: new Uint32Array(n),
      actorLo: new Uint32Array(n),
    };
    const values = new ByteWriter(8 * n);
    const defer: DeferOp[] = [];
    let sigs: (Uint8Array | undefined)[] | undefined, deferred: Uint8Array | undefined;
    let refused = 0;
    const w = this.#words;
    for (let i = 0; i < n; i++) {
      const op = list[i];
      checkOpAt(op, i, w);
      const { stateHi, stateLo } = w, ms = wordsMs(stateHi, stateLo);
      if (ms > limit) {
        const d = this.#deferral(op, ms, i, source);
        if (d === undefined) refused++;
        else defer.push(d);
        (deferred ??= new Uint8Array(n))[i] = 1, cols.valueEnd[i] = values.pos;
        continue;
      }
      cols.souls[i] = op.soul, cols.fields[i] = op.field;
      writeValue(values, op.value);
      cols.valueEnd[i] = values.pos;
      cols.stateHi[i] = stateHi,
        cols.stateLo[i] = stateLo,
        cols.actorHi[i] = w.actorHi,
        cols.actorLo[i] = w.actorLo;
      if (op.sig) (sigs ??= [])[i] = op.sig.slice();
    }
    const batch: OpsInParts = { n, ...cols, values: values.buf, sigs, deferred };
    if (!repeatsKeys(list)) return this.#applyNow(NONE, defer, refused, source, batch);
    // A key twice: merged whole, as a smaller batch is.
    const now: FieldRecord[] = [];
    for (let i = 0; i < n; i++) if (deferred?.[i] !== 1) now.push(columnRecord(batch, i));
    return this.#applyNow(now, defer, refused, source);
  }

  /**
   * Queues a write for the next drain. The promise resolves once it is
   * committed, with `result` (a local write's) or else the job's
   * {@link ApplyResult}: writers get it from the drain, with no turn of
   * their own after it.
   */
  #enqueue(
    local: boolean,
    records: readonly FieldRecord[],
    defer: readonly DeferOp[],
    undefer: readonly number[],
    result: WriteResult | undefined,
    parts?: OpsInParts,
  ): Promise<WriteResult | ApplyResult> {
    const sync = this.#sync;
    if (
      sync !== undefined && this.#draining === undefined && !this.#committedNow && parts === undefined &&
      this.#watchers.size === 0 && this.#commitListeners.size === 0
    ) {
      // The first write of a turn, with nothing queued or being committed and nobody to tell, is
      // committed now, as a round of its own; writes after it in the same turn are queued and
      // drained together a turn later (group commit), as always.
      this.#committedNow = true;
      RESOLVED.then(this.#turnEnded);
      const job = this.#nowJob;
      job.local = local, job.records = records, job.defer = defer, job.undefer = undefer, job.result = result;
      try {
        this.#commitOneSync(job, sync);
        return Promise.resolve(this.#kept!);
      } catch (e) {
        return Promise.reject(e);
      } finally {
        this.#kept = undefined;
        job.records = job.defer = job.undefer = NONE, job.result = undefined; // hold nothing of it
      }
    }
    return this.#later({ local, records, defer, undefer, result, parts, resolve: rethrow, reject: rethrow });
  }

  /**
   * Queues `job` for the next drain; the promise settles as the drain
   * commits it. (Apart from {@link #enqueue}, whose every call would
   * otherwise allocate the context this closure needs.)
   */
  #later(job: { -readonly [K in keyof Job]: Job[K] }): Promise<WriteResult | ApplyResult> {
    return new Promise((resolve, reject) => {
      job.resolve = resolve, job.reject = reject;
      this.#queue.push(job);
      this.#draining ??= RESOLVED.then(this.#drain);
    });
  }

  /** Whether a write was committed at once in this turn (see {@link #enqueue}). */
  #committedNow = false;
  #turnEnded = (): void => {
    this.#committedNow = false;
  };
  /** What the write committed at once resolves with. */
  #kept: WriteResult | ApplyResult | undefined;
  #keep = (r: unknown): void => {
    this.#kept = r as WriteResult | ApplyResult;
  };
  /**
   * The job of a write committed at once, filled in for each: one is
   * committed at a time, and nothing holds it after its commit.
   */
  #nowJob: { -readonly [K in keyof Job]: Job[K] } = {
    local: false,
    records: NONE,
    defer: NONE,
    undefer: NONE,
    result: undefined,
    parts: undefined,
    resolve: this.#keep,
    reject: rethrow,
  };

  /**
   * Commits everything queued, one store transaction per round, until the
   * queue is empty. It runs a turn after the first write is queued, so that
   * every write queued in that turn joins the first round (group commit). A
   * store that never waits runs the whole drain without a turn of its own
   * (and without an async function's frame per drain).
   */
  #drain = (): Promise<void> | void => {
    const sync = this.#sync;
    if (sync === undefined) return this.#drainAsync();
    try {
      while (this.#queue.length > 0) {
        const jobs = this.#nextJobs();
        let settled: Settled;
        try {
          settled = jobs[0].parts !== undefined
            ? this.#commitParts(jobs[0], jobs[0].parts, sync)
            : jobs.length === 1
            ? this.#commitOneSync(jobs[0], sync)
            : this.#commitJobsSync(jobs, sync);
        } catch (e) {
          this.#fail(jobs, e);
          continue;
        }
        this.#announce(settled);
      }
    } finally {
      this.#draining = undefined;
    }
  };

  /** {@link #drain} for a store that must be awaited. */
  async #drainAsync(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const jobs = this.#nextJobs();
        await this.#commitJobs(jobs).then((settled) => this.#announce(settled), (e) => this.#fail(jobs, e));
      }
    } finally {
      this.#draining = undefined;
    }
  }

  /** A round's commit failed: nothing of it is stored, and its writers hear why. */
  #fail(jobs: readonly Job[], e: unknown): void {
    for (const job of jobs) job.reject(e);
  }

  /** The jobs of the next round: a batch committed in parts goes alone, the writes before it in a round of their own. */
  #nextJobs(): Job[] {
    const queue = this.#queue;
    let take = 0;
    while (take < queue.length && queue[take].parts === undefined) take++;
    return queue.splice(0, take === 0 ? 1 : take);
  }

  /** Tells watchers and commit listeners what a round committed. */
  #announce({ events, committed }: Settled): void {
    this.#emit(events);
    for (const listener of this.#commitListeners) {
      for (const c of committed) {
        try {
          listener(c.records, c.local);
        } catch (e) {
          reportError(e);
        }
      }
    }
  }

  async #commitJobs(jobs: Job[]): Promise<Settled> {
    const plan = this.#plan(jobs);
    const found = plan.pairs.length > 0 ? await this.store.readFields(plan.pairs) : NONE;
    const sealed = this.#seal(jobs, this.#merge(jobs, plan, found));
    await this.store.commit(sealed.batch);
    return this.#settle(jobs, sealed);
  }

  #commitJobsSync(jobs: Job[], store: SyncStore): Settled {
    const plan = this.#plan(jobs);
    const found = plan.pairs.length > 0 ? store.readFieldsSync(plan.pairs) : NONE;
    const sealed = this.#seal(jobs, this.#merge(jobs, plan, found));
    store.commitSync(sealed.batch);
    return this.#settle(jobs, sealed);
  }

  /**
   * Commits a large foreign batch with no key twice in parts (see
   * {@link PARTS_MIN}): for each part, its records are made, read against the
   * store (which sees the parts written before), and the winners written; the
   * deferred ops and the clock bound close the one transaction. Any failure
   * rolls back all of it.
   */
  #commitParts(job: Job, src: OpsInParts, store: SyncStore): Settled {
    const { n, deferred } = src;
    const report = this.#report();
    const commit = store.beginParts!();
    let applied = 0, stored = 0; // (not deferred, nor refused)
    try {
      for (let start = 0; start < n; start += PART_OPS) {
        const end = Math.min(n, start + PART_OPS);
        const records: FieldRecord[] = [];
        for (let i = start; i < end; i++) if (deferred?.[i] !== 1) records.push(columnRecord(src, i));
        stored += records.length;
        const won = this.#winners(records, store.readFieldsSync(records));
        this.#observeLatest(won);
        applied += won.length;
        this.#tell(report, won, false);
        commit.write(won);
      }
      const rest: { defer: readonly DeferOp[]; meta?: Record<string, string> } = {
        defer: job.defer,
      };
      const mark = this.#raiseMark(rest);
      commit.commit(rest);
      if (mark !== undefined) this.#keepMark(mark);
    } catch (e) {
      commit.abort();
      throw e;
    }
    answer(job, applied, stored);
    return report;
  }

  /**
   * A drain of one job (the usual one): {@link #commitJobsSync} without a
   * plan, arrays per job or a sealed drain. A foreign batch with a key twice
   * goes the general way.
   */
  #commitOneSync(job: Job, store: SyncStore): Settled {
    const records = job.records;
    let won = records as FieldRecord[];
    if (!job.local && records.length > 0) {
      if (repeatsKeys(records)) return this.#commitJobsSync([job], store);
      won = this.#winners(records, store.readFieldsSync(records));
      this.#observeLatest(won);
    }
    const batch: CommitBatch & { meta?: Record<string, string> } = {
      records: won,
      defer: job.defer,
      undefer: job.undefer,
    };
    const mark = this.#raiseMark(batch);
    store.commitSync(batch);
    if (mark !== undefined) this.#keepMark(mark);
    answer(job, won.length, records.length);
    const report = this.#report();
    this.#tell(report, won, job.local);
    return report;
  }

  /** What a drain tells watchers and commit listeners, as it is gathered: arrays only for those there are. */
  #report(): Settled {
    const watched = this.#watchers.size > 0, listening = this.#commitListeners.size > 0;
    return watched || listening
      ? { events: watched ? [] : NO_EVENTS, committed: listening ? [] : NO_COMMITS }
      : QUIET;
  }

  /** Adds the records one job committed to `report`. */
  #tell(report: Settled, won: readonly FieldRecord[], local: boolean): void {
    if (won.length === 0) return;
    if (report.committed !== NO_COMMITS) report.committed.push({ records: won, local });
    if (report.events !== NO_EVENTS) report.events.push(...groupChanges(won, local ? "local" : "remote"));
  }

  /** Moves the clock past the latest state of `records` (foreign ones that won). */
  #observeLatest(records: readonly FieldRecord[]): void {
    let h = -1, l = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (r.stateHi > h || (r.stateHi === h && r.stateLo > l)) h = r.stateHi, l = r.stateLo;
    }
    if (h >= 0) this.clock.observeWords(h, l);
  }

  /**
   * What a drain must read before merging: the stored records of every key a
   * foreign op touches. One foreign batch with no key twice (the common
   * foreign drain) needs no maps: its records are matched by position.
   */
  #plan(jobs: readonly Job[]): ReadPlan {
    if (jobs.length === 1 && !jobs[0].local && !repeatsKeys(jobs[0].records)) {
      return { pairs: jobs[0].records }; // the records are their own keys
    }
    // Per foreign job, the greatest op per key (keyed once, reused when merging).
    let bests: (Map<string, FieldRecord> | undefined)[] | undefined;
    let maps = 0;
    for (let i = 0; i < jobs.length; i++) {
      if (jobs[i].local) continue;
      bests ??= new Array(jobs.length);
      bests[i] = this.#bestPerKey(jobs[i].records);
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
  #merge(
    jobs: readonly Job[],
    plan: ReadPlan,
    found: readonly (StoredRecord | undefined)[],
  ): FieldRecord[][] {
    const wonPerJob: FieldRecord[][] = new Array(jobs.length);
    const { bests, keys } = plan;
    if (keys === undefined) { // one foreign batch, each key once
      wonPerJob[0] = this.#winners(jobs[0].records, found);
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
      const won = best === undefined ? jobs[i].records as FieldRecord[] : this.#mergeForeign(best, current);
      wonPerJob[i] = won;
      // Later foreign jobs of this drain merge against what won here.
      if (i < jobs.length - 1) { for (const r of won) current.set(keyOf(r.soul, r.field), r); }
    }
    return wonPerJob;
  }

  /** The records of one foreign batch with no key twice that beat `found`, their stored records by position. */
  #winners(records: readonly FieldRecord[], found: readonly (StoredRecord | undefined)[]): FieldRecord[] {
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
    this.#decide(contested, out);
    return out;
  }

  /**
   * Raises the persisted clock bound when the clock has passed it (see
   * CLOCK_MARK_AHEAD_MS): sets `batch.meta` to write it and returns the
   * bound's words, to keep ({@link #keepMark}) once the batch is committed;
   * `undefined` (the rule) when the bound stands.
   */
  #raiseMark(batch: { meta?: Record<string, string> }): [number, number] | undefined {
    if (!this.clock.isPast(this.#markH, this.#markL)) return undefined;
    const [ch, cl] = this.clock.lastWords;
    const ms = hlcMs(hlcFromWords(ch, cl)), markMs = Math.min(ms + CLOCK_MARK_AHEAD_MS, MAX_HLC_MS);
    const mark = markMs > ms ? formatHlc(markMs, 0) : hlcFromWords(ch, cl);
    batch.meta = { clock: mark };
    return hlcWords(mark);
  }

  /** Keeps a raised clock bound: only once the batch that wrote it is committed, so the bound is durable. */
  #keepMark([h, l]: [number, number]): void {
    this.#markH = h;
    this.#markL = l;
  }

  /** Everything a drain commits, counts and reports, decided before the store is asked to commit. */
  #seal(jobs: readonly Job[], wonPerJob: readonly (readonly FieldRecord[])[]): Sealed {
    const applied: number[] = new Array(jobs.length);
    const { events, committed } = this.#report();
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i], won = wonPerJob[i];
      if (!job.local) this.#observeLatest(won);
      applied[i] = won.length;
      this.#tell({ events, committed }, won, job.local);
    }
    const records = jobs.length === 1 ? wonPerJob[0] : commitOrder(wonPerJob);
    const batch: {
      records: readonly FieldRecord[];
      defer: readonly DeferOp[];
      undefer: readonly number[];
      meta?: Record<string, string>;
    } = jobs.length === 1
      ? { records, defer: jobs[0].defer, undefer: jobs[0].undefer }
      : { records, defer: jobs.flatMap((j) => j.defer), undefer: jobs.flatMap((j) => j.undefer) };
    return { batch, applied, events, committed, mark: this.#raiseMark(batch) };
  }

  /** After the store committed a sealed drain: the clock bound is durable, the writers are answered. */
  #settle(jobs: readonly Job[], sealed: Sealed): Settled {
    if (sealed.mark !== undefined) this.#keepMark(sealed.mark);
    for (let i = 0; i < jobs.length; i++) answer(jobs[i], sealed.applied[i], jobs[i].records.length);
    return sealed;
  }

  /** Appends to `out` the incoming records of `contested` that beat the stored ones. */
  #decide(contested: [FieldRecord, FieldRecord][], out: FieldRecord[]): void {
    if (contested.length < KERNEL_MERGE_MIN) {
      for (const [r, cur] of contested) if (this.#wins(r, cur)) out.push(r);
    } else {
      const decided = mergeBatch(this.kernels, contested);
      for (let i = 0; i < contested.length; i++) if (decided[i] === 1) out.push(contested[i][0]);
    }
  }

  /** The greatest record per key of one foreign batch, in first-seen key order. */
  #bestPerKey(records: readonly FieldRecord[]): Map<string, FieldRecord> {
    const best = new Map<string, FieldRecord>();
    for (const r of records) {
      const k = keyOf(r.soul, r.field);
      const prev = best.get(k);
      if (!prev || this.#wins(r, prev)) best.set(k, r);
    }
    return best;
  }

  /**
   * The records of one foreign batch (its greatest op per key) that beat what
   * is stored (or already won earlier in this drain); large batches are
   * decided by the merge kernel.
   */
  #mergeForeign(best: Map<string, FieldRecord>, current: Map<string, FieldRecord>): FieldRecord[] {
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
    this.#decide(contested, out);
    return out;
  }

  #wins(b: FieldRecord, a: FieldRecord): boolean {
    return wins(b, a, this.kernels);
  }

  // ---------------------------------------------------------------- deferred ops

  /**
   * Reserves room under the quotas for the ops a batch defers, and returns
   * those admitted: all of them, or (from a peer) those that fit — a local
   * call over a quota throws a `RangeError` and reserves nothing. A source
   * met for the first time since open is counted in the store once.
   */
  async #admit(defer: readonly DeferOp[], local: boolean): Promise<readonly DeferOp[]> {
    const perSource = this.#perSource;
    for (const d of defer) {
      while (!perSource.has(d.source!)) {
        const rounds = this.#undeferRounds;
        const n = await countDeferred(this.store, d.source);
        // A round of due ops committed meanwhile may have taken some of them: count again.
        if (!perSource.has(d.source!) && rounds === this.#undeferRounds) perSource.set(d.source!, n);
      }
    }
    let kept: DeferOp[] | undefined;
    for (let i = 0; i < defer.length; i++) {
      const d = defer[i], source = d.source!, n = perSource.get(source)!;
      const full = this.#deferredCount >= this.#maxDeferred
        ? `${this.#deferredCount} ops are deferred already, the most this replica keeps`
        : n >= this.#maxPerSource
        ? `${n} ops from ${source} are deferred already, the most one source may have`
        : undefined;
      if (full === undefined) {
        perSource.set(source, n + 1);
        this.#deferredCount++;
        kept?.push(d);
      } else if (local) {
        this.#release(defer.slice(0, i));
        throw new RangeError(`Cannot defer op ${source}/${d.due}: ${full}`);
      } else kept ??= defer.slice(0, i);
    }
    return kept ?? defer;
  }

  /** Gives back the room {@link #admit} reserved for `defer` (ops not stored after all, or applied now). */
  #release(defer: readonly { readonly source?: string }[]): void {
    for (const d of defer) {
      this.#deferredCount--;
      const source = d.source ?? "", n = this.#perSource.get(source);
      if (n === undefined) continue; // not counted since open: the store's count is right
      if (n <= 1) this.#perSource.delete(source);
      else this.#perSource.set(source, n - 1);
    }
  }

  /** Sets the timer for a deferred op due at `due`, unless it is already set for one due earlier. */
  #arm(due: number): void {
    if (!(due < this.#timerDue) || this.#closed) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(
      this.#onTimer,
      Math.min(Math.max(0, due - this.clock.now()), 2 ** 31 - 1),
    );
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.#processDue().catch((e) => {
      reportError(e);
      this.#arm(this.clock.now() + 1000); // tried again in a second, not at once (nor never)
    });
  };

  /** Applies the deferred ops that have come due, in rounds one after another. */
  #processDue(): Promise<void> {
    const round = this.#dueRounds.then(() => this.#dueRound());
    this.#dueRounds = round.catch(() => {});
    return round;
  }

  /**
   * One round: the ops due by now are read through the store's due index
   * ({@link DUE_BATCH} at a time, never the whole table) and applied, their
   * rows dropped in the same commit; then the timer is set for the next.
   */
  async #dueRound(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timerDue = Infinity; // set again below (or by ops deferred meanwhile)
    if (this.#deferredCount === 0) return;
    const now = this.clock.now();
    for (;;) {
      const due = await dueDeferred(this.store, now, DUE_BATCH);
      if (due.length === 0 || this.#closed) break;
      const records: FieldRecord[] = [], later: DeferOp[] = [], ids: number[] = [];
      for (const d of due) {
        ids.push(d.id);
        for (const op of decodeOps(d.op)) {
          // Due by a maxDrift it was deferred with, but still future by this one: deferred again.
          if (this.clock.isFuture(op.state)) {
            later.push({ due: this.clock.dueAt(op.state), op: encodeOps([op]), source: d.source });
          } else records.push(opToRecord(op));
        }
      }
      await this.#enqueue(false, records, later, ids, undefined);
      this.#undeferRounds++;
      this.#release(due);
      for (const d of later) this.#admitted(d);
      if (due.length < DUE_BATCH) break;
    }
    if (this.#closed) return;
    const [next] = await dueDeferred(this.store, Infinity, 1);
    if (next !== undefined) this.#arm(next.due);
  }

  /** Counts an op deferred again by a round of due ops (quotas do not refuse what was kept). */
  #admitted(d: DeferOp): void {
    this.#deferredCount++;
    const n = this.#perSource.get(d.source!);
    if (n !== undefined) this.#perSource.set(d.source!, n + 1);
  }

  /**
   * The deferred ops: how many wait, when the next comes due, how many ops
   * from peers were refused since open. Answered from memory.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * console.log(db.deferredStatus()); // { count: 0, next: null, refused: 0 }
   * await db.close();
   * ```
   */
  deferredStatus(): DeferredStatus {
    return {
      count: this.#deferredCount,
      next: this.#deferredCount === 0 || this.#timerDue === Infinity ? null : this.#timerDue,
      refused: this.#refused,
    };
  }

  /** Resolves once every write queued before the call has committed (or failed). */
  async idle(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  /**
   * Applies deferred ops whose time has come. The database does this by
   * itself on a timer; tests with an injected clock call it directly.
   */
  async processDeferred(): Promise<void> {
    this.#check();
    await this.#processDue();
    await this.#draining;
  }

  // ---------------------------------------------------------------- reads

  /** The live fields of `soul` as data, straight from the store when it can decode them so. */
  #nodeData(soul: string): Promise<NodeData | undefined> {
    const store = this.store;
    return store.readNodeData !== undefined ? store.readNodeData(soul) : store.readNode(soul).then(nodeData);
  }

  /** The node's live fields as a plain object (links as `{ "#": soul }`), or `undefined`. */
  async get(soul: string): Promise<NodeData | undefined> {
    this.#check();
    checkSoul(soul);
    return await this.#nodeData(soul);
  }

  /**
   * Nodes in soul order (UTF-8 byte order), skipping deleted ones. Options are
   * checked at once (`TypeError`/`RangeError`), nodes are read page by page.
   */
  list(options: ListOptions = {}): AsyncGenerator<Entry> {
    this.#check();
    const { prefix, cursor, limit } = checkListOptions(options);
    return this.#list(prefix, cursor, limit);
  }

  async *#list(prefix: string, cursor: string | undefined, limit: number): AsyncGenerator<Entry> {
    let after = cursor, given = 0;
    while (given < limit) {
      this.#check();
      const page = await this.store.list({ prefix, after, limit: Math.min(256, limit - given) });
      if (page.length === 0) return;
      for (const soul of page) {
        const data = await this.#nodeData(soul);
        if (data && given < limit) {
          given++;
          yield { soul, data };
        }
      }
      after = page[page.length - 1];
    }
  }

  /**
   * How many nodes have a live field: as many as {@link list} yields.
   * Engines that keep the count answer at once (SQLite); others are read
   * node by node.
   */
  async countNodes(): Promise<number> {
    this.#check();
    if (this.store.countLive !== undefined) return await this.store.countLive();
    let n = 0;
    for await (const _ of this.#list("", undefined, Infinity)) n++;
    return n;
  }

  /**
   * Follows links from `from` along `path` and returns the nodes reached that
   * satisfy `where`. The work is bounded by the database's query budget
   * (core/query_budget.ts): over it the query rejects with a
   * `QueryTooLargeError` naming the budget; within it the query yields to
   * the event loop every few milliseconds.
   */
  async query(q: Query): Promise<Entry[]> {
    this.#check();
    if (typeof q !== "object" || q === null) throw new TypeError("A query must be an object");
    const from = typeof q.from === "string" ? [q.from] : q.from;
    if (!Array.isArray(from) || from.length === 0) {
      throw new TypeError("query.from must be a soul or a list of souls");
    }
    const path = q.path ?? [];
    if (!Array.isArray(path)) throw new TypeError("query.path must be an array of field names");
    const meter = new QueryMeter(this.#queryBudget, path.length); // before looking at each step
    meter.frontier(from.length);
    from.forEach((s) => checkSoul(s));
    path.forEach((f) => f === "*" || checkField(f));
    const where = compileWhere(q.where);
    const conditions = q.where === undefined ? 0 : Object.keys(q.where).length;
    const limit = q.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`query.limit must be a non-negative integer`);
    }
    let level = [...new Set(from)];
    for (const step of path) {
      const next = new Set<string>();
      for (const soul of level) {
        meter.visit();
        const data = await this.#nodeData(soul);
        let looked = 0;
        if (data) {
          const fields = step === "*" ? Object.keys(data) : [step];
          looked = fields.length;
          for (const field of fields) {
            const v = data[field];
            if (isLink(v)) next.add(v["#"]);
          }
          meter.frontier(next.size);
        }
        if (meter.spend(looked)) {
          await meter.pause();
          this.#check();
        }
      }
      level = [...next];
    }
    const out: Entry[] = [];
    for (const soul of level) {
      if (out.length >= limit) break;
      meter.visit();
      const data = await this.#nodeData(soul);
      if (data && where(data)) out.push({ soul, data });
      if (meter.spend(conditions)) {
        await meter.pause();
        this.#check();
      }
    }
    return out;
  }

  /** Calls `cb` for each committed change to `target` (local writes and merged foreign ops). Returns unsubscribe. */
  watch(target: WatchTarget, cb: (change: Change) => void): () => void {
    this.#check();
    if (typeof target === "string") checkSoul(target);
    else if (typeof target !== "object" || target === null || typeof target.prefix !== "string") {
      throw new TypeError("watch takes a soul or { prefix }");
    }
    if (typeof cb !== "function") throw new TypeError("watch needs a callback");
    const entry = { target, cb };
    this.#watchers.add(entry);
    return () => this.#watchers.delete(entry);
  }

  /**
   * Low-level hook for replication: `listener` gets the records of every
   * committed write, after the commit, with `local` true for this replica's
   * own writes. Convert with {@link recordToOp}. Returns unsubscribe.
   */
  onCommit(listener: (records: readonly FieldRecord[], local: boolean) => void): () => void {
    this.#check();
    this.#commitListeners.add(listener);
    return () => this.#commitListeners.delete(listener);
  }

  #emit(events: Change[]): void {
    if (this.#watchers.size === 0) return;
    for (const ev of events) {
      for (const { target, cb } of this.#watchers) {
        const hit = typeof target === "string" ? ev.soul === target : ev.soul.startsWith(target.prefix);
        if (!hit) continue;
        try {
          cb(ev);
        } catch (e) {
          reportError(e);
        }
      }
    }
  }

  // ---------------------------------------------------------------- replication

  /**
   * One page of the ops this replica holds that were committed after `after`
   * (a seq; default 0, everything): whole nodes at a time, about `limit` ops
   * (default 10,000). While the result has a `cursor`, pass it back (with the
   * same `after`) for the next page. After the last page, `seq` is the point
   * the export has reached: the `after` of the next export.
   *
   * @example
   * ```ts
   * let after = 0; // what the consumer has
   * const ops = [];
   * for (let cursor: number | undefined, page; ; cursor = page.cursor) {
   *   page = await db.exportOps({ after, cursor });
   *   ops.push(...page.ops);
   *   if (page.cursor === undefined) { after = page.seq; break; }
   * }
   * ```
   */
  async exportOps(
    options: { after?: number; limit?: number; cursor?: number } = {},
  ): Promise<{ ops: Op[]; seq: number; cursor?: number }> {
    this.#check();
    const after = options.after ?? 0, limit = options.limit ?? 10_000;
    const page = await this.store.changes(after, { limit, cursor: options.cursor });
    const ops = page.records.map(recordToOp);
    return page.cursor === undefined ? { ops, seq: page.seq } : { ops, seq: page.seq, cursor: page.cursor };
  }

  /** SHA-256 (hex) of the replica's whole state, independent of the order ops arrived in. */
  async stateHash(): Promise<string> {
    this.#check();
    await this.#draining;
    const all: StoredRecord[] = [];
    for (let cursor: number | undefined;;) {
      const page = await this.store.changes(0, { limit: 10_000, cursor });
      for (const r of page.records) all.push(r);
      if ((cursor = page.cursor) === undefined) break;
    }
    all.sort((a, b) => compareCodePoints(a.soul, b.soul) || compareCodePoints(a.field, b.field));
    const parts = all.map((r) =>
      encodeOps([{
        soul: r.soul,
        field: r.field,
        value: decodeValue(r.value),
        state: hlcFromWords(r.stateHi, r.stateLo),
        actor: hlcFromWords(r.actorHi, r.actorLo),
      }])
    );
    const total = parts.reduce((n, p) => n + p.length, 0);
    const buf = new Uint8Array(total);
    let at = 0;
    for (const p of parts) buf.set(p, (at += p.length) - p.length);
    return Array.from(this.kernels.sha256(buf), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Finishes queued writes, stops timers and closes the store. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#draining;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watchers.clear();
    this.#commitListeners.clear();
    await this.store.close();
  }
}

/** Checks the deferral options of {@link Database.create}. */
function checkDeferralOptions(o: DatabaseOptions): void {
  if (o.horizon !== undefined && !(typeof o.horizon === "number" && o.horizon > 0)) {
    throw new RangeError(`horizon must be a positive number of ms, got ${o.horizon}`);
  }
  const drift = o.maxDrift ?? DEFAULT_MAX_DRIFT_MS;
  if (o.horizon !== undefined && o.horizon < drift) {
    throw new RangeError(`horizon (${o.horizon} ms) must be at least maxDrift (${drift} ms)`);
  }
  for (const k of ["maxDeferred", "maxDeferredPerSource"] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
      throw new RangeError(`${k} must be a non-negative integer, got ${v}`);
    }
  }
}

/** The source of {@link ApplyOptions}, checked. */
function checkSource(options: ApplyOptions): string | undefined {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("applyOps options must be an object");
  }
  const { source } = options;
  if (source !== undefined && (typeof source !== "string" || source === "")) {
    throw new TypeError("applyOps source must be a non-empty string (a peer id)");
  }
  return source;
}

/** {@link Store.deferredDue}, or for a store without it, the same read from every deferred op. */
function dueDeferred(store: Store, until: number, limit: number): Promise<DeferredOp[]> {
  if (store.deferredDue !== undefined) return store.deferredDue(until, limit);
  return store.deferred().then((all) => all.filter((d) => d.due <= until).slice(0, limit));
}

/** {@link Store.deferredCount}, or for a store without it, counted from every deferred op. */
function countDeferred(store: Store, source?: string): Promise<number> {
  if (store.deferredCount !== undefined) return store.deferredCount(source);
  return store.deferred().then((all) =>
    source === undefined ? all.length : all.filter((d) => (d.source ?? "") === source).length
  );
}

/**
 * Checks `list` options (shared with the HTTP client, so both refuse the
 * same input alike) and fills in the defaults: no prefix, no cursor, no limit.
 */
export function checkListOptions(
  options: ListOptions,
): { prefix: string; cursor: string | undefined; limit: number } {
  const { prefix = "", cursor } = options;
  const limit = options.limit ?? Infinity;
  if (typeof prefix !== "string") throw new TypeError("list prefix must be a string");
  if (cursor !== undefined && typeof cursor !== "string") throw new TypeError("list cursor must be a soul");
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`list limit must be a non-negative integer, got ${limit}`);
  }
  return { prefix, cursor, limit };
}

function groupChanges(records: readonly FieldRecord[], source: "local" | "remote"): Change[] {
  const bySoul = new Map<string, NodeData>();
  for (const r of records) {
    let c = bySoul.get(r.soul);
    if (!c) bySoul.set(r.soul, c = {});
    setField(c, r.field, decodeValue(r.value));
  }
  return [...bySoul].map(([soul, changes]) => ({ soul, changes, source }));
}

const CONDITION_KEYS = new Set(["eq", "lt", "gt", "prefix"]);

function compileWhere(where: Query["where"]): (data: NodeData) => boolean {
  if (where === undefined) return () => true;
  if (typeof where !== "object" || where === null || Array.isArray(where)) {
    throw new TypeError("query.where must be an object of field conditions");
  }
  const tests: ((data: NodeData) => boolean)[] = [];
  for (const field of Object.keys(where)) {
    checkField(field);
    const raw = where[field] as unknown;
    const isCond = typeof raw === "object" && raw !== null && !(raw instanceof Uint8Array) && !isLink(raw);
    const cond = (isCond ? raw : { eq: raw }) as Condition;
    for (const k of Object.keys(cond)) {
      if (!CONDITION_KEYS.has(k)) {
        throw new RangeError(`Unknown condition "${k}" on ${field}: use eq, lt, gt or prefix`);
      }
    }
    if (cond.prefix !== undefined && typeof cond.prefix !== "string") {
      throw new TypeError(`prefix on ${field} must be a string`);
    }
    for (const k of ["lt", "gt"] as const) {
      const v = cond[k];
      if (v !== undefined && typeof v !== "number" && typeof v !== "string") {
        throw new TypeError(`${k} on ${field} must be a number or a string`);
      }
    }
    tests.push((data) => {
      const v = data[field];
      if (v === undefined) return false;
      if ("eq" in cond && !sameValue(v, cond.eq as Value)) return false;
      if (cond.lt !== undefined && !(typeof v === typeof cond.lt && (v as number | string) < cond.lt)) {
        return false;
      }
      if (cond.gt !== undefined && !(typeof v === typeof cond.gt && (v as number | string) > cond.gt)) {
        return false;
      }
      if (cond.prefix !== undefined && !(typeof v === "string" && v.startsWith(cond.prefix))) return false;
      return true;
    });
  }
  return (data) => tests.every((t) => t(data));
}

function sameValue(a: Value, b: Value): boolean {
  if (isLink(a) && isLink(b)) return a["#"] === b["#"];
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  return a === b;
}

/** Errors from callbacks and timers must not stop the database: they are logged. */
function reportError(e: unknown): void {
  console.error("lattice:", e);
}
