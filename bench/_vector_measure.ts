/**
 * What the parts of the `vector` suite (bench/vector.bench.ts) share: the
 * sizes (full, or reduced with `LATTICE_BENCH_QUICK=1`), the HNSW
 * parameters every engine gets, the data sets, and the ways figures are
 * measured: recall@10 against the exact answer, the smallest ef of a ladder
 * reaching the target recall, queries per second in alternating rounds, and
 * progress lines for the long work. Not a suite.
 *
 * @module
 */
import process from "node:process";
import type { Metric } from "../core/kernels/types.ts";

// ---------------------------------------------------------------- sizes and parameters

/** `LATTICE_BENCH_QUICK=1`: reduced sizes for development (2k and 5k vectors in place of 10k and 100k). */
export const QUICK = process.env.LATTICE_BENCH_QUICK === "1";
/** Vectors of the small data sets. */
export const SMALL = QUICK ? 2_000 : 10_000;
/** Vectors of the large data set and of the database row. */
export const LARGE = QUICK ? 5_000 : 100_000;
/** Held-out queries per data set. */
export const QUERIES = 200;
export const SEED = 0x5eed_0014;
export const K = 10;
export const M = 16;
export const EF_CONSTRUCTION = 200;
export const TARGET_RECALL = 0.95;
export const EF_LADDER = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024];
/** Rounds of the QPS measurement (engines alternate within a round). */
export const QPS_ROUNDS = 3;
/** Shortest timed pass of one round: whole passes over the queries until this long. */
const ROUND_MS = 300;

/** `10k`, `100k`, `2k`. */
export function short(n: number): string {
  return n % 1000 === 0 ? `${n / 1000}k` : String(n);
}

// ---------------------------------------------------------------- data

/** One data set: the indexed rows and the held-out queries. */
export interface DataSet {
  /** E.g. `10k × 384 clustered cosine`. */
  readonly label: string;
  readonly dim: number;
  readonly metric: Metric;
  readonly rows: readonly Float32Array[];
  readonly queries: readonly Float32Array[];
}

// ---------------------------------------------------------------- progress

/** Progress lines on stderr, `[vector 12 s] …` (nothing with `--json`). */
export type Log = (line: string) => void;

export function makeLog(json: boolean): Log {
  const started = performance.now();
  return json
    ? () => {}
    : (line) => console.error(`[vector ${((performance.now() - started) / 1000).toFixed(0)} s] ${line}`);
}

/** A callback for a loop over `total` items that logs `what i/total` at most every 10 s. */
export function progress(log: Log, what: string, total: number): (done: number) => void {
  let last = performance.now();
  return (done) => {
    if ((done & 1023) !== 0) return;
    const now = performance.now();
    if (now - last < 10_000) return;
    last = now;
    log(`${what}: ${done.toLocaleString("en")}/${total.toLocaleString("en")}`);
  };
}

/** Forces a garbage collection where the runtime offers one (`deno task bench` exposes `gc`; Bun has `Bun.gc`). */
export function collectGarbage(): boolean {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.gc) g.gc();
  else if (g.Bun) g.Bun.gc(true);
  else return false;
  return true;
}

// ---------------------------------------------------------------- recall and speed

/** Searches query `i` of the data set at `ef`, returning ids (an exact engine ignores `ef`). */
export type Search = (query: number, ef: number) => ArrayLike<number>;

/** The exact top-k of every query, as sets of ids. */
export type Truth = readonly Set<number>[];

export function recallAt(search: Search, truth: Truth, ef: number): number {
  let hits = 0;
  for (let i = 0; i < truth.length; i++) {
    const ids = search(i, ef);
    for (let j = 0; j < ids.length; j++) if (truth[i].has(ids[j])) hits++;
  }
  return hits / (K * truth.length);
}

/** The smallest ef of the ladder reaching the target recall, or the largest and its recall if none does. */
export function efFor(search: Search, truth: Truth): { ef: number; recall: number; reached: boolean } {
  let recall = 0;
  for (const ef of EF_LADDER) {
    recall = recallAt(search, truth, ef);
    if (recall >= TARGET_RECALL) return { ef, recall, reached: true };
  }
  return { ef: EF_LADDER[EF_LADDER.length - 1], recall, reached: false };
}

/** Queries per second of one round: whole passes over the `queries` queries until {@link ROUND_MS}. */
export function qpsRound(search: Search, queries: number, ef: number): number {
  let n = 0, sink = 0;
  const t = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < queries; i++) sink += search(i, ef).length;
    n += queries;
    elapsed = performance.now() - t;
  } while (elapsed < ROUND_MS);
  if (sink < 0) throw new Error("unreachable");
  return n / (elapsed / 1000);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `fn` `times` times; the median of the milliseconds each took. */
export function medianMs(times: number, fn: () => void): number {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}
