/**
 * The slice of the sqlite-wasm API the WASM driver and its VFS use, typed
 * here: the package's own declarations type i64 arguments as `number` (they
 * arrive as `bigint`), name some struct members without their `$` prefix,
 * and type callback results as literal unions. Also SQLite's C ABI
 * constants (sqlite3.h), stable across versions.
 *
 * @module
 */
export type Ptr = number;
export type Callback = (...args: never[]) => number | void;

export interface WasmStruct {
  readonly pointer: Ptr;
  dispose(): void;
}

export interface VfsStruct extends WasmStruct {
  $iVersion: number;
  $szOsFile: number;
  $mxPathname: number;
}

export interface IoMethodsStruct extends WasmStruct {
  $iVersion: number;
}

export interface FileStruct extends WasmStruct {
  $pMethods: Ptr;
}

/** The raw C exports of the WASM module used on hot paths (xWrap-free). */
export interface Exports {
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

export interface Sqlite3 {
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

export type Fs = typeof import("node:fs");
export type PathModule = typeof import("node:path");

// SQLite's C ABI constants (sqlite3.h); stable across versions.
export const SQLITE_OK = 0;
export const SQLITE_BUSY = 5;
export const SQLITE_NOTFOUND = 12;
export const SQLITE_FULL = 13;
export const SQLITE_CANTOPEN = 14;
export const SQLITE_ROW = 100;
export const SQLITE_DONE = 101;
export const SQLITE_NOMEM = 7;
export const SQLITE_IOERR_READ = 266;
export const SQLITE_IOERR_SHORT_READ = 522;
export const SQLITE_IOERR_WRITE = 778;
export const SQLITE_IOERR_FSYNC = 1034;
export const SQLITE_IOERR_TRUNCATE = 1546;
export const SQLITE_IOERR_FSTAT = 1802;
export const SQLITE_IOERR_DELETE = 2570;
export const SQLITE_IOERR_CLOSE = 4106;
export const SQLITE_IOERR_DELETE_NOENT = 5898;

export const SQLITE_OPEN_READONLY = 0x1;
export const SQLITE_OPEN_READWRITE = 0x2;
export const SQLITE_OPEN_CREATE = 0x4;
export const SQLITE_OPEN_DELETEONCLOSE = 0x8;
export const SQLITE_OPEN_EXCLUSIVE = 0x10;
export const SQLITE_OPEN_MAIN_DB = 0x100;

export const SQLITE_ACCESS_READWRITE = 1;
export const SQLITE_ACCESS_READ = 2;

export const SQLITE_SYNC_DATAONLY = 0x10;
export const SQLITE_IOCAP_POWERSAFE_OVERWRITE = 0x1000;

export const LOCK_NONE = 0;
export const LOCK_SHARED = 1;
export const LOCK_RESERVED = 2;
export const LOCK_PENDING = 3;
export const LOCK_EXCLUSIVE = 4;

export const SQLITE_INTEGER = 1;
export const SQLITE_FLOAT = 2;
export const SQLITE_TEXT = 3;
export const SQLITE_BLOB = 4;

/** Julian day number of the Unix epoch, in ms (for `xCurrentTimeInt64`). */
export const UNIX_EPOCH_JD_MS = 210866760000000;
export const SECTOR_SIZE = 4096;

export const MAX_PATHNAME = 1024;
