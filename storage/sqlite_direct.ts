/**
 * Commits that go straight into SQLite, in a transaction, rather than
 * through the journal: batches of many records (journaling them would only
 * hold them in memory until they are folded, and one SQLite transaction
 * writes them in less time than the journal and the fold together), batches
 * that defer or undefer ops (the `deferred` table never passes through the
 * journal), and commits in parts (one transaction takes each part as it
 * comes). Everything journaled before them is folded first, by the caller.
 *
 * @module
 */
import { checkBatch } from "./_check.ts";
import { isDiskFull } from "./disk_full.ts";
import type { NodeCache } from "./node_cache.ts";
import type { DeferredTable } from "./sqlite_deferred.ts";
import { groupBySoul, type NodeTable } from "./sqlite_nodes.ts";
import type { CommitBatch, DeferOp, FieldRecord, PartsCommit } from "../core/store.ts";

const NO_RECORDS: readonly FieldRecord[] = Object.freeze([]);
const NO_DEFER: readonly DeferOp[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);

/** What a commit in parts needs of its store. */
export interface PartsOwner {
  /** Throws once the store is closed. */
  checkOpen(): void;
  /** Whether the store is closed. */
  isClosed(): boolean;
  /** The commit in parts ended: committed (`seq`: the highest seq after it) or not (`undefined`). */
  endParts(seq: number | undefined): void;
}

/** Writes checked batches into SQLite, in the caller's transaction or one of their own. */
export class DirectWriter {
  readonly #nodes: NodeTable;
  readonly #deferred: DeferredTable;
  readonly #cache: NodeCache | undefined;

  constructor(nodes: NodeTable, deferred: DeferredTable, cache: NodeCache | undefined) {
    this.#nodes = nodes;
    this.#deferred = deferred;
    this.#cache = cache;
  }

  /**
   * Commits `batch` (checked), its records with seqs from `first` on, in a
   * transaction of its own. (Apart from the store's `commitSync`, whose every
   * call would otherwise allocate the context of this closure.)
   */
  commit(batch: CommitBatch, first: number): void {
    this.#nodes.transaction(() => this.write(batch, first));
  }

  /**
   * Writes `batch` (checked) into SQLite inside the caller's transaction,
   * its records with seqs from `first` on.
   */
  write(batch: CommitBatch, first: number): void {
    const records = batch.records ?? NO_RECORDS;
    if (records.length > 0) {
      const nodes = groupBySoul(records, first);
      for (const [soul] of nodes) this.#cache?.delete(soul);
      this.#nodes.write(nodes, 0, nodes.length);
    }
    for (const d of batch.defer ?? NO_DEFER) this.#deferred.add(d);
    for (const id of batch.undefer ?? NO_IDS) this.#deferred.remove(id);
    if (batch.meta !== undefined) {
      for (const [k, v] of Object.entries(batch.meta)) this.#nodes.s.setMeta.run(k, v);
    }
  }

  /**
   * Opens a commit in parts, its seqs from `first` on: one SQLite
   * transaction takes each part as a direct batch would, and ends with
   * `commit` (or `abort`, which rolls it back). A full disk ends it at the
   * part that meets it (rolled back, the WAL's space given back); `abort` is
   * then a no-op.
   */
  beginParts(first: number, owner: PartsOwner): PartsCommit {
    const sql = this.#nodes;
    sql.s.begin.run();
    let next = first, open = true;
    const live = () => {
      if (!open) throw new Error("This commit in parts has ended");
      owner.checkOpen();
    };
    const end = (seq: number | undefined): void => {
      open = false;
      owner.endParts(seq);
    };
    const failed = (e: unknown): unknown => {
      if (!isDiskFull(e)) return e;
      end(undefined);
      sql.rollback();
      return sql.failed(e);
    };
    return {
      write: (records) => {
        live();
        checkBatch({ records });
        try {
          this.write({ records }, next);
        } catch (e) {
          throw failed(e);
        }
        next += records.length;
      },
      commit: (rest) => {
        live();
        checkBatch(rest);
        try {
          this.write(rest, next);
          sql.s.commit.run();
        } catch (e) {
          throw failed(e);
        }
        next += rest.records?.length ?? 0;
        end(next - 1);
        return next - 1;
      },
      abort: () => {
        if (!open) return;
        end(undefined);
        if (!owner.isClosed()) sql.rollback();
      },
    };
  }
}
