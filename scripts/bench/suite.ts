/**
 * The contract between the benchmark runner (scripts/bench.ts) and a suite
 * (`bench/<name>.bench.ts`): the suite exports a {@link BenchSuite}; its
 * setup builds the inputs outside any timing and returns {@link BenchCase}s,
 * each mapping implementation names to the function timed for one iteration,
 * or giving figures it measured itself (`measured`) where mitata cannot time
 * the work as the runner drives it (one-shot runs, other processes, memory).
 * Suites import these types through scripts/bench.ts.
 *
 * @module
 */

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
