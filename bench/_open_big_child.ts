/**
 * Child process of the `open_big` suite (bench/open_big.bench.ts).
 *
 * - `create <dir> <n>`: a database in `dir` holding `n` records (nodes of 10
 *   small fields), written the fast way: foreign ops applied in batches of
 *   200,000 (no index, no network).
 * - `open <dir> [save]`: in this fresh process, times `open({ path: dir })`,
 *   then the first use of the sync index as a starting network makes it
 *   (`SyncIndex.build`, a snapshot, the fingerprint of everything), and
 *   reports the RSS after it (after a forced GC) and the peak RSS of the
 *   process (`VmHWM` of /proc/self/status on Linux, else the largest RSS
 *   seen by a 5 ms sampler). With `save`, saves the index afterwards (as a
 *   network does when it stops), outside the timing.
 *
 * - `crash <dir> <k>`: opens the database and its sync index (loaded from
 *   the saved one), writes `k` changed records in batches of 10,000 (every
 *   field of `k / 10` nodes, newer states), and exits without closing
 *   anything, as a SIGKILL leaves a node whose index was last saved `k`
 *   records ago: the next `open` reads those `k` records since the save.
 *
 * Prints one JSON object on stdout. Like bench/_open_child.ts, it loads
 * Lattice and nothing else (no `node:` module: on Deno that alone would add
 * ~10 MB of RSS to the figures).
 *
 * @module
 */
import { open } from "../mod.ts";
import { SyncIndex } from "../core/sync/sync_index.ts";
import type { Op } from "../core/op.ts";
import { collectGarbage } from "./_open_child.ts";

interface Runtime {
  args: string[];
  rss(): number;
  /** Peak RSS from the kernel, or undefined where there is no /proc. */
  peak(): Promise<number | undefined>;
  write(line: string): void;
  exit(code: number): never;
}

function runtime(): Runtime {
  const g = globalThis as {
    Deno?: {
      args: string[];
      memoryUsage(): { rss: number };
      readTextFileSync(path: string): string;
      stdout: { writeSync(b: Uint8Array): number };
      exit(code: number): never;
    };
    Bun?: { file(path: string): { text(): Promise<string> } };
    process?: {
      argv: string[];
      memoryUsage(): { rss: number };
      stdout: { write(s: string): boolean };
      exit(code: number): never;
    };
  };
  const hwm = (status: string): number | undefined => {
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  if (g.Deno !== undefined) {
    const D = g.Deno;
    return {
      args: D.args,
      rss: () => D.memoryUsage().rss,
      peak: () => {
        try {
          return Promise.resolve(hwm(D.readTextFileSync("/proc/self/status")));
        } catch {
          return Promise.resolve(undefined);
        }
      },
      write(line) {
        const bytes = new TextEncoder().encode(line);
        for (let off = 0; off < bytes.length;) off += D.stdout.writeSync(bytes.subarray(off));
      },
      exit: (code) => D.exit(code),
    };
  }
  const p = g.process!, B = g.Bun;
  return {
    args: p.argv.slice(2),
    rss: () => p.memoryUsage().rss,
    peak: async () => B ? hwm(await B.file("/proc/self/status").text().catch(() => "")) : undefined,
    write: (l) => p.stdout.write(l),
    exit: p.exit,
  };
}

/** Fields per node of the data set. */
const FIELDS = 10;

async function create(dir: string, n: number): Promise<Record<string, unknown>> {
  const db = await open({ path: dir });
  const t0 = performance.now();
  const state0 = BigInt(Date.now() - 86_400_000) << 16n;
  for (let i = 0; i < n; i += 200_000) {
    const ops: Op[] = [];
    for (let k = i; k < Math.min(n, i + 200_000); k++) {
      ops.push({
        soul: `node/${Math.floor(k / FIELDS).toString().padStart(8, "0")}`,
        field: `f${k % FIELDS}`,
        value: k,
        state: (state0 + BigInt(k)).toString(16).padStart(16, "0"),
        actor: "00000000000000aa",
      });
    }
    await db.applyOps(ops);
  }
  await db.close();
  return { records: n, ns: (performance.now() - t0) * 1e6 };
}

async function crash(rt: Runtime, dir: string, k: number): Promise<never> {
  const db = await open({ path: dir });
  const index = await SyncIndex.build(db);
  const state0 = BigInt(Date.now()) << 16n;
  for (let i = 0; i < k; i += 10_000) {
    const ops: Op[] = [];
    for (let j = i; j < Math.min(k, i + 10_000); j++) {
      ops.push({
        soul: `node/${Math.floor(j / FIELDS).toString().padStart(8, "0")}`,
        field: `f${j % FIELDS}`,
        value: -j,
        state: (state0 + BigInt(j)).toString(16).padStart(16, "0"),
        actor: "00000000000000ab",
      });
    }
    await db.applyOps(ops);
  }
  rt.write(JSON.stringify({ changed: k, items: index.snapshot().size }) + "\n");
  rt.exit(0); // no close, no index save: what a SIGKILL leaves
}

async function openAndIndex(rt: Runtime, dir: string, save: boolean): Promise<Record<string, unknown>> {
  let sampled = 0;
  const sampler = setInterval(() => (sampled = Math.max(sampled, rt.rss())), 5);
  collectGarbage();
  const rssBefore = rt.rss();
  const t0 = performance.now();
  const db = await open({ path: dir });
  const t1 = performance.now();
  const index = await SyncIndex.build(db);
  const t2 = performance.now();
  const snap = index.snapshot();
  const fp = snap.fingerprints([0], [snap.size]);
  const t3 = performance.now();
  clearInterval(sampler);
  const peak = (await rt.peak()) ?? Math.max(sampled, rt.rss());
  collectGarbage();
  const rssAfter = rt.rss();
  // Before the index this bench measures, SyncIndex had no buildStats (for a run against old code).
  const stats = (index as { buildStats?: { loaded: boolean; recordsRead: number } }).buildStats;
  const result = {
    items: snap.size,
    fingerprint: Array.from(fp, (b) => b.toString(16).padStart(2, "0")).join(""),
    openNs: (t1 - t0) * 1e6,
    buildNs: (t2 - t1) * 1e6,
    snapshotNs: (t3 - t2) * 1e6,
    totalNs: (t3 - t0) * 1e6,
    rssBefore,
    rssAfter,
    peak,
    loaded: stats?.loaded,
    recordsRead: stats?.recordsRead,
  };
  if (save) await (index as { save?: () => Promise<void> }).save?.();
  index.close();
  await db.close();
  return result;
}

if (import.meta.main) {
  const rt = runtime();
  const [mode, dir, arg] = rt.args;
  let out: Record<string, unknown>;
  if (mode === "create" && dir !== undefined) out = await create(dir, Number(arg));
  else if (mode === "open" && dir !== undefined) out = await openAndIndex(rt, dir, arg === "save");
  else if (mode === "crash" && dir !== undefined) out = await crash(rt, dir, Number(arg));
  else throw new Error("usage: _open_big_child.ts create <dir> <n> | open <dir> [save] | crash <dir> <k>");
  rt.write(JSON.stringify(out) + "\n");
  rt.exit(0);
}
