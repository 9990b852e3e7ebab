/**
 * The report of the `vector` suite (bench/vector.bench.ts): one table per
 * data set (build, ef needed for recall@10 ≥ 0.95, queries per second,
 * bytes per vector, restore), the database row, the targets of issue 14
 * checked against the figures, and the cases handed to the runner (for
 * `--json` and its ratio lines). Not a suite.
 *
 * @module
 */
import type { BenchCase } from "../scripts/bench.ts";
import type { Restore } from "./_vector_engines.ts";
import type { DbFigures } from "./_vector_db.ts";
import { median, TARGET_RECALL } from "./_vector_measure.ts";

/** Targets of issue 14 (on this machine, at recall@10 ≥ 0.95). */
export const TARGET_QPS_OVER_WASM = 1.5;
export const TARGET_BUILD_OVER_WASM = 0.5;
export const TARGET_EXACT_MS = 0.4;

/** One engine's figures on one data set. */
export interface Row {
  readonly engine: string;
  readonly kind: "hnsw" | "exact";
  /** Why it did not run: not available here, or (`skipped`) left out of this data set. */
  readonly missing?: string;
  readonly skipped?: boolean;
  readonly buildMs?: number;
  /** The ef searched at (hnsw), its recall@10, and whether it reached the target. */
  readonly ef?: number;
  readonly recall?: number;
  readonly reached?: boolean;
  /** Queries per second, one figure per round. */
  readonly qps: number[];
  readonly bytes?: { readonly perVector: number; readonly how: string };
  readonly restore?: Restore;
  /** Said under the table. */
  readonly note?: string;
}

export interface SetResult {
  readonly label: string;
  readonly rows: Row[];
  /** Whether the exact-search target (top-10 over 10k × 384) is about this data set. */
  readonly exactTarget: boolean;
}

const int = (n: number) => Math.round(n).toLocaleString("en");
const secs = (ms: number) =>
  ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`;
const msPerQuery = (qps: number) => `${(1000 / qps).toFixed(3)} ms`;

function markdown(head: string[], body: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
}

function efCell(r: Row): string {
  if (r.kind === "exact") return `exact (${r.recall === undefined ? "—" : r.recall.toFixed(3)})`;
  if (r.ef === undefined || r.recall === undefined) return "—";
  return `${r.ef} (${r.recall.toFixed(3)}${r.reached ? "" : ", NOT reached"})`;
}

function restoreCell(r: Row): string {
  if (r.restore === undefined) return "—";
  return "na" in r.restore ? "n/a" : secs(r.restore.ms);
}

/** The table of one data set, with what each figure is under it. */
export function setTable(s: SetResult): string[] {
  const head = [
    "engine",
    "build",
    `ef for recall@10 ≥ ${TARGET_RECALL} (recall)`,
    "QPS (median; range of rounds)",
    "per query",
    "bytes/vector",
    "restore",
  ];
  const body = s.rows.map((r) => {
    if (r.missing) return [r.engine, r.skipped ? "skipped" : "not available", "—", "—", "—", "—", "—"];
    const q = median(r.qps);
    return [
      r.engine,
      r.buildMs === undefined ? "—" : secs(r.buildMs),
      efCell(r),
      `${int(q)} (${int(Math.min(...r.qps))}–${int(Math.max(...r.qps))})`,
      msPerQuery(q),
      r.bytes ? int(r.bytes.perVector) : "—",
      restoreCell(r),
    ];
  });
  const notes = s.rows.flatMap((r) => {
    if (r.missing) return [`- ${r.engine}: ${r.skipped ? "skipped" : "not available"}: ${r.missing}`];
    const parts = [
      r.bytes && `bytes: ${r.bytes.how}`,
      r.restore && ("na" in r.restore ? `restore n/a: ${r.restore.na}` : `restore: ${r.restore.how}`),
      r.note,
    ].filter(Boolean);
    return parts.length ? [`- ${r.engine}: ${parts.join("; ")}`] : [];
  });
  return [`### ${s.label}`, "", ...markdown(head, body), "", ...notes, ""];
}

/** The database row's table. */
export function dbTable(label: string, d: DbFigures): string[] {
  const body = [
    ["without a saved graph (rebuilt in the background)", secs(d.unsaved.openMs), secs(d.unsaved.readyMs)],
    ["with the graph saved at close (restored)", secs(d.saved.openMs), secs(d.saved.readyMs)],
  ];
  return [
    `### database: ${label}, SQLite, declared index (open() of mod.ts)`,
    "",
    ...markdown(["open", "open() resolved", `index state "ready"`], body),
    "",
    `- ${int(d.count)} vectors written by concurrent puts in ${
      secs(d.writeMs)
    }, before the index was declared; ` +
    `the close after the rebuild (which saved the graph) took ${secs(d.closeMs)}`,
    `- index state when open() resolved: ${d.unsaved.stateAtOpen} without a save, ${d.saved.stateAtOpen} with it; ` +
    "while building, searches are exact scans",
    "",
  ];
}

const find = (s: SetResult, engine: string) => s.rows.find((r) => r.engine === engine && !r.missing);

/** The targets of issue 14 and the reference ratios, as lines. */
export function targetLines(sets: readonly SetResult[]): string[] {
  const lines = ["### targets (issue 14)", ""];
  for (const s of sets) {
    const l = find(s, "lattice-wasm"), w = find(s, "hnswlib-wasm"), n = find(s, "hnswlib-node");
    if (l && w) {
      const qps = median(l.qps) / median(w.qps), build = l.buildMs! / w.buildMs!;
      lines.push(
        `- ${s.label}: lattice-wasm QPS ${qps.toFixed(2)}× hnswlib-wasm's at recall@10 ≥ ${TARGET_RECALL} ` +
          `(target ≥ ${TARGET_QPS_OVER_WASM}×: ${
            qps >= TARGET_QPS_OVER_WASM && l.reached ? "met" : "NOT met"
          }); ` +
          `build ${build.toFixed(2)}× hnswlib-wasm's (target ≤ ${TARGET_BUILD_OVER_WASM}×: ${
            build <= TARGET_BUILD_OVER_WASM ? "met" : "NOT met"
          })`,
      );
    }
    if (l && n) {
      lines.push(
        `- ${s.label}: reference, lattice-wasm vs hnswlib-node (native): QPS ${
          (median(l.qps) / median(n.qps)).toFixed(2)
        }×, build time ${(l.buildMs! / n.buildMs!).toFixed(2)}× (no target here)`,
      );
    }
    if (s.exactTarget) {
      for (const name of ["exact-simd", "lattice-wasm searchExact"]) {
        const e = find(s, name);
        if (!e) continue;
        const ms = 1000 / median(e.qps);
        lines.push(
          `- ${s.label}: exact top-10 by ${name} ${
            ms.toFixed(3)
          } ms per query (target ≤ ${TARGET_EXACT_MS} ms: ${ms <= TARGET_EXACT_MS ? "met" : "NOT met"})`,
        );
      }
    }
  }
  return [...lines, ""];
}

/** The cases handed to the runner: figures the suite measured (`measured`), with the targets as targets and limits. */
export function setCases(s: SetResult): BenchCase[] {
  const ran = s.rows.filter((r) => !r.missing);
  const of = (rows: Row[], f: (r: Row) => number | undefined) =>
    Object.fromEntries(rows.flatMap((r) => {
      const v = f(r);
      return v === undefined ? [] : [[r.engine, v]];
    }));
  const hnsw = ran.filter((r) => r.kind === "hnsw"), exact = ran.filter((r) => r.kind === "exact");
  const wasm = hnsw.some((r) => r.engine === "hnswlib-wasm");
  const subject = hnsw.some((r) => r.engine === "lattice-wasm") ? "lattice-wasm" : undefined;
  const cases: BenchCase[] = [
    {
      name: `build ${s.label}`,
      impls: {},
      measured: of(hnsw, (r) => r.buildMs === undefined ? undefined : r.buildMs * 1e6),
      subject,
      targets: wasm ? [{ over: "hnswlib-wasm", atLeast: 1 / TARGET_BUILD_OVER_WASM }] : [],
    },
    {
      name: `query ${s.label} at recall@10 ≥ ${TARGET_RECALL}`,
      impls: {},
      measured: of(hnsw, (r) => 1e9 / median(r.qps)),
      subject,
      targets: wasm ? [{ over: "hnswlib-wasm", atLeast: TARGET_QPS_OVER_WASM }] : [],
    },
    {
      name: `exact top-10 ${s.label}`,
      impls: {},
      measured: of(exact, (r) => 1e9 / median(r.qps)),
      subject: exact.some((r) => r.engine === "exact-simd") ? "exact-simd" : undefined,
      limits: s.exactTarget ? [{ atMost: TARGET_EXACT_MS * 1e6 }] : [],
    },
    {
      name: `bytes per vector ${s.label}`,
      impls: {},
      unit: "count",
      measured: of(ran, (r) => r.bytes === undefined ? undefined : Math.round(r.bytes.perVector)),
      subject,
    },
    {
      name: `restore ${s.label}`,
      impls: {},
      measured: of(ran, (r) => r.restore && "ms" in r.restore ? r.restore.ms * 1e6 : undefined),
      subject,
    },
  ];
  return cases.filter((c) => Object.keys(c.measured ?? {}).length > 0);
}

export function dbCases(label: string, d: DbFigures): BenchCase[] {
  return [
    {
      name: `database ${label}: open`,
      impls: {},
      measured: { saved: d.saved.openMs * 1e6, unsaved: d.unsaved.openMs * 1e6 },
    },
    {
      name: `database ${label}: open to index ready`,
      impls: {},
      measured: { saved: d.saved.readyMs * 1e6, unsaved: d.unsaved.readyMs * 1e6 },
    },
  ];
}
