/**
 * What the layers above a Database may read from its store — nodes (`get`,
 * `list`, `countNodes`) and, for replication, records — and the
 * one thing they may write (derived data beside it): the base class of the
 * Database, so that the store itself stays private. Sync reads `changes` to
 * build its index and `readFields` to send records; resumable watches start
 * at `lastSeq`; the sync index saves itself with `writeAux`; the status shows
 * `storage`.
 *
 * @module
 */
import type { ChangesOptions, ChangesPage, FieldKey, Store, StoredRecord } from "../store.ts";
import { checkSoul, type NodeData } from "../value.ts";
import {
  checkListOptions,
  countNodes,
  type Entry,
  listNodes,
  type ListOptions,
  readNodeData,
} from "./read.ts";
import { exportOps } from "./export.ts";
import type { Op } from "../op.ts";

/** Reads the store of a database (set by the class's static block: the store is private). */
let storeOfData: (db: StoredData) => Store;

/**
 * The raw {@link Store} under `db`: for tests, benches and tools that check
 * what is stored, never for the layers above the Database (they use its
 * methods). Not exported by mod.ts.
 */
export function storeOf(db: StoredData): Store {
  return storeOfData(db);
}

/** Read access to the store under a Database (core/database.ts extends it). */
export class StoredData {
  static {
    storeOfData = (db) => db.#store;
  }

  readonly #store: Store;
  #closed = false;
  /** {@link check} as a function, for the parts that check between awaits (made once). */
  protected readonly checkOpen = (): void => this.check();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Throws once the database is closed. */
  protected check(): void {
    if (this.#closed) throw new Error("The database is closed");
  }

  /** Whether the database is closed. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** Marks the database closed: every later call throws. */
  protected markClosed(): void {
    this.#closed = true;
  }

  /**
   * The node's live fields as a plain object (links as `{ "#": soul }`), or `undefined`.
   *
   * @example
   * ```ts
   * import { open } from "../../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.put("alice", { name: "Alice", pet: { name: "Rex" } });
   * console.log(await db.get("alice")); // { name: "Alice", pet: { "#": "alice/pet" } }
   * console.log(await db.get("bob")); // undefined
   * await db.close();
   * ```
   */
  async get(soul: string): Promise<NodeData | undefined> {
    this.check();
    checkSoul(soul);
    return await readNodeData(this.#store, soul);
  }

  /**
   * Nodes in soul order (UTF-8 byte order), skipping deleted ones. Options are
   * checked at once (`TypeError`/`RangeError`), nodes are read page by page.
   *
   * @example
   * ```ts
   * import { open } from "../../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.put("user/b", { name: "Bo" });
   * await db.put("user/a", { name: "Al" });
   * await db.put("team/x", { name: "X" });
   * for await (const { soul, data } of db.list({ prefix: "user/", limit: 10 })) {
   *   console.log(soul, data); // user/a { name: "Al" }, then user/b { name: "Bo" }
   * }
   * await db.close();
   * ```
   */
  list(options: ListOptions = {}): AsyncGenerator<Entry> {
    this.check();
    const { prefix, cursor, limit } = checkListOptions(options);
    return listNodes(this.#store, prefix, cursor, limit, this.checkOpen);
  }

  /**
   * How many nodes have a live field: as many as {@link list} yields.
   * Engines that keep the count answer at once (SQLite); others are read
   * node by node.
   */
  countNodes(): Promise<number> {
    this.check();
    return countNodes(this.#store, this.checkOpen);
  }

  /**
   * One page of the records committed after seq `after`, as the store keeps
   * them (`Store.changes`): what sync reads to build its index.
   */
  changes(after: number, options: ChangesOptions): Promise<ChangesPage> {
    return this.#store.changes(after, options);
  }

  /** The stored record of each key, or `undefined`, in the order given: what sync sends a peer. */
  readFields(keys: readonly FieldKey[]): Promise<(StoredRecord | undefined)[]> {
    return this.#store.readFields(keys);
  }

  /** The highest seq committed so far (0 when empty): where a resumable watch or a sync index stands. */
  lastSeq(): Promise<number> {
    return this.#store.lastSeq();
  }

  /** The storage engine in use, e.g. `memory`, `sqlite (node:sqlite)`, `sqlite-wasm` (the status's `storage`). */
  get storage(): string {
    return this.#store.engine;
  }

  /** Whether the store keeps auxiliary data ({@link writeAux}), as durable engines do. */
  get canSaveAux(): boolean {
    return this.#store.writeAux !== undefined;
  }

  /**
   * The auxiliary data saved under `name` (`Store.readAux`: derived data such
   * as the sync index, never ahead of the records), or `undefined`.
   */
  readAux(name: string): Promise<Uint8Array[] | undefined> {
    return this.#store.readAux?.(name) ?? Promise.resolve(undefined);
  }

  /** Replaces the auxiliary data `name` with `parts` (`Store.writeAux`); see {@link canSaveAux}. */
  writeAux(name: string, parts: readonly Uint8Array[]): Promise<void> {
    if (this.#store.writeAux === undefined) {
      return Promise.reject(
        new TypeError(`Cannot save ${name}: the ${this.#store.engine} store keeps no auxiliary data`),
      );
    }
    return this.#store.writeAux(name, parts);
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
   * import { open } from "../../mod.ts";
   * const db = await open({ storage: "memory" });
   * await db.put("alice", { name: "Alice", age: 30 });
   * let after = 0; // what the consumer has
   * const ops = [];
   * for (let cursor: number | undefined, page; ; cursor = page.cursor) {
   *   page = await db.exportOps({ after, cursor });
   *   ops.push(...page.ops);
   *   if (page.cursor === undefined) { after = page.seq; break; }
   * }
   * console.log(ops.length); // 2
   * await db.close();
   * ```
   */
  exportOps(
    options: { after?: number; limit?: number; cursor?: number } = {},
  ): Promise<{ ops: Op[]; seq: number; cursor?: number }> {
    try {
      this.check();
      return exportOps(this.#store, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
