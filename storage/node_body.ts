/**
 * The encoding of one node's fields in a single SQLite row (`nodes.body`,
 * schema version 2): one row per node instead of one per field makes writes
 * and reads of whole nodes one B-tree operation each.
 *
 * Format: byte 1 (the format), then varint field count, then per field in
 * field order (UTF-8 byte order, which is code point order): varint length
 * and UTF-8 bytes of the field name, varint length and bytes of the value,
 * stateHi, stateLo, actorHi, actorLo as little-endian u32, varint seq, varint (sig length + 1)
 * or 0 for no sig, the sig bytes. Varints are unsigned LEB128 up to 2^53.
 *
 * @module
 */
import { ByteWriter, putBytes } from "../core/byte_writer.ts";
import { NameTable } from "../core/names.ts";
import type { NodeData } from "../core/value.ts";
import { decodeValueAt, isTombstone, setField } from "../core/value_encoding.ts";
import { compareCodePoints } from "../core/order.ts";
import { type FieldRecord, type StoredRecord, storedRecord } from "../core/store.ts";

const FORMAT = 1;
const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The buffer of {@link encodeBody}, reused between calls. */
const scratch = new ByteWriter(4096);

function varint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
  return pos;
}

/** Encodes a node's records, which must be in field order with each field once, into a new array. */
export function encodeBody(records: readonly StoredRecord[]): Uint8Array {
  scratch.pos = 0;
  return writeBody(scratch, records).slice();
}

/**
 * Appends the body of a node's records (in field order, each field once) to
 * `w` and returns a view of it, which stays valid as long as it is kept,
 * also if `w` grows later. Writing many bodies into one buffer spares a new
 * `ArrayBuffer` per body: on Deno each costs about 1 µs, more than encoding.
 */
export function writeBody(w: ByteWriter, records: readonly StoredRecord[]): Uint8Array {
  return writeFields(w, records, 0, records.length, -1);
}

/** {@link writeBody} of the records of a {@link RecordRun}, with their seqs. */
export function writeRunBody(w: ByteWriter, run: RecordRun): Uint8Array {
  return writeFields(w, run.records, run.start, run.end, run.first);
}

/** The body of `records[from, to)`; seqs are the records' own, or `first + index` when `first ≥ 0`. */
function writeFields(
  w: ByteWriter,
  records: readonly FieldRecord[],
  from: number,
  to: number,
  first: number,
): Uint8Array {
  const start = w.pos;
  let pos = start;
  w.ensure(16);
  w.buf[pos++] = FORMAT;
  pos = varint(w.buf, pos, to - from);
  for (let i = from; i < to; i++) {
    const r = records[i];
    const f = r.field, value = r.value;
    w.pos = pos;
    w.ensure(10 + f.length * 3 + 10 + value.length + 16 + 20 + (r.sig?.length ?? 0));
    const out = w.buf, view = w.view;
    // Field name: ASCII written directly, anything else through the encoder.
    let ascii = true;
    for (let k = 0; k < f.length; k++) {
      if (f.charCodeAt(k) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      pos = varint(out, pos, f.length);
      for (let k = 0; k < f.length; k++) out[pos + k] = f.charCodeAt(k);
      pos += f.length;
    } else {
      const bytes = utf8.encode(f);
      pos = varint(out, pos, bytes.length);
      out.set(bytes, pos);
      pos += bytes.length;
    }
    pos = varint(out, pos, value.length);
    putBytes(out, pos, value);
    pos += value.length;
    view.setUint32(pos, r.stateHi, true);
    view.setUint32(pos + 4, r.stateLo, true);
    view.setUint32(pos + 8, r.actorHi, true);
    view.setUint32(pos + 12, r.actorLo, true);
    pos = varint(out, pos + 16, first < 0 ? (r as StoredRecord).seq : first + i);
    if (r.sig === undefined) out[pos++] = 0;
    else {
      pos = varint(out, pos, r.sig.length + 1);
      out.set(r.sig, pos);
      pos += r.sig.length;
    }
  }
  w.pos = pos;
  return w.buf.subarray(start, pos);
}

/** Field names of stored nodes seen recently (stored names were checked when written). */
const names = new NameTable(1024);

/** Where the decoder of {@link decodeBody} is in the body (synchronous: one module-level cursor). */
let at = 0;

function ended(): never {
  throw new RangeError("A stored node body ends early");
}

/** The varint at {@link at} of `b`. */
function varintAt(b: Uint8Array): number {
  let n = 0, mul = 1;
  for (let i = 0; i < 8; i++) {
    if (at >= b.length) ended();
    const byte = b[at++];
    n += (byte & 0x7f) * mul;
    if (byte < 0x80) return n;
    mul *= 0x80;
  }
  throw new RangeError("A stored node body has a bad varint");
}

/** The little-endian 32-bit word at `p` of `b`. */
const u32 = (b: Uint8Array, p: number): number =>
  (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;

/** Checks a body's format and reads its field count, leaving {@link at} after it. */
function openBody(soul: string, b: Uint8Array): number {
  if (b.length < 1) ended();
  if (b[0] !== FORMAT) {
    throw new RangeError(`Stored node ${JSON.stringify(soul)} has body format ${b[0]}`);
  }
  at = 1;
  const count = varintAt(b);
  if (count > b.length) ended(); // a field takes more than a byte
  return count;
}

/** Throws unless the decoder ended exactly at the end of the body. */
function closeBody(soul: string, b: Uint8Array): void {
  if (at !== b.length) throw new RangeError(`Stored node ${JSON.stringify(soul)} has trailing bytes`);
}

/** The field name of `n` bytes at `p`: from the table of recent ones when ASCII. */
const fieldName = (b: Uint8Array, p: number, n: number): string =>
  names.ascii(b, p, n) ?? utf8d.decode(b.subarray(p, p + n));

/**
 * Decodes a body into the node's records (values and sigs are views into
 * `body`), in field order. Field names come from a table of recent ones
 * when they are there, so a scan of many nodes with the same fields makes
 * no new strings for them.
 */
export function decodeBody(soul: string, body: Uint8Array): StoredRecord[] {
  const b = body, end = b.length;
  const count = openBody(soul, b);
  const records: StoredRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = varintAt(b);
    if (at + n > end) ended();
    const field = fieldName(b, at, n);
    at += n;
    const vn = varintAt(b);
    if (at + vn + 16 > end) ended();
    const value = b.subarray(at, at + vn);
    const p = at + vn;
    const stateHi = u32(b, p), stateLo = u32(b, p + 4), actorHi = u32(b, p + 8), actorLo = u32(b, p + 12);
    at = p + 16;
    const seq = varintAt(b);
    const sigLen = varintAt(b);
    if (sigLen === 0) records[i] = { soul, field, value, stateHi, stateLo, actorHi, actorLo, seq };
    else {
      if (at + sigLen - 1 > end) ended();
      const sig = b.subarray(at, at + sigLen - 1);
      at += sigLen - 1;
      records[i] = { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig, seq };
    }
  }
  closeBody(soul, b);
  return records;
}

/**
 * The live fields of a body as data (as `nodeData(decodeBody(...))` gives
 * them), decoded straight from the bytes: no record or view per field. A
 * read of a whole node for a caller (get, list) needs nothing more.
 * `undefined` when every field is a tombstone.
 */
export function bodyData(soul: string, body: Uint8Array): NodeData | undefined {
  const b = body, end = b.length;
  const count = openBody(soul, b);
  let data: NodeData | undefined;
  for (let i = 0; i < count; i++) {
    const n = varintAt(b);
    if (at + n > end) ended();
    const fieldAt = at;
    at += n;
    const vn = varintAt(b);
    const v = at;
    if (v + vn + 16 > end) ended();
    at = v + vn + 16;
    varintAt(b); // seq
    const sigLen = varintAt(b);
    if (sigLen > 0) {
      if (at + sigLen - 1 > end) ended();
      at += sigLen - 1;
    }
    if (vn === 1 && b[v] === 0xc0) continue; // a tombstone
    setField(data ??= {}, fieldName(b, fieldAt, n), decodeValueAt(b, v, v + vn));
  }
  closeBody(soul, b);
  return data;
}

/** Whether a body has a live (non-tombstone) field; read only as far as the first one. */
export function bodyLive(soul: string, body: Uint8Array): boolean {
  const b = body, end = b.length;
  const count = openBody(soul, b);
  for (let i = 0; i < count; i++) {
    const n = varintAt(b); // the field name's length (read before `at` moves past it)
    at += n;
    const vn = varintAt(b);
    if (at + vn + 16 > end) ended();
    if (vn !== 1 || b[at] !== 0xc0) return true;
    at += vn + 16;
    varintAt(b); // seq
    const sigLen = varintAt(b);
    if (sigLen > 0) {
      if (at + sigLen - 1 > end) ended();
      at += sigLen - 1;
    }
  }
  return false;
}

/** Whether one of `records[from, to)` is live (not a tombstone). */
export function recordsLive(records: readonly FieldRecord[], from = 0, to = records.length): boolean {
  for (let i = from; i < to; i++) if (!isTombstone(records[i].value)) return true;
  return false;
}

/**
 * The records `records[start, end)` of one node in a commit batch, in field
 * order with each field once, whose seqs are `first + index`: a large batch
 * is written into node bodies straight from its records, with no stored
 * record made per field.
 */
export class RecordRun {
  constructor(
    readonly records: readonly FieldRecord[],
    readonly start: number,
    readonly end: number,
    readonly first: number,
  ) {}

  /** The highest seq of the run. */
  get seq(): number {
    return this.first + this.end - 1;
  }

  /** The run as stored records. */
  stored(): StoredRecord[] {
    const out: StoredRecord[] = new Array(this.end - this.start);
    for (let i = this.start; i < this.end; i++) {
      out[i - this.start] = storedRecord(this.records[i], this.first + i);
    }
    return out;
  }
}

/**
 * Records of one node to write: a map field → record, an array in field
 * order with one record per field, or a {@link RecordRun}.
 */
export type NodeRecords = ReadonlyMap<string, StoredRecord> | readonly StoredRecord[] | RecordRun;

const byField = (a: StoredRecord, b: StoredRecord): number => compareCodePoints(a.field, b.field);

/**
 * A node's stored records merged with newer ones: a field takes the record
 * with the higher seq. Returns the merged records in field order, or
 * `undefined` when nothing changes. (A new node's records given in field
 * order are returned as they are.)
 */
export function mergeNode(
  stored: readonly StoredRecord[],
  incoming: NodeRecords,
): StoredRecord[] | undefined {
  if (incoming instanceof RecordRun) incoming = incoming.stored();
  const list = Array.isArray(incoming) ? incoming as readonly StoredRecord[] : undefined;
  if (stored.length === 0) {
    return list !== undefined ? list as StoredRecord[] : [...incoming.values()].sort(byField);
  }
  const fields = new Map<string, StoredRecord>();
  for (const r of stored) fields.set(r.field, r);
  let changed = false, added = false;
  for (const r of list ?? incoming.values()) {
    const cur = fields.get(r.field);
    if (cur !== undefined && cur.seq >= r.seq) continue;
    if (cur === undefined) added = true;
    fields.set(r.field, r);
    changed = true;
  }
  if (!changed) return undefined;
  const merged = [...fields.values()];
  // Replacing fields keeps the stored order; only new fields need a sort.
  return added ? merged.sort(byField) : merged;
}

/**
 * `records` (of one node) in field order with one record per field, the
 * later of two for a field kept. Sorts in place.
 */
export function sortFields(records: StoredRecord[]): StoredRecord[] {
  records.sort(byField); // stable: of equal fields, the later stays later
  let n = 0;
  for (let i = 0; i < records.length; i++) {
    if (n > 0 && records[n - 1].field === records[i].field) records[n - 1] = records[i];
    else records[n++] = records[i];
  }
  records.length = n;
  return records;
}

/** The highest seq of a node's records. */
export function nodeSeq(records: readonly StoredRecord[]): number {
  let max = 0;
  for (const r of records) if (r.seq > max) max = r.seq;
  return max;
}

/** The record of `field` among a node's records in field order. */
export function findField(records: readonly StoredRecord[], field: string): StoredRecord | undefined {
  let lo = 0, hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareCodePoints(records[mid].field, field);
    if (c === 0) return records[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return undefined;
}
