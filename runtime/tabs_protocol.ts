/**
 * The messages between the tabs that share one database (runtime/tabs.ts):
 * the owner tab (holder of the Web Lock `lattice:<path>`, which runs the real
 * Database) and the others, over the BroadcastChannel `lattice:<path>`. Every
 * tab hears every message, so each one names its sender or its addressee.
 *
 * - `call` (client → owner) and `ans` (owner → that client): a Database call
 *   and its answer (a value, or an error as `{ name, message }`).
 * - `watch`/`unwatch` (client → owner) and `ev` (owner → that client): a watch
 *   the owner keeps for a client, and each change it sees.
 * - `owner`: a tab has just become the owner, its database at commit `seq`
 *   when it opened; clients send it again every watch (with `after: seq`: the
 *   owner replays what changed since, so the changes it made before the watch
 *   came are not missed) and every call not answered yet (a call may so run
 *   twice: puts and deletes are idempotent, the first answer wins).
 * - `bye`: a client leaves; the owner drops its watches.
 *
 * Also {@link runCall}, how a call runs on the owner's Database (the owner
 * runs its own tab's calls the same way).
 *
 * @module
 */
import type { Change, Database, WatchTarget } from "../core/database.ts";
import { storeOf } from "../core/database.ts";

/** The Database calls that cross between tabs. */
export type TabMethod = "put" | "get" | "delete" | "list" | "query" | "search" | "countNodes" | "status";

/** An error as it crosses. */
export interface TabError {
  readonly name: string;
  readonly message: string;
}

/** A message on the channel. */
export type TabMessage =
  | {
    readonly k: "call";
    readonly from: string;
    readonly id: number;
    readonly m: TabMethod;
    readonly a: unknown[];
  }
  | {
    readonly k: "ans";
    readonly to: string;
    readonly id: number;
    readonly v?: unknown;
    readonly e?: TabError;
  }
  | {
    readonly k: "watch";
    readonly from: string;
    readonly w: number;
    readonly target: WatchTarget;
    /** Sent again after a take-over: the owner first replays what changed after this commit seq. */
    readonly after?: number;
  }
  | { readonly k: "unwatch"; readonly from: string; readonly w: number }
  | { readonly k: "ev"; readonly to: string; readonly w: number; readonly c: Change }
  | { readonly k: "owner"; readonly from: string; readonly seq: number }
  | { readonly k: "bye"; readonly from: string };

/**
 * What the owner tells of the shared database (`SharedDatabase.status`, with `owner` set per tab).
 *
 * @example
 * ```ts
 * import { openShared, type SharedStatus } from "../mod.ts";
 * const db = await openShared({ storage: "memory" });
 * const s: SharedStatus = await db.status();
 * console.log(s.owner, s.storage, s.nodes, s.persisted); // true memory 0 undefined
 * await db.close();
 * ```
 */
export interface SharedStatus {
  /** Whether this tab runs the database (holds the lock); other tabs forward to it. */
  readonly owner: boolean;
  /** The storage engine (`Database.storage`). */
  readonly storage: string;
  /** Nodes with a live field (`Database.countNodes`). */
  readonly nodes: number;
  /**
   * The answer of `navigator.storage.persist()` when an OPFS database opened
   * (`false`: the browser may evict it under storage pressure); `undefined`
   * for other engines, or where the browser cannot tell.
   */
  readonly persisted: boolean | undefined;
  /**
   * Why the storage is memory although a durable one was asked for
   * (`storage: "auto"` with a path, in a browser without OPFS or Workers:
   * nothing is kept); absent otherwise.
   */
  readonly fallback?: string;
}

/** Runs call `m` on `db`; `list` answers an array (it crosses whole). */
export async function runCall(db: Database, m: TabMethod, a: readonly unknown[]): Promise<unknown> {
  switch (m) {
    case "put":
      return await db.put(a[0] as string, a[1] as Record<string, unknown>);
    case "get":
      return await db.get(a[0] as string);
    case "delete":
      return await db.delete(a[0] as string, a[1] as string | undefined);
    case "list": {
      const out = [];
      for await (const e of db.list(a[0] as Parameters<Database["list"]>[0])) out.push(e);
      return out;
    }
    case "query":
      return await db.query(a[0] as Parameters<Database["query"]>[0]);
    case "search":
      return await db.search(a[0] as Parameters<Database["search"]>[0]);
    case "countNodes":
      return await db.countNodes();
    case "status": {
      const store = storeOf(db) as { persisted?: boolean; fallback?: string };
      const status: SharedStatus = {
        owner: true,
        storage: db.storage,
        nodes: await db.countNodes(),
        persisted: store.persisted,
      };
      return store.fallback === undefined ? status : { ...status, fallback: store.fallback };
    }
    default:
      throw new TypeError(`Unknown call ${JSON.stringify(m)}`);
  }
}

/** `e` as it crosses. */
export function toTabError(e: unknown): TabError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: "Error", message: String(e) };
}

/** The error rethrown in the calling tab: the built-in class for its name, else an Error with the name. */
export function fromTabError(e: TabError): Error {
  const Ctor = e.name === "TypeError" ? TypeError : e.name === "RangeError" ? RangeError : Error;
  const error = new Ctor(e.message);
  if (error.name !== e.name) error.name = e.name;
  return error;
}
