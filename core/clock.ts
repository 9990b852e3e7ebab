/**
 * Hybrid logical clock: 48-bit wall-clock milliseconds plus a 16-bit counter,
 * written as a 16-hex-digit string so that string order is time order.
 *
 * A replica ticks its clock for each local write and observes the states it
 * merges, so any write made after seeing another is stamped later than it.
 * States more than `maxDrift` ms ahead of the local wall clock are not
 * observed (the database defers them instead of applying them early).
 *
 * @example
 * ```ts
 * import { Clock } from "./clock.ts";
 * const clock = new Clock({ now: () => 1_700_000_000_000 });
 * const a = clock.tick(), b = clock.tick();
 * console.log(a < b, a); // true "018bcfe568000000"
 * ```
 *
 * @module
 */

/** A state: 16 lowercase hex digits, `ms` (12 digits) then `counter` (4 digits). */
export type Hlc = string;

/** Default tolerance for states ahead of the local clock: 10 minutes. */
export const DEFAULT_MAX_DRIFT_MS = 10 * 60 * 1000;

const MAX_MS = 2 ** 48 - 1;
const HLC_RE = /^[0-9a-f]{16}$/;

/** Formats `ms` and `counter` as an {@link Hlc}. */
export function formatHlc(ms: number, counter: number): Hlc {
  return ms.toString(16).padStart(12, "0") + counter.toString(16).padStart(4, "0");
}

/** The wall-clock milliseconds of a state. */
export function hlcMs(h: Hlc): number {
  return parseInt(h.slice(0, 12), 16);
}

/** The counter of a state. */
export function hlcCounter(h: Hlc): number {
  return parseInt(h.slice(12), 16);
}

/** Whether `h` is a well-formed state. */
export function isHlc(h: unknown): h is Hlc {
  return typeof h === "string" && HLC_RE.test(h);
}

/** Options of {@link Clock}. */
export interface ClockOptions {
  /** Wall clock in ms (default `Date.now`); tests inject skewed clocks. */
  now?: () => number;
  /** How far ahead of `now()` a state may be and still be observed (default 10 min). */
  maxDrift?: number;
  /** The last state this replica issued or observed (restored from storage). */
  last?: Hlc;
}

/** A replica's hybrid logical clock. */
export class Clock {
  readonly now: () => number;
  readonly maxDrift: number;
  #ms = 0;
  #counter = 0;

  constructor(options: ClockOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxDrift = options.maxDrift ?? DEFAULT_MAX_DRIFT_MS;
    if (options.last !== undefined) this.observe(options.last);
  }

  /** The latest state issued or observed. */
  get last(): Hlc {
    return formatHlc(this.#ms, this.#counter);
  }

  /** A new state, later than every state issued or observed before. */
  tick(): Hlc {
    const wall = Math.min(Math.floor(this.now()), MAX_MS);
    if (wall > this.#ms) {
      this.#ms = wall;
      this.#counter = 0;
    } else if (this.#counter < 0xffff) {
      this.#counter++;
    } else {
      this.#ms++; // counter exhausted within one ms: borrow the next ms
      this.#counter = 0;
    }
    return formatHlc(this.#ms, this.#counter);
  }

  /** Whether `h` is more than `maxDrift` ahead of the wall clock (must be deferred). */
  isFuture(h: Hlc): boolean {
    return hlcMs(h) > this.now() + this.maxDrift;
  }

  /** The wall-clock time at which `h` stops being future. */
  dueAt(h: Hlc): number {
    return hlcMs(h) - this.maxDrift;
  }

  /** Moves the clock past a merged state so later local writes are stamped after it. */
  observe(h: Hlc): void {
    const ms = hlcMs(h), counter = hlcCounter(h);
    if (ms > this.#ms || (ms === this.#ms && counter > this.#counter)) {
      this.#ms = ms;
      this.#counter = counter;
    }
  }
}
