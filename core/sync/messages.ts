/**
 * The messages of the sync protocol (docs/PROTOCOL.md): a MessagePack array
 * `[version, type, ...]`, either RECONCILE (ranges of the id space, each
 * skipped, fingerprinted, listed or peeled, and the ids wanted) or OPS (an
 * op batch, as `core/op.ts` encodes it, in a bin).
 *
 * Decoders treat their input as hostile: the size is checked first, then the
 * shape; an OPS message of more than {@link MAX_FRAME_OPS} ops is refused
 * from its batch's array header before any op is decoded. A session reads
 * an OPS message without decoding its batch ({@link readMessage}): the
 * database merges the bytes as they are.
 *
 * @module
 */
import { decode, encode, type MsgValue } from "../msgpack.ts";
import { decodeOps, encodeOps, type Op } from "../op.ts";
import { FINGERPRINT_BYTES } from "./index_snapshot.ts";
import { ID_BYTES } from "./item_id.ts";
import {
  DEFAULT_MAX_FRAME_BYTES,
  MAX_FRAME_OPS,
  MODE_FINGERPRINT,
  MODE_IDS,
  MODE_PEEL,
  MODE_SKIP,
  MSG_OPS,
  MSG_RECONCILE,
  SYNC_VERSION,
} from "./protocol.ts";

/** One range of a reconcile message; its lower bound is the previous range's upper (or 0). */
export interface SyncRange {
  /** Exclusive upper bound: 1–16 bytes, zero-padded to 16 for comparison; `null` is +∞. */
  readonly upper: Uint8Array | null;
  readonly mode: typeof MODE_SKIP | typeof MODE_FINGERPRINT | typeof MODE_IDS | typeof MODE_PEEL;
  /**
   * `MODE_FINGERPRINT`: sum (16 bytes) ‖ u32 count. `MODE_IDS`: the ids, 16 bytes each,
   * ascending. `MODE_PEEL`: one id. `MODE_SKIP`: absent.
   */
  readonly payload?: Uint8Array;
}

/** A decoded protocol message. */
export type SyncMessage =
  | { readonly type: "reconcile"; readonly ranges: readonly SyncRange[]; readonly need: Uint8Array }
  | { readonly type: "ops"; readonly ops: readonly Op[] };

const ZERO = new Uint8Array(0);

/** Compares two bounds as zero-padded 16-byte big-endian numbers. */
export function compareBounds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = i < a.length ? a[i] : 0, y = i < b.length ? b[i] : 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/** Encodes a message as its MessagePack payload. */
export function encodeMessage(msg: SyncMessage): Uint8Array {
  if (msg.type === "ops") return encodeOpsMessage(encodeOps(msg.ops));
  const flat: MsgValue[] = [];
  for (const r of msg.ranges) flat.push(r.upper, r.mode, r.mode === MODE_SKIP ? null : r.payload ?? ZERO);
  return encode([SYNC_VERSION, MSG_RECONCILE, flat, msg.need]);
}

/**
 * The payload of an OPS message carrying `batch`, an op batch already
 * encoded (`encodeOps`, or `encodeRecordsAsOps` from records).
 */
export function encodeOpsMessage(batch: Uint8Array): Uint8Array {
  return encode([SYNC_VERSION, MSG_OPS, batch]);
}

/**
 * Decodes a message payload. Checks the size first (`RangeError` beyond
 * `maxBytes`, or an OPS message of more than {@link MAX_FRAME_OPS} ops), then the shape: an unknown version or type, a malformed range
 * list (bounds not strictly ascending, ids out of their range or order,
 * wrong lengths) or invalid ops are a `SyntaxError`.
 */
export function decodeMessage(payload: Uint8Array, maxBytes: number = DEFAULT_MAX_FRAME_BYTES): SyncMessage {
  const msg = readMessage(payload, maxBytes);
  if (msg.type !== "ops-bytes") return msg;
  try {
    return { type: "ops", ops: decodeOps(msg.bytes, maxBytes) };
  } catch (e) {
    throw new SyntaxError(`Cannot decode sync message: ${(e as Error).message}`);
  }
}

/** A decoded reconcile message. */
export type Reconcile = Extract<SyncMessage, { type: "reconcile" }>;

/** An OPS message as received: its op batch still encoded, and how many ops its header announces. */
export interface OpsBytes {
  readonly type: "ops-bytes";
  readonly bytes: Uint8Array;
  readonly count: number;
}

/**
 * The ops an op batch's root array header announces (`[1, op...]`: its
 * length less one), or -1 when it starts with no array header (the decoder
 * reports that).
 */
function announcedOps(b: Uint8Array): number {
  const t = b.length > 0 ? b[0] : 0;
  if (t >= 0x91 && t <= 0x9f) return (t & 0x0f) - 1;
  if (t === 0xdc && b.length >= 3) return ((b[1] << 8) | b[2]) - 1;
  if (t === 0xdd && b.length >= 5) return (((b[1] << 24) | (b[2] << 16) | (b[3] << 8) | b[4]) >>> 0) - 1;
  return -1;
}

/**
 * {@link decodeMessage} without decoding the ops of an OPS message: its
 * batch is handed back encoded (a session merges it as it is), after the op
 * count its header announces is checked against {@link MAX_FRAME_OPS}
 * (`RangeError`), so an oversized batch costs no decoding at all.
 */
export function readMessage(payload: Uint8Array, maxBytes: number): Reconcile | OpsBytes {
  if (payload.length > maxBytes) {
    throw new RangeError(
      `Cannot decode sync message: ${payload.length} bytes exceed the limit of ${maxBytes}`,
    );
  }
  const root = decode(payload, { maxBytes, maxDepth: 2 });
  const bad = (why: string): never => {
    throw new SyntaxError(`Cannot decode sync message: ${why}`);
  };
  if (!Array.isArray(root) || root.length < 2) return bad("not a versioned message");
  if (root[0] !== SYNC_VERSION) return bad(`unsupported version ${JSON.stringify(root[0])}`);
  if (root[1] === MSG_OPS) {
    if (root.length !== 3 || !(root[2] instanceof Uint8Array)) return bad("ops message is not [1, 2, bin]");
    const count = announcedOps(root[2]);
    if (count > MAX_FRAME_OPS) {
      throw new RangeError(
        `Cannot decode sync message: ${count} ops exceed the limit of ${MAX_FRAME_OPS} in one message`,
      );
    }
    return { type: "ops-bytes", bytes: root[2], count };
  }
  if (root[1] !== MSG_RECONCILE) return bad(`unknown message type ${JSON.stringify(root[1])}`);
  if (root.length !== 4) return bad("reconcile message is not [1, 1, ranges, need]");
  const [, , flat, need] = root;
  if (!Array.isArray(flat) || flat.length % 3 !== 0) return bad("ranges are not a list of triples");
  if (!(need instanceof Uint8Array) || need.length % ID_BYTES !== 0) return bad("need is not a list of ids");
  const ranges: SyncRange[] = [];
  let lower: Uint8Array = ZERO;
  for (let i = 0; i < flat.length; i += 3) {
    const [upper, mode, body] = [flat[i], flat[i + 1], flat[i + 2]];
    const at = `range ${i / 3}`;
    if (lower === null) return bad(`${at} follows the range ending at +∞`);
    if (upper !== null) {
      if (!(upper instanceof Uint8Array) || upper.length === 0 || upper.length > ID_BYTES) {
        return bad(`${at} bound is not 1-16 bytes or nil`);
      }
      if (compareBounds(upper, lower) <= 0) return bad(`${at} bound is not above the previous one`);
    }
    if (mode === MODE_SKIP) {
      if (body !== null) return bad(`${at} skip has a payload`);
      ranges.push({ upper, mode });
    } else if (mode === MODE_FINGERPRINT) {
      if (!(body instanceof Uint8Array) || body.length !== FINGERPRINT_BYTES) {
        return bad(`${at} fingerprint is not ${FINGERPRINT_BYTES} bytes`);
      }
      ranges.push({ upper, mode, payload: body });
    } else if (mode === MODE_IDS) {
      if (!(body instanceof Uint8Array) || body.length % ID_BYTES !== 0) {
        return bad(`${at} ids are not 16-byte ids`);
      }
      let prev: Uint8Array | undefined;
      for (let k = 0; k < body.length; k += ID_BYTES) {
        const id = body.subarray(k, k + ID_BYTES);
        if (prev ? compareBounds(id, prev) <= 0 : compareBounds(id, lower) < 0) {
          return bad(`${at} ids are not ascending from the range's lower bound`);
        }
        if (upper !== null && compareBounds(id, upper) >= 0) return bad(`${at} has an id beyond its bound`);
        prev = id;
      }
      ranges.push({ upper, mode, payload: body });
    } else if (mode === MODE_PEEL) {
      if (!(body instanceof Uint8Array) || body.length !== ID_BYTES) return bad(`${at} peel is not one id`);
      if (compareBounds(body, lower) < 0 || (upper !== null && compareBounds(body, upper) >= 0)) {
        return bad(`${at} peel id is outside its range`);
      }
      ranges.push({ upper, mode, payload: body });
    } else return bad(`${at} has unknown mode ${JSON.stringify(mode)}`);
    lower = upper as Uint8Array;
  }
  return { type: "reconcile", ranges, need };
}
