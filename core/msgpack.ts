/**
 * A strict MessagePack subset: the encoder and a decoder that treats its input
 * as hostile. Supported types: nil, booleans, integers (as safe JS integers),
 * float64/float32, str (UTF-8), bin, arrays and maps with string keys.
 * Extension types, `__proto__` keys, duplicate keys, invalid UTF-8, trailing
 * bytes, nesting beyond `maxDepth` and inputs beyond `maxBytes` are rejected
 * with a `SyntaxError`/`RangeError` that says what and where.
 *
 * The encoding of a value is canonical: integers use the shortest form,
 * other numbers float64 (so `-0` keeps its sign), map keys keep insertion
 * order. Equal values built the same way encode to equal bytes.
 *
 * @example
 * ```ts
 * import { decode, encode } from "./msgpack.ts";
 * const bytes = encode({ a: 1, b: [true, null, "x"] });
 * console.log(decode(bytes)); // { a: 1, b: [ true, null, "x" ] }
 * ```
 *
 * @module
 */

/** A value this codec can carry. Maps decode as null-prototype objects. */
export type MsgValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | MsgValue[]
  | { [key: string]: MsgValue };

/** Limits applied by {@link decode}. */
export interface DecodeLimits {
  /** Largest accepted input in bytes (default 16 MiB). */
  maxBytes?: number;
  /** Deepest accepted nesting of arrays/maps (default 32). */
  maxDepth?: number;
}

import { ByteWriter } from "./byte_writer.ts";

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Growable output buffer for {@link encode}. */
class Writer extends ByteWriter implements PartWriter {
  arrayHeader(n: number): void {
    writeLength(this, n, 0x90, 15, -1, 0xdc, 0xdd);
  }
  value(v: MsgValue): void {
    writeValue(this, v, 0);
  }
  binHeader(n: number): void {
    writeLength(this, n, -1, -1, 0xc4, 0xc5, 0xc6);
  }
  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  head(tag: number, n: number, width: 1 | 2 | 4): void {
    this.ensure(1 + width);
    this.buf[this.pos++] = tag;
    if (width === 1) this.buf[this.pos] = n;
    else if (width === 2) this.view.setUint16(this.pos, n);
    else this.view.setUint32(this.pos, n);
    this.pos += width;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

function writeLength(
  w: Writer,
  n: number,
  fix: number,
  fixMax: number,
  t8: number,
  t16: number,
  t32: number,
): void {
  if (n <= fixMax && fix >= 0) w.u8(fix | n);
  else if (n < 0x100 && t8 >= 0) w.head(t8, n, 1);
  else if (n < 0x10000) w.head(t16, n, 2);
  else w.head(t32, n, 4);
}

function writeNumber(w: Writer, v: number): void {
  if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
    if (v >= 0) {
      if (v < 0x80) return w.u8(v);
      if (v < 0x100) return w.head(0xcc, v, 1);
      if (v < 0x10000) return w.head(0xcd, v, 2);
      if (v < 0x100000000) return w.head(0xce, v, 4);
      w.ensure(9);
      w.buf[w.pos++] = 0xcf;
      writeInt64(w, v);
      return;
    }
    if (v >= -32) return w.u8(v & 0xff);
    w.ensure(9);
    if (v >= -0x80) {
      w.buf[w.pos++] = 0xd0;
      w.view.setInt8(w.pos++, v);
    } else if (v >= -0x8000) {
      w.buf[w.pos++] = 0xd1;
      w.view.setInt16(w.pos, v);
      w.pos += 2;
    } else if (v >= -0x80000000) {
      w.buf[w.pos++] = 0xd2;
      w.view.setInt32(w.pos, v);
      w.pos += 4;
    } else {
      w.buf[w.pos++] = 0xd3;
      writeInt64(w, v);
    }
    return;
  }
  w.ensure(9);
  w.buf[w.pos++] = 0xcb;
  w.view.setFloat64(w.pos, v);
  w.pos += 8;
}

/**
 * Writes safe integer `v` as 8 big-endian bytes of two's complement, as two
 * 32-bit words: a BigInt per value cost more than the rest of its encoding.
 */
function writeInt64(w: Writer, v: number): void {
  const hi = Math.floor(v / 0x100000000); // exact: |v| < 2^53
  w.view.setInt32(w.pos, hi);
  w.view.setUint32(w.pos + 4, v - hi * 0x100000000);
  w.pos += 8;
}

function writeValue(w: Writer, v: unknown, depth: number): void {
  if (depth > 64) throw new RangeError("Cannot encode: nesting deeper than 64 levels");
  if (v === null) return w.u8(0xc0);
  switch (typeof v) {
    case "boolean":
      return w.u8(v ? 0xc3 : 0xc2);
    case "number":
      return writeNumber(w, v);
    case "string": {
      const n = v.length;
      if (n < 0x100) { // short ASCII strings: written in place, no TextEncoder call
        w.ensure(2 + n);
        const buf = w.buf, start = w.pos;
        let p = start + (n <= 31 ? 1 : 2), i = 0;
        for (; i < n; i++) {
          const c = v.charCodeAt(i);
          if (c >= 0x80) break;
          buf[p++] = c;
        }
        if (i === n) {
          if (n <= 31) buf[start] = 0xa0 | n;
          else {
            buf[start] = 0xd9;
            buf[start + 1] = n;
          }
          w.pos = p;
          return;
        }
      }
      const b = encoder.encode(v);
      writeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return w.bytes(b);
    }
    case "object": {
      if (v instanceof Uint8Array) {
        writeLength(w, v.length, -1, -1, 0xc4, 0xc5, 0xc6);
        return w.bytes(v);
      }
      if (Array.isArray(v)) {
        writeLength(w, v.length, 0x90, 15, -1, 0xdc, 0xdd);
        for (const item of v) writeValue(w, item, depth + 1);
        return;
      }
      const keys = Object.keys(v);
      writeLength(w, keys.length, 0x80, 15, -1, 0xde, 0xdf);
      for (const key of keys) {
        writeValue(w, key, depth + 1);
        writeValue(w, (v as Record<string, unknown>)[key], depth + 1);
      }
      return;
    }
  }
  throw new TypeError(`Cannot encode a value of type ${typeof v}`);
}

/** Encodes `value` as MessagePack. Throws `TypeError` for values outside {@link MsgValue}. */
export function encode(value: MsgValue): Uint8Array {
  // One scratch writer serves every call (encoding is synchronous); the result is a copy.
  const w = scratch;
  w.pos = 0;
  try {
    writeValue(w, value, 0);
    return w.buf.slice(0, w.pos);
  } finally {
    if (w.buf.length > SCRATCH_KEEP) scratch = new Writer();
  }
}

/**
 * Writes a value built piece by piece (array headers, values, raw bytes)
 * with the scratch writer, and returns a copy: the same bytes `encode`
 * gives for the value those pieces make, without building it first.
 */
export function encodeParts(write: (w: PartWriter) => void): Uint8Array {
  const w = scratch;
  w.pos = 0;
  try {
    write(w);
    return w.buf.slice(0, w.pos);
  } finally {
    if (w.buf.length > SCRATCH_KEEP) scratch = new Writer();
  }
}

/** What {@link encodeParts} hands its callback. */
export interface PartWriter {
  /** The header of an array of `n` items (which must follow). */
  arrayHeader(n: number): void;
  /** One value, as `encode` writes it. */
  value(v: MsgValue): void;
  /** A bin of `length` bytes whose content the caller writes into `buf` at `pos`, then advances `pos`. */
  binHeader(length: number): void;
  ensure(n: number): void;
  buf: Uint8Array;
  pos: number;
}

/** Scratch writers that grew past this are dropped after use rather than kept. */
const SCRATCH_KEEP = 1 << 20;
let scratch = new Writer();

/** Reads one value at a time from hostile input. */
class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array, readonly maxDepth: number) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(what: string): never {
    throw new SyntaxError(`Cannot decode MessagePack at byte ${this.pos}: ${what}`);
  }
  need(n: number): void {
    if (this.pos + n > this.buf.length) this.fail(`truncated input (needs ${n} more bytes)`);
  }
  uint(width: 1 | 2 | 4): number {
    this.need(width);
    const p = this.pos;
    this.pos += width;
    return width === 1 ? this.buf[p] : width === 2 ? this.view.getUint16(p) : this.view.getUint32(p);
  }
  int64(signed: boolean): number {
    this.need(8);
    // Two 32-bit words, no BigInt: within ±(2^53 - 1), hi * 2^32 + lo is exact.
    const hi = signed ? this.view.getInt32(this.pos) : this.view.getUint32(this.pos);
    const v = hi * 0x100000000 + this.view.getUint32(this.pos + 4);
    if (hi >= 0x200000 || hi < -0x200000 || v < Number.MIN_SAFE_INTEGER) {
      this.fail("integer outside the safe range");
    }
    this.pos += 8;
    return v;
  }
  str(n: number): string {
    this.need(n);
    if (n <= 32) { // short ASCII strings: skip the decoder call
      const { buf } = this, end = this.pos + n;
      let s = "", i = this.pos;
      for (; i < end && buf[i] < 0x80; i++) s += String.fromCharCode(buf[i]);
      if (i === end) {
        this.pos = end;
        return s;
      }
    }
    const bytes = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return strictUtf8.decode(bytes);
    } catch {
      this.pos -= n;
      return this.fail("invalid UTF-8 in a string");
    }
  }
  bin(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  array(n: number, depth: number): MsgValue[] {
    // Each element takes at least one byte: refuse counts the input cannot hold before allocating.
    if (n > this.buf.length - this.pos) this.fail(`array of ${n} items exceeds the input`);
    const out: MsgValue[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }
  map(n: number, depth: number): { [key: string]: MsgValue } {
    if (2 * n > this.buf.length - this.pos) this.fail(`map of ${n} entries exceeds the input`);
    const out = Object.create(null) as { [key: string]: MsgValue };
    for (let i = 0; i < n; i++) {
      const at = this.pos;
      const key = this.value(depth + 1);
      if (typeof key !== "string") {
        this.pos = at;
        this.fail("map key is not a string");
      }
      if (key === "__proto__") {
        this.pos = at;
        this.fail('map key "__proto__" is not allowed');
      }
      if (Object.hasOwn(out, key)) {
        this.pos = at;
        this.fail(`duplicate map key ${JSON.stringify(key)}`);
      }
      out[key] = this.value(depth + 1);
    }
    return out;
  }
  value(depth: number): MsgValue {
    if (depth > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth} levels`);
    this.need(1);
    const t = this.buf[this.pos++];
    if (t < 0x80) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t <= 0x8f) return this.map(t & 0x0f, depth);
    if (t <= 0x9f) return this.array(t & 0x0f, depth);
    if (t <= 0xbf) return this.str(t & 0x1f);
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.uint(1));
      case 0xc5:
        return this.bin(this.uint(2));
      case 0xc6:
        return this.bin(this.uint(4));
      case 0xca: {
        this.need(4);
        const v = this.view.getFloat32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xcb: {
        this.need(8);
        const v = this.view.getFloat64(this.pos);
        this.pos += 8;
        return v;
      }
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return this.int64(false);
      case 0xd0: {
        this.need(1);
        return this.view.getInt8(this.pos++);
      }
      case 0xd1: {
        this.need(2);
        const v = this.view.getInt16(this.pos);
        this.pos += 2;
        return v;
      }
      case 0xd2: {
        this.need(4);
        const v = this.view.getInt32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xd3:
        return this.int64(true);
      case 0xd9:
        return this.str(this.uint(1));
      case 0xda:
        return this.str(this.uint(2));
      case 0xdb:
        return this.str(this.uint(4));
      case 0xdc:
        return this.array(this.uint(2), depth);
      case 0xdd:
        return this.array(this.uint(4), depth);
      case 0xde:
        return this.map(this.uint(2), depth);
      case 0xdf:
        return this.map(this.uint(4), depth);
    }
    this.pos--;
    return this.fail(`unsupported type byte 0x${t.toString(16)}`);
  }
}

/**
 * Decodes exactly one MessagePack value from `bytes`. Checks the size before
 * parsing; throws `RangeError` when over `maxBytes` and `SyntaxError` on
 * anything malformed, unsupported or followed by trailing bytes.
 */
export function decode(bytes: Uint8Array, limits: DecodeLimits = {}): MsgValue {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("Cannot decode MessagePack: input is not a Uint8Array");
  }
  const maxBytes = limits.maxBytes ?? 16 * 1024 * 1024;
  if (bytes.length > maxBytes) {
    throw new RangeError(`Cannot decode MessagePack: ${bytes.length} bytes exceed the limit of ${maxBytes}`);
  }
  const r = new Reader(bytes, limits.maxDepth ?? 32);
  const value = r.value(0);
  if (r.pos !== bytes.length) r.fail(`${bytes.length - r.pos} trailing bytes`);
  return value;
}
