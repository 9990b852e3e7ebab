/**
 * The options of a network and the `db.network` view of it: the types, and
 * the checks that run before anything starts. This file loads no libp2p:
 * `mod.ts` imports it statically, while the network itself
 * (`net/network.ts`, libp2p) is loaded with a dynamic `import()` only when
 * `network` is given.
 *
 * @module
 */
import type { SyncIndexSavePolicy } from "../core/sync/saved_index.ts";
import type { World } from "../core/world.ts";
import { isLogger, type Logger } from "../runtime/log.ts";
import { checkPeerLimits, type PeerLimits } from "./peer_budget.ts";

/**
 * Per-peer sync state, as `db.network.peers()`, `GET /v1/peers` and `lattice peers` show it.
 *
 * @example Two replicas on loopback: the sync state of the first session
 * ```ts
 * import { open, type PeerSync } from "../mod.ts";
 * const a = await open({ storage: "memory", network: { space: "demo" } });
 * await a.put("alice", { name: "Alice" });
 * const b = await open({ storage: "memory", network: { space: "demo", bootstrap: a.network!.addrs() } });
 * let sync: PeerSync | undefined;
 * // Wait (at most 10 s) for the first session: it starts when b reaches a.
 * for (let t = 0; !(sync = b.network!.peers()[0]?.sync)?.asOf && t < 500; t++) {
 *   await new Promise((r) => setTimeout(r, 20));
 * }
 * console.log(sync!.last!.recordsReceived, await b.get("alice")); // 1 { name: "Alice" }
 * await b.close();
 * await a.close();
 * ```
 */
export interface PeerSync {
  /** When the last sync session with this peer completed (ms since the epoch). */
  asOf?: number;
  /** What the last session exchanged. */
  last?: {
    bytesSent: number;
    bytesReceived: number;
    recordsSent: number;
    recordsReceived: number;
    durationMs: number;
  };
  /** The last failure, if the latest session failed. */
  error?: string;
}

/**
 * A connected peer, as `db.network.peers()` and `GET /v1/peers` show it.
 *
 * @example Two replicas on loopback
 * ```ts
 * import { type NetworkPeer, open } from "../mod.ts";
 * const a = await open({ storage: "memory", network: { space: "demo" } });
 * const b = await open({ storage: "memory", network: { space: "demo", bootstrap: a.network!.addrs() } });
 * let peers: NetworkPeer[];
 * for (let t = 0; !(peers = b.network!.peers()).length && t < 500; t++) { // b dials a (at most 10 s)
 *   await new Promise((r) => setTimeout(r, 20));
 * }
 * console.log(peers[0].id === a.network!.peerId, peers[0].addrs.length); // true 1
 * await b.close();
 * await a.close();
 * ```
 */
export type NetworkPeer = {
  /** Its peer id. */
  readonly id: string;
  /** The remote addresses of the current connections to it. */
  readonly addrs: readonly string[];
  /** When the first current connection was opened (ms since the epoch). */
  readonly since: number;
  /** Whether it is subscribed to the space's gossip topic, so live writes reach it at once. */
  readonly gossip: boolean;
  /** Anti-entropy sync state with it (`asOf`: when this replica was last in sync with it). */
  readonly sync: PeerSync;
};

/**
 * Replication mode of a space. Only full replication (every member keeps
 * every node) exists today; sharded mode (a number: the replication factor R)
 * is rejected with a `RangeError` until it is implemented.
 *
 * @example
 * ```ts
 * import { open, type ReplicationMode } from "../mod.ts";
 * const replication: ReplicationMode = "full"; // every member keeps every node
 * const db = await open({ storage: "memory", network: { space: "demo", replication } });
 * console.log(db.network!.space); // demo
 * await db.close();
 * const sharded = { replication: 3 as unknown as ReplicationMode }; // not available yet
 * await open({ storage: "memory", network: sharded }).catch((e) => console.log(e.name)); // RangeError
 * ```
 */
export type ReplicationMode = "full";

/**
 * The `network` option of `open()`.
 *
 * @example
 * ```ts
 * import { createLogger, type NetworkOpenOptions, open } from "../mod.ts";
 * const network: NetworkOpenOptions = {
 *   space: "demo",
 *   listen: ["/ip4/127.0.0.1/tcp/0"], // loopback, a free port
 *   syncInterval: 10_000,
 *   logger: createLogger({ level: "error" }),
 * };
 * const db = await open({ storage: "memory", network });
 * console.log(db.network!.space, db.network!.addrs().length); // demo 1
 * await db.close(); // leaves the network, then closes storage
 * ```
 */
export interface NetworkOpenOptions {
  /**
   * libp2p listen multiaddrs. On Deno and Bun the default (also for an empty
   * list) is `/ip4/127.0.0.1/tcp/0`, loopback TCP on a free port; pass e.g.
   * `/ip4/0.0.0.0/tcp/4001`, `/ip4/0.0.0.0/tcp/4002/ws` or
   * `/ip4/<host-ip>/udp/4003/webrtc-direct` to be reachable from elsewhere.
   * Browsers cannot listen: there it must be omitted or empty.
   */
  readonly listen?: readonly string[];
  /**
   * Multiaddrs of peers to join through, with `/p2p/<peer-id>` (e.g. from the
   * ready line of `lattice serve`). Dialed at start and retried with backoff
   * until reached; other members of the space are then found through the DHT.
   */
  readonly bootstrap?: readonly string[];
  /** The space to replicate (default `default`). */
  readonly space?: string;
  /** `"full"` (the default); sharded mode is not available yet. */
  readonly replication?: ReplicationMode;
  /**
   * Browsers only: dial loopback, LAN and plain `ws://` addresses, which
   * libp2p's browser defaults refuse (default false). For a page that joins a
   * node on the same machine or LAN. Servers dial such addresses anyway.
   */
  readonly allowPrivateAddresses?: boolean;
  /**
   * Find members of the space on the local network by mDNS, with no
   * bootstrap address (default false; Deno and Bun only). Sends multicast
   * queries on every interface every 10 s.
   */
  readonly mdns?: boolean;
  /** Anti-entropy period with each connected peer in ms (default 30 s). */
  readonly syncInterval?: number;
  /**
   * Aborting it while `open` runs makes `open` close the database and reject
   * with the abort reason; aborting it later leaves the network (the database
   * stays open, `db.network.peers()` is then empty).
   */
  readonly signal?: AbortSignal;
  /** Where network events are logged (default: `LATTICE_LOG` level, else `warn`, to standard error). */
  readonly logger?: Logger;
  /**
   * What one peer may cost this replica (streams, bytes per window, DHT
   * provider records) and how long a peer over budget is refused; each key
   * optional, defaults in `DEFAULT_PEER_LIMITS` (`net/peer_budget.ts`).
   */
  readonly limits?: PeerLimits;
}

/**
 * `db.network`: the running network of a database opened with `network`.
 * `net/network.ts` starts it (its `RunningNetwork` adds the controls: stop,
 * sync, the libp2p node); `db.network` is this read-only view of it.
 *
 * @example
 * ```ts
 * import { type Network, open } from "../mod.ts";
 * const db = await open({ storage: "memory", network: { space: "demo" } });
 * const network: Network = db.network!;
 * console.log(network.space, network.addrs()[0].endsWith(`/p2p/${network.peerId}`)); // demo true
 * console.log(network.peers()); // []: no other member of "demo" yet
 * await db.close();
 * ```
 */
export interface Network {
  /** This replica's libp2p peer id (a new one at each `open`: no persistent peer key yet). */
  readonly peerId: string;
  /** The space it replicates. */
  readonly space: string;
  /**
   * Its listen multiaddrs, each ending in `/p2p/<peerId>` (none once stopped); in a browser, its
   * addresses through the relays it reached (`lattice serve --relay`), if any.
   */
  addrs(): string[];
  /** The connected peers with their sync state (none once stopped). */
  peers(): NetworkPeer[];
}

/**
 * The options of a network as `startNetwork` (net/network.ts) takes them:
 * {@link NetworkOpenOptions} once checked by {@link checkNetworkOptions},
 * with defaults filled in, or what `lattice serve` builds from its flags.
 */
export interface NetworkOptions {
  /** libp2p listen multiaddrs; empty: `/ip4/127.0.0.1/tcp/0` on a server, none in a browser. */
  readonly listen: readonly string[];
  /** Multiaddrs of peers to join through. */
  readonly bootstrap: readonly string[];
  /** The space to replicate. */
  readonly space: string;
  /**
   * Only full replication exists: a number (a replication factor, sharded
   * mode, as `lattice serve --replication N` gives) is refused with a
   * `RangeError` ({@link checkReplication}).
   */
  readonly replication?: ReplicationMode | number;
  /** Browsers: dial loopback, LAN and plain `ws://` addresses (default false; see `NetNodeOptions`). */
  readonly allowPrivateAddresses?: boolean;
  /** Find members of the space on the local network by mDNS (default false; see `NetNodeOptions.mdns`). */
  readonly mdns?: boolean;
  /** Offer a circuit relay to other peers (`lattice serve --relay`; default false; see `NetNodeOptions.relay`). */
  readonly relay?: boolean;
  /** Anti-entropy period in ms (default `SYNC_INTERVAL_MS` of net/network.ts). */
  readonly syncInterval?: number;
  /**
   * Aborting it while `startNetwork` runs makes it stop what it started and
   * reject with the abort reason; aborting it later stops the network, as
   * `stop()` does.
   */
  readonly signal?: AbortSignal;
  /** Where network events are logged (default: `createLogger()`). */
  readonly logger?: Logger;
  /** Per-peer budgets (default `DEFAULT_PEER_LIMITS` of `net/peer_budget.ts`). */
  readonly limits?: PeerLimits;
  /**
   * When the sync index saves itself while the network runs, so that a start
   * after a crash reads only what came since (default: 100,000 records or a
   * sixteenth of the index, checked every 60 s; `SyncIndex.saveEvery`).
   */
  readonly indexSave?: Omit<SyncIndexSavePolicy, "onError">;
  /** Clock and timers of the periodic sync and the sync state (default `systemWorld`). */
  readonly world?: World;
  /**
   * The database directory (servers): a `/webrtc-direct` listener keeps its
   * certificate in `<directory>/webrtc-cert.json` (net/webrtc_cert.ts), so its
   * address stays the same across restarts. Without it, a new one each start.
   */
  readonly directory?: string;
}

/**
 * The `db.network` view of a running network: its members of
 * {@link Network}, none of its controls (`stop`, `syncWith`, `node`), so a
 * program cannot stop the network under its database.
 */
export function networkView(network: Network): Network {
  return {
    peerId: network.peerId,
    space: network.space,
    addrs: () => network.addrs(),
    peers: () => network.peers(),
  };
}

const KEYS = new Set([
  "listen",
  "bootstrap",
  "space",
  "replication",
  "allowPrivateAddresses",
  "mdns",
  "syncInterval",
  "signal",
  "logger",
  "limits",
]);

/** Longest timer delay the runtimes honour (a longer one fires at once). */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

/**
 * Checks the `network` option of `open()`: `undefined` or `false` mean no
 * network (returns `undefined`); an object is checked key by key. Throws
 * `TypeError` for a wrong type or an unknown key, `RangeError` for a value out
 * of range and for sharded replication, which is not available yet.
 *
 * @example
 * ```ts
 * import { checkNetworkOptions } from "./network_options.ts";
 * console.log(checkNetworkOptions(false)); // undefined
 * console.log(checkNetworkOptions({ space: "demo" })?.space); // "demo"
 * try {
 *   checkNetworkOptions({ replication: 3 as never });
 * } catch (e) {
 *   console.log((e as Error).name); // "RangeError"
 * }
 * ```
 */
export function checkNetworkOptions(value: unknown): NetworkOptions | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`network must be false or an options object, got ${describe(value)}`);
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KEYS.has(key)) {
      throw new TypeError(`Unknown network option ${JSON.stringify(key)}; known: ${[...KEYS].join(", ")}`);
    }
  }
  checkReplication(o.replication);
  const space = o.space ?? "default";
  if (typeof space !== "string" || space.length === 0) {
    throw new TypeError(`network.space must be a non-empty string, got ${describe(o.space)}`);
  }
  const allow = o.allowPrivateAddresses ?? false;
  if (typeof allow !== "boolean") {
    throw new TypeError(`network.allowPrivateAddresses must be a boolean, got ${describe(allow)}`);
  }
  const mdns = o.mdns ?? false;
  if (typeof mdns !== "boolean") throw new TypeError(`network.mdns must be a boolean, got ${describe(mdns)}`);
  const interval = o.syncInterval;
  if (interval !== undefined) {
    if (typeof interval !== "number") {
      throw new TypeError(`network.syncInterval must be a number of ms, got ${describe(interval)}`);
    }
    if (!(interval >= 1 && interval <= MAX_INTERVAL_MS)) {
      throw new RangeError(`network.syncInterval must be from 1 to ${MAX_INTERVAL_MS} ms, got ${interval}`);
    }
  }
  const signal = o.signal;
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw new TypeError(`network.signal must be an AbortSignal, got ${describe(signal)}`);
  }
  const logger = o.logger;
  if (logger !== undefined && !isLogger(logger)) {
    throw new TypeError("network.logger must have debug, info, warn and error methods");
  }
  const limits = o.limits === undefined ? undefined : checkPeerLimits(o.limits, "network.limits");
  return {
    listen: addressList("listen", o.listen),
    bootstrap: addressList("bootstrap", o.bootstrap),
    space,
    allowPrivateAddresses: allow,
    mdns,
    ...(interval !== undefined ? { syncInterval: interval } : {}),
    ...(signal !== undefined ? { signal: signal as AbortSignal } : {}),
    ...(logger !== undefined ? { logger: logger as Logger } : {}),
    ...(limits !== undefined ? { limits } : {}),
  };
}

/**
 * Accepts only full replication (`undefined` or `"full"`). A number is a
 * replication factor, i.e. sharded mode, which does not exist yet: it is
 * refused, never quietly run as full replication. Shared with `lattice
 * serve --replication`.
 */
export function checkReplication(value: unknown): void {
  if (value === undefined || value === "full") return;
  if (typeof value === "number" || value === "sharded") {
    throw new RangeError(
      `Sharded replication (replication: ${JSON.stringify(value)}) is not available yet; ` +
        `every space is fully replicated: omit replication or pass "full"`,
    );
  }
  throw new TypeError(`network.replication must be "full", got ${describe(value)}`);
}

function addressList(name: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`network.${name} must be an array of multiaddr strings, got ${describe(value)}`);
  }
  return value.map((a, i) => {
    if (typeof a !== "string" || !a.startsWith("/")) {
      throw new TypeError(
        `network.${name}[${i}] must be a multiaddr string such as "/ip4/127.0.0.1/tcp/4001", got ${
          describe(a)
        }`,
      );
    }
    return a;
  });
}

function isAbortSignal(v: unknown): boolean {
  if (typeof AbortSignal === "function" && v instanceof AbortSignal) return true;
  const s = v as { aborted?: unknown; addEventListener?: unknown } | null;
  return typeof s === "object" && s !== null && typeof s.aborted === "boolean" &&
    typeof s.addEventListener === "function";
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? v.slice(0, 60) + "…" : v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}
