/**
 * The vectors of a local put: every value of an indexed field, in the put's
 * object or its nested objects, is checked before anything is stored — a
 * vector (a `Float32Array`, an array of numbers, or its bytes) turned into
 * its stored bytes, a text embedded by the database's embedder
 * (embedding.ts) — so that a bad vector or a failing embedding rejects the
 * whole put with nothing of it stored.
 *
 * @module
 */
import { isLink, MAX_PUT_DEPTH } from "../value.ts";
import type { Embeddings } from "./embedding.ts";
import type { IndexSpec } from "./vector_spec.ts";
import { toVector, vectorBytes } from "./vector_value.ts";

/**
 * `data` (a put's object for `soul`) with every value of a field of
 * `fields`, in it or in its nested objects, checked and turned into the
 * stored bytes (copies of the objects that change; `data` itself when
 * nothing does). Texts stay text and are embedded first: then a promise of
 * the data, which rejects if an embedding fails. Throws
 * `TypeError`/`RangeError` naming soul and field.
 */
export function preparePut(
  fields: ReadonlyMap<string, { readonly spec: IndexSpec }>,
  embeddings: Embeddings | undefined,
  soul: string,
  data: Record<string, unknown>,
): Record<string, unknown> | Promise<Record<string, unknown>> {
  const texts: [string, string][] = [];
  const waits: Promise<void>[] = [];
  const forget = (): void => {
    for (const [s, field] of texts) embeddings?.forget(s, field);
  };
  let out: Record<string, unknown>;
  try {
    out = walk({ fields, embeddings, texts, waits }, soul, data, 1);
  } catch (e) {
    forget();
    throw e;
  }
  if (waits.length === 0) return out;
  return Promise.all(waits).then(() => out, (e) => {
    forget();
    throw e;
  });
}

interface Walk {
  readonly fields: ReadonlyMap<string, { readonly spec: IndexSpec }>;
  readonly embeddings: Embeddings | undefined;
  /** Souls and fields whose texts were embedded (forgotten if the put fails). */
  readonly texts: [string, string][];
  /** Embeddings still to come. */
  readonly waits: Promise<void>[];
}

function walk(w: Walk, soul: string, data: Record<string, unknown>, depth: number): Record<string, unknown> {
  const proto = typeof data === "object" && data !== null ? Object.getPrototypeOf(data) : undefined;
  if ((proto !== Object.prototype && proto !== null) || depth > MAX_PUT_DEPTH) return data; // put says why
  let out = data;
  for (const key of Object.keys(data)) {
    const v = data[key];
    if (v === undefined || v === null) continue;
    const entry = w.fields.get(key);
    let next: unknown = v;
    if (entry !== undefined) {
      const what = `The vector field ${JSON.stringify(key)} of ${JSON.stringify(soul)}`;
      if (typeof v === "string") {
        if (w.embeddings === undefined) {
          throw new TypeError(
            `${what} holds text: indexing text needs the database's embed function (open({ embed }))`,
          );
        }
        w.texts.push([soul, key]);
        const wait = w.embeddings.forPut(soul, key, entry.spec.dim, v);
        if (wait !== undefined) w.waits.push(wait);
      } else next = vectorBytes(toVector(v, entry.spec.dim, what, true));
    } else if (typeof v === "object" && !(v instanceof Uint8Array) && !Array.isArray(v) && !isLink(v)) {
      next = walk(w, `${soul}/${key}`, v as Record<string, unknown>, depth + 1);
    }
    if (next !== v) {
      if (out === data) out = { ...data };
      out[key] = next;
    }
  }
  return out;
}
