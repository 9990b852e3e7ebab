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
import { isHlc } from "./clock.ts";
import { decode, encode, type MsgValue } from "./msgpack.ts";
import { checkField, checkSoul, checkValue, type Value, valueFromMsg } from "./value.ts";

/** One write of one field. */
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

const HEX64 = /^[0-9a-f]{16}$/;

/** Whether `s` is a 64-bit id in 16 lowercase hex digits. */
export function isHex64(s: unknown): s is string {
  return typeof s === "string" && HEX64.test(s);
}

/** 16 hex digits → 8 bytes. */
export function hex64ToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** 8 bytes → 16 hex digits. */
export function bytesToHex64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 8; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

/** Throws unless `op` is a well-formed op (used on every foreign op before it is merged). */
export function checkOp(op: unknown): asserts op is Op {
  if (typeof op !== "object" || op === null) throw new TypeError("An op must be an object");
  const o = op as Record<string, unknown>;
  checkSoul(o.soul);
  checkField(o.field);
  checkValue(o.value, `${o.soul}.${o.field}`);
  if (!isHlc(o.state)) throw new RangeError(`Op state must be 16 hex digits, got ${JSON.stringify(o.state)}`);
  if (!isHex64(o.actor)) {
    throw new RangeError(`Op actor must be 16 hex digits, got ${JSON.stringify(o.actor)}`);
  }
  if (o.sig !== undefined && !(o.sig instanceof Uint8Array)) {
    throw new TypeError("Op sig must be a Uint8Array");
  }
}

/** Encodes ops for storage or the wire. */
export function encodeOps(ops: readonly Op[]): Uint8Array {
  const out: MsgValue[] = [OPS_FORMAT_VERSION];
  for (const op of ops) {
    const t: MsgValue[] = [
      op.soul,
      op.field,
      op.value as MsgValue,
      hex64ToBytes(op.state),
      hex64ToBytes(op.actor),
    ];
    if (op.sig) t.push(op.sig);
    out.push(t);
  }
  return encode(out);
}

/**
 * Decodes ops encoded by {@link encodeOps}. Throws `RangeError` when `bytes`
 * exceeds `maxBytes` (checked before parsing) and `SyntaxError` on a
 * malformed encoding, unknown version or invalid op; nothing is partially
 * returned.
 */
export function decodeOps(bytes: Uint8Array, maxBytes: number = MAX_OPS_BYTES): Op[] {
  const root = decode(bytes, { maxBytes, maxDepth: 4 });
  if (!Array.isArray(root) || root.length === 0) {
    throw new SyntaxError("Cannot decode ops: not a versioned op list");
  }
  if (root[0] !== OPS_FORMAT_VERSION) {
    throw new SyntaxError(`Cannot decode ops: unsupported format version ${JSON.stringify(root[0])}`);
  }
  const ops: Op[] = new Array(root.length - 1);
  for (let i = 1; i < root.length; i++) ops[i - 1] = opFromTuple(root[i], i - 1);
  return ops;
}

function opFromTuple(t: MsgValue, index: number): Op {
  const bad = (why: string): never => {
    throw new SyntaxError(`Cannot decode op ${index}: ${why}`);
  };
  if (!Array.isArray(t) || (t.length !== 5 && t.length !== 6)) return bad("not an op tuple");
  const [soul, field, raw, state, actor, sig] = t;
  if (!(state instanceof Uint8Array) || state.length !== 8) return bad("state is not 8 bytes");
  if (!(actor instanceof Uint8Array) || actor.length !== 8) return bad("actor is not 8 bytes");
  if (sig !== undefined && !(sig instanceof Uint8Array)) return bad("sig is not bytes");
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
