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
import type { Logger } from "./log.ts";
import type { PeerBudgets } from "./peer_budget.ts";

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
}

/** Charges peers' budgets and refuses the peers that break them; see the module doc. */
export class PeerGuard {
  readonly budgets: PeerBudgets;
  readonly #connections: PeerConnections;
  readonly #options: PeerGuardOptions;
  #stopped = false;

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
   * Counts an inbound `protocol` stream from `peer` until it closes. A peer
   * over its stream budget has the stream aborted and is refused: false.
   */
  admitStream(peer: string, protocol: string, stream: Stream): boolean {
    if (!this.budgets.openStream(peer)) {
      stream.abort(new Error(`Too many ${protocol} streams from ${peer}`));
      this.penalize(peer, `opened more than ${this.budgets.limits.streams} ${protocol} streams at once`);
      return false;
    }
    stream.addEventListener("close", () => this.budgets.closeStream(peer), { once: true });
    return true;
  }
}
