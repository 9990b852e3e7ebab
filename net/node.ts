/**
 * A Lattice node on the network, behind our own small {@link NetNode}
 * interface: nothing outside `net/` sees a libp2p type. Peer ids and
 * multiaddrs cross this boundary as plain strings.
 *
 * A node joins one space: it subscribes to the space's gossip topic, provides
 * the space's CID in the DHT (`/lattice/kad/1.0.0`) and periodically looks up
 * the other providers and dials them. Members it has seen are redialed with a
 * capped, jittered exponential backoff after they disconnect, and at once
 * when a browser fires `online`.
 *
 * Every peer is untrusted (see `net/peer_budget.ts`): gossip is checked by a
 * topic validator before it is delivered or relayed (a rejected message is
 * dropped and lowers its sender's gossipsub score); channel frames are
 * reassembled in linear time, and a frame sent in far more pieces than an
 * honest sender's is a violation (`net/channel.ts`); the DHT refuses
 * `/lattice/` and `/pk/` records and keeps a bounded number of provider
 * records per peer (`net/provider_quota.ts`); a peer over its stream or byte
 * budget, or one that breaks a protocol limit ({@link NetNode.penalize}), is
 * disconnected and refused by the connection gater for a cool-off period,
 * logged with its id; its connections are aborted at once, so what it
 * already queued is not read.
 *
 * This file wires the parts, each in its own file: the libp2p node and its
 * services (`libp2p_node.ts`), the runtime's transports (`transports.ts`),
 * members and their redials (`members.ts`), discovery rounds
 * (`discovery.ts`), gossip and its validator (`gossip.ts`), channels
 * (`channel.ts`), budgets and refusals (`peer_guard.ts`), and the workarounds
 * that let a stopped node's process exit at once (`libp2p_quirks.ts`). Time
 * and timers come from a {@link World}, the transports from the options, so
 * a simulator can replace both.
 *
 * @module
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { systemWorld, type World } from "../core/world.ts";
import { runtimeName } from "../runtime/detect.ts";
import { type Channel, MAX_FRAME_BYTES, openChannel } from "./channel.ts";
import { withDeadline } from "./deadline.ts";
import { SpaceDiscovery } from "./discovery.ts";
import { type GossipCheck, SpaceGossip } from "./gossip.ts";
import { applyRuntimeShims, releaseTimers } from "./libp2p_quirks.ts";
import { startLibp2p } from "./libp2p_node.ts";
import { type RelayStatus, relayStatus } from "./relay.ts";
import type { Logger } from "../runtime/log.ts";
import { DIAL_TIMEOUT_MS, Members } from "./members.ts";
import { checkPeerLimits, PeerBudgets, type PeerLimits } from "./peer_budget.ts";
import { PeerGuard } from "./peer_guard.ts";
import { spaceCidObject, spaceTopic } from "./space.ts";
import { TimerSet } from "./timer_set.ts";
import {
  defaultMuxers,
  type EncrypterFactory,
  mdnsDiscovery,
  type MuxerFactory,
  runtimeTransports,
  type TransportFactory,
  type WebRtcCertificateInit,
} from "./transports.ts";

export { type Channel, FRAME_PIECE_BYTES, FRAME_PIECES_FLOOR, MAX_FRAME_BYTES } from "./channel.ts";
export { DHT_PROTOCOL } from "./dht_records.ts";
export { MAX_GOSSIP_BYTES } from "./gossip.ts";
export { spaceCid, spaceTopic } from "./space.ts";
export { canListen } from "./transports.ts";

/** A connected peer as seen by {@link NetNode.peers}. */
export interface NetPeer {
  readonly id: string;
  readonly addrs: string[];
  /** The world's `now()` when the first current connection was opened. */
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
  /** The circuit relay this node offers ({@link NetNodeOptions.relay}), or `undefined`. */
  relay(): RelayStatus | undefined;
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
   * a check that throws (or returns a promise that rejects) refuses the
   * message (not relayed, and the peer that sent it loses gossipsub score).
   * Returns a function that removes it.
   */
  validate(check: GossipCheck): () => void;
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
  /**
   * Stores `value` under DHT `key` on the peers closest to it (each checks
   * it with its record validator, net/dht_records.ts). Best effort: errors
   * are logged, never thrown.
   */
  putRecord(key: Uint8Array, value: Uint8Array, opts?: { signal?: AbortSignal }): Promise<void>;
  /** The values the DHT holds under `key`, each checked by this node's validator (none when not found). */
  getRecords(key: Uint8Array, opts?: { signal?: AbortSignal }): Promise<Uint8Array[]>;
  stop(): Promise<void>;
}

/** Options of {@link createNetNode}. */
export interface NetNodeOptions {
  /**
   * Listen multiaddrs (default `/ip4/127.0.0.1/tcp/0` and `/ip4/127.0.0.1/tcp/0/ws` on servers; none in
   * browsers, which only dial, and none with {@link NetNodeOptions.transports} given). A
   * `/udp/…/webrtc-direct` address (e.g. `/ip4/10.0.0.5/udp/0/webrtc-direct`) adds the WebRTC-Direct
   * transport, which browsers can dial; it needs a non-loopback interface (WebRTC ignores loopback).
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
  /**
   * Offer a circuit relay (default false; servers): peers that cannot be
   * dialed, such as browsers, reserve a slot and reach each other through it
   * to set up direct WebRTC connections. Bounded by `RELAY_LIMITS`
   * (`net/relay.ts`).
   */
  relay?: boolean;
  /** The WebRTC-Direct listener's certificate (servers; default: a new one at each start, net/webrtc_cert.ts). */
  webrtcCertificate?: WebRtcCertificateInit;
  /** Milliseconds between mDNS queries (default 10 s). */
  mdnsInterval?: number;
  /**
   * The clocks and timers of the node's own logic: redials, discovery rounds,
   * deadlines, budgets' windows and cool-offs (default {@link systemWorld}).
   * libp2p's internals keep their own.
   */
  world?: World;
  /**
   * libp2p transports (default: the runtime's, `net/transports.ts`: TCP and
   * WebSockets on servers, plus WebRTC-Direct when an address asks for it;
   * WebSockets and WebRTC-Direct in browsers). A simulator passes its own,
   * with the {@link NetNodeOptions.listen} addresses they serve.
   */
  transports?: TransportFactory[];
  /** libp2p connection encrypters (default: noise, in pure JS on Bun). */
  connectionEncrypters?: EncrypterFactory[];
  /** libp2p stream muxers (default: yamux). */
  streamMuxers?: MuxerFactory[];
}

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
  const world = options.world ?? systemWorld;
  const runtime = runtimeName();
  await applyRuntimeShims(runtime);
  const defaults = options.transports === undefined || options.connectionEncrypters === undefined
    ? await runtimeTransports(
      runtime,
      [...(options.listen ?? []), ...(options.bootstrap ?? [])],
      options.webrtcCertificate,
    )
    : undefined;
  const listen = options.listen ?? (options.transports === undefined ? defaults!.listen : []);
  const maxFrame = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  const privateKey = options.privateKey
    ? privateKeyFromProtobuf(options.privateKey)
    : await generateKeyPair("Ed25519");
  const topic = await spaceTopic(options.space);
  const cid = await spaceCidObject(options.space);
  const maxMembers = options.maxMembers ?? 32;
  const budgets = new PeerBudgets(checkPeerLimits(options.limits), world);
  const timers = new TimerSet(world);
  /** Aborted by stop(): cancels discovery and every dial in flight. */
  const life = new AbortController();

  const libp2p = await startLibp2p({
    privateKey,
    listen,
    transports: options.transports ?? defaults!.transports,
    encrypters: options.connectionEncrypters ?? [defaults!.encrypter],
    muxers: options.streamMuxers ?? defaultMuxers(),
    peerDiscovery: options.mdns ? [await mdnsDiscovery(runtime, topic, options.mdnsInterval)] : [],
    topic,
    budgets,
    allowPrivateAddresses: options.allowPrivateAddresses,
    relay: options.relay,
  });
  // From here to the listeners below, nothing awaits: no connection event is missed.
  const self = libp2p.peerId.toString();
  const members = new Members(libp2p, {
    world,
    timers,
    life: life.signal,
    backoff: { initial: options.backoff?.initial ?? 250, max: options.backoff?.max ?? 30_000 },
    maxMembers,
    self,
    log,
  });
  const gossip = new SpaceGossip(libp2p.services.pubsub, topic, {
    charge: (peer, bytes) => guard.chargeGossip(peer, bytes),
    log,
  });
  const discovery = new SpaceDiscovery(libp2p, {
    cid,
    topic,
    interval: options.discoveryInterval ?? 10_000,
    // Only the browser transports (net/transports.ts) dial pages, through relays.
    dialsRelayed: runtime === "browser" && options.transports === undefined,
    maxMembers,
    self,
    world,
    timers,
    life: life.signal,
    members,
    subscribers: () => gossip.subscribers(),
    refused: (peer) => guard.refused(peer),
    log,
  });
  const guard = new PeerGuard(budgets, libp2p, {
    self,
    log,
    world,
    logger: options.logger,
    onRefused: (peer) => {
      // Not redialed: after the cool-off, discovery finds it again if it is a member.
      members.forget(peer);
      discovery.forget(peer);
    },
  });

  const since = new Map<string, number>();
  const peerListeners = new Set<(event: PeerEvent, peer: string) => void>();
  function emitPeer(event: PeerEvent, peer: string): void {
    for (const cb of peerListeners) {
      try {
        cb(event, peer);
      } catch (e) {
        log(`peer listener threw: ${(e as Error).message}`);
      }
    }
  }
  const onConnect = (ev: CustomEvent<PeerId>) => {
    const id = ev.detail.toString();
    since.set(id, world.now());
    members.connected(id);
    emitPeer("connect", id);
    discovery.hurry();
  };
  const onDisconnect = (ev: CustomEvent<PeerId>) => {
    const id = ev.detail.toString();
    since.delete(id);
    emitPeer("disconnect", id);
    if (!timers.stopped) members.scheduleReconnect(id);
  };
  const onDiscovery = (ev: CustomEvent<{ id: PeerId }>) => discovery.found(ev.detail.id);
  libp2p.addEventListener("peer:connect", onConnect);
  libp2p.addEventListener("peer:disconnect", onDisconnect);
  // deno-lint-ignore no-explicit-any
  if (options.mdns) libp2p.addEventListener("peer:discovery", onDiscovery as any);
  gossip.start();
  members.bootstrap(options.bootstrap ?? []);
  discovery.start();
  // A browser says when its network comes back: redial at once instead of after the grown backoff.
  const events = runtime === "browser" ? globalThis as unknown as Partial<EventTarget> : undefined;
  const onOnline = () => {
    if (members.online() > 0) discovery.hurry();
  };
  events?.addEventListener?.("online", onOnline);

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
          since: since.get(id) ?? world.now(),
        };
      }),
    topicPeers: () => gossip.subscribers(),
    // deno-lint-ignore no-explicit-any
    relay: () => relayStatus((libp2p.services as any).relay),
    exportKey: () => privateKeyToProtobuf(privateKey),
    async dial(addr, opts) {
      const conn = await members.dial(multiaddr(addr), opts?.signal);
      const id = conn.remotePeer.toString();
      members.remember(id);
      return id;
    },
    publish: (bytes) => gossip.publish(bytes),
    onMessage: (cb) => gossip.onMessage(cb),
    async handle(protocol, handler) {
      await libp2p.handle(protocol, (stream: Stream, conn: Connection) => {
        const peer = conn.remotePeer.toString();
        const run = (): void => {
          const channel = openChannel(stream, maxFrame, guard.channelGuard(peer));
          Promise.resolve()
            .then(() => handler(channel, peer))
            .catch((e: Error) => {
              log(`handler for ${protocol} failed: ${e.message}`);
              stream.abort(e);
            });
        };
        const admitted = guard.admitStream(peer, protocol, stream);
        if (admitted === true) run();
        else if (admitted !== false) admitted.then((ok) => ok && !life.signal.aborted && run());
      }, { maxInboundStreams: 64 });
    },
    async open(peer, protocol, opts) {
      const stream = await withDeadline(
        DIAL_TIMEOUT_MS,
        (signal) => libp2p.dialProtocol(peerIdFromString(peer), protocol, { signal }),
        { signals: [opts?.signal, life.signal], world },
      );
      return openChannel(stream, maxFrame, guard.channelGuard(peer));
    },
    onPeer(cb) {
      peerListeners.add(cb);
      return () => peerListeners.delete(cb);
    },
    validate: (check) => gossip.validate(check),
    penalize: (peer, reason) => guard.penalize(peer, reason),
    refused: (peer) => guard.refused(peer),
    gossipScore: (peer) => gossip.score(peer),
    async putRecord(key, value, opts) {
      await withDeadline(DIAL_TIMEOUT_MS, async (signal) => {
        for await (const ev of libp2p.services.dht.put(key, value, { signal })) {
          if (ev.name === "QUERY_ERROR") log(`putRecord: ${ev.error.message}`);
        }
      }, { signals: [opts?.signal, life.signal], world }).catch((e) => log(`putRecord failed: ${e.message}`));
    },
    async getRecords(key, opts) {
      const out: Uint8Array[] = [];
      await withDeadline(DIAL_TIMEOUT_MS, async (signal) => {
        for await (const ev of libp2p.services.dht.get(key, { signal })) {
          if (ev.name === "VALUE") out.push(ev.value);
        }
      }, { signals: [opts?.signal, life.signal], world }).catch(() => {}); // not found: none
      return out;
    },
    async stop() {
      if (timers.stopped) return;
      guard.stop();
      timers.stop();
      options.signal?.removeEventListener("abort", onAbort);
      events?.removeEventListener?.("online", onOnline);
      life.abort();
      await discovery.stop();
      libp2p.removeEventListener("peer:connect", onConnect);
      libp2p.removeEventListener("peer:disconnect", onDisconnect);
      // deno-lint-ignore no-explicit-any
      libp2p.removeEventListener("peer:discovery", onDiscovery as any);
      gossip.stop();
      const released = releaseTimers(libp2p);
      await libp2p.stop();
      released();
    },
  };
  const onAbort = () => void node.stop();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  return node;
}
