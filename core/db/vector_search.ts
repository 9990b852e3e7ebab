/**
 * `db.search`: the k nodes whose vectors are nearest a query vector, among
 * those matching a `where` filter (the conditions of `db.query`).
 *
 * The index ranks candidates best first; the search takes them in that
 * order, tests `where` on a batch of candidates at a time (reading only the
 * filter's fields, `Store.readFields`), and asks the index for eight times as
 * many whenever the matches run out, until k match or every vector has been
 * ranked. The index is an HNSW graph (hnsw_nearest.ts): a ranking is
 * approximate (candidate list `max(ef, n)`) while `n` is under an eighth of
 * the index, and exact (a scan of every vector) from there on, or always
 * with `exact: true`. So a narrow filter ends in exact rankings, and an
 * exact search returns exactly the true top k of the matching set, at the
 * price of reading the filter's fields of the candidates better than its
 * k-th match: a filter matching 0.1% of the nodes reads about a thousand
 * candidates per result. The work is bounded by the database's query budget
 * (node reads, time), and yields as a query does.
 *
 * A search with `from` (and `path`) keeps to the nodes a graph walk reaches
 * (query.ts `reach`). A small reached set is scored directly: its vectors
 * are read from the store into an exact index of their own, so a search
 * among a user's hundred friends costs a hundred reads, not a scan of the
 * index. A large one is a filter on the index's rankings, as `where` is.
 * {@link DIRECT_ROOT} sets the crossing.
 *
 * Equal scores are ordered by soul, never by where a vector sits in the
 * index, so that replicas holding the same data give the same answer
 * whatever order it arrived in.
 *
 * @module
 */
import type { Kernels, Metric } from "../kernels/types.ts";
import type { NodeData, Value } from "../value.ts";
import { decodeValue, isTombstone } from "../value_encoding.ts";
import type { FieldKey, Store } from "../store.ts";
import type { World } from "../world.ts";
import { type QueryBudget, QueryMeter } from "../query_budget.ts";
import { checkStart, compileWhere, type Condition, reach } from "./query.ts";
import { readNodeData } from "./read.ts";
import type { FieldIndex, Vectors } from "./vectors.ts";
import { MAX_EF } from "./vector_spec.ts";
import { eachStoredVector, toVector } from "./vector_value.ts";
import { ExactIndex, type NearestIndex, type Ranked, type RankOptions } from "./exact_index.ts";
import { needsRescore, rescoredRanking } from "./rescore.ts";

/** Largest `k` of a search. */
export const MAX_SEARCH_K = 1000;

/**
 * What `db.search` takes. `field` may be left out when one index exists.
 * The search is approximate (HNSW, recall@10 ≥ 0.95 at the index's default
 * `ef` on clustered 384-dimensional data) unless `exact` is set, the index
 * holds under 1024 vectors, or a filter is narrow enough that the search
 * ends in an exact scan; `ef` widens the candidate list for better recall.
 *
 * @example
 * ```ts
 * import { open, type SearchOptions } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.createIndex({ field: "embedding", dim: 2 });
 * await db.put("cat", { embedding: [1, 0.1], kind: "animal" });
 * await db.put("car", { embedding: [1, 0], kind: "vehicle" });
 * const q: SearchOptions = { vector: [1, 0], k: 1, where: { kind: "animal" } };
 * console.log((await db.search(q)).map((r) => r.soul)); // ["cat"]
 * await db.close();
 * ```
 */
export interface SearchOptions {
  /** The query: a `Float32Array` or an array of numbers of the index's dimension (or give `text`). */
  readonly vector?: Float32Array | readonly number[];
  /** The query as text, embedded by the database's `embed` function (`open({ embed })`), instead of `vector`. */
  readonly text?: string;
  /** How many results, 1–1000. */
  readonly k: number;
  /** The indexed field to search (needed when several are declared). */
  readonly field?: string;
  /** Conditions the results' nodes meet, as in `db.query`. */
  readonly where?: Readonly<Record<string, Condition | Value>>;
  /**
   * Only nodes a graph walk reaches: start soul(s), as `db.query`'s `from`.
   * `{ from: "alice", path: ["friends", "*"] }` searches the members of
   * alice's `friends` set; `{ from: X, path: [F] }` the node X links to by F.
   */
  readonly from?: string | readonly string[];
  /** Fields to follow from `from` in turn (`"*"` every link), as `db.query`'s `path`; default none (the start souls themselves). */
  readonly path?: readonly string[];
  /** Candidates of the approximate search, 1–10,000 (default the index's `ef`; above 4096 counts as 4096). */
  readonly ef?: number;
  /** Score every vector: the true top k (default `false`, approximate). */
  readonly exact?: boolean;
}

/**
 * One result of `db.search`: the soul, its score (similarity for `cosine`
 * and `dot`, higher first; Euclidean distance for `l2`, lower first) and the
 * node as `get` returns it.
 *
 * @example
 * ```ts
 * import { open, type SearchResult } from "../../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.createIndex({ field: "v", dim: 2, metric: "l2" });
 * await db.put("a", { v: [3, 4], name: "A" });
 * const [best]: SearchResult[] = await db.search({ vector: [0, 0], k: 1 });
 * console.log(best.soul, best.score, best.node.name); // a 5 A
 * await db.close();
 * ```
 */
export interface SearchResult {
  readonly soul: string;
  readonly score: number;
  readonly node: NodeData;
}

const KEYS = new Set(["vector", "text", "k", "field", "where", "ef", "exact", "from", "path"]);
/**
 * How many times more candidates the search asks for when the matches run
 * out. 100k × 384 in memory, k 10, a filter matching 0.1%: 150 ms with 4
 * (six rankings of ~21 ms each), 113 ms with 8.
 */
const GROWTH = 8;
/**
 * A ranking of `n` candidates is exact once `n` reaches an eighth of the
 * index: the graph's search costs about `n` distance computations, the
 * exact scan one per vector, and they cross between 10% and 20%. 10k × 384
 * clustered, cosine, per query: HNSW with ef = n 0.56 ms at n 1024, 1.31 ms
 * at 2048; the exact scan 0.96 ms and 1.13 ms.
 */
const EXACT_SHARE = 8;
/** Largest approximate ranking (the kernel's largest candidate list). */
const MAX_APPROXIMATE = 4096;
const EXACT = { exact: true } as const;
/**
 * A reached set is scored directly (its vectors read from the store) when
 * it holds at most `DIRECT_ROOT × √(index size)` souls (and always up to
 * 256), else it filters the index's rankings. Reading the set costs each
 * member a store read (~7 µs on SQLite); filtering costs rankings about
 * `k / share` candidates wide, so the two cross near the square root of the
 * index's size. Measured on SQLite, 20k × 128, k 10 (ms per search, direct
 * vs filter): 64 members 0.9 vs 10, 256: 1.8–2.1 vs 4.2–6.0, 1024: 17–24 vs
 * 2.6–4.1, 4096: 47–58 vs 11–12.
 */
const DIRECT_ROOT = 3;
const DIRECT_MIN = 256;
/** Keys of the filter's fields read per store call. */
const READ_BATCH = 1024;

/** Runs search `s` over `vectors` on `store`, under `budget`; `check` throws once the database is closed. */
export async function runSearch(
  s: SearchOptions,
  vectors: Vectors,
  kernels: Kernels,
  store: Store,
  budget: QueryBudget,
  world: World,
  check: () => void,
): Promise<SearchResult[]> {
  const { entry, k, where, whereFields, start } = checkSearch(s, vectors);
  const query = s.text !== undefined
    ? await vectors.embedQuery(s.text, entry.spec)
    : toVector(s.vector, entry.spec.dim, "search: vector", false);
  await entry.ready;
  check();
  const { spec } = entry;
  const metric: Metric = spec.metric;
  const meter = new QueryMeter(budget, start?.path.length ?? 0, world);
  let index: NearestIndex = entry.index;
  let within: Set<string> | undefined;
  if (start !== undefined) {
    const reached = await reach(start.from, start.path, store, meter, check);
    if (reached.length <= Math.max(DIRECT_MIN, DIRECT_ROOT * Math.sqrt(index.size))) {
      index = await directIndex(reached, entry, kernels, store, meter, check);
    } else {
      within = new Set(reached);
    }
  }
  // A quantized graph's candidates are re-scored in f32 from the store (rescore.ts).
  const rescore = index === entry.index && needsRescore(entry);
  const search: Search = {
    size: index.size,
    ranked: rescore
      ? (n, how) => rescoredRanking(entry, store, query, n, how, meter, check)
      : (n, how) => index.ranked(query, n, metric, how),
    s,
    k,
    metric,
    vectorField: spec.field,
    where,
    whereFields,
    within,
    store,
    meter,
    check,
  };
  try {
    return await rank(search);
  } finally {
    if (index !== entry.index) index.dispose();
  }
}

/** One search under way: how it ranks candidates and what it keeps of them. */
interface Search {
  /** How many vectors the rankings are over. */
  readonly size: number;
  /** The `n` best candidates, best first. */
  readonly ranked: (n: number, how: RankOptions) => Ranked | Promise<Ranked>;
  readonly s: SearchOptions;
  readonly k: number;
  readonly metric: Metric;
  readonly vectorField: string;
  readonly where: (data: NodeData) => boolean;
  readonly whereFields: readonly string[];
  /** The souls a graph walk reached, when it is a filter. */
  readonly within: Set<string> | undefined;
  readonly store: Store;
  readonly meter: QueryMeter;
  readonly check: () => void;
}

/** The search proper: see the module comment. */
async function rank(search: Search): Promise<SearchResult[]> {
  const { size, s, k, metric, vectorField, where, whereFields, within, store, meter, check } = search;
  const seen = new Set<string>();
  const out: SearchResult[] = [];
  const filtered = whereFields.length > 0 || within !== undefined;
  let n = Math.min(size, filtered ? Math.max(8 * k, 256) : k + 8);
  let approximate = false;
  for (;;) {
    const exact = s.exact === true || n > MAX_APPROXIMATE || n * EXACT_SHARE >= size;
    if (!exact) approximate = true;
    const { souls, scores } = await search.ranked(n, exact ? EXACT : { ef: s.ef });
    const complete = souls.length >= size;
    let i = 0;
    while (out.length < k && i < souls.length) {
      let j = i + 1;
      while (j < souls.length && sameScore(scores[j], scores[i])) j++;
      if (j === souls.length && !complete) break; // the group of equal scores may go on past n
      const group: number[] = [];
      for (let g = i; g < j; g++) {
        if (!seen.has(souls[g]) && (within === undefined || within.has(souls[g]))) group.push(g);
      }
      group.sort((a, b) => souls[a] < souls[b] ? -1 : souls[a] > souls[b] ? 1 : 0);
      const matching = await filter(group.map((g) => souls[g]), where, whereFields, store, meter, check);
      for (const g of group) {
        seen.add(souls[g]);
        if (out.length >= k || !matching.has(souls[g])) continue;
        meter.visit();
        const node = await readNodeData(store, souls[g]);
        check();
        // A node deleted or changed since it was ranked is left out, never shown stale.
        const value = node?.[vectorField];
        if (value instanceof Uint8Array || typeof value === "string") { // a vector, or a text with an embedder
          out.push({ soul: souls[g], score: scores[g], node: node! });
        }
        if (meter.spend(0)) await pause(meter, check);
      }
      i = j;
    }
    if (out.length >= k || complete) return approximate ? out.sort(bestFirst(metric)) : out;
    // An exact ranking scores every vector, so few and large steps: past half, all of them.
    n = GROWTH * n >= size / 2 ? size : GROWTH * n;
  }
}

/**
 * An exact index of the vectors of `souls` (those that have one), read from
 * the store (the vector of a text, from the field's index): the index a
 * small reached set is searched in.
 */
async function directIndex(
  souls: readonly string[],
  entry: FieldIndex,
  kernels: Kernels,
  store: Store,
  meter: QueryMeter,
  check: () => void,
): Promise<ExactIndex> {
  const { spec } = entry;
  const index = new ExactIndex(kernels, spec.dim);
  try {
    const held = (soul: string) => entry.index.vectorOf(soul); // a text's embedding
    await eachStoredVector(
      store,
      spec.field,
      spec.dim,
      souls,
      held,
      meter,
      check,
      (soul, v) => index.set(soul, v),
    );
  } catch (e) {
    index.dispose();
    throw e;
  }
  return index;
}

/** Checks a search and finds its index (`TypeError`/`RangeError`). */
function checkSearch(s: SearchOptions, vectors: Vectors): {
  entry: FieldIndex;
  k: number;
  where: (data: NodeData) => boolean;
  whereFields: string[];
  start: { from: readonly string[]; path: readonly string[] } | undefined;
} {
  if (typeof s !== "object" || s === null || Array.isArray(s)) {
    throw new TypeError(
      "search takes an object { vector or text, k, field?, where?, from?, path?, ef?, exact? }",
    );
  }
  for (const key of Object.keys(s)) {
    if (!KEYS.has(key)) throw new TypeError(`search: unknown option ${JSON.stringify(key)}`);
  }
  const { k, ef, exact } = s;
  if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > MAX_SEARCH_K) {
    throw new RangeError(`search: k must be an integer from 1 to ${MAX_SEARCH_K}, got ${String(k)}`);
  }
  if (ef !== undefined && (typeof ef !== "number" || !Number.isInteger(ef) || ef < 1 || ef > MAX_EF)) {
    throw new RangeError(`search: ef must be an integer from 1 to ${MAX_EF}, got ${String(ef)}`);
  }
  if (exact !== undefined && typeof exact !== "boolean") {
    throw new TypeError("search: exact must be a boolean");
  }
  const fields = vectors.fields();
  let field = s.field;
  if (field === undefined) {
    if (fields.length === 0) {
      throw new RangeError("search: no vector index is declared; declare one with createIndex");
    }
    if (fields.length > 1) {
      throw new TypeError(`search: several fields are indexed (${fields.join(", ")}); name one as field`);
    }
    field = fields[0];
  }
  if (typeof field !== "string") throw new TypeError("search: field must be a string");
  const entry = vectors.get(field);
  if (entry === undefined) throw new RangeError(`search: no vector index on field ${JSON.stringify(field)}`);
  if ((s.vector === undefined) === (s.text === undefined)) {
    throw new TypeError("search takes a vector or a text (one of them)");
  }
  if (s.text !== undefined && typeof s.text !== "string") {
    throw new TypeError("search: text must be a string");
  }
  const where = compileWhere(s.where);
  if (s.path !== undefined && s.from === undefined) throw new TypeError("search: path needs from");
  const start = s.from === undefined ? undefined : checkStart(s, "search");
  const whereFields = s.where === undefined ? [] : Object.keys(s.where);
  return { entry, k, where, whereFields, start };
}

/**
 * Best first, equal scores by soul, NaN last: the order of an exact search,
 * restored when an approximate ranking let a later, wider one find better
 * matches than the ones already taken.
 */
function bestFirst(metric: Metric): (a: SearchResult, b: SearchResult) => number {
  const sign = metric === "l2" ? 1 : -1;
  return (a, b) => {
    const an = a.score !== a.score, bn = b.score !== b.score;
    const d = an || bn ? (an ? 1 : 0) - (bn ? 1 : 0) : sign * (a.score - b.score);
    return d !== 0 ? d : a.soul < b.soul ? -1 : a.soul > b.soul ? 1 : 0;
  };
}

function sameScore(a: number, b: number): boolean {
  return a === b || (a !== a && b !== b); // NaN ranks last, all together
}

/** The souls of `souls` whose filter fields meet `where` (all of them without a filter). */
async function filter(
  souls: readonly string[],
  where: (data: NodeData) => boolean,
  fields: readonly string[],
  store: Store,
  meter: QueryMeter,
  check: () => void,
): Promise<Set<string>> {
  if (fields.length === 0) return new Set(souls);
  const out = new Set<string>();
  const per = Math.max(1, Math.floor(READ_BATCH / fields.length));
  for (let at = 0; at < souls.length; at += per) {
    const part = souls.slice(at, at + per);
    const keys: FieldKey[] = [];
    for (const soul of part) for (const field of fields) keys.push({ soul, field });
    const records = await store.readFields(keys);
    check();
    for (let i = 0; i < part.length; i++) {
      meter.visit();
      const data: NodeData = Object.create(null);
      for (let f = 0; f < fields.length; f++) {
        const r = records[i * fields.length + f];
        if (r !== undefined && !isTombstone(r.value)) data[fields[f]] = decodeValue(r.value);
      }
      if (where(data)) out.add(part[i]);
      if (meter.spend(fields.length)) await pause(meter, check);
    }
  }
  return out;
}

async function pause(meter: QueryMeter, check: () => void): Promise<void> {
  await meter.pause();
  check();
}
