/**
 * The HTTP API of a running node (docs/API.md "HTTP API"), on `node:http`,
 * which Deno, Bun and Node all provide. `node:http` is loaded with a dynamic
 * `import()` of a variable, so a browser bundle that reaches this file never
 * pulls it in.
 *
 * Routes (`GET /v1` lists them as JSON): `GET /v1/status`,
 * `PUT|GET|DELETE /v1/nodes/{soul}`, `GET /v1/nodes?prefix=&limit=&cursor=`,
 * `POST /v1/query`, `POST /v1/search`, `POST|GET /v1/indexes`,
 * `GET /v1/watch?soul=|prefix=` (Server-Sent Events, resumable: see
 * net/http/events.ts), `GET /v1/peers`, `GET /` (the inspector page,
 * `web/index.html`). Values travel as in `core/json.ts` (bytes as
 * `{"$bytes": base64}`).
 *
 * This file starts and stops the server (connections, idle timeouts, a
 * graceful close); the parts of a request live in net/http/, one concept
 * each: `routes.ts` (the route list, dispatch, JSON routes), `guard.ts`
 * (Host, Origin/CORS, token), `request.ts` (target, query, body limits),
 * `events.ts` (the watch stream and its caps), `inspector.ts` (the page),
 * `errors.ts` (error codes and answers), `context.ts` (their shared state).
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
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { Database } from "../core/database.ts";
import { systemWorld, type Timer, type World } from "../core/world.ts";
import { type Logger, silentLogger } from "../runtime/log.ts";
import { checkToken, newToken } from "./token.ts";
import type { Context, StatusExtras } from "./http/context.ts";
import { destroy, sendError } from "./http/errors.ts";
import {
  DEFAULT_MAX_STREAMS,
  DEFAULT_MAX_STREAMS_PER_CLIENT,
  DEFAULT_STREAM_BUFFER_BYTES,
  DEFAULT_STREAMS_BUFFER_BYTES,
} from "./http/events.ts";
import { checkCorsOrigin, checkServedHost } from "./http/guard.ts";
import { DEFAULT_MAX_BODY_BYTES } from "./http/request.ts";
import { handle } from "./http/routes.ts";

export type { PeerInfo, StatusExtras } from "./http/context.ts";
export {
  DEFAULT_MAX_STREAMS,
  DEFAULT_MAX_STREAMS_PER_CLIENT,
  DEFAULT_STREAM_BUFFER_BYTES,
  DEFAULT_STREAMS_BUFFER_BYTES,
} from "./http/events.ts";
export { checkCorsOrigin, checkServedHost } from "./http/guard.ts";
export { DEFAULT_MAX_BODY_BYTES, MAX_BODY_ITEMS } from "./http/request.ts";
export { DEFAULT_PAGE, MAX_PAGE } from "./http/routes.ts";

const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
const CLOSE_GRACE_MS = 10_000;

type NodeHttp = typeof import("node:http");

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
  /** Clock and timers: request times, idle and body timeouts, heartbeats (default `systemWorld`). */
  readonly world?: World;
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
  const world = options.world ?? systemWorld;
  const specifier = "node:http"; // a variable, so bundlers leave it out
  const http = await import(specifier) as NodeHttp;

  const ctx: Context = {
    db,
    info: options.info,
    maxBody,
    bodyTimeoutMs: options.bodyTimeoutMs ?? 30_000,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    log,
    world,
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
  const sockets = new Map<Socket, { busy: number; timer?: Timer }>();
  // Closes a connection that sends no complete request in time. Deno's and Bun's node:http enforce
  // neither headersTimeout nor keepAliveTimeout on a connection that never sends a byte, and
  // Node checks only every 30 s; this timer works the same on all three.
  const arm = (socket: Socket) => {
    const state = sockets.get(socket);
    if (!state) return;
    world.clearTimer(state.timer);
    state.timer = world.setTimer(() => {
      if (state.busy === 0) socket.destroy();
    }, idleMs);
  };

  const server: Server = http.createServer((req, res) => {
    const started = world.now();
    const state = sockets.get(req.socket);
    if (state) {
      state.busy++;
      world.clearTimer(state.timer);
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
        log.debug("http", `${req.method} ${req.url}`, { status: res.statusCode, ms: world.now() - started });
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
      world.clearTimer(sockets.get(socket)?.timer);
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
      let timer: Timer | undefined;
      await Promise.race([
        Promise.allSettled([...inflight]),
        new Promise<void>((resolve) => timer = world.setTimer(resolve, CLOSE_GRACE_MS)),
      ]);
      world.clearTimer(timer);
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      for (const [s, state] of sockets) {
        world.clearTimer(state.timer);
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
