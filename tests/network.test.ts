// @server-only: libp2p nodes on 127.0.0.1
/**
 * Full-mode replicas on the network (net/network.ts): a partition heals
 * through anti-entropy sync with bytes in proportion to the difference, and
 * a node keeps serving while a peer sends garbage on the sync protocol.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { open } from "../mod.ts";
import type { Database } from "../core/database.ts";
import { encodeOps } from "../core/op.ts";
import { SYNC_PROTOCOL } from "../core/sync/protocol.ts";
import { createLogger } from "../runtime/log.ts";
import { createNetNode } from "../net/node.ts";
import { type PeerSync, startNetwork } from "../net/network.ts";
import { prng, SEED } from "./_seed.ts";

const SPACE = "network-test";
const logger = createLogger({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function replica(bootstrap: string[] = []) {
  const db = await open({ storage: "memory" });
  const net = await startNetwork(db, {
    listen: [],
    bootstrap,
    space: SPACE,
    logger,
    syncInterval: 3_600_000,
  });
  return { db, net };
}

async function until(what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function writeMany(db: Database, prefix: string, n: number, rand: () => number): Promise<void> {
  const puts: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    puts.push(db.put(`${prefix}${i}`, { n: i, text: `value ${Math.floor(rand() * 1e9)}` }));
  }
  await Promise.all(puts);
}

describe("network replicas", { timeout: 120_000 }, () => {
  it("heal a partition by sync, exchanging bytes in proportion to the difference", async () => {
    const rand = prng(SEED);
    const a = await replica(), b = await replica();
    try {
      // Shared history first: B takes A's 2,000 nodes by applying A's ops, as if synced long ago.
      await writeMany(a.db, "shared/", 2_000, rand);
      await b.db.applyOps((await a.db.exportOps({ limit: 1e6 })).ops);
      // The partition: each side writes on its own, and both write one node differently.
      await writeMany(a.db, "only-a/", 20, rand);
      await writeMany(b.db, "only-b/", 20, rand);
      await a.db.put("shared/7", { text: "A's version" });
      await b.db.put("shared/7", { text: "B's version" });
      const diff = [...(await a.db.exportOps({ after: 0, limit: 1e6 })).ops].filter((op) =>
        op.soul.startsWith("only-") || op.soul === "shared/7"
      );
      const theirs = (await b.db.exportOps({ limit: 1e6 })).ops.filter((op) =>
        op.soul.startsWith("only-") || op.soul === "shared/7"
      );
      const diffBytes = encodeOps([...diff, ...theirs]).length;
      assert.notEqual(await a.db.stateHash(), await b.db.stateHash());

      await b.net.node.dial(a.net.node.addrs()[0]); // the partition ends
      await until("identical states", async () => (await a.db.stateHash()) === (await b.db.stateHash()));
      assert.equal((await b.db.get("shared/7"))?.text, "B's version", "the later write wins on both");
      const syncWithA = async () =>
        ((await b.net.peers()).find((x) => x.id === a.net.peerId) as unknown as
          | { sync: PeerSync }
          | undefined)
          ?.sync;
      await until("B's sync record", async () => (await syncWithA())?.asOf !== undefined);
      const last = (await syncWithA())!.last!;
      const bytes = last.bytesSent + last.bytesReceived;
      console.log(`partition heal (seed ${SEED}): sync moved ${bytes} B for ${diffBytes} B of differing ops`);
      assert.ok(bytes <= 4 * diffBytes + 2048, `sync moved ${bytes} B for ${diffBytes} B of differing ops`);
    } finally {
      await a.net.stop();
      await b.net.stop();
      await a.db.close();
      await b.db.close();
    }
  });

  it("keeps serving while a peer sends garbage on the sync protocol", async () => {
    const a = await replica();
    const attacker = await createNetNode({ space: SPACE, listen: ["/ip4/127.0.0.1/tcp/0"] });
    let c: Awaited<ReturnType<typeof replica>> | undefined;
    try {
      await a.db.put("x", { v: 1 });
      const peerA = await attacker.dial(a.net.node.addrs()[0]);
      const garbage = [
        new Uint8Array(0),
        Uint8Array.from({ length: 300 }, (_, i) => (i * 7919) & 0xff),
        new Uint8Array([0, 0x93, 0x02, 0x01]), // wrong message version
        new Uint8Array([0, 0x94]), // truncated
        new Uint8Array([9, 1, 2, 3]), // unknown flag
        new Uint8Array(2 * 1024 * 1024).fill(0x41), // oversize for a message
      ];
      for (const frame of garbage) {
        const channel = await attacker.open(peerA, SYNC_PROTOCOL);
        await channel.send(frame).catch(() => {});
        // The node closes the stream: the frames iterator ends (or errors) instead of hanging.
        const closed = (async () => {
          try {
            for await (const _ of channel.frames) { /* drain */ }
          } catch { /* reset counts as closed */ }
          return true;
        })();
        assert.equal(
          await Promise.race([closed, sleep(10_000).then(() => false)]),
          true,
          "stream not closed",
        );
        channel.close();
      }
      // Still serving: a well-behaved replica joins and syncs.
      c = await replica([a.net.node.addrs()[0]]);
      await until("C to sync from A", async () => (await c!.db.get("x"))?.v === 1);
      assert.deepEqual(await a.db.get("x"), { v: 1 });
    } finally {
      await attacker.stop();
      await c?.net.stop();
      await c?.db.close();
      await a.net.stop();
      await a.db.close();
    }
  });
});
