// @server-only: real libp2p nodes on 127.0.0.1 TCP.
/**
 * The trust rules on the wire: a raw libp2p attacker connected to one
 * Lattice replica (V) publishes forged ops on the space topic; another
 * replica (B) is connected to V only. A forged op is not merged by V, not
 * relayed to B, and after {@link TRUST_OFFENCES} such messages the attacker
 * is disconnected, refused and logged. The control: a correctly signed op
 * published by the same attacker is merged by V and relayed on to B (so B
 * not seeing the forged ones means they were stopped, not lost).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { createIdentity, createLogger, type Database, type Identity, loadKernels, type Op } from "../mod.ts";
import { encodeOps, opToRecord, recordToOp } from "../core/op.ts";
import { signRecords } from "../core/trust/signing.ts";
import { type RunningNetwork, startNetwork } from "../net/network.ts";
import { spaceTopic } from "../net/node.ts";
import { TRUST_OFFENCES } from "../net/replicate.ts";
import { Database as Db } from "../core/database.ts";
import { openStore } from "../storage/open.ts";
import { rawNode, send, until, varint } from "./_raw_node.ts";
import { encodeMessage, encodeSyncFrame, SYNC_PROTOCOL } from "../core/sync/mod.ts";
import { stateOf } from "./_sync_fixture.ts";
import { syncManifest } from "../net/space_manifest.ts";
import { createManifest } from "../core/trust/manifest.ts";
import type { NetNode } from "../net/node.ts";

const SPACE = "trust-wire";

interface Replica {
  db: Database;
  net: RunningNetwork;
  lines: string[];
}

async function replica(
  bootstrap: string[] = [],
  identity?: Identity,
  syncInterval?: number,
): Promise<Replica> {
  const store = await openStore({ storage: "memory" });
  const db = await Db.create({ store, kernels: await loadKernels(), space: SPACE, identity });
  const lines: string[] = [];
  const net = await startNetwork(db, {
    space: SPACE,
    listen: ["/ip4/127.0.0.1/tcp/0"],
    bootstrap,
    syncInterval,
    logger: createLogger({ level: "warn", write: (l) => lines.push(l) }),
  });
  return { db, net, lines };
}

/** `op` signed by `who` for this test's space. */
async function signed(who: Identity, op: Omit<Op, "actor">): Promise<Op> {
  const [r] = await signRecords(who, await loadKernels(), new TextEncoder().encode(SPACE), [
    opToRecord({ ...op, actor: who.actor }),
  ]);
  return recordToOp(r);
}

describe("trust on the wire", () => {
  it(
    "forged gossip is neither merged nor relayed, and its sender is cut off",
    { timeout: 60_000 },
    async () => {
      const v = await replica();
      const b = await replica([v.net.addrs()[0]]);
      const attacker = await rawNode({ gossip: true });
      try {
        const topic = await spaceTopic(SPACE);
        const vId = peerIdFromString(v.net.peerId);
        await until("B to connect to V", 15_000, () => b.net.peers().some((p) => p.id === v.net.peerId));
        await attacker.dial(multiaddr(v.net.addrs()[0]));
        await until(
          "the attacker to see V subscribe",
          15_000,
          () =>
            attacker.services.pubsub.getSubscribers(topic).some((p: { equals(x: unknown): boolean }) =>
              p.equals(vId)
            ),
        );
        const alice = await createIdentity();
        // Control: alice's signed op, relayed by the attacker, reaches V and, through V, B.
        const good = await signed(alice, {
          soul: "doc",
          field: "v",
          value: "alice",
          state: stateOf(Date.now() - 1000),
        });
        await attacker.services.pubsub.publish(topic, encodeOps([good]));
        await until(
          "B to get alice's signed op through V",
          15_000,
          async () => (await b.db.get("doc"))?.v === "alice",
        );

        // Forgeries under alice's name: unsigned, and with a signature moved to another value.
        const later = stateOf(Date.now());
        const forged: Op[] = [
          { soul: "doc", field: "v", value: "forged-1", state: later, actor: alice.actor },
          { ...good, value: "forged-2", state: later },
          { ...good, soul: "doc2", value: "forged-3" },
        ];
        for (let i = 0; i < TRUST_OFFENCES && attacker.getConnections(vId).length > 0; i++) {
          await attacker.services.pubsub.publish(topic, encodeOps([forged[i % forged.length]])).catch(
            () => {},
          );
          await new Promise((r) => setTimeout(r, 100));
        }
        await until(
          "the attacker to be disconnected",
          10_000,
          () => attacker.getConnections(vId).length === 0,
        );
        assert.equal(v.net.node.refused(attacker.peerId.toString()), true);
        assert.ok(
          v.lines.some((l) => l.includes(`peer=${attacker.peerId.toString()}`) && l.includes("trust rules")),
          v.lines.join("\n"),
        );
        // Give any relay time to happen, then check neither replica holds a forgery.
        await new Promise((r) => setTimeout(r, 1000));
        for (const r of [v, b]) {
          assert.deepEqual(await r.db.get("doc"), { v: "alice" });
          assert.equal(await r.db.get("doc2"), undefined);
        }
      } finally {
        await attacker.stop();
        for (const r of [b, v]) {
          await r.net.stop();
          await r.db.close();
        }
      }
    },
  );

  it(
    "a newer manifest of the space's owner reaches the members through the DHT",
    { timeout: 60_000 },
    async () => {
      const owner = await createIdentity(), writer = await createIdentity();
      const o = await replica([], owner, 300);
      const m = await replica([o.net.addrs()[0]], undefined, 300);
      try {
        const first = await o.db.trust.createManifest({ writers: [owner.id], seq: 1 });
        for (const r of [o, m]) assert.equal(await r.db.trust.useManifest(first), true);
        const second = await o.db.trust.createManifest({ writers: [owner.id, writer.id], seq: 2 });
        assert.equal(await o.db.trust.useManifest(second), true);
        await until("the member to adopt manifest 2", 20_000, () => m.db.trust.manifest?.seq === 2);
        assert.deepEqual(m.db.trust.manifest?.writers, [owner.id, writer.id]);
        // The DHT keeps manifests only: another /lattice/ record is refused.
        const junk = new TextEncoder().encode("/lattice/space/" + "0".repeat(64));
        await m.net.node.putRecord(junk, new Uint8Array([1, 2, 3]));
        assert.equal((await m.net.node.getRecords(junk)).length, 0);
      } finally {
        for (const r of [m, o]) {
          await r.net.stop();
          await r.db.close();
        }
      }
    },
  );

  it("a manifest round reads before it publishes: a member never puts back the manifest it held over a newer one", async () => {
    // A DHT as its peers keep a key: the last record put wins, whatever its seq.
    let held: Uint8Array | undefined;
    const dht = {
      space: SPACE,
      putRecord: (_key: Uint8Array, value: Uint8Array) => (held = value, Promise.resolve()),
      getRecords: () => Promise.resolve(held === undefined ? [] : [held]),
    } as unknown as NetNode;
    const owner = await createIdentity();
    const m1 = await createManifest(owner, { space: SPACE, writers: [owner.id], seq: 1 });
    const m2 = await createManifest(owner, { space: SPACE, writers: [owner.id], seq: 2 });
    const member = await Db.create({
      store: await openStore({ storage: "memory" }),
      kernels: await loadKernels(),
      space: SPACE,
    });
    try {
      assert.equal(await member.trust.useManifest(m1), true);
      held = m2; // the owner's round put it
      await syncManifest(member, dht, () => {});
      assert.equal(member.trust.manifest?.seq, 2, "the member adopted the owner's newer manifest");
      assert.deepEqual(held, m2, "and left it in the DHT");
    } finally {
      await member.close();
    }
  });

  it("a peer that syncs forged ops is cut off after its first frame, and nothing of it is stored", {
    timeout: 60_000,
  }, async () => {
    const v = await replica();
    const attacker = await rawNode();
    try {
      const alice = await createIdentity();
      const vId = peerIdFromString(v.net.peerId);
      const stream = await attacker.dialProtocol(multiaddr(v.net.addrs()[0]), SYNC_PROTOCOL);
      // Frames of 1,000 ops under alice's actor id, unsigned: each a forgery.
      for (let f = 0; f < 20 && attacker.getConnections(vId).length > 0; f++) {
        const ops = Array.from({ length: 1000 }, (_, i) => ({
          soul: `forged/${f}/${i}`,
          field: "v",
          value: i,
          state: stateOf(Date.now() - 1000),
          actor: alice.actor,
        }));
        const frame = await encodeSyncFrame(encodeMessage({ type: "ops", ops }));
        await send(stream, new Uint8Array([...varint(frame.length), ...frame])).catch(() => {});
      }
      await until("the attacker to be disconnected", 10_000, () => attacker.getConnections(vId).length === 0);
      const id = attacker.peerId.toString();
      assert.equal(v.net.node.refused(id), true);
      assert.ok(
        v.lines.some((l) => l.includes(`peer=${id}`) && l.includes("Sync refused")),
        v.lines.join("\n"),
      );
      assert.equal(await v.db.countNodes(), 0, "nothing of the forgeries stored");
    } finally {
      await attacker.stop();
      await v.net.stop();
      await v.db.close();
    }
  });
});
