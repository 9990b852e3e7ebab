/**
 * The bytes of `sqlite3.wasm` for the OPFS worker (storage/opfs_worker.ts):
 * `undefined` in the source, so that sqlite-wasm fetches the file from beside
 * its script. The worker bundle (scripts/opfs-worker.mjs) replaces this
 * module with one holding the bytes, so the worker is one self-contained
 * file that needs no second URL.
 *
 * @module
 */

/** `sqlite3.wasm`, when the bundle embedded it. */
export const sqliteWasm: Uint8Array | undefined = undefined;
