/**
 * The timers a node owns (redials, retries, the discovery rounds), kept
 * together so that stopping the node clears all of them at once and none
 * fires after it: a stopped node leaves nothing that holds the process open.
 * They run on the node's {@link World}, so a simulation drives them.
 *
 * @module
 */
import type { Timer, World } from "../core/world.ts";

/** Timers started by {@link TimerSet.later}, all cleared by {@link TimerSet.stop}. */
export class TimerSet {
  readonly #world: World;
  readonly #timers = new Set<Timer>();
  #stopped = false;

  constructor(world: World) {
    this.#world = world;
  }

  /** Whether {@link stop} ran. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Calls `fn` after `ms` ms, unless cancelled or stopped first. */
  later(ms: number, fn: () => void): Timer {
    const t = this.#world.setTimer(() => {
      this.#timers.delete(t);
      if (!this.#stopped) fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /** Cancels a timer of {@link later}; `undefined` is ignored. */
  cancel(t: Timer | undefined): void {
    if (t === undefined) return;
    this.#world.clearTimer(t);
    this.#timers.delete(t);
  }

  /** Clears every timer; later ones never start. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) this.#world.clearTimer(t);
    this.#timers.clear();
  }
}
