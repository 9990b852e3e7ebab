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
import type { Attack, HostileSizes } from "./_hostile_kit.ts";
import { BENCH_SIZES } from "./_hostile_kit.ts";
import {
  deferredFlood,
  dhtRecordFlood,
  forgedSignatures,
  gossipGarbage,
  slowFrames,
  syncDeflateBomb,
} from "./_hostile_peer_attacks.ts";
import { quadraticPut, queryFreeze, sseFlood, tombstones } from "./_hostile_http_attacks.ts";

export type { Attack, AttackContext, HostileSizes, Victim } from "./_hostile_kit.ts";
export { authHeaders, BENCH_SIZES } from "./_hostile_kit.ts";

/** The attacks, in the order of the issue. */
export function hostileAttacks(sizes: HostileSizes = BENCH_SIZES): Attack[] {
  return [
    syncDeflateBomb(sizes),
    queryFreeze(sizes),
    quadraticPut(sizes),
    deferredFlood(sizes),
    slowFrames(sizes),
    gossipGarbage(sizes),
    forgedSignatures(sizes),
    dhtRecordFlood(sizes),
    sseFlood(sizes),
    sseFlood(sizes, 0),
    tombstones(sizes),
  ];
}
