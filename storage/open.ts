/**
 * Chooses and opens a storage engine. Engines with runtime-specific code are
 * loaded with dynamic `import()` so a browser bundle never pulls them in.
 *
 * - `memory`: {@link MemoryStore}, nothing kept.
 * - `sqlite`: a directory holding `lattice.db` (+ WAL) and a `LOCK` file;
 *   through the runtime's native driver (`bun:sqlite` on Bun, `node:sqlite`
 *   on Deno and Node ≥ 22.5), else SQLite-WASM on a file-backed VFS.
 * - `auto`: `memory` without a path; with one, `sqlite` on a server runtime,
 *   `opfs` in a browser that has OPFS and Workers, else (a browser without
 *   them) `memory`, saying so: a warning on the logger, and the store's
 *   `fallback` (nothing will be kept).
 * - `opfs` (browsers): a SQLite database in the Origin Private File System,
 *   held by a dedicated worker (storage/opfs.ts); `path` names it (default
 *   `lattice`). On a server runtime it is a RangeError: use `sqlite`.
 *
 * @module
 */
import { MemoryStore } from "./memory.ts";
import type { Store } from "../core/store.ts";
import type { World } from "../core/world.ts";
import { isServerRuntime } from "../runtime/detect.ts";
import { createLogger, type Logger } from "../runtime/log.ts";

/**
 * Which engine to use.
 *
 * @example
 * ```ts
 * import { open, type StorageChoice } from "../mod.ts";
 * const path = await Deno.makeTempDir();
 * const storage: StorageChoice = "sqlite";
 * const db = await open({ path, storage });
 * console.log(db.storage); // sqlite (node:sqlite): the engine, and on Deno its driver
 * await db.close();
 * await Deno.remove(path, { recursive: true });
 * ```
 */
export type StorageChoice = "auto" | "memory" | "sqlite" | "opfs";

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Database directory (created when missing); with `opfs`, the database's name in OPFS. */
  readonly path?: string;
  /** Engine (default `auto`). */
  readonly storage?: StorageChoice;
  /** Force a SQLite driver: `native` or `wasm` (default: native when the runtime has one). */
  readonly sqliteDriver?: "native" | "wasm";
  /**
   * `process` (default): a resolved commit survives the process being killed;
   * `power`: it also survives power loss (one fsync per commit).
   */
  readonly durability?: "process" | "power";
  /** How this process is named in the directory's LOCK file (default: its command line). */
  readonly lockCommand?: string;
  /** Clock, timers and randomness of the store (default: `systemWorld` of core/world.ts). */
  readonly world?: World;
  /** Where warnings go (a memory fallback, refused persistent storage; default: a logger at `LATTICE_LOG`'s level). */
  readonly logger?: Logger;
}

/**
 * The memory store that `auto` falls back to in a browser without OPFS or
 * Workers, saying so: a `warn` line on the logger, and the store's
 * `fallback` (which `status` reports).
 */
function memoryInstead(path: string, logger: Logger | undefined): MemoryStore {
  const fallback = "this browser has no OPFS or no Workers: the database is kept in memory only, " +
    "and is gone when the page closes";
  (logger ?? createLogger()).warn("storage", fallback, { database: path });
  return new MemoryStore({ fallback });
}

/** Opens the store `options` ask for. Throws `RangeError` for an unknown engine or a missing path. */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const storage = options.storage ?? "auto";
  switch (storage) {
    case "memory":
      return new MemoryStore();
    case "auto":
      if (options.path === undefined) return new MemoryStore();
      if (isServerRuntime()) return await openSqlite(options.path, options);
      if ((await import("./opfs.ts")).hasOpfs()) return await openOpfs(options.path, options);
      return memoryInstead(options.path, options.logger);
    case "sqlite":
      if (options.path === undefined) throw new RangeError('storage "sqlite" needs a path');
      return await openSqlite(options.path, options);
    case "opfs":
      return await openOpfs(options.path, options);
    default:
      throw new RangeError(
        `Unknown storage ${JSON.stringify(storage)}: use "auto", "memory", "sqlite" or "opfs"`,
      );
  }
}

async function openSqlite(path: string, options: OpenStoreOptions): Promise<Store> {
  if (typeof path !== "string" || path === "") throw new TypeError("path must be a non-empty string");
  const { SqliteStore } = await import("./sqlite.ts");
  return await SqliteStore.open(path, {
    driver: options.sqliteDriver,
    durability: options.durability,
    lockCommand: options.lockCommand,
    world: options.world,
  });
}

async function openOpfs(path: string | undefined, options: OpenStoreOptions): Promise<Store> {
  const { OpfsStore, OPFS_DEFAULT_NAME } = await import("./opfs.ts");
  return await OpfsStore.open(path ?? OPFS_DEFAULT_NAME, {
    durability: options.durability,
    logger: options.logger,
  });
}
