/**
 * What the layers above a {@link Database} may read from its store, and the
 * one thing they may write (derived data beside it): the base class of the
 * Database, so that the store itself stays private. Sync reads `changes` to
 * build its index and `readFields` to send records; resumable watches start
 * at `lastSeq`; the sync index saves itself with `writeAux`; the status shows
 * `storage`.
 *
 * @module
 */
import type { ChangesOptions, ChangesPage, FieldKey, Store, StoredRecord } from "../store.ts";

/** Read access to the store under a Database (core/database.ts extends it). */
export class StoredData {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
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
}
