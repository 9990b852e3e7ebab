/**
 * The cases of the `local` suite about a database across processes, each
 * measured in fresh child processes (bench/_open_child.ts,
 * bench/_local_child.ts):
 * - open of the database the bulk apply case built (1M fields), per open;
 * - RSS after that open, and after reading its 100,000 small nodes once
 *   (GUN: a process holding 100,000 such nodes in its in-memory graph);
 * - durability: after 10,000 concurrent acknowledged puts the process kills
 *   itself; how many are there on reopening (Lattice and GUN).
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { formatFigure } from "../scripts/bench/report.ts";
import { FIELDS_PER_NODE } from "./_local_child.ts";
import {
  APPLY_OPS,
  count,
  type Figure,
  type LocalRun,
  median,
  type Row,
  runChild,
} from "./_local_measure.ts";

/** Fresh processes timing `open` (the median is reported). */
const OPEN_RUNS = 3;
const DURABLE_PUTS = 10_000;
/** Issue target: RSS holding 100,000 small nodes. */
const RSS_BUDGET_BYTES = 90e6;

const openCase = `open ${count(APPLY_OPS)}-field database (fresh process)`;
const rssOpenCase = `RSS after opening ${count(APPLY_OPS)}-field database`;
const rssCase = `RSS holding ${count(APPLY_OPS / FIELDS_PER_NODE)} small nodes`;
/** The cases that open the database of the bulk apply case. */
export const OPEN_CASES: readonly string[] = [openCase, rssOpenCase, rssCase];

/**
 * Measures the open, RSS and durability cases `run` wants; the open and RSS
 * ones on the database in `bulkDir` (see `measureApply`).
 */
export async function measureOpenAndDurability(run: LocalRun, bulkDir: string): Promise<void> {
  let gunRss: Promise<Record<string, unknown>> | undefined;
  let gunRssRow: (() => Promise<Row>) | undefined;
  if (OPEN_CASES.some((name) => run.wanted(name))) {
    run.log("open and RSS (child processes)");
    const runs: Record<string, number>[] = [];
    for (let r = 0; r < OPEN_RUNS; r++) {
      runs.push(await runChild(["open", bulkDir, "read"]) as Record<string, number>);
    }
    const nodes = APPLY_OPS / FIELDS_PER_NODE;
    for (const child of runs) {
      if (child.nodes !== nodes || child.fields !== APPLY_OPS) {
        throw new Error(`the open child read ${child.nodes} nodes / ${child.fields} fields`);
      }
    }
    // After the same scan, V8 keeps more or less of its heap from one process to the next
    // (86–97 MB seen on Deno): the median of the fresh processes, with their range.
    const rssReads = runs.map((r) => r.rssRead);
    const how = `in a fresh process, median of ${OPEN_RUNS}`;
    if (run.wanted(openCase)) {
      run.rows.push({
        name: openCase,
        unit: "ns",
        subject: "lattice",
        figures: [{
          impl: "lattice",
          value: median(runs.map((r) => r.openNs)),
          how: `open() to resolved, ${how}`,
        }],
      });
    }
    if (run.wanted(rssOpenCase)) {
      run.rows.push({
        name: rssOpenCase,
        unit: "bytes",
        subject: "lattice",
        figures: [{ impl: "lattice", value: median(runs.map((r) => r.rssOpen)), how: `after gc, ${how}` }],
      });
    }
    run.notes.push(
      `open child: RSS before open ${formatFigure(median(runs.map((r) => r.rssBefore)), "bytes")} ` +
        `(runtime and modules); reading all ${count(nodes)} nodes took ${
          formatFigure(median(runs.map((r) => r.readNs)), "ns")
        }`,
    );
    if (run.wanted(rssCase)) {
      // GUN takes over a minute to take 100k nodes in; its child runs beside the durability
      // children, whose figures are counts, not times.
      run.log("gun RSS (child process)");
      gunRss = runChild(["gun-rss", String(nodes), String(FIELDS_PER_NODE)]);
      gunRssRow = async () => {
        const g = await gunRss! as Record<string, number>;
        if (g.sockets !== undefined && g.sockets > 0) run.gunChildSockets(g.sockets);
        run.notes.push(`gun RSS child before creating GUN: ${formatFigure(g.rssBefore, "bytes")}`);
        return {
          name: rssCase,
          unit: "bytes",
          subject: "lattice",
          figures: [
            {
              impl: "lattice",
              value: median(rssReads),
              how:
                `after reading all ${
                  count(nodes)
                } nodes once, after gc, median of ${OPEN_RUNS} fresh processes ` +
                `(${formatFigure(Math.min(...rssReads), "bytes")}–${
                  formatFigure(Math.max(...rssReads), "bytes")
                })`,
            },
            { impl: "gun", value: g.rssHeld, how: "in-memory graph (radisk off), after gc" },
          ],
          limits: [{ atMost: RSS_BUDGET_BYTES }],
        };
      };
    }
  }

  // ---- durability (the GUN RSS child above runs meanwhile: its figure is a size, theirs counts)
  const durableCase = `present after SIGKILL, of ${count(DURABLE_PUTS)} acked concurrent puts`;
  if (run.wanted(durableCase)) {
    run.log(durableCase);
    const figures: Figure[] = [];
    for (const impl of ["lattice", "gun"]) {
      const dir = join(run.root, `durable-${impl}`);
      mkdirSync(dir, { recursive: true });
      const w = await runChild(["durable-write", impl, dir, String(DURABLE_PUTS)], { killed: true });
      if (impl === "gun" && typeof w.sockets === "number") run.gunChildSockets(w.sockets);
      const c = await runChild(["durable-count", impl, dir, String(DURABLE_PUTS)]);
      figures.push({
        impl,
        value: c.present as number,
        how: `${w.acked} puts acknowledged in ${formatFigure(w.ns as number, "ns")}, then SIGKILL`,
      });
    }
    const gunFigure = figures.find((f) => f.impl === "gun")!;
    if (gunFigure.value < DURABLE_PUTS) {
      run.notes.push(
        `gun: ${
          DURABLE_PUTS - gunFigure.value
        } of ${DURABLE_PUTS} acknowledged puts missing or corrupt in its ` +
          `radisk files after the kill (a leaf under a mangled key, or its value under "undefined" for ":")`,
      );
    }
    if (gunRssRow) run.rows.push(await gunRssRow());
    gunRssRow = undefined;
    run.rows.push({
      name: durableCase,
      unit: "count",
      subject: "lattice",
      figures,
      limits: [{ atLeast: DURABLE_PUTS }],
    });
  }
  if (gunRssRow) run.rows.push(await gunRssRow());
}
