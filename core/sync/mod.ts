/**
 * Anti-entropy sync: the item index of a replica and the range-based set
 * reconciliation protocol `/lattice/sync/1.0.0` (see docs/PROTOCOL.md).
 *
 * @example
 * ```ts
 * import { open } from "../../mod.ts";
 * import { channelPair, SyncIndex, syncSession } from "./mod.ts";
 * const a = await open({ storage: "memory" }), b = await open({ storage: "memory" });
 * await b.put("n", { x: 1 });
 * const [ia, ib] = [await SyncIndex.build(a), await SyncIndex.build(b)];
 * const [ca, cb] = channelPair();
 * const [stats] = await Promise.all([
 *   syncSession(a, ia, ca, { role: "initiator" }),
 *   syncSession(b, ib, cb, { role: "responder" }),
 * ]);
 * console.log(stats.recordsReceived, await a.get("n")); // 1 { x: 1 }
 * ```
 *
 * @module
 */
export { FINGERPRINT_BYTES, ID_BYTES, IndexSnapshot, itemIds, SyncIndex } from "./index.ts";
export type { SyncIndexSavePolicy } from "./index.ts";
export {
  channelPair,
  decodeFrame,
  decodeMessage,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodeMessage,
  MAX_FRAME_OPS,
  MAX_REFUSED_OPS,
  SYNC_PROTOCOL,
  SYNC_VERSION,
  type SyncChannel,
  type SyncMessage,
  type SyncOptions,
  type SyncRange,
  SyncRefusedError,
  syncSession,
  type SyncStats,
} from "./protocol.ts";
