/**
 * What one peer may cost this node, and what a peer that costs more pays.
 *
 * Every peer is untrusted. Each gets budgets: sync (channel) streams open at
 * once, bytes it sends on channels and gossip bytes it relays to us per
 * window, and DHT provider records we keep for it. A peer over a stream or
 * byte budget is **refused**: disconnected, and every connection to or from it
 * is denied by the connection gater for a cool-off period (then it may come
 * back with fresh budgets). This file keeps the counts and the refusals; it
 * loads no libp2p, so `net/network_options.ts` can check limits with it.
 *
 * Defaults are meant to be far above what an honest member sends (a full
 * sync is paced by the receiver's merge, ~tens of MB/s) and far below what
 * hurts a node.
 *
 * @example
 * ```ts
 * import { checkPeerLimits, PeerBudgets } from "./peer_budget.ts";
 * const budgets = new PeerBudgets(checkPeerLimits({ gossipBytes: 100 }));
 * console.log(budgets.charge("peer-a", "gossip", 60)); // true
 * console.log(budgets.charge("peer-a", "gossip", 60)); // false: 120 bytes in one window
 * budgets.refuse("peer-a");
 * console.log(budgets.refused("peer-a")); // true, for the cool-off period
 * ```
 *
 * @module
 */
import { systemWorld, type World } from "../core/world.ts";

/** Per-peer limits (each optional; see {@link DEFAULT_PEER_LIMITS}). */
export interface PeerLimits {
  /** Channel (sync) streams a peer may have open to this node at once. */
  readonly streams?: number;
  /** Bytes a peer may send on channels (sync) per window. */
  readonly channelBytes?: number;
  /** Gossip message bytes a peer may relay to this node per window. */
  readonly gossipBytes?: number;
  /** The accounting window, in ms. */
  readonly windowMs?: number;
  /** How long a peer over a budget is refused, in ms. */
  readonly coolOffMs?: number;
  /** DHT provider records kept for one peer. */
  readonly providerRecords?: number;
  /** DHT provider records kept for all other peers together. */
  readonly providerRecordsTotal?: number;
}

/** Every limit, filled in. */
export type CheckedPeerLimits = { readonly [K in keyof PeerLimits]-?: number };

/**
 * The defaults: 4 streams; 512 MiB of channel bytes and 256 MiB of gossip per
 * 10 s window (a bulk import on one member publishes tens of MB/s, which its
 * neighbours relay: they must not be refused for it); refused for 10
 * minutes; 32 provider records per peer and 16,384 in all (a record is a key
 * of ~120 bytes and an 8-byte time).
 */
export const DEFAULT_PEER_LIMITS: CheckedPeerLimits = {
  streams: 4,
  channelBytes: 512 * 1024 * 1024,
  gossipBytes: 256 * 1024 * 1024,
  windowMs: 10_000,
  coolOffMs: 600_000,
  providerRecords: 32,
  providerRecordsTotal: 16_384,
};

/**
 * Checks limits and fills in the defaults. Throws `TypeError` for an unknown
 * key or a non-number, `RangeError` for a value that is not a positive
 * integer.
 */
export function checkPeerLimits(value: unknown, name = "limits"): CheckedPeerLimits {
  if (value === undefined) return DEFAULT_PEER_LIMITS;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object of per-peer limits`);
  }
  const out: Record<string, number> = { ...DEFAULT_PEER_LIMITS };
  for (const [key, v] of Object.entries(value)) {
    if (!Object.hasOwn(DEFAULT_PEER_LIMITS, key)) {
      throw new TypeError(
        `Unknown ${name} key ${JSON.stringify(key)}; known: ${Object.keys(DEFAULT_PEER_LIMITS).join(", ")}`,
      );
    }
    if (v === undefined) continue;
    if (typeof v !== "number") throw new TypeError(`${name}.${key} must be a number, got ${typeof v}`);
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`${name}.${key} must be a positive integer, got ${v}`);
    }
    out[key] = v;
  }
  return out as CheckedPeerLimits;
}

/** What a peer has spent in the current window. */
interface Spent {
  windowStart: number;
  channel: number;
  gossip: number;
  streams: number;
}

/** Above this many tracked peers, idle ones from past windows are swept. */
const SWEEP_AT = 1024;

/** The counts and refusals of one node; see the module doc. */
export class PeerBudgets {
  readonly limits: CheckedPeerLimits;
  readonly #world: World;
  readonly #spent = new Map<string, Spent>();
  /** Refused peers: id → until (ms since the epoch). */
  readonly #refused = new Map<string, number>();

  /** `world` tells the time of windows and cool-offs (default {@link systemWorld}). */
  constructor(limits: CheckedPeerLimits = DEFAULT_PEER_LIMITS, world: World = systemWorld) {
    this.limits = limits;
    this.#world = world;
  }

  #of(peer: string): Spent {
    const now = this.#world.now();
    let s = this.#spent.get(peer);
    if (s === undefined) {
      if (this.#spent.size >= SWEEP_AT) this.#sweep(now);
      s = { windowStart: now, channel: 0, gossip: 0, streams: 0 };
      this.#spent.set(peer, s);
    } else if (now - s.windowStart >= this.limits.windowMs) {
      s.windowStart = now;
      s.channel = 0;
      s.gossip = 0;
    }
    return s;
  }

  #sweep(now: number): void {
    for (const [peer, s] of this.#spent) {
      if (s.streams === 0 && now - s.windowStart >= this.limits.windowMs) this.#spent.delete(peer);
    }
  }

  /** Counts `bytes` from `peer`; false once its budget of that kind in this window is exceeded. */
  charge(peer: string, kind: "channel" | "gossip", bytes: number): boolean {
    const s = this.#of(peer);
    if (kind === "channel") return (s.channel += bytes) <= this.limits.channelBytes;
    return (s.gossip += bytes) <= this.limits.gossipBytes;
  }

  /** Counts a stream `peer` opened; false (and not counted) when it already has its limit open. */
  openStream(peer: string): boolean {
    const s = this.#of(peer);
    if (s.streams >= this.limits.streams) return false;
    s.streams++;
    return true;
  }

  /** Uncounts a stream counted by {@link openStream}. */
  closeStream(peer: string): void {
    const s = this.#spent.get(peer);
    if (s !== undefined && s.streams > 0) s.streams--;
  }

  /**
   * Refuses `peer` for the cool-off period and forgets the bytes it spent.
   * Returns when the refusal ends, or `undefined` if it was refused already.
   */
  refuse(peer: string): number | undefined {
    if (this.refused(peer)) return undefined;
    const until = this.#world.now() + this.limits.coolOffMs;
    this.#refused.set(peer, until);
    const s = this.#spent.get(peer);
    if (s !== undefined) s.channel = s.gossip = 0; // its open streams are closed by the hang-up
    return until;
  }

  /** Whether `peer` is refused now. */
  refused(peer: string): boolean {
    const until = this.#refused.get(peer);
    if (until === undefined) return false;
    if (this.#world.now() < until) return true;
    this.#refused.delete(peer);
    return false;
  }
}
