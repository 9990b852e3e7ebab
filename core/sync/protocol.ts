/**
 * The anti-entropy sync protocol `/lattice/sync/1.0.0`: range-based set
 * reconciliation (Meyer, "Range-Based Set Reconciliation"; negentropy) over
 * the item ids of {@link SyncIndex}, with the records each side lacks pushed
 * as ops. Bytes exchanged grow with the difference, not with the dataset.
 * docs/PROTOCOL.md specifies the messages; this file is the reference.
 *
 * Frames are `flag ‖ payload`: flag 0 = raw, 1 = payload compressed with
 * deflate-raw (used for payloads of at least {@link COMPRESS_MIN_BYTES} when it
 * helps). A payload is one MessagePack array `[version, type, ...]`.
 *
 * What a peer may cost a session: an OPS message of more than
 * {@link MAX_FRAME_OPS} ops is refused from its header before any op is
 * decoded; a peer that sends more than `maxRefused` ops this side must refuse
 * (beyond its horizon, over its deferral quota) ends the session with a
 * {@link SyncRefusedError}; merging yields to the event loop between frames.
 *
 * @example
 * ```ts
 * import { open } from "../../mod.ts";
 * import { channelPair, SyncIndex, syncSession } from "./mod.ts";
 * const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
 * await a.put("n", { x: 1 });
 * const [ia, ib] = [await SyncIndex.build(a), await SyncIndex.build(b)];
 * const [ca, cb] = channelPair();
 * await Promise.all([
 *   syncSession(a, ia, ca, { role: "initiator" }),
 *   syncSession(b, ib, cb, { role: "responder" }),
 * ]);
 * console.log(await b.get("n")); // { x: 1 }
 * ```
 *
 * @module
 */
import { type Database, recordToOp } from "../database.ts";
import { decode, encode, type MsgValue } from "../msgpack.ts";
import { decodeOps, encodeOps, type Op } from "../op.ts";
import { FINGERPRINT_BYTES, ID_BYTES, type IndexSnapshot, type SyncIndex } from "./index.ts";

/** The libp2p protocol id. */
export const SYNC_PROTOCOL = "/lattice/sync/1.0.0";
/** Version of the message encoding. */
export const SYNC_VERSION = 1;
/** Message type: reconciliation ranges and wanted ids; ends the sender's turn. */
export const MSG_RECONCILE = 1;
/** Message type: records (ops) for the peer. */
export const MSG_OPS = 2;
/** Range mode: nothing to do (the range matches). */
export const MODE_SKIP = 0;
/** Range mode: the sender's fingerprint of the range. */
export const MODE_FINGERPRINT = 1;
/** Range mode: every id the sender holds in the range. */
export const MODE_IDS = 2;
/**
 * Range mode: the sender's fingerprint of the range showed one item fewer
 * than the receiver's, and this id (receiver's sum minus sender's) is that
 * item: the receiver sends it if it holds it in the range, else describes the range.
 */
export const MODE_PEEL = 3;
/** Frame flag: payload as is. */
export const FLAG_RAW = 0;
/** Frame flag: payload compressed with deflate-raw. */
export const FLAG_DEFLATE = 1;
/** Payloads this large or larger are offered to compression. */
export const COMPRESS_MIN_BYTES = 1024;
/** Default limit of a frame and of a decompressed payload (4 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Smallest accepted `maxFrameBytes`: one op of the largest allowed value must fit. */
export const MIN_MAX_FRAME_BYTES = 1024 * 1024 + 64 * 1024;
/**
 * Most ops one OPS message may carry; read from the batch's array header,
 * before any op is decoded, so one frame costs at most this many decoded
 * records. Senders put at most {@link PUSH_BATCH} in one.
 */
export const MAX_FRAME_OPS = 4096;
/**
 * Default of {@link SyncOptions.maxRefused}: ops a peer may send in one
 * session that the receiver refuses (beyond its horizon, or deferred over the
 * peer's quota) before the session is ended with a {@link SyncRefusedError}.
 */
export const MAX_REFUSED_OPS = 64;
/** Records read and pushed per OPS message. */
const PUSH_BATCH = 1000;
/** Work between two yields to the event loop while a session merges what it receives, in ms. */
const INTAKE_SLICE_MS = 16;

/** How many sub-ranges a mismatched range is split into. */
const BUCKETS = 8;
/** A mismatched range with at most this many local items is answered with its ids. */
const ID_LIST_MAX = 8;

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

/** A bidirectional, message-framed transport (a libp2p stream adapter, or an in-process pair). */
export interface SyncChannel {
  send(frame: Uint8Array): Promise<void>;
  readonly frames: AsyncIterable<Uint8Array>;
  close(): void;
}

/** Options of {@link syncSession}. */
export interface SyncOptions {
  readonly role: "initiator" | "responder";
  readonly signal?: AbortSignal;
  /** Largest frame and decompressed payload accepted or sent (default 4 MiB). */
  readonly maxFrameBytes?: number;
  /** The peer's id: the source its ops are applied as (quotas, `recordsRefused`); default `"sync"`. */
  readonly peer?: string;
  /**
   * Refused ops (`recordsRefused`) a peer may send in the session before it
   * ends with a {@link SyncRefusedError} (default {@link MAX_REFUSED_OPS}).
   */
  readonly maxRefused?: number;
}

/**
 * A session ended because the peer sent more ops than `maxRefused` that this
 * side must refuse (stamped beyond its horizon, or deferred over the peer's
 * quota): a peer that sends them misbehaves (`net/network.ts` refuses it for
 * the cool-off). Matched by `name`.
 */
export class SyncRefusedError extends RangeError {
  override name = "SyncRefusedError";
}

/** What one session did. */
export interface SyncStats {
  /** Bytes of frames sent / received as they went over the channel. */
  bytesSent: number;
  bytesReceived: number;
  /** The same before compression (flag byte included). */
  rawBytesSent: number;
  rawBytesReceived: number;
  /** Round trips of reconcile messages. */
  rounds: number;
  /** Records pushed to the peer / received from it. */
  recordsSent: number;
  recordsReceived: number;
  /** Received records that won locally. */
  recordsApplied: number;
  /** Received records refused (stamped beyond the horizon, or deferred over the peer's quota). */
  recordsRefused: number;
  durationMs: number;
}

// ------------------------------------------------------------------ messages

const ZERO = new Uint8Array(0);

/** Compares two bounds as zero-padded 16-byte big-endian numbers. */
function compareBounds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = i < a.length ? a[i] : 0, y = i < b.length ? b[i] : 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/** Encodes a message as its MessagePack payload. */
export function encodeMessage(msg: SyncMessage): Uint8Array {
  if (msg.type === "ops") return encode([SYNC_VERSION, MSG_OPS, encodeOps(msg.ops)]);
  const flat: MsgValue[] = [];
  for (const r of msg.ranges) flat.push(r.upper, r.mode, r.mode === MODE_SKIP ? null : r.payload ?? ZERO);
  return encode([SYNC_VERSION, MSG_RECONCILE, flat, msg.need]);
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

type Reconcile = Extract<SyncMessage, { type: "reconcile" }>;

/** An OPS message as received: its op batch still encoded, and how many ops its header announces. */
interface OpsBytes {
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
function readMessage(payload: Uint8Array, maxBytes: number): Reconcile | OpsBytes {
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

// ------------------------------------------------------------------ frames

/** Reads `stream` to its end: `RangeError` (and the stream cancelled) as soon as more than `limit` bytes came. */
async function drain(stream: ReadableStream<Uint8Array>, limit: number, what: string): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new RangeError(`Cannot decode sync frame: ${what} exceeds the limit of ${limit} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) at += (out.set(c, at), c.length);
  return out;
}

/** The web-standard (de)compression streams, typed for bytes in and out. */
function codec(s: CompressionStream | DecompressionStream): ReadableWritablePair<Uint8Array, Uint8Array> {
  return s as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Wraps a payload in a frame, compressing it with deflate-raw when that is shorter. */
export async function encodeFrame(payload: Uint8Array): Promise<Uint8Array> {
  if (payload.length >= COMPRESS_MIN_BYTES) {
    const z = await drain(
      streamOf(payload).pipeThrough(codec(new CompressionStream("deflate-raw"))),
      payload.length,
      "compressed payload",
    ).catch(() => undefined); // incompressible: larger than the input, sent raw
    if (z && z.length + 1 < payload.length) {
      const out = new Uint8Array(z.length + 1);
      out[0] = FLAG_DEFLATE;
      out.set(z, 1);
      return out;
    }
  }
  const out = new Uint8Array(payload.length + 1);
  out[0] = FLAG_RAW;
  out.set(payload, 1);
  return out;
}

/**
 * Compressed bytes handed to the inflater at a time. Raw DEFLATE expands at
 * most 1032:1, and some runtimes inflate a whole input chunk before yielding
 * any output (Deno: a 1 MiB chunk became 1 GB at once), so output can pass
 * the limit by at most one slice's worth, ~4 MiB, before it is checked.
 */
const INFLATE_SLICE = 4096;

/**
 * Inflates raw DEFLATE `data`, feeding it in {@link INFLATE_SLICE} slices and
 * counting output as it comes: `RangeError` as soon as it passes `limit`.
 */
async function inflateBounded(data: Uint8Array, limit: number): Promise<Uint8Array> {
  const pair = codec(new DecompressionStream("deflate-raw"));
  const writer = pair.writable.getWriter();
  // Each write waits until the inflater took the slice: at most one slice is ahead of the reader.
  const feeding = (async () => {
    for (let at = 0; at < data.length; at += INFLATE_SLICE) {
      await writer.write(data.subarray(at, at + INFLATE_SLICE));
    }
    await writer.close();
  })();
  feeding.catch(() => {}); // a failure also errors the readable side, which reports it
  try {
    const out = await drain(pair.readable, limit, "decompressed payload");
    await feeding;
    return out;
  } catch (e) {
    await writer.abort(e).catch(() => {});
    throw e;
  }
}

/**
 * The payload of a frame. Throws `RangeError` when the frame or its
 * decompressed payload exceeds `maxBytes` (the compressed bytes are inflated
 * a few KiB at a time and output is counted as it comes, so a compression
 * bomb costs at most about `maxBytes` plus 4 MiB on every runtime) and
 * `SyntaxError` on an unknown flag or corrupt deflate data.
 */
export async function decodeFrame(
  frame: Uint8Array,
  maxBytes: number = DEFAULT_MAX_FRAME_BYTES,
): Promise<Uint8Array> {
  if (!(frame instanceof Uint8Array)) throw new TypeError("A sync frame must be a Uint8Array");
  if (frame.length > maxBytes + 1) {
    throw new RangeError(
      `Cannot decode sync frame: length ${frame.length} exceeds the limit of ${maxBytes + 1}`,
    );
  }
  if (frame.length < 2) throw new SyntaxError("Cannot decode sync frame: it is empty");
  if (frame[0] === FLAG_RAW) return frame.subarray(1);
  if (frame[0] !== FLAG_DEFLATE) throw new SyntaxError(`Cannot decode sync frame: unknown flag ${frame[0]}`);
  try {
    return await inflateBounded(frame.subarray(1), maxBytes);
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new SyntaxError(`Cannot decode sync frame: corrupt deflate data (${(e as Error).message})`);
  }
}

// ------------------------------------------------------------------ reconciliation

interface Reply {
  ranges: SyncRange[];
  /** Snapshot positions of records the peer lacks. */
  send: number[];
  /** Ids the peer holds and this side lacks, 16 bytes each. */
  need: Uint8Array[];
}

/** Builds reply ranges; fingerprints are filled in one batch at the end. */
class ReplyBuilder {
  readonly ranges: { upper: Uint8Array | null; mode: SyncRange["mode"]; payload?: Uint8Array }[] = [];
  readonly #fp: { at: number; start: number; end: number }[] = [];
  #lastUpper: Uint8Array = ZERO;
  bytes = 0;

  constructor(readonly snap: IndexSnapshot) {}

  /** Describes this side's items `[a, b)` of the range `[lower, upper)`: their ids, or split fingerprints. */
  describe(lower: Uint8Array, upper: Uint8Array | null, a: number, b: number): void {
    if (compareBounds(lower, this.#lastUpper) !== 0) this.#push(lower, MODE_SKIP);
    const c = b - a;
    if (c <= ID_LIST_MAX) {
      const ids = new Uint8Array(ID_BYTES * c);
      this.snap.copyIds(a, b, ids, 0);
      this.#push(upper, MODE_IDS, ids);
      return;
    }
    const buckets = Math.min(BUCKETS, c);
    for (let k = 0; k < buckets; k++) {
      const s = a + Math.floor((c * k) / buckets), e = a + Math.floor((c * (k + 1)) / buckets);
      const up = k === buckets - 1 ? upper : this.#boundBetween(e - 1, e);
      this.#fp.push({ at: this.ranges.length, start: s, end: e });
      this.#push(up, MODE_FINGERPRINT, new Uint8Array(FINGERPRINT_BYTES));
    }
  }

  /** Asks the peer for the one item `id` it is believed to hold more in `[lower, upper)`. */
  peel(lower: Uint8Array, upper: Uint8Array | null, id: Uint8Array): void {
    if (compareBounds(lower, this.#lastUpper) !== 0) this.#push(lower, MODE_SKIP);
    this.#push(upper, MODE_PEEL, id);
  }

  /** The shortest prefix of item `j`'s id that sorts above item `i`'s id. */
  #boundBetween(i: number, j: number): Uint8Array {
    const x = this.snap.id(i), y = this.snap.id(j);
    let n = 0;
    while (n < ID_BYTES - 1 && x[n] === y[n]) n++;
    return y.slice(0, n + 1);
  }

  #push(upper: Uint8Array | null, mode: SyncRange["mode"], payload?: Uint8Array): void {
    this.ranges.push(mode === MODE_SKIP ? { upper, mode } : { upper, mode, payload });
    this.bytes += 6 + (upper?.length ?? 0) +
      (payload?.length ?? 0);
    this.#lastUpper = upper ?? ZERO;
  }

  finish(): SyncRange[] {
    if (this.#fp.length > 0) {
      const fps = this.snap.fingerprints(this.#fp.map((f) => f.start), this.#fp.map((f) => f.end));
      this.#fp.forEach((f, k) => {
        this.ranges[f.at].payload = fps.subarray(FINGERPRINT_BYTES * k, FINGERPRINT_BYTES * (k + 1));
      });
    }
    // A trailing skip says nothing.
    while (this.ranges.length > 0 && this.ranges[this.ranges.length - 1].mode === MODE_SKIP) {
      this.ranges.pop();
    }
    return this.ranges;
  }
}

function countOf(fp: Uint8Array): number {
  return ((fp[16] << 24) | (fp[17] << 16) | (fp[18] << 8) | fp[19]) >>> 0;
}

/** The sum part of `a` minus that of `b`, modulo 2^128: an id. */
function subtract(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  let borrow = 0;
  for (let i = ID_BYTES - 1; i >= 0; i--) {
    const d = a[i] - b[i] - borrow;
    out[i] = d & 0xff;
    borrow = d < 0 ? 1 : 0;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The first message of a session: the whole id space. */
export function initialRanges(snap: IndexSnapshot): SyncRange[] {
  if (snap.size <= ID_LIST_MAX) {
    const ids = new Uint8Array(ID_BYTES * snap.size);
    snap.copyIds(0, snap.size, ids, 0);
    return [{ upper: null, mode: MODE_IDS, payload: ids }];
  }
  return [{ upper: null, mode: MODE_FINGERPRINT, payload: snap.fingerprints([0], [snap.size]) }];
}

/**
 * Answers a peer's ranges against `snap`: matching ranges are dropped,
 * mismatched ones are split or listed, and id lists are compared (what the
 * peer lacks goes to `send`, what it has and this side lacks to `need`).
 * When the reply grows beyond `budget` bytes, the rest of the id space is
 * described as one range, to be continued in the next round.
 */
export function reconcile(snap: IndexSnapshot, ranges: readonly SyncRange[], budget: number): Reply {
  const reply: Reply = { ranges: [], send: [], need: [] };
  const out = new ReplyBuilder(snap);
  // Our fingerprints of every fingerprint range, in one hashing batch.
  const bounds: number[] = [0];
  for (const r of ranges) bounds.push(snap.lowerBound(r.upper));
  const fpAt: number[] = [], starts: number[] = [], ends: number[] = [];
  ranges.forEach((r, i) => {
    if (r.mode === MODE_FINGERPRINT) {
      fpAt[i] = starts.length;
      starts.push(bounds[i]);
      ends.push(bounds[i + 1]);
    }
  });
  const ours = snap.fingerprints(starts, ends);
  let lower: Uint8Array = ZERO, needBytes = 0;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i], a = bounds[i], b = bounds[i + 1];
    if (out.bytes + needBytes > budget) {
      out.describe(lower, null, a, snap.size);
      break;
    }
    if (r.mode === MODE_FINGERPRINT) {
      const k = fpAt[i];
      const mine = ours.subarray(FINGERPRINT_BYTES * k, FINGERPRINT_BYTES * (k + 1));
      const theirs = r.payload as Uint8Array;
      if (equalBytes(mine, theirs)) {
        // the range matches
      } else if (countOf(mine) === countOf(theirs) + 1) {
        // We may hold exactly one item more: our sum minus theirs is its id.
        const p = snap.find(subtract(mine, theirs));
        if (p >= a && p < b) reply.send.push(p);
        else out.describe(lower, r.upper, a, b);
      } else if (countOf(theirs) === countOf(mine) + 1) {
        // They may hold exactly one item more: ask for it, they check it.
        const id = subtract(theirs, mine);
        const inRange = compareBounds(id, lower) >= 0 && (r.upper === null || compareBounds(id, r.upper) < 0);
        if (inRange && snap.find(id) < 0) out.peel(lower, r.upper, id);
        else out.describe(lower, r.upper, a, b);
      } else out.describe(lower, r.upper, a, b);
    } else if (r.mode === MODE_PEEL) {
      const p = snap.find(r.payload as Uint8Array);
      if (p >= a && p < b) reply.send.push(p); // without it our range equals theirs
      else out.describe(lower, r.upper, a, b);
    } else if (r.mode === MODE_IDS) {
      const theirs = r.payload as Uint8Array;
      let j = 0;
      const n = theirs.length / ID_BYTES;
      for (let p = a; p < b || j < n;) {
        const c = p >= b ? 1 : j >= n ? -1 : compareBounds(snap.id(p), theirs.subarray(ID_BYTES * j));
        if (c < 0) reply.send.push(p++);
        else if (c > 0) {
          reply.need.push(theirs.subarray(ID_BYTES * j, ID_BYTES * ++j));
          needBytes += ID_BYTES;
        } else (p++, j++);
      }
    }
    lower = r.upper ?? ZERO;
  }
  reply.ranges = out.finish();
  return reply;
}

// ------------------------------------------------------------------ session

const macrotask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Runs one reconciliation session with a peer over `channel`. The initiator
 * speaks first; the sides then take turns until one of them has nothing left
 * to ask (its reconcile message is empty), after which both return. Every
 * record one side holds that the other lacks (or holds in another version) is
 * sent and merged with `db.applyOps`. The session reconciles the index
 * snapshot taken at its start; writes during it are left to the next one.
 *
 * A malformed, oversized or wrong-version frame rejects with a
 * `SyntaxError`/`RangeError` and closes the channel; op batches applied
 * before it stay applied (each is valid and atomic), nothing else is.
 */
export async function syncSession(
  db: Database,
  index: SyncIndex,
  channel: SyncChannel,
  options: SyncOptions,
): Promise<SyncStats> {
  const { role, signal } = options;
  if (role !== "initiator" && role !== "responder") {
    throw new TypeError(`syncSession role must be "initiator" or "responder", got ${JSON.stringify(role)}`);
  }
  const maxFrame = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isInteger(maxFrame) || maxFrame < MIN_MAX_FRAME_BYTES) {
    throw new RangeError(
      `maxFrameBytes must be an integer of at least ${MIN_MAX_FRAME_BYTES}, got ${maxFrame}`,
    );
  }
  const source = { source: options.peer || "sync" };
  const maxRefused = options.maxRefused ?? MAX_REFUSED_OPS;
  if (!Number.isSafeInteger(maxRefused) || maxRefused < 0) {
    throw new RangeError(`maxRefused must be a non-negative integer, got ${maxRefused}`);
  }
  const started = performance.now();
  const stats: SyncStats = {
    bytesSent: 0,
    bytesReceived: 0,
    rawBytesSent: 0,
    rawBytesReceived: 0,
    rounds: 0,
    recordsSent: 0,
    recordsReceived: 0,
    recordsApplied: 0,
    recordsRefused: 0,
    durationMs: 0,
  };
  let reconciles = 0;
  let abort: ((e: unknown) => void) | undefined;
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  aborted.catch(() => {});
  const onAbort = (): void => abort?.(signal?.reason ?? new DOMException("Sync aborted", "AbortError"));
  signal?.throwIfAborted();
  signal?.addEventListener("abort", onAbort, { once: true });
  const iterator = channel.frames[Symbol.asyncIterator]();

  const sendRaw = async (msg: SyncMessage): Promise<void> => {
    const payload = encodeMessage(msg);
    stats.rawBytesSent += payload.length + 1;
    const frame = await encodeFrame(payload);
    stats.bytesSent += frame.length;
    await Promise.race([channel.send(frame), aborted]);
  };
  const receive = async (): Promise<Reconcile | OpsBytes> => {
    const next = await Promise.race([iterator.next(), aborted]);
    if (next.done) throw new Error("Sync failed: the channel closed before the session finished");
    const frame = next.value;
    stats.bytesReceived += frame.length;
    const payload = await decodeFrame(frame, maxFrame);
    stats.rawBytesReceived += payload.length + 1;
    return readMessage(payload, maxFrame);
  };
  const budget = Math.floor(maxFrame / 2);
  const pushRecords = async (snap: IndexSnapshot, positions: Iterable<number>): Promise<void> => {
    const keys = Array.from(new Set(positions), (p) => snap.key(p));
    for (let k = 0; k < keys.length; k += PUSH_BATCH) {
      const found = await db.readFields(keys.slice(k, k + PUSH_BATCH));
      const ops = found.filter((r) => r !== undefined).map(recordToOp);
      await sendOps(ops);
    }
  };
  const sendOps = async (ops: Op[]): Promise<void> => {
    if (ops.length === 0) return;
    const payload = encodeMessage({ type: "ops", ops });
    if (payload.length > maxFrame || ops.length > MAX_FRAME_OPS) {
      if (ops.length === 1) {
        throw new RangeError(`Sync failed: one op encodes to more than ${maxFrame} bytes`);
      }
      const half = ops.length >> 1;
      await sendOps(ops.slice(0, half));
      await sendOps(ops.slice(half));
      return;
    }
    stats.rawBytesSent += payload.length + 1;
    const frame = await encodeFrame(payload);
    stats.bytesSent += frame.length;
    stats.recordsSent += ops.length;
    await Promise.race([channel.send(frame), aborted]);
  };

  try {
    const snap = index.snapshot();
    if (role === "initiator") {
      await sendRaw({ type: "reconcile", ranges: initialRanges(snap), need: ZERO });
      reconciles++;
    }
    let sliceStart = performance.now();
    for (;;) {
      const msg = await receive();
      if (msg.type === "ops-bytes") {
        let ops: Op[];
        try {
          ops = decodeOps(msg.bytes, maxFrame);
        } catch (e) {
          throw new SyntaxError(`Cannot decode sync message: ${(e as Error).message}`);
        }
        stats.recordsReceived += ops.length;
        const r = await Promise.race([db.applyOps(ops, source), aborted]);
        stats.recordsApplied += r.applied;
        stats.recordsRefused += r.refused ?? 0;
        if (stats.recordsRefused > maxRefused) {
          throw new SyncRefusedError(
            `Sync refused: the peer sent ${stats.recordsRefused} ops this replica must refuse (beyond its horizon or over the peer's deferral quota), more than the ${maxRefused} a session allows`,
          );
        }
        // Frames already buffered resolve as microtasks: let timers, I/O, gossip and HTTP run between them.
        if (performance.now() - sliceStart >= INTAKE_SLICE_MS) {
          await macrotask();
          sliceStart = performance.now();
        }
        continue;
      }
      reconciles++;
      if (msg.ranges.length === 0 && msg.need.length === 0) break; // the peer is done
      const reply = reconcile(snap, msg.ranges, budget);
      const wanted: number[] = [];
      for (let k = 0; k < msg.need.length; k += ID_BYTES) {
        const p = snap.find(msg.need.subarray(k, k + ID_BYTES));
        if (p >= 0) wanted.push(p);
      }
      await pushRecords(snap, [...reply.send, ...wanted]);
      const need = new Uint8Array(ID_BYTES * reply.need.length);
      reply.need.forEach((id, k) => need.set(id, ID_BYTES * k));
      await sendRaw({ type: "reconcile", ranges: reply.ranges, need });
      reconciles++;
      if (reply.ranges.length === 0 && need.length === 0) break; // nothing left to ask
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    abort = undefined;
    channel.close();
    void (async () => {
      try {
        await iterator.return?.();
      } catch { /* the channel is closed either way */ }
    })();
  }
  stats.rounds = Math.ceil(reconciles / 2);
  stats.durationMs = performance.now() - started;
  return stats;
}

// ------------------------------------------------------------------ in-process channel

/**
 * Two connected in-process channels (for tests, workers and local replicas):
 * what one sends, the other's `frames` yields, in order. `close` ends both
 * directions of that side once queued frames are read.
 */
export function channelPair(): [SyncChannel, SyncChannel] {
  const a = new Inbox(), b = new Inbox();
  const side = (inbox: Inbox, peer: Inbox): SyncChannel => ({
    send(frame: Uint8Array): Promise<void> {
      if (peer.closed) return Promise.reject(new Error("Cannot send: the sync channel is closed"));
      peer.push(frame);
      return Promise.resolve();
    },
    frames: { [Symbol.asyncIterator]: () => inbox.iterator() },
    close(): void {
      inbox.close();
      peer.close();
    },
  });
  return [side(a, b), side(b, a)];
}

class Inbox {
  #items: Uint8Array[] = [];
  #waiter: ((r: IteratorResult<Uint8Array>) => void) | undefined;
  closed = false;

  push(frame: Uint8Array): void {
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ done: false, value: frame });
    } else this.#items.push(frame);
  }

  close(): void {
    this.closed = true;
    if (this.#waiter && this.#items.length === 0) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ done: true, value: undefined });
    }
  }

  iterator(): AsyncIterator<Uint8Array> {
    return {
      next: (): Promise<IteratorResult<Uint8Array>> => {
        const item = this.#items.shift();
        if (item) return Promise.resolve({ done: false, value: item });
        if (this.closed) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => (this.#waiter = resolve));
      },
      return: (): Promise<IteratorResult<Uint8Array>> => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}
