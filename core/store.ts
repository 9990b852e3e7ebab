/**
 * The storage contract. Every engine (memory, SQLite through a native
 * driver, SQLite-WASM on a file, OPFS) implements {@link Store} and passes
 * the same conformance suite (tests/store.test.ts).
 *
 * Engines keep the current winning record of each (soul, field) — superseded
 * records are pruned — plus ops deferred for being too far in the future and
 * a few metadata strings. `commit` is atomic: after it resolves, all of it is
 * on disk (for durable engines) and none of it is partially visible.
 *
 * @module
 */
import type { NodeData } from "./value.ts";

/**
 * A stored field: the winning write of one (soul, field). States and actor
 * ids are 64-bit numbers split in two unsigned 32-bit halves.
 */
export interface FieldRecord {
  readonly soul: string;
  readonly field: string;
  /** The canonical encoding of the value (core/value.ts `encodeValue`). */
  readonly value: Uint8Array;
  /** Hybrid logical clock, high and low 32 bits. */
  readonly stateHi: number;
  readonly stateLo: number;
  /** Actor id, high and low 32 bits. */
  readonly actorHi: number;
  readonly actorLo: number;
  readonly sig?: Uint8Array;
}

/** A field record with the local commit sequence number the store gave it. */
export interface StoredRecord extends FieldRecord {
  /** Position in this replica's commit order (1, 2, ...); rises on every overwrite. */
  readonly seq: number;
}

/** A stored record: `r` with seq `seq` (a fresh object of one shape). */
export function storedRecord(r: FieldRecord, seq: number): StoredRecord {
  return r.sig === undefined
    ? {
      soul: r.soul,
      field: r.field,
      value: r.value,
      stateHi: r.stateHi,
      stateLo: r.stateLo,
      actorHi: r.actorHi,
      actorLo: r.actorLo,
      seq,
    }
    : {
      soul: r.soul,
      field: r.field,
      value: r.value,
      stateHi: r.stateHi,
      stateLo: r.stateLo,
      actorHi: r.actorHi,
      actorLo: r.actorLo,
      sig: r.sig,
      seq,
    };
}

/** An op waiting for its time to come (its state was too far ahead of the local clock). */
export interface DeferredOp {
  /** Store-assigned id. */
  readonly id: number;
  /** Wall-clock ms from which it may be applied. */
  readonly due: number;
  /** The op, encoded with core/op.ts `encodeOps`. */
  readonly op: Uint8Array;
  /**
   * Who it came from, for quotas (a peer id, or the op's actor): `""` for
   * ops deferred before stores kept it.
   */
  readonly source: string;
}

/** An op to defer, as a {@link CommitBatch} gives it. */
export interface DeferOp {
  readonly due: number;
  readonly op: Uint8Array;
  /** Who it came from (default `""`); see {@link DeferredOp.source}. */
  readonly source?: string;
}

/** One atomic unit of writes. */
export interface CommitBatch {
  /** Records to upsert, in order (a later record for the same key replaces an earlier one). */
  readonly records?: readonly FieldRecord[];
  /** Ops to defer. */
  readonly defer?: readonly DeferOp[];
  /** Deferred op ids to drop (applied now). */
  readonly undefer?: readonly number[];
  /** Metadata to set. */
  readonly meta?: Readonly<Record<string, string>>;
}

/** Options of {@link Store.list}. */
export interface ListOptions {
  /** Only souls starting with this string. */
  readonly prefix?: string;
  /** Only souls sorting strictly after this one (a cursor). */
  readonly after?: string;
  /** At most this many souls. */
  readonly limit: number;
}

/** Options of {@link Store.changes}. */
export interface ChangesOptions {
  /** Records per page, at least (a page holds whole nodes); at least 1. */
  readonly limit: number;
  /** Where the previous page ended (its `cursor`). */
  readonly cursor?: number;
}

/** A page of {@link Store.changes}. */
export interface ChangesPage {
  readonly records: StoredRecord[];
  /** Pass it for the next page; absent on the last page. */
  readonly cursor?: number;
  /**
   * The store's last seq when the page was read: after the last page, every
   * record up to it has been returned, so it is the `after` of the next scan.
   */
  readonly seq: number;
}

/**
 * A (soul, field) key to read. Any object with the two names will do, a
 * {@link FieldRecord} included: the Database asks for the keys of incoming
 * records by passing the records themselves.
 */
export interface FieldKey {
  readonly soul: string;
  readonly field: string;
}

/** A storage engine. */
export interface Store {
  /** Engine name, e.g. `memory`, `sqlite (node:sqlite)`, `sqlite-wasm`. */
  readonly engine: string;
  /** Whether committed data survives the process. */
  readonly durable: boolean;
  /** Every stored field of `soul` (tombstones included), in field order. */
  readNode(soul: string): Promise<StoredRecord[]>;
  /**
   * Optional: the live fields of `soul` as data, as `nodeData(readNode(soul))`
   * gives them (`undefined` when none is live), for engines that can decode
   * a stored node straight to it, without a record per field.
   */
  readNodeData?(soul: string): Promise<NodeData | undefined>;
  /** The stored record of each key, or `undefined`, in the order given. */
  readFields(keys: readonly FieldKey[]): Promise<(StoredRecord | undefined)[]>;
  /** Applies a batch atomically; resolves with the highest seq after it. */
  commit(batch: CommitBatch): Promise<number>;
  /**
   * Souls with at least one live (non-tombstone) field, in UTF-8 byte order
   * of the soul. Nodes whose fields are all tombstones are skipped without
   * being read one by one, so their number does not slow a page down.
   */
  list(options: ListOptions): Promise<string[]>;
  /**
   * One page of the records with `seq > after`: whole nodes at a time, nodes
   * in the order of their last change, each node's records in field order.
   * A page ends with the node that brings it to `limit` records or more.
   * Pass the page's `cursor` (with the same `after`) for the next page; the
   * last page has none.
   *
   * Paging a store that is being written to still returns every record with
   * `seq > after` that is current at the end: a node changed meanwhile moves
   * behind the cursor and comes again, whole (so some records come twice).
   */
  changes(after: number, options: ChangesOptions): Promise<ChangesPage>;
  /** The highest seq committed so far (0 when empty). */
  lastSeq(): Promise<number>;
  /**
   * Optional: how many nodes have at least one live (non-tombstone) field,
   * as many as `Database.list` yields, for engines that keep the count
   * instead of reading every node.
   */
  countLive?(): Promise<number>;
  /**
   * Optional: the parts of the auxiliary data saved by {@link writeAux}
   * under `name` (the sync index keeps its columns so), each in a buffer of
   * its own (`part.buffer` holds nothing else, and may be longer than the
   * part: room the caller may grow into); `undefined` when there is none,
   * or when the commits made before it was written did not all survive
   * (after a crash): derived data read back must never be ahead of the
   * records.
   */
  readAux?(name: string): Promise<Uint8Array[] | undefined>;
  /**
   * Optional: replaces the auxiliary data `name` (lowercase letters, digits
   * and `-`) with `parts`, written before the promise settles. The caller
   * must not change `parts` until then.
   */
  writeAux?(name: string, parts: readonly Uint8Array[]): Promise<void>;
  /** All deferred ops, earliest due first (every row: for tests and tools, not the Database). */
  deferred(): Promise<DeferredOp[]>;
  /**
   * Optional: the deferred ops due at or before `until` (ms; `Infinity` for
   * the next ones whatever their time), earliest due first, at most `limit`,
   * read through an index by due time: the cost follows what is returned,
   * not how many ops wait. The Database falls back to {@link deferred}.
   */
  deferredDue?(until: number, limit: number): Promise<DeferredOp[]>;
  /**
   * Optional: how many ops are deferred, in all or (with `source`) from one
   * source, counted without reading them out. The Database falls back to
   * {@link deferred}.
   */
  deferredCount?(source?: string): Promise<number>;
  /**
   * Optional: drops every deferred op due after `due` (through the due
   * index) and resolves with how many there were: the Database drops those
   * beyond its horizon on open, which stores written before it had one may
   * hold.
   */
  dropDeferredAfter?(due: number): Promise<number>;
  /** A metadata value. */
  getMeta(key: string): Promise<string | undefined>;
  /** Flushes and releases everything (the lock included). Idempotent. */
  close(): Promise<void>;
}

/**
 * One commit written in parts, for a batch too large to hold as records all
 * at once (see {@link SyncStore.beginParts}). Nothing of it is visible to
 * other connections, or durable, before {@link commit}; reads through the
 * same store in between see the parts written so far. No other commit may
 * run while it is open.
 */
export interface PartsCommit {
  /** Writes the next records (each key at most once in the whole commit); their seqs follow the last part's. */
  write(records: readonly FieldRecord[]): void;
  /** Writes the rest of the batch (its records last) and commits; returns the highest seq after it. */
  commit(rest: CommitBatch): number;
  /** Drops everything written; the store is as before {@link SyncStore.beginParts}. */
  abort(): void;
}

/**
 * Synchronous twins of {@link Store.readFields} and {@link Store.commit},
 * offered by engines that never wait (memory, SQLite): the Database uses
 * them when present and saves the promise turns of every commit. They throw
 * where the others reject.
 */
export interface SyncStore {
  readFieldsSync(keys: readonly FieldKey[]): (StoredRecord | undefined)[];
  commitSync(batch: CommitBatch): number;
  /** Optional: opens a commit written in parts (engines that write large batches straight to disk). */
  beginParts?(): PartsCommit;
}

/** Whether `store` offers {@link SyncStore}. */
export function isSyncStore(store: Store): store is Store & SyncStore {
  const s = store as Partial<SyncStore>;
  return typeof s.readFieldsSync === "function" && typeof s.commitSync === "function";
}
