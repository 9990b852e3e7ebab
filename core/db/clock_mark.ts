/**
 * The clock mark: the persisted bound (`meta.clock`) that no state this
 * replica has given out exceeds, so that after a restart the clock starts
 * past every one of them.
 *
 * Writing the clock with every commit costs a metadata upsert per
 * transaction. Instead the store keeps a high-water mark: a state at least as
 * late as every state issued or observed by a commit that is durable. A
 * commit whose clock has passed the mark (or would pass it) raises it to the
 * clock plus {@link CLOCK_MARK_AHEAD_MS}, in the same transaction as its
 * records, so the mark is rewritten about once per this interval under
 * steady writes.
 *
 * Why a restart never issues a state ≤ one issued before: a state is only
 * given out (put/delete resolve, onCommit, exportOps) after the commit that
 * stores it, and that commit either found the clock — which is ≥ every state
 * in it — at or below the persisted mark, or wrote a new mark above it in the
 * same transaction. So every durable state is ≤ the durable mark, and on open
 * the clock starts at the mark: its next tick is later than all of them. (A
 * write whose commit failed or never ran gave out no state, except `delete`
 * of a node with no fields, which writes nothing — as before, such a state is
 * not persisted.) The cost: after a restart local states may run up to this
 * much ahead of the wall clock, until the wall clock catches up.
 *
 * @module
 */
import { type Clock, formatHlc, hlcFromWords, hlcMs, hlcWords } from "../clock.ts";

/** How far ahead of the clock the persisted clock bound is set, in ms. */
export const CLOCK_MARK_AHEAD_MS = 1000;
const MAX_HLC_MS = 2 ** 48 - 1;

/** The persisted clock bound of one database, as words, raised by the commits that pass it. */
export class ClockMark {
  readonly #clock: Clock;
  #hi = 0;
  #lo = 0;

  /** `restored`: whether the clock was started from a persisted mark (its `last` is that mark). */
  constructor(clock: Clock, restored: boolean) {
    this.#clock = clock;
    if (restored) [this.#hi, this.#lo] = clock.lastWords;
  }

  /**
   * Raises the bound when the clock has passed it: sets `batch.meta` to write
   * it and returns the bound's words, to {@link keep} once the batch is
   * committed; `undefined` (the rule) when the bound stands.
   */
  raise(batch: { meta?: Record<string, string> }): [number, number] | undefined {
    const clock = this.#clock;
    if (!clock.isPast(this.#hi, this.#lo)) return undefined;
    const [ch, cl] = clock.lastWords;
    const ms = hlcMs(hlcFromWords(ch, cl)), markMs = Math.min(ms + CLOCK_MARK_AHEAD_MS, MAX_HLC_MS);
    const mark = markMs > ms ? formatHlc(markMs, 0) : hlcFromWords(ch, cl);
    batch.meta = { clock: mark };
    return hlcWords(mark);
  }

  /** Keeps a raised bound: only once the batch that wrote it is committed, so the bound is durable. */
  keep([hi, lo]: [number, number]): void {
    this.#hi = hi;
    this.#lo = lo;
  }
}
