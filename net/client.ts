/**
 * `connect(url)`: the database interface of the library, backed by a running
 * node's HTTP API (see `net/http.ts`). Web standards only (`fetch`,
 * `ReadableStream`, `TextDecoder`, `AbortSignal`), so it runs in browsers as
 * well as on Deno, Bun and Node.
 *
 * Method names and results are those of `Database`: `put`, `get`, `delete`,
 * `list` (an async iterable over pages of `GET /v1/nodes`), `watch`
 * (Server-Sent Events; returns unsubscribe), `query`, `search`, `close`,
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
  type ListOptions,
  type Query,
  type WatchTarget,
  type WriteResult,
} from "../core/database.ts";
import { fromJson, toJson } from "../core/json.ts";
import { checkField, checkSoul, flatten, type NodeData } from "../core/value.ts";
import { DiskFullError } from "../storage/disk_full.ts";
import type { PeerInfo } from "./http.ts";
import { QueryTooLargeError } from "../core/query_budget.ts";
import { checkToken } from "./token.ts";
import { backoffDelay } from "./backoff.ts";

/** Options of {@link connect}. */
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
}

/** Per-call options. */
export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Time limit of this call in ms (default: the client's). */
  readonly timeoutMs?: number;
}

/** What `GET /v1/status` reports. */
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
}

/** A vector search, as `db.search` takes it. */
export interface SearchQuery {
  readonly vector: readonly number[];
  readonly k: number;
  readonly where?: Query["where"];
}

/** Unsubscribes a watch; `ready` resolves once the node streams changes (rejects if it refuses). */
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

/** The node could not be reached (refused, reset, DNS, …). */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";
  /** The node's base URL. */
  readonly url: string;
  constructor(url: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`Cannot reach the Lattice node at ${url}: ${why}`, { cause });
    this.url = url;
  }
}

/** An error answer of the node that has no error class of its own (5xx, 413, 501, …). */
export class RemoteError extends Error {
  override readonly name = "RemoteError";
  /** HTTP status. */
  readonly status: number;
  /** The `code` of the answer, e.g. `not_implemented`, `payload_too_large`, `internal`. */
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const ERROR_CLASSES: Readonly<Record<string, new (message: string) => Error>> = {
  invalid_argument: TypeError,
  invalid_path: TypeError,
  out_of_range: RangeError,
  invalid_syntax: SyntaxError,
  invalid_json: SyntaxError,
};

const DEFAULT_TIMEOUT_MS = 30_000;
/** Page size of `list` requests (the server's maximum). */
const PAGE = 1000;

/** The database interface over HTTP; see {@link connect}. */
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
  search(q: SearchQuery, options?: CallOptions): Promise<Entry[]>;
  status(options?: CallOptions): Promise<NodeStatus>;
  /** How many nodes have a live field (the status's `nodes`), as `Database.countNodes`. */
  countNodes(options?: CallOptions): Promise<number>;
  peers(options?: CallOptions): Promise<PeerInfo[]>;
  /** Ends every watch and refuses further calls. The node keeps running. */
  close(): Promise<void>;
}

/**
 * Connects to the node whose HTTP API is at `url` (e.g.
 * `http://127.0.0.1:7420`). Nothing is sent until the first call.
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
  /** `Authorization` header value, or undefined without a token. */
  #authorization: string | undefined;
  #closed = false;
  /** Aborted by close(): ends watches and calls in flight. */
  #life = new AbortController();

  constructor(url: string, options: ConnectOptions) {
    this.url = url;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
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
      if (res.status === 422 && code === "query_too_large") throw new QueryTooLargeError(message);
      const Class = res.status === 400 ? ERROR_CLASSES[code] : undefined;
      if (Class) throw new Class(message);
      if (res.status === 507 && code === "insufficient_storage") throw new DiskFullError(message);
      throw new RemoteError(res.status, code, message);
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (timeout && !ac.signal.aborted) {
      const ms = options?.timeoutMs ?? this.#timeoutMs;
      timer = setTimeout(() => {
        abort(new DOMException(`The request to ${this.url} took longer than ${ms} ms`, "TimeoutError"));
      }, ms);
    }
    return {
      signal: ac.signal,
      done: () => {
        clearTimeout(timer);
        for (const [s, l] of listeners) s.removeEventListener("abort", l);
      },
    };
  }

  async put(soul: string, data: Record<string, unknown>, options?: CallOptions): Promise<WriteResult> {
    this.#check();
    flatten(soul, data); // the library's checks and messages, before anything is sent
    const r = await this.#request(
      "PUT",
      nodePath(soul),
      toJson(withoutUndefined(data)),
      options,
    ) as WriteResult;
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

  async search(q: SearchQuery, options?: CallOptions): Promise<Entry[]> {
    this.#check();
    if (typeof q !== "object" || q === null) throw new TypeError("A search must be an object");
    const r = await this.#request("POST", "/v1/search", toJson(withoutUndefined(q)), options) as {
      nodes: { soul: string; data: unknown }[];
    };
    return r.nodes.map((e) => ({ soul: e.soul, data: fromJson(e.data) as NodeData }));
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
        const Class = res.status === 400 ? ERROR_CLASSES[code] : undefined;
        throw Class ? new Class(message) : new RemoteError(res.status, code, message);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const cancel = () => void reader.cancel().catch(() => {});
      ac.signal.addEventListener("abort", cancel, { once: true });
      let buffer = "";
      let first = true;
      try {
        for (;;) {
          let chunk: ReadableStreamReadResult<string>;
          try {
            chunk = await reader.read();
          } catch (e) {
            // A reset or cut connection (a TypeError on some runtimes) is a connection failure, not a refusal.
            throw ac.signal.aborted ? ac.signal.reason : new ConnectionError(this.url, e);
          }
          const { value, done: end } = chunk;
          if (end) break;
          buffer += value;
          let at: number;
          while ((at = eventEnd(buffer)) >= 0) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at).replace(/^(\r\n|\r|\n){2}/, "");
            if (first) {
              first = false;
              established = true;
              attempt = 0;
              markReady();
            }
            const fields = eventFields(block);
            if (fields.id !== undefined) lastId = fields.id;
            if (fields.data === undefined || stopped) continue;
            const raw = JSON.parse(fields.data) as {
              soul: string;
              changes: unknown;
              source: "local" | "remote";
            };
            try {
              cb({ soul: raw.soul, changes: fromJson(raw.changes) as NodeData, source: raw.source });
            } catch (e) {
              console.error("lattice: a watch callback threw:", e);
            }
          }
        }
      } finally {
        ac.signal.removeEventListener("abort", cancel);
        cancel();
      }
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
          await sleep(backoffDelay(backoff, attempt++), ac.signal).catch(() => {});
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

function parseAnswer(text: string, status: number): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new RemoteError(
      status,
      "invalid_answer",
      `The node answered ${status} with a body that is not JSON`,
    );
  }
}

function parseError(text: string, status: number): { code: string; message: string } {
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof e?.code === "string" && typeof e.message === "string") {
      return { code: e.code, message: e.message };
    }
  } catch {
    // not our error shape
  }
  return { code: "http_" + status, message: `The node answered HTTP ${status}` };
}

/** Index of the end of the first complete event (the blank line that ends it), or -1. */
function eventEnd(buffer: string): number {
  const m = /(\r\n|\r|\n)(\r\n|\r|\n)/.exec(buffer);
  return m ? m.index : -1;
}

/**
 * The `data:` of one event block (lines joined by `\n`, `undefined` when it
 * has none, e.g. comments) and its `id:` (the last one, as the SSE standard
 * says; `undefined` when it has none).
 */
function eventFields(block: string): { data?: string; id?: string } {
  const lines: string[] = [];
  let id: string | undefined;
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line.startsWith("data:")) lines.push(line.slice(line[5] === " " ? 6 : 5));
    else if (line.startsWith("id:")) id = line.slice(line[3] === " " ? 4 : 3);
  }
  return { data: lines.length > 0 ? lines.join("\n") : undefined, id };
}

/** Calls an `onError` hook; a hook that throws is reported, never breaks the watch. */
function tell(hook: ((error: Error) => void) | undefined, error: Error): void {
  try {
    hook?.(error);
  } catch (e) {
    console.error("lattice: a watch onError hook threw:", e);
  }
}

/** Errors that reconnecting cannot fix: the node refused the watch itself. */
function isRefusal(e: Error): boolean {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return true;
  return e instanceof RemoteError && e.status >= 400 && e.status < 500 && e.status !== 408 &&
    e.status !== 429;
}

/** Reconnect delays of a watch, or `undefined` for `reconnect: false`. */
function reconnectBackoff(option: WatchOptions["reconnect"]): { initial: number; max: number } | undefined {
  if (option === false) return undefined;
  if (option !== undefined && (typeof option !== "object" || option === null)) {
    throw new TypeError("watch's reconnect option must be false or { initialMs?, maxMs? }");
  }
  const initial = option?.initialMs ?? 250, max = option?.maxMs ?? 30_000;
  if (!(initial > 0 && max >= initial && max <= 2 ** 31 - 1)) {
    throw new RangeError(
      `watch's reconnect delays must satisfy 0 < initialMs <= maxMs <= ${
        2 ** 31 - 1
      }, got ${initial} and ${max}`,
    );
  }
  return { initial, max };
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts (clearing its timer). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
