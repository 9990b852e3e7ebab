/**
 * The work budget of a graph query, and the meter that enforces it.
 *
 * A query's cost is not bounded by its size: 16 KB of `path` repeating `"*"`
 * over a small fully linked graph froze a node (HTTP, gossip, sync) for 18 s,
 * because nothing bounded the steps, the nodes reached or the time, and reads
 * of a synchronous store resolve as microtasks, which starve every other
 * task. So a query has four budgets — path length, frontier (distinct nodes
 * reached at one step), nodes read in all, and wall time — and over any of
 * them it rejects with {@link QueryTooLargeError} (HTTP 422
 * `query_too_large`). Within them it runs in slices of about
 * {@link QUERY_SLICE_MS} and yields to the event loop between slices with a
 * real macrotask (a 0 ms timer of the database's {@link World}), so requests
 * and peers are served while it runs; time is read from the world's monotonic
 * clock.
 *
 * @example
 * ```ts
 * import { open, QueryTooLargeError } from "../mod.ts";
 * const db = await open({ storage: "memory", queryBudget: { maxPathLength: 4 } });
 * await db.put("a", { next: { "#": "a" } });
 * try {
 *   await db.query({ from: "a", path: ["next", "next", "next", "next", "next"] });
 * } catch (e) {
 *   console.log(e instanceof QueryTooLargeError, (e as Error).message);
 *   // true "Cannot run the query: its path has 5 steps, over the path length budget of 4"
 * }
 * await db.close();
 * ```
 *
 * @module
 */
import { sleep, systemWorld, type World } from "./world.ts";

/**
 * Limits on the work of one query; see {@link DEFAULT_QUERY_BUDGET} for the defaults.
 *
 * @example
 * ```ts
 * import { open, type QueryBudget } from "../mod.ts";
 * const budget: Partial<QueryBudget> = { maxVisited: 1 }; // the rest from DEFAULT_QUERY_BUDGET
 * const db = await open({ storage: "memory", queryBudget: budget });
 * await db.put("alice", { friend: { "#": "bob" } });
 * await db.query({ from: "alice", path: ["friend"] }).catch((e) => console.log(e.name)); // QueryTooLargeError
 * await db.close();
 * ```
 */
export interface QueryBudget {
  /** Most steps in `path`. */
  readonly maxPathLength: number;
  /** Most distinct nodes reached at one step (the start souls included). */
  readonly maxFrontier: number;
  /** Most node reads in the whole query. */
  readonly maxVisited: number;
  /** Longest run in milliseconds of wall time, from the call to the result (yields included). */
  readonly maxMs: number;
}

/**
 * The defaults: far above an honest traversal (a path of a few steps over a
 * few thousand nodes reads them in milliseconds), low enough that the worst
 * query costs seconds of a node's time, shared with everything else. A
 * million reads take about 2–5 s on SQLite.
 *
 * @example
 * ```ts
 * import { DEFAULT_QUERY_BUDGET, open } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * const path = Array(DEFAULT_QUERY_BUDGET.maxPathLength + 1).fill("next"); // 65 steps
 * await db.query({ from: "a", path }).catch((e) => console.log(e.name)); // QueryTooLargeError
 * await db.close();
 * ```
 */
export const DEFAULT_QUERY_BUDGET: QueryBudget = Object.freeze({
  maxPathLength: 64,
  maxFrontier: 100_000,
  maxVisited: 1_000_000,
  maxMs: 10_000,
});

/** How long a query works before it yields to the event loop, in ms. */
export const QUERY_SLICE_MS = 10;
/**
 * Units of work between two looks at the clock (which costs 0.1–0.3 µs): a
 * node read counts {@link READ_UNITS}, a field or condition looked at one. So
 * the clock is read at least every 8 reads (a read of a node of 100k fields
 * takes some 20 ms), and often where nodes are wide.
 */
const CHECK_UNITS = 256;
const READ_UNITS = 32;

/**
 * A query needs more work than its budget allows (HTTP 422 `query_too_large`).
 *
 * @example
 * ```ts
 * import { open, QueryTooLargeError } from "../mod.ts";
 * const db = await open({ storage: "memory", queryBudget: { maxPathLength: 1 } });
 * try {
 *   await db.query({ from: "alice", path: ["friend", "friend"] });
 * } catch (e) {
 *   console.log(e instanceof QueryTooLargeError, (e as Error).name); // true QueryTooLargeError
 * }
 * await db.close();
 * ```
 */
export class QueryTooLargeError extends Error {
  override readonly name = "QueryTooLargeError";
}

/**
 * `budget` with the defaults filled in; throws `RangeError` for a limit that
 * is not a positive integer (`maxMs`: a positive number).
 */
export function checkQueryBudget(budget: Partial<QueryBudget> | undefined): QueryBudget {
  if (budget === undefined) return DEFAULT_QUERY_BUDGET;
  if (typeof budget !== "object" || budget === null) throw new TypeError("queryBudget must be an object");
  const out = { ...DEFAULT_QUERY_BUDGET };
  for (const key of Object.keys(DEFAULT_QUERY_BUDGET) as (keyof QueryBudget)[]) {
    const v = budget[key];
    if (v === undefined) continue;
    const ok = key === "maxMs" ? typeof v === "number" && v > 0 : Number.isSafeInteger(v) && v > 0;
    if (!ok) {
      throw new RangeError(
        `queryBudget.${key} must be a positive ${key === "maxMs" ? "number" : "integer"}, got ${v}`,
      );
    }
    out[key] = v;
  }
  for (const key of Object.keys(budget)) {
    if (!(key in DEFAULT_QUERY_BUDGET)) {
      throw new RangeError(`Unknown queryBudget option ${JSON.stringify(key)}`);
    }
  }
  return Object.freeze(out);
}

/**
 * Counts the work of one query against its budget and tells it when to
 * yield. The path length is checked when it is made.
 */
export class QueryMeter {
  readonly budget: QueryBudget;
  readonly #world: World;
  #visited = 0;
  #units = 0;
  #start: number;
  #sliceStart: number;

  /** `world`: whose monotonic clock times the query and whose timer yields (default {@link systemWorld}). */
  constructor(budget: QueryBudget, pathLength: number, world: World = systemWorld) {
    this.budget = budget;
    this.#world = world;
    this.#start = this.#sliceStart = world.monotonic();
    if (pathLength > budget.maxPathLength) {
      throw new QueryTooLargeError(
        `Cannot run the query: its path has ${pathLength} steps, over the path length budget of ${budget.maxPathLength}`,
      );
    }
  }

  /** Throws unless a step reaching `size` distinct nodes fits the frontier budget. */
  frontier(size: number): void {
    if (size > this.budget.maxFrontier) {
      throw new QueryTooLargeError(
        `Cannot run the query: one step reaches more than ${this.budget.maxFrontier} nodes, over the frontier budget`,
      );
    }
  }

  /** Counts a node read; throws over the visited budget. */
  visit(): void {
    if (++this.#visited > this.budget.maxVisited) {
      throw new QueryTooLargeError(
        `Cannot run the query: it reads more than ${this.budget.maxVisited} nodes, over the visited budget`,
      );
    }
  }

  /**
   * Counts the work done on a node read, with `looked` fields or conditions
   * looked at in it; throws over the time budget. True when the slice is
   * over: the caller awaits {@link pause} before it goes on.
   */
  spend(looked: number): boolean {
    if ((this.#units += READ_UNITS + looked) < CHECK_UNITS) return false;
    this.#units = 0;
    const now = this.#world.monotonic();
    this.#checkTime(now);
    return now - this.#sliceStart >= QUERY_SLICE_MS;
  }

  /** Yields to the event loop (a macrotask: timers, I/O and other requests run), then checks the time budget. */
  async pause(): Promise<void> {
    await sleep(this.#world, 0);
    this.#sliceStart = this.#world.monotonic();
    this.#checkTime(this.#sliceStart);
  }

  #checkTime(now: number): void {
    if (now - this.#start > this.budget.maxMs) {
      throw new QueryTooLargeError(
        `Cannot run the query: it ran past its time budget of ${this.budget.maxMs} ms`,
      );
    }
  }
}
