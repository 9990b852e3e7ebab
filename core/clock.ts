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
import { systemWorld, type World } from "./world.ts";

/** A state: 16 lowercase hex digits, `ms` (12 digits) then `counter` (4 digits). */
export type Hlc = string;

/** Default tolerance for states ahead of the local clock: 10 minutes. */
export const DEFAULT_MAX_DRIFT_MS = 10 * 60 * 1000;

const MAX_MS = 2 ** 48 - 1;

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

/** The two 32-bit words (high, low) of a state, as stores keep it. */
export function hlcWords(h: Hlc): [number, number] {
  return [parseInt(h.slice(0, 8), 16), parseInt(h.slice(8, 16), 16)];
}

/** The state whose high and low 32-bit words are `stateHi` and `stateLo`. */
export function hlcFromWords(stateHi: number, stateLo: number): Hlc {
  // One call with the 16 digit codes gives a flat string; concatenating pieces of 16 characters gives
  // a rope, which each later read of its digits (checks, hashing, encoding) must flatten first.
  const d = HEX_DIGITS;
  return String.fromCharCode(
    d[stateHi >>> 28],
    d[(stateHi >>> 24) & 15],
    d[(stateHi >>> 20) & 15],
    d[(stateHi >>> 16) & 15],
    d[(stateHi >>> 12) & 15],
    d[(stateHi >>> 8) & 15],
    d[(stateHi >>> 4) & 15],
    d[stateHi & 15],
    d[stateLo >>> 28],
    d[(stateLo >>> 24) & 15],
    d[(stateLo >>> 20) & 15],
    d[(stateLo >>> 16) & 15],
    d[(stateLo >>> 12) & 15],
    d[(stateLo >>> 8) & 15],
    d[(stateLo >>> 4) & 15],
    d[stateLo & 15],
  );
}

const HEX_DIGITS: readonly number[] = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

/**
 * Whether `s` is exactly 16 lowercase hex digits (a state or an actor id):
 * `/^[0-9a-f]{16}$/` without the regular expression, which cost about a
 * tenth of a one-op apply.
 */
export function isLowerHex16(s: unknown): s is string {
  return typeof s === "string" && s.length === 16 && hexWord(s, 0) >= 0 && hexWord(s, 8) >= 0;
}

/** The value of each lowercase hex digit by its character code, -1 for any other character below 128. */
const HEX_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let d = 0; d < 16; d++) t["0123456789abcdef".charCodeAt(d)] = d;
  return t;
})();

/** The 32-bit word of the 8 lowercase hex digits at `at` of `s`, or -1 when one is not such a digit. */
export function hexWord(s: string, at: number): number {
  // Two halves of four digits in small-integer arithmetic: one running total of eight digits leaves
  // the integer range, and JavaScriptCore took three times as long over it until well warmed up.
  const hi = hex16(s, at), lo = hex16(s, at + 4);
  return (hi | lo) < 0 ? -1 : hi * 0x10000 + lo;
}

/** The 16-bit value of the 4 lowercase hex digits at `at` of `s`, or -1 when one is not such a digit. */
function hex16(s: string, at: number): number {
  let n = 0, bad = 0;
  for (let i = at; i < at + 4; i++) {
    const c = s.charCodeAt(i);
    const d = c < 128 ? HEX_VALUE[c] : -1;
    bad |= d;
    n = (n << 4) | (d & 15);
  }
  return bad < 0 ? -1 : n;
}

/** The wall-clock ms of the state whose high and low 32-bit words are `stateHi` and `stateLo`. */
export function wordsMs(stateHi: number, stateLo: number): number {
  return stateHi * 0x10000 + (stateLo >>> 16);
}

/** `world.now` as a function to call bare (the system world's already is one). */
function wallClock(world: World): () => number {
  return world === systemWorld ? systemWorld.now : () => world.now();
}

/** Options of {@link Clock}. */
export interface ClockOptions {
  /** Wall clock in ms (default: `world`'s); tests inject skewed clocks. */
  now?: () => number;
  /** Where the wall clock comes from when `now` is not given (default {@link systemWorld}). */
  world?: World;
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
    this.now = options.now ?? wallClock(options.world ?? systemWorld);
    this.maxDrift = options.maxDrift ?? DEFAULT_MAX_DRIFT_MS;
    if (options.last !== undefined) this.observe(options.last);
  }

  /** The latest state issued or observed. */
  get last(): Hlc {
    return formatHlc(this.#ms, this.#counter);
  }

  /** The latest state issued or observed, as its high and low 32-bit words. */
  get lastWords(): [number, number] {
    return [Math.floor(this.#ms / 0x10000), ((this.#ms % 0x10000) * 0x10000 + this.#counter) >>> 0];
  }

  /** Whether the latest state issued or observed is later than the state with words `h`, `l`. */
  isPast(h: number, l: number): boolean {
    const ms = wordsMs(h, l);
    return this.#ms > ms || (this.#ms === ms && this.#counter > (l & 0xffff));
  }

  /** A new state, later than every state issued or observed before. */
  tick(): Hlc {
    this.#advance();
    return formatHlc(this.#ms, this.#counter);
  }

  /** As {@link tick}, but the new state as its high and low 32-bit words (no formatting). */
  tickWords(): [number, number] {
    this.#advance();
    return [Math.floor(this.#ms / 0x10000), ((this.#ms % 0x10000) * 0x10000 + this.#counter) >>> 0];
  }

  #advance(): void {
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
  }

  /** Whether `h` is more than `maxDrift` ahead of the wall clock (must be deferred). */
  isFuture(h: Hlc): boolean {
    return hlcMs(h) > this.futureLimit();
  }

  /**
   * The latest ms a state may have and not be future ({@link isFuture}), as
   * of now: read once, it serves a whole batch.
   */
  futureLimit(): number {
    return this.now() + this.maxDrift;
  }

  /** The wall-clock time at which `h` stops being future. */
  dueAt(h: Hlc): number {
    return hlcMs(h) - this.maxDrift;
  }

  /** {@link isFuture} for a state given as its high and low 32-bit words. */
  isFutureWords(stateHi: number, stateLo: number): boolean {
    return wordsMs(stateHi, stateLo) > this.futureLimit();
  }

  /** Moves the clock past a merged state so later local writes are stamped after it. */
  observe(h: Hlc): void {
    this.#observe(hlcMs(h), hlcCounter(h));
  }

  /** {@link observe} for a state given as its high and low 32-bit words. */
  observeWords(stateHi: number, stateLo: number): void {
    this.#observe(wordsMs(stateHi, stateLo), stateLo & 0xffff);
  }

  #observe(ms: number, counter: number): void {
    if (ms > this.#ms || (ms === this.#ms && counter > this.#counter)) {
      this.#ms = ms;
      this.#counter = counter;
    }
  }
}
