/**
 * Text in vector indexes: the application's own text → vector function
 * (`open({ embed })`, an {@link Embedder}) lets an indexed field hold text,
 * which is embedded and indexed as it comes, and lets `db.search` take a
 * `text` query. The stored value is the text: the vector is the replica's
 * own, made again by each replica that indexes the field (a replica without
 * an embedder leaves text out of its index), never synced.
 *
 * Two roads in. A local `put` embeds its texts before it is committed
 * ({@link Embeddings.forPut}): a failing embedder, or a vector of the wrong
 * dimension, rejects the put with nothing stored, and the vectors wait in
 * `fresh` for the commit, which indexes them at once (a search after the put
 * finds it). Every other text that reaches the index — a foreign op, one
 * read by the build scan on open — is embedded in the background
 * ({@link Embeddings.later}), {@link CONCURRENCY} at a time; a soul whose
 * value changes meanwhile drops the answer of its older text, so an index
 * never holds the vector of a text the soul no longer has. Until its vector
 * arrives a soul is out of the index (never found by its old vector).
 *
 * @module
 */
import { reportError } from "./report_error.ts";
import { toVector } from "./vector_value.ts";

/**
 * The application's text → vector function for indexed fields that hold
 * text (`open({ embed })`): called with the text and the field, it returns
 * (or resolves to) a vector of the field's index dimension. It should be
 * deterministic — replicas embed their texts themselves — and it may be
 * asynchronous (a model in a worker, a service).
 *
 * @example
 * ```ts
 * import { type Embedder, open } from "../../mod.ts";
 * // A toy embedder: letter counts of a, b and c. Real ones run a model.
 * const embed: Embedder = (text) => [...text].reduce((v, ch) => {
 *   const i = "abc".indexOf(ch);
 *   if (i >= 0) v[i]++;
 *   return v;
 * }, [0, 0, 0]);
 * const db = await open({ storage: "memory", embed });
 * await db.createIndex({ field: "title", dim: 3, metric: "cosine" });
 * await db.put("x", { title: "aaab" });
 * await db.put("y", { title: "ccc" });
 * console.log((await db.search({ text: "cab c", k: 1 })).map((r) => r.soul)); // ["y"]
 * await db.close();
 * ```
 */
export type Embedder = (
  text: string,
  field: string,
) => Float32Array | readonly number[] | Promise<Float32Array | readonly number[]>;

/** Background embeddings run at most this many at a time. */
export const CONCURRENCY = 4;

/** Where a background embedding lands: the caller's index of `field`. */
export interface EmbedTarget {
  readonly field: string;
  readonly dim: number;
  /** Whether the index is gone (the database closed). */
  readonly stopped: boolean;
  set(soul: string, v: Float32Array): void;
}

interface Job {
  readonly target: EmbedTarget;
  readonly soul: string;
  readonly text: string;
}

const key = (soul: string, field: string): string => `${field}\u0000${soul}`;

/** The embeddings of one database (see the module comment). */
export class Embeddings {
  readonly #embed: Embedder;
  /** Vectors of local puts, embedded before their commit, by soul and field, with their text. */
  readonly #fresh = new Map<string, { text: string; vector: Float32Array }>();
  /** Texts waiting for a background embedding (the latest per soul and field). */
  readonly #queue = new Map<string, Job>();
  /** Texts being embedded in the background; a later commit to that soul and field removes its entry. */
  readonly #inflight = new Map<string, string>();
  #running = 0;

  constructor(embed: Embedder) {
    if (typeof embed !== "function") throw new TypeError("embed must be a function (text, field) => vector");
    this.#embed = embed;
  }

  /** How many texts of `field` wait for their vector. */
  waiting(field: string): number {
    let n = 0;
    const prefix = `${field}\u0000`;
    for (const k of this.#queue.keys()) if (k.startsWith(prefix)) n++;
    for (const k of this.#inflight.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }

  /** The vector of a query text (`db.search({ text })`): `TypeError`/`RangeError` on a bad answer. */
  async query(text: string, field: string, dim: number): Promise<Float32Array> {
    return toVector(await this.#embed(text, field), dim, `The embedding of the search text`, false);
  }

  /**
   * Embeds `text`, the value of indexed `field` in a local put to `soul`,
   * before the put is committed: the vector waits for the commit
   * ({@link take}). Returns `undefined` when the embedder answered at once,
   * else a promise that settles when it has. Throws (or rejects) with a
   * `TypeError`/`RangeError` naming soul and field when the embedder fails
   * or answers with something that is not a vector of `dim` components.
   */
  forPut(soul: string, field: string, dim: number, text: string): Promise<void> | undefined {
    const what = `The embedding of the text of ${JSON.stringify(field)} of ${JSON.stringify(soul)}`;
    const keep = (v: Float32Array | readonly number[]): void => {
      this.#fresh.set(key(soul, field), { text, vector: toVector(v, dim, what, false).slice() });
    };
    let answer: ReturnType<Embedder>;
    try {
      answer = this.#embed(text, field);
    } catch (e) {
      throw embedFailed(what, e);
    }
    if (!isThenable(answer)) {
      keep(answer);
      return undefined;
    }
    return Promise.resolve(answer).then(keep, (e) => {
      throw embedFailed(what, e);
    });
  }

  /** Forgets what {@link forPut} embedded for `soul` and `field` (the put failed). */
  forget(soul: string, field: string): void {
    this.#fresh.delete(key(soul, field));
  }

  /** The vector a local put embedded for this text, if it is the one committed (taken: asked once). */
  take(soul: string, field: string, text: string): Float32Array | undefined {
    const k = key(soul, field);
    this.#inflight.delete(k);
    this.#queue.delete(k);
    const hit = this.#fresh.get(k);
    if (hit === undefined) return undefined;
    this.#fresh.delete(k);
    return hit.text === text ? hit.vector : undefined;
  }

  /** The value of `field` of `soul` is no longer text: an embedding of its old text must not land. */
  drop(soul: string, field: string): void {
    if (this.#queue.size === 0 && this.#inflight.size === 0) return;
    const k = key(soul, field);
    this.#queue.delete(k);
    this.#inflight.delete(k);
  }

  /** Embeds `text` of `soul` in the background, then sets it in `target` if the soul still holds it. */
  later(target: EmbedTarget, soul: string, text: string): void {
    const k = key(soul, target.field);
    this.#inflight.delete(k);
    this.#queue.set(k, { target, soul, text });
    if (this.#running < CONCURRENCY) this.#run();
  }

  async #run(): Promise<void> {
    this.#running++;
    try {
      for (;;) {
        const next = this.#queue.entries().next();
        if (next.done) return;
        const [k, job] = next.value;
        this.#queue.delete(k);
        if (job.target.stopped) continue;
        this.#inflight.set(k, job.text);
        let v: Float32Array | undefined;
        try {
          const what = `The embedding of the text of ${JSON.stringify(job.target.field)} of ${
            JSON.stringify(job.soul)
          }`;
          v = toVector(await this.#embed(job.text, job.target.field), job.target.dim, what, false);
        } catch (e) {
          if (this.#inflight.get(k) === job.text) reportError(embedFailed("A background embedding", e));
        }
        if (this.#inflight.get(k) !== job.text) continue; // superseded by a later commit
        this.#inflight.delete(k);
        if (v !== undefined && !job.target.stopped) job.target.set(job.soul, v);
      }
    } finally {
      this.#running--;
    }
  }

  /** Drops everything waiting (the database closes). */
  clear(): void {
    this.#fresh.clear();
    this.#queue.clear();
    this.#inflight.clear();
  }
}

function isThenable(v: unknown): v is PromiseLike<Float32Array | readonly number[]> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/**
 * The embedder's failure as an error naming what was embedded: a vector of
 * the wrong shape is the `TypeError`/`RangeError` of the check, anything the
 * embedder itself threw an `Error` with its message (and it as `cause`).
 */
function embedFailed(what: string, e: unknown): Error {
  if ((e instanceof RangeError || e instanceof TypeError) && e.message.startsWith(what)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new Error(`${what} failed: ${message}`, { cause: e });
}
