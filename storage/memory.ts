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
import { checkBatch, checkChanges } from "./_check.ts";
import { compareCodePoints } from "./_order.ts";
import { isTombstone } from "../core/value.ts";
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
} from "./store.ts";

/** A {@link Store} kept in memory. */
export class MemoryStore implements Store {
  readonly engine = "memory";
  readonly durable = false;
  #nodes = new Map<string, Map<string, StoredRecord>>();
  /** Souls by the seq of their last change, ascending (new seqs are always the largest). */
  #byChange = new Map<number, string>();
  #lastChange = new Map<string, number>();
  #sorted: string[] | undefined;
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
    if (this.#closed) throw new Error("The store is closed");
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
        this.#sorted = undefined;
      }
      const seq = ++this.#seq, soul = r.soul;
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

  async list(options: ListOptions): Promise<string[]> {
    this.#open();
    this.#sorted ??= [...this.#nodes.keys()].sort(compareCodePoints);
    const souls = this.#sorted;
    const { prefix = "", after, limit } = options;
    // Binary search for the first soul past both the cursor and the prefix start.
    const from = after !== undefined && compareCodePoints(after, prefix) >= 0 ? after : prefix;
    let lo = 0, hi = souls.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareCodePoints(souls[mid], from);
      if (c < 0 || (c === 0 && from === after)) lo = mid + 1;
      else hi = mid;
    }
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

  /** How many nodes have a live field: counted, node by node. */
  async countLive(): Promise<number> {
    this.#open();
    let n = 0;
    for (const node of this.#nodes.values()) {
      for (const r of node.values()) {
        if (!isTombstone(r.value)) {
          n++;
          break;
        }
      }
    }
    return n;
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
