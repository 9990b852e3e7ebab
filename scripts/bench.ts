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
 * This file is the runner's command line; its parts live in scripts/bench/:
 * suite.ts (the suite contract, re-exported here for the suites), measure.ts
 * (the mitata runs) and report.ts (what is printed).
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
 * import type { BenchSuite } from "./bench.ts";
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
import process from "node:process";
import type { BenchSuite } from "./bench/suite.ts";
import { measure } from "./bench/measure.ts";
import { printResults } from "./bench/report.ts";

export type {
  BenchCase,
  BenchResult,
  BenchSetup,
  BenchSuite,
  Limit,
  SetupContext,
  SpeedTarget,
} from "./bench/suite.ts";

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

    printResults(opts.suite, measured, { json: opts.json, rounds: opts.rounds, notes: setup.notes });
    for (const e of errors) console.error(`Failed: ${e}`);
    return errors.length ? 1 : 0;
  } finally {
    setup.dispose?.();
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
