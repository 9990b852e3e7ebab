/**
 * How the runner measures a suite's cases with mitata: a warm-up of every
 * implementation first (mitata's own is too short for the JIT to settle),
 * then `rounds` mitata runs that rotate which implementation goes first, and
 * per implementation the median of its rounds' means. An implementation that
 * fails in any round has no result.
 *
 * @module
 */
import process from "node:process";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import type { BenchCase } from "./suite.ts";

export interface Measured {
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

/** The implementation whose speed-ups are summarised (see {@link BenchCase.subject}). */
function subjectOf(c: BenchCase): string {
  return c.subject ?? Object.keys(c.impls)[0] ?? Object.keys(c.measured ?? {})[0];
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
export async function measure(
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
