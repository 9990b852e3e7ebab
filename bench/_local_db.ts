/**
 * The in-process cases of the `local` suite: Lattice on SQLite in a temp
 * directory beside GUN (radisk in a temp directory), one database each:
 * - awaited durable put: one small node per put, each awaited before the
 *   next (GUN: `get(key).put(obj, ack)` awaited on its ack);
 * - concurrent durable put: 10,000 puts issued at once, all awaited;
 * - get of an existing node: from a working set read before (the store's
 *   node cache holds it; GUN: `get(key).once` from its in-memory graph), and
 *   the first read of a node (from SQLite);
 * - list of 10k nodes: iterating `db.list` over 10k souls (per list).
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { open } from "../mod.ts";
import { runtimeName } from "../runtime/detect.ts";
import { formatFigure } from "../scripts/bench/report.ts";
import { type GunChain, type GunOptions, gunOptions, gunPut, keepAlive, nodeSoul } from "./_local_child.ts";
import { type LocalRun, smallNode, timeRounds, timeSequential } from "./_local_measure.ts";

const SEQ_PUT = { warm: 200, rounds: 5, ops: 500 };
/** GUN acknowledges a put when radisk writes its batch, 250 ms after the first put of the batch. */
const GUN_SEQ_PUT = { warm: 1, rounds: 1, ops: 8 };
const CONCURRENT_PUTS = 10_000;
const CONCURRENT_ROUNDS = 3;
/**
 * Gets of a cached working set of `ops` nodes. The long warm-up matters: the
 * get path reaches its steady speed (optimised code) only after tens of
 * thousands of calls, 2× faster than after a few thousand.
 */
const GETS = { warm: 50_000, rounds: 5, ops: 5_000 };
/** First reads: every get reads a node not read before. */
const COLD_GETS = { warm: 10_000, rounds: 5, ops: 2_000 };
/** GUN's `once` waits 99 ms for more answers before calling back. */
const GUN_GETS = { warm: 1, rounds: 1, ops: 10 };
const LIST_NODES = 10_000;
const LIST_ROUNDS = 3;
/** Issue targets, as per-op budgets in ns. */
const PUT_BUDGET_NS = 1e9 / 10_000;
const CONCURRENT_BUDGET_NS = 1e9 / 100_000;
const GET_BUDGET_NS = 1e9 / 200_000;

/**
 * Measures the put, get and list cases `run` wants, on a fresh Lattice
 * database and GUN store in `run.root`, and closes the database.
 */
export async function measureReadsAndWrites(
  run: LocalRun,
  Gun: (opt: GunOptions) => GunChain,
): Promise<void> {
  const db = await open({ path: join(run.root, "lattice") });
  run.notes.push(`lattice: ${db.storage}, kernels ${db.kernels.name}, on ${runtimeName()}`);
  mkdirSync(join(run.root, "gun")); // GUN creates its radata directory, not the parents
  const gun = Gun(gunOptions(join(run.root, "gun", "radata")));

  const putCase = "awaited durable put";
  if (run.wanted(putCase)) {
    run.log(putCase);
    const lat = await timeSequential(SEQ_PUT, (i) => db.put(`p${i}`, smallNode(i)));
    const g = await keepAlive(timeSequential(GUN_SEQ_PUT, (i) => gunPut(gun, `p${i}`, smallNode(i))));
    run.checkGunSockets();
    run.rows.push({
      name: putCase,
      unit: "ns",
      subject: "lattice",
      figures: [{ impl: "lattice", value: lat.ns, how: lat.how }, { impl: "gun", value: g.ns, how: g.how }],
      limits: [{ atMost: PUT_BUDGET_NS }],
    });
  }

  const concurrentCase = `concurrent durable put (${CONCURRENT_PUTS / 1000}k at once)`;
  if (run.wanted(concurrentCase)) {
    run.log(concurrentCase);
    const batch = (impl: "lattice" | "gun", r: number) =>
      Promise.all(
        Array.from({ length: CONCURRENT_PUTS }, (_, i) =>
          impl === "lattice" ? db.put(`c${r}-${i}`, smallNode(i)) : gunPut(gun, `c${r}-${i}`, smallNode(i))),
      );
    await batch("lattice", -1); // warm-up
    const lat = await timeRounds(CONCURRENT_ROUNDS, CONCURRENT_PUTS, (r) => batch("lattice", r));
    const g = await keepAlive(timeRounds(1, CONCURRENT_PUTS, (r) => batch("gun", r)));
    run.checkGunSockets();
    run.rows.push({
      name: concurrentCase,
      unit: "ns",
      subject: "lattice",
      figures: [
        {
          impl: "lattice",
          value: lat,
          how: `median of ${CONCURRENT_ROUNDS} rounds of ${CONCURRENT_PUTS} puts after one warm-up round`,
        },
        { impl: "gun", value: g, how: `one round of ${CONCURRENT_PUTS} puts` },
      ],
      limits: [{ atMost: CONCURRENT_BUDGET_NS }],
    });
  }

  const getCase = "get existing node (cached)";
  const coldCase = "get existing node (first read)";
  if (run.wanted(getCase) || run.wanted(coldCase)) {
    run.log(`${getCase}, ${coldCase}`);
    // Hot: a working set read over and over (the store's node cache holds it after the first
    // pass). Cold: nodes read for the first time since they were written (commits drop what
    // they write from the cache), so every get reads SQLite.
    const cold = COLD_GETS.warm + COLD_GETS.rounds * COLD_GETS.ops;
    await Promise.all(Array.from({ length: GETS.ops }, (_, i) => db.put(`g/h${i}`, smallNode(i))));
    await Promise.all(Array.from({ length: cold }, (_, i) => db.put(`g/c${i}`, smallNode(i))));
    const latticeGet = async (prefix: string, k: number) => {
      const data = await db.get(`${prefix}${k}`);
      if (data?.n !== k) throw new Error(`lattice get ${prefix}${k} returned ${JSON.stringify(data)}`);
    };
    if (run.wanted(getCase)) {
      for (let i = 0; i < GETS.ops; i++) await latticeGet("g/h", i); // fill the cache
      const lat = await timeSequential(GETS, (i) => latticeGet("g/h", i % GETS.ops));
      await keepAlive(
        Promise.all(Array.from({ length: GUN_SEQ_PUT.ops }, (_, i) => gunPut(gun, `g${i}`, smallNode(i)))),
      );
      const gunGet = (i: number, wait?: number) =>
        new Promise<void>((resolve, reject) => {
          const k = i % GUN_SEQ_PUT.ops;
          gun.get(`g${k}`).once(
            (data) => (data?.n === k
              ? resolve()
              : reject(new Error(`GUN once g${k} returned ${JSON.stringify(data)}`))),
            wait === undefined ? undefined : { wait },
          );
        });
      const g = await keepAlive(timeSequential(GUN_GETS, (i) => gunGet(i)));
      const gFast = await keepAlive(timeSequential({ warm: 10, rounds: 1, ops: 200 }, (i) => gunGet(i, 1)));
      run.checkGunSockets();
      run.rows.push({
        name: getCase,
        unit: "ns",
        subject: "lattice",
        figures: [
          { impl: "lattice", value: lat.ns, how: `${lat.how}, over ${GETS.ops} nodes read before` },
          { impl: "gun", value: g.ns, how: `${g.how}, nodes in its in-memory graph` },
        ],
        limits: [{ atMost: GET_BUDGET_NS }],
      });
      run.notes.push(
        `gun get is once() with its default 99 ms wait for more answers; with once(cb, { wait: 1 }) it took ` +
          `${formatFigure(gFast.ns, "ns")} per get (${gFast.how})`,
      );
    }
    if (run.wanted(coldCase)) {
      const lat = await timeSequential(COLD_GETS, (i) => latticeGet("g/c", i));
      run.rows.push({
        name: coldCase,
        unit: "ns",
        subject: "lattice",
        figures: [{ impl: "lattice", value: lat.ns, how: `${lat.how}, each node read once` }],
      });
    }
  }

  const listCase = `list ${LIST_NODES / 1000}k nodes`;
  if (run.wanted(listCase)) {
    run.log(listCase);
    await Promise.all(
      Array.from({ length: LIST_NODES }, (_, i) => db.put(`l/${nodeSoul(i)}`, smallNode(i))),
    );
    const list = async () => {
      let n = 0;
      for await (const _ of db.list({ prefix: "l/" })) n++;
      if (n !== LIST_NODES) throw new Error(`list returned ${n} nodes, expected ${LIST_NODES}`);
    };
    await list(); // warm-up
    const lat = await timeRounds(LIST_ROUNDS, 1, list);
    run.rows.push({
      name: listCase,
      unit: "ns",
      subject: "lattice",
      figures: [{ impl: "lattice", value: lat, how: `median of ${LIST_ROUNDS} lists after one warm-up` }],
    });
  }
  await db.close();
}
