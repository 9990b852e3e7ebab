/**
 * The world outside the program that a deterministic simulation replaces:
 * the wall clock, the monotonic clock, timers and randomness.
 *
 * Every module that needs one of them takes a {@link World} (usually as an
 * option, defaulting to {@link systemWorld}) instead of calling `Date.now`,
 * `performance.now`, `setTimeout` or `crypto.getRandomValues` itself: this
 * file is the only place that touches those globals (the static checks fail
 * on any other use). A simulator passes a world of virtual time, whose timers
 * fire when it advances the clock, and seeded randomness, and then runs the
 * real replication code unchanged.
 *
 * The network transport is injected the same way, by the network's own
 * options; libp2p's internals keep their own timers.
 *
 * @module
 */

/**
 * A timer started by {@link World.setTimer}; pass it to {@link World.clearTimer}.
 *
 * @example
 * ```ts
 * import { systemWorld, type Timer } from "../mod.ts";
 * let fired = false;
 * const timer: Timer = systemWorld.setTimer(() => fired = true, 1_000);
 * systemWorld.clearTimer(timer); // it never fires
 * console.log(fired); // false
 * ```
 */
export type Timer = { readonly __timer: unique symbol } | number;

/**
 * Time, timers and randomness as a replica sees them.
 *
 * @example
 * ```ts
 * import { open, systemWorld, type World } from "../mod.ts";
 * const world: World = { ...systemWorld, now: () => Date.UTC(2030, 0, 1), randomBytes: (b) => b.fill(7) };
 * const db = await open({ storage: "memory", world });
 * console.log(db.actor); // 0707070707070707: a new replica draws its actor id from the world
 * const { state } = await db.put("alice", { name: "Alice" });
 * console.log(new Date(parseInt(state.slice(0, 12), 16)).toISOString()); // 2030-01-01T00:00:00.000Z
 * await db.close();
 * ```
 */
export interface World {
  /** Wall-clock ms since the epoch (`Date.now`). */
  now(): number;
  /** A monotonic clock in ms with sub-ms precision, for durations (`performance.now`). */
  monotonic(): number;
  /**
   * Calls `fn` once, after `ms` ms (`setTimeout`). `unref`: the timer does
   * not keep the process alive (Deno, Bun, Node; ignored elsewhere).
   */
  setTimer(fn: () => void, ms: number, unref?: boolean): Timer;
  /** Cancels a timer; a timer that fired or was cleared is ignored. */
  clearTimer(timer: Timer | undefined): void;
  /** Fills `bytes` with random bytes and returns it (`crypto.getRandomValues`; at most 65,536 at a time). */
  randomBytes(bytes: Uint8Array): Uint8Array;
}

type Unrefable = { unref?: () => void };
type DenoTimers = { unrefTimer?: (id: number) => void };

/**
 * The real world: the runtime's clocks, timers and cryptographic randomness.
 *
 * @example
 * ```ts
 * import { systemWorld } from "../mod.ts";
 * const started = systemWorld.monotonic();
 * await new Promise<void>((resolve) => systemWorld.setTimer(resolve, 10));
 * console.log(systemWorld.monotonic() - started >= 9); // true
 * console.log(systemWorld.randomBytes(new Uint8Array(8)).length); // 8
 * ```
 */
export const systemWorld: World = Object.freeze({
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer(fn: () => void, ms: number, unref = false): Timer {
    const t = setTimeout(fn, ms) as unknown;
    if (unref) {
      if (typeof t === "number") (globalThis as { Deno?: DenoTimers }).Deno?.unrefTimer?.(t);
      else (t as Unrefable).unref?.();
    }
    return t as Timer;
  },
  clearTimer(timer: Timer | undefined): void {
    if (timer !== undefined) clearTimeout(timer as unknown as number);
  },
  randomBytes: (bytes: Uint8Array): Uint8Array => crypto.getRandomValues(bytes),
});

/** Resolves after `ms` ms of `world`'s time (a macrotask even for 0: other work runs first). */
export function sleep(world: World, ms: number): Promise<void> {
  return new Promise((resolve) => world.setTimer(resolve, ms));
}
