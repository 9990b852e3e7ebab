// @server-only: real libp2p nodes on 127.0.0.1 TCP, and a `lattice serve` child process.
/**
 * Peers that misbehave: each case is an attack from a raw libp2p node (built
 * here, not a Lattice node, so it can send what Lattice never would) on a
 * Lattice victim, and checks what the victim does about it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import type { Stream } from "@libp2p/interface";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { type Database, open } from "../mod.ts";
import { encodeOps } from "../core/op.ts";
import { encodeMessage, encodeSyncFrame, SYNC_PROTOCOL } from "../core/sync/mod.ts";
import { createLogger } from "../runtime/log.ts";
import { checkNetworkOptions } from "../net/network_options.ts";
import { type RunningNetwork, startNetwork } from "../net/network.ts";
import {
  createNetNode,
  FRAME_PIECE_BYTES,
  FRAME_PIECES_FLOOR,
  type NetNode,
  spaceTopic,
} from "../net/node.ts";
import { openChannel } from "../net/channel.ts";
import { MessageStream } from "./_message_stream.ts";
import { DEFAULT_PEER_LIMITS, type PeerLimits } from "../net/peer_budget.ts";
import { startReplication } from "../net/replicate.ts";
import { startServe } from "./_serve.ts";
import { ACTOR_A, stateOf } from "./_sync_fixture.ts";
import { type Raw, rawNode, send, until, varint } from "./_raw_node.ts";

const SPACE = "hostile";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Whether `addr` refuses `node`: a dial may seem to succeed (the dialer
 * selects its muxer without waiting) but the victim's gater closes the
 * connection before any protocol can run, so a ping fails.
 */
async function refuses(node: Raw, addr: string): Promise<boolean> {
  try {
    await node.services.ping.ping(multiaddr(addr), { signal: AbortSignal.timeout(3_000) });
    return false;
  } catch {
    return true;
  }
}

/** Resolves once the victim ends the stream (reads to its end; a reset counts as an end). */
async function ended(stream: Stream): Promise<void> {
  try {
    for await (const _ of stream) { /* the victim sends nothing we need */ }
  } catch { /* reset */ }
}

/** Deflate-raw of `mib` MiB of zeros, fed 1 MiB at a time (the test never holds the inflated size). */
async function deflateZeros(mib: number): Promise<Uint8Array> {
  const cs = new CompressionStream("deflate-raw");
  const writer = cs.writable.getWriter();
  const zeros = new Uint8Array(1 << 20);
  const parts: Uint8Array[] = [];
  const reading = (async () => {
    const reader = cs.readable.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      parts.push(value);
    }
  })();
  for (let i = 0; i < mib; i++) await writer.write(zeros);
  await writer.close();
  await reading;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) at += (out.set(p, at), p.length);
  return out;
}

/** Peak resident memory of process `pid` in MiB (Linux `VmHWM`). */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`No VmHWM in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

async function statusWithin(url: string, ms: number): Promise<void> {
  const t0 = Date.now();
  const res = await fetch(url + "/v1/status", { signal: AbortSignal.timeout(ms) });
  assert.equal(res.status, 200);
  await res.json();
  assert.ok(Date.now() - t0 <= ms, `/v1/status answered in ${Date.now() - t0} ms`);
}

/** A Lattice replica on the network, with a logger whose lines the test reads. */
async function victim(limits?: PeerLimits): Promise<{ db: Database; net: RunningNetwork; lines: string[] }> {
  const db = await open({ storage: "memory" });
  const lines: string[] = [];
  const net = await startNetwork(db, {
    space: SPACE,
    listen: [],
    bootstrap: [],
    limits,
    logger: createLogger({ level: "warn", write: (l) => lines.push(l) }),
  });
  return { db, net, lines };
}

async function stopVictim(v: { db: Database; net: RunningNetwork } | undefined): Promise<void> {
  if (!v) return;
  await v.net.stop();
  await v.db.close();
}

/**
 * The frames a channel reads when the remote's bytes arrive as `chunks`, one stream message each;
 * chunks are pulled only while the channel has not given the stream up.
 */
async function* decodeFrames(
  chunks: AsyncIterable<Uint8Array>,
  max: number,
  violated?: (reason: string) => void,
): AsyncGenerator<Uint8Array> {
  const s = new MessageStream();
  const channel = openChannel(s.stream, max, { violated });
  const feed = (async () => {
    for await (const chunk of chunks) {
      if (s.aborted) break;
      s.deliver(chunk);
    }
    s.endRemote();
  })();
  try {
    yield* channel.frames;
  } finally {
    await feed;
  }
}

describe("hostile peer: sync frames", () => {
  it("a deflate bomb closes the stream; the victim's RSS stays within +100 MiB and it answers", {
    timeout: 60_000,
  }, async () => {
    // 512 MiB of zeros in ~0.5 MiB: before, Deno inflated the whole frame before checking the limit.
    const bomb = await deflateZeros(512);
    const node = await startServe(["serve", "--memory", "--http", "127.0.0.1:0", "--json"]);
    const attacker = await rawNode();
    try {
      assert.ok(node.ready.peerId);
      await statusWithin(node.ready.http, 1_000);
      const before = peakRssMiB(node.pid);
      const addr = node.ready.addrs.find((a) => !a.includes("/ws"))!;
      const stream = await attacker.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      const frame = new Uint8Array(bomb.length + 1);
      frame[0] = 1; // deflate-raw
      frame.set(bomb, 1);
      await send(stream, varint(frame.length));
      await send(stream, frame);
      await ended(stream);
      await statusWithin(node.ready.http, 1_000);
      const grew = peakRssMiB(node.pid) - before;
      console.log(`deflate bomb of ${frame.length} B: victim peak RSS grew ${grew.toFixed(1)} MiB`);
      assert.ok(grew < 100, `peak RSS grew ${grew.toFixed(1)} MiB`);
      // It broke the frame limit: disconnected and refused.
      const victimId = peerIdFromString(node.ready.peerId);
      await until(
        "the attacker to be disconnected",
        5_000,
        () => attacker.getConnections(victimId).length === 0,
      );
      assert.ok(await refuses(attacker, addr), "the victim refuses the attacker");
    } finally {
      await attacker.stop();
      assert.equal(await node.stop(), 0);
    }
  });

  it("a 4 MiB frame in the most pieces allowed is reassembled with linear copying", async () => {
    const frame = new Uint8Array(4 * 1024 * 1024);
    // 1,025 chunks (the rule allows 1,088 over the frame): a join on every chunk would copy 2 GiB.
    const chunks = (async function* () {
      const prefix = varint(frame.length);
      yield prefix;
      for (let at = 0; at < frame.length; at += FRAME_PIECE_BYTES) {
        yield frame.subarray(at, at + FRAME_PIECE_BYTES);
      }
    })();
    // Count every byte copied by Uint8Array#set and #slice while the frame is decoded.
    const proto = Uint8Array.prototype as unknown as {
      set(src: ArrayLike<number>, at?: number): void;
      slice(a?: number, b?: number): Uint8Array;
    };
    const { set, slice } = proto;
    let copied = 0;
    const budget = 2 * frame.length;
    proto.set = function (this: Uint8Array, src: ArrayLike<number>, at?: number) {
      copied += src.length;
      // Quadratic reassembly copies terabytes: stop it as soon as it is clearly not linear.
      if (copied > 8 * budget) throw new Error(`copied ${copied} bytes`);
      return set.call(this, src, at);
    };
    proto.slice = function (this: Uint8Array, a?: number, b?: number) {
      const out = slice.call(this, a, b);
      copied += out.length;
      return out;
    };
    const got: Uint8Array[] = [];
    try {
      for await (const f of decodeFrames(chunks, frame.length)) got.push(f);
    } finally {
      proto.set = set;
      proto.slice = slice;
    }
    assert.equal(got.length, 1);
    assert.equal(got[0].length, frame.length);
    assert.ok(copied <= budget, `${copied} bytes copied for a frame of ${frame.length}`);
  });

  it("a frame in far more pieces than an honest sender makes is refused as it arrives", async () => {
    const size = 1024 * 1024;
    // 64-byte chunks: the rule (64 + 1 per 4 KiB that arrived) is broken by the 65th, prefix included.
    const allowed = FRAME_PIECES_FLOOR + Math.floor((64 * (FRAME_PIECES_FLOOR - 1)) / FRAME_PIECE_BYTES);
    let pulled = 0;
    const chunks = (async function* () {
      yield varint(size);
      for (let at = 0; at < size; at += 64, pulled++) yield new Uint8Array(64);
    })();
    const reasons: string[] = [];
    await assert.rejects(
      async () => {
        for await (const _ of decodeFrames(chunks, size, (r) => reasons.push(r))) { /* none */ }
      },
      (e: Error) => e instanceof RangeError && /more than \d+ pieces/.test(e.message),
    );
    assert.deepEqual(reasons, [
      `a frame of ${size} bytes arrived in more than ${allowed} pieces for ${64 * (allowed - 1)} bytes`,
    ]);
    assert.ok(pulled <= allowed, `${pulled} chunks read before the frame was refused`);
    // An honest sender's frames (one write: yamux messages of 64 KiB, WebRTC ones of 16 KiB) pass.
    const honest = (async function* () {
      yield varint(size);
      for (let at = 0; at < size; at += 16 * 1024) yield new Uint8Array(16 * 1024);
      for (let i = 0; i < 200; i++) yield Uint8Array.of(1, i); // and many small frames, one per chunk
    })();
    let frames = 0;
    for await (const _ of decodeFrames(honest, size, (r) => reasons.push(r))) frames++;
    assert.equal(frames, 201);
    assert.equal(reasons.length, 1);
  });

  it("a frame sent in 64-byte chunks over a real stream: the sender is cut off, disconnected and refused", {
    timeout: 30_000,
  }, async () => {
    const v = await victim();
    const attacker = await rawNode();
    const proto = Uint8Array.prototype as unknown as { set(src: ArrayLike<number>, at?: number): void };
    const { set } = proto;
    try {
      const addr = v.net.addrs()[0];
      const victimId = peerIdFromString(v.net.peerId);
      const stream = await attacker.dialProtocol(multiaddr(addr), SYNC_PROTOCOL);
      // 1 MiB keeps it fast where noise runs in pure JS (Bun); the bench sends 4 MiB.
      const size = 1024 * 1024;
      let copied = 0;
      proto.set = function (this: Uint8Array, src: ArrayLike<number>, at?: number) {
        if (src.length >= 4096) copied += src.length; // big copies only: a quadratic join is made of them
        return set.call(this, src, at);
      };
      await send(stream, varint(size));
      const chunk = new Uint8Array(64);
      let sent = 0;
      try {
        for (; sent < size && attacker.getConnections(victimId).length > 0; sent += 64) {
          await send(stream, chunk);
        }
      } catch { /* the victim reset the stream */ }
      await until(
        "the attacker to be disconnected",
        10_000,
        () => attacker.getConnections(victimId).length === 0,
      );
      proto.set = set;
      console.log(`1 MiB in 64-byte chunks over yamux: cut off after ${sent} bytes sent, ${copied} B copied`);
      assert.ok(copied <= 4 * size, `${copied} bytes copied in large copies for ${sent} bytes sent`);
      const id = attacker.peerId.toString();
      assert.ok(
        v.lines.some((l) => l.includes(`peer=${id}`) && l.includes("pieces")),
        `a warning naming ${id} in ${JSON.stringify(v.lines)}`,
      );
      assert.ok(await refuses(attacker, addr), "the victim refuses the attacker");
      await statusOf(v.net);
    } finally {
      proto.set = set;
      await attacker.stop();
      await stopVictim(v);
    }
  });
});

/** The victim still answers its own status (its event loop is free). */
async function statusOf(net: RunningNetwork): Promise<void> {
  const t0 = Date.now();
  await net.peers();
  assert.ok(Date.now() - t0 < 1_000);
}

describe("hostile peer: gossip", () => {
  let node: NetNode | undefined, db: Database | undefined;
  let attacker: Raw | undefined, bystander: Raw | undefined;
  before(async () => {
    db = await open({ storage: "memory" });
    node = await createNetNode({ space: SPACE, listen: ["/ip4/127.0.0.1/tcp/0"] });
    startReplication(db, node, { space: SPACE });
    attacker = await rawNode({ gossip: true });
    bystander = await rawNode({ gossip: true });
  });
  after(async () => {
    await Promise.all([node?.stop(), attacker?.stop(), bystander?.stop()]);
    await db?.close();
  });

  it(
    "garbage is not relayed to a third node and lowers its sender's score",
    { timeout: 30_000 },
    async () => {
      const topic = await spaceTopic(SPACE);
      const received: string[] = [];
      const decoder = new TextDecoder();
      // The bystander has no validator: whatever the victim relays, it sees.
      bystander!.services.pubsub.addEventListener(
        "message",
        (ev: CustomEvent<{ topic: string; data: Uint8Array }>) => {
          if (ev.detail.topic === topic) received.push(decoder.decode(ev.detail.data));
        },
      );
      bystander!.services.pubsub.subscribe(topic);
      attacker!.services.pubsub.subscribe(topic);
      await bystander!.dial(multiaddr(node!.addrs()[0]));
      await attacker!.dial(multiaddr(node!.addrs()[0]));
      await until("the victim to see both subscribe", 10_000, () => node!.topicPeers().length === 2);
      const victimId = peerIdFromString(node!.peerId);
      await until(
        "the attacker to see the victim subscribe",
        10_000,
        () =>
          attacker!.services.pubsub.getSubscribers(topic).some((p: { equals(x: unknown): boolean }) =>
            p.equals(victimId)
          ),
      );
      // A valid op batch travels attacker → victim → bystander (this also waits for the meshes).
      const valid = (n: number) =>
        encodeOps([{
          soul: `ok/${n}`,
          field: "n",
          value: n,
          state: stateOf(Date.now() - 1000, n),
          actor: ACTOR_A,
        }]);
      let n = 0;
      await until("a valid message to be relayed", 10_000, async () => {
        await attacker!.services.pubsub.publish(topic, valid(++n));
        await sleep(100);
        return received.length > 0;
      });
      const score0 = node!.gossipScore(attacker!.peerId.toString());
      const garbage = new TextEncoder().encode("GARBAGE: not an op batch");
      await attacker!.services.pubsub.publish(topic, garbage);
      // Messages from one peer are validated and relayed in order: once this one arrives, the garbage had its turn.
      const marker = valid(1000);
      await attacker!.services.pubsub.publish(topic, marker);
      await until(
        "the next valid message to be relayed",
        10_000,
        () => received.includes(decoder.decode(marker)),
      );
      assert.ok(!received.includes("GARBAGE: not an op batch"), "the victim relayed garbage");
      // Scores are cached for a moment.
      await until(
        "the attacker's score to drop",
        5_000,
        () => node!.gossipScore(attacker!.peerId.toString()) < score0,
      );
      assert.equal(await db!.get("GARBAGE"), undefined);
      assert.deepEqual(await db!.get("ok/1000"), { n: 1000 });
    },
  );
});

describe("hostile peer: DHT", () => {
  let node: NetNode | undefined;
  let attacker: Raw | undefined;
  before(async () => {
    node = await createNetNode({ space: SPACE, limits: { providerRecords: 4 } });
    attacker = await rawNode({ dht: true });
    await attacker.dial(multiaddr(node.addrs().find((a) => !a.includes("/ws"))!));
    const victimId = peerIdFromString(node.peerId);
    await until("the victim in the attacker's routing table", 10_000, async () => {
      for await (const ev of attacker!.services.dht.getClosestPeers(victimId.toMultihash().bytes)) {
        if (ev.name === "FINAL_PEER" && ev.peer.id.equals(victimId)) return true;
      }
      return false;
    });
  });
  after(async () => {
    await Promise.all([node?.stop(), attacker?.stop()]);
  });

  /** Whether the victim hands back a record under `key` when asked. */
  async function victimHolds(key: Uint8Array): Promise<boolean> {
    try {
      for await (const ev of attacker!.services.dht.get(key, { signal: AbortSignal.timeout(5_000) })) {
        // The victim's answer carries the record if it kept it.
        if (ev.name === "PEER_RESPONSE" && ev.from.toString() === node!.peerId && ev.record != null) {
          return true;
        }
      }
    } catch { /* nobody had it */ }
    return false;
  }

  it("refuses /lattice/ records that Lattice does not use", { timeout: 30_000 }, async () => {
    const key = new TextEncoder().encode("/lattice/junk/1");
    for await (
      const _ of attacker!.services.dht.put(key, new Uint8Array(64 * 1024).fill(7))
    ) { /* to the victim */ }
    assert.equal(await victimHolds(key), false, "the victim kept the record");
  });

  it("keeps at most its quota of provider records from one peer", { timeout: 30_000 }, async () => {
    const cids: CID[] = [];
    for (let i = 0; i < 10; i++) {
      const cid = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(`flood-${i}`)));
      cids.push(cid);
      for await (const _ of attacker!.services.dht.provide(cid)) { /* to the victim */ }
    }
    let kept = 0;
    for (const cid of cids) {
      for await (const ev of attacker!.services.dht.findProviders(cid)) {
        if (ev.name === "PEER_RESPONSE" && ev.from.toString() === node!.peerId) {
          if (
            ev.providers.some((p: { id: { equals(x: unknown): boolean } }) => p.id.equals(attacker!.peerId))
          ) kept++;
        }
      }
    }
    assert.equal(kept, 4, `the victim kept ${kept} of 10 provider records`);
  });
});

describe("hostile peer: budgets", () => {
  let v: Awaited<ReturnType<typeof victim>> | undefined;
  after(() => stopVictim(v));

  it("an offender over its stream budget is disconnected, logged and refused for the cool-off", {
    timeout: 30_000,
  }, async () => {
    const coolOffMs = 1_500;
    v = await victim({ streams: 2, coolOffMs });
    const attacker = await rawNode();
    try {
      const addr = v.net.addrs()[0];
      const victimId = peerIdFromString(v.net.peerId);
      await Promise.all(
        [1, 2, 3].map(() => attacker.dialProtocol(multiaddr(addr), SYNC_PROTOCOL).catch(() => undefined)),
      );
      await until(
        "the attacker to be disconnected",
        5_000,
        () => attacker.getConnections(victimId).length === 0,
      );
      const id = attacker.peerId.toString();
      assert.ok(
        v.lines.some((l) => l.includes(`peer=${id}`) && l.includes("refused")),
        `a warning naming ${id} in ${JSON.stringify(v.lines)}`,
      );
      const refusedAt = Date.now();
      assert.ok(await refuses(attacker, addr), "refused during the cool-off");
      assert.equal(v.net.node.refused(id), true);
      await sleep(Math.max(0, coolOffMs - (Date.now() - refusedAt)) + 200);
      assert.equal(await refuses(attacker, addr), false, "welcome back after the cool-off");
      assert.equal(v.net.node.refused(id), false);
    } finally {
      await attacker.stop();
    }
  });

  it("a stream over the budget waits for a slot: admitted if one frees in time, else an offence", {
    timeout: 30_000,
  }, async () => {
    await stopVictim(v);
    v = await victim({ streams: 2 });
    const attacker = await rawNode();
    try {
      const addr = multiaddr(v.net.addrs()[0]);
      const id = attacker.peerId.toString();
      const [first, second] = await Promise.all([1, 2].map(() => attacker.dialProtocol(addr, SYNC_PROTOCOL)));
      const third = await attacker.dialProtocol(addr, SYNC_PROTOCOL); // over the budget: it waits
      await sleep(300);
      first.abort(new Error("done with it"));
      await sleep(500);
      assert.equal(v.net.node.refused(id), false, "a slot freed within the grace: no offence");
      assert.equal(attacker.getConnections(peerIdFromString(v.net.peerId)).length, 1);
      // Two more while two are open: one waits, the other is over the budget with a stream waiting already.
      await Promise.all([1, 2].map(() => attacker.dialProtocol(addr, SYNC_PROTOCOL).catch(() => undefined)));
      const victimNow = v;
      await until("the attacker to be refused", 5_000, () => victimNow.net.node.refused(id));
      void second, third;
    } finally {
      await attacker.stop();
    }
  });

  it(
    "honest sessions one after another stay within a budget of one stream",
    { timeout: 30_000 },
    async () => {
      const a = await victim({ streams: 1 }), b = await victim({ streams: 1 });
      try {
        await a.db.put("from/a", { x: 1 });
        await b.db.put("from/b", { y: 2 });
        await a.net.node.dial(b.net.addrs()[0]);
        for (let i = 0; i < 6; i++) {
          await (i % 2 === 0 ? a.net.syncWith(b.net.peerId) : b.net.syncWith(a.net.peerId));
          await sleep(20);
        }
        assert.equal(a.net.node.refused(b.net.peerId), false);
        assert.equal(b.net.node.refused(a.net.peerId), false);
        assert.deepEqual(a.lines.concat(b.lines), []);
        const syncs = a.net.peers().map((p) => p.sync);
        assert.equal(syncs.length, 1);
        assert.equal(syncs[0].error, undefined);
        assert.deepEqual(await a.db.get("from/b"), { y: 2 });
      } finally {
        await stopVictim(a);
        await stopVictim(b);
      }
    },
  );

  it(
    "an offender over its byte budget on sync streams is disconnected and refused",
    { timeout: 30_000 },
    async () => {
      await stopVictim(v);
      v = await victim({ channelBytes: 256 * 1024 });
      const attacker = await rawNode();
      try {
        const victimId = peerIdFromString(v.net.peerId);
        const stream = await attacker.dialProtocol(multiaddr(v.net.addrs()[0]), SYNC_PROTOCOL);
        // One frame announced at 1 MiB, sent in pieces: the victim stops reading at 256 KiB.
        await send(stream, varint(1024 * 1024));
        const piece = new Uint8Array(16 * 1024);
        for (let i = 0; i < 64 && attacker.getConnections(victimId).length > 0; i++) {
          await send(stream, piece).catch(() => {});
        }
        await until(
          "the attacker to be disconnected",
          5_000,
          () => attacker.getConnections(victimId).length === 0,
        );
        assert.equal(v.net.node.refused(attacker.peerId.toString()), true);
        assert.ok(await refuses(attacker, v.net.addrs()[0]));
      } finally {
        await attacker.stop();
      }
    },
  );
  it("an offender over its gossip byte budget is disconnected and refused", { timeout: 30_000 }, async () => {
    await stopVictim(v);
    v = await victim({ gossipBytes: 4096 });
    const attacker = await rawNode({ gossip: true });
    try {
      const topic = await spaceTopic(SPACE);
      const victimId = peerIdFromString(v.net.peerId);
      await attacker.dial(multiaddr(v.net.addrs()[0]));
      await until(
        "the attacker to see the victim subscribe",
        10_000,
        () =>
          attacker.services.pubsub.getSubscribers(topic).some((p: { equals(x: unknown): boolean }) =>
            p.equals(victimId)
          ),
      );
      // Valid op batches of ~2 KiB each: valid, but more than the victim takes from one peer.
      for (let i = 0; i < 4 && attacker.getConnections(victimId).length > 0; i++) {
        const op = {
          soul: `big/${i}`,
          field: "text",
          value: "x".repeat(2000),
          state: stateOf(Date.now() - 1000),
          actor: ACTOR_A,
        };
        await attacker.services.pubsub.publish(topic, encodeOps([op])).catch(() => {});
        await sleep(50);
      }
      await until(
        "the attacker to be disconnected",
        5_000,
        () => attacker.getConnections(victimId).length === 0,
      );
      assert.equal(v.net.node.refused(attacker.peerId.toString()), true);
      assert.ok(
        v.lines.some((l) => l.includes(`peer=${attacker.peerId.toString()}`) && l.includes("gossip bytes")),
      );
      assert.ok(await refuses(attacker, v.net.addrs()[0]));
    } finally {
      await attacker.stop();
    }
  });
});

describe("hostile peer: deferred-op flood through sync", () => {
  it(
    "a peer that syncs ops beyond the horizon is cut off after its first frame, logged and refused",
    { timeout: 30_000 },
    async () => {
      const coolOffMs = 2_000;
      const v = await victim({ coolOffMs });
      const attacker = await rawNode();
      try {
        const victimId = peerIdFromString(v.net.peerId);
        const stream = await attacker.dialProtocol(multiaddr(v.net.addrs()[0]), SYNC_PROTOCOL);
        const far = stateOf(2 ** 48 - 1); // year 10889
        // 20 frames of 1,000 ops each, as fast as the stream takes them.
        for (let f = 0; f < 20 && attacker.getConnections(victimId).length > 0; f++) {
          const ops = Array.from({ length: 1000 }, (_, i) => ({
            soul: `future/${f}/${i}`,
            field: "v",
            value: i,
            state: far,
            actor: ACTOR_A,
          }));
          const frame = await encodeSyncFrame(encodeMessage({ type: "ops", ops }));
          await send(stream, new Uint8Array([...varint(frame.length), ...frame])).catch(() => {});
        }
        await until(
          "the attacker to be disconnected",
          5_000,
          () => attacker.getConnections(victimId).length === 0,
        );
        const id = attacker.peerId.toString();
        assert.equal(v.net.node.refused(id), true);
        assert.ok(
          v.lines.some((l) => l.includes(`peer=${id}`) && l.includes("Sync refused")),
          `a warning naming ${id} in ${JSON.stringify(v.lines)}`,
        );
        // The ops the victim decoded and checked: its first frame's, not 20,000.
        assert.equal(v.db.deferredStatus().refused, 1000);
        assert.ok(await refuses(attacker, v.net.addrs()[0]), "refused during the cool-off");
      } finally {
        await attacker.stop();
        await stopVictim(v);
      }
    },
  );
});

describe("hostile peer: limits option", () => {
  it("checks network.limits and fills in the defaults", () => {
    assert.deepEqual(checkNetworkOptions({ limits: { streams: 2 } })?.limits, {
      ...DEFAULT_PEER_LIMITS,
      streams: 2,
    });
    assert.throws(() => checkNetworkOptions({ limits: { streams: 0 } }), RangeError);
    assert.throws(
      () => checkNetworkOptions({ limits: { stream: 2 } }),
      /Unknown network.limits key "stream"/,
    );
    assert.throws(() => checkNetworkOptions({ limits: { coolOffMs: "1s" } }), TypeError);
  });
});
