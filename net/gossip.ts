/**
 * Gossip on a space's topic: gossipsub's configuration for Lattice, the
 * topic validator every message passes before it is delivered or relayed,
 * and the node's publish/subscribe.
 *
 * Every peer is untrusted: the validator charges the peer that relayed a
 * message to its gossip byte budget (a peer over it is refused, see
 * `net/peer_guard.ts`) and runs the checks the layer above added
 * (`NetNode.validate`); a rejected message is dropped, not relayed, and
 * lowers its sender's gossipsub score, so a peer that keeps sending garbage
 * is soon ignored.
 *
 * @module
 */
import { type GossipSub, gossipsub, TopicValidatorResult } from "@libp2p/gossipsub";
import type { PeerId } from "@libp2p/interface";

/** Largest gossip message {@link SpaceGossip.publish} accepts (1 MiB). */
export const MAX_GOSSIP_BYTES = 1024 * 1024;

/** The gossipsub service of a node in the space whose topic is `topic`. */
export function gossipService(topic: string): ReturnType<typeof gossipsub> {
  return gossipsub({
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
  });
}

/** What {@link SpaceGossip} needs from the node around it. */
export interface GossipHooks {
  /** Charges `bytes` of gossip relayed by `peer`; false refuses the peer (it is over its budget). */
  charge(peer: string, bytes: number): boolean;
  log(msg: string): void;
}

/**
 * What a check throws to drop a message without holding it against its
 * sender (gossipsub's Ignore: not delivered, not relayed, no score
 * penalty): for messages that cannot be checked now, which anti-entropy
 * brings again later.
 */
export class GossipIgnore extends Error {
  override name = "GossipIgnore";
}

/**
 * A check of every message on the topic (`NetNode.validate`): throwing, or
 * returning a promise that rejects, refuses the message. `from` is the peer
 * that sent it here.
 */
export type GossipCheck = (bytes: Uint8Array, from: string) => void | Promise<void>;

type GossipMessage = { topic: string; data: Uint8Array; type: string; from?: PeerId };

/** Publish, subscribe and validation on one space's topic. */
export class SpaceGossip {
  readonly #pubsub: GossipSub;
  readonly #topic: string;
  readonly #hooks: GossipHooks;
  readonly #listeners = new Set<(bytes: Uint8Array, from: string) => void>();
  readonly #checks = new Set<GossipCheck>();
  readonly #onGossip = (ev: CustomEvent<GossipMessage>): void => this.#deliver(ev.detail);

  constructor(pubsub: GossipSub, topic: string, hooks: GossipHooks) {
    this.#pubsub = pubsub;
    this.#topic = topic;
    this.#hooks = hooks;
  }

  /** Installs the validator and subscribes to the topic. */
  start(): void {
    // deno-lint-ignore no-explicit-any
    this.#pubsub.addEventListener("message", this.#onGossip as any);
    this.#pubsub.topicValidators.set(this.#topic, (source, msg) => this.#validate(source, msg));
    this.#pubsub.subscribe(this.#topic);
  }

  /** Stops delivering messages (libp2p's stop ends the subscription). */
  stop(): void {
    // deno-lint-ignore no-explicit-any
    this.#pubsub.removeEventListener("message", this.#onGossip as any);
  }

  /** Peers subscribed to the topic. */
  subscribers(): string[] {
    return this.#pubsub.getSubscribers(this.#topic).map((p) => p.toString());
  }

  /** Publishes `bytes` on the topic; `RangeError` above {@link MAX_GOSSIP_BYTES}. */
  async publish(bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("publish takes a Uint8Array");
    if (bytes.length > MAX_GOSSIP_BYTES) {
      throw new RangeError(
        `Cannot publish: message length ${bytes.length} exceeds limit ${MAX_GOSSIP_BYTES}`,
      );
    }
    await this.#pubsub.publish(this.#topic, bytes);
  }

  /** Calls `cb` with every accepted message; returns a function that removes it. */
  onMessage(cb: (bytes: Uint8Array, from: string) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Adds a check every message must pass (see `NetNode.validate`); returns a function that removes it. */
  validate(check: GossipCheck): () => void {
    this.#checks.add(check);
    return () => this.#checks.delete(check);
  }

  /** `peer`'s gossipsub score as this node sees it (0 for a peer it does not know). */
  score(peer: string): number {
    // The GossipSub type lacks getScore; the service has it (gossipsub 17).
    return (this.#pubsub as unknown as { getScore(id: string): number }).getScore(peer);
  }

  /**
   * The topic's validator: runs before a message is delivered or relayed.
   * Charges the peer that sent it (the propagation source) and runs the
   * checks; Reject drops the message and lowers that peer's score.
   */
  #validate(source: PeerId, msg: { data: Uint8Array }): TopicValidatorResult | Promise<TopicValidatorResult> {
    const from = source.toString();
    if (!this.#hooks.charge(from, msg.data.length)) return TopicValidatorResult.Reject;
    let waits: Promise<void>[] | undefined;
    for (const check of this.#checks) {
      try {
        const wait = check(msg.data, from);
        if (wait !== undefined) (waits ??= []).push(wait);
      } catch (e) {
        return this.#reject(from, e);
      }
    }
    if (waits === undefined) return TopicValidatorResult.Accept;
    return Promise.all(waits).then(() => TopicValidatorResult.Accept, (e) => this.#reject(from, e));
  }

  #reject(from: string, e: unknown): TopicValidatorResult {
    if (e instanceof GossipIgnore) {
      this.#hooks.log(`ignored gossip message from ${from}: ${e.message}`);
      return TopicValidatorResult.Ignore;
    }
    this.#hooks.log(`rejected gossip message from ${from}: ${(e as Error).message}`);
    return TopicValidatorResult.Reject;
  }

  #deliver(msg: GossipMessage): void {
    if (msg.topic !== this.#topic) return;
    const from = msg.type === "signed" && msg.from ? msg.from.toString() : "";
    for (const cb of this.#listeners) {
      try {
        cb(msg.data, from);
      } catch (e) {
        this.#hooks.log(`message listener threw: ${(e as Error).message}`);
      }
    }
  }
}
