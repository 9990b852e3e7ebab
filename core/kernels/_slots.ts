/**
 * Slot allocation shared by every resident kernel table (ids, vectors), so
 * that the wasm and js implementations hand out the same slot numbers.
 * Rule: the most recently freed slot is reused first; otherwise the next
 * never-used slot.
 *
 * @module
 */

/** Tracks which slots of a resident table are live. */
export class Slots {
  #free: number[] = [];
  #live: Uint8Array = new Uint8Array(16);
  /** One past the highest slot ever handed out. */
  high = 0;
  /** Number of live slots. */
  size = 0;

  /** Takes a slot; grows `high` when no freed slot is available. */
  take(): number {
    const slot = this.#free.length > 0 ? this.#free.pop()! : this.high++;
    if (slot >= this.#live.length) {
      const grown = new Uint8Array(Math.max(16, this.#live.length * 2));
      grown.set(this.#live);
      this.#live = grown;
    }
    this.#live[slot] = 1;
    this.size++;
    return slot;
  }

  /** Frees a live slot. Throws `RangeError` if it is not live. */
  release(slot: number): void {
    this.check(slot);
    this.#live[slot] = 0;
    this.#free.push(slot);
    this.size--;
  }

  /** Whether `slot` is live. */
  has(slot: number): boolean {
    return Number.isInteger(slot) && slot >= 0 && slot < this.high && this.#live[slot] === 1;
  }

  /** Throws `RangeError` unless `slot` is live. */
  check(slot: number): void {
    if (!this.has(slot)) throw new RangeError(`Slot ${slot} is not in use`);
  }

  /** The live flags of slots `0..high-1` (1 = live); a view, valid until the next `take`. */
  flags(): Uint8Array {
    return this.#live.subarray(0, this.high);
  }
}
