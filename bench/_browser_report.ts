/**
 * The report of the `browser` suite (bench/browser.bench.ts): one table of
 * time per op by phase and engine (median of the rounds, and their range),
 * the speed-ups of each Lattice engine over IndexedDB computed within each
 * round (the machine is shared: ratios inside a round are steadier than the
 * absolute figures), the targets of issue 15 checked against them, and the
 * cases handed to the runner (for `--json` and its ratio lines). Not a suite.
 *
 * @module
 */
import type { BenchCase } from "../scripts/bench.ts";
import type { BrowserEngine, BrowserRun, BrowserSizes } from "./_browser_page.ts";
import type { OpfsProbe } from "./_browser_probe.ts";

/** Targets of issue 15: OPFS over IndexedDB (idb-keyval). */
export const TARGET_AWAITED_PUT = 5;
export const TARGET_BULK_APPLY = 10;

/** The engines in table order; the last is the reference. */
export const ENGINES: readonly BrowserEngine[] = ["opfs", "memory", "idb"];

const NAMES: Record<BrowserEngine, string> = {
  opfs: "lattice opfs",
  memory: "lattice memory",
  idb: "idb-keyval",
};

interface Phase {
  readonly key: "awaitedMs" | "concurrentMs" | "getMs" | "applyMs";
  readonly label: (s: BrowserSizes) => string;
  readonly count: (s: BrowserSizes) => number;
  readonly target?: number;
}

const int = (n: number) => Math.round(n).toLocaleString("en");

export const PHASES: readonly Phase[] = [
  {
    key: "awaitedMs",
    label: (s) => `awaited put ×${int(s.awaited)}`,
    count: (s) => s.awaited,
    target: TARGET_AWAITED_PUT,
  },
  { key: "concurrentMs", label: (s) => `concurrent put ×${int(s.concurrent)}`, count: (s) => s.concurrent },
  { key: "getMs", label: (s) => `awaited get ×${int(s.gets)}`, count: (s) => s.gets },
  {
    key: "applyMs",
    label: (s) => `apply ${int(s.apply)} foreign ops (batches of 2,000)`,
    count: (s) => s.apply,
    target: TARGET_BULK_APPLY,
  },
];

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Per op, in µs under 1 ms and ms above. */
function perOp(ms: number): string {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(ms >= 0.1 ? 0 : 1)} µs`;
}

function markdown(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
}

/** rounds[r][engine]: the run of `engine` in round `r`. */
export type Rounds = readonly Readonly<Record<BrowserEngine, BrowserRun>>[];

/** The per-round speed-ups of `engine` over idb in `phase`. */
function ratios(rounds: Rounds, engine: BrowserEngine, phase: Phase): number[] {
  return rounds.map((r) => r.idb[phase.key] / r[engine][phase.key]);
}

const ratioCell = (xs: readonly number[]) =>
  `${median(xs).toFixed(1)}× (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

/** The table, the ratios and the target lines. */
export function report(rounds: Rounds, sizes: BrowserSizes): string[] {
  const head = ["phase", ...ENGINES.map((e) => `${NAMES[e]} per op (range)`), "opfs / idb", "memory / idb"];
  const body = PHASES.map((p) => {
    const n = p.count(sizes);
    const cells = ENGINES.map((e) => {
      const per = rounds.map((r) => r[e][p.key] / n);
      return `${perOp(median(per))} (${perOp(Math.min(...per))}–${perOp(Math.max(...per))})`;
    });
    return [
      p.label(sizes),
      ...cells,
      ratioCell(ratios(rounds, "opfs", p)),
      ratioCell(ratios(rounds, "memory", p)),
    ];
  });
  const lines = [
    "",
    `Browser storage (headless Chromium), ${rounds.length} rounds, engines alternating within each round`,
    "",
    ...markdown(head, body),
    "",
    "Per op: the phase's time over its op count, median of the rounds (range). Speed-ups: idb's time over the",
    "engine's, taken within each round, median (range). idb-keyval: awaited put/get = one `set`/`get`",
    "transaction each; concurrent = all `set`s pending at once; apply = one `setMany` per 2,000-op batch.",
    "",
  ];
  for (const p of PHASES.filter((p) => p.target !== undefined)) {
    const xs = ratios(rounds, "opfs", p);
    const met = median(xs) >= p.target!;
    lines.push(
      `target: ${p.label(sizes)}: lattice opfs ≥ ${p.target}× idb-keyval: ${ratioCell(xs)}: ${
        met ? "met" : "NOT met"
      }`,
    );
  }
  return [...lines, ""];
}

/** The cases handed to the runner: ns per op, median of the rounds. */
export function cases(rounds: Rounds, sizes: BrowserSizes): BenchCase[] {
  return PHASES.map((p) => ({
    name: `browser ${p.label(sizes)}`,
    impls: {},
    measured: Object.fromEntries(
      ENGINES.map((e) => [NAMES[e], median(rounds.map((r) => r[e][p.key])) * 1e6 / p.count(sizes)]),
    ),
    subject: NAMES.opfs,
    targets: p.target === undefined ? [] : [{ over: NAMES.idb, atLeast: p.target }],
  }));
}

/** What bounds an awaited OPFS put: SQLite's set-up in the worker and the browser's primitives. */
export function probeLines(p: OpfsProbe | undefined): string[] {
  if (p === undefined) return [];
  return [
    `OPFS worker: SQLite ${p.sqliteVersion}, journal_mode ${p.journalMode}, synchronous ${p.synchronous}. ` +
    `Primitives (mean of 200, one throwaway worker): a sync-access-handle write of 4 KiB growing the file ` +
    `${perOp(p.growMs)}, in place ${perOp(p.writeMs)}, in place + flush() ${perOp(p.writeFlushMs)}, ` +
    `of 64 KiB in place ${perOp(p.bigMs)}; worker message round trip ${perOp(p.roundTripMs)}; ` +
    `awaited put (mean of 100) ${perOp(p.putProcessMs)} with durability process (no flush per commit), ` +
    `${perOp(p.putPowerMs)} with power (flushed).`,
    "",
  ];
}
