/**
 * The Database: the graph on top of a {@link Store}, with HAM merge on hybrid
 * logical clocks, group commit, deferred future ops, watches and queries.
 * Runtime-free: the store, kernels and world are injected (see `open` in
 * mod.ts).
 *
 * This file is the facade: it checks arguments and hands each call to the
 * part that does the job, each a file in core/db/ (docs/ARCHITECTURE.md,
 * "The local database", says which does what): local writes, the foreign
 * intake, the commit queue (group commit), deferral, reads and queries,
 * vector indexes and search, watchers, export, and the base class over the
 * store (`stored.ts`), which keeps the store private.
 *
 * @module
 */
import { Clock, hlcFromWords } from "./clock.ts";
import type { Kernels } from "./kernels/types.ts";
import { actorWords, type Op, opToRecord, recordToOp } from "./op.ts";
import { Trust } from "./db/trust.ts";
import { TrustApi } from "./db/trust_api.ts";
import { checkField, checkSoul, flattenFields } from "./value.ts";
import { isTombstone } from "./value_encoding.ts";
import type { Store } from "./store.ts";
import { StoredData, storeOf } from "./db/stored.ts";
import { checkQueryBudget, type QueryBudget } from "./query_budget.ts";
import { systemWorld, type World } from "./world.ts";
import { type DatabaseOptions, restoreActor } from "./db/options.ts";
import { type ApplyOptions, checkSource, ForeignIntake } from "./db/apply.ts";
import { ClockMark } from "./db/clock_mark.ts";
import { type ApplyResult, CommitQueue, type WriteResult } from "./db/commit_queue.ts";
import { checkDeferralOptions, Deferral, type DeferredStatus } from "./db/deferral.ts";
import { stateHash } from "./db/export.ts";
import { putRecords, tombstoneRecords } from "./db/local_write.ts";
import { type Query, runQuery } from "./db/query.ts";
import { checkListOptions, type Entry, type ListOptions } from "./db/read.ts";
import { type Change, type CommitListener, Watchers, type WatchTarget } from "./db/watch.ts";
import { Vectors } from "./db/vectors.ts";
import type { IndexInfo, IndexOptions } from "./db/vector_spec.ts";
import { runSearch, type SearchOptions, type SearchResult } from "./db/vector_search.ts";

export { checkListOptions, opToRecord, recordToOp, storeOf };
export type {
  ApplyOptions,
  ApplyResult,
  Change,
  DeferredStatus,
  Entry,
  IndexInfo,
  IndexOptions,
  ListOptions,
  Query,
  SearchOptions,
  SearchResult,
  WatchTarget,
  WriteResult,
};
export type { Condition } from "./db/query.ts";
export type { DatabaseOptions };

/**
 * The embedded graph database: what `open` returns, built from a store and kernels.
 *
 * @example
 * ```ts
 * import { Database, open } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { name: "Alice" });
 * console.log(db instanceof Database, db.storage, await db.countNodes()); // true memory 1
 * await db.close();
 * ```
 */
export class Database extends StoredData {
  readonly #store: Store;
  readonly kernels: Kernels;
  readonly clock: Clock;
  /** This replica's 64-bit actor id, 16 hex digits. */
  readonly actor: string;
  readonly #actorHi: number;
  readonly #actorLo: number;
  readonly #world: World;
  readonly #watchers = new Watchers();
  readonly #queue: CommitQueue;
  readonly #deferral: Deferral;
  readonly #intake: ForeignIntake;
  readonly #vectors: Vectors;
  readonly #queryBudget: QueryBudget;
  readonly #trust: Trust;
  /** Identity, certificates and revocations (core/db/trust_api.ts). */
  readonly trust: TrustApi;

  private constructor(
    store: Store,
    kernels: Kernels,
    clock: Clock,
    actor: string,
    restoredMark: boolean,
    queryBudget: QueryBudget,
    options: DatabaseOptions,
  ) {
    super(store);
    this.#store = store;
    this.kernels = kernels;
    this.clock = clock;
    this.actor = actor;
    [this.#actorHi, this.#actorLo] = actorWords(actor);
    this.#world = options.world ?? systemWorld;
    this.#queryBudget = queryBudget;
    const now = options.now ?? (() => this.#world.now());
    this.#trust = new Trust(options.identity, kernels, options.space ?? "default", store, now);
    this.trust = new TrustApi(this.#trust, this, this.#world);
    this.#queue = new CommitQueue(store, kernels, clock, new ClockMark(clock, restoredMark), this.#watchers);
    this.#deferral = new Deferral(store, clock, this.#world, this.#queue, options);
    this.#intake = new ForeignIntake(clock, this.#queue, this.#deferral);
    this.#vectors = new Vectors(
      store,
      kernels,
      this.#watchers,
      this.#world,
      () => this.#queue.idle(),
      options.embed,
    );
  }

  /**
   * Opens a database over `store`: restores (or creates) the actor id and clock, resumes deferred ops.
   * (`open` in mod.ts chooses the store and kernels, and adds the network.)
   */
  static async create(options: DatabaseOptions): Promise<Database> {
    const { store, kernels } = options;
    const world = options.world ?? systemWorld;
    checkDeferralOptions(options);
    const queryBudget = checkQueryBudget(options.queryBudget);
    const actor = await restoreActor(store, world, options.identity);
    const last = await store.getMeta("clock");
    const clock = new Clock({ now: options.now, world, maxDrift: options.maxDrift, last: last ?? undefined });
    const restoredMark = last !== undefined && last !== null;
    const db = new Database(store, kernels, clock, actor, restoredMark, queryBudget, options);
    await db.#vectors.open(); // before any write: the build scan sees a still store
    await db.#deferral.open();
    return db;
  }

  // ---------------------------------------------------------------- writes

  /**
   * Merges the fields of `data` into node `soul`; nested objects become linked
   * child nodes (`soul/field`). Resolves after the write is committed.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * const { state } = await db.put("alice", { name: "Alice", pet: { name: "Rex" } });
   * console.log(state.length); // 16: the write's hybrid logical clock state
   * console.log(await db.get("alice/pet")); // { name: "Rex" }
   * await db.close();
   * ```
   */
  put(soul: string, data: Record<string, unknown>): Promise<WriteResult> {
    try {
      return this.#put(soul, data);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * {@link put}, throwing for bad input: the promise is the commit's own (no
   * await of it here), unless texts of indexed fields are embedded first.
   */
  #put(soul: string, data: Record<string, unknown>): Promise<WriteResult> {
    this.check();
    const prepared = this.#vectors.prepare(soul, data);
    if (prepared instanceof Promise) return prepared.then((d) => this.#commitPut(soul, d));
    return this.#commitPut(soul, prepared);
  }

  /** Commits a put of `data`, its vectors prepared: the clock state is taken now. */
  #commitPut(soul: string, data: Record<string, unknown>): Promise<WriteResult> {
    this.check();
    const fields = flattenFields(soul, data);
    const cert = this.#trust.certificateForPut(fields);
    const [stateHi, stateLo] = this.clock.tickWords();
    const records = putRecords(fields, stateHi, stateLo, this.#actorHi, this.#actorLo);
    return this.#trust.commitLocal(
      this.#queue,
      records,
      { soul, state: hlcFromWords(stateHi, stateLo) },
      cert,
    );
  }

  /**
   * Deletes field `field` of `soul`, or every field of the node, by writing tombstones.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.put("alice", { name: "Alice", age: 30 });
   * await db.delete("alice", "age");
   * console.log(await db.get("alice")); // { name: "Alice" }
   * await db.delete("alice");
   * console.log(await db.get("alice")); // undefined
   * await db.close();
   * ```
   */
  async delete(soul: string, field?: string): Promise<WriteResult> {
    this.check();
    checkSoul(soul);
    if (field !== undefined) checkField(field);
    const fields = field !== undefined
      ? [field]
      : (await this.#store.readNode(soul)).filter((r) => !isTombstone(r.value)).map((r) => r.field);
    const cert = this.#trust.certificateFor(soul, fields);
    const [stateHi, stateLo] = this.clock.tickWords();
    const result = { soul, state: hlcFromWords(stateHi, stateLo) };
    const records = tombstoneRecords(soul, fields, stateHi, stateLo, this.#actorHi, this.#actorLo);
    if (records.length > 0) await this.#trust.commitLocal(this.#queue, records, result, cert);
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
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
   * await a.put("alice", { name: "Alice" });
   * const { ops } = await a.exportOps();
   * console.log(await b.applyOps(ops)); // { applied: 1, ignored: 0, deferred: 0 }
   * console.log(await b.stateHash() === await a.stateHash()); // true
   * await a.close();
   * await b.close();
   * ```
   */
  applyOps(ops: readonly Op[] | Uint8Array, options?: ApplyOptions): Promise<ApplyResult> {
    try {
      const source = options === undefined ? undefined : checkSource(options);
      this.check();
      return this.#trust.admit(ops, source, this.#intake);
    } catch (e) {
      return Promise.reject(e);
    }
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
    return this.#deferral.status();
  }

  /**
   * Resolves once every write queued before the call has committed (or failed).
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * for (let i = 0; i < 3; i++) void db.put(`n${i}`, { i }); // not awaited one by one
   * await db.idle();
   * console.log(await db.countNodes()); // 3
   * await db.close();
   * ```
   */
  async idle(): Promise<void> {
    await this.#trust.settled();
    await this.#queue.idle();
  }

  /**
   * Applies deferred ops whose time has come. The database does this by
   * itself on a timer; tests with an injected clock call it directly.
   */
  async processDeferred(): Promise<void> {
    this.check();
    await this.#deferral.processDue();
    await this.#queue.draining;
  }

  // ---------------------------------------------------------------- reads

  /**
   * Follows links from `from` along `path` and returns the nodes reached that
   * satisfy `where`. The work is bounded by the database's query budget
   * (core/query_budget.ts): over it the query rejects with a
   * `QueryTooLargeError` naming the budget; within it the query yields to
   * the event loop every few milliseconds.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.put("alice", { friends: { bob: { "#": "bob" }, carol: { "#": "carol" } } });
   * await db.put("bob", { name: "Bob", age: 31 });
   * await db.put("carol", { name: "Carol", age: 25 });
   * const older = await db.query({ from: "alice", path: ["friends", "*"], where: { age: { gt: 30 } } });
   * console.log(older); // [{ soul: "bob", data: { age: 31, name: "Bob" } }] (fields in order)
   * await db.close();
   * ```
   */
  async query(q: Query): Promise<Entry[]> {
    this.check();
    return await runQuery(q, this.#store, this.#queryBudget, this.#world, this.checkOpen);
  }

  /**
   * Declares a vector index on `field` (kept in the store, rebuilt on open)
   * and resolves once it holds the vectors already stored. Declaring it again
   * with the same settings is harmless; with others, a `RangeError`.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * const info = await db.createIndex({ field: "embedding", dim: 3 });
   * console.log(info.metric, info.m, info.efConstruction, info.ef); // cosine 16 200 50
   * await db.put("doc", { embedding: [1, 2] }).catch((e) => console.log(e.name)); // RangeError: 3 components
   * await db.close();
   * ```
   */
  createIndex(options: IndexOptions): Promise<IndexInfo> {
    try {
      this.check();
      return this.#vectors.create(options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * The declared vector indexes, with how many nodes each holds and whether
   * its graph is built (`state`: `"building"`, searches exact meanwhile, or
   * `"ready"`).
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.createIndex({ field: "embedding", dim: 2 });
   * console.log(db.indexes().map((i) => i.field)); // ["embedding"]
   * await db.close();
   * ```
   */
  indexes(): IndexInfo[] {
    this.check();
    return this.#vectors.list();
  }

  /**
   * The `k` nodes whose vectors in an indexed field are nearest `vector`,
   * best first, among those meeting `where` (as in {@link query}) and, with
   * `from`/`path`, among the nodes that graph walk reaches. Approximate (the
   * field's HNSW graph) unless `exact` is set or the filters leave few
   * candidates; bounded by the query budget.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.createIndex({ field: "embedding", dim: 2, metric: "dot" });
   * await db.put("a", { embedding: [1, 0] });
   * await db.put("b", { embedding: [0, 1] });
   * console.log(await db.search({ vector: [0.2, 0.9], k: 1 })); // [{ soul: "b", score: 0.9…, node: { embedding: Uint8Array(8) … } }]
   * await db.close();
   * ```
   */
  async search(s: SearchOptions): Promise<SearchResult[]> {
    this.check();
    return await runSearch(
      s,
      this.#vectors,
      this.kernels,
      this.#store,
      this.#queryBudget,
      this.#world,
      this.checkOpen,
    );
  }

  /**
   * Calls `cb` for each committed change to `target` (local writes and merged
   * foreign ops). Returns unsubscribe.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * const seen: unknown[] = [];
   * const unsubscribe = db.watch({ prefix: "user/" }, (change) => seen.push(change));
   * await db.put("user/a", { name: "Al" });
   * unsubscribe();
   * console.log(seen); // [{ soul: "user/a", changes: { name: "Al" }, source: "local" }]
   * await db.close();
   * ```
   */
  watch(target: WatchTarget, cb: (change: Change) => void): () => void {
    this.check();
    if (typeof target === "string") checkSoul(target);
    return this.#watchers.watch(target, cb);
  }

  /**
   * Low-level hook for replication: `listener` gets the records of every
   * committed write, after the commit, with `local` true for this replica's
   * own writes. Convert with {@link recordToOp}. Returns unsubscribe.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * const unsubscribe = db.onCommit((records, local) => console.log(records.length, local)); // 2 true
   * await db.put("alice", { name: "Alice", age: 30 });
   * unsubscribe();
   * await db.close();
   * ```
   */
  onCommit(listener: CommitListener): () => void {
    this.check();
    return this.#watchers.onCommit(listener);
  }

  // ---------------------------------------------------------------- replication

  /**
   * SHA-256 (hex) of the replica's whole state, independent of the order ops arrived in.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
   * console.log(await a.stateHash() === await b.stateHash()); // true: both empty
   * await a.put("alice", { name: "Alice" });
   * console.log(await a.stateHash() === await b.stateHash()); // false
   * await a.close();
   * await b.close();
   * ```
   */
  async stateHash(): Promise<string> {
    this.check();
    await this.#queue.draining;
    return await stateHash(this.#store, this.kernels);
  }

  /**
   * Finishes queued writes, stops timers and closes the store. Idempotent.
   *
   * @example
   * ```ts
   * import { open } from "../mod.ts";
   * const db = await open({ storage: "memory" });
   * const write = db.put("alice", { name: "Alice" }); // committed before the store closes
   * await db.close();
   * console.log((await write).soul); // "alice"
   * await db.get("alice").catch((e) => console.log(e.message)); // "The database is closed"
   * ```
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.#trust.settled();
    await this.#queue.draining;
    this.markClosed();
    this.#deferral.close();
    this.#watchers.clear();
    // Saved for the next open to restore; a failed save (a full disk) only means a rebuild then.
    await this.#vectors.save().catch(() => {});
    this.#vectors.dispose();
    await this.#store.close();
  }
}
