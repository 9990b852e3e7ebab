/**
 * A small table of recently decoded ASCII names (field names, souls), found
 * by a hash of their bytes: decoding a name seen recently gives back the
 * same string, with nothing allocated. Reads of stored nodes and of op
 * batches decode the same few field names over and over.
 *
 * @example
 * ```ts
 * import { NameTable } from "./names.ts";
 * const names = new NameTable(256);
 * const b = new TextEncoder().encode("f1 f1");
 * console.log(names.ascii(b, 0, 2) === names.ascii(b, 3, 2)); // true
 * ```
 *
 * @module
 */
export class NameTable {
  readonly #slots: (string | undefined)[];
  readonly #mask: number;

  /** A table of `size` slots (a power of two). */
  constructor(size: number) {
    if (!(size > 0 && (size & (size - 1)) === 0)) {
      throw new RangeError("A name table's size is a power of two");
    }
    this.#slots = new Array(size);
    this.#mask = size - 1;
  }

  /**
   * The string of the `n` bytes at `p` of `b` when they are all ASCII, else
   * `undefined`. A name not in the table is made, passed to `check` (which
   * may throw), and entered; one found in the table was checked on entry,
   * so a table serves one kind of check only.
   */
  ascii(b: Uint8Array, p: number, n: number, check?: (name: string) => void): string | undefined {
    let h = n;
    for (let k = p; k < p + n; k++) h = Math.imul(h ^ b[k], 0x01000193);
    const slot = (h ^ (h >>> 16)) & this.#mask;
    const known = this.#slots[slot];
    if (known !== undefined && known.length === n) {
      let k = 0;
      while (k < n && known.charCodeAt(k) === b[p + k]) k++;
      if (k === n) return known;
    }
    let s = "";
    for (let k = p; k < p + n; k++) {
      const c = b[k];
      if (c >= 0x80) return undefined;
      s += String.fromCharCode(c);
    }
    check?.(s);
    this.#slots[slot] = s;
    return s;
  }
}
