/**
 * The JSON form of node data, shared by the CLI and the HTTP API. JSON has
 * every field value type but bytes, so a `Uint8Array` travels as the object
 * `{"$bytes": "<base64>"}` (standard alphabet, with padding). Links stay
 * `{"#": soul}`.
 *
 * The rule is exact: an object whose only key is `$bytes` always means bytes.
 * So a node (or nested child object) made of a single field named `$bytes`
 * cannot be written through JSON; give it another field, or write it with the
 * library.
 *
 * {@link countJsonItems} sizes a JSON text before it is parsed (what the HTTP
 * API refuses bodies by).
 *
 * @example
 * ```ts
 * import { fromJson, toJson } from "./json.ts";
 * const data = { name: "Alice", key: new Uint8Array([0, 1, 255]) };
 * const json = JSON.stringify(toJson(data));
 * console.log(json); // {"name":"Alice","key":{"$bytes":"AAH/"}}
 * console.log(fromJson(JSON.parse(json))); // { name: "Alice", key: Uint8Array(3) [ 0, 1, 255 ] }
 * ```
 *
 * @module
 */
import { MAX_VALUE_BYTES } from "./value.ts";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Deepest nesting of arrays and objects that {@link toJson} and {@link fromJson} accept. */
export const MAX_JSON_DEPTH = 64;

/** The key that marks bytes in JSON. */
export const BYTES_KEY = "$bytes";

/** Longest base64 text accepted for one byte value: that of the largest storable value. */
const MAX_BASE64_CHARS = Math.ceil(MAX_VALUE_BYTES / 3) * 4;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * Converts a value (node data, a field value, a query result) to JSON:
 * every `Uint8Array` inside becomes `{"$bytes": "<base64>"}`. Throws
 * `TypeError` for what JSON cannot carry (`undefined`, functions, bigints,
 * other objects than plain ones, arrays and `Uint8Array`s) and `RangeError`
 * for non-finite numbers and nesting deeper than {@link MAX_JSON_DEPTH}.
 *
 * @example
 * ```ts
 * import { toJson } from "./json.ts";
 * console.log(toJson({ pet: { "#": "alice/pet" }, raw: new Uint8Array([104, 105]) }));
 * // { pet: { "#": "alice/pet" }, raw: { "$bytes": "aGk=" } }
 * ```
 */
export function toJson(value: unknown): Json {
  return encodeJson(value, 0, "value");
}

function encodeJson(v: unknown, depth: number, where: string): Json {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) {
      throw new RangeError(`Cannot convert ${where} to JSON: ${v} is not a finite number`);
    }
    return v;
  }
  if (typeof v !== "object") throw new TypeError(`Cannot convert ${where} to JSON: it is ${typeOf(v)}`);
  if (v instanceof Uint8Array) return { [BYTES_KEY]: encodeBase64(v) };
  if (depth >= MAX_JSON_DEPTH) {
    throw new RangeError(`Cannot convert ${where} to JSON: it nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeJson(x, depth + 1, `${where}[${i}]`));
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`Cannot convert ${where} to JSON: it is ${typeOf(v)}`);
  }
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(v)) {
    setOwn(out, key, encodeJson((v as Record<string, unknown>)[key], depth + 1, `${where}.${key}`));
  }
  return out;
}

/**
 * Converts parsed JSON back to values: every object whose only key is
 * `$bytes` becomes a `Uint8Array`, at any depth (so it serves both node data
 * for `put` and a query's `where`). Other objects and arrays are copied;
 * keys such as `__proto__` stay ordinary keys, for the validation of the
 * database to judge. Throws `TypeError` when `$bytes` is not a string,
 * `SyntaxError` when it is not canonical padded base64, `RangeError` when it
 * is longer than a storable value or the input nests deeper than
 * {@link MAX_JSON_DEPTH}.
 *
 * @example
 * ```ts
 * import { fromJson } from "./json.ts";
 * console.log(fromJson({ raw: { $bytes: "aGk=" }, n: 1 })); // { raw: Uint8Array(2) [ 104, 105 ], n: 1 }
 * ```
 */
export function fromJson(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  return decodeJson(value, 0, []);
}

/**
 * {@link fromJson} of an object or array at `depth`, reached by `path` (keys
 * and indexes, for messages). The path is a stack, turned into text only for
 * an error, and keys are assigned, save `__proto__` (defined as an own
 * property): with a path string and `Object.defineProperty` per key, 2 MiB
 * of 64k child objects took 408 ms (Deno, best of 7; now 191), of a million
 * numbers in an array 154 ms (now 9).
 */
function decodeJson(v: object, depth: number, path: (string | number)[]): unknown {
  if (v instanceof Uint8Array) return v;
  if (depth >= MAX_JSON_DEPTH) {
    throw new RangeError(`${pathText(path)} nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x !== "object" || x === null) out[i] = x;
      else {
        path.push(i);
        out[i] = decodeJson(x, depth + 1, path);
        path.pop();
      }
    }
    return out;
  }
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === BYTES_KEY) {
    const text = (v as Record<string, unknown>)[BYTES_KEY];
    if (typeof text !== "string") {
      throw new TypeError(`${pathText(path)}: ${BYTES_KEY} must be a base64 string, got ${typeOf(text)}`);
    }
    return decodeBase64(text, path);
  }
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    let x = (v as Record<string, unknown>)[key];
    if (typeof x === "object" && x !== null) {
      path.push(key);
      x = decodeJson(x, depth + 1, path);
      path.pop();
    }
    if (key === "__proto__") setOwn(out, key, x);
    else out[key] = x;
  }
  return out;
}

/** `path` as text for a message: `value.a.b[2]`. */
function pathText(path: readonly (string | number)[]): string {
  let s = "value";
  for (const k of path) s += typeof k === "number" ? `[${k}]` : `.${k}`;
  return s;
}

/**
 * How many objects, arrays and object keys the JSON text `bytes` (UTF-8)
 * holds, counted up to `max + 1` (where it stops). They are what parsing
 * builds and what it costs: on 2 MiB of text, parsing and {@link fromJson}
 * took 0.3–0.45 s for 214k empty objects or 280k keys at best (up to 1.5 s
 * on a busy machine), and 20 ms for a million numbers. A scan of the bytes
 * (a few ms per MiB), so a caller can refuse a text before parsing it. Text
 * that is not JSON gets some count; parsing judges it.
 *
 * @example
 * ```ts
 * import { countJsonItems } from "./json.ts";
 * const text = new TextEncoder().encode('{"a":[{"b":1},"{:"],"c":2}');
 * console.log(countJsonItems(text, 100)); // 6: two objects and an array, the keys a, b and c
 * ```
 */
export function countJsonItems(bytes: Uint8Array, max: number): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x22) { // '"': skip the string (no byte of a multi-byte UTF-8 character is ASCII)
      for (i++; i < bytes.length; i++) {
        const c = bytes[i];
        if (c === 0x5c) i++; // '\\' escapes the next byte
        else if (c === 0x22) break;
      }
    } else if (b === 0x7b || b === 0x5b || b === 0x3a) { // '{', '[', ':'
      if (++n > max) return n;
    }
  }
  return n;
}

/** Sets an own property, so that a key like `__proto__` stays data instead of changing the prototype. */
function setOwn(o: object, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `a ${v.constructor?.name ?? "null-prototype object"}`;
  return `a ${typeof v}`;
}

function encodeBase64(bytes: Uint8Array): string {
  // btoa takes a "binary string"; build it in chunks to stay within argument-count limits.
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function decodeBase64(text: string, path: readonly (string | number)[]): Uint8Array {
  if (text.length > MAX_BASE64_CHARS) {
    throw new RangeError(`${pathText(path)}: ${BYTES_KEY} holds more than ${MAX_VALUE_BYTES} bytes`);
  }
  if (!BASE64_RE.test(text)) {
    throw new SyntaxError(
      `${pathText(path)}: ${BYTES_KEY} is not base64 (A–Z, a–z, 0–9, +, /, padded with = to a multiple of 4)`,
    );
  }
  // Unused low bits of the last character must be zero, so that each byte string has one spelling.
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (pad > 0 && ALPHABET.indexOf(text[text.length - pad - 1]) & (pad === 2 ? 0x0f : 0x03)) {
    throw new SyntaxError(
      `${pathText(path)}: ${BYTES_KEY} is not canonical base64 (non-zero bits after the last byte)`,
    );
  }
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
