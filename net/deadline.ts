/**
 * A time limit on one network-bound call, as an `AbortSignal` the call takes.
 *
 * Unlike `AbortSignal.timeout`, the timer is cleared as soon as the call
 * settles, so a finished call leaves no timer holding the process open, and
 * it runs on a {@link World}'s timers, so a simulation's virtual time drives
 * it. The signal also follows any parent signals (the caller's, a node's
 * lifetime), and the listeners on them are removed when the call settles.
 *
 * @example
 * ```ts
 * import { withDeadline } from "./deadline.ts";
 * const n = await withDeadline(1_000, async (signal) => signal.aborted ? 0 : 42);
 * console.assert(n === 42);
 * ```
 *
 * @module
 */
import { systemWorld, type World } from "../core/world.ts";

/** Options of {@link withDeadline}. */
export interface DeadlineOptions {
  /** Parent signals: when any aborts, the call's signal aborts with its reason. */
  readonly signals?: readonly (AbortSignal | undefined)[];
  /** Whose timers (default {@link systemWorld}). */
  readonly world?: World;
  /** The timer does not keep the process alive (default false). */
  readonly unref?: boolean;
  /** The abort reason when time is up (default: a `TimeoutError` `DOMException` "Timed out after … ms"). */
  readonly reason?: () => unknown;
}

/** Runs `fn` with a signal that aborts after `ms` ms or when a parent signal aborts. */
export async function withDeadline<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
  options: DeadlineOptions = {},
): Promise<T> {
  const world = options.world ?? systemWorld;
  const ac = new AbortController();
  const live = (options.signals ?? []).filter((p): p is AbortSignal => p !== undefined);
  const onAbort = (ev: Event) => ac.abort((ev.target as AbortSignal).reason);
  for (const p of live) {
    if (p.aborted) ac.abort(p.reason);
    else p.addEventListener("abort", onAbort, { once: true });
  }
  const reason = options.reason ?? (() => new DOMException(`Timed out after ${ms} ms`, "TimeoutError"));
  const timer = world.setTimer(() => ac.abort(reason()), ms, options.unref);
  try {
    return await fn(ac.signal);
  } finally {
    world.clearTimer(timer);
    for (const p of live) p.removeEventListener("abort", onAbort);
  }
}
