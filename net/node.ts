/**
 * The one libp2p factory of Lattice, behind our own small {@link NetNode}
 * interface: nothing outside `net/` sees a libp2p type. Peer ids and
 * multiaddrs cross this boundary as plain strings.
 *
 * A node joins one space: it subscribes to the space's gossip topic, provides
 * the space's CID in the DHT (`/lattice/kad/1.0.0`) and periodically looks up
 * the other providers and dials them. Members it has seen are redialed with a
 * capped, jittered exponential backoff after they disconnect.
 *
 * Every peer is untrusted (see `net/peer_budget.ts`): gossip is checked by a
 * topic validator before it is delivered or relayed (a rejected message is
 * dropped and lowers its sender's gossipsub score); channel frames are
 * reassembled in linear time, as each chunk arrives, and a frame sent in far
 * more pieces than an honest sender's is a violation ({@link FrameDecoder});
 * the DHT refuses `/lattice/` and `/pk/` records
 * and keeps a bounded number of provider records per peer
 * (`net/provider_quota.ts`); a peer over its stream or byte budget, or one
 * that breaks a protocol limit ({@link NetNode.penalize}), is disconnected and
 * refused by the connection gater for a cool-off period, logged with its id;
 * its connections are aborted at once, so what it already queued is not read.
 *
 * @module
 */
import { createLibp2p, type Libp2p } from "libp2p";
import { noise, pureJsCrypto } from "@libp2p/noise";
import { yamux } from "@libp2p/yamux";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { type KadDHT, kadDHT, passthroughMapper } from "@libp2p/kad-dht";
import { type GossipSub, gossipsub, TopicValidatorResult } from "@libp2p/gossipsub";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import type { Logger } from "./log.ts";
import { checkPeerLimits, PeerBudgets, type PeerLimits } from "./peer_budget.ts";
import { type KeyedStore, limitProviderRecords } from "./provider_quota.ts";

/** DHT protocol id: a private DHT, so Lattice nodes never join the public IPFS one. */
export const DHT_PROTOCOL = "/lattice/kad/1.0.0";
/** Largest frame a {@link Channel} sends or accepts by default (4 MiB). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Largest gossip message {@link NetNode.publish} accepts (1 MiB). */
export const MAX_GOSSIP_BYTES = 1024 * 1024;

const RAW_CODEC = 0x55;
const DEFAULT_OPEN_TIMEOUT = 10_000;

/** A framed, bidirectional byte channel over one libp2p stream. */
export interface Channel {
  /** Sends one frame (length-prefixed on the wire); waits while the stream is congested. */
  send(frame: Uint8Array): Promise<void>;
  /** Frames from the remote side, in order; ends when the remote closes its side. */
  readonly frames: AsyncIterable<Uint8Array>;
  /** Closes both directions; safe to call twice. */
  close(): void;
}

/** A connected peer as seen by {@link NetNode.peers}. */
export interface NetPeer {
  readonly id: string;
  readonly addrs: string[];
  /** `Date.now()` when the first current connection was opened. */
  readonly since: number;
}

/** Events of {@link NetNode.onPeer}. */
export type PeerEvent = "connect" | "disconnect";

/** Lattice's view of a libp2p node in one space. */
export interface NetNode {
  readonly peerId: string;
  readonly space: string;
  /** The gossip topic of the space: `/lattice/1/space/<hex sha256(space)>`. */
  readonly topic: string;
  /** Listen addresses, each ending in `/p2p/<peerId>`. */
  addrs(): string[];
  peers(): NetPeer[];
  /** Peers subscribed to the space topic. */
  topicPeers(): string[];
  /** This node's private key (libp2p protobuf encoding), to restart with the same id. */
  exportKey(): Uint8Array;
  /** Dials a multiaddr (with `/p2p/<id>`); resolves with the peer id. */
  dial(addr: string, options?: { signal?: AbortSignal }): Promise<string>;
  publish(bytes: Uint8Array): Promise<void>;
  onMessage(cb: (bytes: Uint8Array, from: string) => void): () => void;
  handle(protocol: string, handler: (channel: Channel, peer: string) => void | Promise<void>): Promise<void>;
  open(peer: string, protocol: string, options?: { signal?: AbortSignal }): Promise<Channel>;
  onPeer(cb: (event: PeerEvent, peer: string) => void): () => void;
  /**
   * Adds a check that every gossip message on the space topic passes before
   * it is delivered to {@link onMessage} listeners or relayed to other peers:
   * a check that throws rejects the message (not relayed, and the peer that
   * sent it loses gossipsub score). Returns a function that removes it.
   */
  validate(check: (bytes: Uint8Array) => void): () => void;
  /**
   * Disconnects `peer` and refuses it (the connection gater denies every
   * connection to or from it) for the cool-off period, logging `reason`
   * with its id. For protocol violations found above this layer (a sync
   * frame over its limit). No-op for a peer already refused.
   */
  penalize(peer: string, reason: string): void;
  /** Whether `peer` is refused now (see {@link penalize}). */
  refused(peer: string): boolean;
  /** `peer`'s gossipsub score as this node sees it (0 for a peer it does not know). */
  gossipScore(peer: string): number;
  stop(): Promise<void>;
}

/** Options of {@link createNetNode}. */
export interface NetNodeOptions {
  /**
   * Listen multiaddrs (default `/ip4/127.0.0.1/tcp/0` and `/ip4/127.0.0.1/tcp/0/ws` on servers; none in
   * browsers, which only dial). A `/udp/…/webrtc-direct` address (e.g.
   * `/ip4/10.0.0.5/udp/0/webrtc-direct`) adds the WebRTC-Direct transport, which browsers can dial;
   * it needs a non-loopback interface (WebRTC ignores loopback).
   */
  listen?: string[];
  /** Multiaddrs (with `/p2p/<id>`) dialed at start and retried with backoff until connected once. */
  bootstrap?: string[];
  space: string;
  /** Private key in libp2p protobuf encoding (from {@link NetNode.exportKey}); default: a new Ed25519 key. */
  privateKey?: Uint8Array;
  /** Aborting it stops the node. */
  signal?: AbortSignal;
  /** Milliseconds between DHT provider lookups for the space (default 10 s; the first runs at once). */
  discoveryInterval?: number;
  /** Most members dialed from discovery (default 32). */
  maxMembers?: number;
  /** Reconnect backoff: first delay (default 250 ms), cap (default 30 s). */
  backoff?: { initial?: number; max?: number };
  /** Largest channel frame (default {@link MAX_FRAME_BYTES}). */
  maxFrameBytes?: number;
  /** Debug log sink (default: none). */
  log?: (msg: string) => void;
  /** Where refused peers are reported (warn level, with their id; default: the debug sink). */
  logger?: Logger;
  /** Per-peer budgets (default `DEFAULT_PEER_LIMITS` of `net/peer_budget.ts`). */
  limits?: PeerLimits;
  /**
   * Browsers only: dial private, loopback and link-local addresses and plain
   * `ws://` (default false). libp2p's browser build refuses both by default
   * (a page should not probe the visitor's LAN, and browsers warn about
   * insecure WebSockets); turn this on for a node on localhost or the same
   * LAN, as in development and tests. Servers dial such addresses anyway.
   */
  allowPrivateAddresses?: boolean;
  /**
   * Find members of the space on the local network by mDNS (default false;
   * servers only). Multicast queries go out on every interface every
   * {@link NetNodeOptions.mdnsInterval} ms; the service name carries a hash
   * of the space, so only its members answer each other.
   */
  mdns?: boolean;
  /** Milliseconds between mDNS queries (default 10 s). */
  mdnsInterval?: number;
}

/**
 * The gossip topic of a space.
 *
 * @example
 * ```ts
 * const t = await spaceTopic("default");
 * console.assert(t.startsWith("/lattice/1/space/"));
 * ```
 */
export async function spaceTopic(space: string): Promise<string> {
  const d = await sha256.digest(new TextEncoder().encode(space));
  return "/lattice/1/space/" + Array.from(d.digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The DHT provider key of a space: CID v1, raw codec, sha2-256 of the UTF-8 name.
 *
 * @example
 * ```ts
 * console.assert((await spaceCid("default")).startsWith("bafkrei"));
 * ```
 */
export async function spaceCid(space: string): Promise<string> {
  return (await spaceCidObject(space)).toString();
}

async function spaceCidObject(space: string): Promise<CID> {
  return CID.createV1(RAW_CODEC, await sha256.digest(new TextEncoder().encode(space)));
}

// ------------------------------------------------------------------ records

/**
 * `/lattice/` records. Lattice stores none yet (the signed space manifest,
 * docs/API.md "Not available yet", is not built), so every one is refused: a record nobody
 * reads is only a way for a peer to make this node keep its bytes (before:
 * 1,000 PUT_VALUEs of 64 KiB were all kept). A record kind that Lattice comes
 * to use gets its own check here, with it.
 */
function validateRecord(key: Uint8Array, _value: Uint8Array): void {
  const name = new TextDecoder().decode(key.subarray(0, 64));
  throw new TypeError(`Cannot accept DHT record ${JSON.stringify(name)}: Lattice uses no /lattice/ records`);
}

/**
 * `/pk/` records (kad-dht accepts them by default): Lattice peer ids are
 * Ed25519 and carry their public key, so nobody needs one, and each is
 * otherwise a free record per generated key.
 */
function refusePublicKeyRecord(): void {
  throw new TypeError("Cannot accept DHT record: Lattice uses no /pk/ records (peer ids carry their key)");
}

/**
 * Deterministic choice among valid records: the greatest by bytes, so every peer picks the same one.
 * (kad-dht wants a selector for each namespace it validates; with no valid `/lattice/` record it idles.)
 */
function selectRecord(_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0;
  for (let i = 1; i < records.length; i++) if (compareBytes(records[i], records[best]) > 0) best = i;
  return best;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// ------------------------------------------------------------------ runtime adapter

type Runtime = "deno" | "bun" | "node" | "browser";

function detectRuntime(): Runtime {
  const g = globalThis as Record<string, unknown>;
  if (g.Deno !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  if (typeof g.process === "object" && g.process !== null) return "node";
  return "browser";
}

let bunShimmed = false;

/**
 * Two Bun quirks, patched once per process:
 * - `http.Server.close()` on a server that never listened never emits
 *   `close`; the WebSockets listener feeds sockets to such a server and awaits
 *   that event on stop, so `libp2p.stop()` would hang.
 * - `net.connect({ signal })` emits an `AbortError` on abort even after the
 *   caller removed its `error` listener and destroyed the socket, which
 *   crashes the process. `@libp2p/tcp` passes the dial signal through and
 *   handles aborts itself, so the shim drops `signal` before Bun sees it.
 */
async function shimBun(): Promise<void> {
  if (bunShimmed) return;
  bunShimmed = true;
  const http = await import("node:http");
  type Closable = { listening: boolean; emit(ev: string): void };
  const proto = http.Server.prototype as unknown as { close: (this: Closable, cb?: unknown) => unknown };
  const close = proto.close;
  proto.close = function (this: Closable, cb?: unknown) {
    const listening = this.listening;
    const r = close.call(this, cb);
    if (!listening) queueMicrotask(() => this.emit("close"));
    return r;
  };
  const net = (await import("node:net")).default as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ["connect", "createConnection"]) {
    const original = net[name];
    net[name] = function (this: unknown, ...args: unknown[]) {
      const o = args[0];
      if (typeof o === "object" && o !== null && "signal" in o) {
        const { signal: _signal, ...rest } = o as Record<string, unknown>;
        args[0] = rest;
      }
      return original.apply(this, args);
    };
  }
}

let denoShimmed = false;

/**
 * Two Deno behaviours that keep a process alive after every node stopped:
 * - libp2p's peer store locks (mortice) open one process-wide
 *   BroadcastChannel and call `unref?.()` on it; Deno's BroadcastChannel has
 *   no `unref`, so the process would never exit. Deno has an internal ref
 *   switch: expose it as `unref`.
 * - Deno keeps an `AbortSignal.timeout` timer referenced once the signal has
 *   a listener, and libp2p arms many (dial 5–10 s, stream negotiation, close),
 *   so the process lingered ~10 s after `stop()`. Node and Bun never hold the
 *   process for these timers; the shim gives Deno the same behaviour.
 */
function shimDeno(): void {
  if (denoShimmed) return;
  denoShimmed = true;
  const deno = (globalThis as unknown as { Deno: { unrefTimer?(id: number): void } }).Deno;
  const proto = globalThis.BroadcastChannel?.prototype as unknown as Record<PropertyKey, unknown> | undefined;
  if (proto && typeof proto.unref !== "function") {
    const ref = Object.getOwnPropertySymbols(proto).find((s) => s.description === "refBroadcastChannel");
    if (ref && typeof proto[ref] === "function") {
      proto.unref = function (this: Record<PropertyKey, (on: boolean) => void>) {
        this[ref](false);
      };
    }
  }
  if (typeof deno.unrefTimer === "function") {
    const unrefTimer = deno.unrefTimer;
    AbortSignal.timeout = (ms: number): AbortSignal => {
      const ac = new AbortController();
      const id = setTimeout(() => ac.abort(new DOMException("The operation timed out.", "TimeoutError")), ms);
      unrefTimer(id as unknown as number);
      return ac.signal;
    };
  }
}

/**
 * Timers libp2p 3.3 leaves armed after `stop()`, each of which kept the process
 * alive for up to a second after its last node stopped (measured: exit 1.0 s
 * after `close()`, 0.4 s with the first fixed). Optional chaining throughout:
 * if a libp2p upgrade renames these, the process lingers again and the exit
 * test in tests/open_network.test.ts fails.
 * - The address manager answers the `transport:close` each transport emits
 *   during stop with a peer-store update debounced by 1 s, never cancelled.
 * - gossipsub's `stop()` replaces its status object without clearing the
 *   next heartbeat's timeout it holds (up to one heartbeat interval, 1 s).
 * - The inbound-connection rate limiter keeps a 1 s expiry timer per remote
 *   host; it calls `unref()` on it, which Deno's numeric timer ids lack.
 * Call {@link releaseTimers} before `libp2p.stop()`; it finishes after.
 */
function releaseTimers(libp2p: unknown): () => void {
  type Internals = {
    components?: {
      addressManager?: { _updatePeerStoreAddresses?: { stop?(): void } };
      connectionManager?: {
        inboundConnectionRateLimiter?: { memoryStorage?: { storage?: Map<string, { timeoutId?: unknown }> } };
      };
    };
    services?: { pubsub?: { stop(): Promise<void>; status?: { heartbeatTimeout?: unknown } } };
  };
  const node = libp2p as Internals;
  const pubsub = node.services?.pubsub;
  let heartbeat: unknown;
  if (pubsub && typeof pubsub.stop === "function") {
    const stop = pubsub.stop;
    // The status is replaced synchronously at the start of its stop(): read the timeout just before.
    pubsub.stop = function (this: typeof pubsub) {
      heartbeat = this.status?.heartbeatTimeout;
      return stop.call(this);
    };
  }
  return () => {
    if (heartbeat !== undefined) clearTimeout(heartbeat as number);
    node.components?.addressManager?._updatePeerStoreAddresses?.stop?.();
    const limits = node.components?.connectionManager?.inboundConnectionRateLimiter?.memoryStorage?.storage;
    if (limits instanceof Map) {
      for (const record of limits.values()) clearTimeout(record?.timeoutId as number);
      limits.clear();
    }
  };
}

/**
 * mDNS peer discovery (`@libp2p/mdns`), loaded only when asked for: it needs
 * UDP multicast (`node:dgram`), which browsers lack. The service tag is made
 * from the space's topic hash, so nodes of other spaces (and other libp2p
 * programs on the LAN, `_p2p._udp.local`) neither answer nor get dialed.
 */
// deno-lint-ignore no-explicit-any
async function mdnsDiscovery(runtime: Runtime, topic: string, interval?: number): Promise<any> {
  if (runtime === "browser") {
    throw new TypeError("mDNS discovery needs UDP multicast, which browsers do not offer");
  }
  const specifier = "@libp2p/mdns"; // a variable: bundlers leave it out of browser builds
  const { mdns } = await import(specifier);
  const hash = topic.slice(topic.lastIndexOf("/") + 1, topic.lastIndexOf("/") + 17);
  return mdns({ serviceTag: `_lattice-${hash}._udp.local`, interval: interval ?? 10_000 });
}

/** Browsers can only dial: no runtime there lets a page accept TCP, WebSocket or UDP connections. */
export function canListen(): boolean {
  return detectRuntime() !== "browser";
}

/** A WebRTC-Direct multiaddr (`/ip4/…/udp/…/webrtc-direct`). */
const isWebRtcDirect = (addr: string): boolean => addr.includes("/webrtc-direct");

/**
 * WebRTC-Direct, without public STUN servers (the default configuration asks
 * Google's): a WebRTC-Direct dial needs none, and Lattice sends nothing to
 * hosts it was not told about. On servers it loads the native
 * `node-datachannel` module, so servers load it only when asked to
 * (a `/webrtc-direct` listen or bootstrap address).
 */
// deno-lint-ignore no-explicit-any
async function webRtcDirectTransport(): Promise<any> {
  const { webRTCDirect } = await import("@libp2p/webrtc");
  return webRTCDirect({ rtcConfiguration: { iceServers: [] } });
}

/** The only place that chooses transports per runtime; node-only ones load lazily. */
async function runtimeParts(
  runtime: Runtime,
  addrs: readonly string[],
  // deno-lint-ignore no-explicit-any
): Promise<{ transports: any[]; listen: string[]; noise: any }> {
  const { webSockets } = await import("@libp2p/websockets");
  if (runtime === "browser") {
    return { transports: [webSockets(), await webRtcDirectTransport()], listen: [], noise: noise() };
  }
  const { tcp } = await import("@libp2p/tcp");
  if (runtime === "bun") await shimBun();
  if (runtime === "deno") shimDeno();
  const transports = [tcp(), webSockets()];
  if (addrs.some(isWebRtcDirect)) transports.push(await webRtcDirectTransport());
  return {
    transports,
    listen: ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws"],
    // Bun's node:crypto lacks chacha20-poly1305: frames ≥ 1200 bytes fail with native crypto.
    noise: runtime === "bun" ? noise({ crypto: pureJsCrypto }) : noise(),
  };
}

/**
 * libp2p's error for listen addresses that failed is several lines long and
 * names its own configuration: one sentence per address instead, the
 * original as `cause`.
 */
function listenError(e: Error): Error | undefined {
  if (e?.name !== "UnsupportedListenAddressesError") return undefined;
  const failures = String(e.message).split("\n").map((l) => l.trim()).filter((l) => l.startsWith("/"));
  return new Error(
    `Cannot listen on ${failures.length > 0 ? failures.join("; ") : "the listen addresses"}`,
    { cause: e },
  );
}

// ------------------------------------------------------------------ deadlines

/**
 * Runs `fn` with a signal that aborts after `ms` or when any parent aborts.
 * Unlike `AbortSignal.timeout`, the timer is cleared as soon as `fn` settles,
 * so finished calls leave no timer holding the process open.
 */
async function withDeadline<T>(
  ms: number,
  parents: (AbortSignal | undefined)[],
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const live = parents.filter((p): p is AbortSignal => p !== undefined);
  const onAbort = (ev: Event) => ac.abort((ev.target as AbortSignal).reason);
  for (const p of live) {
    if (p.aborted) ac.abort(p.reason);
    else p.addEventListener("abort", onAbort, { once: true });
  }
  const timer = setTimeout(() => ac.abort(new DOMException(`Timed out after ${ms} ms`, "TimeoutError")), ms);
  try {
    return await fn(ac.signal);
  } finally {
    clearTimeout(timer);
    for (const p of live) p.removeEventListener("abort", onAbort);
  }
}

// ------------------------------------------------------------------ framing

/** Unsigned LEB128 length prefix. */
function encodeFrame(frame: Uint8Array): Uint8Array {
  let n = frame.length, len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  const out = new Uint8Array(len + frame.length);
  n = frame.length;
  let i = 0;
  while (n >= 0x80) {
    out[i++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[i++] = n;
  out.set(frame, i);
  return out;
}

/** Chunks any frame may arrive in, however short (see {@link FrameDecoder}). */
export const FRAME_PIECES_FLOOR = 64;
/**
 * One more chunk is allowed per this many bytes of a frame that arrived: a
 * flood of 64-byte chunks is cut after ~66 of them, and a 4 MiB frame may come
 * in at most 1,088, which an honest sender's 64 KiB (yamux) or 16 KiB (WebRTC)
 * messages stay 4–16× under.
 */
export const FRAME_PIECE_BYTES = 4096;

/** A chunk as libp2p hands it over: a `Uint8Array` or a `Uint8ArrayList`. */
type Chunk = Uint8Array | { readonly byteLength: number; subarray(): Uint8Array };

/**
 * Splits a byte stream into frames, synchronously, chunk by chunk; rejects
 * lengths above `max` before buffering them. Linear in the bytes received,
 * however the sender slices them: a frame's pieces are kept as they come and
 * joined once, when the last one arrives (before: the buffer was re-copied on
 * every chunk, so a 4 MiB frame sent in 64-byte chunks cost 8.6 s of CPU).
 * Memory is what arrived, never the length a peer merely announced.
 *
 * A frame may arrive in at most {@link FRAME_PIECES_FLOOR} + (its bytes that
 * arrived so far) / {@link FRAME_PIECE_BYTES} chunks (its length prefix
 * included), checked as each chunk comes, so a flood of tiny chunks is cut
 * after a few dozen and a big frame may take one chunk per 4 KiB: more is a
 * protocol violation (`violated(reason)`, then `RangeError` "Cannot decode
 * frame: … pieces"). Each chunk costs the receiver far more in libp2p than
 * here (noise decryption, and a yamux window update encrypted and written
 * back for every data message): a 4 MiB frame in 64-byte chunks cost 2.3 s of
 * CPU and stalled the event loop for up to 1.9 s. An honest sender writes a
 * frame at once, which arrives in yamux messages of up to 64 KiB (WebRTC
 * messages of 16 KiB).
 */
export class FrameDecoder {
  readonly #max: number;
  readonly #violated?: (reason: string) => void;
  /** The length prefix being read: its value so far, the weight of its next byte, its bytes. */
  #len = 0;
  #weight = 1;
  #prefix = 0;
  /** Pieces of the frame being received (when `need > 0`), and the bytes it still lacks. */
  #pieces: Uint8Array[] = [];
  #need = 0;
  /** Chunks the current frame (prefix included) arrived in, how many it may, its length. */
  #chunks = 0;
  #got = 0;
  #frameLen = 0;

  constructor(max: number, violated?: (reason: string) => void) {
    this.#max = max;
    this.#violated = violated;
  }

  /** Takes one chunk and appends the frames it completes to `out`. */
  push(chunk: Chunk, out: Uint8Array[]): void {
    if (
      (this.#need > 0 || this.#weight > 1) &&
      ++this.#chunks > FRAME_PIECES_FLOOR + Math.floor(this.#got / FRAME_PIECE_BYTES)
    ) {
      const of = this.#need > 0 ? `${this.#frameLen} bytes` : "unread length";
      const reason = `a frame of ${of} arrived in more than ${
        this.#chunks - 1
      } pieces for ${this.#got} bytes`;
      this.#violated?.(reason);
      throw new RangeError(`Cannot decode frame: ${reason}`);
    }
    const raw = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    // A plain view: on Node-compatible runtimes chunks are Buffers, whose slice() does not copy.
    const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    const n = bytes.length;
    let at = 0;
    while (at < n) {
      if (this.#need > 0) {
        const take = Math.min(this.#need, n - at);
        this.#pieces.push(bytes.subarray(at, at + take));
        at += take;
        this.#got += take;
        this.#need -= take;
        if (this.#need === 0) {
          out.push(joinPieces(this.#pieces));
          this.#pieces = [];
        }
        continue;
      }
      const byte = bytes[at++];
      if (this.#weight === 1) this.#chunks = 1, this.#got = 0; // a new frame starts in this chunk
      this.#len += (byte & 0x7f) * this.#weight;
      this.#weight *= 128;
      if ((byte & 0x80) !== 0) {
        if (++this.#prefix >= 5) {
          throw new RangeError("Cannot decode frame: length prefix is longer than 5 bytes");
        }
        continue;
      }
      const size = this.#len;
      if (size > this.#max) {
        throw new RangeError(`Cannot decode frame: length ${size} exceeds limit ${this.#max}`);
      }
      this.#len = 0, this.#weight = 1, this.#prefix = 0;
      this.#frameLen = size;
      if (n - at >= size) {
        out.push(bytes.slice(at, at + size)); // the whole frame is in this chunk: one copy
        at += size;
      } else this.#need = size;
    }
  }

  /** The stream ended: throws `SyntaxError` if it ended inside a frame. */
  end(): void {
    if (this.#need > 0 || this.#weight > 1) {
      throw new SyntaxError("Cannot decode frame: stream ended inside a frame");
    }
  }
}

/**
 * The frames of a byte stream (see {@link FrameDecoder}). `spend(n)` is told
 * every chunk's size first; when it returns false the stream is given up
 * (`RangeError`).
 */
export async function* decodeFrames(
  source: AsyncIterable<Chunk>,
  max: number,
  spend?: (bytes: number) => boolean,
  violated?: (reason: string) => void,
): AsyncGenerator<Uint8Array> {
  const decoder = new FrameDecoder(max, violated);
  const out: Uint8Array[] = [];
  for await (const chunk of source) {
    if (spend !== undefined && !spend(chunk.byteLength)) {
      throw new RangeError("Cannot read frames: the peer is over its byte budget");
    }
    decoder.push(chunk, out);
    for (let i = 0; i < out.length; i++) yield out[i];
    out.length = 0;
  }
  decoder.end();
}

/**
 * The frames of a libp2p stream, decoded in its `message` listener, as each
 * chunk arrives, not when the reader next awaits: Deno reads a socket's
 * backlog in one run of microtasks, so a reader behind an async iterator saw
 * a flood of tiny chunks only after libp2p had decrypted (and answered) all
 * of them. Here the chunk over the budget or the piece rule aborts the stream
 * (and `violated` penalizes the peer) while the flood is still being read.
 */
function streamFrames(
  stream: Stream,
  max: number,
  spend?: (bytes: number) => boolean,
  violated?: (reason: string) => void,
): AsyncGenerator<Uint8Array> {
  const decoder = new FrameDecoder(max, violated);
  let queue: Uint8Array[] = [];
  let ended = false, failure: Error | undefined, wake: (() => void) | undefined;
  const onMessage = (evt: Event): void => {
    if (failure !== undefined) return;
    const chunk = (evt as Event & { data: Chunk }).data;
    try {
      if (spend !== undefined && !spend(chunk.byteLength)) {
        throw new RangeError("Cannot read frames: the peer is over its byte budget");
      }
      decoder.push(chunk, queue);
    } catch (e) {
      failure = e as Error;
      stream.abort(failure);
    }
    wake?.();
  };
  const onEnd = (evt: Event): void => {
    ended = true;
    failure ??= (evt as Event & { error?: Error }).error;
    if (evt.type === "close") stop();
    wake?.();
  };
  const stop = (): void => {
    stream.removeEventListener("message", onMessage);
    stream.removeEventListener("close", onEnd);
    stream.removeEventListener("remoteCloseWrite", onEnd);
  };
  stream.addEventListener("message", onMessage);
  stream.addEventListener("close", onEnd);
  stream.addEventListener("remoteCloseWrite", onEnd);
  if (stream.remoteWriteStatus === "closed" || stream.readStatus === "closed") {
    // Closed before these listeners existed: what it buffered is dispatched on a
    // timer (libp2p's addEventListener), so the end is marked on a later one.
    setTimeout(() => onEnd(new Event("remoteCloseWrite")), 0);
  }
  return (async function* (): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        if (queue.length > 0) {
          const frames = queue;
          queue = [];
          for (let i = 0; i < frames.length; i++) yield frames[i];
          continue;
        }
        if (failure !== undefined) throw failure;
        if (ended) return decoder.end();
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
    } finally {
      stop();
    }
  })();
}

/** One copy of a frame's pieces, in order. */
function joinPieces(pieces: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of pieces) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) at += (out.set(p, at), p.length);
  return out;
}

function makeChannel(
  stream: Stream,
  max: number,
  spend?: (bytes: number) => boolean,
  violated?: (reason: string) => void,
): Channel {
  let closed = false;
  return {
    async send(frame: Uint8Array): Promise<void> {
      if (closed) throw new Error("Cannot send frame: the channel is closed");
      if (frame.length > max) {
        throw new RangeError(`Cannot send frame: length ${frame.length} exceeds limit ${max}`);
      }
      if (!stream.send(encodeFrame(frame))) await stream.onDrain();
    },
    frames: streamFrames(stream, max, spend, violated),
    close(): void {
      if (closed) return;
      closed = true;
      stream.close().catch((e: Error) => stream.abort(e));
    },
  };
}

// ------------------------------------------------------------------ factory

/**
 * Starts a libp2p node in `options.space`.
 *
 * @example
 * ```ts ignore
 * const a = await createNetNode({ space: "demo" });
 * const b = await createNetNode({ space: "demo", bootstrap: a.addrs() });
 * b.onMessage((bytes, from) => console.log(from, bytes));
 * await a.publish(new Uint8Array([1, 2, 3]));
 * await Promise.all([a.stop(), b.stop()]);
 * ```
 */
export async function createNetNode(options: NetNodeOptions): Promise<NetNode> {
  if (typeof options?.space !== "string" || options.space.length === 0) {
    throw new TypeError("createNetNode needs a non-empty space name");
  }
  options.signal?.throwIfAborted();
  const log = options.log ?? (() => {});
  const runtime = detectRuntime();
  const parts = await runtimeParts(runtime, [...(options.listen ?? []), ...(options.bootstrap ?? [])]);
  const listen = options.listen ?? parts.listen;
  const maxFrame = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  const privateKey = options.privateKey
    ? privateKeyFromProtobuf(options.privateKey)
    : await generateKeyPair("Ed25519");
  const topic = await spaceTopic(options.space);
  const cid = await spaceCidObject(options.space);
  const discoveryInterval = options.discoveryInterval ?? 10_000;
  const maxMembers = options.maxMembers ?? 32;
  const backoffInitial = options.backoff?.initial ?? 250;
  const backoffMax = options.backoff?.max ?? 30_000;
  const budgets = new PeerBudgets(checkPeerLimits(options.limits));
  const refusedId = (peer: PeerId): boolean => budgets.refused(peer.toString());

  const discovery = options.mdns ? [await mdnsDiscovery(runtime, topic, options.mdnsInterval)] : [];

  const libp2p: Libp2p<{ dht: KadDHT; pubsub: GossipSub }> = await createLibp2p({
    start: false,
    privateKey,
    addresses: { listen },
    peerDiscovery: discovery,
    transports: parts.transports,
    connectionGater: {
      // The browser default refuses private addresses and plain ws:// (see allowPrivateAddresses).
      ...(options.allowPrivateAddresses ? { denyDialMultiaddr: () => false } : {}),
      // Peers that misbehaved (see penalize), for their cool-off period.
      denyDialPeer: refusedId,
      denyInboundEncryptedConnection: refusedId,
      denyOutboundEncryptedConnection: refusedId,
    },
    connectionEncrypters: [parts.noise],
    streamMuxers: [yamux()],
    connectionManager: {
      // Every peer of a local test shares 127.0.0.1: the default (5/s per IP) resets connections.
      inboundConnectionThreshold: 1000,
      maxConnections: 300,
    },
    services: {
      identify: identify(),
      ping: ping({ maxOutboundStreams: 4 }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        // A node that listens nowhere (a browser) cannot be dialed back: it queries but does not serve.
        clientMode: listen.length === 0,
        // The default mapper drops private addresses, which makes loopback and LAN spaces unreachable.
        peerInfoMapper: passthroughMapper,
        validators: { lattice: validateRecord, pk: refusePublicKeyRecord },
        selectors: { lattice: selectRecord },
        initialQuerySelfInterval: 200,
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        floodPublish: true,
        heartbeatInterval: 500,
        maxInboundDataLength: MAX_GOSSIP_BYTES + 64 * 1024,
        scoreParams: {
          // Members of a space often share an IP (one host, a LAN, loopback tests): no colocation penalty.
          IPColocationFactorWeight: 0,
          // The default (-10 per squared broken IWANT promise) graylists a peer after 3 late replies,
          // which a busy but honest peer produces under load; then its messages are ignored for good.
          behaviourPenaltyWeight: -1,
          behaviourPenaltyThreshold: 5,
          // Only invalid messages (rejected by the topic validator) count on the space topic: -10 × n².
          // Three put a peer under the graylist threshold (-80: what it sends is ignored, ~2 s) and the
          // publish threshold (-50: nobody gossips to it, ~10 s; anti-entropy still syncs it). Delivery
          // counts are left out: a quiet space is not a peer's fault.
          topics: {
            [topic]: {
              topicWeight: 1,
              invalidMessageDeliveriesWeight: -10,
              invalidMessageDeliveriesDecay: 0.97, // per second: a peer's count halves in ~23 s
              timeInMeshWeight: 0,
              firstMessageDeliveriesWeight: 0,
              meshMessageDeliveriesWeight: 0,
              meshFailurePenaltyWeight: 0,
              // Unused with the weights above; gossipsub's defaults, as its type wants them all.
              timeInMeshQuantum: 1,
              timeInMeshCap: 3600,
              firstMessageDeliveriesDecay: 0.5,
              firstMessageDeliveriesCap: 2000,
              meshMessageDeliveriesDecay: 0.5,
              meshMessageDeliveriesCap: 100,
              meshMessageDeliveriesThreshold: 20,
              meshMessageDeliveriesWindow: 10,
              meshMessageDeliveriesActivation: 5000,
              meshFailurePenaltyDecay: 0.5,
            },
          },
        },
      }),
    },
  });
  // kad-dht keeps provider records in the libp2p datastore and offers no quota: bound them there.
  // deno-lint-ignore no-explicit-any
  limitProviderRecords((libp2p as any).components.datastore as KeyedStore, {
    perPeer: budgets.limits.providerRecords,
    total: budgets.limits.providerRecordsTotal,
    self: libp2p.peerId.toString(),
  });
  try {
    await libp2p.start();
  } catch (e) {
    await Promise.resolve(libp2p.stop()).catch(() => {});
    throw listenError(e as Error) ?? e;
  }

  let stopped = false;
  /** Aborted by stop(): cancels discovery and every dial in flight. */
  const life = new AbortController();
  const since = new Map<string, number>();
  const peerListeners = new Set<(event: PeerEvent, peer: string) => void>();
  const messageListeners = new Set<(bytes: Uint8Array, from: string) => void>();
  /** Members we want to stay connected to: peer id → reconnect state. */
  const members = new Map<string, { attempt: number; timer?: ReturnType<typeof setTimeout> }>();
  /** Bootstrap addresses not yet reached: addr → retry state. */
  const pendingBootstrap = new Map<string, { attempt: number; timer?: ReturnType<typeof setTimeout> }>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const self = libp2p.peerId.toString();
  const checks = new Set<(bytes: Uint8Array) => void>();
  const limits = budgets.limits;

  function penalize(peer: string, reason: string): void {
    if (stopped || peer === self) return;
    if (budgets.refuse(peer) === undefined) return; // refused already
    const fields = { peer, reason, coolOffMs: limits.coolOffMs };
    if (options.logger) options.logger.warn("net", "misbehaving peer disconnected and refused", fields);
    else log(`refusing ${peer} for ${limits.coolOffMs} ms: ${reason}`);
    // Not redialed: after the cool-off, discovery finds it again if it is a member.
    const m = members.get(peer);
    if (m?.timer) {
      clearTimeout(m.timer);
      timers.delete(m.timer);
    }
    members.delete(peer);
    providers.delete(peer);
    // Aborted, not closed gracefully: while a close waits on its streams, data
    // already queued on the socket (megabytes of tiny frames) is still read and
    // decrypted, each message answered with a yamux window update.
    const id = peerIdFromString(peer);
    const why = new Error(`Peer refused: ${reason}`);
    for (const c of libp2p.getConnections(id)) c.abort(why);
    libp2p.hangUp(id).catch(() => {});
  }

  /** What a channel with `peer` tells the framing: each chunk's size, against the peer's byte budget. */
  function spender(peer: string): (bytes: number) => boolean {
    return (bytes) => {
      if (budgets.charge(peer, "channel", bytes)) return true;
      penalize(peer, `sent more than ${limits.channelBytes} channel bytes in ${limits.windowMs} ms`);
      return false;
    };
  }

  /** What a channel with `peer` tells the framing: a frame broke the framing rules (too many pieces). */
  function violator(peer: string): (reason: string) => void {
    return (reason) => penalize(peer, `channel: ${reason}`);
  }

  /**
   * The space topic's validator: runs before a message is delivered or
   * relayed. Charges the peer that sent it (the propagation source) and runs
   * the checks of {@link NetNode.validate}; Reject drops the message and
   * lowers that peer's score.
   */
  function validateGossip(source: PeerId, msg: { data: Uint8Array }): TopicValidatorResult {
    const from = source.toString();
    if (!budgets.charge(from, "gossip", msg.data.length)) {
      penalize(from, `relayed more than ${limits.gossipBytes} gossip bytes in ${limits.windowMs} ms`);
      return TopicValidatorResult.Reject;
    }
    for (const check of checks) {
      try {
        check(msg.data);
      } catch (e) {
        log(`rejected gossip message from ${from}: ${(e as Error).message}`);
        return TopicValidatorResult.Reject;
      }
    }
    return TopicValidatorResult.Accept;
  }

  function later(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, ms);
    timers.add(t);
    return t;
  }

  /** Full jitter over a capped exponential: uniform in [d/2, d]. */
  function backoffDelay(attempt: number): number {
    const d = Math.min(backoffMax, backoffInitial * 2 ** Math.min(attempt, 30));
    return d / 2 + Math.random() * d / 2;
  }

  function emitPeer(event: PeerEvent, peer: string): void {
    for (const cb of peerListeners) {
      try {
        cb(event, peer);
      } catch (e) {
        log(`peer listener threw: ${(e as Error).message}`);
      }
    }
  }

  function scheduleReconnect(id: string): void {
    const m = members.get(id);
    if (!m || m.timer || stopped) return;
    const delay = backoffDelay(m.attempt++);
    log(`reconnect ${id} in ${Math.round(delay)} ms (attempt ${m.attempt})`);
    m.timer = later(delay, () => {
      m.timer = undefined;
      if (libp2p.getConnections(peerIdFromString(id)).length > 0) return;
      withDeadline(
        DEFAULT_OPEN_TIMEOUT,
        [life.signal],
        (signal) => libp2p.dial(peerIdFromString(id), { signal }),
      )
        .catch((e) => {
          log(`reconnect ${id} failed: ${(e as Error).message}`);
          scheduleReconnect(id);
        });
    });
  }

  function dialBootstrap(addr: string): void {
    const st = pendingBootstrap.get(addr);
    if (!st || stopped) return;
    withDeadline(DEFAULT_OPEN_TIMEOUT, [life.signal], (signal) => libp2p.dial(multiaddr(addr), { signal }))
      .then((conn) => {
        pendingBootstrap.delete(addr);
        remember(conn.remotePeer.toString());
      }, (e) => {
        if (stopped) return;
        const delay = backoffDelay(st.attempt++);
        log(`bootstrap ${addr} failed (${(e as Error).message}); retry in ${Math.round(delay)} ms`);
        st.timer = later(delay, () => dialBootstrap(addr));
      });
  }

  function remember(id: string): void {
    if (id === self || members.has(id)) return;
    if (members.size >= maxMembers * 4) return; // bound memory against provider floods
    members.set(id, { attempt: 0 });
  }

  const onConnect = (ev: CustomEvent<PeerId>) => {
    const id = ev.detail.toString();
    since.set(id, Date.now());
    const m = members.get(id);
    if (m) {
      m.attempt = 0;
      if (m.timer) {
        clearTimeout(m.timer);
        timers.delete(m.timer);
        m.timer = undefined;
      }
    }
    emitPeer("connect", id);
    hurryDiscovery();
  };
  const onDisconnect = (ev: CustomEvent<PeerId>) => {
    const id = ev.detail.toString();
    since.delete(id);
    emitPeer("disconnect", id);
    if (!stopped) scheduleReconnect(id);
  };
  const onGossip = (ev: CustomEvent<{ topic: string; data: Uint8Array; type: string; from?: PeerId }>) => {
    const msg = ev.detail;
    if (msg.topic !== topic) return;
    const from = msg.type === "signed" && msg.from ? msg.from.toString() : "";
    for (const cb of messageListeners) {
      try {
        cb(msg.data, from);
      } catch (e) {
        log(`message listener threw: ${(e as Error).message}`);
      }
    }
  };
  /** A member found by mDNS (only members of this space answer its service tag): keep it and dial it. */
  const onDiscovery = (ev: CustomEvent<{ id: PeerId; multiaddrs: unknown[] }>) => {
    const id = ev.detail.id.toString();
    if (id === self || stopped) return;
    remember(id);
    if (libp2p.getConnections(ev.detail.id).length > 0) return;
    if (libp2p.getConnections().length >= maxMembers) return;
    withDeadline(DEFAULT_OPEN_TIMEOUT, [life.signal], (signal) => libp2p.dial(ev.detail.id, { signal }))
      .catch(
        (e) => {
          log(`dial mDNS peer ${id} failed: ${(e as Error).message}`);
          scheduleReconnect(id);
        },
      );
  };
  libp2p.addEventListener("peer:connect", onConnect);
  libp2p.addEventListener("peer:disconnect", onDisconnect);
  // deno-lint-ignore no-explicit-any
  if (options.mdns) libp2p.addEventListener("peer:discovery", onDiscovery as any);
  // deno-lint-ignore no-explicit-any
  libp2p.services.pubsub.addEventListener("message", onGossip as any);
  libp2p.services.pubsub.topicValidators.set(topic, validateGossip);
  libp2p.services.pubsub.subscribe(topic);

  let discovering: Promise<void> | undefined;

  async function provideOnce(signal: AbortSignal): Promise<void> {
    try {
      for await (const ev of libp2p.services.dht.provide(cid, { signal })) {
        if (ev.name === "QUERY_ERROR") log(`provide: ${ev.error.message}`);
      }
    } catch (e) {
      if (!stopped) log(`provide failed: ${(e as Error).message}`);
    }
  }

  async function findOnce(signal: AbortSignal): Promise<void> {
    try {
      for await (const ev of libp2p.services.dht.findProviders(cid, { signal })) {
        if (ev.name !== "PROVIDER" && ev.name !== "PEER_RESPONSE") continue;
        for (const p of ev.providers) {
          const id = p.id.toString();
          if (id === self || stopped || budgets.refused(id)) continue;
          remember(id);
          if (providers.size < maxMembers * 4) providers.add(id);
          if (libp2p.getConnections(p.id).length > 0) continue;
          if (libp2p.getConnections().length >= maxMembers) continue;
          if (p.multiaddrs.length > 0) {
            await libp2p.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {});
          }
          withDeadline(DEFAULT_OPEN_TIMEOUT, [life.signal], (signal) => libp2p.dial(p.id, { signal })).catch(
            (e) => {
              log(`dial provider ${id} failed: ${(e as Error).message}`);
              scheduleReconnect(id);
            },
          );
        }
      }
    } catch (e) {
      if (!stopped) log(`findProviders failed: ${(e as Error).message}`);
    }
  }

  /**
   * Announces this node and looks up the others at the same time (a lookup
   * needs no announcement). A node without addresses (a browser) does not
   * announce: others could find it but never dial it.
   */
  async function discoverOnce(): Promise<void> {
    const announce = libp2p.getMultiaddrs().length > 0;
    await withDeadline(
      DEFAULT_OPEN_TIMEOUT,
      [life.signal],
      (signal) => Promise.all([announce ? provideOnce(signal) : undefined, findOnce(signal)]),
    );
    healGossip();
  }

  /** Members found as providers: connected ones are expected to subscribe to the topic. */
  const providers = new Set<string>();
  /** Connected providers missing from the topic's subscribers: id → first noticed (ms). */
  const unsubscribed = new Map<string, number>();

  /**
   * When duplicate connections to a peer race (both sides dial at once, as
   * after a restart) gossipsub can lose its stream to that peer while the
   * peer stays connected, and nothing re-creates it: the two stop exchanging
   * messages for good. A provider that stays connected but unsubscribed for
   * several rounds is hung up on; the reconnect (with backoff) starts fresh.
   */
  function healGossip(): void {
    const subscribed = new Set(libp2p.services.pubsub.getSubscribers(topic).map((p) => p.toString()));
    const now = Date.now();
    const grace = Math.max(5_000, 3 * discoveryInterval);
    for (const peer of libp2p.getPeers()) {
      const id = peer.toString();
      if (!providers.has(id) || subscribed.has(id)) {
        unsubscribed.delete(id);
        continue;
      }
      const first = unsubscribed.get(id);
      if (first === undefined) unsubscribed.set(id, now);
      else if (now - first > grace) {
        unsubscribed.delete(id);
        log(`${id} is connected but not subscribed to ${topic} for ${now - first} ms; reconnecting`);
        remember(id);
        libp2p.hangUp(peer).catch(() => {});
      }
    }
  }

  let nextDiscovery: { timer: ReturnType<typeof setTimeout>; at: number } | undefined;

  function discoveryLoop(delay: number): void {
    const timer = later(delay, () => {
      nextDiscovery = undefined;
      discovering = discoverOnce().finally(() => {
        discovering = undefined;
        if (!stopped) discoveryLoop(discoveryInterval);
      });
    });
    nextDiscovery = { timer, at: Date.now() + delay };
  }

  /**
   * A new connection widens what our lookups can reach: pull the next round
   * forward to at most min(interval / 4, 250 ms) away; a running round is
   * never doubled (the next one is only scheduled when it ends).
   */
  function hurryDiscovery(): void {
    if (stopped || !nextDiscovery || libp2p.getConnections().length >= maxMembers) return;
    const soon = Math.min(discoveryInterval / 4, 250);
    if (nextDiscovery.at - Date.now() <= soon) return;
    clearTimeout(nextDiscovery.timer);
    timers.delete(nextDiscovery.timer);
    discoveryLoop(soon);
  }

  for (const addr of options.bootstrap ?? []) {
    pendingBootstrap.set(addr, { attempt: 0 });
    dialBootstrap(addr);
  }
  discoveryLoop(0);

  const node: NetNode = {
    peerId: self,
    space: options.space,
    topic,
    addrs: () => libp2p.getMultiaddrs().map((a) => a.toString()),
    peers: () =>
      libp2p.getPeers().map((p) => {
        const id = p.toString();
        return {
          id,
          addrs: libp2p.getConnections(p).map((c) => c.remoteAddr.toString()),
          since: since.get(id) ?? Date.now(),
        };
      }),
    topicPeers: () => libp2p.services.pubsub.getSubscribers(topic).map((p) => p.toString()),
    exportKey: () => privateKeyToProtobuf(privateKey),
    async dial(addr, opts) {
      const conn = await withDeadline(
        DEFAULT_OPEN_TIMEOUT,
        [opts?.signal, life.signal],
        (signal) => libp2p.dial(multiaddr(addr), { signal }),
      );
      const id = conn.remotePeer.toString();
      remember(id);
      return id;
    },
    async publish(bytes) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError("publish takes a Uint8Array");
      if (bytes.length > MAX_GOSSIP_BYTES) {
        throw new RangeError(
          `Cannot publish: message length ${bytes.length} exceeds limit ${MAX_GOSSIP_BYTES}`,
        );
      }
      await libp2p.services.pubsub.publish(topic, bytes);
    },
    onMessage(cb) {
      messageListeners.add(cb);
      return () => messageListeners.delete(cb);
    },
    async handle(protocol, handler) {
      await libp2p.handle(protocol, (stream: Stream, conn: Connection) => {
        const peer = conn.remotePeer.toString();
        if (!budgets.openStream(peer)) {
          stream.abort(new Error(`Too many ${protocol} streams from ${peer}`));
          penalize(peer, `opened more than ${limits.streams} ${protocol} streams at once`);
          return;
        }
        stream.addEventListener("close", () => budgets.closeStream(peer), { once: true });
        const channel = makeChannel(stream, maxFrame, spender(peer), violator(peer));
        Promise.resolve()
          .then(() => handler(channel, peer))
          .catch((e: Error) => {
            log(`handler for ${protocol} failed: ${e.message}`);
            stream.abort(e);
          });
      }, { maxInboundStreams: 64 });
    },
    async open(peer, protocol, opts) {
      const stream = await withDeadline(
        DEFAULT_OPEN_TIMEOUT,
        [opts?.signal, life.signal],
        (signal) => libp2p.dialProtocol(peerIdFromString(peer), protocol, { signal }),
      );
      return makeChannel(stream, maxFrame, spender(peer), violator(peer));
    },
    onPeer(cb) {
      peerListeners.add(cb);
      return () => peerListeners.delete(cb);
    },
    validate(check) {
      checks.add(check);
      return () => checks.delete(check);
    },
    penalize,
    refused: (peer) => budgets.refused(peer),
    // The GossipSub type lacks getScore; the service has it (gossipsub 17).
    gossipScore: (peer) =>
      (libp2p.services.pubsub as unknown as { getScore(id: string): number }).getScore(peer),
    async stop() {
      if (stopped) return;
      stopped = true;
      options.signal?.removeEventListener("abort", onAbort);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      life.abort();
      await discovering?.catch(() => {});
      libp2p.removeEventListener("peer:connect", onConnect);
      libp2p.removeEventListener("peer:disconnect", onDisconnect);
      // deno-lint-ignore no-explicit-any
      libp2p.removeEventListener("peer:discovery", onDiscovery as any);
      // deno-lint-ignore no-explicit-any
      libp2p.services.pubsub.removeEventListener("message", onGossip as any);
      const released = releaseTimers(libp2p);
      await libp2p.stop();
      released();
    },
  };
  const onAbort = () => void node.stop();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  return node;
}
