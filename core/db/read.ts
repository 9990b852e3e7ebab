/**
 * Reads of nodes: one node as data, pages of nodes in soul order, the count
 * of live nodes. A node is read as data straight from the store when the
 * store can decode it so (`Store.readNodeData`), else from its records.
 *
 * @module
 */
import type { NodeData } from "../value.ts";
import { nodeData } from "../value_encoding.ts";
import type { Store } from "../store.ts";

/**
 * A node in list and query results.
 *
 * @example
 * ```ts
 * import { type Entry, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { name: "Alice" });
 * const entries: Entry[] = [];
 * for await (const entry of db.list()) entries.push(entry);
 * console.log(entries); // [{ soul: "alice", data: { name: "Alice" } }]
 * await db.close();
 * ```
 */
export interface Entry {
  readonly soul: string;
  readonly data: NodeData;
}

/**
 * Options of `Database.list`.
 *
 * @example
 * ```ts
 * import { type ListOptions, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * for (const soul of ["post/1", "user/a", "user/b", "user/c"]) await db.put(soul, { n: 1 });
 * const page: ListOptions = { prefix: "user/", cursor: "user/a", limit: 1 };
 * for await (const { soul } of db.list(page)) console.log(soul); // user/b
 * await db.close();
 * ```
 */
export interface ListOptions {
  readonly prefix?: string;
  readonly limit?: number;
  /** Start after this soul (the last soul of the previous page). */
  readonly cursor?: string;
}

/** Nodes read per page of the store's list. */
const LIST_PAGE = 256;

/**
 * Checks `list` options (shared with the HTTP client, so both refuse the
 * same input alike) and fills in the defaults: no prefix, no cursor, no limit.
 */
export function checkListOptions(
  options: ListOptions,
): { prefix: string; cursor: string | undefined; limit: number } {
  const { prefix = "", cursor } = options;
  const limit = options.limit ?? Infinity;
  if (typeof prefix !== "string") throw new TypeError("list prefix must be a string");
  if (cursor !== undefined && typeof cursor !== "string") throw new TypeError("list cursor must be a soul");
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`list limit must be a non-negative integer, got ${limit}`);
  }
  return { prefix, cursor, limit };
}

/** The live fields of `soul` as data, straight from the store when it can decode them so. */
export function readNodeData(store: Store, soul: string): Promise<NodeData | undefined> {
  return store.readNodeData !== undefined ? store.readNodeData(soul) : store.readNode(soul).then(nodeData);
}

/**
 * Live nodes in soul order from `cursor` on, at most `limit`, read page by
 * page; `check` throws once the database is closed (called before each page).
 */
export async function* listNodes(
  store: Store,
  prefix: string,
  cursor: string | undefined,
  limit: number,
  check: () => void,
): AsyncGenerator<Entry> {
  let after = cursor, given = 0;
  while (given < limit) {
    check();
    const page = await store.list({ prefix, after, limit: Math.min(LIST_PAGE, limit - given) });
    if (page.length === 0) return;
    for (const soul of page) {
      const data = await readNodeData(store, soul);
      if (data && given < limit) {
        given++;
        yield { soul, data };
      }
    }
    after = page[page.length - 1];
  }
}

/** How many nodes have a live field: the store's count where it keeps one, else counted by listing. */
export async function countNodes(store: Store, check: () => void): Promise<number> {
  if (store.countLive !== undefined) return await store.countLive();
  let n = 0;
  for await (const _ of listNodes(store, "", undefined, Infinity, check)) n++;
  return n;
}
