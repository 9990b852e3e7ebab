/**
 * The members of a space a node wants to stay connected to, and the dialing
 * that keeps it so: bootstrap addresses are dialed at start and retried
 * until reached once; a member that disconnects (or that could not be
 * dialed) is redialed with a capped, jittered exponential backoff
 * (`net/backoff.ts`); every dial has a deadline and ends with the node.
 * When the runtime says the network is back (a browser's `online` event),
 * {@link Members.online} drops the waits: every member not connected and
 * every bootstrap address not yet reached is dialed at once, with its
 * backoff started over, instead of after a delay that grew while offline.
 * Members come from bootstrap, from DHT provider lookups and mDNS
 * (`net/discovery.ts`), and from dials the layer above asks for.
 *
 * @module
 */
import type { Connection, PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import type { Timer, World } from "../core/world.ts";
import { type Backoff, backoffDelay } from "./backoff.ts";
import { withDeadline } from "./deadline.ts";
import type { TimerSet } from "./timer_set.ts";

/** How long a dial (or a stream's protocol negotiation) may take. */
export const DIAL_TIMEOUT_MS = 10_000;

/** The part of libp2p that {@link Members} dials with. */
export interface Dialer {
  dial(target: PeerId | Multiaddr, options: { signal: AbortSignal }): Promise<Connection>;
  getConnections(peer?: PeerId): Connection[];
}

/** Options of {@link Members}. */
export interface MembersOptions {
  readonly world: World;
  /** The node's timers: stopping them stops every retry. */
  readonly timers: TimerSet;
  /** Aborted when the node stops: ends every dial in flight. */
  readonly life: AbortSignal;
  readonly backoff: Backoff;
  /** Most members dialed from discovery; 4× as many are remembered. */
  readonly maxMembers: number;
  /** This node's peer id: never a member. */
  readonly self: string;
  readonly log: (msg: string) => void;
}

/** A member, or a bootstrap address, and its retries. */
interface Retry {
  attempt: number;
  timer?: Timer;
  /** A member: it went (or could not be dialed) and is redialed until it connects. */
  lost?: boolean;
}

/** Members and bootstrap addresses, dialed and redialed; see the module doc. */
export class Members {
  readonly #libp2p: Dialer;
  readonly #o: MembersOptions;
  /** Members we want to stay connected to: peer id → reconnect state. */
  readonly #members = new Map<string, Retry>();
  /** Bootstrap addresses not yet reached: addr → retry state. */
  readonly #bootstrap = new Map<string, Retry>();

  constructor(libp2p: Dialer, options: MembersOptions) {
    this.#libp2p = libp2p;
    this.#o = options;
  }

  /** Dials `target` within {@link DIAL_TIMEOUT_MS}, aborted also by `signal` or the node's stop. */
  dial(target: PeerId | Multiaddr, signal?: AbortSignal): Promise<Connection> {
    return withDeadline(DIAL_TIMEOUT_MS, (s) => this.#libp2p.dial(target, { signal: s }), {
      signals: [signal, this.#o.life],
      world: this.#o.world,
    });
  }

  /** Dials member `peer` (found by `how`); if that fails, redials it with backoff. */
  dialMember(peer: PeerId, how: string): void {
    this.dial(peer).catch((e) => {
      this.#o.log(`dial ${how} ${peer} failed: ${(e as Error).message}`);
      this.scheduleReconnect(peer.toString());
    });
  }

  /** Keeps `peer` as a member (bounded: against provider floods). */
  remember(peer: string): void {
    if (peer === this.#o.self || this.#members.has(peer)) return;
    if (this.#members.size >= this.#o.maxMembers * 4) return;
    this.#members.set(peer, { attempt: 0 });
  }

  /** Forgets `peer` (refused: after its cool-off, discovery finds it again if it is a member). */
  forget(peer: string): void {
    const m = this.#members.get(peer);
    if (m === undefined) return;
    this.#o.timers.cancel(m.timer);
    this.#members.delete(peer);
  }

  /** `peer` connected: its backoff starts over and a pending redial is cancelled. */
  connected(peer: string): void {
    const m = this.#members.get(peer);
    if (m === undefined) return;
    m.attempt = 0;
    m.lost = false;
    this.#o.timers.cancel(m.timer);
    m.timer = undefined;
  }

  /** Redials member `peer` after its next backoff delay, unless it is connected by then. */
  scheduleReconnect(peer: string): void {
    const m = this.#members.get(peer);
    if (!m || m.timer || this.#o.timers.stopped) return;
    m.lost = true;
    const delay = backoffDelay(this.#o.backoff, m.attempt++, this.#o.world);
    this.#o.log(`reconnect ${peer} in ${Math.round(delay)} ms (attempt ${m.attempt})`);
    m.timer = this.#o.timers.later(delay, () => {
      m.timer = undefined;
      const id = peerIdFromString(peer);
      if (this.#libp2p.getConnections(id).length > 0) return;
      this.dial(id).catch((e) => {
        this.#o.log(`reconnect ${peer} failed: ${(e as Error).message}`);
        this.scheduleReconnect(peer);
      });
    });
  }

  /**
   * The network is back: every member being redialed is dialed now unless
   * connected (its pending redial cancelled; when a redial of it is in flight,
   * started while offline, libp2p joins the two), so is every bootstrap
   * address waiting for its retry, and their backoffs start over. Returns how
   * many dials it started.
   */
  online(): number {
    if (this.#o.timers.stopped) return 0;
    let dials = 0;
    for (const [peer, m] of this.#members) {
      if (!m.lost) continue;
      m.attempt = 0;
      this.#o.timers.cancel(m.timer);
      m.timer = undefined;
      const id = peerIdFromString(peer);
      if (this.#libp2p.getConnections(id).length > 0) continue;
      dials++;
      this.#o.log(`online: redial ${peer}`);
      this.dial(id).catch((e) => {
        this.#o.log(`redial ${peer} failed: ${(e as Error).message}`);
        this.scheduleReconnect(peer);
      });
    }
    for (const [addr, st] of this.#bootstrap) {
      st.attempt = 0;
      if (st.timer === undefined) continue; // its dial is in flight, and retries when it fails
      this.#o.timers.cancel(st.timer);
      st.timer = undefined;
      dials++;
      this.#o.log(`online: redial bootstrap ${addr}`);
      this.#dialBootstrap(addr);
    }
    return dials;
  }

  /** Dials each bootstrap address, retrying with backoff until it is reached once. */
  bootstrap(addrs: readonly string[]): void {
    for (const addr of addrs) {
      this.#bootstrap.set(addr, { attempt: 0 });
      this.#dialBootstrap(addr);
    }
  }

  #dialBootstrap(addr: string): void {
    const st = this.#bootstrap.get(addr);
    if (!st || this.#o.timers.stopped) return;
    this.dial(multiaddr(addr)).then((conn) => {
      this.#bootstrap.delete(addr);
      this.remember(conn.remotePeer.toString());
    }, (e) => {
      if (this.#o.timers.stopped) return;
      const delay = backoffDelay(this.#o.backoff, st.attempt++, this.#o.world);
      this.#o.log(`bootstrap ${addr} failed (${(e as Error).message}); retry in ${Math.round(delay)} ms`);
      st.timer = this.#o.timers.later(delay, () => {
        st.timer = undefined;
        this.#dialBootstrap(addr);
      });
    });
  }
}
