/**
 * Full-mode replication over gossip: every local commit is published on the
 * space topic; every message received on it is merged with `applyOps`, as
 * from its sender (ops it should not send are refused, counted and logged).
 * Before a message is merged or relayed to other members, the topic validator
 * decodes it and checks every op (`decodeOpRecords`) and, where there is
 * anything to check, its signatures and rights (core/trust/verify.ts): an
 * invalid message is rejected, so it goes no further than this node and its
 * sender's gossip score drops (`NetNode.validate`); a peer that keeps sending
 * forged ops is disconnected and refused ({@link TRUST_OFFENCES}). The merge decodes it again: ~1 µs per op, small
 * beside the commit. Local commits are published as their records encoded
 * straight into the op encoding (`core/op_writer.ts`), never made op objects.
 *
 * Anti-entropy (sync on connect) is a separate protocol plugged in through
 * {@link ReplicationOptions.onPeerConnected}.
 *
 * @module
 */
import type { Database } from "../core/database.ts";
import { decodeOpRecords } from "../core/op.ts";
import { encodeRecordsAsOps } from "../core/op_writer.ts";
import type { FieldRecord } from "../core/store.ts";
import { MAX_GOSSIP_BYTES, type NetNode } from "./node.ts";
import { GossipIgnore } from "./gossip.ts";
import { trustOf } from "../core/db/trust_api.ts";

/**
 * Gossip messages refused by the trust rules (a forged or badly signed op)
 * a peer may send before it is disconnected and refused for the cool-off
 * period. Refusals that depend on this replica's clock or knowledge (an
 * expired or revoked certificate) do not count: an honest peer can relay
 * what it accepted a moment earlier.
 */
export const TRUST_OFFENCES = 3;

/** Gossip messages of one peer that may wait for their signature check; more are ignored (see below). */
export const VERIFY_QUEUE = 8;

/** Options of {@link startReplication}. */
export interface ReplicationOptions {
  /** The space being replicated; must be the node's space. */
  space: string;
  /**
   * Called when a peer connects (and once for every peer already connected at
   * start). This is where anti-entropy sync (`syncSession`) is wired in.
   * Errors and rejections are logged, never thrown.
   */
  onPeerConnected?: (peer: string, node: NetNode) => void | Promise<void>;
  /** Debug log sink (default: none). */
  log?: (msg: string) => void;
}

/** A running replication; see {@link startReplication}. */
export interface Replication {
  stop(): void;
  /** Resolves when every commit seen so far has been handed to gossip. */
  flush(): Promise<void>;
}

/** Ops per gossip message before size-based splitting. */
const OPS_PER_MESSAGE = 2_000;

/**
 * Replicates `db` in `node`'s space in full mode.
 *
 * @example
 * ```ts ignore
 * const rep = startReplication(db, node, { space: "demo" });
 * await db.put("a", { x: 1 }); // reaches every member by gossip
 * rep.stop();
 * ```
 */
export function startReplication(db: Database, node: NetNode, options: ReplicationOptions): Replication {
  if (options.space !== node.space) {
    throw new RangeError(`Cannot replicate space "${options.space}": the node is in space "${node.space}"`);
  }
  const log = options.log ?? (() => {});
  let stopped = false;
  let pending: FieldRecord[] = [];
  let publishing: Promise<void> | undefined;

  async function publishRecords(records: readonly FieldRecord[]): Promise<void> {
    for (let i = 0; i < records.length; i += OPS_PER_MESSAGE) {
      await publishChunk(records, i, Math.min(i + OPS_PER_MESSAGE, records.length));
    }
  }

  /** Publishes `records[from, to)` as one message, or halves until each fits. */
  async function publishChunk(records: readonly FieldRecord[], from: number, to: number): Promise<void> {
    const bytes = encodeRecordsAsOps(records, from, to);
    if (bytes.length > MAX_GOSSIP_BYTES && to - from > 1) {
      const half = from + ((to - from) >> 1);
      await publishChunk(records, from, half);
      await publishChunk(records, half, to);
      return;
    }
    if (bytes.length > MAX_GOSSIP_BYTES) {
      const r = records[from];
      log(`op on ${r.soul}/${r.field} is too large for gossip (${bytes.length} bytes); left to sync`);
      return;
    }
    try {
      await node.publish(bytes);
    } catch (e) {
      log(`publish failed: ${(e as Error).message}`);
    }
  }

  // Commits that arrive while a publish is in flight are coalesced into the next message.
  async function drain(): Promise<void> {
    while (pending.length > 0 && !stopped) {
      const records = pending;
      pending = [];
      await publishRecords(records);
    }
  }

  const offCommit = db.onCommit((records, local) => {
    if (!local || stopped || records.length === 0) return;
    for (const r of records) pending.push(r);
    if (!publishing) {
      publishing = drain().finally(() => publishing = undefined);
    }
  });

  // Decoded and checked, signatures included, before the message is merged or relayed.
  // A peer's messages are checked one at a time, at most VERIFY_QUEUE waiting: the signatures of a
  // flood cost the time of one check per message, and the third forged one cuts its sender off before
  // the rest are looked at.
  const trust = trustOf(db);
  const offences = new Map<string, number>();
  const queues = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  const offCheck = node.validate((bytes, from) => {
    const records = decodeOpRecords(bytes, MAX_GOSSIP_BYTES);
    if (!trust.needsCheck(records)) return;
    let q = queues.get(from);
    if (q === undefined) queues.set(from, q = { tail: Promise.resolve(), waiting: 0 });
    if (q.waiting >= VERIFY_QUEUE) {
      throw new GossipIgnore(`${q.waiting} messages of this peer wait for their signatures to be checked`);
    }
    const queue = q;
    queue.waiting++;
    const checked = queue.tail.then(() => {
      if (node.refused(from)) throw new GossipIgnore("its sender was refused meanwhile");
      return trust.check(records, { failFast: true });
    });
    queue.tail = checked.catch(() => {}).finally(() => {
      if (--queue.waiting === 0) queues.delete(from);
    });
    return checked.then((why) => {
      const bad = why.find((w) => w !== undefined);
      if (bad === undefined) return;
      if (!bad.startsWith("certificate")) {
        const n = (offences.get(from) ?? 0) + 1;
        if (n < TRUST_OFFENCES) offences.set(from, n);
        else {
          offences.delete(from);
          node.penalize(from, `sent ${n} gossip messages with ops refused by the trust rules (${bad})`);
        }
      }
      throw new Error(`an op refused by the trust rules: ${bad}`);
    });
  });
  const offMessage = node.onMessage((bytes, from) => {
    if (stopped) return;
    // As from a peer: ops beyond the horizon or over its deferral quota are dropped, counted, logged.
    db.applyOps(bytes, { source: from || "unknown" }).then((r) => {
      if (r.refused) log(`refused ${r.refused} ops of a gossip message from ${from || "unknown"}`);
    }, (e: Error) => {
      log(`dropped gossip message from ${from || "unknown"}: ${e.name}: ${e.message}`);
    });
  });

  function peerConnected(peer: string): void {
    const hook = options.onPeerConnected;
    if (!hook || stopped) return;
    Promise.resolve()
      .then(() => hook(peer, node))
      .catch((e: Error) => log(`onPeerConnected(${peer}) failed: ${e.message}`));
  }
  const offPeer = node.onPeer((event, peer) => {
    if (event === "connect") peerConnected(peer);
  });
  for (const p of node.peers()) peerConnected(p.id);

  return {
    stop(): void {
      if (stopped) return;
      stopped = true;
      offCommit();
      offCheck();
      offMessage();
      offPeer();
    },
    async flush(): Promise<void> {
      while (publishing) await publishing;
    },
  };
}
