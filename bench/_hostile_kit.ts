/**
 * What the attacks of the `hostile` bench (issue 11) are made of: the victim
 * and attack types, the sizes of the issue, requests to the victim's HTTP API,
 * a libp2p node of the attacker's own (TCP, noise, yamux, identify,
 * gossipsub; {@link startAttacker}) with raw streams, to write frames a
 * Lattice node would never send, in chunks it would never use, and ops
 * planted through sync. The attacks themselves are in
 * bench/_hostile_peer_attacks.ts and bench/_hostile_http_attacks.ts.
 *
 * Not a bench file (no `.bench.` in its name).
 *
 * @module
 */
import { createLibp2p, type Libp2p } from "libp2p";
import { tcp } from "@libp2p/tcp";
import { noise } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { type GossipSub, gossipsub } from "@libp2p/gossipsub";
import type { Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { formatHlc } from "../core/clock.ts";
import type { Op } from "../core/op.ts";
import { encodeMessage, encodeSyncFrame, SYNC_PROTOCOL } from "../core/sync/mod.ts";
import { spaceTopic } from "../net/node.ts";

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
export const ANSWER_TIMEOUT_MS = 120_000;
/** Ops per sync frame when planting. */
export const PLANT_OPS_PER_FRAME = 20_000;
/** The greatest ms a state can hold (2^48 − 1: year 10889). */
export const FAR_FUTURE_MS = 2 ** 48 - 1;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const MiB = (n: number) => `${(n / 1048576).toFixed(n % 1048576 ? 1 : 0)} MiB`;

// ---------------------------------------------------------------- HTTP

/** Headers of every request to the victim: its bearer token when it has one. */
export function authHeaders(victim: Victim, extra: Record<string, string> = {}): Record<string, string> {
  return victim.token ? { authorization: `Bearer ${victim.token}`, ...extra } : { ...extra };
}

/** One request to the victim: status, body text and seconds taken; a network error gives status 0. */
export async function request(
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
export function answer(r: { status: number; text: string }): string {
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
export async function write(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain({ signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
}

/** An unsigned LEB128 varint. */
export function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Uint8Array.from(out);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) at += (out.set(p, at), p.length);
  return out;
}

/** A length-prefixed frame, as Lattice channels and kad-dht delimit them. */
export function framed(bytes: Uint8Array): Uint8Array {
  return concat([varint(bytes.length), bytes]);
}

/**
 * Reads length-prefixed frames from a stream: `next()` gives the next frame,
 * or undefined once the stream ended, failed or `ms` passed.
 */
export function frameReader(stream: Stream): { next(ms: number): Promise<Uint8Array | undefined> } {
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
export async function waitForEnd(stream: Stream, ms: number): Promise<number | undefined> {
  const t0 = performance.now();
  const reader = frameReader(stream);
  while (performance.now() - t0 < ms) {
    const f = await reader.next(ms - (performance.now() - t0));
    if (f === undefined) return performance.now() - t0 < ms ? performance.now() - t0 : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------- ops

export function randomHex64(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join(
    "",
  );
}

/** Sync frames (length-prefixed) carrying `ops` as OPS messages, `PLANT_OPS_PER_FRAME` per frame. */
export async function opsFrames(ops: readonly Op[]): Promise<Uint8Array[]> {
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
export async function plantFrames(
  count: number,
  make: (i: number) => Op,
  marker: string,
): Promise<Uint8Array[]> {
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
export async function plantThroughSync(
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
