/**
 * Re-scoring of a quantized index (`quantize: "int8"`): its graph ranks by
 * the distances of int8 codes, so its scores are approximate and its order
 * may differ from the f32 one. The f32 vectors are not in memory (that is
 * the point of quantizing); they are in the store, as each node's indexed
 * field (little-endian f32 bytes, vector_value.ts). So a ranking of a
 * quantized index reads the vectors of its candidates (`Store.readFields`),
 * scores them as an f32 index would (`Kernels.cosine`/`dot`/`l2`), and
 * orders them by that score, equal scores by soul.
 *
 * Approximate rankings ask the graph for {@link OVERFETCH} times the
 * candidates wanted. Measured on 10k × 384 clustered data (cosine, m 16,
 * efConstruction 200, ef 50, bench/_int8_probe.ts): recall@10 of the
 * quantized graph alone 0.961; re-scoring 10 candidates keeps 0.961, 20
 * reach 0.990, as the f32 graph does; 30 and 40 add nothing.
 *
 * Exact rankings are certified: the graph scans every code (exact over the
 * dequantized vectors), and `errorBound` bounds how far any of those scores
 * is from the f32 one. The scan's first `m` candidates are re-scored; every
 * vector past them scores at most the m-th quantized score plus the bound
 * (cosine, dot; at least it minus the bound for l2), so once that cannot
 * reach the n-th f32 score found, the f32 top n is complete; otherwise `m`
 * grows {@link GROWTH} times and the scan runs again. Only candidates whose
 * quantized score is within the bound of the n-th f32 score found are read.
 *
 * Candidates whose stored value is no longer a vector (deleted, or
 * overwritten by something else, while the ranking ran) are left out.
 *
 * @module
 */
import type { Metric } from "../kernels/types.ts";
import type { Store } from "../store.ts";
import type { QueryMeter } from "../query_budget.ts";
import type { Ranked, RankOptions } from "./exact_index.ts";
import type { HnswNearest } from "./hnsw_nearest.ts";
import type { FieldIndex } from "./vectors.ts";
import { eachStoredVector } from "./vector_value.ts";

/** Candidates an approximate ranking of a quantized index asks the graph for, per result wanted. */
export const OVERFETCH = 2;
const EXACT = { exact: true } as const;
/**
 * How many times more candidates an exact ranking scans when the bound leaves some unsettled. Each scan
 * visits every code (10k × 384: ~1 ms, plus ~0.4 ms per thousand candidates kept), so few large steps:
 * 10k × 384, k 10, exact, per query (the bound spans ~500 candidates): 8.1–8.3 ms with 32, 9.2–9.5 ms with 8.
 */
const GROWTH = 32;

/**
 * Whether rankings of `entry` need re-scoring: the graph that answers (the
 * ready one, or the old one during a compaction) is quantized; not while the
 * exact f32 matrix of a first build answers.
 */
export function needsRescore(entry: FieldIndex): boolean {
  return entry.index.answering?.quantized === true;
}

/**
 * The `n` best souls of `entry` for `query` with their f32 scores, best
 * first, equal scores by soul: re-scored candidates of the quantized graph
 * (see the module comment). `check` throws once the database is closed.
 */
export async function rescoredRanking(
  entry: FieldIndex,
  store: Store,
  query: Float32Array,
  n: number,
  options: RankOptions,
  meter: QueryMeter,
  check: () => void,
): Promise<Ranked> {
  const graph = entry.index.answering!, { field, metric } = entry.spec;
  const scored = new Map<string, number>();
  if (options.exact !== true) {
    const m = Math.min(graph.size, OVERFETCH * n);
    const { souls } = graph.ranked(query, m, metric, options);
    await score(graph, store, field, query, souls, scored, meter, check);
    return best(scored, n, metric);
  }
  const bound = graph.errorBound(query);
  const sign = metric === "l2" ? 1 : -1;
  for (let m = Math.min(graph.size, Math.max(2 * n, n + 16));; m = Math.min(graph.size, GROWTH * m)) {
    const { souls, scores } = graph.ranked(query, m, metric, EXACT);
    // The candidates whose f32 score could still beat the n-th best found (all until n are found);
    // the ranking is in quantized order, so past the first that cannot, none can.
    const nth = nthBest(scored, n, sign), todo: string[] = [];
    for (let i = 0; i < souls.length; i++) {
      if (nth === nth && sign * (scores[i] - sign * bound - nth) > 0) break;
      if (!scored.has(souls[i])) todo.push(souls[i]);
    }
    await score(graph, store, field, query, todo, scored, meter, check);
    if (souls.length < m || m >= graph.size) break;
    // Past the m-th candidate, f32 scores are no better than this; the n-th best found must be better.
    const reach = scores[souls.length - 1] - sign * bound, now = nthBest(scored, n, sign);
    if (now === now && sign * (now - reach) < 0) break;
  }
  return best(scored, n, metric);
}

/**
 * Reads the vectors of `souls` and puts their f32 scores in `into` (souls
 * without a vector are left out). A soul whose value is a text (an embedded
 * one, `open({ embed })`) has no f32 vector stored: its dequantized vector
 * in the graph is scored instead.
 */
async function score(
  graph: HnswNearest,
  store: Store,
  field: string,
  query: Float32Array,
  souls: readonly string[],
  into: Map<string, number>,
  meter: QueryMeter,
  check: () => void,
): Promise<void> {
  const held = (soul: string) => graph.vectorOf(soul);
  await eachStoredVector(store, field, query.length, souls, held, meter, check, (soul, v) => {
    into.set(soul, graph.score(query, v));
  });
}

/** The n-th best score in `scored` (NaN when there are fewer), `sign` -1 when higher is better. */
function nthBest(scored: Map<string, number>, n: number, sign: number): number {
  if (scored.size < n) return NaN;
  const all = Float64Array.from(scored.values(), (x) => (x !== x ? Infinity : sign * x)).sort();
  return sign * all[n - 1];
}

/** The `n` best of `scored`, best first, equal scores by soul, NaN last. */
function best(scored: Map<string, number>, n: number, metric: Metric): Ranked {
  const sign = metric === "l2" ? 1 : -1;
  const souls = [...scored.keys()].sort((a, b) => {
    const x = scored.get(a)!, y = scored.get(b)!;
    const xn = x !== x, yn = y !== y;
    const d = xn || yn ? (xn ? 1 : 0) - (yn ? 1 : 0) : sign * (x - y);
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  }).slice(0, n);
  return { souls, scores: Float32Array.from(souls, (s) => scored.get(s)!) };
}
