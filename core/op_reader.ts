/**
 * A fast reader for the op encoding of `op.ts`, straight from the bytes to
 * records to store, with no intermediate MessagePack tree: the path every
 * batch a peer sends takes (`Database.applyOps(Uint8Array)`).
 *
 * It only reads what Lattice's own encoder writes and is certainly valid:
 * the canonical encodings of values (so a value's bytes are the record's
 * value as they are), short ASCII or valid UTF-8 names within the limits,
 * 8-byte `bin8` states and actors. On anything else — an error, a limit, a
 * valid but non-canonical form — it returns `undefined`, and the caller
 * decodes the whole batch again on the general path, which accepts what is
 * valid and throws the errors it always threw. Both paths give the same
 * records for the same bytes (`tests/op_reader.test.ts` checks it).
 *
 * Names and actors repeat from op to op (a node's fields come together, a
 * batch mostly has one writer): a soul equal to the previous op's, and
 * field names found in a small table, are reused rather than decoded again,
 * so equal names are one string and are checked once.
 *
 * @module
 */
import type { FieldRecord } from "./store.ts";
import { NameTable } from "./names.ts";
import { checkField, checkSoul, MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./value.ts";
import { copyValueBytes, decodeUtf8, decodeValueAt } from "./value_encoding.ts";

/** Thrown inside the reader to leave the fast path (never escapes {@link readOpRecords}, nor does any error). */
const BAIL = Symbol("bail");

/** Field names seen recently (checked with `checkField` when they entered). */
const names = new NameTable(256);

/**
 * The records of an op encoding of format `version`, or `undefined` when
 * the fast path cannot take it (the caller then uses the general decoder).
 */
export function readOpRecords(b: Uint8Array, version: number): FieldRecord[] | undefined {
  try {
    return read(b, version);
  } catch {
    return undefined; // BAIL, or a check that failed: the general path reports it
  }
}

function read(b: Uint8Array, version: number): FieldRecord[] {
  const end = b.length;
  let p = 0;
  // The root array: [version, op, op, ...].
  if (end < 2) throw BAIL;
  let count: number;
  const t = b[p++];
  if (t >= 0x90 && t <= 0x9f) count = t & 0x0f;
  else if (t === 0xdc && end >= 3) {
    count = (b[p] << 8) | b[p + 1];
    p += 2;
  } else if (t === 0xdd && end >= 5) {
    count = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
    p += 4;
  } else throw BAIL;
  if (count === 0 || count - 1 > (end - p) / 23) throw BAIL; // an op takes at least 23 bytes
  if (b[p++] !== version) throw BAIL;
  const out: FieldRecord[] = new Array(count - 1);
  let lastSoul = "", lastSoulAt = -1, lastSoulLen = 0;
  let actorHi = -1, actorLo = -1, lastActorAt = -1;
  for (let i = 0; i < count - 1; i++) {
    if (p >= end) throw BAIL;
    const head = b[p++];
    if (head !== 0x95 && head !== 0x96) throw BAIL;

    // soul: the previous op's when the bytes are the same
    let len = strLength(b, p, end);
    p += headBytes(b[p]);
    let soul: string;
    if (len === lastSoulLen && sameBytes(b, p, lastSoulAt, len)) soul = lastSoul;
    else {
      if (len === 0 || len > MAX_KEY_BYTES || p + len > end) throw BAIL;
      soul = text(b, p, len);
      checkSoul(soul);
      lastSoul = soul, lastSoulLen = len;
    }
    lastSoulAt = p;
    p += len;

    // field
    if (p >= end) throw BAIL;
    len = strLength(b, p, end);
    p += headBytes(b[p]);
    if (len === 0 || len > MAX_KEY_BYTES || p + len > end) throw BAIL;
    const field = fieldName(b, p, len);
    p += len;

    // value: canonical bytes, copied as the record's value
    const vEnd = valueEnd(b, p, end);
    const value = copyValueBytes(b, p, vEnd);
    p = vEnd;

    // state and actor: bin8 of 8 bytes each
    if (p + 20 > end || b[p] !== 0xc4 || b[p + 1] !== 8 || b[p + 10] !== 0xc4 || b[p + 11] !== 8) throw BAIL;
    const stateHi = word(b, p + 2), stateLo = word(b, p + 6);
    p += 12;
    if (lastActorAt < 0 || !sameBytes(b, p, lastActorAt, 8)) actorHi = word(b, p), actorLo = word(b, p + 4);
    lastActorAt = p;
    p += 8;

    if (head === 0x95) out[i] = { soul, field, value, stateHi, stateLo, actorHi, actorLo };
    else {
      if (p + 2 > end) throw BAIL;
      let n: number;
      if (b[p] === 0xc4) n = b[p + 1], p += 2;
      else if (b[p] === 0xc5 && p + 3 <= end) n = (b[p + 1] << 8) | b[p + 2], p += 3;
      else throw BAIL;
      if (p + n > end) throw BAIL;
      out[i] = { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig: b.slice(p, p + n) };
      p += n;
    }
  }
  if (p !== end) throw BAIL;
  return out;
}

/** Big-endian 32-bit word at `at`. */
const word = (b: Uint8Array, at: number): number =>
  ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** Whether `b[a, a+n)` equals `b[c, c+n)` (`c` < 0: no earlier bytes). */
function sameBytes(b: Uint8Array, a: number, c: number, n: number): boolean {
  if (c < 0 || a + n > b.length) return false;
  for (let k = 0; k < n; k++) if (b[a + k] !== b[c + k]) return false;
  return true;
}

/** Length of the str at `p` (its header: fixstr, str8, str16); bails on anything else. */
function strLength(b: Uint8Array, p: number, end: number): number {
  const t = b[p];
  if (t >= 0xa0 && t <= 0xbf) return t & 0x1f;
  if (t === 0xd9 && p + 2 <= end) return b[p + 1];
  if (t === 0xda && p + 3 <= end) return (b[p + 1] << 8) | b[p + 2];
  throw BAIL;
}

/** Bytes of a str header (as {@link strLength} accepted it). */
const headBytes = (t: number): number => t <= 0xbf ? 1 : t === 0xd9 ? 2 : 3;

/** The string of `n` bytes at `p` (invalid UTF-8: bail). */
function text(b: Uint8Array, p: number, n: number): string {
  const s = decodeUtf8(b, p, p + n);
  if (s === undefined) throw BAIL;
  return s;
}

/** A field name, from the table of recent ASCII names when it is there. */
function fieldName(b: Uint8Array, p: number, n: number): string {
  const ascii = n <= 64 ? names.ascii(b, p, n, checkField) : undefined;
  if (ascii !== undefined) return ascii;
  const name = text(b, p, n);
  checkField(name);
  return name;
}

/** End of the value at `p` if it is valid and canonical (as `encodeValue` writes it); bails otherwise. */
function valueEnd(b: Uint8Array, p: number, end: number): number {
  if (p >= end) throw BAIL;
  const t = b[p];
  if (t < 0x80 || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return p + 1;
  if (t >= 0xa0 && t <= 0xbf) return strEnd(b, p + 1, t & 0x1f, end);
  switch (t) {
    case 0xcc: // uint8 ≥ 0x80 (smaller: fixint)
      if (p + 2 > end || b[p + 1] < 0x80) throw BAIL;
      return p + 2;
    case 0xcd: // uint16 ≥ 0x100
      if (p + 3 > end || b[p + 1] === 0) throw BAIL;
      return p + 3;
    case 0xce: // uint32 ≥ 0x10000
      if (p + 5 > end || (b[p + 1] | b[p + 2]) === 0) throw BAIL;
      return p + 5;
    case 0xd0: { // int8 < -32
      if (p + 2 > end) throw BAIL;
      const v = (b[p + 1] << 24) >> 24;
      if (v >= -32) throw BAIL;
      return p + 2;
    }
    case 0xd1: { // int16 < -0x80
      if (p + 3 > end) throw BAIL;
      const v = ((b[p + 1] << 24) >> 16) | b[p + 2];
      if (v >= -0x80) throw BAIL;
      return p + 3;
    }
    case 0xd2: { // int32 < -0x8000
      if (p + 5 > end) throw BAIL;
      const v = (b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4];
      if (v >= -0x8000) throw BAIL;
      return p + 5;
    }
    case 0xcf: { // uint64 from 2^32 to 2^53 - 1 (e.g. millisecond timestamps)
      if (p + 9 > end) throw BAIL;
      const hi = word(b, p + 1);
      if (hi === 0 || hi >= 0x200000) throw BAIL;
      return p + 9;
    }
    case 0xd3: { // int64 from -(2^53 - 1) to below -2^31
      if (p + 9 > end) throw BAIL;
      const hi = word(b, p + 1) | 0, lo = word(b, p + 5);
      if (hi < -0x200000 || hi >= 0 || (hi === -1 && lo >= 0x80000000) || (hi === -0x200000 && lo === 0)) {
        throw BAIL;
      }
      return p + 9;
    }
    case 0xcb: { // float64: finite, and not a value the integer forms write
      if (p + 9 > end) throw BAIL;
      const v = decodeValueAt(b, p, p + 9) as number;
      if (!Number.isFinite(v) || (Number.isSafeInteger(v) && !Object.is(v, -0))) throw BAIL;
      return p + 9;
    }
    case 0xd9: {
      if (p + 2 > end || b[p + 1] < 32) throw BAIL;
      return strEnd(b, p + 2, b[p + 1], end);
    }
    case 0xda: {
      if (p + 3 > end) throw BAIL;
      const n = (b[p + 1] << 8) | b[p + 2];
      if (n < 0x100) throw BAIL;
      return strEnd(b, p + 3, n, end);
    }
    case 0xc4: {
      if (p + 2 > end) throw BAIL;
      return binEnd(p + 2, b[p + 1], end);
    }
    case 0xc5: {
      if (p + 3 > end) throw BAIL;
      const n = (b[p + 1] << 8) | b[p + 2];
      if (n < 0x100) throw BAIL;
      return binEnd(p + 3, n, end);
    }
    case 0x81: { // a link: {"#": soul}
      if (p + 3 > end || b[p + 1] !== 0xa1 || b[p + 2] !== 0x23) throw BAIL;
      const at = p + 3;
      const n = strLength(b, at, end);
      // The shortest header for the length, as the encoder writes it.
      if ((b[at] === 0xd9 && n < 32) || (b[at] === 0xda && n < 0x100)) throw BAIL;
      const s = at + headBytes(b[at]);
      if (n === 0 || n > MAX_KEY_BYTES || s + n > end) throw BAIL;
      checkSoul(text(b, s, n));
      return s + n;
    }
  }
  throw BAIL; // str32, bin32, float32, non-canonical forms: valid, but for the general path
}

/** End of a string value of `n` bytes at `p` (valid UTF-8 within the value limit). */
function strEnd(b: Uint8Array, p: number, n: number, end: number): number {
  if (p + n > end || n > MAX_VALUE_BYTES) throw BAIL;
  for (let k = p; k < p + n; k++) {
    if (b[k] >= 0x80) { // not ASCII: must be valid UTF-8
      text(b, p, n);
      break;
    }
  }
  return p + n;
}

/** End of a bin value of `n` bytes at `p`. */
function binEnd(p: number, n: number, end: number): number {
  if (p + n > end || n > MAX_VALUE_BYTES) throw BAIL;
  return p + n;
}
