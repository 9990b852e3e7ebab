/**
 * Benchmark runner. `deno task bench <suite> [--json] [--filter <regexp>]
 * [--rounds <n>]`, or `bun scripts/bench.ts <suite> ...`, runs the suite in
 * `bench/<suite>.bench.ts`.
 *
 * A suite module exports `suite`, a {@link BenchSuite}. Its `setup` builds every
 * input outside the timed code and returns cases; each case maps implementation
 * names (`wasm`, `wasm-scalar`, `js`, or a peer package such as `hash-wasm`) to
 * the function timed for one iteration. The runner does the mitata plumbing.
 * Figures mitata cannot take as the runner drives it (one-shot runs, work in
 * other processes, memory) a case gives as `measured` values instead.
 *
 * Output: mitata's table, then one line per case with the speed-ups of the
 * case's subject over every other implementation, checked against the targets
 * the case declares. With `--json`, only one JSON object per line:
 * `{"suite","case","impl","ns"}`, `ns` being the mean time of one iteration in
 * nanoseconds (with `--rounds n`, the median of the n rounds' means); a case
 * measuring memory or a count gives `bytes` or `count` in place of `ns`.
 *
 * @example
 * ```ts ignore
 * // bench/demo.bench.ts
 * import type { BenchSuite } from "../scripts/bench.ts";
 * export const suite: BenchSuite = {
 *   description: "Array copies",
 *   setup: () => {
 *     const a = new Float64Array(1024);
 *     return {
 *       cases: [{
 *         name: "copy 1k f64",
 *         impls: { slice: () => a.slice(), from: () => Float64Array.from(a) },
 *         targets: [{ over: "from", atLeast: 2 }],
 *       }],
 *     };
 *   },
 * };
 * ```
 *
 * @module
 */
import { readdirSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import process from "node:process";
import { bench, do_not_optimize, group, run, summary } from "mitata";

/** A benchmark suite: what `bench/<name>.bench.ts` exports as `suite`. */
export interface BenchSuite {
  /** One line saying what the suite measures (shown by `--help`). */
  readonly description: string;
  /** Builds the inputs and implementations, outside any timing. */
  setup(context: SetupContext): BenchSetup | Promise<BenchSetup>;
}

/** What the runner tells a suite's setup, so that one measuring in setup can skip unwanted cases. */
export interface SetupContext {
  /** Whether only JSON result lines will be printed (setup should print nothing to stdout). */
  readonly json: boolean;
  /** `--filter`: only the cases whose name matches will be reported. */
  readonly filter?: RegExp;
}

/** What a suite's setup hands to the runner. */
export interface BenchSetup {
  /** The cases, run in this order. */
  readonly cases: readonly BenchCase[];
  /** Lines printed after the ratio summary (not with `--json`), e.g. which build an impl is. */
  readonly notes?: readonly string[];
  /** Frees what setup allocated; called once after the run. */
  dispose?(): void;
}

/** One measured operation, done by several implementations. */
export interface BenchCase {
  /** Case name, as in the table and the JSON `case` field, e.g. `"closest-20 of 10k"`. */
  readonly name: string;
  /**
   * Implementation name → one timed iteration. Return the result so that the
   * work cannot be optimised away. Names: `wasm`, `wasm-scalar`, `js`, or the
   * peer's package name. A returned promise is awaited, and the time includes
   * it settling.
   */
  readonly impls: Readonly<Record<string, () => unknown>>;
  /**
   * Implementation name → a figure the suite measured itself, per iteration
   * in the case's `unit`: for what mitata cannot time here (one-shot runs,
   * work in another process, memory). Reported with mitata's means.
   */
  readonly measured?: Readonly<Record<string, number>>;
  /** What the figures are: `ns` (default) per iteration, `bytes`, or a `count`. */
  readonly unit?: "ns" | "bytes" | "count";
  /** The implementation whose speed-ups are summarised; defaults to the first of `impls`, then of `measured`. */
  readonly subject?: string;
  /** Speed-ups the subject must reach over other implementations (for `bytes`: how much less it may hold). */
  readonly targets?: readonly SpeedTarget[];
  /** Absolute bounds on the subject's own figure, in the case's unit. */
  readonly limits?: readonly Limit[];
}

/** A bound on the subject's figure: e.g. `{ atMost: 100_000 }` ns is at least 10,000 per second. */
export interface Limit {
  readonly atMost?: number;
  readonly atLeast?: number;
}

/** A required speed-up: the subject takes at most `1 / atLeast` of the time of `over`. */
export interface SpeedTarget {
  /** The implementation compared against. */
  readonly over: string;
  /** Minimum `ns(over) / ns(subject)`. */
  readonly atLeast: number;
}

/** One measurement, as printed by `--json`. */
export interface BenchResult {
  readonly suite: string;
  readonly case: string;
  readonly impl: string;
  /** Mean nanoseconds per iteration (with several rounds, the median of the rounds' means). */
  readonly ns?: number;
  /** For a case with unit `bytes`, in place of `ns`. */
  readonly bytes?: number;
  /** For a case with unit `count`, in place of `ns`. */
  readonly count?: number;
}

const BENCH_DIR = new URL("../bench/", import.meta.url);
const SUITE_FILE = /^([a-z0-9][a-z0-9_-]*)\.bench\.ts$/;

/** Names of the suites in `bench/`, sorted. */
function listSuites(): string[] {
  return readdirSync(BENCH_DIR)
    .map((f) => SUITE_FILE.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

function usage(suites: readonly string[]): string {
  return [
    "Usage: deno task bench <suite> [--json] [--filter <regexp>] [--rounds <n>]",
    "       bun scripts/bench.ts <suite> [--json] [--filter <regexp>] [--rounds <n>]",
    "",
    "Runs bench/<suite>.bench.ts with mitata, then prints the speed-ups its cases declare.",
    "  --json             print only one JSON object per line: {suite, case, impl, ns}, ns being the",
    "                     mean time of one iteration in nanoseconds",
    "  --filter <regexp>  run only the cases whose name matches",
    "  --rounds <n>       run everything n times, rotating the order of the impls, and report the",
    "                     median of the n means (default 1); steadier numbers on a busy machine",
    "  -h, --help         show this help",
    "",
    `Suites: ${suites.length ? suites.join(", ") : "(none found in bench/)"}`,
  ].join("\n");
}

/** A command-line mistake: reported with the usage and exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

interface Options {
  suite: string;
  json: boolean;
  filter: RegExp | undefined;
  rounds: number;
}

function parseArgs(args: readonly string[]): Options | "help" {
  let suite: string | undefined;
  let json = false;
  let filter: RegExp | undefined;
  let rounds = 1;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") return "help";
    if (a === "--json") json = true;
    else if (a === "--filter" || a.startsWith("--filter=")) {
      const src = a === "--filter" ? args[++i] : a.slice("--filter=".length);
      if (src === undefined) throw new UsageError("--filter needs a regular expression");
      try {
        filter = new RegExp(src);
      } catch (e) {
        throw new UsageError(
          `--filter ${JSON.stringify(src)} is not a regular expression: ${(e as Error).message}`,
        );
      }
    } else if (a === "--rounds" || a.startsWith("--rounds=")) {
      const src = a === "--rounds" ? args[++i] : a.slice("--rounds=".length);
      rounds = Number(src);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
        throw new UsageError(`--rounds must be an integer from 1 to 100, got ${src}`);
      }
    } else if (a.startsWith("-")) throw new UsageError(`Unknown option ${a}`);
    else if (suite !== undefined) throw new UsageError(`Only one suite at a time: got ${suite} and ${a}`);
    else suite = a;
  }
  if (suite === undefined) throw new UsageError("Missing the suite to run");
  return { suite, json, filter, rounds };
}

async function loadSuite(name: string): Promise<BenchSuite> {
  const mod = await import(new URL(`${name}.bench.ts`, BENCH_DIR).href);
  const suite = mod.suite as BenchSuite | undefined;
  if (typeof suite?.setup !== "function") {
    throw new TypeError(`bench/${name}.bench.ts must export \`suite\`, a BenchSuite with a setup function`);
  }
  return suite;
}

interface Measured {
  readonly case: BenchCase;
  readonly subject: string;
  /** Mean ns per iteration by impl (median over rounds), for the impls that never failed. */
  readonly ns: Map<string, number>;
}

/** Warm-up time per implementation before anything is measured. */
const WARM_UP_MS = 100;

/**
 * Calls every implementation for a while before mitata starts. mitata warms
 * each benchmark up only briefly, so without this the first implementation of
 * a case (the subject of the ratios) is timed partly before the JIT settles:
 * two copies of the same code measured 1.4× apart.
 */
async function warmUp(cases: readonly BenchCase[]): Promise<void> {
  for (const c of cases) {
    for (const fn of Object.values(c.impls)) {
      const start = performance.now();
      for (let i = 0; i < 10_000 && (i < 3 || performance.now() - start < WARM_UP_MS); i++) {
        const r = fn();
        do_not_optimize(r instanceof Promise ? await r : r);
      }
    }
  }
}

/**
 * The function mitata times for `fn`. mitata awaits an iteration only when
 * the function returns a promise, so an async impl must hand its promise
 * over rather than `do_not_optimize`'s undefined: else mitata times only the
 * synchronous start of the work and leaves the rest running.
 */
function timed(fn: () => unknown): () => unknown {
  let async: boolean | undefined;
  return () => {
    const r = fn();
    async ??= r instanceof Promise;
    if (!async) return do_not_optimize(r);
    return (r as Promise<unknown>).then(do_not_optimize);
  };
}

/**
 * One mitata run over the cases: the mean ns per iteration of every impl that
 * ran, by case. Prints mitata's table unless `quiet`. In round `round` each
 * case's impls start at a rotated position, so that over several rounds no
 * impl is always the one measured first.
 */
async function runRound(
  cases: readonly BenchCase[],
  quiet: boolean,
  round: number,
): Promise<{ ns: Map<BenchCase, Map<string, number>>; errors: string[] }> {
  const order: { c: BenchCase; impl: string }[] = [];
  for (const c of cases) {
    const impls = Object.keys(c.impls);
    const turn = round % impls.length;
    const subject = subjectOf(c);
    group(c.name, () => {
      summary(() => {
        for (const impl of [...impls.slice(turn), ...impls.slice(0, turn)]) {
          const fn = c.impls[impl];
          const b = bench(impl, timed(fn));
          if (impl === subject) b.baseline(true);
          order.push({ c, impl });
        }
      });
    });
  }

  const { benchmarks } = await run({
    format: quiet ? "quiet" : "mitata",
    throw: false,
    // Colour codes only on a terminal, so that a table piped to a file stays readable.
    ...(process.stdout.isTTY ? {} : { colors: false }),
  });
  // mitata runs every trial in registration order (no mitata filter is set),
  // so the trials line up with `order`; the alias check guards that assumption.
  if (benchmarks.length !== order.length) {
    throw new Error(`mitata returned ${benchmarks.length} results for ${order.length} benchmarks`);
  }
  const ns = new Map<BenchCase, Map<string, number>>(cases.map((c) => [c, new Map()]));
  const errors: string[] = [];
  benchmarks.forEach((trial, i) => {
    const { c, impl } = order[i];
    if (trial.alias !== impl) throw new Error(`mitata result ${i} is ${trial.alias}, expected ${impl}`);
    const r = trial.runs[0];
    if (r.stats) ns.get(c)!.set(impl, r.stats.avg);
    else errors.push(`${c.name} / ${impl}: ${(r.error as Error)?.message ?? String(r.error)}`);
  });
  return { ns, errors };
}

function subjectOf(c: BenchCase): string {
  return c.subject ?? Object.keys(c.impls)[0] ?? Object.keys(c.measured ?? {})[0];
}

/** Every implementation of a case: those mitata times, then those the suite measured. */
function implsOf(c: BenchCase): string[] {
  return [...Object.keys(c.impls), ...Object.keys(c.measured ?? {})];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Measures the cases over `rounds` mitata runs. An impl's result is the median
 * of its per-round means (with one round, simply its mean); an impl that fails
 * in any round has no result.
 */
async function measure(
  cases: readonly BenchCase[],
  quiet: boolean,
  rounds: number,
): Promise<{ measured: Measured[]; errors: string[] }> {
  const timedCases = cases.filter((c) => Object.keys(c.impls).length > 0);
  await warmUp(timedCases);
  const samples = new Map<BenchCase, Map<string, number[]>>(cases.map((c) => [c, new Map()]));
  const failed = new Set<string>();
  const errors: string[] = [];
  for (let round = 0; round < (timedCases.length ? rounds : 0); round++) {
    if (!quiet && rounds > 1) console.log(`${round ? "\n" : ""}Round ${round + 1} of ${rounds}`);
    const result = await runRound(timedCases, quiet, round);
    errors.push(...result.errors);
    for (const c of timedCases) {
      for (const impl of Object.keys(c.impls)) {
        const ns = result.ns.get(c)!.get(impl);
        if (ns === undefined) failed.add(`${c.name}\0${impl}`);
        else samples.get(c)!.set(impl, [...samples.get(c)!.get(impl) ?? [], ns]);
      }
    }
  }
  const measured = cases.map((c) => ({
    case: c,
    subject: subjectOf(c),
    ns: new Map([
      ...Object.keys(c.impls)
        .filter((impl) => !failed.has(`${c.name}\0${impl}`))
        .map((impl) => [impl, median(samples.get(c)!.get(impl)!)] as const),
      ...Object.entries(c.measured ?? {}),
    ]),
  }));
  return { measured, errors };
}

/**
 * A warning when other processes competed for the CPUs during the run (the
 * one-minute load average, less this benchmark's own thread, above half the
 * CPUs), else undefined: such numbers swing by tens of percent.
 */
function busyMachine(): string | undefined {
  const [load] = loadavg();
  const cpus = availableParallelism();
  if (load - 1 < cpus / 2) return undefined;
  return `the machine was busy (load average ${load.toFixed(1)} on ${cpus} CPUs): ` +
    "expect noisy numbers; rerun on a quiet machine or with --rounds";
}

function formatRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** A figure in its unit: `12.3 µs`, `88.5 MB`, `10000`. */
function formatFigure(value: number, unit: BenchCase["unit"] = "ns"): string {
  if (unit === "bytes") return `${(value / 1e6).toFixed(1)} MB`;
  if (unit === "count") return String(value);
  for (const [scale, suffix] of [[1e9, "s"], [1e6, "ms"], [1e3, "µs"]] as const) {
    if (value >= scale) return `${(value / scale).toFixed(2)} ${suffix}`;
  }
  return `${value.toFixed(2)} ns`;
}

/** The figures the suite measured itself, as lines for the table. */
function measuredTable(measured: readonly Measured[]): string[] {
  const lines: string[] = [];
  for (const m of measured) {
    const own = Object.keys(m.case.measured ?? {});
    if (own.length === 0) continue;
    lines.push(`  ${m.case.name}`);
    for (const impl of own) {
      lines.push(`    ${impl.padEnd(14)} ${formatFigure(m.ns.get(impl)!, m.case.unit)}`);
    }
  }
  return lines.length ? ["", "Measured by the suite (not by mitata):", ...lines] : [];
}

/**
 * One line per case: `closest-20 of 10k: wasm 2.71× js [target ≥ 2.5×: met], 40.1× k-bucket`.
 * Returns the lines and how many targets were met out of how many.
 */
function ratioSummary(measured: readonly Measured[]): { lines: string[]; met: number; total: number } {
  const lines: string[] = [];
  let met = 0;
  let total = 0;
  for (const m of measured) {
    const own = m.ns.get(m.subject);
    const targets = m.case.targets ?? [];
    const limits = m.case.limits ?? [];
    total += targets.length + limits.length;
    if (own === undefined) {
      lines.push(
        `${m.case.name}: no ${m.subject} result to compare${targets.length ? " (targets not met)" : ""}`,
      );
      continue;
    }
    const parts: string[] = [];
    // A figure the suite measured is shown itself, followed by its check against the case's limits.
    const head: string[] = m.case.measured?.[m.subject] !== undefined ? [formatFigure(own, m.case.unit)] : [];
    for (const l of limits) {
      const ok = (l.atMost === undefined || own <= l.atMost) && (l.atLeast === undefined || own >= l.atLeast);
      if (ok) met++;
      const bounds = [
        l.atMost !== undefined ? `≤ ${formatFigure(l.atMost, m.case.unit)}` : "",
        l.atLeast !== undefined ? `≥ ${formatFigure(l.atLeast, m.case.unit)}` : "",
      ];
      head.push(`[target ${bounds.filter(Boolean).join(", ")}: ${ok ? "met" : "MISSED"}]`);
    }
    if (head.length > 0) parts.push(head.join(" "));
    for (const impl of implsOf(m.case)) {
      if (impl === m.subject || m.case.unit === "count") continue;
      const other = m.ns.get(impl);
      const target = targets.find((t) => t.over === impl);
      if (other === undefined) {
        parts.push(`${impl} failed${target ? ` [target ≥ ${target.atLeast}×: not measured]` : ""}`);
        continue;
      }
      const ratio = other / own;
      let part = `${formatRatio(ratio)} ${impl}`;
      if (target) {
        const ok = ratio >= target.atLeast;
        if (ok) met++;
        part += ` [target ≥ ${target.atLeast}×: ${ok ? "met" : "MISSED"}]`;
      }
      parts.push(part);
    }
    for (const t of targets) {
      if (!implsOf(m.case).includes(t.over)) {
        parts.push(`[target ≥ ${t.atLeast}× over ${t.over}: ${t.over} not run]`);
      }
    }
    lines.push(`${m.case.name}: ${m.subject} ${parts.join(", ")}`);
  }
  return { lines, met, total };
}

async function main(args: readonly string[]): Promise<number> {
  const suites = listSuites();
  let opts: Options | "help";
  try {
    opts = parseArgs(args);
    if (opts !== "help" && !suites.includes(opts.suite)) {
      throw new UsageError(`Unknown suite ${JSON.stringify(opts.suite)}`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${e.message}.\n\n${usage(suites)}`);
    return 2;
  }
  if (opts === "help") {
    console.log(usage(suites));
    for (const name of suites) {
      const description = await loadSuite(name).then(
        (s) => s.description,
        (e) => `(cannot load: ${e.message})`,
      );
      console.log(`  ${name.padEnd(12)} ${description}`);
    }
    return 0;
  }

  const suite = await loadSuite(opts.suite);
  const setup = await suite.setup({ json: opts.json, filter: opts.filter });
  try {
    const filter = opts.filter;
    const cases = filter ? setup.cases.filter((c) => filter.test(c.name)) : setup.cases;
    if (cases.length === 0) {
      console.error(
        `No case of suite ${opts.suite} matches ${filter}: ${setup.cases.map((c) => c.name).join("; ")}`,
      );
      return 2;
    }
    const { measured, errors } = await measure(cases, opts.json, opts.rounds);

    if (opts.json) {
      for (const m of measured) {
        for (const [impl, value] of m.ns) {
          const result: BenchResult = {
            suite: opts.suite,
            case: m.case.name,
            impl,
            [m.case.unit ?? "ns"]: Math.round(value * 1000) / 1000,
          };
          console.log(JSON.stringify(result));
        }
      }
    } else {
      for (const l of measuredTable(measured)) console.log(l);
      const { lines, met, total } = ratioSummary(measured);
      const basis = opts.rounds > 1 ? `median of ${opts.rounds} rounds' means` : "mean";
      console.log(
        `\nSpeed-ups (time of the other ÷ time of the subject, ${basis}; above 1× the subject is faster)`,
      );
      for (const l of lines) console.log(`  ${l}`);
      if (total > 0) console.log(`Targets met: ${met} of ${total}.`);
      for (const n of setup.notes ?? []) console.log(`Note: ${n}`);
    }
    const busy = busyMachine();
    if (busy) (opts.json ? console.error : console.log)(`Note: ${busy}`);
    for (const e of errors) console.error(`Failed: ${e}`);
    return errors.length ? 1 : 0;
  } finally {
    setup.dispose?.();
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
