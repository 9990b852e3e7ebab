/**
 * The `deferred` table of the SQLite engine: ops waiting for their time,
 * read by due time through the index `deferred_due` (what comes due is
 * read, never the whole table) and counted per source (quotas). Deferred
 * ops never pass through the journal: a batch that defers or undefers goes
 * straight into SQLite (storage/sqlite.ts), so this table is all there is.
 *
 * @module
 */
import type { NodeTable } from "./sqlite_nodes.ts";
import type { Row } from "./sqlite_statements.ts";
import type { DeferOp, DeferredOp } from "../core/store.ts";

/** SQLite takes no Infinity as an integer. */
const MAX = Number.MAX_SAFE_INTEGER;

/** The deferred ops of one connection. */
export class DeferredTable {
  /** Deferred ops read out of SQLite so far (by `all` and `due`): what a test counts. */
  rowsRead = 0;
  readonly #nodes: NodeTable;

  /** `nodes`: the connection's statements and transactions. */
  constructor(nodes: NodeTable) {
    this.#nodes = nodes;
  }

  /** Defers `d`, in the caller's transaction. */
  add(d: DeferOp): void {
    this.#nodes.s.defer.run(d.due, d.op, d.source ?? "");
  }

  /** Drops deferred op `id`, in the caller's transaction. */
  remove(id: number): void {
    this.#nodes.s.undefer.run(id);
  }

  /** Every deferred op, by due time. */
  all(): DeferredOp[] {
    return this.#rows(this.#nodes.s.deferred.all());
  }

  /** The first `limit` deferred ops due by `until`, earliest first. */
  due(until: number, limit: number): DeferredOp[] {
    return this.#rows(this.#nodes.s.deferredDue.all(Math.min(until, MAX), Math.min(limit, MAX)));
  }

  /** How many ops are deferred (from `source`, when given). */
  count(source?: string): number {
    const s = this.#nodes.s;
    const row = source === undefined ? s.deferredCount.get() : s.deferredCountFrom.get(source);
    return Number(row?.n ?? 0);
  }

  /** Drops the ops due after `due`, in a transaction of their own; returns how many. */
  dropAfter(due: number): number {
    const nodes = this.#nodes;
    let n = 0;
    nodes.transaction(() => {
      nodes.s.dropDeferredAfter.run(Math.min(due, MAX));
      n = Number(nodes.s.changed.get()?.n ?? 0);
    });
    return n;
  }

  #rows(rows: Row[]): DeferredOp[] {
    this.rowsRead += rows.length;
    return rows.map((r) => ({
      id: Number(r.id),
      due: Number(r.due),
      op: r.op as Uint8Array,
      source: r.source as string,
    }));
  }
}
