/**
 * The page side of the `browser` suite (bench/browser.bench.ts): bundled by
 * esbuild and loaded into headless Chromium, where it times the writes and
 * reads of one engine at a time with `performance.now()` and hands the
 * figures back to the Deno side. Not a suite: it never runs on a server.
 *
 * Engines: `opfs` and `memory` (a Lattice database, `open({ storage })`) and
 * `idb` (IndexedDB through `idb-keyval`: what a browser developer would pick
 * without Lattice). Each run uses a fresh database (a fresh OPFS path, a fresh
 * IndexedDB name) and removes it after.
 *
 * Phases of one run ({@link runEngine}):
 * - awaited put: `await db.put(soul, node)` one after another (idb: `await
 *   set(soul, node)`, one transaction each);
 * - concurrent put: all puts started, then awaited together (Lattice's group
 *   commit shares the commits; idb: one `set` transaction each, all pending);
 * - get: `await db.get(soul)` one after another over the concurrent puts' souls;
 * - apply: the foreign ops of {@link prepare} applied into a fresh database
 *   in batches of {@link APPLY_BATCH}, each awaited, as sync delivers them
 *   (net/replicate.ts: up to 2,000 ops a message) — `db.applyOps(batch)`;
 *   idb: `setMany` of the batch, one entry per field (`soul\0field` → the op),
 *   the nearest a plain key-value store comes (no merge, no clocks).
 *
 * @module
 */
import { open } from "../mod.ts";
import type { Database } from "../core/database.ts";
import type { Op } from "../core/op.ts";
import { createStore, get, set, setMany, type UseStore } from "idb-keyval";
import { type OpfsProbe, probeOpfs } from "./_browser_probe.ts";

/** Ops per `applyOps` call: what one sync message carries at most (net/replicate.ts OPS_PER_MESSAGE). */
export const APPLY_BATCH = 2_000;

/** Fields per node of the foreign ops (as bench/_local_child.ts builds them). */
const FIELDS_PER_NODE = 10;

/** The engines the page can run. */
export type BrowserEngine = "opfs" | "memory" | "idb";

/** How many of each operation one run does. */
export interface BrowserSizes {
  readonly awaited: number;
  readonly concurrent: number;
  readonly gets: number;
  readonly apply: number;
}

/** Milliseconds each phase of one run took. */
export interface BrowserRun {
  readonly engine: BrowserEngine;
  readonly awaitedMs: number;
  readonly concurrentMs: number;
  readonly getMs: number;
  readonly applyMs: number;
}

let foreign: Op[] = [];

/** Builds `n` foreign ops (another replica's, exported) once per page, outside any timing. */
export async function prepare(n: number): Promise<number> {
  const source = await open({ storage: "memory" });
  try {
    const nodes = n / FIELDS_PER_NODE;
    for (let start = 0; start < nodes; start += 10_000) {
      const puts: Promise<unknown>[] = [];
      for (let i = start; i < Math.min(nodes, start + 10_000); i++) {
        const data: Record<string, number> = {};
        for (let f = 0; f < FIELDS_PER_NODE; f++) data[`f${f}`] = i * FIELDS_PER_NODE + f;
        puts.push(source.put(`n${String(i).padStart(7, "0")}`, data));
      }
      await Promise.all(puts);
    }
    const ops: Op[] = [];
    for (let cursor: number | undefined;;) {
      const page = await source.exportOps({ limit: n, cursor });
      for (const op of page.ops) ops.push(op);
      if ((cursor = page.cursor) === undefined) break;
    }
    if (ops.length !== n) throw new Error(`exported ${ops.length} ops, expected ${n}`);
    foreign = ops;
    return ops.length;
  } finally {
    await source.close();
  }
}

const soul = (i: number) => `u${String(i).padStart(7, "0")}`;
const node = (i: number) => ({ name: `user ${i}`, age: i % 97, active: (i & 1) === 0 });

/** What one engine offers the phases. */
interface Target {
  put(key: string, value: unknown): Promise<unknown>;
  get(key: string): Promise<unknown>;
  apply(batch: Op[]): Promise<unknown>;
  close(): Promise<void>;
}

async function latticeTarget(storage: "opfs" | "memory", path: string): Promise<Target> {
  const db: Database = storage === "opfs" ? await open({ storage, path }) : await open({ storage });
  return {
    put: (key, value) => db.put(key, value as Record<string, number>),
    get: (key) => db.get(key),
    apply: (batch) => db.applyOps(batch),
    close: async () => {
      await db.close();
      if (storage === "opfs") await removeOpfs(path);
    },
  };
}

/** IndexedDB's factory (Deno's types have none: this file only runs in a page). */
interface IdbFactory {
  deleteDatabase(
    name: string,
  ): { onsuccess: (() => void) | null; onerror: (() => void) | null; error: unknown };
}
const idb = (globalThis as unknown as { indexedDB: IdbFactory }).indexedDB;

function idbTarget(name: string): Target {
  const store: UseStore = createStore(name, "kv");
  return {
    put: (key, value) => set(key, value, store),
    get: (key) => get(key, store),
    apply: (batch) => setMany(batch.map((op) => [`${op.soul}\u0000${op.field}`, op]), store),
    close: async () => {
      await store("readonly", (s) => s.transaction.db.close());
      await new Promise<void>((resolve, reject) => {
        const req = idb.deleteDatabase(name);
        req.onsuccess = () => resolve();
        req.onerror = () => reject(req.error);
      });
    },
  };
}

interface Dir {
  getDirectoryHandle(name: string, options: { create: boolean }): Promise<Dir>;
  removeEntry(name: string, options: { recursive: boolean }): Promise<void>;
}

async function removeOpfs(name: string): Promise<void> {
  const storage = (navigator as unknown as { storage: { getDirectory(): Promise<Dir> } }).storage;
  const dir = await (await storage.getDirectory()).getDirectoryHandle(".lattice", { create: true });
  await dir.removeEntry(name, { recursive: true });
}

function target(engine: BrowserEngine, name: string): Promise<Target> | Target {
  return engine === "idb" ? idbTarget(name) : latticeTarget(engine, name);
}

/** One run of every phase on `engine`, in fresh databases named after `tag`. */
export async function runEngine(
  engine: BrowserEngine,
  sizes: BrowserSizes,
  tag: string,
): Promise<BrowserRun> {
  if (foreign.length < sizes.apply) throw new Error(`prepare(${sizes.apply}) first`);
  let t = await target(engine, `bw-${tag}-${engine}`);
  let t0 = performance.now();
  for (let i = 0; i < sizes.awaited; i++) await t.put(soul(i), node(i));
  const awaitedMs = performance.now() - t0;

  const base = sizes.awaited;
  const puts: Promise<unknown>[] = [];
  t0 = performance.now();
  for (let i = base; i < base + sizes.concurrent; i++) puts.push(t.put(soul(i), node(i)));
  await Promise.all(puts);
  const concurrentMs = performance.now() - t0;

  let found = 0;
  t0 = performance.now();
  for (let i = 0; i < sizes.gets; i++) if (await t.get(soul(base + (i % sizes.concurrent))) != null) found++;
  const getMs = performance.now() - t0;
  if (found !== sizes.gets) throw new Error(`${engine}: ${found} of ${sizes.gets} gets found their node`);
  await t.close();

  t = await target(engine, `ba-${tag}-${engine}`);
  t0 = performance.now();
  for (let i = 0; i < sizes.apply; i += APPLY_BATCH) {
    await t.apply(foreign.slice(i, Math.min(i + APPLY_BATCH, sizes.apply)));
  }
  const applyMs = performance.now() - t0;
  await t.close();
  return { engine, awaitedMs, concurrentMs, getMs, applyMs };
}

/** What bounds an awaited OPFS put (bench/_browser_probe.ts), on a fresh path named after `tag`, removed after. */
export async function probe(tag: string): Promise<OpfsProbe> {
  const path = `bp-${tag}`;
  try {
    return await probeOpfs(path);
  } finally {
    await removeOpfs(path).catch(() => {});
  }
}
