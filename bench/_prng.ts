/**
 * mulberry32: the small, fast, seedable 32-bit generator the bench suites
 * make their inputs with (not for anything secret). Not a suite.
 *
 * @module
 */

/** A generator of uint32 values from `seed`; the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
