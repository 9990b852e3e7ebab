/**
 * The `lattice-fs` VFS of the WASM driver (storage/sqlite_wasm.ts): SQLite's
 * file I/O over the synchronous `node:fs` calls that Deno, Bun and Node all
 * provide. sqlite-wasm's own VFSes on server runtimes keep everything in
 * memory; this one writes real files, syncs them (and a new file's
 * directory), and keeps SQLite's five lock levels in process memory, per
 * path (other processes are kept out by Lattice's own `LOCK` file). It has
 * no shared memory (`xShm*`): SQLite then runs WAL only in exclusive locking
 * mode, which the driver sets.
 *
 * @module
 */
import { systemWorld } from "../core/world.ts";
import {
  type Fs,
  type IoMethodsStruct,
  LOCK_EXCLUSIVE,
  LOCK_NONE,
  LOCK_PENDING,
  LOCK_RESERVED,
  LOCK_SHARED,
  MAX_PATHNAME,
  type PathModule,
  type Ptr,
  SECTOR_SIZE,
  type Sqlite3,
  SQLITE_ACCESS_READ,
  SQLITE_ACCESS_READWRITE,
  SQLITE_BUSY,
  SQLITE_CANTOPEN,
  SQLITE_FULL,
  SQLITE_IOCAP_POWERSAFE_OVERWRITE,
  SQLITE_IOERR_CLOSE,
  SQLITE_IOERR_DELETE,
  SQLITE_IOERR_DELETE_NOENT,
  SQLITE_IOERR_FSTAT,
  SQLITE_IOERR_FSYNC,
  SQLITE_IOERR_READ,
  SQLITE_IOERR_SHORT_READ,
  SQLITE_IOERR_TRUNCATE,
  SQLITE_IOERR_WRITE,
  SQLITE_NOTFOUND,
  SQLITE_OK,
  SQLITE_OPEN_CREATE,
  SQLITE_OPEN_DELETEONCLOSE,
  SQLITE_OPEN_EXCLUSIVE,
  SQLITE_OPEN_MAIN_DB,
  SQLITE_OPEN_READONLY,
  SQLITE_OPEN_READWRITE,
  SQLITE_SYNC_DATAONLY,
  UNIX_EPOCH_JD_MS,
} from "./sqlite_wasm_abi.ts";

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
export class FsVfs {
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
            this.#sqlite3.wasm.poke(Number(out), 2440587.5 + systemWorld.now() / 86400000, "double");
            return SQLITE_OK;
          },
          xCurrentTimeInt64: (_v: Ptr, out: Ptr) => {
            this.#sqlite3.wasm.poke64(Number(out), BigInt(UNIX_EPOCH_JD_MS + systemWorld.now()));
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
      const rand = systemWorld.randomBytes(new Uint8Array(8));
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
      systemWorld.randomBytes(heap.subarray(start + i, start + Math.min(n, i + 65536)));
    }
    return n;
  }
}

// ---------------------------------------------------------------------------
