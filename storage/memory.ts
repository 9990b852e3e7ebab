/**
 * The in-memory engine: for tests, caches and browser tabs that keep nothing.
 * Not durable.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "./memory.ts";
 * const store = new MemoryStore();
 * await store.commit({ meta: { actor: "00000000000000ff" } });
 * console.log(await store.getMeta("actor")); // "00000000000000ff"
 * ```
 *
 * @module
 */
import { checkBatch, checkChanges, closedError, listStart } from "./_check.ts";
import { compareCodePoints } from "../core/order.ts";
import { isTombstone } from "../core/value_encoding.ts";
import {
  type ChangesOptions,
  type ChangesPage,
  type CommitBatch,
  type DeferredOp,
  type FieldKey,
  type ListOptions,
  type Store,
  type StoredRecord,
  storedRecord,
} from "../core/store.ts";

/** A {@link Store} kept in memory. */
export class MemoryStore implements Store {
  readonly engine = "memory";
  readonly durable = false;
  /**
   * Why this memory store stands in for the durable one that was asked for
   * (`storage: "auto"` with a path, in a browser without OPFS or Workers:
   * storage/open.ts); `undefined` when memory was what was asked for.
   */
  readonly fallback: string | undefined;

  constructor(options: { readonly fallback?: string } = {}) {
    this.fallback = options.fallback;
  }
  #nodes = new Map<string, Map<string, StoredRecord>>();
  /** Souls by the seq of their last change, ascending (new seqs are always the largest). */
  #byChange = new Map<number, string>();
  #lastChange = new Map<string, number>();
  /** How many live (non-tombstone) fields each node has, for the nodes that have one. */
  #liveFields = new Map<string, number>();
  /**
   * The souls of {@link #liveFields}, sorted: a node whose fields are all
   * tombstones is never met by `list`. A node that gains its first live
   * field or loses its last is put in or taken out in place, up to
   * {@link SPLICES_PER_LIST} times between two lists; past that the array is
   * dropped and sorted again by the next `list`.
   */
  #sorted: string[] | undefined;
  #splices = 0;
  #seq = 0;
  #deferred = new Map<number, DeferredOp>();
  /** The deferred ops by due time, then id (the index `deferredDue` reads). */
  #byDue: DeferredOp[] = [];
  /** How many deferred ops each source has. */
  #bySource = new Map<string, number>();
  #deferId = 0;
  /** Deferred ops read out so far (by `deferred` and `deferredDue`): what a test counts. */
  deferredRowsRead = 0;
  #meta = new Map<string, string>();
  #closed = false;

  #open(): void {
    if (this.#closed) throw closedError();
  }

  async readNode(soul: string): Promise<StoredRecord[]> {
    this.#open();
    const node = this.#nodes.get(soul);
    if (!node) return [];
    return [...node.values()].sort((a, b) => compareCodePoints(a.field, b.field));
  }

  async readFields(keys: readonly FieldKey[]): Promise<(StoredRecord | undefined)[]> {
    return this.readFieldsSync(keys);
  }

  readFieldsSync(keys: readonly FieldKey[]): (StoredRecord | undefined)[] {
    this.#open();
    return keys.map((k) => this.#nodes.get(k.soul)?.get(k.field));
  }

  async commit(batch: CommitBatch): Promise<number> {
    return this.commitSync(batch);
  }

  commitSync(batch: CommitBatch): number {
    this.#open();
    checkBatch(batch); // everything is checked before anything changes: commits are atomic
    const records = batch.records ?? [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      let node = this.#nodes.get(r.soul);
      if (!node) {
        node = new Map();
        this.#nodes.set(r.soul, node);
      }
      const seq = ++this.#seq, soul = r.soul;
      const prev = node.get(r.field);
      const delta = (isTombstone(r.value) ? 0 : 1) - (prev === undefined || isTombstone(prev.value) ? 0 : 1);
      if (delta !== 0) this.#countLive(soul, delta);
      node.set(r.field, storedRecord(r, seq));
      // A node's last change moves once per run of its records (a batch mostly holds runs).
      if (i + 1 === records.length || records[i + 1].soul !== soul) {
        const last = this.#lastChange.get(soul);
        if (last !== undefined) this.#byChange.delete(last);
        this.#byChange.set(seq, soul);
        this.#lastChange.set(soul, seq);
      }
    }
    for (const d of batch.defer ?? []) {
      const id = ++this.#deferId, source = d.source ?? "";
      const op: DeferredOp = { id, due: d.due, op: d.op, source };
      this.#deferred.set(id, op);
      this.#byDue.splice(this.#duePosition(op.due, id), 0, op);
      this.#bySource.set(source, (this.#bySource.get(source) ?? 0) + 1);
    }
    for (const id of batch.undefer ?? []) {
      const op = this.#deferred.get(id);
      if (op === undefined) continue;
      this.#deferred.delete(id);
      this.#byDue.splice(this.#duePosition(op.due, id), 1);
      const left = this.#bySource.get(op.source)! - 1;
      if (left === 0) this.#bySource.delete(op.source);
      else this.#bySource.set(op.source, left);
    }
    for (const [k, v] of Object.entries(batch.meta ?? {})) this.#meta.set(k, v);
    return this.#seq;
  }

  /** Adds `delta` (±1) to the live fields of `soul`. */
  #countLive(soul: string, delta: number): void {
    const n = (this.#liveFields.get(soul) ?? 0) + delta;
    if (n > 0) {
      if (n === 1 && delta > 0) this.#resort(soul, true); // its first live field
      this.#liveFields.set(soul, n);
    } else {
      this.#liveFields.delete(soul);
      this.#resort(soul, false);
    }
  }

  /** Puts `soul` in {@link #sorted} (`live`) or takes it out. */
  #resort(soul: string, live: boolean): void {
    const sorted = this.#sorted;
    if (sorted === undefined) return;
    if (++this.#splices > SPLICES_PER_LIST) {
      this.#sorted = undefined;
      return;
    }
    const i = firstNotBefore(sorted, soul, false);
    if (live) sorted.splice(i, 0, soul);
    else sorted.splice(i, 1);
  }

  /** Souls with a live field, by binary search in the sorted live souls. */
  async list(options: ListOptions): Promise<string[]> {
    this.#open();
    this.#sorted ??= [...this.#liveFields.keys()].sort(compareCodePoints);
    this.#splices = 0;
    const souls = this.#sorted;
    const { prefix = "", limit } = options;
    const { from, past } = listStart(options); // the first soul past both the cursor and the prefix start
    const lo = firstNotBefore(souls, from, past);
    const out: string[] = [];
    for (let i = lo; i < souls.length && out.length < limit; i++) {
      if (!souls[i].startsWith(prefix)) break;
      out.push(souls[i]);
    }
    return out;
  }

  async changes(after: number, options: ChangesOptions): Promise<ChangesPage> {
    this.#open();
    checkChanges(after, options);
    const from = options.cursor ?? after, limit = options.limit;
    const records: StoredRecord[] = [];
    for (const [change, soul] of this.#byChange) {
      if (change <= from) continue;
      const node = [...this.#nodes.get(soul)!.values()].sort((a, b) => compareCodePoints(a.field, b.field));
      for (const r of node) if (r.seq > after) records.push(r);
      if (records.length >= limit) return { records, cursor: change, seq: this.#seq };
    }
    return { records, seq: this.#seq };
  }

  /** How many nodes have a live field (kept as writes come). */
  async countLive(): Promise<number> {
    this.#open();
    return this.#liveFields.size;
  }

  async lastSeq(): Promise<number> {
    return this.#seq;
  }

  async deferred(): Promise<DeferredOp[]> {
    this.#open();
    this.deferredRowsRead += this.#byDue.length;
    return this.#byDue.slice();
  }

  async deferredDue(until: number, limit: number): Promise<DeferredOp[]> {
    this.#open();
    const out: DeferredOp[] = [];
    const byDue = this.#byDue;
    for (let i = 0; i < byDue.length && out.length < limit && byDue[i].due <= until; i++) out.push(byDue[i]);
    this.deferredRowsRead += out.length;
    return out;
  }

  async deferredCount(source?: string): Promise<number> {
    this.#open();
    return source === undefined ? this.#byDue.length : this.#bySource.get(source) ?? 0;
  }

  async dropDeferredAfter(due: number): Promise<number> {
    this.#open();
    const byDue = this.#byDue;
    let n = 0;
    while (byDue.length > 0 && byDue[byDue.length - 1].due > due) {
      const op = byDue.pop()!;
      this.#deferred.delete(op.id);
      const left = this.#bySource.get(op.source)! - 1;
      if (left === 0) this.#bySource.delete(op.source);
      else this.#bySource.set(op.source, left);
      n++;
    }
    return n;
  }

  /** Where the op due at `due` with id `id` is (or goes) in `#byDue`. */
  #duePosition(due: number, id: number): number {
    const byDue = this.#byDue;
    let lo = 0, hi = byDue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, m = byDue[mid];
      if (m.due < due || (m.due === due && m.id < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  async getMeta(key: string): Promise<string | undefined> {
    this.#open();
    return this.#meta.get(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    return;
  }
}

/**
 * Splices of the sorted live souls between two lists, at most: each moves
 * part of the array (1M souls: about 1 ms), so past this many sorting anew
 * is cheaper.
 */
const SPLICES_PER_LIST = 64;

/** The index of the first of `souls` (sorted) at or after `soul`, or after it when `past`. */
function firstNotBefore(souls: readonly string[], soul: string, past: boolean): number {
  let lo = 0, hi = souls.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareCodePoints(souls[mid], soul);
    if (c < 0 || (c === 0 && past)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
