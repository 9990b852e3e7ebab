/**
 * The `local` suite: the local database on durable storage (SQLite in a temp
 * directory), Lattice (`lattice`) beside GUN (`gun`, radisk in a temp
 * directory) and Yjs (`yjs`) in the same run.
 *
 * The cases, in groups of their own (figures are per operation unless said
 * otherwise):
 * - bench/_local_db.ts: awaited and concurrent durable puts, gets (cached and
 *   first read), list of 10k nodes: Lattice and GUN in this process;
 * - bench/_local_apply.ts: decoding a 10k-op batch (timed by mitata), apply
 *   of 1M foreign ops (in one batch, encoded, in batches of 10k) and of one
 *   op at a time: Lattice and Yjs, in fresh processes;
 * - bench/_local_open.ts: open of a 1M-field database, RSS after it and
 *   after reading its 100,000 nodes (GUN: holding as many), and what survives
 *   a SIGKILL after 10,000 acknowledged puts: in fresh processes.
 * bench/_local_measure.ts holds what they share (sizes, rows, timing, child
 * processes); bench/_local_child.ts and bench/_open_child.ts are the children.
 *
 * Everything here but the decoding is asynchronous, one-shot or in another
 * process, which mitata (as the runner drives it) cannot time, so setup
 * measures these figures itself and hands them to the runner as `measured`
 * values on the cases, with their targets as `limits`: each is the median of
 * several rounds' means where the case is cheap enough to repeat, else one
 * run (the 1M cases, the child processes). With `--json` the runner prints
 * them as its result lines (`ns`, or `bytes` / `count` for the memory and
 * durability cases).
 *
 * Targets (from the issue, on Deno): awaited durable put ≥ 10,000/s;
 * concurrent durable put ≥ 100,000/s; get ≥ 200,000/s; bulk apply ≥ 3× Yjs;
 * one-op-at-a-time apply ≥ 2× Yjs; RSS holding 100,000 small nodes ≤ 90 MB;
 * and every acknowledged Lattice put present after the kill.
 *
 * GUN never reaches a peer: no `peers` option, and multicast discovery, AXE
 * and its stats file are switched off; the suite checks that GUN opened no
 * socket (Linux: /proc/self/fd).
 *
 * Sizes can be lowered for a quick run with `LATTICE_BENCH_APPLY_OPS`
 * (default 1,000,000; the open and RSS cases use the same database, with a
 * tenth as many nodes).
 *
 * Run: `deno task bench local [--json]` or `bun scripts/bench.ts local [--json]`.
 *
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchCase, BenchSetup, BenchSuite, SetupContext } from "../scripts/bench.ts";
import { FIELDS_PER_NODE, loadGun, openSockets } from "./_local_child.ts";
import { APPLY_OPS, count, type LocalRun, ONE_AT_A_TIME, type Row } from "./_local_measure.ts";
import { measureReadsAndWrites } from "./_local_db.ts";
import { decodeCase, measureApply } from "./_local_apply.ts";
import { measureOpenAndDurability, OPEN_CASES } from "./_local_open.ts";

/** Measures the cases `ctx` wants, group by group, in a temp directory that `dispose` removes. */
async function setup(ctx: SetupContext): Promise<BenchSetup> {
  const filter = ctx.filter;
  const started = performance.now();
  const root = mkdtempSync(join(tmpdir(), "lattice-bench-local-"));
  const rows: Row[] = [];
  const notes: string[] = [];
  const socketsBefore = openSockets();
  let gunSockets: number | undefined = 0;
  const run: LocalRun = {
    root,
    wanted: (name) => filter === undefined || filter.test(name),
    log: ctx.json
      ? () => {}
      : (s) => console.error(`[local ${((performance.now() - started) / 1000).toFixed(0)} s] ${s}`),
    rows,
    notes,
    checkGunSockets() {
      const n = openSockets();
      if (n !== undefined && socketsBefore !== undefined) {
        gunSockets = Math.max(gunSockets ?? 0, n - socketsBefore);
      } else gunSockets = undefined;
    },
    gunChildSockets(n) {
      gunSockets = Math.max(gunSockets ?? 0, n);
    },
  };
  const Gun = await loadGun();
  let decode: BenchCase | undefined;

  try {
    await measureReadsAndWrites(run, Gun);
    decode = await decodeCase(run);
    const bulkDir = join(root, "bulk");
    await measureApply(run, bulkDir, OPEN_CASES.some((name) => run.wanted(name)));
    await measureOpenAndDurability(run, bulkDir);

    if (gunSockets === undefined) notes.push("gun sockets: not checked (no /proc/self/fd here)");
    else if (gunSockets > 0) {
      throw new Error(`GUN opened ${gunSockets} socket(s): it must not touch the network`);
    } else notes.push("gun opened no socket (checked in this process and in the GUN child processes)");
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }

  const elapsed = (performance.now() - started) / 1000;
  notes.push(
    `sizes: ${count(APPLY_OPS)} foreign ops (${
      count(APPLY_OPS / FIELDS_PER_NODE)
    } nodes × ${FIELDS_PER_NODE} fields), ` +
      `${count(ONE_AT_A_TIME)} applied one at a time; setup measured for ${elapsed.toFixed(0)} s, ` +
      `load average ${loadavg()[0].toFixed(1)}`,
  );
  for (const row of rows) for (const f of row.figures) notes.push(`how: ${row.name} / ${f.impl}: ${f.how}`);

  const measured: BenchCase[] = rows.map((row) => ({
    name: row.name,
    impls: {},
    measured: Object.fromEntries(row.figures.map((f) => [f.impl, f.value])),
    unit: row.unit,
    subject: row.subject,
    targets: row.targets,
    limits: row.limits,
  }));
  return {
    cases: [...measured, ...(decode ? [decode] : [])],
    notes,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The local suite. */
export const suite: BenchSuite = {
  description:
    "Local database on durable storage: Lattice vs GUN vs Yjs (puts, gets, list, apply, open, RSS)",
  setup,
};
