/**
 * `storage: "opfs"`: a durable database in a browser. The page side of it —
 * a {@link Store} whose every call is a message to a dedicated worker that
 * holds the database in the Origin Private File System (storage/opfs_worker.ts;
 * the messages in storage/opfs_protocol.ts).
 *
 * The worker script is `lattice-opfs-worker.js`, a file of its own beside the
 * module that holds this code (`dist/lattice.js`, or a test bundle), with
 * `sqlite3.wasm` inside it (scripts/opfs-worker.mjs builds it): the core
 * stays small, and a page that never asks for OPFS never loads SQLite. A
 * worker must come from the page's own origin, so when the script is on
 * another one (a CDN) the worker is a one-line module from a `blob:` URL
 * that imports it (CDNs answer with CORS headers, as module scripts need).
 *
 * Each call costs a message both ways (structured clone of its arguments and
 * its answer): the Database's group commit shares that cost between
 * concurrent writers, as it shares a fsync on the server.
 *
 * @module
 */
import { closedError } from "./_check.ts";
import { fromOpfsError, type OpfsAnswer, type OpfsMethod, type OpfsOpened } from "./opfs_protocol.ts";
import type { Durability, SqliteInfo } from "./sqlite_connect.ts";
import type {
  ChangesOptions,
  ChangesPage,
  CommitBatch,
  DeferredOp,
  FieldKey,
  ListOptions,
  Store,
  StoredRecord,
} from "../core/store.ts";
import type { NodeData } from "../core/value.ts";
import { createLogger, type Logger } from "../runtime/log.ts";

/** The worker script's file name, beside the module holding this code. */
export const OPFS_WORKER_FILE = "lattice-opfs-worker.js";

/** The default database name in OPFS. */
export const OPFS_DEFAULT_NAME = "lattice";

/** Database names: what may name a directory in OPFS on every browser. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Whether this runtime can hold an OPFS database (a browser page or worker with OPFS and module workers). */
export function hasOpfs(): boolean {
  const g = globalThis as { navigator?: { storage?: { getDirectory?: unknown } }; Worker?: unknown };
  return typeof g.Worker === "function" && typeof g.navigator?.storage?.getDirectory === "function" &&
    typeof (globalThis as { Deno?: unknown }).Deno === "undefined" &&
    typeof (globalThis as { Bun?: unknown }).Bun === "undefined";
}

/** Options of {@link OpfsStore.open}. */
export interface OpfsStoreOptions {
  /**
   * Either way a commit resolves once its journal frame is written and flushed
   * (storage/opfs_sqlite.ts). `process` (default): SQLite's `synchronous=NORMAL`, so
   * the folds of the journal into SQLite (and batches of 16k records or more) are
   * written but not flushed: a resolved commit survives the page, worker or browser
   * being killed, as on a server; `power`: `synchronous=FULL`, those flushed too.
   */
  readonly durability?: Durability;
  /** Where a refused `navigator.storage.persist()` is reported (default: a logger at `LATTICE_LOG`'s level). */
  readonly logger?: Logger;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** A worker's calls in flight, the next call id, and why the worker failed (calls reject with it). */
interface Channel {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  next: number;
  failed: Error | undefined;
}

/** A {@link Store} in OPFS, answered by its worker. */
export class OpfsStore implements Store {
  readonly engine = "opfs";
  readonly durable = true;
  /** The database name in OPFS. */
  readonly name: string;
  /** The SQLite library version of the worker. */
  readonly sqliteVersion: string;
  /** What a resolved commit survives (see {@link OpfsStoreOptions.durability}). */
  readonly durability: Durability;
  /** How SQLite is set up in the worker, as it was opened (journal mode, synchronous, pages). */
  readonly info: SqliteInfo;
  /**
   * The answer of `navigator.storage.persist()`, asked at open: `true` when the
   * browser keeps the origin's storage until the user clears it, `false` when it
   * may evict it under storage pressure ("best-effort"), `undefined` when the
   * browser has no such call.
   */
  readonly persisted: boolean | undefined;
  #channel: Channel;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(
    name: string,
    durability: Durability,
    opened: OpfsOpened,
    channel: Channel,
    persisted: boolean | undefined,
  ) {
    this.name = name;
    this.persisted = persisted;
    this.durability = durability;
    this.sqliteVersion = opened.sqliteVersion;
    this.info = opened.info;
    this.#channel = channel;
  }

  /**
   * Opens (creating when missing) the OPFS database `name` in its own worker.
   * Rejects with a TypeError/RangeError for a bad name, and with an Error when
   * the database is open elsewhere (another tab, or this page without closing).
   */
  static async open(name: string = OPFS_DEFAULT_NAME, options: OpfsStoreOptions = {}): Promise<OpfsStore> {
    if (!hasOpfs()) throw new RangeError("opfs is a browser storage (it needs OPFS and Workers); use sqlite");
    if (typeof name !== "string") throw new TypeError("The OPFS database name (path) must be a string");
    if (!NAME.test(name)) {
      throw new RangeError(
        `Bad OPFS database name ${
          JSON.stringify(name)
        }: 1–100 letters, digits, ".", "_" or "-", the first a letter or digit`,
      );
    }
    const durability = options.durability ?? "process";
    if (durability !== "process" && durability !== "power") {
      throw new RangeError(`Unknown durability ${JSON.stringify(durability)}: use "process" or "power"`);
    }
    const worker = startWorker();
    const channel: Channel = { worker, pending: new Map(), next: 1, failed: undefined };
    worker.onmessage = (e: MessageEvent<OpfsAnswer>) => {
      const a = e.data;
      const p = channel.pending.get(a.id);
      if (p === undefined) return;
      channel.pending.delete(a.id);
      if (a.error !== undefined) p.reject(fromOpfsError(a.error));
      else p.resolve(a.value);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      // The worker is gone (or never came): nothing it was asked will be answered.
      const error = channel.failed = new Error(
        `The OPFS worker failed: ${e.message || "it could not be loaded"}`,
      );
      for (const p of channel.pending.values()) p.reject(error);
      channel.pending.clear();
      worker.terminate();
    };
    try {
      const opened = await send(channel, "open", [name, durability]) as OpfsOpened;
      const persisted = await requestPersist();
      if (persisted === false) {
        (options.logger ?? createLogger()).warn(
          "storage",
          "the browser refused persistent storage: it may evict this OPFS database under storage pressure",
          { database: name },
        );
      }
      return new OpfsStore(name, durability, opened, channel, persisted);
    } catch (e) {
      worker.terminate();
      throw e;
    }
  }

  readNode(soul: string): Promise<StoredRecord[]> {
    return this.#call("readNode", [soul]) as Promise<StoredRecord[]>;
  }

  readNodeData(soul: string): Promise<NodeData | undefined> {
    return this.#call("readNodeData", [soul]) as Promise<NodeData | undefined>;
  }

  readFields(keys: readonly FieldKey[]): Promise<(StoredRecord | undefined)[]> {
    // Only soul and field cross: the Database passes whole records as keys.
    const plain = new Array<FieldKey>(keys.length);
    for (let i = 0; i < keys.length; i++) plain[i] = { soul: keys[i].soul, field: keys[i].field };
    return this.#call("readFields", [plain]) as Promise<(StoredRecord | undefined)[]>;
  }

  commit(batch: CommitBatch): Promise<number> {
    return this.#call("commit", [batch]) as Promise<number>;
  }

  list(options: ListOptions): Promise<string[]> {
    return this.#call("list", [options]) as Promise<string[]>;
  }

  changes(after: number, options: ChangesOptions): Promise<ChangesPage> {
    return this.#call("changes", [after, options]) as Promise<ChangesPage>;
  }

  lastSeq(): Promise<number> {
    return this.#call("lastSeq", []) as Promise<number>;
  }

  countLive(): Promise<number> {
    return this.#call("countLive", []) as Promise<number>;
  }

  deferred(): Promise<DeferredOp[]> {
    return this.#call("deferred", []) as Promise<DeferredOp[]>;
  }

  deferredDue(until: number, limit: number): Promise<DeferredOp[]> {
    return this.#call("deferredDue", [until, limit]) as Promise<DeferredOp[]>;
  }

  deferredCount(source?: string): Promise<number> {
    return this.#call("deferredCount", [source]) as Promise<number>;
  }

  dropDeferredAfter(due: number): Promise<number> {
    return this.#call("dropDeferredAfter", [due]) as Promise<number>;
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.#call("getMeta", [key]) as Promise<string | undefined>;
  }

  /**
   * Closes the database and ends its worker once the worker has given the
   * files back, so the same name can be opened again right after. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const worker = this.#channel.worker;
    return this.#closing = send(this.#channel, "close", []).then(
      () => worker.terminate(),
      (e) => {
        worker.terminate();
        throw e;
      },
    );
  }

  #call(method: OpfsMethod, args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(closedError());
    return send(this.#channel, method, args);
  }
}

/** Asks the browser to keep this origin's storage (`navigator.storage.persist()`); `undefined` where it cannot. */
async function requestPersist(): Promise<boolean | undefined> {
  const storage = (globalThis as { navigator?: { storage?: { persist?: () => Promise<boolean> } } }).navigator
    ?.storage;
  if (typeof storage?.persist !== "function") return undefined;
  try {
    return await storage.persist();
  } catch {
    return undefined; // a worker without the call, or a browser that throws instead of answering
  }
}

function send(channel: Channel, method: OpfsMethod, args: unknown[]): Promise<unknown> {
  if (channel.failed !== undefined) return Promise.reject(channel.failed);
  const id = channel.next++;
  return new Promise((resolve, reject) => {
    channel.pending.set(id, { resolve, reject });
    try {
      channel.worker.postMessage({ id, method, args });
    } catch (e) { // a value structured clone cannot carry
      channel.pending.delete(id);
      reject(e);
    }
  });
}

/** The worker, from {@link OPFS_WORKER_FILE} beside this module (through a `blob:` module when cross-origin). */
function startWorker(): Worker {
  // The query tells sqlite-wasm not to try its other OPFS VFSes, which need a helper script
  // beside it (and COOP/COEP): on a cross-origin isolated page each would log a failure.
  const url = new URL(`${OPFS_WORKER_FILE}?opfs-disable&opfs-wl-disable`, import.meta.url);
  const page = (globalThis as { location?: { origin?: string } }).location?.origin;
  if (url.origin === page) return new Worker(url, { type: "module" });
  const shim = new Blob([`import ${JSON.stringify(url.href)};`], { type: "text/javascript" });
  return new Worker(URL.createObjectURL(shim), { type: "module" });
}
