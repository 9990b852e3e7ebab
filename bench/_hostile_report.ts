/**
 * The report of the `hostile` suite (bench/hostile.bench.ts): the targets of
 * issue 11, the figures of each attack's row (p50/p99 idle → attacked, RSS
 * growth, CPU), the SSE flood read against its control row, the table of the
 * closing note and the bench cases.
 *
 * @module
 */
import type { BenchCase } from "../scripts/bench.ts";
import type { Attack } from "./_hostile_attacks.ts";

/** A write not visible on the victim after this long is lost. */
export const VISIBLE_TIMEOUT_MS = 60_000;
/** The targets of issue 11. */
export const TARGET_P99_RATIO = 2;
export const TARGET_RSS_GROWTH = 100e6;
/** Attacks read against a control row too: the same load without the attack's own part. */
export const CONTROLS: Readonly<Record<string, string>> = {
  "SSE flood": "large writes (control for SSE flood)",
};
/** Most RSS growth an attack may add over its control row's. */
export const TARGET_RSS_OVER_CONTROL = 20e6;
export interface Phase {
  /** Write → visible latencies in ms, sorted; lost writes count as {@link VISIBLE_TIMEOUT_MS}. */
  readonly ms: number[];
  readonly lost: number;
  /** From the first write until the last was seen (or timed out). */
  readonly wallMs: number;
  /** The victim's CPU seconds over `wallMs`. */
  readonly cpuS: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export interface Row {
  readonly attack: Attack;
  readonly idle: Phase;
  readonly attacked: Phase;
  readonly rssIdle: number;
  readonly rssAttacked: number;
  readonly outcome: string;
  readonly notes: string[];
}
// ---------------------------------------------------------------- report

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

interface Figures {
  p50: [number, number];
  p99: [number, number];
  ratio: number;
  growth: number;
  met: boolean;
}

export function figures(r: Row): Figures {
  const p50: [number, number] = [percentile(r.idle.ms, 0.5), percentile(r.attacked.ms, 0.5)];
  const p99: [number, number] = [percentile(r.idle.ms, 0.99), percentile(r.attacked.ms, 0.99)];
  const ratio = p99[1] / p99[0];
  const growth = r.rssAttacked - r.rssIdle;
  const met = ratio <= TARGET_P99_RATIO && growth <= TARGET_RSS_GROWTH && r.attacked.lost === 0;
  return { p50, p99, ratio, growth, met };
}

interface OverControl {
  readonly row: Row;
  readonly control: Row;
  /** The attack's honest p99 over the control's. */
  readonly ratio: number;
  /** The attack's RSS growth minus the control's. */
  readonly growth: number;
  readonly met: boolean;
}

/** Each attack of {@link CONTROLS} measured with its control row, against it. */
export function overControls(rows: readonly Row[]): OverControl[] {
  const out: OverControl[] = [];
  for (const row of rows) {
    const control = rows.find((c) => c.attack.name === CONTROLS[row.attack.name]);
    if (!control) continue;
    const f = figures(row), c = figures(control);
    const ratio = f.p99[1] / c.p99[1], growth = f.growth - c.growth;
    out.push({
      row,
      control,
      ratio,
      growth,
      met: ratio <= TARGET_P99_RATIO && growth <= TARGET_RSS_OVER_CONTROL && row.attacked.lost === 0,
    });
  }
  return out;
}

/** The table of the issue: one row per attack, then what each attack saw. */
export function table(rows: readonly Row[]): string[] {
  const head = [
    "attack",
    "honest p50 (idle → attacked)",
    "honest p99 (idle → attacked)",
    "p99 ratio",
    "victim peak RSS MB (idle → attacked, +MB)",
    "victim CPU s (idle → attacked)",
    "target met?",
  ];
  const body = rows.map((r) => {
    const f = figures(r);
    const lost = r.attacked.lost ? `, ${r.attacked.lost} not seen in ${VISIBLE_TIMEOUT_MS / 1000} s` : "";
    return [
      r.attack.name,
      `${fmtMs(f.p50[0])} → ${fmtMs(f.p50[1])}`,
      `${fmtMs(f.p99[0])} → ${fmtMs(f.p99[1])}${lost}`,
      `${f.ratio.toFixed(1)}×`,
      `${mb(r.rssIdle)} → ${mb(r.rssAttacked)} (+${mb(f.growth)})`,
      `${r.idle.cpuS.toFixed(1)} → ${r.attacked.cpuS.toFixed(1)} (in ${
        (r.attacked.wallMs / 1000).toFixed(0)
      } s)`,
      f.met ? "yes" : "NO",
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    line(head),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...body.map(line),
    "",
    `Targets: honest p99 under attack ≤ ${TARGET_P99_RATIO}× idle, no honest write lost, victim peak RSS ≤ ` +
    `+${TARGET_RSS_GROWTH / 1e6} MB over the idle peak.`,
    ...overControls(rows).map((o) =>
      `${o.row.attack.name} against its control (${o.control.attack.name}): honest p99 ` +
      `${fmtMs(figures(o.row).p99[1])} vs ${fmtMs(figures(o.control).p99[1])} (${
        o.ratio.toFixed(1)
      }×), RSS growth ` +
      `${o.growth >= 0 ? "+" : ""}${mb(o.growth)} MB over the control's (targets ≤ ${TARGET_P99_RATIO}×, ≤ ` +
      `+${TARGET_RSS_OVER_CONTROL / 1e6} MB): ${o.met ? "met" : "NOT met"}`
    ),
    ...rows.flatMap((r) => [
      `- ${r.attack.name}: ${r.attack.what}; ${r.outcome}`,
      ...r.notes.map((n) => `  note: ${n}`),
    ]),
  ];
}

export function cases(r: Row): BenchCase[] {
  const f = figures(r);
  const name = r.attack.name;
  return [
    { name: `${name}: honest p50`, impls: {}, measured: { attacked: f.p50[1] * 1e6, idle: f.p50[0] * 1e6 } },
    {
      name: `${name}: honest p99`,
      impls: {},
      measured: { attacked: f.p99[1] * 1e6, idle: f.p99[0] * 1e6 },
      targets: [{ over: "idle", atLeast: 1 / TARGET_P99_RATIO }],
    },
    {
      name: `${name}: victim peak RSS`,
      impls: {},
      unit: "bytes",
      measured: { attacked: r.rssAttacked, idle: r.rssIdle },
    },
    {
      name: `${name}: victim peak RSS growth`,
      impls: {},
      unit: "bytes",
      measured: { attacked: f.growth },
      limits: [{ atMost: TARGET_RSS_GROWTH }],
    },
    {
      name: `${name}: victim CPU`,
      impls: {},
      measured: { attacked: r.attacked.cpuS * 1e9, idle: r.idle.cpuS * 1e9 },
    },
  ];
}

export function controlCases(o: OverControl): BenchCase[] {
  const name = o.row.attack.name;
  return [
    {
      name: `${name}: honest p99 against its control`,
      impls: {},
      measured: { attacked: figures(o.row).p99[1] * 1e6, control: figures(o.control).p99[1] * 1e6 },
      targets: [{ over: "control", atLeast: 1 / TARGET_P99_RATIO }],
    },
    {
      name: `${name}: victim peak RSS growth over its control's`,
      impls: {},
      unit: "bytes",
      measured: { attacked: o.growth },
      limits: [{ atMost: TARGET_RSS_OVER_CONTROL }],
    },
  ];
}
