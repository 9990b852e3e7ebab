/**
 * A full-mode replica on the network: the libp2p node of the space, live
 * gossip of every local commit, and anti-entropy sync
 * (`/lattice/sync/1.0.0`) with each peer when it connects and every
 * `syncInterval` after. This is what `open({ network })` and `lattice serve`
 * run (mod.ts loads this file with a dynamic `import()`; `serve` calls it
 * through its `startNetwork` hook). A peer whose sync frame breaks a size
 * limit (bytes, or ops in one message), or that sends more ops than a session
 * allows that this replica must refuse (beyond the horizon, over its deferral
 * quota), is refused for the cool-off (`NetNode.penalize`); per-peer budgets
 * are `options.limits` (`net/peer_budget.ts`). The sync index saves itself
 * while the network runs (`options.indexSave`) and once more when it stops.
 *
 * @module
 */
import type { Database } from "../core/database.ts";
import { SyncIndex } from "../core/sync/sync_index.ts";
import { SYNC_PROTOCOL } from "../core/sync/protocol.ts";
import { syncSession, type SyncStats } from "../core/sync/session.ts";
import { systemWorld, type Timer } from "../core/world.ts";
import { createLogger, type Logger } from "../runtime/log.ts";
import {
  checkReplication,
  type Network,
  type NetworkOptions,
  type NetworkPeer,
  type PeerSync,
} from "./network_options.ts";
import { withDeadline } from "./deadline.ts";
import { canListen, createNetNode, type NetNode } from "./node.ts";
import { startReplication } from "./replicate.ts";
import { peerKeyOf } from "./peer_key.ts";
import { loadOrCreateWebRtcCertificate } from "./webrtc_cert.ts";
import { syncManifest } from "./space_manifest.ts";

/** Listen address when none is given on a server: TCP on loopback, a free port (browsers only dial). */
export const DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0";
/** Anti-entropy period with each connected peer. */
export const SYNC_INTERVAL_MS = 30_000;
/** A sync session that takes longer than this is aborted. */
export const SYNC_TIMEOUT_MS = 60_000;

export type { NetworkOptions, NetworkPeer, PeerSync };

/**
 * A started network: the {@link Network} that `db.network` shows, plus its
 * controls. What {@link startNetwork} returns and `serve` runs.
 */
export interface RunningNetwork extends Network {
  /** The libp2p node (behind Lattice's own interface). */
  readonly node: NetNode;
  /** Runs one anti-entropy session with `peer` now (one at a time per peer); never rejects. */
  syncWith(peer: string): Promise<void>;
  /** Leaves the network: hands every commit seen so far to gossip, ends sync sessions, stops libp2p. */
  stop(): Promise<void>;
}

/**
 * Starts networking for `db` in `options.space`. On Deno and Bun the node
 * listens on `options.listen` ({@link DEFAULT_LISTEN} when empty); in a
 * browser it only dials (`bootstrap`, WebSockets or WebRTC-Direct addresses)
 * and replicates with the peers it reaches exactly as a server does.
 *
 * Only full replication exists: a `replication` factor (sharded mode) is
 * refused with a `RangeError`. Programs and pages usually reach this through
 * `open({ network })` (mod.ts), which also stops it on `db.close()`.
 *
 * @example
 * ```ts ignore
 * // In a browser page: join a `lattice serve --listen /ip4/127.0.0.1/tcp/4001/ws` node.
 * const db = await open({ storage: "memory" });
 * const net = await startNetwork(db, {
 *   space: "default",
 *   listen: [],
 *   bootstrap: ["/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooW…"],
 *   logger: createLogger({ level: "warn" }),
 *   allowPrivateAddresses: true,
 * });
 * ```
 */
export async function startNetwork(db: Database, options: NetworkOptions): Promise<RunningNetwork> {
  checkReplication(options.replication);
  const signal = options.signal;
  signal?.throwIfAborted();
  const world = options.world ?? systemWorld;
  const log: Logger = options.logger ?? createLogger({ world });
  // A database with an identity is that key on the network too: its peer id survives restarts.
  const identity = db.trust.identity;
  // And its /webrtc-direct address (which carries the certificate's hash) too, when it has a directory.
  const webrtcCertificate =
    options.directory !== undefined && options.listen.some((a) => a.includes("/webrtc-direct"))
      ? await loadOrCreateWebRtcCertificate(options.directory, world)
      : undefined;
  const node = await createNetNode({
    space: options.space,
    privateKey: identity ? peerKeyOf(identity) : undefined,
    webrtcCertificate,
    // In a browser: the runtime's (net/transports.ts), relay reservations and WebRTC.
    listen: options.listen.length > 0 ? [...options.listen] : canListen() ? [DEFAULT_LISTEN] : undefined,
    bootstrap: [...options.bootstrap],
    allowPrivateAddresses: options.allowPrivateAddresses,
    mdns: options.mdns,
    relay: options.relay,
    limits: options.limits,
    log: (msg: string) => log.debug("net", msg),
    logger: log,
    world,
  });
  let index: SyncIndex;
  try {
    index = await SyncIndex.build(db, { world });
  } catch (e) {
    await node.stop();
    throw e;
  }
  // Saved now and then, a start after a crash reads only what came since the last save.
  index.saveEvery({
    ...options.indexSave,
    onError: (e) => log.warn("sync", "saving the sync index failed; will retry", { error: String(e) }),
  });
  const state = new Map<string, PeerSync>();
  const running = new Map<string, Promise<void>>();
  let stopped = false;

  /** Runs `fn` with a signal that aborts after the sync timeout (an unref'd timer, so exit is not held up). */
  function withTimeout<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withDeadline(SYNC_TIMEOUT_MS, fn, {
      world,
      unref: true,
      reason: () => new Error("sync session timed out"),
    });
  }

  function record(peer: string, stats: SyncStats): void {
    const { bytesSent, bytesReceived, recordsSent, recordsReceived, durationMs } = stats;
    state.set(peer, {
      asOf: world.now(),
      last: { bytesSent, bytesReceived, recordsSent, recordsReceived, durationMs },
    });
    log.debug("sync", `${peer}: ${recordsReceived} in, ${recordsSent} out, ${bytesSent + bytesReceived} B`);
    if (stats.recordsRefused > 0) {
      log.warn(
        "sync",
        `${peer}: refused ${stats.recordsRefused} ops (beyond the horizon or over its deferral quota)`,
      );
    }
  }

  /**
   * Records a failed session. A peer whose frame broke a size limit (a
   * frame or decompressed payload over the limit, a compression bomb: the
   * decoders' `RangeError`s, "Cannot decode …"; an honest peer with the same
   * limits never sends one), or that sent more ops than a session allows
   * that this replica must refuse (`SyncRefusedError`: stamped beyond the
   * horizon, or over its deferral quota), is also disconnected and refused
   * for the cool-off period; other failures (malformed data, a closed stream, a
   * timeout) only end the session.
   */
  function fail(peer: string, e: unknown): void {
    state.set(peer, { ...state.get(peer), error: (e as Error).message });
    const name = (e as Error | undefined)?.name;
    if (name === "SyncRefusedError" || (e instanceof RangeError && e.message.startsWith("Cannot decode"))) {
      node.penalize(peer, `sync: ${(e as Error).message}`);
    }
    if (!stopped) log.debug("sync", `${peer}: ${(e as Error).message}`);
  }

  await node.handle(SYNC_PROTOCOL, async (channel, peer) => {
    try {
      record(
        peer,
        await withTimeout((signal) =>
          syncSession(db, index, channel, { role: "responder", signal, peer, world })
        ),
      );
    } catch (e) {
      fail(peer, e);
      channel.close();
    }
  });

  /** One initiated session with `peer` at a time; resolves when it ends (never rejects). */
  function syncWith(peer: string): Promise<void> {
    const busy = running.get(peer);
    if (busy || stopped) return busy ?? Promise.resolve();
    const session = (async () => {
      try {
        const channel = await node.open(peer, SYNC_PROTOCOL);
        record(
          peer,
          await withTimeout((signal) =>
            syncSession(db, index, channel, { role: "initiator", signal, peer, world })
          ),
        );
      } catch (e) {
        fail(peer, e);
      } finally {
        running.delete(peer);
      }
    })();
    running.set(peer, session);
    return session;
  }

  const replication = startReplication(db, node, {
    space: options.space,
    onPeerConnected: (peer) => syncWith(peer),
    log: (msg: string) => log.debug("gossip", msg),
  });
  const interval = options.syncInterval ?? SYNC_INTERVAL_MS;
  // Re-armed after each round (unref'd, so exit is not held up); stop() clears it.
  let timer: Timer | undefined;
  const syncRound = () => {
    if (stopped) return;
    for (const p of node.peers()) void syncWith(p.id);
    manifestRound();
    timer = world.setTimer(syncRound, interval, true);
  };
  // One manifest round at a time: a DHT query can outlast a short sync interval.
  let manifests: Promise<void> | undefined;
  const manifestRound = () => {
    manifests ??= syncManifest(db, node, (msg) => log.debug("trust", msg)).finally(() =>
      manifests = undefined
    );
  };
  manifestRound();
  timer = world.setTimer(syncRound, interval, true);

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    signal?.removeEventListener("abort", onAbort);
    world.clearTimer(timer);
    await replication.flush();
    replication.stop();
    await Promise.allSettled(running.values());
    // Saved, the next start loads the index instead of reading every record (core/sync/sync_index.ts).
    await index.save().catch((e) => log.warn("sync", "saving the sync index failed", { error: String(e) }));
    index.close();
    await node.stop();
  }
  const onAbort = () => {
    stop().catch((e) => log.warn("net", "stopping the network failed", { error: String(e) }));
  };

  const handle: RunningNetwork = {
    node,
    syncWith,
    peerId: node.peerId,
    space: options.space,
    addrs: () => stopped ? [] : node.addrs(),
    peers: () => {
      if (stopped) return [];
      const subscribed = new Set(node.topicPeers());
      return node.peers().map((p) => ({
        id: p.id,
        addrs: p.addrs,
        since: p.since,
        gossip: subscribed.has(p.id),
        sync: state.get(p.id) ?? {},
      }));
    },
    stop,
  };
  if (signal?.aborted) {
    await stop();
    signal.throwIfAborted();
  }
  signal?.addEventListener("abort", onAbort, { once: true });
  return handle;
}
