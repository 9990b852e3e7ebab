/**
 * The interface of `connect` (net/client.ts): {@link RemoteDatabase}, the
 * database interface of the library over a node's HTTP API, with its
 * options. Apart from the implementation, so the contract reads in one
 * place; net/client.ts re-exports every name.
 *
 * @module
 */
import type {
  Change,
  Entry,
  IndexInfo,
  IndexOptions,
  ListOptions,
  Query,
  SearchOptions,
  SearchResult,
  WatchTarget,
  WriteResult,
} from "../../core/database.ts";
import type { NodeData } from "../../core/value.ts";
import type { World } from "../../core/world.ts";
import type { PeerInfo } from "../http.ts";

/**
 * Options of `connect`.
 *
 * @example
 * ```ts
 * import { connect, type ConnectOptions } from "../../mod.ts";
 * const options: ConnectOptions = {
 *   token: "s3cret",
 *   timeoutMs: 5_000,
 *   fetch: (url, init) => { // a stand-in for the node's HTTP API
 *     console.log(String(url), new Headers(init?.headers).get("authorization")); // …/v1/status Bearer s3cret
 *     return Promise.resolve(Response.json({ nodes: 0 }));
 *   },
 * };
 * const db = connect("http://127.0.0.1:7420", options); // nothing is sent yet
 * console.log(await db.countNodes()); // 0
 * await db.close();
 * ```
 */
export interface ConnectOptions {
  /** Aborting it aborts every call in progress and closes the client. */
  readonly signal?: AbortSignal;
  /** Default time limit of each request, in ms (default 30 s). */
  readonly timeoutMs?: number;
  /** The `fetch` to use (default the global one). */
  readonly fetch?: typeof fetch;
  /**
   * The node's bearer token, sent as `Authorization: Bearer <token>` with
   * every request (watches too). Writes need it; so do reads from another
   * machine. `lattice serve` keeps it in `<dir>/http-token` and prints it in
   * its `--json` ready line.
   */
  readonly token?: string;
  /** Clock and timers of time limits and reconnection delays (default `systemWorld`). */
  readonly world?: World;
}

/**
 * Per-call options.
 *
 * @example
 * ```ts
 * import { type CallOptions, connect } from "../../mod.ts";
 * // A node that never answers: each request waits until its time limit aborts it.
 * const silent: typeof fetch = (_url, init) =>
 *   new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
 * const db = connect("http://127.0.0.1:7420", { fetch: silent });
 * const quick: CallOptions = { timeoutMs: 50 };
 * await db.get("alice", quick).catch((e) => console.log(e.name)); // TimeoutError
 * await db.close();
 * ```
 */
export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Time limit of this call in ms (default: the client's). */
  readonly timeoutMs?: number;
}

/**
 * What `GET /v1/status` reports.
 *
 * @example A node on a free loopback port
 * ```ts
 * import { connect, type NodeStatus, open } from "../../mod.ts";
 * import { startHttpApi } from "../http.ts";
 * const local = await open({ storage: "memory" });
 * const info = () => ({ peerId: null, addrs: [], space: "demo", peers: [] }); // a node without a network
 * const node = await startHttpApi(local, { port: 0, info });
 * const db = connect(node.url);
 * const status: NodeStatus = await db.status();
 * console.log(status.space, status.storage, status.nodes); // demo memory 0
 * await db.close();
 * await node.close();
 * await local.close();
 * ```
 */
export interface NodeStatus {
  readonly peerId: string | null;
  readonly addrs: readonly string[];
  /** Number of connected peers. */
  readonly peers: number;
  readonly space: string;
  readonly storage: string;
  readonly kernels: string;
  readonly nodes: number;
  readonly version: string;
  /** Deferred ops: how many wait, when the next comes due (ms, or null), how many from peers were refused. */
  readonly deferred?: { readonly count: number; readonly next: number | null; readonly refused: number };
  /** The public key (hex) of the identity that signs the node's writes, or null without one. */
  readonly identity?: string | null;
}

/**
 * Unsubscribes a watch; `ready` resolves once the node streams changes (rejects if it refuses).
 *
 * @example
 * ```ts
 * import { connect, type Unsubscribe } from "../../mod.ts";
 * const db = connect("http://127.0.0.1:1"); // no node listens there
 * const stop: Unsubscribe = db.watch({ prefix: "" }, (change) => console.log(change));
 * await stop.ready.catch((e) => console.log(e.name)); // ConnectionError: the first try failed, the watch ends
 * stop();
 * await db.close();
 * ```
 */
export interface Unsubscribe {
  (): void;
  readonly ready: Promise<void>;
}

/** Options of {@link RemoteDatabase.watch}. */
export interface WatchOptions {
  readonly signal?: AbortSignal;
  /**
   * Called when the stream fails or the node closes it, and when an attempt
   * to reconnect fails (default: nothing). The watch goes on reconnecting
   * unless the error is final: a refusal of the target (`TypeError`,
   * `RangeError`, a 4xx `RemoteError`), the first connection failing, or
   * `reconnect: false`. Not called after unsubscribe.
   */
  readonly onError?: (error: Error) => void;
  /**
   * Reconnect after an established stream drops (default on): the first
   * attempt after `initialMs` (default 250), then with capped, jittered
   * exponential backoff up to `maxMs` (default 30 s); a stream that
   * reconnects resets it. The node replays what the watch missed (see
   * {@link RemoteDatabase.watch}). `false` ends the watch at the first drop.
   */
  readonly reconnect?: false | { readonly initialMs?: number; readonly maxMs?: number };
}

/**
 * The database interface over HTTP; see `connect`.
 *
 * @example A node on a free loopback port
 * ```ts
 * import { connect, open, type RemoteDatabase } from "../../mod.ts";
 * import { startHttpApi } from "../http.ts";
 * const local = await open({ storage: "memory" });
 * const info = () => ({ peerId: null, addrs: [], space: "demo", peers: [] }); // a node without a network
 * const node = await startHttpApi(local, { port: 0, info });
 * const remote: RemoteDatabase = connect(node.url, { token: node.token! });
 * await remote.put("alice", { name: "Alice" });
 * console.log(await local.get("alice")); // { name: "Alice" }: written through the node's HTTP API
 * await remote.close(); // the node keeps running
 * await node.close();
 * await local.close();
 * ```
 */
export interface RemoteDatabase {
  /** The node's base URL. */
  readonly url: string;
  put(soul: string, data: Record<string, unknown>, options?: CallOptions): Promise<WriteResult>;
  get(soul: string, options?: CallOptions): Promise<NodeData | undefined>;
  delete(soul: string, field?: string, options?: CallOptions): Promise<WriteResult>;
  list(options?: ListOptions & CallOptions): AsyncGenerator<Entry>;
  /**
   * Live changes over Server-Sent Events; returns unsubscribe. The node sends
   * checkpoints (`id: <actor>:<seq>`); when an established stream drops, the
   * watch reconnects with backoff and sends the last checkpoint as
   * `Last-Event-ID`, and the node first replays every node under the target
   * changed since then, whole, with its current fields. Delivery is at least
   * once: a change may come again after a reconnection, never goes missing.
   * A node that restarted without its data (another actor) replays all it
   * has under the target.
   */
  watch(target: WatchTarget, cb: (change: Change) => void, options?: WatchOptions): Unsubscribe;
  query(q: Query, options?: CallOptions): Promise<Entry[]>;
  /** Vector search, as `Database.search` (a `Float32Array` query travels as a JSON array). */
  search(s: SearchOptions, options?: CallOptions): Promise<SearchResult[]>;
  /** Declares a vector index, as `Database.createIndex` (`POST /v1/indexes`). */
  createIndex(options: IndexOptions, callOptions?: CallOptions): Promise<IndexInfo>;
  /** The node's vector indexes, as `Database.indexes` (asked over HTTP, so a promise). */
  indexes(options?: CallOptions): Promise<IndexInfo[]>;
  status(options?: CallOptions): Promise<NodeStatus>;
  /** How many nodes have a live field (the status's `nodes`), as `Database.countNodes`. */
  countNodes(options?: CallOptions): Promise<number>;
  peers(options?: CallOptions): Promise<PeerInfo[]>;
  /** Ends every watch and refuses further calls. The node keeps running. */
  close(): Promise<void>;
}
