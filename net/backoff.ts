/**
 * How long to wait before the next attempt at something that failed: a
 * reconnect to a peer, a bootstrap dial, a watch that lost its server.
 *
 * Capped exponential growth with jitter, so many clients that lost the same
 * server do not come back in lock step: the delay of attempt `n` (from 0) is
 * uniform in [d/2, d] with d = min(max, initial × 2ⁿ). The randomness comes
 * from a {@link World}, so a simulation replays the same delays.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * const d = backoffDelay({ initial: 250, max: 30_000 }, 3); // d in [1000, 2000]
 * console.assert(d >= 1000 && d <= 2000);
 * ```
 *
 * @module
 */
import { systemWorld, type World } from "../core/world.ts";

/** Delays of a backoff, in ms: the first one and the cap. */
export interface Backoff {
  readonly initial: number;
  readonly max: number;
}

const scratch = new Uint32Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);

/** Full jitter over a capped exponential: uniform in [d/2, d], d = min(max, initial × 2^attempt). */
export function backoffDelay(backoff: Backoff, attempt: number, world: World = systemWorld): number {
  const d = Math.min(backoff.max, backoff.initial * 2 ** Math.min(attempt, 30));
  world.randomBytes(scratchBytes);
  return d / 2 + (scratch[0] / 2 ** 32) * d / 2;
}
