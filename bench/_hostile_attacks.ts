/**
 * The attacks of the `hostile` bench (issue 11), one function each, against a
 * running `lattice serve` node (the victim) on 127.0.0.1: its HTTP API and its
 * libp2p listen address. Every attack is bounded in count and in time, talks
 * only to the victim over loopback, and stops by itself; its `run` resolves
 * with one line saying what happened (answers, refusals, how long it took),
 * never rejects because the victim refused it, and closes what it opened.
 *
 * Kept apart from bench/hostile.bench.ts so that tests can reuse an attack
 * with smaller {@link HostileSizes}.
 *
 * The peer-to-peer attacks dial with their own libp2p node (TCP, noise,
 * yamux, identify, gossipsub; {@link startAttacker}), not with
 * `createNetNode`: they need raw streams, to write frames a Lattice node would
 * never send, in chunks it would never use.
 *
 * Not a bench file (no `.bench.` in its name).
 *
 * @module
 */
import { connect as netConnect, type Socket } from "node:net";
import { constants as zlibConstants, deflateRawSync } from "node:zlib";
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { type GossipSub, gossipsub } from "@libp2p/gossipsub";
import type { Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { formatHlc } from "../core/clock.ts";
import { encodeOps, type Op } from "../core/op.ts";
import { encodeMessage, encodeSyncFrame, SYNC_PROTOCOL } from "../core/sync/mod.ts";
import { DHT_PROTOCOL, spaceTopic } from "../net/node.ts";

/** The node under attack, as its `--json` ready line describes it. */
export interface Victim {
  /** Its HTTP API, `http://127.0.0.1:PORT`. */
  readonly http: string;
  /** The bearer token of its HTTP API (the ready object's `token`), when it has one. */
  readonly token?: string;
  /** Its peer id. */
  readonly peerId: string;
  /** A TCP multiaddr of it, with `/p2p/<id>`. */
  readonly addr: string;
  /** The space it serves. */
  readonly space: string;
}

/** What an attack is given. */
export interface AttackContext {
  readonly victim: Victim;
  /** Progress lines (the bench sends them to stderr). */
  readonly log: (line: string) => void;
}

/** One attack of the bench. */
export interface Attack {
  /** Short name, the start of the bench's case names: `sync deflate bomb`. */
  readonly name: string;
  /** What it sends, with its sizes, in one line. */
  readonly what: string;
  /** State the attack needs, created before the idle measurement (a graph to walk, tombstones to skip). */
  prepare?(ctx: AttackContext): Promise<void>;
  /** Runs the attack to its end; resolves with what happened, in one line. */
  run(ctx: AttackContext): Promise<string>;
}

/** Sizes of the attacks; {@link BENCH_SIZES} are those of the issue. */
export interface HostileSizes {
  /** Bytes a deflate bomb inflates to (1 GiB → a frame of about 1 MiB). */
  readonly bombInflatedBytes: number;
  /** Nodes of the fully linked graph a query walks. */
  readonly queryNodes: number;
  /** `"*"` steps of the query's path (4,000 ≈ a 16 KB body). */
  readonly queryPathSteps: number;
  /** Child objects of one `PUT`. */
  readonly putChildren: number;
  /** Far-future ops planted through sync. */
  readonly deferredRows: number;
  /** Gossip messages of one far-future op each (and a live marker), sent one after another after the planting. */
  readonly deferredSting: number;
  /** Length of the slow sync frame. */
  readonly slowFrameBytes: number;
  /** Bytes per write of the slow frame. */
  readonly slowChunkBytes: number;
  /** Garbage gossip messages, and the bytes of each. */
  readonly gossipMessages: number;
  readonly gossipBytes: number;
  /** DHT `PUT_VALUE`s of `/lattice/` records, the bytes of each value, and `ADD_PROVIDER`s. */
  readonly dhtRecords: number;
  readonly dhtRecordBytes: number;
  readonly dhtProviders: number;
  /** Event streams that never read, the writes that fill them, and each write's value size. */
  readonly sseWatchers: number;
  readonly sseWrites: number;
  readonly sseValueBytes: number;
  /** Deleted nodes in front of the live ones, and the `GET /v1/nodes?limit=1` requests sent. */
  readonly tombstones: number;
  readonly listRequests: number;
}

/** The sizes of issue 11. */
export const BENCH_SIZES: HostileSizes = {
  bombInflatedBytes: 1024 * 1024 * 1024,
  queryNodes: 64,
  queryPathSteps: 4_000,
  putChildren: 65_536,
  deferredRows: 260_000,
  deferredSting: 5,
  slowFrameBytes: 4 * 1024 * 1024,
  slowChunkBytes: 64,
  gossipMessages: 2_000,
  gossipBytes: 16 * 1024,
  dhtRecords: 1_000,
  dhtRecordBytes: 64 * 1024,
  dhtProviders: 1_000,
  sseWatchers: 100,
  sseWrites: 24,
  sseValueBytes: 512 * 1024,
  tombstones: 200_000,
  listRequests: 10,
};

/** The longest any attack waits for one answer of the victim. */
const ANSWER_TIMEOUT_MS = 120_000;
/** Ops per sync frame when planting. */
const PLANT_OPS_PER_FRAME = 20_000;
/** The greatest ms a state can hold (2^48 − 1: year 10889). */
const FAR_FUTURE_MS = 2 ** 48 - 1;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const MiB = (n: number) => `${(n / 1048576).toFixed(n % 1048576 ? 1 : 0)} MiB`;

/** The attacks, in the order of the issue. */
export function hostileAttacks(sizes: HostileSizes = BENCH_SIZES): Attack[] {
  return [
    syncDeflateBomb(sizes),
    queryFreeze(sizes),
    quadraticPut(sizes),
    deferredFlood(sizes),
    slowFrames(sizes),
    gossipGarbage(sizes),
    dhtRecordFlood(sizes),
    sseFlood(sizes),
    sseFlood(sizes, 0),
    tombstones(sizes),
  ];
}

// ---------------------------------------------------------------- HTTP

/** Headers of every request to the victim: its bearer token when it has one. */
export function authHeaders(victim: Victim, extra: Record<string, string> = {}): Record<string, string> {
  return victim.token ? { authorization: `Bearer ${victim.token}`, ...extra } : { ...extra };
}

/** One request to the victim: status, body text and seconds taken; a network error gives status 0. */
async function request(
  victim: Victim,
  method: string,
  path: string,
  body?: string,
  contentType = "application/json",
): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  try {
    const res = await fetch(victim.http + path, {
      method,
      headers: authHeaders(victim, body === undefined ? {} : { "content-type": contentType }),
      body,
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    const text = await res.text();
    return { status: res.status, text, ms: performance.now() - t0 };
  } catch (e) {
    return { status: 0, text: (e as Error).message, ms: performance.now() - t0 };
  }
}

/** `"413 payload_too_large"`, `"200"`, or `"no answer (why)"`. */
function answer(r: { status: number; text: string }): string {
  if (r.status === 0) return `no answer (${r.text})`;
  if (r.status < 400) return String(r.status);
  try {
    return `${r.status} ${(JSON.parse(r.text) as { error: { code: string } }).error.code}`;
  } catch {
    return String(r.status);
  }
}

/** Polls `GET /v1/nodes/{soul}` until the node exists (at least once); false after `ms`. */
export async function waitForNode(victim: Victim, soul: string, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    const r = await request(victim, "GET", `/v1/nodes/${encodeURIComponent(soul)}`);
    if (r.status === 200) return true;
    if (performance.now() >= deadline) return false;
    await sleep(100);
  }
}

// ---------------------------------------------------------------- libp2p

/** A libp2p node of the attacker, connected to the victim. */
export interface Attacker {
  readonly libp2p: Libp2p<{ pubsub: GossipSub }>;
  /** The space's gossip topic. */
  readonly topic: string;
  /** Opens a stream to the victim. */
  stream(protocol: string): Promise<Stream>;
  /** Publishes on the space topic once the victim is subscribed; redials it when it dropped the connection. */
  publish(bytes: Uint8Array): Promise<void>;
  stop(): Promise<void>;
}

/** Starts an attacker node on 127.0.0.1 and dials the victim. */
export async function startAttacker(victim: Victim): Promise<Attacker> {
  const libp2p = await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ floodPublish: true, emitSelf: false }),
    },
  });
  const topic = await spaceTopic(victim.space);
  const addr = multiaddr(victim.addr);
  try {
    await libp2p.dial(addr, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    await libp2p.stop();
    throw e;
  }
  const victimId = peerIdFromString(victim.peerId);
  return {
    libp2p,
    topic,
    stream: (protocol) => libp2p.dialProtocol(addr, protocol, { signal: AbortSignal.timeout(10_000) }),
    async publish(bytes) {
      // A victim that froze may have dropped the connection: redial, and wait until it is subscribed again.
      const deadline = performance.now() + ANSWER_TIMEOUT_MS;
      for (;;) {
        try {
          if (libp2p.getConnections(victimId).length === 0) {
            await libp2p.dial(addr, { signal: AbortSignal.timeout(10_000) });
          }
          if (libp2p.services.pubsub.getSubscribers(topic).some((p) => p.equals(victimId))) {
            await libp2p.services.pubsub.publish(topic, bytes);
            return;
          }
        } catch (e) {
          if (performance.now() > deadline) throw e;
        }
        if (performance.now() > deadline) throw new Error("the victim is not subscribed to the space topic");
        await sleep(50);
      }
    },
    stop: async () => {
      await libp2p.stop();
    },
  };
}

/** Sends `bytes` on `stream`, waiting while it is congested. */
async function write(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain({ signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
}

/** An unsigned LEB128 varint. */
function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) at += (out.set(p, at), p.length);
  return out;
}

/** A length-prefixed frame, as Lattice channels and kad-dht delimit them. */
function framed(bytes: Uint8Array): Uint8Array {
  return concat([varint(bytes.length), bytes]);
}

/**
 * Reads length-prefixed frames from a stream: `next()` gives the next frame,
 * or undefined once the stream ended, failed or `ms` passed.
 */
function frameReader(stream: Stream): { next(ms: number): Promise<Uint8Array | undefined> } {
  const it = (stream as unknown as AsyncIterable<Uint8Array | { subarray(): Uint8Array }>)
    [Symbol.asyncIterator]();
  let buf: Uint8Array = new Uint8Array(0);
  let ended = false;
  const parse = (): Uint8Array | undefined => {
    let len = 0, shift = 1, i = 0;
    for (;;) {
      if (i >= buf.length) return undefined;
      const b = buf[i++];
      len += (b & 0x7f) * shift;
      shift *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (buf.length - i < len) return undefined;
    const frame = buf.slice(i, i + len);
    buf = buf.slice(i + len);
    return frame;
  };
  return {
    async next(ms) {
      const deadline = performance.now() + ms;
      for (;;) {
        const f = parse();
        if (f || ended) return f;
        const left = deadline - performance.now();
        if (left <= 0) return undefined;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          it.next().catch(() => ({ done: true as const, value: undefined })),
          new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), left)),
        ]);
        clearTimeout(timer);
        if (r === "late") return undefined;
        if (r.done) {
          ended = true;
          continue;
        }
        const chunk = r.value instanceof Uint8Array ? r.value : r.value.subarray();
        buf = concat([buf, chunk]);
      }
    },
  };
}

/** Waits until the victim ends `stream` (or it fails); the ms waited, or undefined after `ms`. */
async function waitForEnd(stream: Stream, ms: number): Promise<number | undefined> {
  const t0 = performance.now();
  const reader = frameReader(stream);
  while (performance.now() - t0 < ms) {
    const f = await reader.next(ms - (performance.now() - t0));
    if (f === undefined) return performance.now() - t0 < ms ? performance.now() - t0 : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------- ops

function randomHex64(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** Sync frames (length-prefixed) carrying `ops` as OPS messages, `PLANT_OPS_PER_FRAME` per frame. */
async function opsFrames(ops: readonly Op[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = 0; i < ops.length; i += PLANT_OPS_PER_FRAME) {
    const payload = encodeMessage({ type: "ops", ops: ops.slice(i, i + PLANT_OPS_PER_FRAME) });
    out.push(framed(await encodeSyncFrame(payload)));
  }
  return out;
}

/**
 * The framed OPS frames {@link plantThroughSync} would send for `count` ops
 * made by `make` and the live `marker`, built ahead (in an attack's
 * `prepare`): building and compressing them runs in this process, whose
 * event loop also times the honest writes, so building them during the
 * attack measured the attacker's CPU as the victim's latency.
 */
async function plantFrames(count: number, make: (i: number) => Op, marker: string): Promise<Uint8Array[]> {
  const actor = randomHex64(), out: Uint8Array[] = [];
  for (let i = 0; i < count; i += PLANT_OPS_PER_FRAME) {
    const ops: Op[] = [];
    for (let k = i; k < Math.min(count, i + PLANT_OPS_PER_FRAME); k++) ops.push(make(k));
    if (i + PLANT_OPS_PER_FRAME >= count) {
      ops.push({ soul: marker, field: "planted", value: count, state: formatHlc(Date.now(), 0), actor });
    }
    out.push(...await opsFrames(ops));
  }
  return out;
}

/**
 * Pushes `ops` into the victim through one sync session (as a replica pushing
 * records the victim lacks would), ending with a live marker node, and waits
 * until the marker is visible. The ops are built in batches by `make`, or
 * were built beforehand as `prebuilt` frames (see {@link plantFrames}).
 */
async function plantThroughSync(
  ctx: AttackContext,
  count: number,
  make: (i: number) => Op,
  marker: string,
  prebuilt?: readonly Uint8Array[],
): Promise<string> {
  const attacker = await startAttacker(ctx.victim);
  const t0 = performance.now();
  try {
    const stream = await attacker.stream(SYNC_PROTOCOL);
    const actor = randomHex64();
    let sent = 0;
    try {
      for (let i = 0; prebuilt && i < prebuilt.length; i++) {
        await write(stream, prebuilt[i]);
        sent += Math.min(PLANT_OPS_PER_FRAME, count - sent) + (i === prebuilt.length - 1 ? 1 : 0);
      }
      for (let i = 0; !prebuilt && i < count; i += PLANT_OPS_PER_FRAME) {
        const ops: Op[] = [];
        for (let k = i; k < Math.min(count, i + PLANT_OPS_PER_FRAME); k++) ops.push(make(k));
        if (i + PLANT_OPS_PER_FRAME >= count) {
          ops.push({ soul: marker, field: "planted", value: count, state: formatHlc(Date.now(), 0), actor });
        }
        for (const f of await opsFrames(ops)) await write(stream, f);
        sent += ops.length;
      }
      const done = encodeMessage({ type: "reconcile", ranges: [], need: new Uint8Array(0) });
      await write(stream, framed(await encodeSyncFrame(done)));
    } catch (e) {
      return `sync stream failed after ${sent} ops: ${(e as Error).message}`;
    }
    // The victim closes the stream once it merged every frame, or on the first it refuses.
    const ended = await waitForEnd(stream, 4 * ANSWER_TIMEOUT_MS);
    const seen = await waitForNode(ctx.victim, marker, ended === undefined ? 0 : 5_000);
    stream.abort(new Error("done"));
    return seen
      ? `${count} ops applied in ${secs(performance.now() - t0)}`
      : `${count} ops sent; not applied after ${secs(performance.now() - t0)}`;
  } finally {
    await attacker.stop();
  }
}

// ---------------------------------------------------------------- the attacks

/**
 * Raw DEFLATE of `inflated` zero bytes, built from one compressed 16 MiB
 * segment (ended by a full flush, so it is byte-aligned and refers to
 * nothing before it) repeated, then an empty final block.
 */
export function deflateBomb(inflated: number): Uint8Array {
  const SEGMENT = 16 * 1024 * 1024;
  const n = Math.max(1, Math.round(inflated / SEGMENT));
  const seg = deflateRawSync(new Uint8Array(Math.min(SEGMENT, inflated)), {
    level: 9,
    finishFlush: zlibConstants.Z_FULL_FLUSH,
  });
  const parts: Uint8Array[] = Array(n).fill(seg);
  parts.push(Uint8Array.of(3, 0)); // a final, empty fixed-Huffman block
  return concat(parts);
}

function syncDeflateBomb(sizes: HostileSizes): Attack {
  let frame: Uint8Array | undefined;
  return {
    name: "sync deflate bomb",
    what: `one sync frame of deflate-raw zeros inflating to ${MiB(sizes.bombInflatedBytes)}`,
    // Outside the measured phases (see deferredFlood): the bomb is built, and a first attacker node
    // started and stopped, since the first libp2p start in this process blocks the loop timing the
    // honest writes.
    async prepare(ctx) {
      frame = concat([Uint8Array.of(1), deflateBomb(sizes.bombInflatedBytes)]); // flag 1: deflate-raw
      await (await startAttacker(ctx.victim)).stop();
    },
    async run(ctx) {
      if (frame === undefined) throw new Error("prepare did not run");
      const attacker = await startAttacker(ctx.victim);
      try {
        const stream = await attacker.stream(SYNC_PROTOCOL);
        const t0 = performance.now();
        const bytes = framed(frame);
        for (let i = 0; i < bytes.length; i += 65536) await write(stream, bytes.subarray(i, i + 65536));
        const ended = await waitForEnd(stream, 60_000);
        stream.abort(new Error("done"));
        return `${(frame.length / 1024).toFixed(0)} KiB frame; victim ` +
          (ended === undefined
            ? "kept the stream open for 60 s"
            : `closed it after ${secs(performance.now() - t0)}`);
      } catch (e) {
        return `refused: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

function queryFreeze(sizes: HostileSizes): Attack {
  const n = sizes.queryNodes;
  return {
    name: "query freeze",
    what: `POST /v1/query (text/plain), path of ${sizes.queryPathSteps} "*" over ${n} fully linked nodes`,
    async prepare(ctx) {
      for (let i = 0; i < n; i++) {
        const links: Record<string, { "#": string }> = {};
        for (let j = 0; j < n; j++) links[`l${j}`] = { "#": `graph/${j}` };
        const r = await request(ctx.victim, "PUT", `/v1/nodes/graph%2F${i}`, JSON.stringify(links));
        if (r.status !== 200) throw new Error(`cannot write the graph: ${answer(r)} ${r.text}`);
      }
    },
    async run(ctx) {
      const body = JSON.stringify({ from: "graph/0", path: Array(sizes.queryPathSteps).fill("*") });
      const r = await request(ctx.victim, "POST", "/v1/query", body, "text/plain");
      return `${(body.length / 1024).toFixed(1)} KiB query answered ${answer(r)} after ${secs(r.ms)}`;
    },
  };
}

function quadraticPut(sizes: HostileSizes): Attack {
  return {
    name: "quadratic put",
    what: `PUT of one node with ${sizes.putChildren} child objects`,
    async run(ctx) {
      const parts: string[] = [];
      for (let i = 0; i < sizes.putChildren; i++) parts.push(`"c${i}":{"v":${i}}`);
      const body = `{${parts.join(",")}}`;
      const r = await request(ctx.victim, "PUT", "/v1/nodes/wide", body);
      return `${(body.length / 1048576).toFixed(2)} MiB PUT answered ${answer(r)} after ${secs(r.ms)}`;
    },
  };
}

function deferredFlood(sizes: HostileSizes): Attack {
  const actor = randomHex64();
  const make = (i: number): Op => ({
    soul: `future/${i}`,
    field: "v",
    value: i,
    state: formatHlc(FAR_FUTURE_MS, i & 0xffff),
    actor,
  });
  let frames: Uint8Array[] | undefined;
  return {
    name: "deferred-op flood",
    what: `${sizes.deferredRows} ops stamped in year 10889 through sync, then ${sizes.deferredSting} ` +
      "gossip messages of one such op, each followed by a live marker and sent once the last marker showed",
    // Outside the measured phases, as the attacker's work runs in the event loop that times the honest
    // writes: the frames are built, and a first attacker node started and stopped (the first libp2p
    // start in this process blocked that loop for ~130 ms, measured as the victim's latency).
    async prepare(ctx) {
      frames = await plantFrames(sizes.deferredRows, make, "future-marker/1");
      await (await startAttacker(ctx.victim)).stop();
    },
    async run(ctx) {
      const planted = await plantThroughSync(ctx, sizes.deferredRows, make, "future-marker/1", frames);
      const attacker = await startAttacker(ctx.victim);
      const took: string[] = [];
      try {
        // Each sting: a message of one far-future op, then one of a live marker, which shows once both were taken.
        for (let i = 0; i < sizes.deferredSting; i++) {
          const t0 = performance.now();
          const marker = `future-marker/sting${i}`;
          const future = {
            soul: `future/sting${i}`,
            field: "v",
            value: i,
            state: formatHlc(FAR_FUTURE_MS, 0),
          };
          await attacker.publish(encodeOps([{ ...future, actor }]));
          await attacker.publish(
            encodeOps([{ soul: marker, field: "v", value: i, state: formatHlc(Date.now(), 0), actor }]),
          );
          if (!await waitForNode(ctx.victim, marker, ANSWER_TIMEOUT_MS / 2)) {
            took.push("not absorbed in 60 s");
            break;
          }
          took.push(secs(performance.now() - t0));
        }
        return `planting: ${planted}; gossip stings absorbed after ${took.join(", ")}`;
      } catch (e) {
        return `planting: ${planted}; stings after ${took.join(", ")} refused: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

function slowFrames(sizes: HostileSizes): Attack {
  return {
    name: "slow frames",
    what: `one ${MiB(sizes.slowFrameBytes)} sync frame written ${sizes.slowChunkBytes} bytes at a time`,
    async run(ctx) {
      const attacker = await startAttacker(ctx.victim);
      const t0 = performance.now();
      let sent = 0;
      try {
        const stream = await attacker.stream(SYNC_PROTOCOL);
        await write(stream, varint(sizes.slowFrameBytes));
        const chunk = new Uint8Array(sizes.slowChunkBytes).fill(0x41);
        try {
          while (sent < sizes.slowFrameBytes && performance.now() - t0 < 4 * ANSWER_TIMEOUT_MS) {
            await write(stream, chunk.subarray(0, Math.min(chunk.length, sizes.slowFrameBytes - sent)));
            sent += chunk.length;
          }
        } catch (e) {
          return `victim closed the stream after ${sent} bytes, ${secs(performance.now() - t0)}: ` +
            (e as Error).message;
        }
        const ended = await waitForEnd(stream, 30_000);
        stream.abort(new Error("done"));
        return `${sent} bytes in ${secs(performance.now() - t0)}; victim ` +
          (ended === undefined ? "kept the stream open" : "closed the stream");
      } catch (e) {
        return `refused after ${sent} bytes: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

function gossipGarbage(sizes: HostileSizes): Attack {
  return {
    name: "gossip garbage",
    what: `${sizes.gossipMessages} gossip messages of ${sizes.gossipBytes / 1024} KiB random bytes, 200/s`,
    async run(ctx) {
      const attacker = await startAttacker(ctx.victim);
      const t0 = performance.now();
      let sent = 0;
      try {
        for (; sent < sizes.gossipMessages; sent++) {
          const bytes = new Uint8Array(sizes.gossipBytes);
          for (let k = 0; k < bytes.length; k += 65536) crypto.getRandomValues(bytes.subarray(k, k + 65536));
          await attacker.publish(bytes);
          if (sent % 20 === 19) await sleep(Math.max(0, (sent + 1) * 5 - (performance.now() - t0)));
        }
        await sleep(1000);
        const still = attacker.libp2p.getConnections().length > 0;
        return `${sent} messages in ${secs(performance.now() - t0)}; ` +
          (still ? "still connected" : "disconnected by the victim");
      } catch (e) {
        return `stopped after ${sent} messages: ${(e as Error).message}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

/** Protobuf: a length-delimited field. */
function pbBytes(field: number, bytes: Uint8Array): Uint8Array {
  return concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

/** Protobuf: a varint field. */
function pbVarint(field: number, n: number): Uint8Array {
  return concat([varint(field << 3), varint(n)]);
}

const DHT_PUT_VALUE = 0, DHT_ADD_PROVIDER = 2;

function dhtRecordFlood(sizes: HostileSizes): Attack {
  return {
    name: "DHT record flood",
    what: `${sizes.dhtRecords} PUT_VALUE of ${sizes.dhtRecordBytes / 1024} KiB /lattice/ records, ` +
      `${sizes.dhtProviders} ADD_PROVIDER`,
    async run(ctx) {
      const attacker = await startAttacker(ctx.victim);
      const utf8 = new TextEncoder();
      let stored = 0, refused = 0, providers = 0;
      const t0 = performance.now();
      try {
        let stream: Stream | undefined, reader: ReturnType<typeof frameReader> | undefined;
        const value = new Uint8Array(sizes.dhtRecordBytes);
        for (let i = 0; i < sizes.dhtRecords && refused < 20; i++) {
          try {
            if (!stream) {
              stream = await attacker.stream(DHT_PROTOCOL);
              reader = frameReader(stream);
            }
            crypto.getRandomValues(value.subarray(0, 64));
            const key = utf8.encode(`/lattice/junk-${i}-${randomHex64()}`);
            const record = concat([pbBytes(1, key), pbBytes(2, value), pbBytes(5, utf8.encode(rfc3339()))]);
            await write(
              stream,
              framed(concat([pbVarint(1, DHT_PUT_VALUE), pbBytes(2, key), pbBytes(3, record)])),
            );
            if (await reader!.next(10_000)) stored++;
            else throw new Error("no answer");
          } catch {
            refused++;
            stream?.abort(new Error("refused"));
            stream = undefined;
          }
        }
        stream?.abort(new Error("done"));
        const me = attacker.libp2p.peerId.toMultihash().bytes;
        const addrs = attacker.libp2p.getMultiaddrs().map((a) => a.bytes);
        const peer = concat([pbBytes(1, me), ...addrs.map((a) => pbBytes(2, a))]);
        try {
          const s = await attacker.stream(DHT_PROTOCOL);
          for (; providers < sizes.dhtProviders; providers++) {
            const cid = CID.createV1(0x55, await sha256.digest(crypto.getRandomValues(new Uint8Array(32))));
            await write(
              s,
              framed(concat([pbVarint(1, DHT_ADD_PROVIDER), pbBytes(2, cid.bytes), pbBytes(9, peer)])),
            );
          }
          await sleep(1000); // ADD_PROVIDER has no answer: give the victim time to take them in
          s.abort(new Error("done"));
        } catch {
          // refused: counted by `providers`
        }
        return `${stored} records answered, ${refused} refused; ${providers} ADD_PROVIDER sent ` +
          `in ${secs(performance.now() - t0)}`;
      } finally {
        await attacker.stop();
      }
    },
  };
}

/** Now as RFC 3339 with nanoseconds, as libp2p records carry their time. */
function rfc3339(): string {
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}

/**
 * `watchers` GET /v1/watch that never read, then the owner's large writes that fill them. With no
 * watchers it is the control row "large writes": the cost of those writes alone (storage, gossip of
 * 512 KiB values to the honest peer), which the SSE flood's row includes and should be read against.
 */
function sseFlood(sizes: HostileSizes, watchers: number = sizes.sseWatchers): Attack {
  return {
    name: watchers > 0 ? "SSE flood" : "large writes (control for SSE flood)",
    what: watchers > 0
      ? `${watchers} GET /v1/watch that never read, then ${sizes.sseWrites} writes of ` +
        `${sizes.sseValueBytes / 1024} KiB`
      : `the SSE flood's ${sizes.sseWrites} writes of ${sizes.sseValueBytes / 1024} KiB, with no watcher`,
    async run(ctx) {
      const url = new URL(ctx.victim.http);
      const sockets: Socket[] = [];
      /** The status line of each watch's answer ("HTTP/1.1 200 OK"), read once; nothing after it is read. */
      const statuses = new Map<string, number>();
      const head = [
        "GET /v1/watch?prefix= HTTP/1.1",
        `Host: ${url.host}`,
        "Accept: text/event-stream",
        ...Object.entries(authHeaders(ctx.victim)).map(([k, v]) => `${k}: ${v}`),
        "",
        "",
      ].join("\r\n");
      try {
        for (let i = 0; i < watchers; i++) {
          const s = netConnect({ host: url.hostname, port: Number(url.port) });
          s.on("error", () => {});
          await new Promise<void>((resolve) => {
            s.once("connect", () => resolve());
            s.once("error", () => resolve());
          });
          s.once("data", (chunk: Uint8Array) => {
            s.pause(); // never read again: the victim's buffers fill
            const line = new TextDecoder().decode(chunk.subarray(0, 64)).split("\r\n")[0];
            const status = line.split(" ").slice(1, 2).join("") || "?";
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
          });
          s.write(head);
          sockets.push(s);
        }
        await sleep(500);
        const blob = "x".repeat(sizes.sseValueBytes);
        let slowest = 0;
        const answers = new Map<string, number>();
        for (let i = 0; i < sizes.sseWrites; i++) {
          const r = await request(ctx.victim, "PUT", `/v1/nodes/flood%2F${i}`, JSON.stringify({ blob }));
          slowest = Math.max(slowest, r.ms);
          answers.set(answer(r), (answers.get(answer(r)) ?? 0) + 1);
        }
        await sleep(2000);
        const summary = [...answers].map(([a, n]) => `${n}× ${a}`).join(", ");
        const watches = [...statuses].map(([st, n]) => `${n}× ${st}`).join(", ") || "none answered";
        return `${sockets.length} watchers (${watches}); writes ${summary}, ` +
          `slowest ${secs(slowest)}`;
      } finally {
        for (const s of sockets) s.destroy();
      }
    },
  };
}

function tombstones(sizes: HostileSizes): Attack {
  return {
    name: "tombstones",
    what: `${sizes.tombstones} deleted nodes (planted through sync) before the live ones, then ` +
      `${sizes.listRequests} GET /v1/nodes?limit=1`,
    async prepare(ctx) {
      const actor = randomHex64();
      const base = Date.now() - 60_000;
      // Souls that sort before every live one, so that a listing must pass them all.
      const planted = await plantThroughSync(ctx, sizes.tombstones, (i) => ({
        soul: `0tomb/${String(i).padStart(7, "0")}`,
        field: "v",
        value: null,
        state: formatHlc(base + (i >>> 16), i & 0xffff),
        actor,
      }), "zz-tomb-marker");
      ctx.log(`tombstones: ${planted}`);
    },
    async run(ctx) {
      let slowest = 0, total = 0;
      const answers = new Set<string>();
      for (let i = 0; i < sizes.listRequests; i++) {
        const r = await request(ctx.victim, "GET", "/v1/nodes?limit=1");
        slowest = Math.max(slowest, r.ms);
        total += r.ms;
        answers.add(answer(r));
        await sleep(100);
      }
      return `${sizes.listRequests} listings answered ${[...answers].join("/")}, mean ` +
        `${secs(total / sizes.listRequests)}, slowest ${secs(slowest)}`;
    },
  };
}
