/**
 * SQLite compiled to WebAssembly (`@sqlite.org/sqlite-wasm`) on a real file,
 * for server runtimes without a native SQLite driver (e.g. Node 20) or when
 * `driver: "wasm"` is forced.
 *
 * sqlite-wasm's own VFSes on server runtimes keep everything in memory, so
 * this module registers a durable VFS, `lattice-fs`, written over the
 * synchronous `node:fs` calls that Deno, Bun and Node all provide (loaded
 * with dynamic `import()`, so nothing here is pulled in by a browser bundle
 * unless this module itself is).
 *
 * How the database is opened:
 * - `PRAGMA locking_mode=EXCLUSIVE`, then `PRAGMA journal_mode=WAL`. The VFS
 *   has no shared memory (`xShm*`), which SQLite accepts for WAL only in
 *   exclusive locking mode: the WAL index then lives in the connection's heap
 *   and no `-shm` file exists. Should WAL still be refused, the database falls
 *   back to `journal_mode=TRUNCATE` (a rollback journal truncated at each
 *   commit). {@link WasmSqliteDriver.journalMode} says which one is in use.
 * - `PRAGMA synchronous=FULL`: every commit `fsync`s the WAL before it is
 *   acknowledged, so an acknowledged commit survives SIGKILL (writes are in
 *   the OS page cache) and power loss (they are on the device). Newly created
 *   journal/WAL/database files also get their directory `fsync`ed once.
 *
 * Locking: `xLock`/`xUnlock`/`xCheckReservedLock` keep SQLite's five lock
 * levels in process memory, per file path. They exclude connections inside
 * one process (a second connection to an open database gets `SQLITE_BUSY`);
 * they do not exclude other processes. Cross-process exclusion comes from
 * Lattice's own `LOCK` file, which `SqliteStore` holds for the database's
 * lifetime. (With `locking_mode=EXCLUSIVE` the connection keeps its lock until
 * it closes anyway.)
 *
 * Loading: the package is imported by its bare name. On Deno, Bun and Node it
 * resolves to its `node` build (`dist/node.mjs`), which reads `sqlite3.wasm`
 * from beside itself with `node:fs` (Deno needs `--allow-read`). A bundle made
 * with esbuild (`--platform=node`) works on Node 20 when `sqlite3.wasm` is
 * copied next to the bundle.
 *
 * @example
 * ```ts
 * import { openWasmSqlite } from "./sqlite_wasm.ts";
 * const db = await openWasmSqlite("/tmp/example.db");
 * db.exec("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)");
 * db.prepare("INSERT OR REPLACE INTO t VALUES (?, ?)").run("a", new Uint8Array([1, 2]));
 * console.log(db.prepare("SELECT v FROM t WHERE k = ?").get("a")); // { v: Uint8Array [1, 2] }
 * db.close();
 * ```
 *
 * @module
 */
import type { SqlDriver, SqlStatement, SqlValue } from "./sqlite_driver.ts";

/** Name under which the file-backed VFS is registered with SQLite. */
export const WASM_VFS_NAME = "lattice-fs";

// ---------------------------------------------------------------------------
// The slice of the sqlite-wasm API used here. Typed locally: the package's
// own declarations type i64 arguments as `number` (they arrive as `bigint`),
// name some struct members without their `$` prefix, and type callback
// results as literal unions.

type Ptr = number;
type Callback = (...args: never[]) => number | void;

interface WasmStruct {
  readonly pointer: Ptr;
  dispose(): void;
}

interface VfsStruct extends WasmStruct {
  $iVersion: number;
  $szOsFile: number;
  $mxPathname: number;
}

interface IoMethodsStruct extends WasmStruct {
  $iVersion: number;
}

interface FileStruct extends WasmStruct {
  $pMethods: Ptr;
}

/** The raw C exports of the WASM module used on hot paths (xWrap-free). */
interface Exports {
  sqlite3_open_v2(zName: Ptr, ppDb: Ptr, flags: number, zVfs: Ptr): number;
  sqlite3_close_v2(db: Ptr): number;
  sqlite3_exec(db: Ptr, zSql: Ptr, callback: Ptr, arg: Ptr, pzErrmsg: Ptr): number;
  sqlite3_prepare_v2(db: Ptr, zSql: Ptr, nByte: number, ppStmt: Ptr, pzTail: Ptr): number;
  sqlite3_finalize(stmt: Ptr): number;
  sqlite3_step(stmt: Ptr): number;
  sqlite3_reset(stmt: Ptr): number;
  sqlite3_clear_bindings(stmt: Ptr): number;
  sqlite3_bind_parameter_count(stmt: Ptr): number;
  sqlite3_bind_null(stmt: Ptr, i: number): number;
  sqlite3_bind_int(stmt: Ptr, i: number, value: number): number;
  sqlite3_bind_int64(stmt: Ptr, i: number, value: bigint): number;
  sqlite3_bind_double(stmt: Ptr, i: number, value: number): number;
  sqlite3_bind_text(stmt: Ptr, i: number, value: Ptr, n: number, dtor: Ptr): number;
  sqlite3_bind_blob(stmt: Ptr, i: number, value: Ptr, n: number, dtor: Ptr): number;
  sqlite3_column_count(stmt: Ptr): number;
  sqlite3_column_name(stmt: Ptr, i: number): Ptr;
  sqlite3_column_type(stmt: Ptr, i: number): number;
  sqlite3_column_double(stmt: Ptr, i: number): number;
  sqlite3_column_int64(stmt: Ptr, i: number): bigint;
  sqlite3_column_text(stmt: Ptr, i: number): Ptr;
  sqlite3_column_blob(stmt: Ptr, i: number): Ptr;
  sqlite3_column_bytes(stmt: Ptr, i: number): number;
  sqlite3_errmsg(db: Ptr): Ptr;
  sqlite3_extended_errcode(db: Ptr): number;
  sqlite3_extended_result_codes(db: Ptr, on: number): number;
  sqlite3_malloc(n: number): Ptr;
  sqlite3_free(p: Ptr): void;
}

interface Sqlite3 {
  readonly version: { readonly libVersion: string };
  readonly capi: {
    sqlite3_vfs: new (ptr?: Ptr) => VfsStruct;
    sqlite3_io_methods: new (ptr?: Ptr) => IoMethodsStruct;
    sqlite3_file: (new (ptr?: Ptr) => FileStruct) & { structInfo: { sizeof: number } };
    sqlite3_vfs_find(name: string | null): Ptr;
    sqlite3_js_rc_str(rc: number): string | undefined;
    /** Function pointer of a destructor that frees with sqlite3_free. */
    readonly SQLITE_WASM_DEALLOC: Ptr;
  };
  readonly wasm: {
    readonly exports: Exports;
    heap8u(): Uint8Array;
    poke32(ptr: Ptr, value: number): unknown;
    poke64(ptr: Ptr, value: bigint): unknown;
    poke(ptr: Ptr, value: number, type: "double"): unknown;
    cstrToJs(ptr: Ptr): string | null;
  };
  readonly vfs: {
    installVfs(options: {
      io?: { struct: IoMethodsStruct; methods: Record<string, Callback> };
      vfs?: { struct: VfsStruct; methods: Record<string, Callback>; name?: string };
    }): unknown;
  };
}

type Fs = typeof import("node:fs");
type PathModule = typeof import("node:path");

// SQLite's C ABI constants (sqlite3.h); stable across versions.
const SQLITE_OK = 0;
const SQLITE_BUSY = 5;
const SQLITE_NOTFOUND = 12;
const SQLITE_FULL = 13;
const SQLITE_CANTOPEN = 14;
const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_NOMEM = 7;
const SQLITE_IOERR_READ = 266;
const SQLITE_IOERR_SHORT_READ = 522;
const SQLITE_IOERR_WRITE = 778;
const SQLITE_IOERR_FSYNC = 1034;
const SQLITE_IOERR_TRUNCATE = 1546;
const SQLITE_IOERR_FSTAT = 1802;
const SQLITE_IOERR_DELETE = 2570;
const SQLITE_IOERR_CLOSE = 4106;
const SQLITE_IOERR_DELETE_NOENT = 5898;

const SQLITE_OPEN_READONLY = 0x1;
const SQLITE_OPEN_READWRITE = 0x2;
const SQLITE_OPEN_CREATE = 0x4;
const SQLITE_OPEN_DELETEONCLOSE = 0x8;
const SQLITE_OPEN_EXCLUSIVE = 0x10;
const SQLITE_OPEN_MAIN_DB = 0x100;

const SQLITE_ACCESS_READWRITE = 1;
const SQLITE_ACCESS_READ = 2;

const SQLITE_SYNC_DATAONLY = 0x10;
const SQLITE_IOCAP_POWERSAFE_OVERWRITE = 0x1000;

const LOCK_NONE = 0;
const LOCK_SHARED = 1;
const LOCK_RESERVED = 2;
const LOCK_PENDING = 3;
const LOCK_EXCLUSIVE = 4;

const SQLITE_INTEGER = 1;
const SQLITE_FLOAT = 2;
const SQLITE_TEXT = 3;
const SQLITE_BLOB = 4;

/** Julian day number of the Unix epoch, in ms (for `xCurrentTimeInt64`). */
const UNIX_EPOCH_JD_MS = 210866760000000;
const SECTOR_SIZE = 4096;

const MAX_PATHNAME = 1024;

// ---------------------------------------------------------------------------
// The VFS.

/** One file opened through the VFS. */
interface OpenFile {
  readonly path: string;
  readonly fd: number;
  /** Current SQLite lock level of this handle. */
  lock: number;
  /** The directory entry is new: fsync the directory at the first xSync. */
  syncDir: boolean;
  /** Unlink at close (only where open files cannot be unlinked, i.e. Windows). */
  unlinkOnClose: boolean;
}

/** SQLite's lock levels of one path, shared by every handle on it in this process. */
interface PathLocks {
  readonly shared: Set<OpenFile>;
  reserved: OpenFile | undefined;
  pending: OpenFile | undefined;
  exclusive: OpenFile | undefined;
}

/** The `lattice-fs` VFS: SQLite file I/O over synchronous `node:fs` calls. */
class FsVfs {
  readonly #sqlite3: Sqlite3;
  readonly #fs: Fs;
  readonly #path: PathModule;
  readonly #tmpdir: () => string;
  /** Directory of the last main database opened: where temp files go when tmpdir() is not allowed. */
  #lastDir = ".";
  readonly #windows: boolean;
  readonly #files = new Map<Ptr, OpenFile>();
  readonly #locks = new Map<string, PathLocks>();
  #lastError = "";
  #io: IoMethodsStruct | undefined;

  constructor(sqlite3: Sqlite3, fs: Fs, path: PathModule, tmpdir: () => string, windows: boolean) {
    this.#sqlite3 = sqlite3;
    this.#fs = fs;
    this.#path = path;
    this.#tmpdir = tmpdir;
    this.#windows = windows;
  }

  /** Registers the VFS with SQLite (not as the default VFS). */
  install(name: string): void {
    const { capi, vfs } = this.#sqlite3;
    const io = new capi.sqlite3_io_methods();
    io.$iVersion = 1; // no xShm* (WAL runs in exclusive locking mode), no xFetch
    this.#io = io;
    const s = new capi.sqlite3_vfs();
    s.$iVersion = 2; // up to xCurrentTimeInt64
    s.$szOsFile = capi.sqlite3_file.structInfo.sizeof; // per-file state lives in this.#files
    s.$mxPathname = MAX_PATHNAME;
    vfs.installVfs({
      io: {
        struct: io,
        methods: {
          xClose: (f: Ptr) => this.#guard(SQLITE_IOERR_CLOSE, () => this.#close(f)),
          xRead: (f: Ptr, p: Ptr, n: number, at: bigint | number) =>
            this.#guard(SQLITE_IOERR_READ, () => this.#read(f, p, n, at)),
          xWrite: (f: Ptr, p: Ptr, n: number, at: bigint | number) =>
            this.#guard(SQLITE_IOERR_WRITE, () => this.#write(f, p, n, at)),
          xTruncate: (f: Ptr, size: bigint | number) =>
            this.#guard(SQLITE_IOERR_TRUNCATE, () => {
              this.#fs.ftruncateSync(this.#file(f).fd, Number(size));
              return SQLITE_OK;
            }),
          xSync: (f: Ptr, flags: number) => this.#guard(SQLITE_IOERR_FSYNC, () => this.#sync(f, flags)),
          xFileSize: (f: Ptr, out: Ptr) =>
            this.#guard(SQLITE_IOERR_FSTAT, () => {
              this.#sqlite3.wasm.poke64(Number(out), BigInt(this.#fs.fstatSync(this.#file(f).fd).size));
              return SQLITE_OK;
            }),
          xLock: (f: Ptr, level: number) => this.#guard(SQLITE_BUSY, () => this.#lock(this.#file(f), level)),
          xUnlock: (f: Ptr, level: number) =>
            this.#guard(SQLITE_OK, () => this.#unlock(this.#file(f), level)),
          xCheckReservedLock: (f: Ptr, out: Ptr) =>
            this.#guard(SQLITE_OK, () => {
              const locks = this.#locks.get(this.#file(f).path);
              const held = locks !== undefined &&
                (locks.reserved ?? locks.pending ?? locks.exclusive) !== undefined;
              this.#sqlite3.wasm.poke32(Number(out), held ? 1 : 0);
              return SQLITE_OK;
            }),
          xFileControl: () => SQLITE_NOTFOUND,
          xSectorSize: () => SECTOR_SIZE,
          xDeviceCharacteristics: () => SQLITE_IOCAP_POWERSAFE_OVERWRITE,
        },
      },
      vfs: {
        struct: s,
        name,
        methods: {
          xOpen: (_v: Ptr, name: Ptr, f: Ptr, flags: number, outFlags: Ptr) =>
            this.#guard(SQLITE_CANTOPEN, () => this.#open(name, f, flags, outFlags)),
          xDelete: (_v: Ptr, name: Ptr, syncDir: number) => this.#delete(name, syncDir),
          xAccess: (_v: Ptr, name: Ptr, flags: number, out: Ptr) =>
            this.#guard(SQLITE_OK, () => {
              this.#sqlite3.wasm.poke32(Number(out), this.#access(this.#cstr(name), flags) ? 1 : 0);
              return SQLITE_OK;
            }),
          xFullPathname: (_v: Ptr, name: Ptr, nOut: number, out: Ptr) =>
            this.#guard(SQLITE_CANTOPEN, () => this.#fullPathname(name, nOut, out)),
          xRandomness: (_v: Ptr, n: number, out: Ptr) => this.#randomness(n, out),
          // One thread, no cross-process locks: waiting cannot resolve contention.
          xSleep: () => 0,
          xCurrentTime: (_v: Ptr, out: Ptr) => {
            this.#sqlite3.wasm.poke(Number(out), 2440587.5 + Date.now() / 86400000, "double");
            return SQLITE_OK;
          },
          xCurrentTimeInt64: (_v: Ptr, out: Ptr) => {
            this.#sqlite3.wasm.poke64(Number(out), BigInt(UNIX_EPOCH_JD_MS + Date.now()));
            return SQLITE_OK;
          },
          xGetLastError: (_v: Ptr, nOut: number, out: Ptr) => {
            this.#writeCString(this.#lastError, nOut, out);
            return SQLITE_OK;
          },
        },
      },
    });
  }

  /** Runs a VFS method body; exceptions must never reach the C side, so they become `rc`. */
  #guard(rc: number, body: () => number): number {
    try {
      return body();
    } catch (e) {
      this.#lastError = e instanceof Error ? e.message : String(e);
      const code = (e as { code?: string }).code;
      if (rc === SQLITE_IOERR_WRITE && (code === "ENOSPC" || code === "EDQUOT")) return SQLITE_FULL;
      return rc;
    }
  }

  #file(pFile: Ptr): OpenFile {
    const file = this.#files.get(Number(pFile));
    if (file === undefined) throw new Error(`lattice-fs: unknown sqlite3_file ${pFile}`);
    return file;
  }

  #cstr(ptr: Ptr): string {
    return this.#sqlite3.wasm.cstrToJs(Number(ptr)) ?? "";
  }

  #open(zName: Ptr, pFile: Ptr, flags: number, pOutFlags: Ptr): number {
    const fs = this.#fs;
    const c = fs.constants;
    let path: string;
    if (zName) {
      path = this.#cstr(zName);
    } else {
      // A temporary file SQLite names itself by passing NULL: always deleted on close.
      const rand = crypto.getRandomValues(new Uint8Array(8));
      let tmp: string;
      try {
        tmp = this.#tmpdir(); // Deno asks for --allow-env here (TMPDIR)
      } catch {
        tmp = this.#lastDir;
      }
      path = this.#path.join(
        tmp,
        `lattice-sqlite-${Array.from(rand, (b) => b.toString(16)).join("")}`,
      );
      flags |= SQLITE_OPEN_DELETEONCLOSE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE;
    }
    const create = (flags & SQLITE_OPEN_CREATE) !== 0;
    let outFlags = flags;
    let mode = flags & SQLITE_OPEN_READWRITE ? c.O_RDWR : c.O_RDONLY;
    if (create) mode |= c.O_CREAT | (flags & SQLITE_OPEN_EXCLUSIVE ? c.O_EXCL : 0);
    const existed = create && fs.existsSync(path);
    let fd: number;
    try {
      fd = fs.openSync(path, mode, 0o644);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // Like the unix VFS: a read-write open of a read-only file falls back to read-only.
      if (!(flags & SQLITE_OPEN_READWRITE) || !(code === "EACCES" || code === "EPERM" || code === "EROFS")) {
        throw e;
      }
      fd = fs.openSync(path, c.O_RDONLY);
      outFlags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    }
    if (flags & SQLITE_OPEN_MAIN_DB) this.#lastDir = this.#path.dirname(path);
    const deleteOnClose = (flags & SQLITE_OPEN_DELETEONCLOSE) !== 0;
    if (deleteOnClose && !this.#windows) {
      // POSIX: the open descriptor keeps the data; nothing is left behind even after a crash.
      try {
        fs.unlinkSync(path);
      } catch (e) {
        fs.closeSync(fd);
        throw e;
      }
    }
    this.#files.set(Number(pFile), {
      path,
      fd,
      lock: LOCK_NONE,
      syncDir: create && !existed && !deleteOnClose,
      unlinkOnClose: deleteOnClose && this.#windows,
    });
    const file = new this.#sqlite3.capi.sqlite3_file(Number(pFile));
    file.$pMethods = this.#io!.pointer;
    file.dispose();
    if (pOutFlags) this.#sqlite3.wasm.poke32(Number(pOutFlags), outFlags);
    return SQLITE_OK;
  }

  #close(pFile: Ptr): number {
    const file = this.#files.get(Number(pFile));
    if (file === undefined) return SQLITE_OK;
    this.#unlock(file, LOCK_NONE);
    this.#files.delete(Number(pFile));
    this.#fs.closeSync(file.fd);
    if (file.unlinkOnClose) this.#fs.rmSync(file.path, { force: true });
    return SQLITE_OK;
  }

  #read(pFile: Ptr, pDest: Ptr, n: number, at: bigint | number): number {
    const fd = this.#file(pFile).fd;
    const heap = this.#sqlite3.wasm.heap8u();
    const dest = Number(pDest);
    const pos = Number(at);
    let got = 0;
    while (got < n) {
      const r = this.#fs.readSync(fd, heap, dest + got, n - got, pos + got);
      if (r <= 0) break;
      got += r;
    }
    if (got < n) {
      // SQLite requires the unread tail to be zeroed.
      heap.fill(0, dest + got, dest + n);
      return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
  }

  #write(pFile: Ptr, pSrc: Ptr, n: number, at: bigint | number): number {
    const fd = this.#file(pFile).fd;
    const heap = this.#sqlite3.wasm.heap8u();
    const src = Number(pSrc);
    const pos = Number(at);
    let done = 0;
    while (done < n) {
      const w = this.#fs.writeSync(fd, heap, src + done, n - done, pos + done);
      if (w <= 0) throw new Error("lattice-fs: write made no progress");
      done += w;
    }
    return SQLITE_OK;
  }

  #sync(pFile: Ptr, flags: number): number {
    const file = this.#file(pFile);
    if (flags & SQLITE_SYNC_DATAONLY) this.#fs.fdatasyncSync(file.fd);
    else this.#fs.fsyncSync(file.fd);
    if (file.syncDir) {
      this.#syncDirectoryOf(file.path);
      file.syncDir = false;
    }
    return SQLITE_OK;
  }

  /** Makes a created or removed directory entry durable (POSIX; a no-op where directories cannot be opened). */
  #syncDirectoryOf(path: string): void {
    if (this.#windows) return;
    let fd: number | undefined;
    try {
      fd = this.#fs.openSync(this.#path.dirname(path), "r");
      this.#fs.fsyncSync(fd);
    } catch {
      // Some file systems refuse fsync on directories; SQLite's unix VFS ignores that too.
    } finally {
      if (fd !== undefined) this.#fs.closeSync(fd);
    }
  }

  #lock(file: OpenFile, level: number): number {
    if (file.lock >= level) return SQLITE_OK;
    let locks = this.#locks.get(file.path);
    if (locks === undefined) {
      locks = { shared: new Set(), reserved: undefined, pending: undefined, exclusive: undefined };
      this.#locks.set(file.path, locks);
    }
    const other = (holder: OpenFile | undefined) => holder !== undefined && holder !== file;
    if (level === LOCK_SHARED) {
      if (other(locks.pending) || other(locks.exclusive)) return SQLITE_BUSY;
      locks.shared.add(file);
      file.lock = LOCK_SHARED;
      return SQLITE_OK;
    }
    if (other(locks.reserved) || other(locks.pending) || other(locks.exclusive)) return SQLITE_BUSY;
    locks.reserved = file;
    if (level === LOCK_RESERVED) {
      file.lock = LOCK_RESERVED;
      return SQLITE_OK;
    }
    // EXCLUSIVE (SQLite never asks for PENDING itself): PENDING keeps new readers out
    // until the other SHARED holders are gone.
    locks.pending = file;
    file.lock = LOCK_PENDING;
    for (const holder of locks.shared) if (holder !== file) return SQLITE_BUSY;
    locks.exclusive = file;
    file.lock = LOCK_EXCLUSIVE;
    return SQLITE_OK;
  }

  #unlock(file: OpenFile, level: number): number {
    if (file.lock <= level) return SQLITE_OK;
    const locks = this.#locks.get(file.path);
    if (locks !== undefined) {
      if (locks.exclusive === file) locks.exclusive = undefined;
      if (locks.pending === file) locks.pending = undefined;
      if (locks.reserved === file) locks.reserved = undefined;
      if (level === LOCK_NONE) locks.shared.delete(file);
      if (locks.shared.size === 0 && locks.reserved === undefined) this.#locks.delete(file.path);
    }
    file.lock = level;
    return SQLITE_OK;
  }

  #delete(zName: Ptr, syncDir: number): number {
    const path = this.#cstr(zName);
    try {
      this.#fs.unlinkSync(path);
    } catch (e) {
      this.#lastError = e instanceof Error ? e.message : String(e);
      return (e as { code?: string }).code === "ENOENT" ? SQLITE_IOERR_DELETE_NOENT : SQLITE_IOERR_DELETE;
    }
    if (syncDir) this.#syncDirectoryOf(path);
    return SQLITE_OK;
  }

  #access(path: string, flags: number): boolean {
    const fs = this.#fs;
    if (flags === SQLITE_ACCESS_READWRITE || flags === SQLITE_ACCESS_READ) {
      try {
        fs.accessSync(
          path,
          flags === SQLITE_ACCESS_READ ? fs.constants.R_OK : fs.constants.R_OK | fs.constants.W_OK,
        );
        return true;
      } catch {
        return false;
      }
    }
    // SQLITE_ACCESS_EXISTS. Like the unix VFS, an empty regular file counts as absent
    // (so a zero-length journal is never taken for a hot one).
    const st = fs.statSync(path, { throwIfNoEntry: false });
    return st !== undefined && (!st.isFile() || st.size > 0);
  }

  #fullPathname(zName: Ptr, nOut: number, pOut: Ptr): number {
    const full = this.#path.resolve(this.#cstr(zName));
    return this.#writeCString(full, nOut, pOut) ? SQLITE_OK : SQLITE_CANTOPEN;
  }

  /** Writes `s` NUL-terminated into `nOut` bytes at `pOut`; truncates and returns false when it does not fit. */
  #writeCString(s: string, nOut: number, pOut: Ptr): boolean {
    if (nOut <= 0) return false;
    const bytes = new TextEncoder().encode(s);
    const fits = bytes.length < nOut;
    const n = fits ? bytes.length : nOut - 1;
    const heap = this.#sqlite3.wasm.heap8u();
    heap.set(bytes.subarray(0, n), Number(pOut));
    heap[Number(pOut) + n] = 0;
    return fits;
  }

  #randomness(n: number, pOut: Ptr): number {
    const heap = this.#sqlite3.wasm.heap8u();
    const start = Number(pOut);
    for (let i = 0; i < n; i += 65536) {
      crypto.getRandomValues(heap.subarray(start + i, start + Math.min(n, i + 65536)));
    }
    return n;
  }
}

// ---------------------------------------------------------------------------
// Loading, once per process.

let loading: Promise<Sqlite3> | undefined;

function loadSqlite(): Promise<Sqlite3> {
  loading ??= (async () => {
    const [{ default: init }, fs, path, os] = await Promise.all([
      import("@sqlite.org/sqlite-wasm"),
      import("node:fs"),
      import("node:path"),
      import("node:os"),
    ]);
    const sqlite3 = (await init()) as unknown as Sqlite3;
    if (!sqlite3.capi.sqlite3_vfs_find(WASM_VFS_NAME)) {
      const windows = (globalThis as { process?: { platform?: string } }).process?.platform === "win32";
      new FsVfs(sqlite3, fs, path, () => os.tmpdir(), windows).install(WASM_VFS_NAME);
    }
    return sqlite3;
  })();
  // A failed load (e.g. missing read permission) may be retried.
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

// ---------------------------------------------------------------------------
// The driver.

/** An error raised by SQLite, with its (extended) result code. */
export class WasmSqliteError extends Error {
  /** e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
  readonly code: string;
  /** The extended result code, e.g. 2067. */
  readonly errcode: number;

  /** An error with SQLite's message and its extended result code (number and name). */
  constructor(message: string, errcode: number, code: string) {
    super(message);
    this.name = "WasmSqliteError";
    this.errcode = errcode;
    this.code = code;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { ignoreBOM: true }); // a leading U+FEFF is part of the text

/** One open connection, shared by the driver and its statements. */
class Connection {
  readonly sqlite3: Sqlite3;
  readonly x: Exports;
  /** `sqlite3*`; 0 once closed. */
  db: Ptr = 0;
  /** Statements not finalized yet (`sqlite3_stmt*`). */
  readonly live = new Set<Ptr>();

  constructor(sqlite3: Sqlite3) {
    this.sqlite3 = sqlite3;
    this.x = sqlite3.wasm.exports;
  }

  /** Copies `s` NUL-terminated into memory from sqlite3_malloc: [pointer, byte length without the NUL]. */
  cstring(s: string, extra = 0): [Ptr, number] {
    // Short strings: encode straight into a worst-case (3 bytes per UTF-16 unit) buffer;
    // long ones: encode first, to allocate no more than needed.
    const bytes = s.length > 4096 ? encoder.encode(s) : undefined;
    const max = (bytes ? bytes.length : s.length * 3) + 1;
    const p = this.x.sqlite3_malloc(max + extra);
    if (!p) throw new WasmSqliteError("out of memory", SQLITE_NOMEM, "SQLITE_NOMEM");
    const heap = this.sqlite3.wasm.heap8u();
    let written: number;
    if (bytes) {
      heap.set(bytes, p);
      written = bytes.length;
    } else {
      written = encoder.encodeInto(s, heap.subarray(p, p + max - 1)).written;
    }
    heap[p + written] = 0;
    return [p, written];
  }

  /** A NUL-terminated UTF-8 string at `p`. */
  text(p: Ptr): string {
    if (!p) return "";
    const heap = this.sqlite3.wasm.heap8u();
    const end = heap.indexOf(0, p);
    return decoder.decode(heap.subarray(p, end));
  }

  /** Throws the connection's current error (for result code `rc`). */
  fail(rc: number): never {
    const errcode = (this.db && this.x.sqlite3_extended_errcode(this.db)) || rc;
    const message = this.db ? this.text(this.x.sqlite3_errmsg(this.db)) : `result code ${rc}`;
    throw new WasmSqliteError(
      message,
      errcode,
      this.sqlite3.capi.sqlite3_js_rc_str(errcode) ?? `SQLITE_${rc}`,
    );
  }

  exec(sql: string): void {
    const [p] = this.cstring(sql);
    try {
      const rc = this.x.sqlite3_exec(this.db, p, 0, 0, 0);
      if (rc !== SQLITE_OK) this.fail(rc);
    } finally {
      this.x.sqlite3_free(p);
    }
  }

  prepare(sql: string): Ptr {
    // The SQL, then 8 bytes (4-aligned) for the sqlite3_stmt* out-pointer.
    const [p, n] = this.cstring(sql, 8);
    const out = (p + n + 4) & ~3;
    try {
      const rc = this.x.sqlite3_prepare_v2(this.db, p, n, out, 0);
      if (rc !== SQLITE_OK) this.fail(rc);
      const heap = this.sqlite3.wasm.heap8u();
      const stmt = (heap[out] | (heap[out + 1] << 8) | (heap[out + 2] << 16) | (heap[out + 3] << 24)) >>> 0;
      if (!stmt) throw new RangeError("sqlite-wasm: no SQL statement to prepare");
      this.live.add(stmt);
      return stmt;
    } finally {
      this.x.sqlite3_free(p);
    }
  }

  finalize(stmt: Ptr): void {
    if (this.live.delete(stmt)) this.x.sqlite3_finalize(stmt);
  }

  close(): void {
    if (!this.db) return;
    for (const stmt of this.live) this.x.sqlite3_finalize(stmt);
    this.live.clear();
    const db = this.db;
    this.db = 0;
    this.x.sqlite3_close_v2(db);
  }
}

/** Finalizes statements dropped while their database stays open. */
const dropped = new FinalizationRegistry<{ conn: Connection; stmt: Ptr }>(({ conn, stmt }) => {
  if (conn.db) conn.finalize(stmt);
});

/** A statement of a {@link WasmSqliteDriver}. */
export interface WasmSqlStatement extends SqlStatement {
  /** Finalizes the statement now (idempotent); it cannot be used afterwards. */
  finalize(): void;
}

class WasmStatement implements WasmSqlStatement {
  readonly #conn: Connection;
  readonly #stmt: Ptr;
  readonly #params: number;
  #names: string[] = [];

  constructor(conn: Connection, stmt: Ptr) {
    this.#conn = conn;
    this.#stmt = stmt;
    this.#params = conn.x.sqlite3_bind_parameter_count(stmt);
  }

  run(...params: SqlValue[]): void {
    const p = this.#start(params);
    try {
      while (this.#step(p)) { /* drain rows, e.g. of INSERT ... RETURNING */ }
    } finally {
      this.#conn.x.sqlite3_reset(p);
    }
  }

  get(...params: SqlValue[]): Record<string, SqlValue> | undefined {
    const p = this.#start(params);
    try {
      return this.#step(p) ? this.#row(p) : undefined;
    } finally {
      this.#conn.x.sqlite3_reset(p);
    }
  }

  all(...params: SqlValue[]): Record<string, SqlValue>[] {
    const p = this.#start(params);
    const rows: Record<string, SqlValue>[] = [];
    try {
      while (this.#step(p)) rows.push(this.#row(p));
    } finally {
      this.#conn.x.sqlite3_reset(p);
    }
    return rows;
  }

  /** Finalizes the statement now (idempotent); it cannot be used afterwards. */
  finalize(): void {
    this.#conn.finalize(this.#stmt);
    dropped.unregister(this);
  }

  #start(params: SqlValue[]): Ptr {
    const conn = this.#conn;
    const p = this.#stmt;
    if (!conn.live.has(p)) {
      throw new Error("sqlite-wasm: the statement is finalized (or its database closed)");
    }
    const x = conn.x;
    if (params.length > this.#params) {
      throw new RangeError(
        `sqlite-wasm: ${params.length} parameters given, the statement takes ${this.#params}`,
      );
    }
    // Parameters left out are NULL, as in the native drivers, not the previous call's values.
    if (params.length < this.#params) x.sqlite3_clear_bindings(p);
    for (let i = 0; i < params.length; i++) {
      const v = params[i] as unknown;
      const at = i + 1;
      let rc: number;
      if (v === null || v === undefined) rc = x.sqlite3_bind_null(p, at);
      else if (typeof v === "number") {
        // Safe integers bind as INTEGER, everything else (fractions, ±1e300, NaN) as REAL.
        if ((v | 0) === v) rc = x.sqlite3_bind_int(p, at, v);
        else if (Number.isSafeInteger(v)) rc = x.sqlite3_bind_int64(p, at, BigInt(v));
        else rc = x.sqlite3_bind_double(p, at, v);
      } else if (typeof v === "string") {
        // Copied into WASM memory here; SQLite frees it (SQLITE_WASM_DEALLOC).
        const [ptr, n] = conn.cstring(v);
        rc = x.sqlite3_bind_text(p, at, ptr, n, conn.sqlite3.capi.SQLITE_WASM_DEALLOC);
      } else if (v instanceof Uint8Array) {
        // At least one byte: a NULL pointer would bind SQL NULL instead of an empty blob.
        const ptr = x.sqlite3_malloc(v.length || 1);
        if (!ptr) conn.fail(SQLITE_NOMEM);
        conn.sqlite3.wasm.heap8u().set(v, ptr);
        rc = x.sqlite3_bind_blob(p, at, ptr, v.length, conn.sqlite3.capi.SQLITE_WASM_DEALLOC);
      } else if (typeof v === "bigint") rc = x.sqlite3_bind_int64(p, at, v);
      else if (typeof v === "boolean") rc = x.sqlite3_bind_int(p, at, v ? 1 : 0);
      else throw new TypeError(`sqlite-wasm: cannot bind a value of type ${typeof v} (parameter ${at})`);
      if (rc !== SQLITE_OK) conn.fail(rc);
    }
    return p;
  }

  #step(p: Ptr): boolean {
    const rc = this.#conn.x.sqlite3_step(p);
    if (rc === SQLITE_ROW) return true;
    if (rc === SQLITE_DONE) return false;
    return this.#conn.fail(rc);
  }

  #row(p: Ptr): Record<string, SqlValue> {
    const conn = this.#conn;
    const x = conn.x;
    const n = x.sqlite3_column_count(p);
    // Names can change when SQLite re-prepares after a schema change (`SELECT *`).
    if (this.#names.length !== n) {
      this.#names = Array.from({ length: n }, (_, i) => conn.text(x.sqlite3_column_name(p, i)));
    }
    const row: Record<string, SqlValue> = {};
    for (let i = 0; i < n; i++) {
      let value: SqlValue;
      switch (x.sqlite3_column_type(p, i)) {
        case SQLITE_INTEGER: {
          value = x.sqlite3_column_double(p, i);
          if (!Number.isSafeInteger(value)) {
            const big = x.sqlite3_column_int64(p, i);
            value = Number(big);
            if (!Number.isSafeInteger(value)) {
              throw new RangeError(`sqlite-wasm: integer ${big} in column ${this.#names[i]} exceeds 2^53`);
            }
          }
          break;
        }
        case SQLITE_FLOAT:
          value = x.sqlite3_column_double(p, i);
          break;
        case SQLITE_TEXT: {
          const at = x.sqlite3_column_text(p, i);
          const size = x.sqlite3_column_bytes(p, i);
          value = size === 0 ? "" : decoder.decode(conn.sqlite3.wasm.heap8u().subarray(at, at + size));
          break;
        }
        case SQLITE_BLOB: {
          const at = x.sqlite3_column_blob(p, i);
          const size = x.sqlite3_column_bytes(p, i);
          value = size === 0 ? new Uint8Array(0) : conn.sqlite3.wasm.heap8u().slice(at, at + size);
          break;
        }
        default:
          value = null;
      }
      row[this.#names[i]] = value;
    }
    return row;
  }
}

/** An {@link SqlDriver} over sqlite-wasm and the `lattice-fs` VFS. */
export class WasmSqliteDriver implements SqlDriver {
  readonly name = "sqlite-wasm";
  /** `wal` (normally) or `truncate` (when SQLite refused WAL). */
  readonly journalMode: string;
  /** The SQLite library version, e.g. `3.54.1`. */
  readonly version: string;
  readonly #conn: Connection;

  /** @internal Use {@link openWasmSqlite}. */
  constructor(conn: Connection, journalMode: string) {
    this.#conn = conn;
    this.journalMode = journalMode;
    this.version = conn.sqlite3.version.libVersion;
  }

  /** Runs one or more SQL statements (no parameters, no results). */
  exec(sql: string): void {
    this.#open().exec(sql);
  }

  /**
   * Prepares one statement. Statements are finalized when the driver closes,
   * or earlier once garbage-collected, or by their `finalize()`.
   */
  prepare(sql: string): WasmSqlStatement {
    const conn = this.#open();
    const stmt = conn.prepare(sql);
    const statement = new WasmStatement(conn, stmt);
    dropped.register(statement, { conn, stmt }, statement);
    return statement;
  }

  /** Finalizes every statement and closes the database (a WAL checkpoint runs first). Idempotent. */
  close(): void {
    this.#conn.close();
  }

  #open(): Connection {
    if (!this.#conn.db) throw new Error("sqlite-wasm: the database is closed");
    return this.#conn;
  }
}

/** Runs a one-row statement (a PRAGMA) and returns its first column, lower-cased. */
function pragma(conn: Connection, sql: string): string {
  const statement = new WasmStatement(conn, conn.prepare(sql));
  try {
    const row = statement.get();
    return row === undefined ? "" : String(Object.values(row)[0]).toLowerCase();
  } finally {
    statement.finalize();
  }
}

/**
 * Opens (creating when missing) the SQLite database `file` with sqlite-wasm on
 * the durable `lattice-fs` VFS: exclusive locking, WAL (else TRUNCATE)
 * journal, `synchronous=FULL`. Rejects when the file cannot be opened or
 * another connection of this process has it open.
 */
export async function openWasmSqlite(file: string): Promise<WasmSqliteDriver> {
  if (typeof file !== "string" || file === "") throw new TypeError("file must be a non-empty path");
  const sqlite3 = await loadSqlite();
  const conn = new Connection(sqlite3);
  const x = conn.x;
  // File name, VFS name and the sqlite3** out-pointer in one allocation.
  const [pName, nName] = conn.cstring(file, WASM_VFS_NAME.length + 1 + 8);
  const pVfs = pName + nName + 1;
  sqlite3.wasm.heap8u().set(encoder.encode(WASM_VFS_NAME + "\0"), pVfs);
  const out = (pVfs + WASM_VFS_NAME.length + 1 + 3) & ~3;
  let rc: number;
  try {
    rc = x.sqlite3_open_v2(pName, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, pVfs);
    const heap = sqlite3.wasm.heap8u();
    // Even a failed open usually returns a handle, holding the error message.
    conn.db = (heap[out] | (heap[out + 1] << 8) | (heap[out + 2] << 16) | (heap[out + 3] << 24)) >>> 0;
  } finally {
    x.sqlite3_free(pName);
  }
  try {
    if (rc !== SQLITE_OK) conn.fail(rc);
    x.sqlite3_extended_result_codes(conn.db, 1);
    // Exclusive locking first: it is what lets WAL run without shared memory, and an
    // existing WAL database can only be read once it is set.
    pragma(conn, "PRAGMA locking_mode=EXCLUSIVE");
    let mode = pragma(conn, "PRAGMA journal_mode=WAL");
    if (mode !== "wal") mode = pragma(conn, "PRAGMA journal_mode=TRUNCATE");
    conn.exec("PRAGMA synchronous=FULL");
    return new WasmSqliteDriver(conn, mode);
  } catch (e) {
    conn.close();
    throw e;
  }
}
