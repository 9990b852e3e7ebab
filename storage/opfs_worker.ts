/**
 * The OPFS worker: a dedicated Worker that holds one Lattice database in the
 * Origin Private File System and answers the Store calls of the page that
 * started it (storage/opfs.ts; messages in storage/opfs_protocol.ts).
 *
 * SQLite is `@sqlite.org/sqlite-wasm` on its `opfs-sahpool` VFS: sync access
 * handles, which exist only in dedicated workers and need no COOP/COEP
 * headers (unlike the `opfs` VFS, which needs SharedArrayBuffer). Each
 * database has a pool of its own, the OPFS directory `.lattice/<name>`, and
 * the pool holds its files' handles exclusively while open: a second opener
 * of the same database (another tab, or this page before closing) cannot
 * install it and is refused. The connection is the server's sqlite-wasm
 * driver (storage/sqlite_wasm.ts) with the server's pragmas and schema
 * (storage/sqlite_connect.ts `configure`), and the store the server's tables
 * and journal (storage/opfs_sqlite.ts), the journal's files in the same OPFS
 * directory (`journal/slot-<k>`, storage/opfs_journal.ts), their handles
 * opened after the pool's (so a second opener is refused by the pool first)
 * and held until close.
 *
 * `sqlite3.wasm` comes embedded in the worker bundle (storage/_sqlite3_wasm.ts).
 *
 * @module
 */
import init from "@sqlite.org/sqlite-wasm";
import { sqliteWasm } from "./_sqlite3_wasm.ts";
import { type DirHandle, JOURNAL_DIR, OpfsJournalFs } from "./opfs_journal.ts";
import { OpfsSqlite } from "./opfs_sqlite.ts";
import type { OpfsAnswer, OpfsCall, OpfsOpened } from "./opfs_protocol.ts";
import { toOpfsError } from "./opfs_protocol.ts";
import { configure, type Durability, readInfo } from "./sqlite_connect.ts";
import { openWasmSqliteOn } from "./sqlite_wasm.ts";
import type { Sqlite3 } from "./sqlite_wasm_abi.ts";

/** The database file inside its pool. */
const DB_FILE = "/lattice.db";
/** The VFS name, one per worker (each worker holds one database). */
const VFS = "lattice-opfs";

interface Pool {
  readonly vfsName: string;
  pauseVfs(): unknown;
}

interface Sqlite3Opfs extends Sqlite3 {
  installOpfsSAHPoolVfs(opts: {
    name: string;
    directory: string;
    initialCapacity: number;
    preserveOnInitFailure: boolean;
  }): Promise<Pool>;
}

type WorkerScope = {
  onmessage: ((e: MessageEvent<OpfsCall>) => void) | null;
  postMessage(message: OpfsAnswer): void;
  close(): void;
};
const scope = globalThis as unknown as WorkerScope;

let store: OpfsSqlite | undefined;
let pool: Pool | undefined;
let journal: OpfsJournalFs | undefined;
/** Calls run one after another: `open` is asynchronous, the others are not. */
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e) => {
  const call = e.data;
  queue = queue.then(() => answer(call));
};

async function answer(call: OpfsCall): Promise<void> {
  try {
    scope.postMessage({ id: call.id, value: await run(call) });
  } catch (e) {
    scope.postMessage({ id: call.id, error: toOpfsError(e) });
  }
  if (call.method === "close") scope.close();
}

async function run(call: OpfsCall): Promise<unknown> {
  const a = call.args;
  if (call.method === "open") return await open(a[0] as string, a[1] as Durability);
  if (call.method === "close") return close();
  if (store === undefined) throw new Error("The OPFS database is not open");
  switch (call.method) {
    case "readNode":
      return store.readNode(a[0] as string);
    case "readNodeData":
      return store.readNodeData(a[0] as string);
    case "readFields":
      return store.readFields(a[0] as Parameters<OpfsSqlite["readFields"]>[0]);
    case "commit":
      return store.commit(a[0] as Parameters<OpfsSqlite["commit"]>[0]);
    case "list":
      return store.list(a[0] as Parameters<OpfsSqlite["list"]>[0]);
    case "changes":
      return store.changes(a[0] as number, a[1] as Parameters<OpfsSqlite["changes"]>[1]);
    case "lastSeq":
      return store.lastSeq();
    case "countLive":
      return store.countLive();
    case "deferred":
      return store.deferred();
    case "deferredDue":
      return store.deferredDue(a[0] as number, a[1] as number);
    case "deferredCount":
      return store.deferredCount(a[0] as string | undefined);
    case "dropDeferredAfter":
      return store.dropDeferredAfter(a[0] as number);
    case "getMeta":
      return store.getMeta(a[0] as string);
    default:
      throw new TypeError(`Unknown OPFS worker call ${JSON.stringify(call.method)}`);
  }
}

/** Opens database `name`; answers what the page reports of it. */
async function open(name: string, durability: Durability): Promise<OpfsOpened> {
  if (store !== undefined) throw new Error("The OPFS database is already open");
  const sqlite3 = await load();
  try {
    pool = await sqlite3.installOpfsSAHPoolVfs({
      name: VFS,
      directory: `.lattice/${name}`,
      initialCapacity: 6,
      // By default a failed install deletes the pool (the database!); this one only lets go of it.
      preserveOnInitFailure: true,
    });
  } catch (e) {
    throw refused(name, e);
  }
  let db: ReturnType<typeof configure> | undefined;
  try {
    try {
      journal = await OpfsJournalFs.open(await databaseDir(name));
    } catch (e) {
      throw refused(name, e); // its slots are held as exclusively as the pool's files
    }
    db = configure(openWasmSqliteOn(sqlite3, DB_FILE, pool.vfsName), name, durability, 0);
    store = new OpfsSqlite(db, name, journal, JOURNAL_DIR, durability === "power");
  } catch (e) {
    try {
      db?.close();
    } finally {
      release();
    }
    throw e;
  }
  return { sqliteVersion: sqlite3.version.libVersion, info: readInfo(db) };
}

/** The error of an open whose files another worker holds (or OPFS refused). */
function refused(name: string, e: unknown): Error {
  return new Error(
    `Cannot open OPFS database ${JSON.stringify(name)}: it is open elsewhere (another tab or worker), ` +
      `or OPFS refused it (${e instanceof Error ? e.message : String(e)})`,
  );
}

/** The OPFS directory of database `name`, `.lattice/<name>` (the pool's, which it creates). */
async function databaseDir(name: string): Promise<DirHandle> {
  const storage = (navigator as unknown as { storage: { getDirectory(): Promise<DirHandle> } }).storage;
  const lattice = await (await storage.getDirectory()).getDirectoryHandle(".lattice", { create: true });
  return await lattice.getDirectoryHandle(name, { create: true });
}

function close(): void {
  try {
    store?.close();
  } finally {
    store = undefined;
    release();
  }
}

/** Gives the files' handles back, so the database can be opened again at once. */
function release(): void {
  try {
    journal?.close();
  } finally {
    journal = undefined;
    pool?.pauseVfs();
    pool = undefined;
  }
}

function load(): Promise<Sqlite3Opfs> {
  const bytes = sqliteWasm;
  const options = bytes === undefined ? undefined : {
    // Instantiated from the embedded bytes instead of fetching sqlite3.wasm.
    instantiateWasm(
      imports: WebAssembly.Imports,
      done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
    ): object {
      void WebAssembly.instantiate(bytes as Uint8Array<ArrayBuffer>, imports).then((r) =>
        done(r.instance, r.module)
      );
      return {};
    },
  };
  return (init as unknown as (o?: object) => Promise<Sqlite3Opfs>)(options);
}
