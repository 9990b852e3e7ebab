/**
 * Lattice: a peer-to-peer graph database for Deno, Bun and the browser.
 *
 * This module re-exports the stable public API.
 *
 * @example
 * ```ts
 * import { open } from "./mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { name: "Alice", pet: { name: "Rex" } });
 * console.log(await db.get("alice")); // { name: "Alice", pet: { "#": "alice/pet" } }
 * await db.close();
 * ```
 *
 * @module
 */
import { Database } from "./core/database.ts";
import type { KernelChoice } from "./core/kernels/mod.ts";
import { loadKernels } from "./runtime/kernels.ts";
import { openStore, type StorageChoice } from "./storage/open.ts";

/** Options of {@link open}. */
export interface OpenOptions {
  /** Database directory for durable storage; without it `auto` storage keeps data in memory. */
  readonly path?: string;
  /** Storage engine (default `auto`: SQLite when `path` is given, else memory). */
  readonly storage?: StorageChoice;
  /** Kernel implementation (default `LATTICE_KERNELS`, else `auto`). */
  readonly kernels?: KernelChoice;
  /**
   * `process` (default): a resolved write survives the process being killed;
   * `power`: it also survives power loss (one fsync per commit, shared by
   * concurrent writers).
   */
  readonly durability?: "process" | "power";
  /** How this process is named in the directory's LOCK file (default: its command line). */
  readonly lockCommand?: string;
  /** Networking; not available yet: only `false` (the default) is accepted. */
  readonly network?: false;
  /** States further than this ahead of the local clock are deferred (ms, default 10 min). */
  readonly maxDrift?: number;
}

/**
 * Opens a database. With a `path`, it owns that directory (a second opener
 * gets a `LockedError` naming the holder) until `close()`.
 */
export async function open(options: OpenOptions = {}): Promise<Database> {
  if (typeof options !== "object" || options === null) throw new TypeError("open takes an options object");
  if (options.network !== undefined && options.network !== false) {
    throw new RangeError("Networking is not available yet in this version; open with network: false");
  }
  const kernels = await loadKernels({ kernels: options.kernels });
  const store = await openStore({
    path: options.path,
    storage: options.storage,
    durability: options.durability,
    lockCommand: options.lockCommand,
  });
  try {
    return await Database.create({ store, kernels, maxDrift: options.maxDrift });
  } catch (e) {
    await store.close();
    throw e;
  }
}

export {
  type ApplyResult,
  type Change,
  type Condition,
  Database,
  type Entry,
  type ListOptions,
  type Query,
  type WatchTarget,
  type WriteResult,
} from "./core/database.ts";
export type { Link, NodeData, Value } from "./core/value.ts";
export type { Op } from "./core/op.ts";
export type { StorageChoice } from "./storage/open.ts";
export { LockedError, type LockHolder } from "./storage/lock.ts";
export {
  type CallOptions,
  connect,
  ConnectionError,
  type ConnectOptions,
  type NodeStatus,
  type RemoteDatabase,
  RemoteError,
  type Unsubscribe,
} from "./net/client.ts";
export { loadKernels, type LoadKernelsOptions } from "./runtime/kernels.ts";
export type {
  HashBackend,
  IdTable,
  KernelChoice,
  KernelName,
  Kernels,
  MergeBatch,
  MergeColumns,
  Metric,
  TopK,
  VectorIndex,
} from "./core/kernels/mod.ts";
export { ID_BYTES } from "./core/kernels/mod.ts";
export { VERSION } from "./version.ts";
