/**
 * The `open_big` suite: restarting a node that holds many records. A
 * database of 2.3M records (230,000 nodes of 10 small fields; the size of the
 * issue's report, `LATTICE_BENCH_OPEN_RECORDS` to change it) is made once in
 * a temp directory, the fast way (bench/_open_big_child.ts `create`). Each
 * case then runs a fresh process that opens it and uses the sync index for
 * the first time, as `lattice serve` does when its network starts:
 * `open()`, `SyncIndex.build`, a snapshot, the fingerprint of everything.
 *
 * Cases (impl `lattice`):
 * - open + first sync-index use with no saved index: the index is built by
 *   reading and hashing every record (the first start of a database, or
 *   one whose saved index was refused); that process then saves the index,
 *   as a network does when it stops;
 * - the same with the saved index (every later start): the median of 3
 *   processes; target ≤ 1 s;
 * - the peak RSS of those processes (`VmHWM`, the kernel's high-water mark):
 *   target ≤ 200 MB with the saved index;
 * - open after a crash: a process changes as many records as a running node
 *   may change between two saves of its index (`SAVE_EVERY_RECORDS` or a
 *   sixteenth of the items, the larger) and exits without closing, as a
 *   SIGKILL leaves it; the next open loads the saved index and reads those
 *   records: same targets (1 s, 200 MB).
 *
 * Run: `deno task bench open_big [--json]` or `bun scripts/bench.ts open_big`.
 *
 * @module
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runChild as runChildScript } from "./_child.ts";
import { SAVE_EVERY_RECORDS } from "../core/sync/saved_index.ts";
import type { BenchCase, BenchSuite, SetupContext } from "../scripts/bench.ts";

const RECORDS = Number(process.env.LATTICE_BENCH_OPEN_RECORDS ?? 2_300_000);
/** Fresh processes opening with the saved index (the median is reported). */
const RUNS = 3;
const CHILD = fileURLToPath(new URL("./_open_big_child.ts", import.meta.url));
const CHILD_TIMEOUT_MS = 600_000;

const count = (n: number) => n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n);
const CASE_FULL = `open ${count(RECORDS)} records + first sync-index use, no saved index (full build)`;
const CASE_FULL_RSS = `peak RSS: open ${count(RECORDS)} records + first sync-index use, no saved index`;
const CASE_SAVED = `open ${count(RECORDS)} records + first sync-index use, saved index`;
const CASE_SAVED_RSS = `peak RSS: open ${count(RECORDS)} records + first sync-index use, saved index`;
/** Records a running node may change between two saves of its index. */
const UNSAVED = Math.max(SAVE_EVERY_RECORDS, RECORDS >>> 4);
const CASE_CRASH = `open ${count(RECORDS)} records + first sync-index use, after a crash ${count(UNSAVED)} ` +
  `records past the index's save`;
const CASE_CRASH_RSS = `peak RSS: ${CASE_CRASH}`;

interface OpenRun {
  items: number;
  fingerprint: string;
  openNs: number;
  buildNs: number;
  snapshotNs: number;
  totalNs: number;
  rssBefore: number;
  rssAfter: number;
  peak: number;
  loaded?: boolean;
  recordsRead?: number;
}

/** Runs bench/_open_big_child.ts in a fresh process (bench/_child.ts); resolves with its JSON line. */
function runChild(args: readonly string[]): Promise<Record<string, unknown>> {
  return runChildScript(CHILD, args, { timeoutMs: CHILD_TIMEOUT_MS });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns: number) => `${(ns / 1e6).toFixed(0)} ms`;
const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

function describeRun(r: OpenRun): string {
  return `open ${ms(r.openNs)} + build ${ms(r.buildNs)} (${r.loaded ? "loaded" : "full"}, ${r.recordsRead} ` +
    `records read) + snapshot ${ms(r.snapshotNs)}; RSS ${mb(r.rssBefore)} before, ${mb(r.rssAfter)} after, ` +
    `peak ${mb(r.peak)}`;
}

export const suite: BenchSuite = {
  description: "Restart of a node holding 2.3M records: open + first sync-index use (time, peak RSS)",
  async setup(context: SetupContext) {
    const wanted = (name: string) => !context.filter || context.filter.test(name);
    const log = (s: string) => context.json ? console.error(s) : console.log(s);
    const cases: BenchCase[] = [];
    const notes: string[] = [];
    const root = mkdtempSync(join(tmpdir(), "lattice-open-big-"));
    const dir = join(root, "db");
    try {
      log(`creating a ${count(RECORDS)}-record database (child process)`);
      const made = await runChild(["create", dir, String(RECORDS)]) as { ns: number };
      notes.push(
        `database of ${count(RECORDS)} records written in ${ms(made.ns)} (200k-op applyOps batches)`,
      );
      log("open with no saved index (child process)");
      const full = await runChild(["open", dir, "save"]) as unknown as OpenRun;
      if (full.items !== RECORDS) throw new Error(`the index holds ${full.items} items, not ${RECORDS}`);
      notes.push(`no saved index: ${describeRun(full)}`);
      if (wanted(CASE_FULL)) cases.push({ name: CASE_FULL, impls: {}, measured: { lattice: full.totalNs } });
      if (wanted(CASE_FULL_RSS)) {
        cases.push({ name: CASE_FULL_RSS, impls: {}, unit: "bytes", measured: { lattice: full.peak } });
      }
      if (wanted(CASE_SAVED) || wanted(CASE_SAVED_RSS)) {
        const runs: OpenRun[] = [];
        for (let r = 0; r < RUNS; r++) {
          log(`open with the saved index, run ${r + 1} of ${RUNS} (child process)`);
          const run = await runChild(["open", dir]) as unknown as OpenRun;
          if (run.fingerprint !== full.fingerprint) {
            throw new Error("the loaded index's fingerprint differs from the full build's");
          }
          runs.push(run);
          notes.push(`saved index, run ${r + 1}: ${describeRun(run)}`);
        }
        if (wanted(CASE_SAVED)) {
          cases.push({
            name: CASE_SAVED,
            impls: {},
            measured: { lattice: median(runs.map((r) => r.totalNs)) },
            limits: [{ atMost: 1e9 }],
          });
        }
        if (wanted(CASE_SAVED_RSS)) {
          cases.push({
            name: CASE_SAVED_RSS,
            impls: {},
            unit: "bytes",
            measured: { lattice: median(runs.map((r) => r.peak)) },
            limits: [{ atMost: 200e6 }],
          });
        }
      }
      if (wanted(CASE_CRASH) || wanted(CASE_CRASH_RSS)) {
        log(`change ${count(UNSAVED)} records and exit without closing (child process)`);
        await runChild(["crash", dir, String(UNSAVED)]);
        const runs: OpenRun[] = [];
        for (let r = 0; r < RUNS; r++) {
          // Each run opens a copy of the crashed directory: an open that reads that many
          // records saves the index again, so the next run would find nothing to read.
          log(`open after the crash, run ${r + 1} of ${RUNS} (child process)`);
          const copy = join(root, `crashed-${r}`);
          cpSync(dir, copy, { recursive: true });
          const run = await runChild(["open", copy]).finally(() =>
            rmSync(copy, { recursive: true, force: true })
          ) as unknown as OpenRun;
          if (run.items !== RECORDS) throw new Error(`the index holds ${run.items} items, not ${RECORDS}`);
          runs.push(run);
          notes.push(`after the crash, run ${r + 1}: ${describeRun(run)}`);
        }
        if (wanted(CASE_CRASH)) {
          cases.push({
            name: CASE_CRASH,
            impls: {},
            measured: { lattice: median(runs.map((r) => r.totalNs)) },
            limits: [{ atMost: 1e9 }],
          });
        }
        if (wanted(CASE_CRASH_RSS)) {
          cases.push({
            name: CASE_CRASH_RSS,
            impls: {},
            unit: "bytes",
            measured: { lattice: median(runs.map((r) => r.peak)) },
            limits: [{ atMost: 200e6 }],
          });
        }
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    return { cases, notes };
  },
};
