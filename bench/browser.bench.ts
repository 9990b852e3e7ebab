/**
 * The `browser` suite: Lattice's browser storage in headless Chromium
 * (issue 15), `storage: "opfs"` (SQLite in the Origin Private File System,
 * through its worker) beside `storage: "memory"` and beside IndexedDB used
 * through `idb-keyval` 6.3.0 — the store a browser developer would otherwise
 * pick — doing the same writes.
 *
 * Phases (bench/_browser_page.ts says what each engine does in each): awaited
 * put (500), concurrent put (10k), awaited get (10k) and apply of 100k
 * foreign ops in batches of 2,000 (`db.applyOps`, as sync delivers them;
 * idb-keyval: `setMany` per batch). Timed inside the page with
 * `performance.now()` around each phase; every run on a fresh database (a
 * fresh OPFS path or IndexedDB name), removed after. Three rounds; within a
 * round the engines alternate (the order rotates each round). Printed: time
 * per op, median and range of the rounds, and the speed-ups over idb-keyval
 * taken within each round.
 *
 * Targets, checked at the end (lattice opfs over idb-keyval): awaited put
 * ≥ 1×, concurrent put and bulk apply ≥ 10× (issue 15 asked ≥ 5× of awaited
 * puts: bench/_browser_report.ts says why that is out of reach here). Then a
 * probe of what bounds an awaited OPFS put (bench/_browser_probe.ts): how
 * SQLite is set up in the worker, an awaited signed put traced in parts
 * (signature, commit round trip, the rest) beside a keyless one and one with
 * durability `power`, the browser's primitives (sync-access-handle appends
 * with and without `flush()`, worker round trips with the worker awake and
 * asleep, a WebCrypto signature), and the floor they give.
 *
 * The browser runs a persistent profile (bench/_browser_driver.ts: OPFS and
 * IndexedDB on disk, as a user's are); `LATTICE_BENCH_INCOGNITO=1` runs the
 * incognito one (both in the browser's memory, every sync-access-handle call
 * a message to the browser process).
 *
 * Sizes: `LATTICE_BENCH_QUICK=1` runs a tenth of each (50 awaited puts, 1k
 * concurrent puts and gets, 10k ops) for development; `LATTICE_BENCH_ROUNDS`
 * sets the rounds (default 3). Chromium: LATTICE_CHROMIUM, else
 * /usr/bin/chromium. Progress goes to stderr. The whole run took 67–110 s on
 * the shared 2-core machine.
 *
 * Run: `deno task bench browser [--json]`.
 *
 * @module
 */
import process from "node:process";
import type { BenchSetup, BenchSuite, SetupContext } from "../scripts/bench.ts";
import { openBrowserPage } from "./_browser_driver.ts";
import type { BrowserEngine, BrowserRun, BrowserSizes } from "./_browser_page.ts";
import type { OpfsProbe } from "./_browser_probe.ts";
import { cases, ENGINES, probeLines, report, type Rounds } from "./_browser_report.ts";

const QUICK = process.env.LATTICE_BENCH_QUICK === "1";
const ROUNDS = Number(process.env.LATTICE_BENCH_ROUNDS ?? 3);

const SIZES: BrowserSizes = QUICK
  ? { awaited: 50, concurrent: 1_000, gets: 1_000, apply: 10_000 }
  : { awaited: 500, concurrent: 10_000, gets: 10_000, apply: 100_000 };

async function setup(ctx: SetupContext): Promise<BenchSetup> {
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new RangeError("LATTICE_BENCH_ROUNDS must be ≥ 1");
  const started = performance.now();
  const log = ctx.json
    ? () => {}
    : (line: string) =>
      console.error(`[browser ${((performance.now() - started) / 1000).toFixed(0)} s] ${line}`);
  const page = await openBrowserPage(log);
  const profile = page.profile;
  const rounds: Record<BrowserEngine, BrowserRun>[] = [];
  let probe: OpfsProbe | undefined;
  try {
    log(`chromium ${page.version}, ${page.profile} profile; building ${SIZES.apply} foreign ops in the page`);
    await page.prepare(SIZES.apply);
    const tag = Math.random().toString(36).slice(2, 8);
    for (let r = 0; r < ROUNDS; r++) {
      const round = {} as Record<BrowserEngine, BrowserRun>;
      for (let i = 0; i < ENGINES.length; i++) {
        const engine = ENGINES[(i + r) % ENGINES.length];
        const run = await page.run(engine, SIZES, `${tag}-${r}`);
        log(
          `round ${r + 1}/${ROUNDS} ${engine}: awaited ${run.awaitedMs.toFixed(0)} ms, concurrent ${
            run.concurrentMs.toFixed(0)
          } ms, get ${run.getMs.toFixed(0)} ms, apply ${run.applyMs.toFixed(0)} ms`,
        );
        round[engine] = run;
      }
      rounds.push(round);
    }
    log("probing what an OPFS commit costs");
    probe = await page.probe(tag);
  } finally {
    await page.close();
  }
  const done: Rounds = rounds;
  if (!ctx.json) {
    const took = (performance.now() - started) / 1000;
    console.log(
      [
        ...report(done, SIZES, profile),
        ...probeLines(probe, done, SIZES),
        `${QUICK ? "QUICK sizes; " : ""}measured for ${took.toFixed(0)} s`,
        "",
      ].join(
        "\n",
      ),
    );
  }
  return { cases: cases(done, SIZES) };
}

/** The browser suite. */
export const suite: BenchSuite = {
  description: "Browser storage in headless Chromium: Lattice OPFS and memory vs IndexedDB (idb-keyval)",
  setup,
};
