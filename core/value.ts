/**
 * The graph data model: souls, field names, field values and links, their
 * limits and checks, and how a nested object given to `put` becomes nodes.
 * Their canonical bytes are in `value_encoding.ts`.
 *
 * @example
 * ```ts
 * import { flatten } from "./value.ts";
 * const nodes = flatten("alice", { name: "Alice", pet: { name: "Rex" } });
 * console.log([...nodes]); // [["alice", { name: "Alice", pet: { "#": "alice/pet" } }], ["alice/pet", { name: "Rex" }]]
 * ```
 *
 * @module
 */

/**
 * A link to another node.
 *
 * @example
 * ```ts
 * import { type Link, open } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * const toBob: Link = { "#": "bob" };
 * await db.put("alice", { friend: toBob });
 * await db.put("bob", { name: "Bob" });
 * console.log(await db.query({ from: "alice", path: ["friend"] })); // [{ soul: "bob", data: { name: "Bob" } }]
 * await db.close();
 * ```
 */
export interface Link {
  readonly "#": string;
}

/**
 * A field value: `null` is a tombstone (deleted field).
 *
 * @example
 * ```ts
 * import { open, type Value } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * const fields: Record<string, Value> = { n: 1, s: "x", ok: true, raw: new Uint8Array([1]), to: { "#": "b" } };
 * await db.put("a", fields);
 * await db.put("a", { s: null }); // null deletes the field
 * console.log(await db.get("a")); // { n: 1, ok: true, raw: Uint8Array(1) [ 1 ], to: { "#": "b" } }
 * await db.close();
 * ```
 */
export type Value = null | boolean | number | string | Uint8Array | Link;

/**
 * A node as `get` returns it: field name → value.
 *
 * @example
 * ```ts
 * import { type NodeData, open } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { name: "Alice", age: 30 });
 * const alice: NodeData | undefined = await db.get("alice");
 * console.log(alice?.age); // 30
 * await db.close();
 * ```
 */
export type NodeData = Record<string, Value>;

/** Longest soul and field name, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 512;
/** Largest string or byte value, in bytes. */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Deepest nesting of objects in one `put` (the root object is depth 1). */
export const MAX_PUT_DEPTH = 32;
/**
 * Most fields one `put` writes, over all the nodes it makes (the link to
 * each nested object is a field of its parent). A put is one commit that
 * nothing else interleaves with: 64k nested objects (131k fields) held a
 * node's event loop for 1.6–1.9 s on SQLite. At this limit it is about a
 * tenth of that; larger writes are several puts.
 *
 * @example
 * ```ts
 * import { MAX_PUT_FIELDS, open } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * const tooMany = Object.fromEntries(Array.from({ length: MAX_PUT_FIELDS + 1 }, (_, i) => [`f${i}`, i]));
 * await db.put("big", tooMany).catch((e) => console.log(e.name)); // RangeError: write it in several puts
 * await db.close();
 * ```
 */
export const MAX_PUT_FIELDS = 16_384;

const FORBIDDEN_FIELDS = new Set(["__proto__", "constructor", "prototype"]);
const utf8 = new TextEncoder();

/** UTF-8 length of `s` when it may exceed `max` (cheap bounds first: UTF-8 takes 1–3 bytes per UTF-16 unit). */
function utf8Over(s: string, max: number): number | undefined {
  if (s.length * 3 <= max) return undefined;
  const n = s.length > max ? s.length : utf8.encode(s).length;
  return n > max ? n : undefined;
}

/**
 * `s.isWellFormed()`, with short strings looked over in a loop first: one
 * without a surrogate (nearly every key) needs no call of the builtin, which
 * cost about 30 ns a key.
 */
function wellFormed(s: string): boolean {
  if (s.length > 64) return s.isWellFormed();
  for (let i = 0; i < s.length; i++) {
    if ((s.charCodeAt(i) & 0xf800) === 0xd800) return s.isWellFormed();
  }
  return true;
}

function checkKey(s: unknown, what: "soul" | "field"): asserts s is string {
  if (typeof s !== "string") throw new TypeError(`A ${what} must be a string, got ${describe(s)}`);
  if (s.length === 0) throw new RangeError(`A ${what} must not be empty`);
  if (!wellFormed(s)) throw new RangeError(`The ${what} ${JSON.stringify(s)} contains a lone surrogate`);
  const over = utf8Over(s, MAX_KEY_BYTES);
  if (over !== undefined) {
    throw new RangeError(`A ${what} may be at most ${MAX_KEY_BYTES} bytes of UTF-8, got ${over}`);
  }
}

/** Throws unless `soul` is a valid soul: a well-formed string of 1–512 UTF-8 bytes. */
export function checkSoul(soul: unknown): asserts soul is string {
  checkKey(soul, "soul");
}

/** Throws unless `field` is a valid field name (as a soul, and not `__proto__`, `constructor`, `prototype`). */
export function checkField(field: unknown): asserts field is string {
  checkKey(field, "field");
  if (field.length >= 9 && field.length <= 11 && FORBIDDEN_FIELDS.has(field)) { // their lengths: 9, 11, 9
    throw new RangeError(`The field name ${JSON.stringify(field)} is reserved`);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? (v.constructor?.name ?? "an object") : typeof v;
}

/** Whether `v` is a link `{ "#": soul }` (exactly one key). */
export function isLink(v: unknown): v is Link {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === "#" && typeof (v as Link)["#"] === "string";
}

const label = (where: string, field: string | undefined): string =>
  field === undefined ? where : `${where}.${field}`;

/**
 * Throws unless `v` is a storable scalar value or link. The message names it
 * `where`, or `where.field` when `field` is given (put together only for an
 * error: validation runs for every op).
 */
export function checkValue(v: unknown, where: string, field?: string): asserts v is Value {
  if (v === null || typeof v === "boolean") return;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new RangeError(`${label(where, field)}: numbers must be finite, got ${v}`);
    return;
  }
  if (typeof v === "string") {
    if (utf8Over(v, MAX_VALUE_BYTES) !== undefined) {
      throw new RangeError(`${label(where, field)}: string is longer than ${MAX_VALUE_BYTES} bytes of UTF-8`);
    }
    if (!v.isWellFormed()) throw new RangeError(`${label(where, field)}: string contains a lone surrogate`);
    return;
  }
  if (v instanceof Uint8Array) {
    if (v.length > MAX_VALUE_BYTES) {
      throw new RangeError(`${label(where, field)}: bytes are longer than ${MAX_VALUE_BYTES}`);
    }
    return;
  }
  if (isLink(v)) {
    checkSoul(v["#"]);
    return;
  }
  throw new TypeError(
    `${label(where, field)}: cannot store ${
      describe(v)
    }; use null, boolean, number, string, Uint8Array or a link`,
  );
}

/**
 * Splits an object given to `put` into nodes: scalar fields stay, nested plain
 * objects become child nodes with the derived soul `parent/field` and the
 * field becomes a link to it. Fields set to `undefined` are ignored, as in
 * JSON. Throws (and returns nothing) on any invalid soul, field or value.
 */
export function flatten(soul: string, data: unknown): Map<string, NodeData> {
  const nodes = new Map<string, NodeData>();
  for (const list of flattenFields(soul, data)) {
    const s = list[0] as string;
    let node = nodes.get(s);
    if (!node) nodes.set(s, node = Object.create(null) as NodeData);
    for (let i = 1; i < list.length; i += 2) node[list[i] as string] = list[i + 1] as Value;
  }
  return nodes;
}

/** Throws unless `data`, the object for node `soul` at nesting `depth`, is a plain object within the depth limit. */
function checkNodeObject(
  soul: string,
  data: unknown,
  depth: number,
): asserts data is Record<string, unknown> {
  if (typeof data !== "object" || data === null || Array.isArray(data) || data instanceof Uint8Array) {
    throw new TypeError(`The data for ${JSON.stringify(soul)} must be a plain object, got ${describe(data)}`);
  }
  const proto = Object.getPrototypeOf(data);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`The data for ${JSON.stringify(soul)} must be a plain object, got ${describe(data)}`);
  }
  if (depth > MAX_PUT_DEPTH) {
    throw new RangeError(
      `Objects may nest at most ${MAX_PUT_DEPTH} levels deep (at ${JSON.stringify(soul)})`,
    );
  }
}

/**
 * What {@link flatten} computes, as one list per node in walk order —
 * `[soul, field, value, field, value, ...]` — without building node objects
 * (`put` turns these straight into records). When two paths lead to one soul
 * (a field name containing `/`), the later fields join that soul's list and,
 * as in {@link flatten}, a repeated field's later value is the one that
 * counts. Throws on any invalid soul, field or value, before returning.
 */
export function flattenFields(soul: string, data: unknown): unknown[][] {
  checkSoul(soul);
  const out: unknown[][] = [];
  fieldsLeft = MAX_PUT_FIELDS;
  walkFields(soul, data, 1, out, undefined);
  return out;
}

/** Fields the walk in progress may still take: it stops at the first one over {@link MAX_PUT_FIELDS}. */
let fieldsLeft = 0;

function tooManyFields(): RangeError {
  return new RangeError(
    `A put may write at most ${MAX_PUT_FIELDS} fields (the link to a nested object is one) and this one writes more; split it into several puts`,
  );
}

/**
 * Appends the lists of `soul` and the nodes nested in it to `out`. Lists are
 * found by soul in `bySoul`, made once the walk meets its second node (a
 * node without children, the common put, needs no map): finding a soul by
 * searching `out` made a put of n child objects cost n²/2 comparisons (64k
 * children froze a node for 11 s). Returns the map, for the caller's
 * siblings. Throws at the first field past {@link MAX_PUT_FIELDS}, without
 * walking the rest.
 */
function walkFields(
  soul: string,
  data: unknown,
  depth: number,
  out: unknown[][],
  bySoul: Map<string, unknown[]> | undefined,
): Map<string, unknown[]> | undefined {
  checkNodeObject(soul, data, depth);
  let node = out.length === 0 ? undefined : (bySoul ??= new Map([[out[0][0] as string, out[0]]])).get(soul);
  if (!node) {
    out.push(node = [soul]);
    bySoul?.set(soul, node);
  }
  for (const field of Object.keys(data)) {
    checkField(field);
    const v = (data as Record<string, unknown>)[field];
    if (v === undefined) continue;
    if (--fieldsLeft < 0) throw tooManyFields();
    if (
      typeof v === "object" && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v) && !isLink(v)
    ) {
      const child = `${soul}/${field}`;
      checkSoul(child);
      node.push(field, { "#": child });
      bySoul = walkFields(child, v, depth + 1, out, bySoul);
    } else {
      checkValue(v, soul, field);
      node.push(field, v);
    }
  }
  return bySoul;
}
