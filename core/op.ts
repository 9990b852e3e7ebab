/**
 * Ops, the unit of storage, replication and signatures, and their versioned
 * wire encoding.
 *
 * Encoding (MessagePack): `[1, op, op, ...]`, where `1` is the format version
 * and each op is `[soul, field, value, state, actor]` or with a sixth element
 * `sig`; `state` and `actor` are 8-byte bins (big-endian), `value` is nil,
 * bool, number, str, bin or the map `{"#": soul}` for a link. Decoding checks
 * the size first and the shape after, and rejects anything else.
 *
 * @example
 * ```ts
 * import { decodeOps, encodeOps } from "./op.ts";
 * const op = { soul: "a", field: "x", value: 1, state: "018bcfe568000000", actor: "00000000000000ff" };
 * console.log(decodeOps(encodeOps([op]))[0].value); // 1
 * ```
 *
 * @module
 */
import { hexWord, hlcFromWords, hlcWords, isLowerHex16 } from "./clock.ts";
import { decode, encodeParts, type MsgValue, type PartWriter } from "./msgpack.ts";
import { readOpRecords } from "./op_reader.ts";
import { checkField, checkSoul, checkValue, type Value } from "./value.ts";
import { decodeValue, encodeValue, valueFromMsg } from "./value_encoding.ts";
import type { FieldRecord } from "./store.ts";

/**
 * One write of one field.
 *
 * @example
 * ```ts
 * import { open, type Op } from "../mod.ts";
 * const db = await open({ storage: "memory" });
 * await db.put("alice", { name: "Alice" });
 * const [op]: Op[] = (await db.exportOps()).ops;
 * console.log(op.soul, op.field, op.value, op.state.length, op.actor === db.actor); // alice name Alice 16 true
 * await db.close();
 * ```
 */
export interface Op {
  readonly soul: string;
  readonly field: string;
  /** The new value; `null` deletes the field (a tombstone). */
  readonly value: Value;
  /** Hybrid logical clock of the write (16 hex digits). */
  readonly state: string;
  /** The writer's 64-bit actor id (16 hex digits). */
  readonly actor: string;
  /** Signature of a protected write, when present. */
  readonly sig?: Uint8Array;
}

/** Version of the op encoding written by {@link encodeOps}. */
export const OPS_FORMAT_VERSION = 1;
/** Largest encoded batch {@link decodeOps} accepts by default (64 MiB). */
export const MAX_OPS_BYTES = 64 * 1024 * 1024;

/** Whether `s` is a 64-bit id in 16 lowercase hex digits. */
export function isHex64(s: unknown): s is string {
  return isLowerHex16(s);
}

/** 16 hex digits → 8 bytes. */
export function hex64ToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** 8 bytes → 16 hex digits. */
export function bytesToHex64(b: Uint8Array): string {
  const word = (i: number) => (b[i] << 24 | b[i + 1] << 16 | b[i + 2] << 8 | b[i + 3]) >>> 0;
  return hlcFromWords(word(0), word(4));
}

/**
 * The two 32-bit words (high, low) of an actor id, as records keep them. An
 * actor id is 16 hex digits, written as a clock state is, so it is read as one.
 */
export function actorWords(actor: string): [number, number] {
  return hlcWords(actor);
}

/** The actor id (16 lowercase hex digits) whose 32-bit words are `actorHi` and `actorLo`. */
export function actorFromWords(actorHi: number, actorLo: number): string {
  return hlcFromWords(actorHi, actorLo);
}

/** The last actor {@link recordToOp} wrote out, by its words: a batch mostly has one writer. */
let lastActorHi = -1, lastActorLo = -1, lastActor = "";

/** A stored record → the op it represents. */
export function recordToOp(r: FieldRecord): Op {
  if (r.actorHi !== lastActorHi || r.actorLo !== lastActorLo) {
    lastActorHi = r.actorHi, lastActorLo = r.actorLo, lastActor = actorFromWords(r.actorHi, r.actorLo);
  }
  const op = {
    soul: r.soul,
    field: r.field,
    value: decodeValue(r.value),
    state: hlcFromWords(r.stateHi, r.stateLo),
    actor: lastActor,
  };
  return r.sig ? { ...op, sig: r.sig } : op;
}

/** An op → a record to store. */
export function opToRecord(op: Op): FieldRecord {
  const [stateHi, stateLo] = hlcWords(op.state), [actorHi, actorLo] = actorWords(op.actor);
  const r = {
    soul: op.soul,
    field: op.field,
    value: encodeValue(op.value),
    stateHi,
    stateLo,
    actorHi,
    actorLo,
  };
  return op.sig ? { ...r, sig: op.sig } : r;
}

/** Throws unless `op` is a well-formed op (used on every foreign op before it is merged). */
export function checkOp(op: unknown): asserts op is Op {
  checkOpWords(op, new OpWords());
}

/** An op's state and actor as 32-bit words, as {@link checkOpWords} leaves them. */
export class OpWords {
  stateHi = 0;
  stateLo = 0;
  actorHi = 0;
  actorLo = 0;
  /** The actor the words `actorHi`, `actorLo` are of (checked). */
  actor = "";
  /** The soul checked last. */
  soul = "";
}

/**
 * {@link checkOp}, which also leaves the op's state and actor in `words` as
 * 32-bit words: the hex digits are checked and read in one pass, and an
 * actor equal to the one `words` last held (the usual case: a batch mostly
 * has one writer) is neither checked nor read again, nor is a soul equal to
 * the one checked last (a batch mostly lists a node's fields together).
 */
export function checkOpWords(op: unknown, words: OpWords): asserts op is Op {
  if (typeof op !== "object" || op === null) throw new TypeError("An op must be an object");
  const o = op as Record<string, unknown>;
  const soul = o.soul;
  if (soul !== words.soul || soul === "") {
    checkSoul(soul);
    words.soul = soul;
  }
  checkField(o.field);
  checkValue(o.value, o.soul as string, o.field as string);
  const state = o.state;
  if (typeof state !== "string" || state.length !== 16) throw badId("state", state);
  const stateHi = hexWord(state, 0), stateLo = hexWord(state, 8);
  if (stateHi < 0 || stateLo < 0) throw badId("state", state);
  const actor = o.actor;
  if (actor !== words.actor || actor === "") {
    if (typeof actor !== "string" || actor.length !== 16) throw badId("actor", actor);
    const actorHi = hexWord(actor, 0), actorLo = hexWord(actor, 8);
    if (actorHi < 0 || actorLo < 0) throw badId("actor", actor);
    words.actorHi = actorHi, words.actorLo = actorLo, words.actor = actor;
  }
  if (o.sig !== undefined && !(o.sig instanceof Uint8Array)) {
    throw new TypeError("Op sig must be a Uint8Array");
  }
  words.stateHi = stateHi, words.stateLo = stateLo;
}

const badId = (what: "state" | "actor", v: unknown): RangeError =>
  new RangeError(`Op ${what} must be 16 hex digits, got ${JSON.stringify(v)}`);

/** Encodes ops for storage or the wire (`[1, op, op, ...]`, written straight into one buffer). */
export function encodeOps(ops: readonly Op[]): Uint8Array {
  return encodeParts((w) => {
    w.arrayHeader(ops.length + 1);
    w.value(OPS_FORMAT_VERSION);
    for (const op of ops) {
      w.arrayHeader(op.sig ? 6 : 5);
      w.value(op.soul);
      w.value(op.field);
      w.value(op.value as MsgValue);
      hexBin(w, op.state);
      hexBin(w, op.actor);
      if (op.sig) w.value(op.sig);
    }
  });
}

/** 16 hex digits as a bin of 8 bytes (exactly as `hex64ToBytes`, without its array for valid digits). */
function hexBin(w: PartWriter, hex: string): void {
  w.binHeader(8);
  w.ensure(8);
  const buf = w.buf, at = w.pos;
  let bad = hex.length !== 16;
  for (let i = 0; i < 8 && !bad; i++) {
    const hi = nibble(hex, 2 * i), lo = nibble(hex, 2 * i + 1);
    if (hi < 0 || lo < 0) bad = true;
    else buf[at + i] = (hi << 4) | lo;
  }
  if (bad) buf.set(hex64ToBytes(hex), at); // not an id: whatever parseInt makes of it, as before
  w.pos = at + 8;
}

/** The value of hex digit `at` of `s`, -1 when it is not one. */
function nibble(s: string, at: number): number {
  const c = s.charCodeAt(at);
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Decodes ops encoded by {@link encodeOps}. Throws `RangeError` when `bytes`
 * exceeds `maxBytes` (checked before parsing) and `SyntaxError` on a
 * malformed encoding, unknown version or invalid op; nothing is partially
 * returned.
 */
export function decodeOps(bytes: Uint8Array, maxBytes: number = MAX_OPS_BYTES): Op[] {
  if (bytes instanceof Uint8Array && bytes.length <= maxBytes) {
    // What Lattice writes: read without a MessagePack tree (see decodeOpRecords), then made ops.
    const records = readOpRecords(bytes, OPS_FORMAT_VERSION);
    if (records !== undefined) return records.map(recordToOp);
  }
  return decodeOpsTree(bytes, maxBytes);
}

/**
 * The general decoder behind {@link decodeOps}: through a MessagePack tree,
 * for any valid encoding, with every check and error. (Exported for tests,
 * which hold the fast reader to it.)
 */
export function decodeOpsTree(bytes: Uint8Array, maxBytes: number = MAX_OPS_BYTES): Op[] {
  const root = decodeRoot(bytes, maxBytes);
  const ops: Op[] = new Array(root.length - 1);
  for (let i = 1; i < root.length; i++) ops[i - 1] = opFromTuple(root[i], i - 1);
  return ops;
}

/**
 * Decodes ops as {@link decodeOps} does — same checks, same errors — into
 * records to store: state and actor as 32-bit words, values in their
 * canonical encoding. What Lattice writes is read straight into records;
 * anything else goes through the tree decoder's ops. Internal to the
 * database's apply path.
 */
export function decodeOpRecords(bytes: Uint8Array, maxBytes: number = MAX_OPS_BYTES): FieldRecord[] {
  if (bytes instanceof Uint8Array && bytes.length <= maxBytes) {
    const fast = readOpRecords(bytes, OPS_FORMAT_VERSION); // what Lattice writes, read without a MessagePack tree
    if (fast !== undefined) return fast;
  }
  return decodeOpsTree(bytes, maxBytes).map(opToRecord);
}

function decodeRoot(bytes: Uint8Array, maxBytes: number): MsgValue[] {
  const root = decode(bytes, { maxBytes, maxDepth: 4 });
  if (!Array.isArray(root) || root.length === 0) {
    throw new SyntaxError("Cannot decode ops: not a versioned op list");
  }
  if (root[0] !== OPS_FORMAT_VERSION) {
    throw new SyntaxError(`Cannot decode ops: unsupported format version ${JSON.stringify(root[0])}`);
  }
  return root;
}

/** The error for op `index` of a batch. */
const opError = (index: number, why: string): SyntaxError =>
  new SyntaxError(`Cannot decode op ${index}: ${why}`);

/** Op tuple `index` split into its parts, its shape checked (state, actor and sig as bytes). */
function tupleParts(
  t: MsgValue,
  index: number,
): {
  soul: MsgValue;
  field: MsgValue;
  raw: MsgValue;
  state: Uint8Array;
  actor: Uint8Array;
  sig?: Uint8Array;
} {
  if (!Array.isArray(t) || (t.length !== 5 && t.length !== 6)) throw opError(index, "not an op tuple");
  const soul = t[0], field = t[1], raw = t[2], state = t[3], actor = t[4], sig = t[5];
  if (!(state instanceof Uint8Array) || state.length !== 8) throw opError(index, "state is not 8 bytes");
  if (!(actor instanceof Uint8Array) || actor.length !== 8) throw opError(index, "actor is not 8 bytes");
  if (sig !== undefined && !(sig instanceof Uint8Array)) throw opError(index, "sig is not bytes");
  return { soul, field, raw, state, actor, sig };
}

function opFromTuple(t: MsgValue, index: number): Op {
  const bad = (why: string): never => {
    throw opError(index, why);
  };
  const { soul, field, raw, state, actor, sig } = tupleParts(t, index);
  let value: Value;
  try {
    value = valueFromMsg(raw);
  } catch (e) {
    return bad((e as Error).message);
  }
  const op: Op = sig === undefined
    ? {
      soul: soul as string,
      field: field as string,
      value,
      state: bytesToHex64(state),
      actor: bytesToHex64(actor),
    }
    : {
      soul: soul as string,
      field: field as string,
      value,
      state: bytesToHex64(state),
      actor: bytesToHex64(actor),
      sig,
    };
  try {
    checkOp(op);
  } catch (e) {
    return bad((e as Error).message);
  }
  return op;
}
