/**
 * Graph queries: start at some souls, follow links field by field along a
 * path, keep the nodes reached whose fields meet the `where` conditions.
 * Every query runs under a budget (core/query_budget.ts) — path length,
 * frontier, nodes read, time — and yields to the event loop every few ms, so
 * no query from a client can stall the replica.
 *
 * @module
 */
import { checkField, checkSoul, isLink, type NodeData, type Value } from "../value.ts";
import type { Store } from "../store.ts";
import type { World } from "../world.ts";
import { type QueryBudget, QueryMeter } from "../query_budget.ts";
import { type Entry, readNodeData } from "./read.ts";

/**
 * A `where` condition on one field.
 *
 * @example
 * ```ts
 * import { type Condition, open } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { age: 30 });
 * await db.put("bob", { age: 12 });
 * const adult: Condition = { gt: 17 };
 * const adults = await db.query({ from: ["alice", "bob"], where: { age: adult } });
 * console.log(adults); // [{ soul: "alice", data: { age: 30 } }]
 * await db.close();
 * ```
 */
export interface Condition {
  eq?: Value;
  lt?: number | string;
  gt?: number | string;
  prefix?: string;
}

/**
 * A graph query: start at `from`, follow `path`, keep nodes matching `where`.
 *
 * @example
 * ```ts
 * import { open, type Query } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { friend: { "#": "bob" } });
 * await db.put("bob", { name: "Bob", age: 40 });
 * const friendsOver30: Query = { from: "alice", path: ["friend"], where: { age: { gt: 30 } }, limit: 10 };
 * console.log(await db.query(friendsOver30)); // [{ soul: "bob", data: { age: 40, name: "Bob" } }]
 * await db.close();
 * ```
 */
export interface Query {
  /** Start soul(s). */
  readonly from: string | readonly string[];
  /** Fields to follow in turn; `"*"` follows every link of a node. */
  readonly path?: readonly string[];
  /** Conditions on the fields of the nodes reached (all must hold). A bare value means `{ eq: value }`. */
  readonly where?: Readonly<Record<string, Condition | Value>>;
  /** At most this many results (default 1000). */
  readonly limit?: number;
}

const DEFAULT_LIMIT = 1000;
const CONDITION_KEYS = new Set(["eq", "lt", "gt", "prefix"]);

/**
 * Runs query `q` on `store` under `budget`, on `world`'s clock; `check`
 * throws once the database is closed (called after each pause).
 */
export async function runQuery(
  q: Query,
  store: Store,
  budget: QueryBudget,
  world: World,
  check: () => void,
): Promise<Entry[]> {
  if (typeof q !== "object" || q === null) throw new TypeError("A query must be an object");
  const { from, path } = checkStart(q, "query");
  const meter = new QueryMeter(budget, path.length, world); // before looking at each step
  const where = compileWhere(q.where);
  const conditions = q.where === undefined ? 0 : Object.keys(q.where).length;
  const limit = q.limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`query.limit must be a non-negative integer`);
  }
  const level = await reach(from, path, store, meter, check);
  const out: Entry[] = [];
  for (const soul of level) {
    if (out.length >= limit) break;
    meter.visit();
    const data = await readNodeData(store, soul);
    if (data && where(data)) out.push({ soul, data });
    if (meter.spend(conditions)) {
      await meter.pause();
      check();
    }
  }
  return out;
}

/**
 * The start of a graph walk (`from` and `path` of a query or a search),
 * its shape checked (`TypeError` naming `what`); the souls and steps
 * themselves are checked by {@link reach}, after the path's length is.
 */
export function checkStart(
  q: { readonly from?: unknown; readonly path?: unknown },
  what: string,
): { from: readonly string[]; path: readonly string[] } {
  const from = typeof q.from === "string" ? [q.from] : q.from;
  if (!Array.isArray(from) || from.length === 0) {
    throw new TypeError(`${what}.from must be a soul or a list of souls`);
  }
  const path = q.path ?? [];
  if (!Array.isArray(path)) throw new TypeError(`${what}.path must be an array of field names`);
  return { from, path };
}

/**
 * The souls reached from `from` by following `path`, field by field (`"*"`
 * follows every link of a node), under `meter`'s frontier, read and time
 * budgets (its path length budget was checked when it was made: before any
 * step is looked at); `check` throws once the database is closed.
 */
export async function reach(
  from: readonly string[],
  path: readonly string[],
  store: Store,
  meter: QueryMeter,
  check: () => void,
): Promise<string[]> {
  meter.frontier(from.length);
  from.forEach((s) => checkSoul(s));
  path.forEach((f) => f === "*" || checkField(f));
  let level = [...new Set(from)];
  for (const step of path) {
    const next = new Set<string>();
    for (const soul of level) {
      meter.visit();
      const data = await readNodeData(store, soul);
      let looked = 0;
      if (data) {
        const fields = step === "*" ? Object.keys(data) : [step];
        looked = fields.length;
        for (const field of fields) {
          const v = data[field];
          if (isLink(v)) next.add(v["#"]);
        }
        meter.frontier(next.size);
      }
      if (meter.spend(looked)) {
        await meter.pause();
        check();
      }
    }
    level = [...next];
  }
  return level;
}

/** The test of a query's `where`, its conditions checked first (`TypeError`/`RangeError`). */
export function compileWhere(where: Query["where"]): (data: NodeData) => boolean {
  if (where === undefined) return () => true;
  if (typeof where !== "object" || where === null || Array.isArray(where)) {
    throw new TypeError("query.where must be an object of field conditions");
  }
  const tests: ((data: NodeData) => boolean)[] = [];
  for (const field of Object.keys(where)) {
    checkField(field);
    const raw = where[field] as unknown;
    const isCond = typeof raw === "object" && raw !== null && !(raw instanceof Uint8Array) && !isLink(raw);
    const cond = (isCond ? raw : { eq: raw }) as Condition;
    for (const k of Object.keys(cond)) {
      if (!CONDITION_KEYS.has(k)) {
        throw new RangeError(`Unknown condition "${k}" on ${field}: use eq, lt, gt or prefix`);
      }
    }
    if (cond.prefix !== undefined && typeof cond.prefix !== "string") {
      throw new TypeError(`prefix on ${field} must be a string`);
    }
    for (const k of ["lt", "gt"] as const) {
      const v = cond[k];
      if (v !== undefined && typeof v !== "number" && typeof v !== "string") {
        throw new TypeError(`${k} on ${field} must be a number or a string`);
      }
    }
    tests.push((data) => {
      const v = data[field];
      if (v === undefined) return false;
      if ("eq" in cond && !sameValue(v, cond.eq as Value)) return false;
      if (cond.lt !== undefined && !(typeof v === typeof cond.lt && (v as number | string) < cond.lt)) {
        return false;
      }
      if (cond.gt !== undefined && !(typeof v === typeof cond.gt && (v as number | string) > cond.gt)) {
        return false;
      }
      if (cond.prefix !== undefined && !(typeof v === "string" && v.startsWith(cond.prefix))) return false;
      return true;
    });
  }
  return (data) => tests.every((t) => t(data));
}

function sameValue(a: Value, b: Value): boolean {
  if (isLink(a) && isLink(b)) return a["#"] === b["#"];
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  return a === b;
}
