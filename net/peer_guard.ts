/**
 * What a node does about a peer that costs too much or breaks a rule: it
 * charges the peer's budgets (`net/peer_budget.ts` keeps the counts) as its
 * streams, channel bytes and gossip arrive, and refuses a peer over one, or
 * one that breaks a protocol limit: logged with its id, disconnected at once
 * and denied by the connection gater for the cool-off period.
 *
 * Its connections are aborted, not closed gracefully: while a close waits on
 * its streams, data already queued on the socket (megabytes of tiny frames)
 * is still read and decrypted, each message answered with a yamux window
 * update.
 *
 * @module
 */
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import type { ChannelGuard } from "./channel.ts";
import type { Logger } from "../runtime/log.ts";
import type { PeerBudgets } from "./peer_budget.ts";
import { systemWorld, type Timer, type World } from "../core/world.ts";

/** The part of libp2p that {@link PeerGuard} uses to cut a peer off. */
export interface PeerConnections {
  getConnections(peer: PeerId): Connection[];
  hangUp(peer: PeerId): Promise<void>;
}

/** Options of {@link PeerGuard}. */
export interface PeerGuardOptions {
  /** This node's peer id: never refused. */
  readonly self: string;
  /** Debug log sink. */
  readonly log: (msg: string) => void;
  /** Where refusals are reported (warn level, with the peer's id; default: the debug sink). */
  readonly logger?: Logger;
  /** Told of each refused peer, before it is disconnected (it is not to be redialed). */
  readonly onRefused: (peer: string) => void;
  /** Timers (default `systemWorld`). */
  readonly world?: World;
}

/**
 * How long one stream over its peer's stream budget waits for another of
 * that peer's streams to close before it counts as an offence. An honest
 * peer that starts a session right after the last one ended can be there
 * before the close of the old stream is seen here (on a loaded machine, tens
 * of milliseconds later); a peer that keeps streams open, or opens a second
 * one over its budget meanwhile, is refused.
 */
export const STREAM_GRACE_MS = 2_000;

/** Charges peers' budgets and refuses the peers that break them; see the module doc. */
export class PeerGuard {
  readonly budgets: PeerBudgets;
  readonly #connections: PeerConnections;
  readonly #options: PeerGuardOptions;
  #stopped = false;
  /** Per peer, the one stream over its budget that waits for a slot: called when one of its streams closes. */
  readonly #waiting = new Map<string, () => void>();

  /** `budgets` are also the connection gater's (it denies every peer they refuse). */
  constructor(budgets: PeerBudgets, connections: PeerConnections, options: PeerGuardOptions) {
    this.budgets = budgets;
    this.#connections = connections;
    this.#options = options;
  }

  /** Refusals end with the node: a stopping node penalizes nobody. */
  stop(): void {
    this.#stopped = true;
  }

  /** Whether `peer` is refused now. */
  refused(peer: string): boolean {
    return this.budgets.refused(peer);
  }

  /**
   * Disconnects `peer` and refuses it for the cool-off period, logging
   * `reason` with its id. No-op for a peer already refused, and for itself.
   */
  penalize(peer: string, reason: string): void {
    const { self, log, logger, onRefused } = this.#options;
    if (this.#stopped || peer === self) return;
    if (this.budgets.refuse(peer) === undefined) return; // refused already
    const coolOffMs = this.budgets.limits.coolOffMs;
    if (logger) logger.warn("net", "misbehaving peer disconnected and refused", { peer, reason, coolOffMs });
    else log(`refusing ${peer} for ${coolOffMs} ms: ${reason}`);
    onRefused(peer);
    const connections = this.#connections;
    const id = peerIdFromString(peer);
    const why = new Error(`Peer refused: ${reason}`);
    for (const c of connections.getConnections(id)) c.abort(why);
    connections.hangUp(id).catch(() => {});
  }

  /** Charges gossip `peer` relayed; false (and the peer refused) once it is over its budget. */
  chargeGossip(peer: string, bytes: number): boolean {
    if (this.budgets.charge(peer, "gossip", bytes)) return true;
    const { gossipBytes, windowMs } = this.budgets.limits;
    this.penalize(peer, `relayed more than ${gossipBytes} gossip bytes in ${windowMs} ms`);
    return false;
  }

  /** What a channel with `peer` tells this guard: each chunk's size, and frames that break the rules. */
  channelGuard(peer: string): ChannelGuard {
    return {
      spend: (bytes) => {
        if (this.budgets.charge(peer, "channel", bytes)) return true;
        const { channelBytes, windowMs } = this.budgets.limits;
        this.penalize(peer, `sent more than ${channelBytes} channel bytes in ${windowMs} ms`);
        return false;
      },
      violated: (reason) => this.penalize(peer, `channel: ${reason}`),
    };
  }

  /**
   * Counts an inbound `protocol` stream from `peer` until it closes: true.
   * A stream over the peer's stream budget waits up to
   * {@link STREAM_GRACE_MS} for one of its streams to close (a promise of
   * whether it got the slot); past that, or when another stream of that peer
   * is waiting already, it is aborted and the peer refused: false.
   */
  admitStream(peer: string, protocol: string, stream: Stream): boolean | Promise<boolean> {
    if (this.budgets.openStream(peer)) {
      this.#count(peer, stream);
      return true;
    }
    if (this.#waiting.has(peer)) return this.#refuseStream(peer, protocol, stream);
    const world = this.#options.world ?? systemWorld;
    return new Promise<boolean>((resolve) => {
      let timer: Timer | undefined = undefined;
      const done = (admitted: boolean): void => {
        world.clearTimer(timer);
        stream.removeEventListener("close", gone);
        this.#waiting.delete(peer);
        resolve(admitted);
      };
      const gone = (): void => done(false); // the peer gave up on it: no offence
      stream.addEventListener("close", gone, { once: true });
      timer = world.setTimer(() => done(this.#refuseStream(peer, protocol, stream)), STREAM_GRACE_MS, true);
      this.#waiting.set(peer, () => {
        if (!this.budgets.openStream(peer)) return;
        this.#count(peer, stream);
        done(true);
      });
    });
  }

  /** Uncounts `stream` when it closes, and offers its slot to the stream waiting for one. */
  #count(peer: string, stream: Stream): void {
    stream.addEventListener("close", () => {
      this.budgets.closeStream(peer);
      this.#waiting.get(peer)?.();
    }, { once: true });
  }

  #refuseStream(peer: string, protocol: string, stream: Stream): false {
    stream.abort(new Error(`Too many ${protocol} streams from ${peer}`));
    this.penalize(peer, `opened more than ${this.budgets.limits.streams} ${protocol} streams at once`);
    return false;
  }
}
