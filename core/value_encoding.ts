/**
 * The canonical bytes of a field value: what stores keep, what op batches
 * carry and what merge hashes. A value is encoded as MessagePack (a link as
 * the map `{"#": soul}`), byte for byte as `msgpack.ts` `encode` writes it,
 * with the short common forms written and read here without the general
 * codec (this runs once per field written and once per field read).
 *
 * @example
 * ```ts
 * import { decodeValue, encodeValue } from "./value_encoding.ts";
 * console.log(encodeValue("hi"), decodeValue(encodeValue(-1.5))); // Uint8Array(3) [ 162, 104, 105 ] -1.5
 * ```
 *
 * @module
 */
import { decode, encode, type MsgValue } from "./msgpack.ts";
import { type ByteWriter, putBytes } from "./byte_writer.ts";
import { MAX_VALUE_BYTES, type NodeData, type Value } from "./value.ts";

/**
 * Small encodings are cut from shared slabs: one typed array per value, but
 * not one ArrayBuffer per value, which costs more to allocate and collect.
 * So an encoded value may be a view into a larger buffer — read it through
 * the view (`byteOffset`/`byteLength`), never through `value.buffer` whole.
 *
 * Not on JavaScriptCore (Bun): it makes a view into a buffer far more slowly
 * than a small array of its own (a view per value was 19% of a 1M-op apply
 * there, in the `Uint8Array` constructor), so there each value should have
 * its own: the runtime layer says so with {@link setSmallValueMemory}.
 */
const SLAB_BYTES = 2048; // small, so a surviving value never pins much memory
let ownArrays = false;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabAt = 0;

/**
 * Where small encoded values get their bytes: `"slab"` (views into shared
 * 2 KiB buffers, the default: fastest on V8) or `"own"` (one small array
 * each: fastest on JavaScriptCore). Only speed differs, never bytes.
 * `runtime/kernels.ts` sets it for the engine it runs on.
 */
export function setSmallValueMemory(memory: "slab" | "own"): void {
  if (memory !== "slab" && memory !== "own") {
    throw new RangeError(`Small value memory must be "slab" or "own", got ${JSON.stringify(memory)}`);
  }
  ownArrays = memory === "own";
}

/** An array of `n` bytes for a short encoded value: cut from the current slab, or its own (see above). */
function valueArray(n: number): Uint8Array {
  if (ownArrays) return new Uint8Array(n);
  if (slabAt + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabAt = 0;
  }
  const out = new Uint8Array(slab, slabAt, n);
  slabAt += n;
  return out;
}

/**
 * A copy of `b[start, end)`, an encoded value (already checked to be
 * canonical), cut from the slabs when small, as {@link encodeValue}'s results.
 */
export function copyValueBytes(b: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n > SLAB_BYTES / 8) return b.slice(start, end);
  const out = valueArray(n);
  for (let i = 0; i < n; i++) out[i] = b[start + i];
  return out;
}

/** Bytes {@link shortEncoding} may write. */
const SHORT_BYTES = 32;
const shortOut = new Uint8Array(SHORT_BYTES);

/**
 * Writes the encoding of `v` at `out[at]` when it is one of the short,
 * common ones (null, booleans, unsigned 32-bit integers, ASCII strings of
 * up to 31 characters), byte for byte that of msgpack.ts `encode`; returns
 * its length, or -1 for any other value (whose encoding is not written:
 * the bytes from `at` may hold part of an attempt). `out` must have
 * {@link SHORT_BYTES} bytes from `at`.
 */
function shortEncoding(out: Uint8Array, at: number, v: Value): number {
  if (v === null) return out[at] = 0xc0, 1;
  if (v === true) return out[at] = 0xc3, 1;
  if (v === false) return out[at] = 0xc2, 1;
  if (typeof v === "number") {
    if ((v >>> 0) !== v || Object.is(v, -0)) return -1; // not an unsigned 32-bit integer
    if (v < 0x80) return out[at] = v, 1;
    if (v < 0x100) return out[at] = 0xcc, out[at + 1] = v, 2;
    if (v < 0x10000) return out[at] = 0xcd, out[at + 1] = v >>> 8, out[at + 2] = v & 0xff, 3;
    out[at] = 0xce;
    out[at + 1] = v >>> 24;
    out[at + 2] = (v >>> 16) & 0xff;
    out[at + 3] = (v >>> 8) & 0xff;
    out[at + 4] = v & 0xff;
    return 5;
  }
  if (typeof v !== "string" || v.length > 31) return -1;
  const n = v.length; // fixstr, when ASCII
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0x80) return -1;
    out[at + 1 + i] = c;
  }
  out[at] = 0xa0 | n;
  return n + 1;
}

/** The canonical encoding of a value (MessagePack; a link is the map `{"#": soul}`). */
export function encodeValue(v: Value): Uint8Array {
  const n = shortEncoding(shortOut, 0, v);
  if (n < 0) return encode(v as MsgValue);
  const out = valueArray(n);
  for (let i = 0; i < n; i++) out[i] = shortOut[i];
  return out;
}

/** Appends the canonical encoding of `v` to `w`, as {@link encodeValue} gives it, with no array of its own when short. */
export function writeValue(w: ByteWriter, v: Value): void {
  w.ensure(SHORT_BYTES);
  const n = shortEncoding(w.buf, w.pos, v);
  if (n >= 0) {
    w.pos += n;
    return;
  }
  const e = encode(v as MsgValue);
  w.ensure(e.length);
  putBytes(w.buf, w.pos, e);
  w.pos += e.length;
}

/** The encoding of a tombstone (`null`). */
export const TOMBSTONE: Uint8Array = encode(null);

/** Whether encoded value bytes are a tombstone. */
export function isTombstone(encoded: Uint8Array): boolean {
  return encoded.length === 1 && encoded[0] === 0xc0;
}

/**
 * Converts a decoded MessagePack value to a {@link Value}; throws
 * `SyntaxError` for anything that is not a field value.
 */
export function valueFromMsg(raw: MsgValue): Value {
  if (raw === null || typeof raw !== "object" || raw instanceof Uint8Array) return raw;
  if (!Array.isArray(raw)) {
    const keys = Object.keys(raw);
    if (keys.length === 1 && keys[0] === "#" && typeof raw["#"] === "string") return { "#": raw["#"] };
  }
  throw new SyntaxError("A field value must be null, boolean, number, string, bytes or a link");
}

/** The general decoder: links, long strings and bytes, and every error decodeValue throws. */
function decodeValueSlow(encoded: Uint8Array): Value {
  return valueFromMsg(decode(encoded, { maxDepth: 1, maxBytes: MAX_VALUE_BYTES + 16 }));
}

// Shared scratch for floats, read big-endian (as MessagePack stores them) through one DataView.
const floatBytes = new Uint8Array(8);
const floatView = new DataView(floatBytes.buffer);
// The options of msgpack.ts's decoder, so strings and failures match (a leading U+FEFF is kept).
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The string of `b[start, end)`, decoded as msgpack.ts does: short ASCII
 * char by char, the rest with a fatal UTF-8 decoder (a leading U+FEFF kept).
 * `undefined` when that decoder fails, so the caller can let a slow path
 * throw.
 */
export function decodeUtf8(b: Uint8Array, start: number, end: number): string | undefined {
  if (end - start <= 32) {
    let s = "", i = start;
    for (; i < end && b[i] < 0x80; i++) s += String.fromCharCode(b[i]);
    if (i === end) return s;
  }
  try {
    return strictUtf8.decode(b.subarray(start, end));
  } catch {
    return undefined;
  }
}

/**
 * Decodes value bytes written by {@link encodeValue}.
 *
 * It runs once per field read, so the scalar forms the encoder writes (nil,
 * booleans, integers up to 64 bits, floats, strings up to 255 bytes, bytes up
 * to 255) are read straight from the type byte, without the decoder's
 * per-call reader and DataView. Each is taken only when the input has exactly
 * its length; anything else — links, longer strings and bytes, malformed,
 * truncated or trailing input — goes to the general decoder, so results and
 * errors are those of `valueFromMsg(decode(...))`.
 *
 * @example
 * ```ts
 * import { decodeValue, encodeValue } from "./value_encoding.ts";
 * console.log(decodeValue(encodeValue(-1.5))); // -1.5
 * ```
 */
export function decodeValue(encoded: Uint8Array): Value {
  if (!(encoded instanceof Uint8Array) || encoded.length === 0) return decodeValueSlow(encoded);
  return decodeValueAt(encoded, 0, encoded.length);
}

/**
 * {@link decodeValue} of `b[start, end)`, without a view of it unless the
 * general decoder is needed: values read out of a stored node's body.
 */
export function decodeValueAt(b: Uint8Array, start: number, end: number): Value {
  const n = end - start, t = b[start];
  if (n <= 0) return decodeValueSlow(b.subarray(start, start)); // empty: its error
  if (t < 0x80) { // positive fixint
    if (n === 1) return t;
  } else if (t >= 0xe0) { // negative fixint
    if (n === 1) return t - 0x100;
  } else if (t >= 0xa0 && t <= 0xbf) { // fixstr
    if (n === (t & 0x1f) + 1) {
      const s = decodeUtf8(b, start + 1, end);
      if (s !== undefined) return s;
    }
  } else {
    switch (t) {
      case 0xc0:
        if (n === 1) return null;
        break;
      case 0xc2:
        if (n === 1) return false;
        break;
      case 0xc3:
        if (n === 1) return true;
        break;
      case 0xc4: // bin8: a copy, as decode() returns (slice, not subarray)
        if (n >= 2 && n === b[start + 1] + 2) return b.slice(start + 2, end);
        break;
      case 0xca: // float32 (decoded, never written)
        if (n === 5) {
          for (let i = 0; i < 4; i++) floatBytes[i] = b[start + 1 + i];
          return floatView.getFloat32(0);
        }
        break;
      case 0xcb: // float64
        if (n === 9) {
          for (let i = 0; i < 8; i++) floatBytes[i] = b[start + 1 + i];
          return floatView.getFloat64(0);
        }
        break;
      case 0xcc:
        if (n === 2) return b[start + 1];
        break;
      case 0xcd:
        if (n === 3) return (b[start + 1] << 8) | b[start + 2];
        break;
      case 0xce:
        if (n === 5) return readU32(b, start + 1);
        break;
      case 0xcf: // uint64, e.g. millisecond timestamps; past 2^53 - 1 the slow path throws
        if (n === 9) {
          const hi = readU32(b, start + 1);
          if (hi < 0x200000) return hi * 0x100000000 + readU32(b, start + 5);
        }
        break;
      case 0xd0:
        if (n === 2) return (b[start + 1] << 24) >> 24;
        break;
      case 0xd1:
        if (n === 3) return ((b[start + 1] << 24) | (b[start + 2] << 16)) >> 16;
        break;
      case 0xd2:
        if (n === 5) return (b[start + 1] << 24) | (b[start + 2] << 16) | (b[start + 3] << 8) | b[start + 4];
        break;
      case 0xd3: // int64; outside ±(2^53 - 1) the slow path throws
        if (n === 9) {
          const hi = (b[start + 1] << 24) | (b[start + 2] << 16) | (b[start + 3] << 8) | b[start + 4];
          if (hi >= -0x200000 && hi < 0x200000) { // then hi * 2^32 + lo is exact
            const v = hi * 0x100000000 + readU32(b, start + 5);
            if (v >= Number.MIN_SAFE_INTEGER) return v;
          }
        }
        break;
      case 0xd9: // str8
        if (n >= 2 && n === b[start + 1] + 2) {
          const s = decodeUtf8(b, start + 2, end);
          if (s !== undefined) return s;
        }
        break;
    }
  }
  return decodeValueSlow(start === 0 && end === b.length ? b : b.subarray(start, end));
}

/** Sets `obj[field]` as an own data property, even for a field named `__proto__` in corrupt input. */
export function setField(obj: NodeData, field: string, value: Value): void {
  if (field === "__proto__") {
    Object.defineProperty(obj, field, { value, enumerable: true, writable: true, configurable: true });
  } else obj[field] = value;
}

/** A node's data from its records (tombstones left out); `undefined` when no field is live. */
export function nodeData(
  records: readonly { readonly field: string; readonly value: Uint8Array }[],
): NodeData | undefined {
  let data: NodeData | undefined;
  for (const r of records) {
    if (isTombstone(r.value)) continue;
    data ??= {};
    setField(data, r.field, decodeValue(r.value));
  }
  return data;
}

/** The big-endian unsigned 32-bit integer at `b[at]`. */
function readU32(b: Uint8Array, at: number): number {
  return b[at] * 0x1000000 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
}
