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
export { channelPair, type SyncChannel } from "./channel.ts";
export { FINGERPRINT_BYTES, IndexSnapshot } from "./index_snapshot.ts";
export { ID_BYTES, itemIds } from "./item_id.ts";
export { decodeMessage, encodeMessage, type SyncMessage, type SyncRange } from "./messages.ts";
export { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_OPS, SYNC_PROTOCOL, SYNC_VERSION } from "./protocol.ts";
export {
  MAX_REFUSED_OPS,
  type SyncOptions,
  SyncRefusedError,
  syncSession,
  type SyncStats,
} from "./session.ts";
export { decodeSyncFrame, encodeSyncFrame } from "./sync_frame.ts";
export { SyncIndex } from "./sync_index.ts";
export type { SyncIndexBuildOptions, SyncIndexBuildStats, SyncIndexSavePolicy } from "./saved_index.ts";
