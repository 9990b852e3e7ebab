/**
 * How `connect`'s watch comes back after an established stream drops: the
 * `reconnect` option checked into delays, the wait between attempts (on the
 * client's `World`, cut short when the watch stops), and the `onError` hook
 * that hears each drop. The delay of each attempt is `backoffDelay` in
 * net/client.ts.
 *
 * @module
 */
import type { Timer, World } from "../../core/world.ts";

/** Reconnect delays of a watch: the first, and the cap of the exponential backoff (ms). */
export interface ReconnectDelays {
  readonly initial: number;
  readonly max: number;
}

/** Reconnect delays of a watch, or `undefined` for `reconnect: false`. */
export function reconnectBackoff(
  option: false | { readonly initialMs?: number; readonly maxMs?: number } | undefined,
): ReconnectDelays | undefined {
  if (option === false) return undefined;
  if (option !== undefined && (typeof option !== "object" || option === null)) {
    throw new TypeError("watch's reconnect option must be false or { initialMs?, maxMs? }");
  }
  const initial = option?.initialMs ?? 250, max = option?.maxMs ?? 30_000;
  if (!(initial > 0 && max >= initial && max <= 2 ** 31 - 1)) {
    throw new RangeError(
      `watch's reconnect delays must satisfy 0 < initialMs <= maxMs <= ${
        2 ** 31 - 1
      }, got ${initial} and ${max}`,
    );
  }
  return { initial, max };
}

/** Resolves after `ms` of `world`'s time, or rejects as soon as `signal` aborts (clearing its timer). */
export function sleep(world: World, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      world.clearTimer(timer);
      reject(signal.reason);
    };
    const timer: Timer = world.setTimer(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Calls an `onError` hook; a hook that throws is reported, never breaks the watch. */
export function tell(hook: ((error: Error) => void) | undefined, error: Error): void {
  try {
    hook?.(error);
  } catch (e) {
    console.error("lattice: a watch onError hook threw:", e);
  }
}
