/**
 * One anti-entropy sync session with a peer: the sides take turns with
 * reconcile messages (reconcile.ts) over a snapshot of their sync index, and
 * push the records the other lacks as OPS messages, read from the store and
 * encoded straight from the records (`core/op_writer.ts`). Received batches
 * go to `Database.applyOps` as bytes, never made into op objects.
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
import type { Database } from "../database.ts";
import { encodeRecordsAsOps } from "../op_writer.ts";
import type { FieldRecord } from "../store.ts";
import { systemWorld, type World } from "../world.ts";
import type { SyncChannel } from "./channel.ts";
import type { IndexSnapshot } from "./index_snapshot.ts";
import { ID_BYTES } from "./item_id.ts";
import {
  encodeMessage,
  encodeOpsMessage,
  type OpsBytes,
  readMessage,
  type Reconcile,
  type SyncMessage,
} from "./messages.ts";
import { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_OPS, MIN_MAX_FRAME_BYTES } from "./protocol.ts";
import { initialRanges, reconcile } from "./reconcile.ts";
import { decodeSyncFrame, encodeSyncFrame } from "./sync_frame.ts";
import type { SyncIndex } from "./sync_index.ts";

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
  /** Clocks and timers of the session (durations, yields); default {@link systemWorld}. */
  readonly world?: World;
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

const ZERO = new Uint8Array(0);

/** Resolves at a later turn of the event loop (a macrotask: timers and I/O run first). */
const macrotask = (world: World): Promise<void> => new Promise((resolve) => world.setTimer(resolve, 0));

/**
 * The error for an op batch of the peer's that `applyOps` could not decode:
 * a malformed message, reported as `decodeMessage` reports one.
 */
function batchError(e: unknown): unknown {
  if (!(e instanceof SyntaxError || e instanceof RangeError) || !e.message.startsWith("Cannot decode")) {
    return e;
  }
  return new SyntaxError(`Cannot decode sync message: ${e.message}`);
}

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
  const world = options.world ?? systemWorld;
  const started = world.monotonic();
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
    const frame = await encodeSyncFrame(payload);
    stats.bytesSent += frame.length;
    await Promise.race([channel.send(frame), aborted]);
  };
  const receive = async (): Promise<Reconcile | OpsBytes> => {
    const next = await Promise.race([iterator.next(), aborted]);
    if (next.done) throw new Error("Sync failed: the channel closed before the session finished");
    const frame = next.value;
    stats.bytesReceived += frame.length;
    const payload = await decodeSyncFrame(frame, maxFrame);
    stats.rawBytesReceived += payload.length + 1;
    return readMessage(payload, maxFrame);
  };
  const budget = Math.floor(maxFrame / 2);
  const pushRecords = async (snap: IndexSnapshot, positions: Iterable<number>): Promise<void> => {
    const keys = Array.from(new Set(positions), (p) => snap.key(p));
    for (let k = 0; k < keys.length; k += PUSH_BATCH) {
      const found = await db.readFields(keys.slice(k, k + PUSH_BATCH));
      const records = found.filter((r) => r !== undefined);
      await sendRecords(records, 0, records.length);
    }
  };
  /** Sends `records[from, to)` in one OPS message, or halves until each fits a frame. */
  const sendRecords = async (records: readonly FieldRecord[], from: number, to: number): Promise<void> => {
    const n = to - from;
    if (n === 0) return;
    const payload = encodeOpsMessage(encodeRecordsAsOps(records, from, to));
    if (payload.length > maxFrame || n > MAX_FRAME_OPS) {
      if (n === 1) {
        throw new RangeError(`Sync failed: one op encodes to more than ${maxFrame} bytes`);
      }
      const half = from + (n >> 1);
      await sendRecords(records, from, half);
      await sendRecords(records, half, to);
      return;
    }
    stats.rawBytesSent += payload.length + 1;
    const frame = await encodeSyncFrame(payload);
    stats.bytesSent += frame.length;
    stats.recordsSent += n;
    await Promise.race([channel.send(frame), aborted]);
  };

  try {
    const snap = index.snapshot();
    if (role === "initiator") {
      await sendRaw({ type: "reconcile", ranges: initialRanges(snap), need: ZERO });
      reconciles++;
    }
    let sliceStart = world.monotonic();
    for (;;) {
      const msg = await receive();
      if (msg.type === "ops-bytes") {
        // The batch as it came: decoded and checked by applyOps straight into records.
        const r = await Promise.race([db.applyOps(msg.bytes, source), aborted]).catch((e) => {
          throw batchError(e);
        });
        stats.recordsReceived += msg.count; // what its header announced, and the decoder found
        stats.recordsApplied += r.applied;
        stats.recordsRefused += r.refused ?? 0;
        if (stats.recordsRefused > maxRefused) {
          throw new SyncRefusedError(
            `Sync refused: the peer sent ${stats.recordsRefused} ops this replica must refuse (beyond its horizon or over the peer's deferral quota), more than the ${maxRefused} a session allows`,
          );
        }
        // Frames already buffered resolve as microtasks: let timers, I/O, gossip and HTTP run between them.
        if (world.monotonic() - sliceStart >= INTAKE_SLICE_MS) {
          await macrotask(world);
          sliceStart = world.monotonic();
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
  stats.durationMs = world.monotonic() - started;
  return stats;
}
