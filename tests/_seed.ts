/**
 * The seed for randomized tests: `LATTICE_SEED` when set (to replay a
 * failure), else a fresh one. fast-check prints it in every failure report;
 * `fcParams` adds it to every run so a failing run can be replayed exactly.
 */
import { getEnv } from "../runtime/env.ts";

const fromEnv = getEnv("LATTICE_SEED");

/** The seed of this test run. */
export const SEED: number = fromEnv !== undefined && fromEnv !== ""
  ? Number(fromEnv) | 0
  : (Math.random() * 0x7fffffff) | 0;

/** fast-check parameters with the run's seed and `numRuns`. */
export function fcParams(numRuns: number): { seed: number; numRuns: number } {
  return { seed: SEED, numRuns };
}

/** A small deterministic PRNG (mulberry32) for test data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
