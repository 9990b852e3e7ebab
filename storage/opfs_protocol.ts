/**
 * The messages between a page and its OPFS worker (storage/opfs.ts and
 * storage/opfs_worker.ts). A call is `{ id, method, args }`; its answer
 * `{ id, value }` or `{ id, error: { name, message } }`. Structured clone
 * carries the records (their `Uint8Array`s included) both ways. The first
 * call is always `open`, the last `close`; the worker answers calls one at a
 * time, in the order they came.
 *
 * @module
 */
import type { SqliteInfo } from "./sqlite_connect.ts";

/** The Store methods the worker answers, and `open` (args: the database name, the durability). */
export type OpfsMethod =
  | "open"
  | "readNode"
  | "readNodeData"
  | "readFields"
  | "commit"
  | "list"
  | "changes"
  | "lastSeq"
  | "countLive"
  | "deferred"
  | "deferredDue"
  | "deferredCount"
  | "dropDeferredAfter"
  | "getMeta"
  | "close";

/** The answer to `open`. */
export interface OpfsOpened {
  readonly sqliteVersion: string;
  readonly info: SqliteInfo;
}

/** A call from the page. */
export interface OpfsCall {
  readonly id: number;
  readonly method: OpfsMethod;
  readonly args: readonly unknown[];
}

/** An error as it crosses: its name (for `.name` matching) and message. */
export interface OpfsError {
  readonly name: string;
  readonly message: string;
}

/** The worker's answer to call `id`. */
export type OpfsAnswer =
  | { readonly id: number; readonly value: unknown; readonly error?: undefined }
  | { readonly id: number; readonly error: OpfsError };

/** `e` as it crosses to the page. */
export function toOpfsError(e: unknown): OpfsError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: "Error", message: String(e) };
}

/** The error the page rethrows: the same class for the built-in names, else an Error with the name. */
export function fromOpfsError(e: OpfsError): Error {
  const Ctor = e.name === "TypeError"
    ? TypeError
    : e.name === "RangeError"
    ? RangeError
    : e.name === "SyntaxError"
    ? SyntaxError
    : Error;
  const error = new Ctor(e.message);
  if (error.name !== e.name) error.name = e.name;
  return error;
}
