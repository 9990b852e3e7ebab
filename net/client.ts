/**
 * `connect(url)`: the database interface of the library, backed by a running
 * node's HTTP API (see `net/http.ts`). Web standards only (`fetch`,
 * `ReadableStream`, `TextDecoder`, `AbortSignal`), so it runs in browsers as
 * well as on Deno, Bun and Node.
 *
 * Method names and results are those of `Database`: `put`, `get`, `delete`,
 * `list` (an async iterable over pages of `GET /v1/nodes`), `watch`
 * (Server-Sent Events; returns unsubscribe), `query`, `search`,
 * `createIndex`, `indexes` (a promise here), `close`,
 * plus `status` and `peers`. Bad arguments reject with the same classes as
 * the library (`TypeError`, `RangeError`, `SyntaxError`, mapped from the
 * server's error codes); `get` of a missing node is `undefined`. Every call
 * takes `{ signal }` and gives up after `timeoutMs` (default 30 s) with a
 * `TimeoutError`; a node that cannot be reached is a {@link ConnectionError}
 * naming the URL; a node whose disk is full (507) a `DiskFullError`; other
 * server errors are a {@link RemoteError} (a missing or wrong `token` is one
 * with status 401 and code `unauthorized`).
 *
 * @example
 * ```ts ignore
 * import { connect } from "./client.ts";
 * const db = connect("http://127.0.0.1:7420", { token: "…" }); // the node's <dir>/http-token
 * await db.put("alice", { name: "Alice" });
 * console.log(await db.get("alice")); // { name: "Alice" }
 * const stop = db.watch({ prefix: "" }, (change) => console.log(change));
 * await stop.ready;
 * stop();
 * await db.close();
 * ```
 *
 * @module
 */
import {
  type Change,
  checkListOptions,
  type Entry,
  type IndexInfo,
  type IndexOptions,
  type ListOptions,
  type Query,
  type SearchOptions,
  type SearchResult,
  type WatchTarget,
  type WriteResult,
} from "../core/database.ts";
import { fromJson, toJson } from "../core/json.ts";
import { mapVectors } from "../core/db/vector_value.ts";
import { checkField, checkSoul, flatten, type NodeData } from "../core/value.ts";
import { systemWorld, type Timer, type World } from "../core/world.ts";
import type { PeerInfo } from "./http.ts";
import type {
  CallOptions,
  ConnectOptions,
  NodeStatus,
  RemoteDatabase,
  Unsubscribe,
  WatchOptions,
} from "./client/remote_database.ts";
import { answerError, ConnectionError, isRefusal, parseAnswer, parseError } from "./client/errors.ts";
import { readEventStream } from "./client/events.ts";
import { reconnectBackoff, sleep, tell } from "./client/reconnect.ts";
import { checkToken } from "./token.ts";
import { backoffDelay } from "./backoff.ts";

export { ConnectionError, RemoteError } from "./client/errors.ts";
export type {
  CallOptions,
  ConnectOptions,
  NodeStatus,
  RemoteDatabase,
  Unsubscribe,
  WatchOptions,
} from "./client/remote_database.ts";

const DEFAULT_TIMEOUT_MS = 30_000;
/** What a vector stands for in the client's check of a put. */
const NO_BYTES = new Uint8Array(0);
/** Page size of `list` requests (the server's maximum). */
const PAGE = 1000;

/**
 * Connects to the node whose HTTP API is at `url` (e.g.
 * `http://127.0.0.1:7420`). Nothing is sent until the first call.
 *
 * @example Talk to a node: here one this example starts on a free loopback port
 * ```ts
 * import { open } from "../mod.ts";
 * import { startHttpApi } from "./http.ts";
 * import { connect } from "./client.ts";
 *
 * const local = await open({ storage: "memory" });
 * const node = await startHttpApi(local, {
 *   port: 0,
 *   info: () => ({ peerId: null, addrs: [], space: "default", peers: [] }),
 * });
 * const db = connect(node.url, { token: node.token! }); // `lattice serve` keeps it in <dir>/http-token
 * const seen: string[] = [];
 * const stop = db.watch({ prefix: "" }, (change) => seen.push(change.soul));
 * await stop.ready; // the node streams changes
 * await db.put("alice", { name: "Alice" });
 * console.log(await db.get("alice")); // { name: "Alice" }
 * console.log((await db.status()).nodes); // 1
 * stop();
 * await db.close();
 * await node.close();
 * await local.close();
 * ```
 */
export function connect(url: string | URL, options: ConnectOptions = {}): RemoteDatabase {
  let base: URL;
  try {
    base = new URL(String(url));
  } catch {
    throw new TypeError(`connect needs an http(s) URL, got ${JSON.stringify(String(url))}`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new TypeError(`connect needs an http(s) URL, got ${JSON.stringify(String(url))}`);
  }
  return new Client(base.href.replace(/\/+$/, ""), options);
}

class Client implements RemoteDatabase {
  readonly url: string;
  #fetch: typeof fetch;
  #timeoutMs: number;
  #world: World;
  /** `Authorization` header value, or undefined without a token. */
  #authorization: string | undefined;
  #closed = false;
  /** Aborted by close(): ends watches and calls in flight. */
  #life = new AbortController();

  constructor(url: string, options: ConnectOptions) {
    this.url = url;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#world = options.world ?? systemWorld;
    if (!(this.#timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${options.timeoutMs}`);
    if (options.token !== undefined) {
      this.#authorization = `Bearer ${checkToken(options.token, "connect's token")}`;
    }
    const outer = options.signal;
    if (outer?.aborted) this.#life.abort(outer.reason);
    else outer?.addEventListener("abort", () => void this.close(), { once: true });
  }

  #check(): void {
    if (this.#closed) throw new Error(`The client of ${this.url} is closed`);
  }

  /** Sends a request and returns the parsed JSON of a 2xx answer; maps error answers to errors. */
  async #request(
    method: string,
    path: string,
    body: unknown,
    options: CallOptions | undefined,
    notFound?: () => unknown,
  ): Promise<unknown> {
    this.#check();
    const { signal, done } = this.#signal(options);
    try {
      let res: Response;
      try {
        const headers: Record<string, string> = { accept: "application/json" };
        if (body !== undefined) headers["content-type"] = "application/json";
        if (this.#authorization !== undefined) headers.authorization = this.#authorization;
        res = await this.#fetch(this.url + path, {
          method,
          signal,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        throw this.#failure(e, signal);
      }
      let text: string;
      try {
        text = await res.text();
      } catch (e) {
        throw this.#failure(e, signal);
      }
      if (res.ok) return parseAnswer(text, res.status);
      const { code, message } = parseError(text, res.status);
      if (res.status === 404 && code === "not_found" && notFound) return notFound();
      throw answerError(res.status, code, message);
    } finally {
      done();
    }
  }

  /** The error for a failed fetch: the caller's abort reason, a timeout, or a connection error. */
  #failure(e: unknown, signal: AbortSignal): unknown {
    if (signal.aborted) return signal.reason ?? e;
    return new ConnectionError(this.url, e);
  }

  /** A signal that fires on the caller's signal, the time limit, or close(); `done` releases it. */
  #signal(options?: CallOptions, timeout = true): { signal: AbortSignal; done: () => void } {
    const ac = new AbortController();
    const abort = (reason: unknown) => ac.abort(reason);
    const sources = [options?.signal, this.#life.signal].filter((s): s is AbortSignal => !!s);
    const listeners: [AbortSignal, () => void][] = [];
    for (const s of sources) {
      if (s.aborted) {
        abort(s.reason);
        break;
      }
      const l = () => abort(s.reason);
      s.addEventListener("abort", l, { once: true });
      listeners.push([s, l]);
    }
    let timer: Timer | undefined;
    if (timeout && !ac.signal.aborted) {
      const ms = options?.timeoutMs ?? this.#timeoutMs;
      timer = this.#world.setTimer(() => {
        abort(new DOMException(`The request to ${this.url} took longer than ${ms} ms`, "TimeoutError"));
      }, ms);
    }
    return {
      signal: ac.signal,
      done: () => {
        this.#world.clearTimer(timer);
        for (const [s, l] of listeners) s.removeEventListener("abort", l);
      },
    };
  }

  async put(soul: string, data: Record<string, unknown>, options?: CallOptions): Promise<WriteResult> {
    this.#check();
    // The library's checks and messages, before anything is sent; vectors are for the node to judge.
    flatten(soul, mapVectors(data, () => NO_BYTES));
    const body = toJson(withoutUndefined(mapVectors(data, (v) => Array.from(v))));
    const r = await this.#request("PUT", nodePath(soul), body, options) as WriteResult;
    return { soul: r.soul, state: r.state };
  }

  async get(soul: string, options?: CallOptions): Promise<NodeData | undefined> {
    this.#check();
    checkSoul(soul);
    const r = await this.#request("GET", nodePath(soul), undefined, options, () => undefined);
    return r === undefined ? undefined : fromJson(r) as NodeData;
  }

  async delete(soul: string, field?: string, options?: CallOptions): Promise<WriteResult> {
    this.#check();
    checkSoul(soul);
    if (field !== undefined) checkField(field);
    const q = field === undefined ? "" : `?field=${encodeURIComponent(field)}`;
    const r = await this.#request("DELETE", nodePath(soul) + q, undefined, options) as WriteResult & {
      field?: unknown;
    };
    return { soul: r.soul, state: r.state };
  }

  list(options: ListOptions & CallOptions = {}): AsyncGenerator<Entry> {
    this.#check();
    const { prefix, cursor, limit } = checkListOptions(options);
    return this.#list(prefix, cursor, limit, options);
  }

  async *#list(
    prefix: string,
    cursor: string | undefined,
    limit: number,
    options: CallOptions,
  ): AsyncGenerator<Entry> {
    let given = 0, after = cursor;
    while (given < limit) {
      const n = Math.min(PAGE, limit - given);
      let q = `?prefix=${encodeURIComponent(prefix)}&limit=${n}`;
      if (after !== undefined) q += `&cursor=${encodeURIComponent(after)}`;
      const page = await this.#request("GET", "/v1/nodes" + q, undefined, options) as {
        nodes: { soul: string; data: unknown }[];
        cursor: string | null;
      };
      for (const e of page.nodes) {
        given++;
        yield { soul: e.soul, data: fromJson(e.data) as NodeData };
      }
      if (page.cursor === null || page.nodes.length === 0) return;
      after = page.cursor;
    }
  }

  async query(q: Query, options?: CallOptions): Promise<Entry[]> {
    this.#check();
    if (typeof q !== "object" || q === null) throw new TypeError("A query must be an object");
    const r = await this.#request("POST", "/v1/query", toJson(withoutUndefined(q)), options) as {
      nodes: { soul: string; data: unknown }[];
    };
    return r.nodes.map((e) => ({ soul: e.soul, data: fromJson(e.data) as NodeData }));
  }

  async search(s: SearchOptions, options?: CallOptions): Promise<SearchResult[]> {
    this.#check();
    if (typeof s !== "object" || s === null) throw new TypeError("search takes an object { vector, k, … }");
    const body = s.vector instanceof Float32Array ? { ...s, vector: Array.from(s.vector) } : s;
    const r = await this.#request("POST", "/v1/search", toJson(withoutUndefined(body)), options) as {
      results: { soul: string; score: number | null; node: unknown }[];
    };
    return r.results.map((e) => ({
      soul: e.soul,
      score: e.score ?? NaN,
      node: fromJson(e.node) as NodeData,
    }));
  }

  async createIndex(options: IndexOptions, callOptions?: CallOptions): Promise<IndexInfo> {
    this.#check();
    if (typeof options !== "object" || options === null) {
      throw new TypeError("createIndex takes an options object");
    }
    const r = await this.#request("POST", "/v1/indexes", withoutUndefined(options), callOptions);
    return (r as { index: IndexInfo }).index;
  }

  async indexes(options?: CallOptions): Promise<IndexInfo[]> {
    const r = await this.#request("GET", "/v1/indexes", undefined, options) as { indexes: IndexInfo[] };
    return r.indexes;
  }

  async status(options?: CallOptions): Promise<NodeStatus> {
    return await this.#request("GET", "/v1/status", undefined, options) as NodeStatus;
  }

  /** How many nodes have a live field (the node's status `nodes`), as `Database.countNodes`. */
  async countNodes(options?: CallOptions): Promise<number> {
    return (await this.status(options)).nodes;
  }

  async peers(options?: CallOptions): Promise<PeerInfo[]> {
    const r = await this.#request("GET", "/v1/peers", undefined, options) as { peers: PeerInfo[] };
    return r.peers;
  }

  watch(target: WatchTarget, cb: (change: Change) => void, options: WatchOptions = {}): Unsubscribe {
    this.#check();
    let q: string;
    if (typeof target === "string") {
      checkSoul(target);
      q = `soul=${encodeURIComponent(target)}`;
    } else if (typeof target === "object" && target !== null && typeof target.prefix === "string") {
      q = `prefix=${encodeURIComponent(target.prefix)}`;
    } else throw new TypeError("watch takes a soul or { prefix }");
    if (typeof cb !== "function") throw new TypeError("watch needs a callback");
    const backoff = reconnectBackoff(options.reconnect);

    const ac = new AbortController();
    let stopped = false;
    const stop = () => {
      stopped = true;
      ac.abort(new DOMException("The watch was stopped", "AbortError"));
    };
    const { signal, done } = this.#signal({ signal: options.signal }, false);
    signal.addEventListener("abort", () => stop(), { once: true });
    let markReady!: () => void, failReady!: (e: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    ready.catch(() => {}); // a caller who never awaits ready must not see an unhandled rejection
    /** The id of the last checkpoint the node sent: where a reconnection resumes. */
    let lastId: string | undefined;
    let established = false;

    /** One connection: resolves when the node ends the stream; throws when it fails or is refused. */
    const stream = async (): Promise<void> => {
      // Connecting has the usual time limit; the stream itself lives until stopped.
      const connecting = this.#signal({ signal: ac.signal });
      let res: Response;
      try {
        const headers: Record<string, string> = { accept: "text/event-stream" };
        if (lastId !== undefined) headers["last-event-id"] = lastId;
        if (this.#authorization !== undefined) headers.authorization = this.#authorization;
        res = await this.#fetch(`${this.url}/v1/watch?${q}`, { headers, signal: connecting.signal })
          .finally(() => connecting.done());
      } catch (e) {
        throw ac.signal.aborted ? ac.signal.reason : new ConnectionError(this.url, e);
      }
      if (!res.ok || !res.body) {
        const { code, message } = parseError(await res.text().catch(() => ""), res.status);
        throw answerError(res.status, code, message);
      }
      let first = true;
      await readEventStream(res.body, this.url, ac.signal, (fields) => {
        if (first) {
          first = false;
          established = true;
          attempt = 0;
          markReady();
        }
        if (fields.id !== undefined) lastId = fields.id;
        if (fields.data === undefined || stopped) return;
        const raw = JSON.parse(fields.data) as { soul: string; changes: unknown; source: "local" | "remote" };
        try {
          cb({ soul: raw.soul, changes: fromJson(raw.changes) as NodeData, source: raw.source });
        } catch (e) {
          console.error("lattice: a watch callback threw:", e);
        }
      });
      if (!stopped) throw new ConnectionError(this.url, new Error("the node closed the event stream"));
    };

    let attempt = 0;
    const run = async (): Promise<void> => {
      for (;;) {
        try {
          await stream();
          if (stopped) return; // ended by unsubscribe: no new connection
        } catch (e) {
          if (stopped) return;
          const error = e instanceof Error ? e : new Error(String(e));
          // Refusals, the first connection, and reconnect: false end the watch: the caller hears once.
          if (!established || !backoff || isRefusal(error)) throw error;
          tell(options.onError, error);
          await sleep(this.#world, backoffDelay(backoff, attempt++, this.#world), ac.signal).catch(() => {});
          if (stopped) return;
        }
      }
    };
    run().catch((e) => {
      failReady(e);
      if (!stopped) tell(options.onError, e instanceof Error ? e : new Error(String(e)));
    }).finally(() => {
      done();
      stopped = true;
    });
    return Object.assign(stop, { ready });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#life.abort(new Error(`The client of ${this.url} is closed`));
  }
}

/** The path of a node: the soul percent-encoded as one segment (slashes included). */
function nodePath(soul: string): string {
  return `/v1/nodes/${encodeURIComponent(soul)}`;
}

/** A copy of plain objects without `undefined` fields (the library skips them, JSON cannot carry them). */
function withoutUndefined(v: unknown): unknown {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(withoutUndefined);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x !== undefined) {
      Object.defineProperty(out, k, {
        value: withoutUndefined(x),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return out;
}
