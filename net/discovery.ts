/**
 * Finding the other members of a space. A node provides the space's CID in
 * the DHT (`/lattice/kad/1.0.0`) and looks up its other providers in rounds
 * (every `interval` ms, the first at once, the next pulled forward when a new
 * connection widens what a lookup reaches), and dials what it finds, up to
 * `maxMembers` connections. With mDNS, members on the local network answer
 * too. Each round also heals gossip: a provider that stays connected but
 * never subscribes to the topic is hung up on, and the redial starts fresh.
 *
 * @module
 */
import type { KadDHT } from "@libp2p/kad-dht";
import type { Connection, PeerId } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { CID } from "multiformats/cid";
import type { Timer, World } from "../core/world.ts";
import { withDeadline } from "./deadline.ts";
import { DIAL_TIMEOUT_MS, type Members } from "./members.ts";
import type { TimerSet } from "./timer_set.ts";

/** An address through a circuit relay. */
const isRelayed = (addr: Multiaddr): boolean => addr.toString().includes("/p2p-circuit");

/** The part of libp2p that {@link SpaceDiscovery} uses. */
export interface DiscoveryHost {
  readonly services: { dht: KadDHT };
  readonly peerStore: { merge(peer: PeerId, data: { multiaddrs: Multiaddr[] }): Promise<unknown> };
  getConnections(peer?: PeerId): Connection[];
  getMultiaddrs(): Multiaddr[];
  getPeers(): PeerId[];
  hangUp(peer: PeerId): Promise<void>;
}

/** Options of {@link SpaceDiscovery}. */
export interface DiscoveryOptions {
  /** The space's provider key (`spaceCid`) and gossip topic. */
  readonly cid: CID;
  readonly topic: string;
  /** Milliseconds between rounds. */
  readonly interval: number;
  /** Most connections this node opens to members it finds. */
  readonly maxMembers: number;
  readonly self: string;
  readonly world: World;
  readonly timers: TimerSet;
  /** Aborted when the node stops: ends a running round. */
  readonly life: AbortSignal;
  readonly members: Members;
  /** Peers subscribed to the space topic now. */
  readonly subscribers: () => string[];
  /**
   * Whether this node can use a member reachable only through a relay (`/p2p-circuit`: a page): browsers
   * can (WebRTC through the relay); servers cannot (a relayed connection carries no sync), so they leave
   * such providers alone instead of redialing them forever.
   */
  readonly dialsRelayed: boolean;
  /** Whether a peer is refused (it is not dialed). */
  readonly refused: (peer: string) => boolean;
  readonly log: (msg: string) => void;
}

/** The discovery rounds of one node; see the module doc. */
export class SpaceDiscovery {
  readonly #libp2p: DiscoveryHost;
  readonly #o: DiscoveryOptions;
  /** Members found as providers: connected ones are expected to subscribe to the topic. */
  readonly #providers = new Set<string>();
  /** Connected providers missing from the topic's subscribers: id → first noticed (ms). */
  readonly #unsubscribed = new Map<string, number>();
  #running: Promise<void> | undefined;
  #next: { timer: Timer; at: number } | undefined;

  constructor(libp2p: DiscoveryHost, options: DiscoveryOptions) {
    this.#libp2p = libp2p;
    this.#o = options;
  }

  /** Starts the rounds: the first runs at once. */
  start(): void {
    this.#loop(0);
  }

  /** Waits for a running round to end (call after the node's timers stopped and its life aborted). */
  async stop(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  /** Forgets a refused peer. */
  forget(peer: string): void {
    this.#providers.delete(peer);
  }

  /**
   * A new connection widens what our lookups can reach: pull the next round
   * forward to at most min(interval / 4, 250 ms) away; a running round is
   * never doubled (the next one is only scheduled when it ends).
   */
  hurry(): void {
    const next = this.#next;
    if (this.#o.timers.stopped || !next || this.#libp2p.getConnections().length >= this.#o.maxMembers) return;
    const soon = Math.min(this.#o.interval / 4, 250);
    if (next.at - this.#o.world.now() <= soon) return;
    this.#o.timers.cancel(next.timer);
    this.#loop(soon);
  }

  /** A member found by mDNS (only members of this space answer its service tag): keep it and dial it. */
  found(peer: PeerId): void {
    const id = peer.toString();
    if (id === this.#o.self || this.#o.timers.stopped) return;
    this.#o.members.remember(id);
    if (this.#libp2p.getConnections(peer).length > 0) return;
    if (this.#libp2p.getConnections().length >= this.#o.maxMembers) return;
    this.#o.members.dialMember(peer, "mDNS peer");
  }

  #loop(delay: number): void {
    const timer = this.#o.timers.later(delay, () => {
      this.#next = undefined;
      this.#running = this.#once().finally(() => {
        this.#running = undefined;
        if (!this.#o.timers.stopped) this.#loop(this.#o.interval);
      });
    });
    this.#next = { timer, at: this.#o.world.now() + delay };
  }

  /**
   * Announces this node and looks up the others at the same time (a lookup
   * needs no announcement). A node without addresses (a browser) does not
   * announce: others could find it but never dial it.
   */
  async #once(): Promise<void> {
    const announce = this.#libp2p.getMultiaddrs().length > 0;
    await withDeadline(
      DIAL_TIMEOUT_MS,
      (signal) => Promise.all([announce ? this.#provide(signal) : undefined, this.#find(signal)]),
      { signals: [this.#o.life], world: this.#o.world },
    );
    this.#healGossip();
  }

  async #provide(signal: AbortSignal): Promise<void> {
    try {
      for await (const ev of this.#libp2p.services.dht.provide(this.#o.cid, { signal })) {
        if (ev.name === "QUERY_ERROR") this.#o.log(`provide: ${ev.error.message}`);
      }
    } catch (e) {
      if (!this.#o.timers.stopped) this.#o.log(`provide failed: ${(e as Error).message}`);
    }
  }

  async #find(signal: AbortSignal): Promise<void> {
    const { self, members, maxMembers } = this.#o;
    try {
      for await (const ev of this.#libp2p.services.dht.findProviders(this.#o.cid, { signal })) {
        if (ev.name !== "PROVIDER" && ev.name !== "PEER_RESPONSE") continue;
        for (const p of ev.providers) {
          const id = p.id.toString();
          if (id === self || this.#o.timers.stopped || this.#o.refused(id)) continue;
          if (!this.#o.dialsRelayed && p.multiaddrs.length > 0 && p.multiaddrs.every(isRelayed)) continue;
          members.remember(id);
          if (this.#providers.size < maxMembers * 4) this.#providers.add(id);
          if (this.#libp2p.getConnections(p.id).length > 0) continue;
          if (this.#libp2p.getConnections().length >= maxMembers) continue;
          if (p.multiaddrs.length > 0) {
            await this.#libp2p.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {});
          }
          members.dialMember(p.id, "provider");
        }
      }
    } catch (e) {
      if (!this.#o.timers.stopped) this.#o.log(`findProviders failed: ${(e as Error).message}`);
    }
  }

  /**
   * When duplicate connections to a peer race (both sides dial at once, as
   * after a restart) gossipsub can lose its stream to that peer while the
   * peer stays connected, and nothing re-creates it: the two stop exchanging
   * messages for good. A provider that stays connected but unsubscribed for
   * several rounds is hung up on; the reconnect (with backoff) starts fresh.
   */
  #healGossip(): void {
    const subscribed = new Set(this.#o.subscribers());
    const now = this.#o.world.now();
    const grace = Math.max(5_000, 3 * this.#o.interval);
    for (const peer of this.#libp2p.getPeers()) {
      const id = peer.toString();
      if (!this.#providers.has(id) || subscribed.has(id)) {
        this.#unsubscribed.delete(id);
        continue;
      }
      const first = this.#unsubscribed.get(id);
      if (first === undefined) this.#unsubscribed.set(id, now);
      else if (now - first > grace) {
        this.#unsubscribed.delete(id);
        this.#o.log(
          `${id} is connected but not subscribed to ${this.#o.topic} for ${now - first} ms; reconnecting`,
        );
        this.#o.members.remember(id);
        this.#libp2p.hangUp(peer).catch(() => {});
      }
    }
  }
}
