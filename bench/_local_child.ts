/**
 * Child process of the `local` suite (bench/local.bench.ts), for what must be
 * measured in a fresh process: open time, resident memory, and what survives
 * the process being killed. Prints one JSON object on its last stdout line.
 *
 * Modes (open time and the RSS of an opened database: `_open_child.ts`):
 * - `bulk yjs <n>`: one `Y.applyUpdate` of an update of `n` `Y.Map.set`s
 *   into a fresh doc;
 * - `bulk lattice <one|encoded|batched> <dir> <n>`: the `n` foreign ops of
 *   {@link foreignOps} applied into a fresh replica in `dir`: in one
 *   `applyOps` call, in one call given their encoding, or in batches of
 *   10,000 awaited in turn. Each bulk case runs in a process of its own: in
 *   one process, the second of two 1M-op cases ran 40% slower than alone
 *   (Lattice after Yjs: 2.49 against 1.75 µs per op), whichever it was.
 * - `one lattice <dir> <n> <rounds>`: the first `n` ops of {@link foreignOps}
 *   applied one `applyOps([op])` at a time, awaited in turn, into a fresh
 *   replica in `dir`, after {@link ONE_WARM} into a scratch replica; `one yjs
 *   <n> <rounds>`: `n` one-set updates applied one `Y.applyUpdate` at a time
 *   into a fresh doc, after as many into a scratch doc. Each reports the mean
 *   ns per call of each of `rounds` equal rounds. In the parent, after the
 *   other cases, the same Lattice rounds took 5.0 µs per op against 3.2–4.2
 *   alone.
 * - `gun-rss <nodes> <fields>`: RSS of a GUN instance holding that many nodes
 *   in its in-memory graph (radisk off).
 * - `durable-write <lattice|gun> <dir> <n>`: `n` concurrent puts to durable
 *   storage, all acknowledged, then the process kills itself (SIGKILL).
 * - `durable-count <lattice|gun> <dir> <n>`: how many of those puts are there.
 *
 * RSS is read after a forced garbage collection (Deno needs
 * `--v8-flags=--expose-gc`, Bun has `Bun.gc`), so it is what the process
 * holds, not garbage it has not collected yet.
 *
 * @module
 */
import { readdirSync, readFileSync, readlinkSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import * as Y from "yjs";
import { open } from "../mod.ts";
import { encodeOps, type Op } from "../core/op.ts";
import { collectGarbage } from "./_open_child.ts";

/** The small part of GUN's chain API this suite uses. */
export interface GunChain {
  get(key: string): GunChain;
  put(data: Record<string, unknown>, ack?: (ack: { err?: string; ok?: unknown }) => void): GunChain;
  once(cb: (data: Record<string, unknown> | undefined) => void, opt?: { wait?: number }): GunChain;
}

/** GUN's options as this suite sets them: local storage only, no network of any kind. */
export interface GunOptions {
  file?: string;
  radisk?: boolean;
  multicast: false;
  stats: false;
  axe: false;
  localStorage: false;
}

/**
 * Loads GUN (`gun`, its Node entry: radisk on the file system, no peers) with
 * `console.log` sent to stderr meanwhile, so its welcome line does not land
 * in stdout, which `--json` keeps for results.
 */
export async function loadGun(): Promise<(opt: GunOptions) => GunChain> {
  const log = console.log;
  console.log = console.error;
  try {
    const mod = await import("gun");
    return mod.default as unknown as (opt: GunOptions) => GunChain;
  } finally {
    console.log = log;
  }
}

/**
 * The options every GUN instance of the suite gets: storage in `file`, and
 * everything that could touch the network or write outside it switched off
 * (UDP multicast discovery on port 8765, the stats file GUN otherwise writes
 * into its package directory, AXE relay logic). No `peers` are given.
 */
export function gunOptions(file: string | undefined): GunOptions {
  const base = { multicast: false, stats: false, axe: false, localStorage: false } as const;
  return file === undefined ? { ...base, radisk: false } : { ...base, file };
}

/**
 * Awaits `p` while a timer keeps the event loop alive: on Deno, GUN's radisk
 * acknowledgements otherwise arrive after the loop has decided nothing is
 * pending ("Top-level await promise never resolved").
 */
export async function keepAlive<T>(p: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(timer);
  }
}

/** Puts `data` under `key` and resolves on GUN's acknowledgement (rejects on an error ack). */
export function gunPut(gun: GunChain, key: string, data: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    gun.get(key).put(data, (ack) => (ack.err ? reject(new Error(`GUN put ${key}: ${ack.err}`)) : resolve()));
  });
}

/**
 * Internet (TCP/UDP, IPv4/IPv6) sockets this process holds, or `undefined`
 * where that cannot be read (Linux only: the socket inodes in /proc/self/fd
 * found in /proc/self/net/{tcp,tcp6,udp,udp6}). Unix sockets are left out:
 * runtimes use socket pairs internally, and stdio pipes may be sockets. So
 * are sockets to port 53: name lookups by the runtime itself (Deno looks up
 * dl.deno.land for its update check unless DENO_NO_UPDATE_CHECK is set);
 * GUN reaching a peer would show as a TCP or UDP socket elsewhere.
 */
export function openSockets(): number | undefined {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync("/proc/self/fd")) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed between readdir and readlink
      }
    }
    let n = 0;
    for (const table of ["tcp", "tcp6", "udp", "udp6"]) {
      let text: string;
      try {
        text = readFileSync(`/proc/self/net/${table}`, "utf8");
      } catch {
        continue; // no IPv6 here
      }
      for (const line of text.split("\n").slice(1)) {
        const cols = line.trim().split(/\s+/);
        const remotePort = parseInt(cols[2]?.split(":")[1] ?? "", 16);
        if (cols[9] !== undefined && inodes.has(cols[9]) && remotePort !== 53) n++;
      }
    }
    return n;
  } catch {
    return undefined;
  }
}

function rss(): number {
  collectGarbage();
  return process.memoryUsage().rss;
}

/** The small node the durability check writes: key `d<i>`. */
export function durableNode(i: number): Record<string, unknown> {
  return { i, name: `durable ${i}` };
}

/** Writes the result line with a synchronous write, so that it is out before the process dies. */
function report(result: Record<string, unknown>): void {
  writeSync(1, JSON.stringify(result) + "\n");
}

/** Sockets opened since `before` was counted, or `undefined` where they cannot be counted. */
function newSockets(before: number | undefined): number | undefined {
  const now = openSockets();
  return now === undefined || before === undefined ? undefined : now - before;
}

async function gunRssMode(nodes: number, fields: number): Promise<Record<string, unknown>> {
  const socketsBefore = openSockets();
  const Gun = await loadGun();
  const rssBefore = rss();
  const gun = Gun(gunOptions(undefined));
  for (let i = 0; i < nodes; i++) {
    const data: Record<string, number> = {};
    for (let f = 0; f < fields; f++) data[`f${f}`] = i * fields + f;
    gun.get(nodeSoul(i)).put(data);
  }
  // Let GUN finish what it schedules after a put before memory is read.
  await new Promise((r) => setTimeout(r, 500));
  // Read one back, so the graph is certainly built.
  const last = await new Promise<Record<string, unknown> | undefined>((r) =>
    gun.get(nodeSoul(nodes - 1)).once(r, { wait: 1 })
  );
  if (last?.[`f${fields - 1}`] !== nodes * fields - 1) throw new Error("GUN did not keep the nodes put");
  return { rssBefore, rssHeld: rss(), sockets: newSockets(socketsBefore) };
}

/** Soul of node `i` in the apply / open / RSS data set (sorts in numeric order). */
export function nodeSoul(i: number): string {
  return `n${String(i).padStart(7, "0")}`;
}

async function durableWrite(impl: string, dir: string, n: number): Promise<void> {
  const socketsBefore = openSockets();
  let t0: number;
  if (impl === "lattice") {
    const db = await open({ path: dir });
    t0 = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => db.put(`d${i}`, durableNode(i))));
  } else {
    const Gun = await loadGun();
    const gun = Gun(gunOptions(join(dir, "radata")));
    t0 = performance.now();
    await keepAlive(Promise.all(Array.from({ length: n }, (_, i) => gunPut(gun, `d${i}`, durableNode(i)))));
  }
  report({ acked: n, ns: (performance.now() - t0) * 1e6, sockets: newSockets(socketsBefore) });
  // Die at once: no close, no exit handlers, nothing flushed after the acknowledgements.
  process.kill(process.pid, "SIGKILL");
}

/**
 * How many `d<i>` nodes a GUN radisk directory holds, read from its files:
 * each is a JSON radix tree whose leaves are `soul ESC field → {":": value}`.
 * GUN's own `once` was not usable here: on reopening, some reads never call
 * back (seen for about 1 key in 300), which would hang the count.
 */
function countGunFiles(dir: string, n: number): number {
  const values = new Map<string, unknown>();
  const walk = (node: Record<string, unknown>, prefix: string): void => {
    for (const k of Object.keys(node)) {
      const v = node[k];
      if (k === "") values.set(prefix, (v as { ":"?: unknown })[":"]);
      else if (typeof v === "object" && v !== null) walk(v as Record<string, unknown>, prefix + k);
    }
  };
  for (const file of readdirSync(dir)) {
    const text = readFileSync(join(dir, file), "utf8");
    try {
      walk(JSON.parse(text), "");
    } catch {
      // not a radix file (or not JSON): nothing countable in it
    }
  }
  let present = 0;
  for (let i = 0; i < n; i++) if (values.get(`d${i}\u001bi`) === i) present++;
  return present;
}

async function durableCount(impl: string, dir: string, n: number): Promise<Record<string, unknown>> {
  if (impl === "gun") return { present: countGunFiles(join(dir, "radata"), n) };
  const db = await open({ path: dir });
  let present = 0;
  for (let i = 0; i < n; i++) {
    const data = await db.get(`d${i}`);
    if (data?.i === i) present++;
  }
  await db.close();
  return { present };
}

// ---------------------------------------------------------------- the apply data set

/** Fields per node of the apply / open / RSS data set: 100,000 nodes of 10 small numbers at 1M ops. */
export const FIELDS_PER_NODE = 10;

/** Node `i` of the apply / open / RSS data set: FIELDS_PER_NODE small numbers. */
export function fieldNode(i: number): Record<string, number> {
  const data: Record<string, number> = {};
  for (let f = 0; f < FIELDS_PER_NODE; f++) data[`f${f}`] = i * FIELDS_PER_NODE + f;
  return data;
}

/** Builds a replica holding `n` fields (in memory) and exports them: the foreign ops. */
export async function foreignOps(n: number): Promise<Op[]> {
  const source = await open({ storage: "memory" });
  try {
    const nodes = n / FIELDS_PER_NODE;
    for (let start = 0; start < nodes; start += 10_000) {
      const puts: Promise<unknown>[] = [];
      for (let i = start; i < Math.min(nodes, start + 10_000); i++) {
        puts.push(source.put(nodeSoul(i), fieldNode(i)));
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
    return ops;
  } finally {
    await source.close();
  }
}

/** The same data as Yjs: a doc after `n` `Y.Map.set` (one transaction), as one update. */
function yjsBulkUpdate(n: number): Uint8Array {
  const doc = new Y.Doc();
  const map = doc.getMap("fields");
  doc.transact(() => {
    for (let i = 0; i < n / FIELDS_PER_NODE; i++) {
      const soul = nodeSoul(i);
      for (let f = 0; f < FIELDS_PER_NODE; f++) map.set(`${soul}/f${f}`, i * FIELDS_PER_NODE + f);
    }
  });
  const update = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return update;
}

/** A small Yjs update, to warm Yjs's decoding and integration before the timed bulk apply. */
function yjsSmallUpdate(): Uint8Array {
  const doc = new Y.Doc();
  const map = doc.getMap("fields");
  doc.transact(() => {
    for (let i = 0; i < 20_000; i++) map.set(`w${i}`, i);
  });
  return Y.encodeStateAsUpdate(doc);
}

/**
 * Collects garbage where the runtime allows it (Deno with
 * `--v8-flags=--expose-gc`, as `deno task bench` runs; Bun), on the next
 * task: V8 keeps the value an async function last awaited (the 1M ops,
 * 250 MB) until the function moves on, so a collection in the same task
 * found it all alive, and the one-op case then ran at 9–10 µs instead of 6.5
 * (its young collections took 10–20 ms each beside that heap).
 */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  collectGarbage();
}

async function bulkYjs(n: number): Promise<Record<string, unknown>> {
  let update: Uint8Array | undefined = yjsBulkUpdate(n);
  const warm = new Y.Doc();
  Y.applyUpdate(warm, yjsSmallUpdate()); // warm the decoder and integration paths
  warm.destroy();
  const bytes = update.length;
  const doc = new Y.Doc();
  await settle();
  const t0 = performance.now();
  Y.applyUpdate(doc, update);
  const ns = ((performance.now() - t0) * 1e6) / n;
  const size = doc.getMap("fields").size;
  if (size !== n) throw new Error(`Yjs applied ${size} sets, expected ${n}`);
  doc.destroy();
  update = undefined;
  return { ns, bytes };
}

/** Warm-up calls before the one-at-a-time rounds. */
export const ONE_WARM = 1_000;

/** `n` updates of one `Y.Map.set` each, as a peer would send them one by one. */
function yjsOneSetUpdates(n: number, offset: number): Uint8Array[] {
  const doc = new Y.Doc();
  const map = doc.getMap("fields");
  const updates: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => updates.push(u));
  for (let i = 0; i < n; i++) map.set(`k${offset + i}`, offset + i);
  doc.destroy();
  return updates;
}

async function oneLattice(dir: string, n: number, rounds: number): Promise<Record<string, unknown>> {
  const ops = await foreignOps(n); // the first nodes of the 1M-op data set
  await settle(); // before the warm-up, not between it and the rounds
  const warm = await open({ path: `${dir}-warm` });
  for (const op of ops.slice(0, ONE_WARM)) await warm.applyOps([op]);
  await warm.close();
  rmSync(`${dir}-warm`, { recursive: true, force: true });
  const db = await open({ path: dir });
  const per = n / rounds, means: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = r * per; i < (r + 1) * per; i++) await db.applyOps([ops[i]]);
    means.push(((performance.now() - t0) * 1e6) / per);
  }
  await db.close();
  return { means, engine: db.storage };
}

async function oneYjs(n: number, rounds: number): Promise<Record<string, unknown>> {
  const updates = yjsOneSetUpdates(n, 0);
  await settle();
  const warm = new Y.Doc();
  for (const u of yjsOneSetUpdates(ONE_WARM, n)) Y.applyUpdate(warm, u);
  warm.destroy();
  const doc = new Y.Doc();
  const per = n / rounds, means: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = r * per; i < (r + 1) * per; i++) Y.applyUpdate(doc, updates[i]);
    means.push(((performance.now() - t0) * 1e6) / per);
  }
  if (doc.getMap("fields").size !== n) throw new Error("Yjs lost one-set updates");
  doc.destroy();
  return { means };
}

/** Ops per batch of the `batched` bulk case. */
export const APPLY_BATCH = 10_000;

async function bulkLattice(how: string, dir: string, n: number): Promise<Record<string, unknown>> {
  let ops: Op[] | undefined = await foreignOps(n);
  const encoded = how === "encoded";
  // Warm the apply path on a scratch replica, in batches of 5,000.
  const warmDir = `${dir}-warm`;
  const warm = await open({ path: warmDir });
  for (let i = 0; i < Math.min(20_000, n); i += 5_000) {
    const batch = ops.slice(i, i + 5_000);
    await warm.applyOps(encoded ? encodeOps(batch) : batch);
  }
  await warm.close();
  rmSync(warmDir, { recursive: true, force: true });
  let wire: Uint8Array | undefined = encoded ? encodeOps(ops) : undefined;
  const bytes = wire?.length;
  if (encoded) ops = undefined;
  const db = await open({ path: dir });
  await settle();
  let applied = 0;
  const t0 = performance.now();
  if (how === "one") applied = (await db.applyOps(ops!)).applied;
  else if (encoded) applied = (await db.applyOps(wire!)).applied;
  else if (how === "batched") {
    for (let i = 0; i < n; i += APPLY_BATCH) {
      applied += (await db.applyOps(ops!.slice(i, i + APPLY_BATCH))).applied;
    }
  } else throw new Error(`Unknown bulk case ${JSON.stringify(how)}`);
  const ns = ((performance.now() - t0) * 1e6) / n;
  wire = undefined;
  await db.close();
  if (applied !== n) throw new Error(`applied ${applied} of ${n} ops`);
  return { ns, bytes, engine: db.storage };
}

async function main(args: readonly string[]): Promise<void> {
  const [mode, a, b, c, d] = args;
  switch (mode) {
    case "bulk":
      return report(a === "yjs" ? await bulkYjs(Number(b)) : await bulkLattice(b, c, Number(d)));
    case "one":
      return report(
        a === "yjs" ? await oneYjs(Number(b), Number(c)) : await oneLattice(b, Number(c), Number(d)),
      );
    case "gun-rss":
      return report(await gunRssMode(Number(a), Number(b)));
    case "durable-write":
      return await durableWrite(a, b, Number(c));
    case "durable-count":
      return report(await durableCount(a, b, Number(c)));
    default:
      throw new Error(`Unknown mode ${JSON.stringify(mode)}`);
  }
}

if (import.meta.main) {
  await main(process.argv.slice(2));
  process.exit(0);
}
