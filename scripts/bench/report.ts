/**
 * What the runner prints once a suite is measured: with `--json` one
 * {@link BenchResult} per line and nothing else on stdout; else the figures
 * the suite measured itself, one line of speed-ups per case checked against
 * the targets and limits it declares, the suite's notes, and a warning when
 * the machine was busy (numbers then swing by tens of percent).
 *
 * @module
 */
import { availableParallelism, loadavg } from "node:os";
import type { BenchCase, BenchResult } from "./suite.ts";
import type { Measured } from "./measure.ts";

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

/** Every implementation of a case: those mitata times, then those the suite measured. */
function implsOf(c: BenchCase): string[] {
  return [...Object.keys(c.impls), ...Object.keys(c.measured ?? {})];
}

function formatRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** A figure in its unit: `12.3 µs`, `88.5 MB`, `10000`. */
export function formatFigure(value: number, unit: BenchCase["unit"] = "ns"): string {
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

/** What {@link printResults} prints besides the figures. */
export interface PrintOptions {
  /** One JSON object per line, and nothing else on stdout. */
  readonly json: boolean;
  /** Rounds the figures are the median of. */
  readonly rounds: number;
  /** The suite's notes (not with `json`). */
  readonly notes?: readonly string[];
}

/** Prints the figures of suite `suite`: JSON lines, or the table, the speed-ups and the notes. */
export function printResults(suite: string, measured: readonly Measured[], options: PrintOptions): void {
  if (options.json) {
    for (const m of measured) {
      for (const [impl, value] of m.ns) {
        const result: BenchResult = {
          suite,
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
    const basis = options.rounds > 1 ? `median of ${options.rounds} rounds' means` : "mean";
    console.log(
      `\nSpeed-ups (time of the other ÷ time of the subject, ${basis}; above 1× the subject is faster)`,
    );
    for (const l of lines) console.log(`  ${l}`);
    if (total > 0) console.log(`Targets met: ${met} of ${total}.`);
    for (const n of options.notes ?? []) console.log(`Note: ${n}`);
  }
  const busy = busyMachine();
  if (busy) (options.json ? console.error : console.log)(`Note: ${busy}`);
}
