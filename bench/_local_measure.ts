/**
 * What the case groups of the `local` suite (bench/local.bench.ts) share:
 * the sizes every group uses, the {@link Row} a case's figures are gathered
 * in, the {@link LocalRun} one setup hands to each group, and the ways they
 * measure: awaited calls timed in rounds (the median round counts), and
 * fresh child processes (bench/_local_child.ts, bench/_open_child.ts).
 *
 * Before each timed section garbage is collected (`settle`), so that no
 * timed section pays for garbage an earlier one left (the 1M-op cases leave
 * hundreds of MB).
 *
 * @module
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runChild as runChildScript } from "./_child.ts";
import type { Limit } from "../scripts/bench.ts";
import { settle } from "./_local_child.ts";

// ---------------------------------------------------------------- sizes

/** Foreign ops applied in the bulk cases; also the fields of the open / RSS database. */
export const APPLY_OPS = sizeFromEnv("LATTICE_BENCH_APPLY_OPS", 1_000_000);
/** Ops applied one at a time (each a commit), Lattice and Yjs alike. */
export const ONE_AT_A_TIME = Math.min(20_000, APPLY_OPS);

/** A size from the environment (a multiple of 10,000, at least 20,000), else `fallback`. */
function sizeFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 20_000 || n % 10_000 !== 0) {
    throw new RangeError(`${name} must be a multiple of 10000, at least 20000; got ${raw}`);
  }
  return n;
}

// ---------------------------------------------------------------- figures

/** One implementation's figure in a case. */
export interface Figure {
  readonly impl: string;
  readonly value: number;
  /** How it was measured (printed as a note). */
  readonly how: string;
}

/** One case's figures, with its targets: becomes a `measured` case for the runner. */
export interface Row {
  readonly name: string;
  readonly unit: "ns" | "bytes" | "count";
  readonly figures: Figure[];
  readonly subject: string;
  readonly targets?: { over: string; atLeast: number }[];
  readonly limits?: Limit[];
}

/** What one setup of the suite hands to each group of cases. */
export interface LocalRun {
  /** The temporary directory of this run (removed by the suite). */
  readonly root: string;
  /** Whether case `name` is wanted (`--filter`). */
  wanted(name: string): boolean;
  /** A progress line on stderr (nothing with `--json`). */
  log(line: string): void;
  /** The cases measured so far, in the order they are reported. */
  readonly rows: Row[];
  /** Notes printed after the results. */
  readonly notes: string[];
  /** Counts the sockets GUN opened in this process so far (it must open none). */
  checkGunSockets(): void;
  /** Records the sockets GUN opened in a child process (it must open none). */
  gunChildSockets(sockets: number): void;
}

// ---------------------------------------------------------------- timing

/** The median of `xs`. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `op(i)` awaited one after another: `warm` calls first, then `rounds`
 * rounds of `ops` calls. Returns the median of the rounds' mean ns per call.
 */
export async function timeSequential(
  plan: { warm: number; rounds: number; ops: number },
  op: (i: number) => Promise<unknown>,
): Promise<{ ns: number; how: string }> {
  let i = 0;
  // Garbage is collected before the warm-up, not between rounds: right after a full collection
  // V8 runs this code 2–3× slower for a few thousand calls (measured on the cached get).
  await settle();
  for (let w = 0; w < plan.warm; w++) await op(i++);
  const means: number[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    const t0 = performance.now();
    for (let k = 0; k < plan.ops; k++) await op(i++);
    means.push(((performance.now() - t0) * 1e6) / plan.ops);
  }
  const how = plan.rounds > 1
    ? `median of ${plan.rounds} rounds' means, ${plan.ops} calls each, after ${plan.warm} warm-up calls`
    : `mean of ${plan.ops} calls after ${plan.warm} warm-up call${plan.warm === 1 ? "" : "s"}`;
  return { ns: median(means), how };
}

/** Times `rounds` calls of `round(r)` (each doing `ops` operations); the median of their ns per operation. */
export async function timeRounds(
  rounds: number,
  ops: number,
  round: (r: number) => Promise<unknown>,
): Promise<number> {
  const means: number[] = [];
  await settle(); // before the rounds, not between them (see timeSequential)
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await round(r);
    means.push(((performance.now() - t0) * 1e6) / ops);
  }
  return median(means);
}

// ---------------------------------------------------------------- child processes

const CHILD = fileURLToPath(new URL("./_local_child.ts", import.meta.url));
/** The child of the `open` mode: it loads nothing but Lattice (see its module doc). */
const OPEN_CHILD = fileURLToPath(new URL("./_open_child.ts", import.meta.url));

/** Longest a child process may take before it is killed and the suite fails. */
const CHILD_TIMEOUT_MS = 240_000;

/** Runs bench/_local_child.ts (bench/_open_child.ts for `open …`) in a fresh process: see bench/_child.ts. */
export function runChild(
  args: readonly string[],
  options: { killed?: boolean } = {},
): Promise<Record<string, unknown>> {
  return runChildScript(args[0] === "open" ? OPEN_CHILD : CHILD, args, {
    ...options,
    timeoutMs: CHILD_TIMEOUT_MS,
  });
}

// ---------------------------------------------------------------- data and names

/** The small node of the put and get cases. */
export function smallNode(i: number): Record<string, unknown> {
  return { name: `node ${i}`, n: i, ok: i % 2 === 0 };
}

/** `n` as in case names: `1M`, `10k`, `500`. */
export function count(n: number): string {
  return n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n);
}
