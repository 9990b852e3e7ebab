/**
 * Deferral: ops stamped too far ahead of the wall clock wait in the store's
 * deferred table until their time comes, bounded — a horizon past which they
 * are refused (year 10889 was accepted once and waited forever), and quotas
 * in all and per source (a peer, or the actor of ops applied locally), so that
 * no source fills the table or crowds out others. Deferred ops stay on disk:
 * counted, and read only by due time, a round at a time, when a timer (of the
 * database's {@link World}) fires (see "Deferred ops" in docs/ARCHITECTURE.md).
 *
 * @module
 */
import { type Clock, DEFAULT_MAX_DRIFT_MS } from "../clock.ts";
import { decodeOps, encodeOps, type Op, opToRecord } from "../op.ts";
import type { DeferOp, DeferredOp, FieldRecord, Store } from "../store.ts";
import type { Timer, World } from "../world.ts";
import type { ApplyResult, CommitQueue } from "./commit_queue.ts";
import type { OpsInParts } from "./foreign_batch.ts";
import { reportError } from "./report_error.ts";

/**
 * What `Database.deferredStatus` reports.
 *
 * @example
 * ```ts
 * import { type DeferredStatus, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * // A state: 48-bit ms, then a 16-bit counter.
 * const inAnHour = (Date.now() + 3_600_000).toString(16).padStart(12, "0") + "0000";
 * await db.applyOps([{ soul: "later", field: "f", value: 1, state: inAnHour, actor: "00000000000000aa" }]);
 * const status: DeferredStatus = db.deferredStatus();
 * console.log(status.count, status.next! > Date.now()); // 1 true: kept aside until its time
 * await db.close();
 * ```
 */
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

/** The deferral bounds among the options of `Database.create`. */
export interface DeferralOptions {
  readonly maxDrift?: number;
  readonly horizon?: number;
  readonly maxDeferred?: number;
  readonly maxDeferredPerSource?: number;
}

const DEFAULT_HORIZON_MS = 86_400_000;
const DEFAULT_MAX_DEFERRED = 100_000;
const DEFAULT_MAX_DEFERRED_PER_SOURCE = 10_000;
/** Deferred ops read and applied per round when they come due. */
const DUE_BATCH = 4_096;
const RESOLVED: Promise<void> = Promise.resolve();
const NONE: readonly never[] = Object.freeze([]);

/** Checks the deferral options of `Database.create`. */
export function checkDeferralOptions(o: DeferralOptions): void {
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

/** The deferred ops of one database: their bounds, counts and timer. */
export class Deferral {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #world: World;
  readonly #queue: CommitQueue;
  readonly #horizon: number;
  readonly #maxDeferred: number;
  readonly #maxPerSource: number;
  #timer: Timer | undefined;
  /** When the earliest deferred op known comes due (the timer is set for it); `Infinity` when none. */
  #timerDue = Infinity;
  /** Ops deferred: stored, or queued to be (reserved by {@link #admit}). */
  #count = 0;
  /** The same per source, for the sources met since open (read from the store once each). */
  #perSource = new Map<string, number>();
  /** Rounds of due ops committed: a count read from the store during one is stale (see {@link #admit}). */
  #undeferRounds = 0;
  /** The rounds of due ops, one after another. */
  #dueRounds: Promise<void> = RESOLVED;
  #refused = 0;
  #closed = false;

  /** `options` checked by {@link checkDeferralOptions}. */
  constructor(store: Store, clock: Clock, world: World, queue: CommitQueue, options: DeferralOptions) {
    this.#store = store;
    this.#clock = clock;
    this.#world = world;
    this.#queue = queue;
    this.#horizon = options.horizon ?? Math.max(DEFAULT_HORIZON_MS, clock.maxDrift);
    this.#maxDeferred = options.maxDeferred ?? DEFAULT_MAX_DEFERRED;
    this.#maxPerSource = options.maxDeferredPerSource ?? DEFAULT_MAX_DEFERRED_PER_SOURCE;
  }

  /**
   * On open: deferred ops stay on disk, counted, and only those due are read
   * (lazily, by due time). Those beyond the horizon, which a store written
   * before there was one may hold, are dropped.
   */
  async open(): Promise<void> {
    const store = this.#store, clock = this.#clock;
    if (store.dropDeferredAfter !== undefined && this.#horizon !== Infinity) {
      this.#refused += await store.dropDeferredAfter(clock.now() + this.#horizon - clock.maxDrift);
    }
    this.#count = await countDeferred(store);
    await this.processDue();
  }

  /** How many ops wait, when the next comes due, how many were refused since open. */
  status(): DeferredStatus {
    return {
      count: this.#count,
      next: this.#count === 0 || this.#timerDue === Infinity ? null : this.#timerDue,
      refused: this.#refused,
    };
  }

  /** Stops the timer; no round runs after it. */
  close(): void {
    this.#closed = true;
    this.#world.clearTimer(this.#timer);
  }

  /**
   * A checked op too far ahead of the wall clock (op `i` of its batch, at
   * `ms`), as it is stored aside until its time comes; `undefined` when it
   * is beyond the horizon and came from a peer (refused, a local call
   * throws).
   */
  setAside(op: Op, ms: number, i: number, source: string | undefined): DeferOp | undefined {
    const ahead = ms - this.#clock.now();
    if (ahead > this.#horizon) {
      if (source !== undefined) return undefined;
      throw new RangeError(
        `Op ${i} is refused: its state is ${ahead} ms ahead of this replica's clock, beyond the horizon of ${this.#horizon} ms`,
      );
    }
    return { due: this.#clock.dueAt(op.state), op: encodeOps([op]), source: source ?? op.actor };
  }

  /**
   * Commits a foreign batch that defers or refuses ops: the deferred ones are
   * admitted under the quotas first, and the timer is set for them after.
   */
  async commit(
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
      if (this.#closed) throw new Error("The database is closed");
      r = await (this.#queue.enqueue(false, now, kept, NONE, undefined, parts) as Promise<ApplyResult>);
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
        const n = await countDeferred(this.#store, d.source);
        // A round of due ops committed meanwhile may have taken some of them: count again.
        if (!perSource.has(d.source!) && rounds === this.#undeferRounds) perSource.set(d.source!, n);
      }
    }
    let kept: DeferOp[] | undefined;
    for (let i = 0; i < defer.length; i++) {
      const d = defer[i], source = d.source!, n = perSource.get(source)!;
      const full = this.#count >= this.#maxDeferred
        ? `${this.#count} ops are deferred already, the most this replica keeps`
        : n >= this.#maxPerSource
        ? `${n} ops from ${source} are deferred already, the most one source may have`
        : undefined;
      if (full === undefined) {
        perSource.set(source, n + 1);
        this.#count++;
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
      this.#count--;
      const source = d.source ?? "", n = this.#perSource.get(source);
      if (n === undefined) continue; // not counted since open: the store's count is right
      if (n <= 1) this.#perSource.delete(source);
      else this.#perSource.set(source, n - 1);
    }
  }

  /** Sets the timer for a deferred op due at `due`, unless it is already set for one due earlier. */
  #arm(due: number): void {
    if (!(due < this.#timerDue) || this.#closed) return;
    this.#world.clearTimer(this.#timer);
    this.#timerDue = due;
    this.#timer = this.#world.setTimer(
      this.#onTimer,
      Math.min(Math.max(0, due - this.#clock.now()), 2 ** 31 - 1),
    );
  }

  #onTimer = (): void => {
    this.#timer = undefined;
    this.processDue().catch((e) => {
      reportError(e);
      this.#arm(this.#clock.now() + 1000); // tried again in a second, not at once (nor never)
    });
  };

  /** Applies the deferred ops that have come due, in rounds one after another. */
  processDue(): Promise<void> {
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
    this.#world.clearTimer(this.#timer);
    this.#timerDue = Infinity; // set again below (or by ops deferred meanwhile)
    if (this.#count === 0) return;
    const clock = this.#clock, now = clock.now();
    for (;;) {
      const due = await dueDeferred(this.#store, now, DUE_BATCH);
      if (due.length === 0 || this.#closed) break;
      const records: FieldRecord[] = [], later: DeferOp[] = [], ids: number[] = [];
      for (const d of due) {
        ids.push(d.id);
        for (const op of decodeOps(d.op)) {
          // Due by a maxDrift it was deferred with, but still future by this one: deferred again.
          if (clock.isFuture(op.state)) {
            later.push({ due: clock.dueAt(op.state), op: encodeOps([op]), source: d.source });
          } else records.push(opToRecord(op));
        }
      }
      await this.#queue.enqueue(false, records, later, ids, undefined);
      this.#undeferRounds++;
      this.#release(due);
      for (const d of later) this.#admitted(d);
      if (due.length < DUE_BATCH) break;
    }
    if (this.#closed) return;
    const [next] = await dueDeferred(this.#store, Infinity, 1);
    if (next !== undefined) this.#arm(next.due);
  }

  /** Counts an op deferred again by a round of due ops (quotas do not refuse what was kept). */
  #admitted(d: DeferOp): void {
    this.#count++;
    const n = this.#perSource.get(d.source!);
    if (n !== undefined) this.#perSource.set(d.source!, n + 1);
  }
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
