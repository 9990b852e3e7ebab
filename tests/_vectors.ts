/**
 * Seeded vector data for the HNSW tests and the `vector` bench: a Gaussian
 * mixture (clustered, as embeddings are) and uniform data, from mulberry32
 * (`prng` of `_seed.ts`) with Box–Muller normals.
 */
import { prng } from "./_seed.ts";

/** A data set: `rows.length` vectors of `dim` floats each. */
export interface VectorSet {
  readonly dim: number;
  readonly rows: Float32Array[];
}

function normal(next: () => number): () => number {
  return () => {
    const u = 1 - next(); // in (0, 1]: log() is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
}

/**
 * `count` points of a mixture of `centres` Gaussians in `dim` dimensions: a
 * centre has standard normal components; a point is a random centre plus
 * `noise` times a standard normal vector.
 */
export function clustered(seed: number, count: number, dim: number, centres = 20, noise = 0.35): VectorSet {
  const next = prng(seed);
  const gauss = normal(next);
  const mids = Array.from({ length: centres }, () => Float32Array.from({ length: dim }, gauss));
  const rows = Array.from({ length: count }, () => {
    const c = mids[Math.floor(next() * centres)];
    return Float32Array.from(c, (x) => x + noise * gauss());
  });
  return { dim, rows };
}

/** `count` points with components uniform in [-1, 1). */
export function uniform(seed: number, count: number, dim: number): VectorSet {
  const next = prng(seed);
  return {
    dim,
    rows: Array.from({ length: count }, () => Float32Array.from({ length: dim }, () => 2 * next() - 1)),
  };
}
