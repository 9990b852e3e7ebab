/**
 * The HTTP API of a running node (docs/API.md "HTTP API"), on `node:http`,
 * which Deno, Bun and Node all provide. `node:http` is loaded with a dynamic
 * `import()` of a variable, so a browser bundle that reaches this file never
 * pulls it in.
 *
 * Routes (`GET /v1` lists them as JSON): `GET /v1/status`,
 * `PUT|GET|DELETE /v1/nodes/{soul}`, `GET /v1/nodes?prefix=&limit=&cursor=`,
 * `POST /v1/query`, `POST /v1/search` (501 until vector search exists),
 * `GET /v1/watch?soul=|prefix=` (Server-Sent Events, resumable: see
 * {@link watch}), `GET /v1/peers`, `GET /` (the inspector page,
 * `web/index.html`). Values travel as in `core/json.ts` (bytes as
 * `{"$bytes": base64}`).
 *
 * Who may ask, checked in this order before anything else is done:
 * 1. `Host` must be one the node serves: an IP literal or `localhost` with
 *    its port, its listen address, or one of `hosts`. A page that rebinds
 *    its own DNS name to 127.0.0.1 sends its name, and is refused (421).
 * 2. A request with `Origin` must come from the node's own origin or one of
 *    `corsOrigins` (403 otherwise). Only `corsOrigins` get
 *    `Access-Control-Allow-Origin` (the origin itself, with `Vary: Origin`)
 *    and preflight answers; without them no response carries a CORS grant.
 * 3. The bearer token (`Authorization: Bearer <token>`, compared in constant
 *    time): writes always need it; reads (`GET`, `HEAD`, `POST /v1/query`,
 *    `POST /v1/search`) need it unless they come from a loopback address
 *    (option `loopbackReads`). The inspector page needs none, and carries the
 *    token when loopback asks for it. `auth: false` turns this off.
 * Event streams are capped in number (`maxStreams`, and `maxStreamsPerClient`
 * per client address: 429 beyond) and in backlog (bytes its socket still
 * holds from an earlier turn of the event loop): before an event is written, a
 * stream whose backlog passes `streamBufferBytes` is closed, and so is the
 * stream with the largest backlog while all of them together would pass
 * `streamsBufferBytes`. Each change is encoded once, and its bytes are shared
 * by every stream it goes to. A connection that sends
 * no complete request header within `idleTimeoutMs` of opening or of its last
 * answer is closed, on every runtime.
 *
 * Errors are `{"error": {"code", "message"}}` with these codes (stable: the
 * client maps them back to error classes):
 *
 * | status | code | when |
 * |---|---|---|
 * | 400 | `bad_request` | not HTTP/1.1 (answered on the raw socket, which is then closed), or the client left mid-body |
 * | 400 | `invalid_json` | body is not UTF-8 JSON (or empty, or nested too deep to parse) |
 * | 400 | `invalid_argument` | a `TypeError` of the database (wrong type of soul, value, option) |
 * | 400 | `out_of_range` | a `RangeError` of the database (too long, too deep, too many fields in a put, bad limit, unknown parameter value) |
 * | 400 | `invalid_syntax` | a `SyntaxError` of the database (e.g. `$bytes` that is not base64) |
 * | 400 | `invalid_path` | malformed percent-encoding in the path or query, or an unknown query parameter |
 * | 401 | `unauthorized` | the token is missing or wrong (with `WWW-Authenticate: Bearer`) |
 * | 403 | `forbidden_origin` | `Origin` is neither the node's own nor one of `corsOrigins` (or, without `Origin`, a browser marks the request `Sec-Fetch-Site: cross-site`/`same-site`, not a navigation) |
 * | 404 | `not_found` | `GET /v1/nodes/{soul}` of a node that does not exist |
 * | 404 | `unknown_route` | no such path |
 * | 405 | `method_not_allowed` | the path exists, not with that method (`Allow` lists the methods) |
 * | 408 | `timeout` | the request body did not arrive within `bodyTimeoutMs` |
 * | 413 | `payload_too_large` | body over `maxBodyBytes` (checked on `Content-Length` and while reading), or JSON over {@link MAX_BODY_ITEMS} |
 * | 421 | `misdirected_request` | a `Host` the node does not serve (DNS rebinding) |
 * | 422 | `query_too_large` | a query over its work budget (`QueryTooLargeError`: path length, frontier, nodes read or time) |
 * | 429 | `too_many_streams` | `/v1/watch` over `maxStreams` or `maxStreamsPerClient` (with `Retry-After`) |
 * | 431 | `headers_too_large` | request headers over the runtime's limit (16 KiB on Node) |
 * | 500 | `internal` | a bug; the message says nothing more, the log has the details |
 * | 501 | `not_implemented` | `POST /v1/search` in this version |
 * | 503 | `unavailable` | the node is shutting down or its database is closed |
 * | 507 | `insufficient_storage` | a `DiskFullError`: the disk is full (the message names the directory); reads go on |
 *
 * @example
 * ```ts
 * import { open } from "../mod.ts";
 * import { startHttpApi } from "./http.ts";
 *
 * const db = await open({ storage: "memory" });
 * const api = await startHttpApi(db, {
 *   host: "127.0.0.1",
 *   port: 0,
 *   info: () => ({ peerId: null, addrs: [], space: "default", peers: [] }),
 * });
 * const res = await fetch(`${api.url}/v1/nodes/alice`, {
 *   method: "PUT",
 *   headers: { authorization: `Bearer ${api.token}` }, // a fresh random token unless `token` is given
 *   body: '{"name":"Alice"}',
 * });
 * console.log(res.status); // 200
 * await api.close();
 * await db.close();
 * ```
 *
 * @module
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Change, Database, Query } from "../core/database.ts";
import { countJsonItems, fromJson, toJson } from "../core/json.ts";
import { MAX_PUT_FIELDS } from "../core/value.ts";
import { VERSION } from "../version.ts";
import { type Logger, silentLogger } from "./log.ts";
import { checkToken, newToken } from "./token.ts";

/** A connected peer as `GET /v1/peers` lists it; networking may add fields (sync state, latency, …). */
export interface PeerInfo {
  /** The peer id. */
  readonly id: string;
  /** Its known multiaddrs. */
  readonly addrs: readonly string[];
  readonly [key: string]: unknown;
}

/** What the HTTP API cannot learn from the database: networking facts, supplied by the caller. */
export interface StatusExtras {
  /** This node's peer id, or `null` without networking. */
  readonly peerId: string | null;
  /** The multiaddrs it listens on. */
  readonly addrs: readonly string[];
  /** The space it serves. */
  readonly space: string;
  /** The connected peers. */
  readonly peers: readonly PeerInfo[];
}

/** Options of {@link startHttpApi}. */
export interface HttpApiOptions {
  /** Interface to listen on (default `127.0.0.1`). */
  readonly host?: string;
  /** Port (default 0: a free port). */
  readonly port?: number;
  /** Networking facts for `/v1/status` and `/v1/peers`; called on each such request. */
  readonly info: () => StatusExtras | Promise<StatusExtras>;
  /** Aborting it closes the API, as `close()` does. */
  readonly signal?: AbortSignal;
  /** Largest request body, in bytes (default {@link DEFAULT_MAX_BODY_BYTES}). */
  readonly maxBodyBytes?: number;
  /** Time allowed for a request body to arrive, in ms (default 30 s). */
  readonly bodyTimeoutMs?: number;
  /** Interval of the comment lines that keep an event stream open, in ms (default 15 s). */
  readonly heartbeatMs?: number;
  /** Where requests and problems are logged (default: nowhere). */
  readonly logger?: Logger;
  /** The inspector page (default: web/index.html, embedded as web/_inspector_html.ts). */
  readonly inspectorHtml?: string;
  /**
   * Whether requests must authenticate (default `true`). With `false` anyone
   * who can reach the port may read and write: a development node
   * (`lattice serve --no-auth`).
   */
  readonly auth?: boolean;
  /**
   * The bearer token requests must send (`Authorization: Bearer <token>`):
   * writes always, reads when they do not come from a loopback address.
   * Default: a fresh random token ({@link newToken}), given back as
   * {@link HttpApi.token}. Ignored with `auth: false`.
   */
  readonly token?: string;
  /**
   * Whether reads (`GET`, `HEAD`, `POST /v1/query`, `POST /v1/search`) from a
   * loopback address need no token (default `true`). `false` asks every
   * request for the token, as for a remote client: for a machine whose other
   * users must not read the database.
   */
  readonly loopbackReads?: boolean;
  /**
   * Web origins (`scheme://host[:port]`) whose pages may call the API from a
   * browser: only they get `Access-Control-Allow-Origin` and preflight
   * answers. Default none: no page of another origin can use the API.
   */
  readonly corsOrigins?: readonly string[];
  /**
   * `Host` header values served besides the listen address, `localhost` and
   * IP literals with the port (`name` for any port, or `name:port`): names
   * under which a proxy or DNS reaches this node. Any other `Host` is refused
   * (421), which defeats DNS rebinding.
   */
  readonly hosts?: readonly string[];
  /** Most event streams (`/v1/watch`) open at once (default {@link DEFAULT_MAX_STREAMS}). */
  readonly maxStreams?: number;
  /** Most event streams open at once per client address (default {@link DEFAULT_MAX_STREAMS_PER_CLIENT}). */
  readonly maxStreamsPerClient?: number;
  /**
   * An event stream whose backlog (bytes written in an earlier turn of the
   * event loop and still unread) passes this many bytes when an event is due
   * is closed (default {@link DEFAULT_STREAM_BUFFER_BYTES}); its client
   * resumes from its last checkpoint.
   */
  readonly streamBufferBytes?: number;
  /**
   * Backlog of all event streams together: before an event is written, the
   * stream with the largest backlog is closed while the total (with the event)
   * would pass this (default {@link DEFAULT_STREAMS_BUFFER_BYTES}).
   */
  readonly streamsBufferBytes?: number;
  /**
   * A connection that has no request in progress is closed when no complete
   * request header arrives within this many ms, counted from its opening or
   * from its last answer (default 10 s).
   */
  readonly idleTimeoutMs?: number;
}

/** A running HTTP API. */
export interface HttpApi {
  /** Its base URL, e.g. `http://127.0.0.1:7420` (no trailing slash). */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /**
   * Stops accepting connections, ends event streams, waits (up to 10 s) for
   * requests in progress — so an acknowledged write is acknowledged — and
   * closes every connection. Idempotent.
   */
  close(): Promise<void>;
  /** Number of open event streams (`/v1/watch`). */
  openStreams(): number;
  /** The bearer token requests must send, or `null` when authentication is off. */
  readonly token: string | null;
}

/**
 * Default body limit: 2 MiB. The largest value (1 MiB of UTF-8 text, or
 * 1 MiB of bytes as 1.34 MiB of base64) fits with room for other fields.
 */
export const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024;
/**
 * Most objects, arrays and keys a JSON body may hold, counted before it is
 * parsed (`countJsonItems`): 2 MiB of them took up to 1.5 s to parse and
 * convert. A put at its limit ({@link MAX_PUT_FIELDS}) holds at most three per field.
 */
export const MAX_BODY_ITEMS = 4 * MAX_PUT_FIELDS;
/** Most nodes one `GET /v1/nodes` page returns; also the default page size is {@link DEFAULT_PAGE}. */
export const MAX_PAGE = 1000;
/** Nodes per `GET /v1/nodes` page when `limit` is not given. */
export const DEFAULT_PAGE = 100;
/**
 * Default backlog of an event stream: 256 KiB, counted from the socket's own
 * `writableLength` (what the kernel has not taken) less what was written in
 * the current turn of the event loop, checked before each event. A client
 * that never reads holds at most this plus the events of one turn; a reader
 * that keeps up gets every value, however large, and every commit, however
 * many changes it holds. (8 MiB per stream let 100 such watchers add 1 GB;
 * 1 MiB, with each change encoded once per stream, still let 15 of them add
 * 120–160 MB while 12 MiB were written.)
 */
export const DEFAULT_STREAM_BUFFER_BYTES = 256 * 1024;
/**
 * Default budget of backlog across all event streams: 8 MiB. Before an event
 * is written, the streams with the largest backlog are closed until the total,
 * with the event, fits.
 */
export const DEFAULT_STREAMS_BUFFER_BYTES = 8 * 1024 * 1024;
/** Default cap on event streams open at once. */
export const DEFAULT_MAX_STREAMS = 64;
/** Default cap on event streams open at once from one client address. */
export const DEFAULT_MAX_STREAMS_PER_CLIENT = 16;
const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
const UTF8 = new TextEncoder();
const CLOSE_GRACE_MS = 10_000;

/** Preflight answer for an origin of `corsOrigins` (with its `access-control-allow-origin`). */
const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, accept, last-event-id",
  "access-control-max-age": "600",
};

/** An error answered with `status` and `{"error": {code, message}}`. */
class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

type NodeHttp = typeof import("node:http");

/**
 * Starts the HTTP API over `db`. Resolves once listening. The API does not
 * own `db`: close the API first, then the database.
 */
export async function startHttpApi(db: Database, options: HttpApiOptions): Promise<HttpApi> {
  if (typeof options !== "object" || options === null || typeof options.info !== "function") {
    throw new TypeError("startHttpApi needs options with an info() function");
  }
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`The HTTP port must be an integer from 0 to 65535, got ${port}`);
  }
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBody) || maxBody < 1) {
    throw new RangeError(`maxBodyBytes must be a positive integer, got ${maxBody}`);
  }
  const count = (name: string, value: number | undefined, fallback: number): number => {
    const n = value ?? fallback;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${n}`);
    }
    return n;
  };
  const token = options.auth === false
    ? null
    : options.token === undefined
    ? newToken()
    : checkToken(options.token, "The HTTP API token");
  const log = options.logger ?? silentLogger;
  const specifier = "node:http"; // a variable, so bundlers leave it out
  const http = await import(specifier) as NodeHttp;

  const ctx: Context = {
    db,
    info: options.info,
    maxBody,
    bodyTimeoutMs: options.bodyTimeoutMs ?? 30_000,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    log,
    streams: new Map(),
    events: new WeakMap(),
    streamsByClient: new Map(),
    maxStreams: count("maxStreams", options.maxStreams, DEFAULT_MAX_STREAMS),
    maxStreamsPerClient: count(
      "maxStreamsPerClient",
      options.maxStreamsPerClient,
      DEFAULT_MAX_STREAMS_PER_CLIENT,
    ),
    streamBuffer: count("streamBufferBytes", options.streamBufferBytes, DEFAULT_STREAM_BUFFER_BYTES),
    streamsBuffer: count("streamsBufferBytes", options.streamsBufferBytes, DEFAULT_STREAMS_BUFFER_BYTES),
    closing: false,
    turn: 0,
    turnEnding: false,
    inspector: options.inspectorHtml,
    token,
    loopbackReads: options.loopbackReads ?? true,
    corsOrigins: new Set((options.corsOrigins ?? []).map((o) => checkCorsOrigin(o))),
    hosts: new Set((options.hosts ?? []).map((h) => checkServedHost(h))),
    port,
  };
  const idleMs = count("idleTimeoutMs", options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS);
  const inflight = new Set<Promise<void>>();
  /** Open connections and how many requests each has in progress; an idle one has a timer. */
  const sockets = new Map<Socket, { busy: number; timer?: ReturnType<typeof setTimeout> }>();
  // Closes a connection that sends no complete request in time. Deno's and Bun's node:http enforce
  // neither headersTimeout nor keepAliveTimeout on a connection that never sends a byte, and
  // Node checks only every 30 s; this timer works the same on all three.
  const arm = (socket: Socket) => {
    const state = sockets.get(socket);
    if (!state) return;
    clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      if (state.busy === 0) socket.destroy();
    }, idleMs);
  };

  const server: Server = http.createServer((req, res) => {
    const started = Date.now();
    const state = sockets.get(req.socket);
    if (state) {
      state.busy++;
      clearTimeout(state.timer);
    }
    // A client that resets mid-request is not an error of the node.
    req.on("error", () => {});
    res.on("error", () => {});
    res.on("close", () => {
      if (state && --state.busy === 0) arm(req.socket);
    });
    const p = handle(ctx, req, res)
      .catch((e) => sendError(ctx, req, res, e))
      .catch((e) => {
        log.error("http", "cannot answer a request", { error: String(e) });
        destroy(res);
      })
      .finally(() => {
        inflight.delete(p);
        log.debug("http", `${req.method} ${req.url}`, { status: res.statusCode, ms: Date.now() - started });
      });
    inflight.add(p);
  });
  // Node's defaults are 60 s for headers and 300 s per request; a stalled client should not hold a socket that long.
  server.headersTimeout = Math.min(20_000, idleMs);
  server.requestTimeout = 0; // event streams are long requests; bodies have their own timeout
  server.keepAliveTimeout = Math.min(5_000, idleMs);
  server.on("connection", (socket: Socket) => {
    sockets.set(socket, { busy: 0 });
    arm(socket);
    socket.on("close", () => {
      clearTimeout(sockets.get(socket)?.timer);
      sockets.delete(socket);
    });
    socket.on("error", () => {}); // resets by clients are their business
  });
  server.on("clientError", (err: Error & { code?: string }, socket: Socket) => {
    log.debug("http", "malformed request", { error: err.code ?? err.message });
    if (!socket.writable) return socket.destroy();
    const [status, code, message] = err.code === "HPE_HEADER_OVERFLOW"
      ? ["431 Request Header Fields Too Large", "headers_too_large", "The request headers are too large"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? ["408 Request Timeout", "timeout", "The request did not arrive in time"]
      : ["400 Bad Request", "bad_request", "The request is not valid HTTP/1.1"];
    const body = JSON.stringify({ error: { code, message } });
    try {
      socket.end(
        `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\n\r\n${body}`,
      );
    } catch {
      socket.destroy();
    }
  });
  server.on("error", (e: Error) => log.error("http", "server error", { error: e.message }));

  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => reject(e);
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      resolve();
    });
  });
  const address = server.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  ctx.port = boundPort;
  // The listen address is served under its own name too (e.g. --http myhost.local:7420).
  ctx.hosts.add(`${urlHost(host).toLowerCase()}:${boundPort}`);
  const url = `http://${urlHost(host)}:${boundPort}`;
  log.info("http", "listening", { url, auth: token !== null });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      ctx.closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const end of [...ctx.streams.keys()]) end();
      (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...inflight]),
        new Promise((resolve) => timer = setTimeout(resolve, CLOSE_GRACE_MS)),
      ]);
      clearTimeout(timer);
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      for (const [s, state] of sockets) {
        clearTimeout(state.timer);
        s.destroy();
      }
      await stopped;
      log.info("http", "closed", { url });
    })();
    return closed;
  };
  if (options.signal) {
    if (options.signal.aborted) await close();
    else options.signal.addEventListener("abort", () => void close(), { once: true });
  }
  return { url, port: boundPort, close, openStreams: () => ctx.streams.size, token };
}

/** A host for a URL: IPv6 in brackets; the wildcard addresses become loopback, which is reachable. */
function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

interface Context {
  readonly db: Database;
  readonly info: () => StatusExtras | Promise<StatusExtras>;
  readonly maxBody: number;
  readonly bodyTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly log: Logger;
  /** Each open event stream by its `end`. */
  readonly streams: Map<() => void, Stream>;
  /** The `data:` event of each change being sent, encoded once for every stream it goes to. */
  readonly events: WeakMap<Change, Uint8Array>;
  /** Open event streams per client address. */
  readonly streamsByClient: Map<string, number>;
  readonly maxStreams: number;
  readonly maxStreamsPerClient: number;
  /** Backlog in bytes past which an event stream is closed. */
  readonly streamBuffer: number;
  /** Backlog of all event streams together past which the largest is closed. */
  readonly streamsBuffer: number;
  closing: boolean;
  /** Turns of the event loop in which event streams were written to (see {@link backlog}). */
  turn: number;
  /** Whether the end of the current turn is scheduled. */
  turnEnding: boolean;
  inspector: string | undefined;
  /** The bearer token, or `null` without authentication. */
  readonly token: string | null;
  readonly loopbackReads: boolean;
  /** Origins granted CORS, as `URL.origin` writes them. */
  readonly corsOrigins: ReadonlySet<string>;
  /** `Host` values served besides IP literals and `localhost` with the port: `name` or `name:port`, lowercase. */
  readonly hosts: Set<string>;
  /** The port listened on. */
  port: number;
}

// ---------------------------------------------------------------- who may ask

/**
 * Checks an origin for `corsOrigins` (`scheme://host[:port]`) and returns it as
 * browsers send it (`URL.origin`); `TypeError` otherwise.
 */
export function checkCorsOrigin(origin: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(origin);
  } catch {
    parsed = undefined;
  }
  if (
    typeof origin !== "string" || !parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:") ||
    parsed.origin !== origin.replace(/\/$/, "").toLowerCase()
  ) {
    throw new TypeError(
      `A CORS origin must be scheme://host[:port] with nothing after it (e.g. http://localhost:5173), got ${
        JSON.stringify(origin)
      }`,
    );
  }
  return parsed.origin;
}

/** Checks a `hosts` entry (`name` or `name:port`) and returns it in lowercase; `TypeError` otherwise. */
export function checkServedHost(host: string): string {
  if (typeof host !== "string" || !/^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i.test(host)) {
    throw new TypeError(`A served host must be NAME or NAME:PORT, got ${JSON.stringify(host)}`);
  }
  return host.toLowerCase();
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/**
 * Whether the node serves `Host: host`. IP literals and `localhost` with the
 * node's port are always served: DNS rebinding needs a name that the attacker
 * controls, and those are not. Other names only when listed in `hosts`.
 */
function servesHost(ctx: Context, host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(h);
  if (!m) return false;
  const name = m[1], port = m[2] === undefined ? 80 : Number(m[2]);
  if (port === ctx.port && (name === "localhost" || IPV4.test(name) || IPV6.test(name))) return true;
  return ctx.hosts.has(h) || ctx.hosts.has(name);
}

/** Whether an address (as `socket.remoteAddress` gives it) is a loopback one. */
function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  return a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/**
 * Lets a request that carries `Origin` through only from the node's own
 * origin or a `corsOrigins` one (the latter gets CORS headers); any other web
 * page is refused with 403 before the request does anything. Browsers send
 * `Origin` on every cross-origin request that could change or read data.
 */
function checkRequestOrigin(ctx: Context, req: IncomingMessage, res: ServerResponse): void {
  if (ctx.corsOrigins.size > 0) res.setHeader("vary", "Origin");
  const origin = req.headers.origin;
  if (origin === undefined) {
    // An <img> or <script> of another site's page sends no Origin; it could read nothing, but it
    // should not make the node work either. Browsers mark it; navigations (a link) stay allowed.
    const site = req.headers["sec-fetch-site"];
    if ((site === "cross-site" || site === "same-site") && req.headers["sec-fetch-mode"] !== "navigate") {
      throw new HttpError(
        403,
        "forbidden_origin",
        "Requests from pages of another site may not use this node",
      );
    }
    return;
  }
  if (ctx.corsOrigins.has(origin)) {
    res.setHeader("access-control-allow-origin", origin);
    return;
  }
  // The node's own origin (the Host is one it serves; https when behind a proxy).
  const own = origin.toLowerCase().replace(/^https?:\/\//, "");
  if (own !== origin.toLowerCase() && own === req.headers.host?.toLowerCase()) return;
  throw new HttpError(
    403,
    "forbidden_origin",
    `Pages from ${
      JSON.stringify(origin)
    } may not use this node; start it with --cors-origin ${origin} to allow them`,
  );
}

/** Compares every character of `expected` whatever `given` is, so timing tells nothing of where they differ. */
function sameSecret(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ (given.charCodeAt(i) | 0);
  return diff === 0;
}

/** Throws 401 unless the request has the token or needs none (see {@link HttpApiOptions.token}). */
function requireToken(ctx: Context, req: IncomingMessage, spec: RouteSpec | undefined): void {
  if (ctx.token === null || spec?.open) return;
  if (spec?.read && ctx.loopbackReads && isLoopback(req.socket.remoteAddress)) return;
  const header = req.headers.authorization;
  const m = typeof header === "string" ? /^Bearer +(\S+) *$/i.exec(header) : null;
  if (m && sameSecret(m[1], ctx.token)) return;
  throw new HttpError(
    401,
    "unauthorized",
    m
      ? "The token sent is not this node's"
      : spec?.read
      ? "Reads from another machine need the node's token (Authorization: Bearer <token>)"
      : "Writes need the node's token (Authorization: Bearer <token>)",
    { "www-authenticate": 'Bearer realm="lattice"' },
  );
}

// ---------------------------------------------------------------- routing

type Route =
  | "routes"
  | "status"
  | "peers"
  | "list"
  | "node"
  | "query"
  | "search"
  | "watch"
  | "inspector";

/** One method of one route, as `GET /v1` lists it. */
interface RouteSpec {
  readonly route: Route;
  readonly method: string;
  readonly path: string;
  readonly does: string;
  /** A read: from loopback it needs no token (see {@link HttpApiOptions.loopbackReads}). Otherwise a write. */
  readonly read?: true;
  /** Needs no token at all (the inspector page, which holds no data). */
  readonly open?: true;
}

/**
 * Every route. A row without `read` or `open` needs the token from everyone,
 * so a route added here is a write until said otherwise. `HEAD` goes with
 * each `GET` except the watch.
 */
const ROUTES: readonly RouteSpec[] = [
  { route: "routes", method: "GET", path: "/v1", does: "this list of routes", read: true },
  {
    route: "status",
    method: "GET",
    path: "/v1/status",
    does: "{peerId, addrs, peers, space, storage, kernels, nodes, version}",
    read: true,
  },
  {
    route: "node",
    method: "PUT",
    path: "/v1/nodes/{soul}",
    does: "merges the fields of the JSON object body; 200 {soul, state} after a durable commit",
  },
  { route: "node", method: "GET", path: "/v1/nodes/{soul}", does: "the node as JSON, or 404", read: true },
  {
    route: "node",
    method: "DELETE",
    path: "/v1/nodes/{soul}",
    does: "tombstones the node, or only ?field=; 200 {soul, field, state}",
  },
  {
    route: "list",
    method: "GET",
    path: "/v1/nodes",
    does: "?prefix=&limit=&cursor=: {nodes: [{soul, data}], cursor}",
    read: true,
  },
  {
    route: "query",
    method: "POST",
    path: "/v1/query",
    does: "graph traversal, body as db.query",
    read: true,
  },
  {
    route: "search",
    method: "POST",
    path: "/v1/search",
    does: "vector search, body as db.search",
    read: true,
  },
  {
    route: "watch",
    method: "GET",
    path: "/v1/watch",
    does: "?soul= or ?prefix=: Server-Sent Events, one data: JSON change per event, resumable",
    read: true,
  },
  {
    route: "peers",
    method: "GET",
    path: "/v1/peers",
    does: "connected peers with addresses and sync state",
    read: true,
  },
  { route: "inspector", method: "GET", path: "/", does: "the inspector page", open: true },
];

const METHOD_ORDER = ["GET", "HEAD", "PUT", "POST", "DELETE"];

const METHODS: Readonly<Record<Route, readonly string[]>> = (() => {
  const out = {} as Record<Route, string[]>;
  for (const r of ROUTES) {
    const list = out[r.route] ??= [];
    list.push(r.method);
    if (r.method === "GET" && r.route !== "watch") list.push("HEAD");
  }
  for (const list of Object.values(out)) {
    list.sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
  }
  return out;
})();

/** The `GET /v1` answer: every route, and whether it needs the token on this node. */
function routeList(ctx: Context): unknown {
  return {
    version: VERSION,
    auth: ctx.token !== null,
    routes: ROUTES.map((r) => ({
      method: r.method,
      path: r.path,
      does: r.does,
      token: ctx.token === null || r.open ? "never" : r.read && ctx.loopbackReads ? "off-loopback" : "always",
    })),
  };
}

const PARAMS: Readonly<Record<string, readonly string[]>> = {
  list: ["prefix", "limit", "cursor"],
  "node:PUT": ["consistency"],
  "node:GET": [],
  "node:HEAD": [],
  "node:DELETE": ["field"],
  watch: ["soul", "prefix"],
};

async function handle(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!servesHost(ctx, req.headers.host)) {
    throw new HttpError(
      421,
      "misdirected_request",
      `This node does not serve the host ${JSON.stringify(req.headers.host ?? "")} ` +
        `(a guard against DNS rebinding); use http://127.0.0.1:${ctx.port} or start it with --allow-host`,
    );
  }
  checkRequestOrigin(ctx, req, res);
  const { path, query } = splitTarget(req.url ?? "");
  let route: Route;
  let soul: string | undefined;
  if (path === "/" || path === "/index.html") route = "inspector";
  else if (path === "/v1" || path === "/v1/") route = "routes";
  else if (path === "/v1/status") route = "status";
  else if (path === "/v1/peers") route = "peers";
  else if (path === "/v1/nodes") route = "list";
  else if (path.startsWith("/v1/nodes/")) {
    route = "node";
    soul = decodeComponent(path.slice("/v1/nodes/".length), "The soul in the path");
  } else if (path === "/v1/query") route = "query";
  else if (path === "/v1/search") route = "search";
  else if (path === "/v1/watch") route = "watch";
  else throw new HttpError(404, "unknown_route", `There is no route ${path}; GET /v1 lists the routes`);

  const method = req.method ?? "GET";
  if (method === "OPTIONS") {
    // Only an origin of corsOrigins gets here with an Origin (checkRequestOrigin refused the others).
    const granted = res.hasHeader("access-control-allow-origin");
    const pna = granted && req.headers["access-control-request-private-network"] === "true";
    res.writeHead(204, {
      ...(granted ? PREFLIGHT_HEADERS : {}),
      ...(pna ? { "access-control-allow-private-network": "true" } : {}),
      allow: [...METHODS[route], "OPTIONS"].join(", "),
      "content-length": "0",
    });
    res.end();
    return;
  }
  if (!METHODS[route].includes(method)) {
    const allow = METHODS[route].join(", ");
    throw new HttpError(405, "method_not_allowed", `${path} does not take ${method}; use ${allow}`, {
      allow,
    });
  }
  const m = method === "HEAD" ? "GET" : method;
  requireToken(ctx, req, ROUTES.find((r) => r.route === route && r.method === m));
  if (ctx.closing) throw new HttpError(503, "unavailable", "The node is shutting down");
  const paramsKey = route === "node" ? `node:${method}` : route;
  const params = parseQuery(
    query,
    PARAMS[paramsKey] ?? [],
    `${method} ${route === "node" ? "/v1/nodes/{soul}" : path}`,
  );

  switch (route) {
    case "inspector":
      return await sendInspector(ctx, req, res);
    case "routes":
      return send(res, 200, routeList(ctx));
    case "status":
      return send(res, 200, await status(ctx));
    case "peers": {
      const extras = await ctx.info();
      return send(res, 200, { peers: extras.peers });
    }
    case "list":
      return send(res, 200, await list(ctx, params));
    case "node":
      return await node(ctx, req, res, soul as string, method, params);
    case "query": {
      const q = fromJson(await readJson(ctx, req)) as Query;
      const results = await ctx.db.query(q);
      return send(res, 200, { nodes: results.map((e) => ({ soul: e.soul, data: toJson(e.data) })) });
    }
    case "search":
      throw new HttpError(
        501,
        "not_implemented",
        `Vector search is not available yet in this version of Lattice (${VERSION})`,
      );
    case "watch":
      return watch(ctx, req, res, params);
  }
}

async function status(ctx: Context): Promise<unknown> {
  const extras = await ctx.info();
  const nodes = await ctx.db.countNodes();
  return {
    peerId: extras.peerId,
    addrs: extras.addrs,
    peers: extras.peers.length,
    space: extras.space,
    storage: ctx.db.storage,
    kernels: ctx.db.kernels.name,
    nodes,
    version: VERSION,
    deferred: ctx.db.deferredStatus(),
  };
}

async function list(ctx: Context, params: Map<string, string>): Promise<unknown> {
  const limitText = params.get("limit");
  let limit = DEFAULT_PAGE;
  if (limitText !== undefined) {
    limit = /^\d{1,7}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE)) {
      throw new RangeError(
        `limit must be an integer from 1 to ${MAX_PAGE}, got ${JSON.stringify(limitText)}`,
      );
    }
  }
  const cursor = params.get("cursor");
  const nodes: { soul: string; data: unknown }[] = [];
  // One more than asked tells whether another page follows.
  for await (const e of ctx.db.list({ prefix: params.get("prefix") ?? "", cursor, limit: limit + 1 })) {
    nodes.push({ soul: e.soul, data: toJson(e.data) });
  }
  const more = nodes.length > limit;
  if (more) nodes.pop();
  return { nodes, cursor: more ? nodes[nodes.length - 1].soul : null };
}

async function node(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  soul: string,
  method: string,
  params: Map<string, string>,
): Promise<void> {
  if (method === "GET" || method === "HEAD") {
    const data = await ctx.db.get(soul);
    if (data === undefined) throw new HttpError(404, "not_found", `Node ${JSON.stringify(soul)} not found`);
    return send(res, 200, toJson(data));
  }
  if (method === "PUT") {
    const consistency = params.get("consistency");
    if (consistency !== undefined && !["one", "quorum", "all"].includes(consistency)) {
      throw new RangeError(`consistency must be one, quorum or all, got ${JSON.stringify(consistency)}`);
    }
    const body = await readJson(ctx, req);
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new TypeError(`The body of PUT must be a JSON object, got ${describeJson(body)}`);
    }
    const r = await ctx.db.put(soul, fromJson(body) as Record<string, unknown>);
    return send(res, 200, { soul: r.soul, state: r.state });
  }
  const field = params.get("field");
  const r = await ctx.db.delete(soul, field);
  return send(res, 200, { soul: r.soul, field: field ?? null, state: r.state });
}

/**
 * `GET /v1/watch`: one `data:` event per change under the target, a
 * `: heartbeat` comment every `heartbeatMs`, and checkpoints: id-only events
 * `id: <actor>:<seq>` meaning "every change committed up to this replica's
 * commit `seq` has been sent". A checkpoint is sent at the start and shortly
 * after changes, once the database has finished emitting every commit up to
 * that seq. A client that reconnects with `Last-Event-ID: <actor>:<seq>` first
 * gets every node under the target changed after `seq`, whole (all its
 * current fields, `source` by who wrote them), then the live stream; changes
 * committed during that replay follow it, so a field's last event is its
 * current value. When the actor differs (another database answers at that
 * URL) or `seq` is ahead of the database, everything under the target is
 * replayed. Delivery is at least once.
 */
function watch(ctx: Context, req: IncomingMessage, res: ServerResponse, params: Map<string, string>): void {
  const soul = params.get("soul"), prefix = params.get("prefix");
  if ((soul === undefined) === (prefix === undefined)) {
    throw new TypeError("watch takes exactly one of the query parameters soul and prefix");
  }
  const target = soul !== undefined ? soul : { prefix: prefix as string };
  const resume = parseLastEventId(req.headers["last-event-id"]);
  const client = req.socket.remoteAddress ?? "";
  const mine = ctx.streamsByClient.get(client) ?? 0;
  if (ctx.streams.size >= ctx.maxStreams || mine >= ctx.maxStreamsPerClient) {
    const [n, whose] = mine >= ctx.maxStreamsPerClient
      ? [ctx.maxStreamsPerClient, "per client"]
      : [ctx.maxStreams, "in all"];
    throw new HttpError(
      429,
      "too_many_streams",
      `The node serves at most ${n} event streams at once ${whose}; close one or try again later`,
      { "retry-after": "5" },
    );
  }
  // Set once subscribed and streaming; `end` may run before either.
  const live: { unsubscribe?: () => void; heartbeat?: ReturnType<typeof setInterval> } = {};
  let ended = false;
  const end = () => {
    if (!ctx.streams.delete(end)) return;
    const left = (ctx.streamsByClient.get(client) ?? 1) - 1;
    if (left > 0) ctx.streamsByClient.set(client, left);
    else ctx.streamsByClient.delete(client);
    ended = true;
    live.unsubscribe?.();
    clearInterval(live.heartbeat);
    if (!res.writableEnded) res.end();
  };
  const stream: Stream = { res, turn: -1, fresh: 0 };
  const write = (chunk: string | Uint8Array) => {
    if (res.writableEnded || res.destroyed) return end();
    // Checked before writing: the events of one turn may pass the limit (a large value, or a commit of
    // several, to a reader that keeps up), but a backlog left from an earlier turn past it means the
    // client is not reading.
    if (backlog(ctx, stream) > ctx.streamBuffer) {
      ctx.log.warn("http", "closing an event stream whose client does not keep up", { client });
      end();
      res.destroy();
      return;
    }
    trimStreams(ctx, chunk.length);
    if (ended) return;
    res.write(chunk);
    wrote(ctx, stream, chunk.length);
  };
  const sendChange = (c: Change) => {
    const bytes = changeEvent(ctx, c);
    if (bytes !== undefined) write(bytes);
  };

  // Checkpoints, coalesced: at most one in flight, one more queued behind it.
  let checkpointing = false, again = false;
  const checkpoint = () => {
    if (checkpointing) {
      again = true;
      return;
    }
    checkpointing = true;
    void (async () => {
      try {
        do {
          again = false;
          const seq = await ctx.db.lastSeq();
          // Waits until the database has emitted (so written here) the changes of every commit so far.
          await ctx.db.idle();
          if (ended) return;
          write(`id: ${ctx.db.actor}:${seq}\n\n`);
        } while (again && !ended);
      } catch (e) {
        if (!ended) ctx.log.debug("http", "no watch checkpoint", { error: (e as Error).message });
      } finally {
        checkpointing = false;
      }
    })();
  };

  /** Changes that arrive while a replay runs; sent after it. */
  let held: Change[] | undefined = resume ? [] : undefined;
  // Subscribe first: a bad soul is a 400 before any header is sent.
  live.unsubscribe = ctx.db.watch(target, (c: Change) => {
    if (held) held.push(c);
    else {
      sendChange(c);
      checkpoint();
    }
  });
  ctx.streams.set(end, stream);
  ctx.streamsByClient.set(client, mine + 1);
  res.on("close", end);
  res.on("error", end);
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    "x-accel-buffering": "no",
    "x-content-type-options": "nosniff",
  });
  // The first comment tells the client that the subscription is live.
  res.write(": watching\n\n");
  live.heartbeat = setInterval(() => write(": heartbeat\n\n"), ctx.heartbeatMs);
  if (!resume) return checkpoint();
  replay(ctx, target, resume, res, sendChange, () => ended).then(() => {
    const changes = held ?? [];
    held = undefined;
    for (const c of changes) sendChange(c);
    checkpoint();
  }, (e: Error) => {
    if (ended) return;
    ctx.log.warn("http", "replaying a watch failed; closing its stream", { error: e.message });
    end();
  });
}

/** An open event stream, as the backlog limits see it. */
interface Stream {
  readonly res: ServerResponse;
  /** The turn ({@link Context.turn}) that {@link Stream.fresh} counts. */
  turn: number;
  /** Bytes written to it in that turn. */
  fresh: number;
}

/** Bytes written to an event stream that its client has not read yet (held by node:http or its socket). */
function unread(res: ServerResponse): number {
  return Math.max(res.writableLength, res.socket?.writableLength ?? 0);
}

/**
 * Unread bytes of a stream that were written before the current turn of the
 * event loop: what its client has had the time to read and did not. (Writes
 * leave in a later turn on Deno and Bun, so every event of one turn is still
 * unread as the next is written, even for a client that keeps up.)
 */
function backlog(ctx: Context, s: Stream): number {
  if (s.turn !== ctx.turn) [s.turn, s.fresh] = [ctx.turn, 0];
  return Math.max(0, unread(s.res) - s.fresh);
}

/** Counts `bytes` just written to a stream as fresh until the current turn ends. */
function wrote(ctx: Context, s: Stream, bytes: number): void {
  s.fresh += bytes;
  if (ctx.turnEnding) return;
  ctx.turnEnding = true;
  setTimeout(() => {
    ctx.turn++;
    ctx.turnEnding = false;
  }, 0);
}

/**
 * The `data:` event of a change as UTF-8, encoded by the first stream that
 * sends it and shared with the others (the database hands every watcher the
 * same `Change`); `undefined` when it cannot be encoded (logged).
 */
function changeEvent(ctx: Context, c: Change): Uint8Array | undefined {
  let bytes = ctx.events.get(c);
  if (bytes !== undefined) return bytes;
  try {
    const line = JSON.stringify({ soul: c.soul, changes: toJson(c.changes), source: c.source });
    bytes = UTF8.encode(`data: ${line}\n\n`);
  } catch (e) {
    ctx.log.error("http", "cannot encode a change", { error: (e as Error).message });
    return undefined;
  }
  ctx.events.set(c, bytes);
  return bytes;
}

/**
 * Before `bytes` more are written to an event stream: closes the streams with
 * the largest {@link backlog} until all backlogs, with these bytes, fit in
 * `streamsBufferBytes` (a stream whose client keeps up is never closed for it).
 */
function trimStreams(ctx: Context, bytes: number): void {
  for (;;) {
    let total = bytes, worst: (() => void) | undefined, most = 0;
    for (const [end, stream] of ctx.streams) {
      const n = backlog(ctx, stream);
      total += n;
      if (n > most) [worst, most] = [end, n];
    }
    if (total <= ctx.streamsBuffer || worst === undefined) return;
    const { res } = ctx.streams.get(worst)!;
    ctx.log.warn("http", "closing the event stream with the most unread bytes: all streams hold too many", {
      unread: most,
    });
    worst();
    res.destroy();
  }
}

/** `<actor>:<seq>` of a `Last-Event-ID` header, `undefined` without one; `TypeError` when malformed. */
function parseLastEventId(header: string | string[] | undefined): { actor: string; seq: number } | undefined {
  if (header === undefined || header === "") return undefined;
  const m = typeof header === "string" ? /^([0-9a-f]{16}):(\d{1,15})$/.exec(header) : null;
  if (!m) {
    throw new TypeError(
      `Last-Event-ID must be a checkpoint of this API (<actor>:<seq>), got ${JSON.stringify(String(header))}`,
    );
  }
  return { actor: m[1], seq: Number(m[2]) };
}

/** Sends, as changes, every node under `target` changed after the checkpoint (see {@link watch}). */
async function replay(
  ctx: Context,
  target: string | { prefix: string },
  from: { actor: string; seq: number },
  res: ServerResponse,
  send: (c: Change) => void,
  ended: () => boolean,
): Promise<void> {
  const last = await ctx.db.lastSeq();
  const after = from.actor === ctx.db.actor && from.seq <= last ? from.seq : 0;
  const hit = typeof target === "string"
    ? (s: string) => s === target
    : (s: string) => s.startsWith(target.prefix);
  let cursor: number | undefined;
  for (;;) {
    if (ended()) return;
    const page = await ctx.db.exportOps({ after, cursor, limit: 1000 });
    // Ops of a node come together (pages hold whole nodes); one change per node and writer side.
    const changes = new Map<string, Change>();
    for (const op of page.ops) {
      if (!hit(op.soul)) continue;
      const source = op.actor === ctx.db.actor ? "local" : "remote";
      const key = `${source}:${op.soul}`;
      let c = changes.get(key);
      if (!c) changes.set(key, c = { soul: op.soul, changes: {}, source });
      Object.defineProperty(c.changes, op.field, {
        value: op.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    for (const c of changes.values()) send(c);
    // Let a slow reader catch up instead of buffering a whole database.
    if (res.writableLength > ctx.streamBuffer / 4 && !res.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
    if (page.cursor === undefined) return;
    cursor = page.cursor;
  }
}

// ---------------------------------------------------------------- the inspector

/** The tag of web/index.html that receives the token. */
const TOKEN_META = '<meta name="lattice-token" content="">';

/**
 * The inspector page. A page loaded from loopback (unless `loopbackReads` is
 * off) carries the token in its `lattice-token` meta tag, so it can write (and watch) as the node's owner.
 * No other page can read it: this answer has no CORS grant, a request with
 * `Origin` gets no token, a foreign `Host` (DNS rebinding) was refused
 * before, and framing is denied. A page loaded
 * from another machine carries none and asks for it (or takes `#token=` in
 * its URL).
 */
async function sendInspector(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  ctx.inspector ??= await loadInspector();
  // A fetch from another page carries Origin (a navigation to the page does not): it gets no token,
  // even from an origin of corsOrigins, and no CORS grant.
  res.removeHeader("access-control-allow-origin");
  const local = ctx.loopbackReads && isLoopback(req.socket.remoteAddress) && req.headers.origin === undefined;
  const token = ctx.token !== null && local ? ctx.token : "";
  const html = token === ""
    ? ctx.inspector
    : ctx.inspector.replace(TOKEN_META, TOKEN_META.replace('content=""', `content="${escapeHtml(token)}"`));
  const body = new TextEncoder().encode(html);
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "content-length": String(body.length),
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy":
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; " +
      "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  });
  res.end(body);
}

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  );
}

async function loadInspector(): Promise<string> {
  // Embedded (scripts/build-inspector.mjs), not read from disk: bundles and compiled binaries have no web/.
  return (await import("../web/_inspector_html.ts")).INSPECTOR_HTML;
}

// ---------------------------------------------------------------- requests

/** Splits a request target into its path and query; an absolute-form target keeps only those. */
function splitTarget(target: string): { path: string; query: string } {
  let t = target;
  if (!t.startsWith("/")) {
    try {
      const u = new URL(t);
      t = u.pathname + u.search;
    } catch {
      throw new HttpError(400, "invalid_path", "The request target is not a path");
    }
  }
  const q = t.indexOf("?");
  return q < 0 ? { path: t, query: "" } : { path: t.slice(0, q), query: t.slice(q + 1) };
}

const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** Decodes a percent-encoded component strictly: a stray `%` or bytes that are not UTF-8 are a 400. */
function decodeComponent(text: string, what: string): string {
  if (!BAD_PERCENT.test(text)) {
    try {
      return decodeURIComponent(text);
    } catch {
      // not UTF-8: fall through
    }
  }
  throw new HttpError(400, "invalid_path", `${what} is not valid percent-encoded UTF-8`);
}

/** Parses `a=1&b=2` strictly: known names only, each at most once, `+` as space. */
function parseQuery(query: string, allowed: readonly string[], where: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === "") return out;
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    const name = decodeComponent(rawName.replaceAll("+", " "), "A query parameter name");
    const value = decodeComponent(rawValue.replaceAll("+", " "), `The query parameter ${name}`);
    if (!allowed.includes(name)) {
      const known = allowed.length ? `; it takes ${allowed.join(", ")}` : "; it takes none";
      throw new HttpError(
        400,
        "invalid_path",
        `Unknown query parameter ${JSON.stringify(name)} for ${where}${known}`,
      );
    }
    if (out.has(name)) throw new HttpError(400, "invalid_path", `The query parameter ${name} is given twice`);
    out.set(name, value);
  }
  return out;
}

/** Reads the body, at most `ctx.maxBody` bytes, within `ctx.bodyTimeoutMs`. */
function readBody(ctx: Context, req: IncomingMessage): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpError(413, "payload_too_large", `The request body exceeds the limit of ${ctx.maxBody} bytes`, {
      connection: "close",
    });
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > ctx.maxBody) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const timer = setTimeout(() => {
      finish(
        new HttpError(408, "timeout", `The request body did not arrive within ${ctx.bodyTimeoutMs} ms`, {
          connection: "close",
        }),
      );
    }, ctx.bodyTimeoutMs);
    const onData = (chunk: Uint8Array | string) => {
      const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
      total += bytes.length;
      if (total > ctx.maxBody) return finish(tooLarge());
      chunks.push(bytes);
    };
    const onEnd = () => finish();
    const onAbort = () =>
      finish(new HttpError(400, "bad_request", "The client went away before the body arrived"));
    const finish = (e?: Error) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("aborted", onAbort);
      req.off("error", onAbort);
      req.off("close", onClose);
      if (e) {
        req.pause();
        return reject(e);
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      resolve(out);
    };
    const onClose = () => {
      if (!req.complete) onAbort();
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("aborted", onAbort);
    req.on("error", onAbort);
    req.on("close", onClose);
  });
}

/** Reads and parses a JSON body. */
async function readJson(ctx: Context, req: IncomingMessage): Promise<unknown> {
  const bytes = await readBody(ctx, req);
  if (countJsonItems(bytes, MAX_BODY_ITEMS) > MAX_BODY_ITEMS) {
    throw new HttpError(
      413,
      "payload_too_large",
      `The request body holds more than ${MAX_BODY_ITEMS} JSON objects, arrays and keys, the most one request may; split it (a put writes at most ${MAX_PUT_FIELDS} fields)`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "invalid_json", "The request body is not valid UTF-8");
  }
  if (text.trim() === "") throw new HttpError(400, "invalid_json", "The request body is empty; send JSON");
  try {
    return JSON.parse(text);
  } catch (e) {
    const why = e instanceof SyntaxError ? e.message : "it nests too deep";
    throw new HttpError(400, "invalid_json", `The request body is not valid JSON: ${why}`);
  }
}

function describeJson(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

// ---------------------------------------------------------------- responses

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(bytes.length),
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(bytes);
}

/** Maps an error to its status and code (see the table in the module doc). */
function classify(e: unknown): HttpError | undefined {
  if (e instanceof HttpError) return e;
  if (e instanceof Error && e.name === "QueryTooLargeError") {
    return new HttpError(422, "query_too_large", e.message);
  }
  if (e instanceof TypeError) return new HttpError(400, "invalid_argument", e.message);
  if (e instanceof RangeError) return new HttpError(400, "out_of_range", e.message);
  if (e instanceof SyntaxError) return new HttpError(400, "invalid_syntax", e.message);
  if (e instanceof Error && e.name === "DiskFullError") {
    return new HttpError(507, "insufficient_storage", e.message);
  }
  if (e instanceof Error && e.message === "The database is closed") {
    return new HttpError(503, "unavailable", "The database is closed");
  }
  return undefined;
}

function sendError(ctx: Context, req: IncomingMessage, res: ServerResponse, e: unknown): void {
  let err = classify(e);
  if (!err) {
    ctx.log.error("http", "internal error", {
      request: `${req.method} ${req.url}`,
      error: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
    err = new HttpError(500, "internal", "Internal error; the node's log has the details");
  }
  if (res.headersSent) return destroy(res);
  send(res, err.status, { error: { code: err.code, message: err.message } }, { ...err.headers });
  if (err.headers.connection === "close") {
    // The rest of the body is not read; close once the answer is out instead of draining it.
    res.on("finish", () => setTimeout(() => req.destroy(), 100));
  }
}

function destroy(res: ServerResponse): void {
  try {
    res.destroy();
  } catch {
    // already gone
  }
}
