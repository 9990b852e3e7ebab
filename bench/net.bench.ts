/**
 * The `net` suite: Lattice replicas talking over libp2p on 127.0.0.1, and the
 * anti-entropy sync protocol in process.
 *
 * Cases (impl `lattice`):
 * - write → visible: 2 nodes over loopback; 1,000 sequential puts on A, each
 *   timed from `put` to B's `watch` callback for that node: p50 and p99
 *   (targets ≤ 5 ms and ≤ 15 ms). Beside it `gun`: two GUN peers in this
 *   process, a relay (`web`: an HTTP server on 127.0.0.1) and a client with
 *   `peers` pointing at it; put on the client → the relay's `.on` callback.
 *   When GUN does not deliver (on Bun its websocket mesh never does) the
 *   case reports `lattice` alone, with a note;
 * - 10 nodes × 10,000 writes: the nodes run in this process (`startNetwork`,
 *   fully meshed through their bootstrap lists), the writes are spread over
 *   them in concurrent batches of 100; time from the first write until every
 *   replica holds every write, checked by all 10 `stateHash()`es being equal
 *   (target ≤ 5 s). Gossip carries the writes; anti-entropy runs every
 *   `SYNC_INTERVAL_MS` (30 s) as in production, so it only repairs losses. Hashes are computed only once no replica's `lastSeq`
 *   moved over a poll; the figure is the first poll that saw the final seqs.
 * - reconcile 100k/1%: two replicas of 100,000 ops differing in 1% of keys
 *   (a third only on A, a third only on B, a third written differently on
 *   both), synced through `channelPair` (no network): bytes exchanged beside
 *   the encoded size of the differing ops (`diff-ops`; target ≤ 4×), and the
 *   session's time (target ≤ 1 s).
 *
 * Everything is asynchronous and one-shot, so setup measures the figures
 * itself and gives them as `measured` values; mitata times nothing here.
 *
 * Run: `deno task bench net [--json]` or `bun scripts/bench.ts net [--json]`.
 *
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type Database, type Op, open } from "../mod.ts";
import { encodeOps } from "../core/op.ts";
import { channelPair, SyncIndex, syncSession, type SyncStats } from "../core/sync/mod.ts";
import { createLogger } from "../runtime/log.ts";
import { startNetwork, SYNC_INTERVAL_MS } from "../net/network.ts";
import type { BenchCase, BenchSuite, SetupContext } from "../scripts/bench.ts";
import { loadGun } from "./_local_child.ts";
import { differingSets } from "../tests/_sync_fixture.ts";

const LISTEN = "/ip4/127.0.0.1/tcp/0";
const logger = createLogger({ level: "silent" });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const LATENCY = { warm: 50, writes: 1_000, timeoutMs: 5_000 };
const MESH = { nodes: 10, writes: 10_000, batch: 100, timeoutMs: 60_000, pollMs: 25 };
const RECONCILE = { records: 100_000, differing: 1_000 };

const CASE_P50 = "write → visible on peer, 2 nodes, p50";
const CASE_P99 = "write → visible on peer, 2 nodes, p99";
const CASE_MESH = "10 nodes × 10k writes → all stateHash equal";
const CASE_BYTES = "reconcile 100k/1%: bytes exchanged";
const CASE_TIME = "reconcile 100k/1%: session time";

type Net = Awaited<ReturnType<typeof startNetwork>>;
interface Replica {
  db: Database;
  net: Net;
}

async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(MESH.pollMs);
  }
}

/** `n` replicas on 127.0.0.1, each bootstrapping to all before it, once all are subscribed to each other. */
async function network(n: number, syncInterval: number): Promise<Replica[]> {
  const out: Replica[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const db = await open({ storage: "memory" });
      const net = await startNetwork(db, {
        listen: [LISTEN],
        bootstrap: out.map((r) => r.net.addrs().find((a) => a.startsWith("/ip4/127.0.0.1/tcp/"))!),
        space: "bench-net",
        logger,
        syncInterval,
      });
      out.push({ db, net });
    }
    await until(
      "full mesh",
      30_000,
      () => out.every((r) => r.net.node.peers().length === n - 1 && r.net.node.topicPeers().length === n - 1),
    );
    return out;
  } catch (e) {
    await shutdown(out);
    throw e;
  }
}

async function shutdown(rs: readonly Replica[]): Promise<void> {
  await Promise.allSettled(rs.map(async (r) => {
    await r.net.stop();
    await r.db.close();
  }));
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

/** Put on A → B's watch callback, sequentially: the sorted latencies in ns. */
async function writeLatency(): Promise<number[]> {
  const rs = await network(2, 3_600_000);
  const [a, b] = rs;
  try {
    let waiting: { soul: string; done: () => void } | undefined;
    const unwatch = b.db.watch({ prefix: "lat/" }, (ch) => {
      if (waiting && ch.soul === waiting.soul) waiting.done();
    });
    const one = async (i: number): Promise<number> => {
      const soul = `lat/${i}`;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const seen = new Promise<void>((resolve, reject) => {
        waiting = { soul, done: resolve };
        timer = setTimeout(
          () => reject(new Error(`${soul} not seen on B in ${LATENCY.timeoutMs} ms`)),
          LATENCY.timeoutMs,
        );
      });
      const t0 = performance.now();
      await Promise.all([a.db.put(soul, { i, text: `write number ${i}` }), seen]);
      const ns = (performance.now() - t0) * 1e6;
      clearTimeout(timer);
      waiting = undefined;
      return ns;
    };
    for (let i = 0; i < LATENCY.warm; i++) await one(-1 - i);
    const out: number[] = [];
    for (let i = 0; i < LATENCY.writes; i++) out.push(await one(i));
    unwatch();
    return out.sort((x, y) => x - y);
  } finally {
    await shutdown(rs);
  }
}

/** 10 nodes, writes spread over them: ns from the first write to every replica holding them all. */
async function meshConvergence(): Promise<{ ns: number; writtenNs: number }> {
  const rs = await network(MESH.nodes, SYNC_INTERVAL_MS);
  try {
    const perNode = MESH.writes / MESH.nodes;
    const t0 = performance.now();
    let tWritten = 0;
    const writing = Promise.all(rs.map(async (r, i) => {
      for (let j = 0; j < perNode; j += MESH.batch) {
        const puts: Promise<unknown>[] = [];
        for (let k = j; k < j + MESH.batch; k++) puts.push(r.db.put(`n${i}/k${k}`, { v: k, by: i }));
        await Promise.all(puts);
      }
    })).then(() => tWritten = performance.now());
    // The first poll that saw the final seqs is when the state settled; hashes confirm it.
    let seqs = "", since = 0;
    await until("identical state hashes", MESH.timeoutMs, async () => {
      const now = (await Promise.all(rs.map((r) => r.db.lastSeq()))).join();
      if (now !== seqs || tWritten === 0) {
        if (now !== seqs) since = performance.now();
        seqs = now;
        return false;
      }
      const hashes = await Promise.all(rs.map((r) => r.db.stateHash()));
      return hashes.every((h) => h === hashes[0]);
    });
    await writing;
    const check = await rs[MESH.nodes - 1].db.get(`n0/k${perNode - 1}`);
    if (check?.v !== perNode - 1) throw new Error("a write is missing after convergence");
    return { ns: (since - t0) * 1e6, writtenNs: (tWritten - t0) * 1e6 };
  } finally {
    await shutdown(rs);
  }
}

// ---------------------------------------------------------------- GUN

interface GunNode {
  get(key: string): GunNode;
  put(data: Record<string, unknown>): GunNode;
  on(cb: (data: Record<string, unknown> | undefined) => void): GunNode;
  off(): void;
}
type GunCtor = (opt: Record<string, unknown>) => GunNode;

/**
 * The same as {@link writeLatency} for GUN: a relay peer (`web`: an HTTP server
 * on 127.0.0.1) and a client peer connected to it by `peers`, both in this
 * process, with radisk, multicast, AXE and stats off. Put on the client → the
 * relay's `.on` callback for that node. Throws when a write is not seen.
 */
async function gunLatency(): Promise<number[]> {
  const Gun = await loadGun() as unknown as GunCtor;
  const base = { multicast: false, stats: false, axe: false, localStorage: false, radisk: false };
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  // GUN prints warnings with console.log: keep stdout for results.
  const log = console.log;
  console.log = console.error;
  try {
    const b = Gun({ ...base, web: server });
    const a = Gun({ ...base, peers: [`http://127.0.0.1:${port}/gun`] });
    const one = (i: number): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        const soul = `lat/${i}`;
        const timer = setTimeout(
          () => reject(new Error(`GUN: ${soul} not seen on the other peer in ${LATENCY.timeoutMs} ms`)),
          LATENCY.timeoutMs,
        );
        const ref = b.get(soul);
        const t0 = performance.now();
        ref.on((d) => {
          if (d?.i !== i) return;
          const ns = (performance.now() - t0) * 1e6;
          clearTimeout(timer);
          ref.off();
          resolve(ns);
        });
        a.get(soul).put({ i, text: `write number ${i}` });
      });
    for (let i = 0; i < LATENCY.warm; i++) await one(-1 - i);
    const out: number[] = [];
    for (let i = 0; i < LATENCY.writes; i++) out.push(await one(i));
    return out.sort((x, y) => x - y);
  } finally {
    console.log = log;
    // GUN has no close: drop its sockets (the client may retry until the runner exits).
    server.closeAllConnections?.();
    server.close();
  }
}

// ---------------------------------------------------------------- reconciliation

async function syncReplica(ops: readonly Op[]): Promise<{ db: Database; index: SyncIndex }> {
  const db = await open({ storage: "memory" });
  for (let i = 0; i < ops.length; i += 10_000) await db.applyOps(ops.slice(i, i + 10_000));
  return { db, index: await SyncIndex.build(db) };
}

async function reconcile(): Promise<{ bytes: number; diffBytes: number; ns: number; stats: SyncStats[] }> {
  const { records: N, differing: D } = RECONCILE;
  const { common, onlyA, onlyB, confA, confB } = differingSets(N, D);
  const a = await syncReplica([...common, ...onlyA, ...confA]);
  const b = await syncReplica([...common, ...onlyB, ...confB]);
  try {
    const diffBytes = encodeOps([...onlyA, ...onlyB, ...confA, ...confB]).length;
    a.index.snapshot(), b.index.snapshot(); // as a running node has them, outside the timing
    const [ca, cb] = channelPair();
    const t0 = performance.now();
    const stats = await Promise.all([
      syncSession(a.db, a.index, ca, { role: "initiator" }),
      syncSession(b.db, b.index, cb, { role: "responder" }),
    ]);
    const ns = (performance.now() - t0) * 1e6;
    const [ha, hb] = await Promise.all([a.db.stateHash(), b.db.stateHash()]);
    if (ha !== hb) throw new Error("replicas differ after reconciliation");
    return { bytes: stats[0].bytesSent + stats[1].bytesSent, diffBytes, ns, stats };
  } finally {
    for (const r of [a, b]) {
      r.index.close();
      await r.db.close();
    }
  }
}

// ---------------------------------------------------------------- suite

const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`;

export const suite: BenchSuite = {
  description: "Replication over 127.0.0.1 (write latency, 10-node convergence) and sync reconciliation",
  async setup(context: SetupContext) {
    const wanted = (name: string) => !context.filter || context.filter.test(name);
    const cases: BenchCase[] = [];
    const notes: string[] = [];

    if (wanted(CASE_P50) || wanted(CASE_P99)) {
      const lat = await writeLatency();
      const gun = await gunLatency().catch((e: Error) => {
        notes.push(`gun not measured: ${e.message}`);
        if (context.json) console.error(`Note: gun not measured: ${e.message}`);
        return undefined;
      });
      const figures = (p: number) => ({
        lattice: percentile(lat, p),
        ...(gun ? { gun: percentile(gun, p) } : {}),
      });
      cases.push(
        { name: CASE_P50, impls: {}, measured: figures(0.5), limits: [{ atMost: 5e6 }] },
        { name: CASE_P99, impls: {}, measured: figures(0.99), limits: [{ atMost: 15e6 }] },
      );
      notes.push(`write → visible: ${lat.length} writes, max ${ms(lat[lat.length - 1])}`);
      if (gun) notes.push(`write → visible, gun: ${gun.length} writes, max ${ms(gun[gun.length - 1])}`);
    }
    if (wanted(CASE_MESH)) {
      const mesh = await meshConvergence();
      cases.push({ name: CASE_MESH, impls: {}, measured: { lattice: mesh.ns }, limits: [{ atMost: 5e9 }] });
      notes.push(
        `10 nodes: all writes acknowledged locally after ${ms(mesh.writtenNs)}, converged after ${
          ms(mesh.ns)
        }` +
          ` (gossip, with anti-entropy every ${SYNC_INTERVAL_MS / 1000} s as in production)`,
      );
    }
    if (wanted(CASE_BYTES) || wanted(CASE_TIME)) {
      const r = await reconcile();
      cases.push(
        {
          name: CASE_BYTES,
          impls: {},
          unit: "bytes",
          measured: { lattice: r.bytes, "diff-ops": r.diffBytes },
          targets: [{ over: "diff-ops", atLeast: 1 / 4 }],
        },
        { name: CASE_TIME, impls: {}, measured: { lattice: r.ns }, limits: [{ atMost: 1e9 }] },
      );
      notes.push(
        `reconcile: ${r.bytes} B exchanged for ${r.diffBytes} B of differing ops = ` +
          `${(r.bytes / r.diffBytes).toFixed(2)}× (target ≤ 4×), ${r.stats[0].rounds} rounds`,
      );
    }
    return { cases, notes };
  },
};
