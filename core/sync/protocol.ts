/**
 * The anti-entropy sync protocol `/lattice/sync/1.0.0`: its id, version and
 * the numbers of its wire format (message types, range modes, limits).
 * docs/PROTOCOL.md specifies the messages; core/sync is the reference:
 * messages.ts (message codec), sync_frame.ts (frames), reconcile.ts (the
 * range-based set reconciliation), session.ts (one session with a peer).
 *
 * @module
 */

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
