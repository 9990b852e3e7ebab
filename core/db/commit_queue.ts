/**
 * The commit queue: every mutation — local `put`/`delete`, foreign
 * `applyOps`, deferred ops come due — goes through one ordered queue, drained
 * in one store transaction per round (group commit), so concurrent writers
 * share a commit while each caller's promise still resolves only after its own
 * data is committed.
 *
 * A round merges its jobs against the store (core/merge.ts), raises the clock
 * mark if the clock passed it (clock_mark.ts), commits, answers its writers
 * and then tells watchers (watch.ts). On a store with synchronous twins the
 * first write of a turn, with nothing queued and nobody watching, is committed
 * at once through one reused job object, with no promise of its own until the
 * result: the one-op hot path (docs/ARCHITECTURE.md has the measured habits).
 *
 * @module
 */
import type { Clock, Hlc } from "../clock.ts";
import type { Kernels } from "../kernels/types.ts";
import { commitOrder, type MergeJob, mergePlanned, planReads, repeatsKeys, winners } from "../merge.ts";
import {
  type CommitBatch,
  type DeferOp,
  type FieldRecord,
  isSyncStore,
  type Store,
  type SyncStore,
} from "../store.ts";
import type { ClockMark } from "./clock_mark.ts";
import { columnRecord, type OpsInParts, PART_OPS } from "./foreign_batch.ts";
import type { CommitReport, Watchers } from "./watch.ts";

/**
 * Result of a write.
 *
 * @example
 * ```ts
 * import { open, type WriteResult } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * const first: WriteResult = await db.put("alice", { name: "Alice" });
 * const second: WriteResult = await db.put("alice", { name: "Alicia" });
 * console.log(second.soul, second.state > first.state); // alice true: a later write gets a higher state
 * await db.close();
 * ```
 */
export interface WriteResult {
  readonly soul: string;
  /** The state (HLC) the write was stamped with. */
  readonly state: Hlc;
}

/**
 * Result of `Database.applyOps`.
 *
 * @example
 * ```ts
 * import { type ApplyResult, open } from "../../mod.ts";
 * const a = await open({ storage: "memory" });
 * const b = await open({ storage: "memory" });
 * await a.put("alice", { name: "Alice" });
 * const { ops } = await a.exportOps();
 * const first: ApplyResult = await b.applyOps(ops);
 * const again: ApplyResult = await b.applyOps(ops);
 * console.log(first.applied, again.applied, again.ignored); // 1 0 1: merging is idempotent
 * await a.close();
 * await b.close();
 * ```
 */
export interface ApplyResult {
  /** Ops that won their field and were stored. */
  readonly applied: number;
  /** Ops that lost to (or equalled) the stored state. */
  readonly ignored: number;
  /** Ops too far in the future, kept until their time comes. */
  readonly deferred: number;
  /**
   * Ops refused, not stored: only with `ApplyOptions.source`, and only
   * when some were (stamped beyond the horizon, or deferred over a quota).
   */
  readonly refused?: number;
}

/** One write waiting in the queue. */
interface Job extends MergeJob {
  readonly defer: readonly DeferOp[];
  readonly undefer: readonly number[];
  /** What a local write resolves with; a foreign job resolves with its {@link ApplyResult}. */
  readonly result: WriteResult | undefined;
  /**
   * Whether watchers and commit listeners hear of it as this replica's own
   * writes: `local` ones, and signed local writes, which are merged as
   * foreign ones are (see {@link CommitQueue.enqueue}).
   */
  readonly own: boolean;
  /** A large foreign batch whose records are made part by part as it is committed (no `records`). */
  readonly parts?: OpsInParts;
  readonly resolve: (r: WriteResult | ApplyResult) => void;
  readonly reject: (e: unknown) => void;
}

/** A drain decided and ready for the store (see `CommitQueue.#seal`). */
interface SealedDrain extends CommitReport {
  readonly batch: CommitBatch;
  /** Per job, its records that won (were stored). */
  readonly applied: number[];
  /** The clock bound the batch raises, if it does (see {@link ClockMark.raise}). */
  readonly mark: [number, number] | undefined;
}

const NONE: readonly never[] = Object.freeze([]);
const RESOLVED: Promise<void> = Promise.resolve();

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

/** The ordered write queue of one database. */
export class CommitQueue {
  readonly #store: Store;
  /** The store's synchronous twins, when it has them. */
  readonly #sync: SyncStore | undefined;
  readonly #kernels: Kernels;
  readonly #clock: Clock;
  readonly #mark: ClockMark;
  readonly #watchers: Watchers;
  #queue: Job[] = [];
  #draining: Promise<void> | undefined;

  constructor(store: Store, kernels: Kernels, clock: Clock, mark: ClockMark, watchers: Watchers) {
    this.#store = store;
    this.#sync = isSyncStore(store) ? store : undefined;
    this.#kernels = kernels;
    this.#clock = clock;
    this.#mark = mark;
    this.#watchers = watchers;
  }

  /** The store's synchronous twins, when it has them (the intake checks `beginParts` on them). */
  get sync(): SyncStore | undefined {
    return this.#sync;
  }

  /** The drain under way, if one is: it settles once the queue is empty. */
  get draining(): Promise<void> | undefined {
    return this.#draining;
  }

  /** Resolves once every write queued before the call has committed (or failed). */
  async idle(): Promise<void> {
    while (this.#draining !== undefined) await this.#draining;
  }

  /**
   * Queues a write for the next drain. The promise resolves once it is
   * committed, with `result` (a local write's) or else the job's
   * {@link ApplyResult}: writers get it from the drain, with no turn of
   * their own after it. `own` (default `local`) marks this replica's own
   * writes for watchers.
   *
   * A foreign write moves the clock past its states as it is queued, not
   * once it is committed: a local write stamped while it waits in the queue
   * is then stamped after it, and wins against it as local writes do (it is
   * stored without reading the store). A local write signed after its state
   * was taken (core/db/trust.ts) comes as `local` false, `own` true: it is
   * stored blind too unless a foreign write queued since has a state as late
   * as its own, and merged then.
   */
  enqueue(
    local: boolean,
    records: readonly FieldRecord[],
    defer: readonly DeferOp[],
    undefer: readonly number[],
    result: WriteResult | undefined,
    parts?: OpsInParts,
    own: boolean = local,
  ): Promise<WriteResult | ApplyResult> {
    if (!own) this.#observeQueued(records, parts);
    else if (!local) local = this.#stampedAfterForeign(records);
    const sync = this.#sync;
    if (
      sync !== undefined && this.#draining === undefined && !this.#committedNow && parts === undefined &&
      this.#watchers.isQuiet()
    ) {
      // The first write of a turn, with nothing queued or being committed and nobody to tell, is
      // committed now, as a round of its own; writes after it in the same turn are queued and
      // drained together a turn later (group commit), as always.
      this.#committedNow = true;
      RESOLVED.then(this.#turnEnded);
      const job = this.#nowJob;
      job.local = local, job.records = records, job.defer = defer, job.undefer = undefer, job.result = result;
      job.own = own;
      try {
        this.#commitOneSync(job, sync);
        return Promise.resolve(this.#nowResult!);
      } catch (e) {
        return Promise.reject(e);
      } finally {
        this.#nowResult = undefined;
        job.records = job.defer = job.undefer = NONE, job.result = undefined; // hold nothing of it
      }
    }
    return this.#later({
      local,
      records,
      defer,
      undefer,
      result,
      parts,
      own,
      resolve: rethrow,
      reject: rethrow,
    });
  }

  /**
   * Queues `job` for the next drain; the promise settles as the drain
   * commits it. (Apart from {@link enqueue}, whose every call would
   * otherwise allocate the context this closure needs.)
   */
  #later(job: { -readonly [K in keyof Job]: Job[K] }): Promise<WriteResult | ApplyResult> {
    return new Promise((resolve, reject) => {
      job.resolve = resolve, job.reject = reject;
      this.#queue.push(job);
      this.#draining ??= RESOLVED.then(this.#drain);
    });
  }

  /** Whether a write was committed at once in this turn (see {@link enqueue}). */
  #committedNow = false;
  #turnEnded = (): void => {
    this.#committedNow = false;
  };
  /** What the write committed at once resolves with. */
  #nowResult: WriteResult | ApplyResult | undefined;
  #takeNowResult = (r: unknown): void => {
    this.#nowResult = r as WriteResult | ApplyResult;
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
    own: false,
    resolve: this.#takeNowResult,
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
        let report: CommitReport;
        try {
          report = jobs[0].parts !== undefined
            ? this.#commitParts(jobs[0], jobs[0].parts, sync)
            : jobs.length === 1
            ? this.#commitOneSync(jobs[0], sync)
            : this.#commitJobsSync(jobs, sync);
        } catch (e) {
          this.#fail(jobs, e);
          continue;
        }
        this.#watchers.announce(report);
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
        await this.#commitJobs(jobs).then(
          (report) => this.#watchers.announce(report),
          (e) => this.#fail(jobs, e),
        );
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

  async #commitJobs(jobs: Job[]): Promise<CommitReport> {
    const plan = planReads(jobs, this.#kernels);
    const found = plan.pairs.length > 0 ? await this.#store.readFields(plan.pairs) : NONE;
    const sealed = this.#seal(jobs, mergePlanned(jobs, plan, found, this.#kernels));
    await this.#store.commit(sealed.batch);
    return this.#settle(jobs, sealed);
  }

  #commitJobsSync(jobs: Job[], store: SyncStore): CommitReport {
    const plan = planReads(jobs, this.#kernels);
    const found = plan.pairs.length > 0 ? store.readFieldsSync(plan.pairs) : NONE;
    const sealed = this.#seal(jobs, mergePlanned(jobs, plan, found, this.#kernels));
    store.commitSync(sealed.batch);
    return this.#settle(jobs, sealed);
  }

  /**
   * Commits a large foreign batch with no key twice in parts (see
   * foreign_batch.ts): for each part, its records are made, read against the
   * store (which sees the parts written before), and the winners written; the
   * deferred ops and the clock bound close the one transaction. Any failure
   * rolls back all of it.
   */
  #commitParts(job: Job, src: OpsInParts, store: SyncStore): CommitReport {
    const { n, deferred } = src;
    const watchers = this.#watchers, report = watchers.report();
    const commit = store.beginParts!();
    let applied = 0, stored = 0; // (not deferred, nor refused)
    try {
      for (let start = 0; start < n; start += PART_OPS) {
        const end = Math.min(n, start + PART_OPS);
        const records: FieldRecord[] = [];
        for (let i = start; i < end; i++) if (deferred?.[i] !== 1) records.push(columnRecord(src, i));
        stored += records.length;
        const won = winners(records, store.readFieldsSync(records), this.#kernels);
        applied += won.length;
        watchers.add(report, won, false);
        commit.write(won);
      }
      const rest: { defer: readonly DeferOp[]; meta?: Record<string, string> } = {
        defer: job.defer,
      };
      const mark = this.#mark.raise(rest);
      commit.commit(rest);
      if (mark !== undefined) this.#mark.keep(mark);
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
  #commitOneSync(job: Job, store: SyncStore): CommitReport {
    const records = job.records;
    let won = records as FieldRecord[];
    if (!job.local && records.length > 0) {
      if (repeatsKeys(records)) return this.#commitJobsSync([job], store);
      won = winners(records, store.readFieldsSync(records), this.#kernels);
    }
    const batch: CommitBatch & { meta?: Record<string, string> } = {
      records: won,
      defer: job.defer,
      undefer: job.undefer,
    };
    const mark = this.#mark.raise(batch);
    store.commitSync(batch);
    if (mark !== undefined) this.#mark.keep(mark);
    answer(job, won.length, records.length);
    const report = this.#watchers.report();
    this.#watchers.add(report, won, job.own);
    return report;
  }

  /** The latest state of a foreign write queued so far (-1 before the first): see {@link enqueue}. */
  #foreignHi = -1;
  #foreignLo = 0;

  /** Moves the clock past the latest state of a foreign write being queued (`records`, or its `parts`). */
  #observeQueued(records: readonly FieldRecord[], parts: OpsInParts | undefined): void {
    let h = -1, l = 0;
    if (parts === undefined) {
      for (let i = 0; i < records.length; i++) {
        const r = records[i];
        if (r.stateHi > h || (r.stateHi === h && r.stateLo > l)) h = r.stateHi, l = r.stateLo;
      }
    } else {
      const { n, stateHi, stateLo, deferred } = parts;
      for (let i = 0; i < n; i++) {
        if (deferred?.[i] === 1) continue;
        if (stateHi[i] > h || (stateHi[i] === h && stateLo[i] > l)) h = stateHi[i], l = stateLo[i];
      }
    }
    if (h < 0) return;
    this.#clock.observeWords(h, l);
    if (h > this.#foreignHi || (h === this.#foreignHi && l > this.#foreignLo)) {
      this.#foreignHi = h, this.#foreignLo = l;
    }
  }

  /**
   * Whether every one of a local write's `records` is stamped after the
   * latest foreign state queued so far: then no foreign write can beat them
   * (one queued before their stamp moved the clock past itself first; one
   * queued since has an earlier state), and they are stored blind.
   */
  #stampedAfterForeign(records: readonly FieldRecord[]): boolean {
    const h = this.#foreignHi, l = this.#foreignLo;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (r.stateHi < h || (r.stateHi === h && r.stateLo <= l)) return false;
    }
    return true;
  }

  /** Everything a drain commits, counts and reports, decided before the store is asked to commit. */
  #seal(jobs: readonly Job[], wonPerJob: readonly (readonly FieldRecord[])[]): SealedDrain {
    const applied: number[] = new Array(jobs.length);
    const { events, committed } = this.#watchers.report();
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i], won = wonPerJob[i];
      applied[i] = won.length;
      this.#watchers.add({ events, committed }, won, job.own);
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
    return { batch, applied, events, committed, mark: this.#mark.raise(batch) };
  }

  /** After the store committed a sealed drain: the clock bound is durable, the writers are answered. */
  #settle(jobs: readonly Job[], sealed: SealedDrain): CommitReport {
    if (sealed.mark !== undefined) this.#mark.keep(sealed.mark);
    for (let i = 0; i < jobs.length; i++) answer(jobs[i], sealed.applied[i], jobs[i].records.length);
    return sealed;
  }
}
