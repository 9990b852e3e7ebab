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
 * @example Embed with networking: two replicas of one space converge
 * ```ts ignore
 * import { open } from "./mod.ts";
 * const a = await open({ storage: "memory", network: { space: "demo" } });
 * // On Deno and Bun a replica listens on loopback TCP by default; a browser only dials.
 * const b = await open({ storage: "memory", network: { space: "demo", bootstrap: a.network!.addrs() } });
 * b.watch({ prefix: "greeting" }, (change) => console.log(change.source, change.changes)); // remote { text: "hi" }
 * await a.put("greeting", { text: "hi" });
 * console.log(b.network!.peers()); // [{ id, addrs, since, gossip, sync: { asOf, … } }]
 * await b.close(); // leaves the network, then closes storage
 * await a.close();
 * ```
 *
 * @module
 */
import { Database } from "./core/database.ts";
import {
  checkQueryBudget,
  DEFAULT_QUERY_BUDGET,
  type QueryBudget,
  QueryTooLargeError,
} from "./core/query_budget.ts";
import type { KernelChoice } from "./core/kernels/mod.ts";
import { loadKernels } from "./runtime/kernels.ts";
import { openStore, type StorageChoice } from "./storage/open.ts";
import { openSharedWith, type SharedDatabase } from "./runtime/tabs.ts";
import type { RunningNetwork } from "./net/network.ts";
import { type ExportedIdentity, type Identity, importIdentity, isIdentity } from "./core/trust/identity.ts";
import { isServerRuntime } from "./runtime/detect.ts";
import { getEnv } from "./runtime/env.ts";
import { isLogger, type Logger } from "./runtime/log.ts";
import type { World } from "./core/world.ts";
import type { Embedder } from "./core/db/embedding.ts";
import {
  checkNetworkOptions,
  type Network,
  type NetworkOpenOptions,
  networkView,
} from "./net/network_options.ts";

/**
 * Options of {@link open}.
 *
 * @example
 * ```ts
 * import { open, type OpenOptions } from "./mod.ts";
 * const options: OpenOptions = { storage: "memory", kernels: "js", maxDrift: 60_000 };
 * const db = await open(options);
 * console.log(db.storage, db.kernels.name); // memory js
 * await db.close();
 * ```
 */
export interface OpenOptions {
  /**
   * Database directory for durable storage (with `storage: "opfs"` in a browser: the database's
   * name in OPFS); without it `auto` storage keeps data in memory.
   */
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
  /**
   * Where the database's own warnings go (`auto` storage falling back to
   * memory in a browser without OPFS, a refused `navigator.storage.persist()`);
   * default: `network.logger`, else a logger at `LATTICE_LOG`'s level.
   */
  readonly logger?: Logger;
  /**
   * Networking (default `false`: a local database). With options, `open`
   * joins the space's network once the database is open — libp2p, DHT
   * discovery, gossip of every commit, anti-entropy sync — and `db.network`
   * describes it; `db.close()` leaves the network, then closes storage.
   * Sharded replication is not available yet (a `RangeError`).
   */
  readonly network?: false | NetworkOpenOptions;
  /**
   * The replica's identity: the Ed25519 key that signs its writes (its actor
   * id is the key's; it may write its protected souls `~<id>/…`) and is its
   * libp2p peer id. An {@link Identity}, or an
   * {@link ExportedIdentity} (or its JSON text) to import. Without one, a
   * directory on Deno and Bun (SQLite storage) keeps its own in
   * `<path>/identity.json` (mode 0600), created on the first open and sealed
   * with {@link OpenOptions.passphrase} when there is one; an OPFS database
   * in a browser keeps a non-extractable key in IndexedDB; memory storage has
   * none (unsigned writes under a random actor id, a new peer id at each
   * open).
   */
  readonly identity?: Identity | ExportedIdentity | string;
  /**
   * The passphrase of the directory's `identity.json` (default: the
   * `LATTICE_PASSPHRASE` environment variable on servers). A new file is
   * sealed with it (scrypt, AES-GCM); an encrypted one cannot be opened
   * without it.
   */
  readonly passphrase?: string;
  /**
   * The space this replica's signed writes are for (signatures cover it;
   * default: `network.space`, else `"default"`). For a replica whose network
   * starts later, as `lattice serve --space NAME` starts it; with `network`
   * it must be the same space.
   */
  readonly space?: string;
  /** States further than this ahead of the local clock are deferred (ms, default 10 min). */
  readonly maxDrift?: number;
  /** States further than this ahead of the local clock are refused, not deferred (ms, default 1 day). */
  readonly horizon?: number;
  /** Most ops deferred at once, in all (default 100,000) and per source (default 10,000). */
  readonly maxDeferred?: number;
  readonly maxDeferredPerSource?: number;
  /**
   * Limits on the work of one `query`: path length, frontier, nodes read
   * and time (core/query_budget.ts; defaults {@link DEFAULT_QUERY_BUDGET}).
   * Over any of them `query` rejects with a {@link QueryTooLargeError}.
   */
  readonly queryBudget?: Partial<QueryBudget>;
  /**
   * The application's text → vector function ({@link Embedder}): with it an
   * indexed field may hold text, embedded and indexed as it is written or
   * arrives, and `search` takes `text` as well as `vector`. Each replica
   * embeds for itself; the stored and synced value is the text.
   */
  readonly embed?: Embedder;
  /**
   * Time, timers and randomness (default {@link systemWorld}): the clock of
   * the database and its store, the deferral and sync timers, the actor id
   * of a new database and the network's backoffs. A simulator passes a world
   * of virtual time; programs leave it out.
   */
  readonly world?: World;
}

/**
 * What {@link open} returns: the {@link Database}, plus its network.
 *
 * @example
 * ```ts
 * import { open, type OpenedDatabase } from "./mod.ts";
 * const describe = (db: OpenedDatabase) => db.network ? `replica of ${db.network.space}` : "local database";
 * const db = await open({ storage: "memory" });
 * console.log(describe(db)); // local database
 * await db.close();
 * ```
 */
export interface OpenedDatabase extends Database {
  /** The running network when opened with `network` options, else `undefined`. */
  readonly network: Network | undefined;
  /** The identity that signs this replica's writes ({@link OpenOptions.identity}), or `undefined`. */
  readonly identity: Identity | undefined;
}

/**
 * Opens a database. With a `path`, it owns that directory (a second opener
 * gets a `LockedError` naming the holder) until `close()`. Options are
 * checked before anything starts (`TypeError`, `RangeError`). With
 * `network`, the network starts once the database is open; if it cannot
 * start, the database is closed again and `open` rejects with the error.
 *
 * @example
 * ```ts
 * import { open } from "./mod.ts";
 * const db = await open({ storage: "memory" });
 * console.log(db.network); // undefined: a local database
 * await db.close();
 * ```
 */
export async function open(options: OpenOptions = {}): Promise<OpenedDatabase> {
  if (typeof options !== "object" || options === null) throw new TypeError("open takes an options object");
  const given = options.identity === undefined ? undefined : await givenIdentity(options.identity);
  if (options.passphrase !== undefined && typeof options.passphrase !== "string") {
    throw new TypeError("passphrase must be a string");
  }
  if (options.logger !== undefined && !isLogger(options.logger)) {
    throw new TypeError("logger must have debug, info, warn and error methods");
  }
  const queryBudget = checkQueryBudget(options.queryBudget);
  const network = checkNetworkOptions(options.network);
  if (options.space !== undefined) {
    if (typeof options.space !== "string" || options.space === "") {
      throw new TypeError("space must be a non-empty string");
    }
    if (network && network.space !== options.space) {
      throw new RangeError(
        `space ${JSON.stringify(options.space)} is not network.space ${JSON.stringify(network.space)}`,
      );
    }
  }
  // Loaded only when asked for, so a program without a network never loads libp2p.
  const join = network ? await import("./net/join.ts") : undefined;
  if (network) {
    join!.checkAddresses(network);
    network.signal?.throwIfAborted();
  }
  const kernels = await loadKernels({ kernels: options.kernels });
  const store = await openStore({
    path: options.path,
    storage: options.storage,
    durability: options.durability,
    lockCommand: options.lockCommand,
    world: options.world,
    logger: options.logger ?? (network ? network.logger : undefined),
  });
  let db: Database;
  let identity: Identity | undefined;
  try {
    identity = given ?? await directoryIdentity(options, store.durable);
    db = await Database.create({
      store,
      kernels,
      maxDrift: options.maxDrift,
      horizon: options.horizon,
      maxDeferred: options.maxDeferred,
      maxDeferredPerSource: options.maxDeferredPerSource,
      queryBudget,
      world: options.world,
      embed: options.embed,
      identity,
      space: options.space ?? (network ? network.space : undefined),
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  withIdentity(db, identity);
  if (!network) return withNetwork(db, undefined);
  let running: RunningNetwork;
  try {
    // A directory on a server also keeps the WebRTC-Direct certificate (net/webrtc_cert.ts).
    const directory = options.path !== undefined && store.durable && isServerRuntime()
      ? options.path
      : undefined;
    running = await join!.startNetwork(db, { ...network, world: options.world ?? network.world, directory });
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
  return withNetwork(db, running);
}

/**
 * Opens a database shared by the tabs (and workers) of a browser origin:
 * with `storage: "opfs"`, the first tab to open `path` runs the database
 * (and its network, when asked for) and the others forward their calls to
 * it and get their watches' changes; when it closes or crashes, another
 * takes over (runtime/tabs.ts). Every tab gets a {@link SharedDatabase}
 * (`put`, `get`, `delete`, `list`, `query`, `search`, `countNodes`,
 * `watch`, `status`, `close`; `owner` tells whether this tab runs it).
 * Without Web Locks or BroadcastChannel, and for other storage, the
 * database is this tab's own, as {@link open} opens it (one opener).
 *
 * @example
 * ```ts
 * import { openShared } from "./mod.ts";
 * const db = await openShared({ storage: "memory" });
 * await db.put("alice", { name: "Alice" });
 * console.log(await db.get("alice"), (await db.status()).owner); // { name: "Alice" } true
 * await db.close();
 * ```
 */
export function openShared(options: OpenOptions = {}): Promise<SharedDatabase> {
  return openSharedWith(options, open);
}

/** The identity given to {@link open}: an {@link Identity}, or one to import (`TypeError` for anything else). */
function givenIdentity(x: Identity | ExportedIdentity | string): Promise<Identity> {
  return isIdentity(x) ? Promise.resolve(x) : importIdentity(x);
}

/**
 * The identity of a durable database, created on its first open: on a
 * server `<path>/identity.json`, in a browser (OPFS) a key in IndexedDB
 * (runtime/browser_identity.ts); `undefined` for memory storage. Loaded with
 * `import()`: a program without a directory never reads either.
 */
async function directoryIdentity(options: OpenOptions, durable: boolean): Promise<Identity | undefined> {
  if (options.path === undefined || !durable) return undefined;
  if (!isServerRuntime()) {
    return await (await import("./runtime/browser_identity.ts")).loadOrCreateBrowserIdentity(options.path);
  }
  const file = await import("./storage/identity_file.ts");
  const passphrase = options.passphrase ?? getEnv(file.PASSPHRASE_ENV);
  return (await file.loadOrCreateIdentity(options.path, passphrase)).identity;
}

/** Gives `db` its read-only `identity` (unless the database already shows one). */
function withIdentity(db: Database, identity: Identity | undefined): void {
  if (!Object.hasOwn(db, "identity")) {
    Object.defineProperty(db, "identity", { value: identity, enumerable: true });
  }
}

/**
 * Gives `db` its `network` and, with one, a `close` that leaves the network
 * before closing storage: queued writes are committed first and handed to
 * gossip, sync sessions end, libp2p stops, then the database closes.
 */
function withNetwork(db: Database, running: RunningNetwork | undefined): OpenedDatabase {
  Object.defineProperty(db, "network", { value: running && networkView(running), enumerable: true });
  if (running) {
    const closeDatabase = db.close.bind(db);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      closing ??= (async () => {
        try {
          // What was written before close() is committed, so it is gossiped before the network stops.
          await db.idle();
          await running.stop();
        } finally {
          await closeDatabase();
        }
      })();
    Object.defineProperty(db, "close", { value: close, configurable: true, writable: true });
  }
  return db as OpenedDatabase;
}

export { TrustError } from "./core/db/trust.ts";
export type { TrustApi } from "./core/db/trust_api.ts";
export {
  type Certificate,
  createCertificate,
  type Grant,
  readCertificate,
} from "./core/trust/certificate.ts";
export {
  actorOf,
  createIdentity,
  type ExportedIdentity,
  exportIdentity,
  type Identity,
  importIdentity,
  isKeyActor,
  verifySignature,
} from "./core/trust/identity.ts";
export {
  type ApplyOptions,
  type ApplyResult,
  type Change,
  type Condition,
  Database,
  type DeferredStatus,
  type Entry,
  type IndexInfo,
  type IndexOptions,
  type ListOptions,
  type Query,
  type SearchOptions,
  type SearchResult,
  type WatchTarget,
  type WriteResult,
} from "./core/database.ts";
export { decodeVector } from "./core/db/vector_value.ts";
export type { Embedder } from "./core/db/embedding.ts";
export type { Link, NodeData, Value } from "./core/value.ts";
export { MAX_PUT_FIELDS } from "./core/value.ts";
export { DEFAULT_QUERY_BUDGET, type QueryBudget, QueryTooLargeError };
export type { Op } from "./core/op.ts";
export type { StorageChoice } from "./storage/open.ts";
export type {
  Network,
  NetworkOpenOptions,
  NetworkPeer,
  PeerSync,
  ReplicationMode,
} from "./net/network_options.ts";
export { createLogger, type Logger, type LoggerOptions, type LogLevel } from "./runtime/log.ts";
export { LockedError, type LockHolder } from "./storage/lock.ts";
export { DiskFullError } from "./storage/disk_full.ts";
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
  HnswHits,
  HnswIndex,
  HnswOptions,
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
export type { SharedDatabase, SharedStatus } from "./runtime/tabs.ts";
export { systemWorld, type Timer, type World } from "./core/world.ts";
