/**
 * The two sides of a merge batch as column views (`MergeColumns`), laid out
 * the same way by both engines: side `a` in columns 0–5 and side `b` in
 * 6–11 of one buffer (a JS `ArrayBuffer` or the WASM memory), so that the
 * twins differ only in where the buffer lives.
 *
 * @module
 */
import type { MergeColumns } from "./types.ts";

/** Sides `a` (columns 0–5) and `b` (6–11), each column from `column(i)`. */
export function mergeSides(column: (i: number) => Uint32Array): { a: MergeColumns; b: MergeColumns } {
  const side = (first: number): MergeColumns =>
    Object.freeze({
      hlcHi: column(first),
      hlcLo: column(first + 1),
      hashHi: column(first + 2),
      hashLo: column(first + 3),
      actorHi: column(first + 4),
      actorLo: column(first + 5),
    });
  return { a: side(0), b: side(6) };
}
