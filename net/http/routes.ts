/**
 * The routes of the HTTP API: the `/v1` route list (each row says whether it
 * is a read, which decides who needs the token; `GET /v1` serves it), the
 * dispatch of a request through the guards to its route, and the handlers of
 * the JSON routes (status, peers, nodes, list, query, search, indexes). `/v1/watch`
 * is in net/http/events.ts, `/` in net/http/inspector.ts.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { IndexOptions, Query, SearchOptions } from "../../core/database.ts";
import { fromJson, toJson } from "../../core/json.ts";
import { VERSION } from "../../version.ts";
import type { Context } from "./context.ts";
import { HttpError, send } from "./errors.ts";
import { watch } from "./events.ts";
import { checkRequestOrigin, PREFLIGHT_HEADERS, requireToken, servesHost } from "./guard.ts";
import { sendInspector } from "./inspector.ts";
import { decodeComponent, describeJson, parseQuery, readJson, splitTarget } from "./request.ts";

/** Most nodes one `GET /v1/nodes` page returns; also the default page size is {@link DEFAULT_PAGE}. */
export const MAX_PAGE = 1000;
/** Nodes per `GET /v1/nodes` page when `limit` is not given. */
export const DEFAULT_PAGE = 100;

type Route =
  | "routes"
  | "status"
  | "peers"
  | "list"
  | "node"
  | "query"
  | "search"
  | "indexes"
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
    does: "vector search, body as db.search: {results: [{soul, score, node}]}",
    read: true,
  },
  {
    route: "indexes",
    method: "POST",
    path: "/v1/indexes",
    does: "declares a vector index, body as db.createIndex: {index}",
  },
  {
    route: "indexes",
    method: "GET",
    path: "/v1/indexes",
    does:
      "the declared vector indexes: {indexes: [{field, dim, metric, m, efConstruction, ef, count, state}]}",
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

/** Answers one request: the guards, then its route (errors are thrown, for `sendError`). */
export async function handle(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
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
  else if (path === "/v1/indexes") route = "indexes";
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
    case "search": {
      const results = await ctx.db.search(fromJson(await readJson(ctx, req)) as SearchOptions);
      return send(res, 200, {
        results: results.map((r) => ({ soul: r.soul, score: r.score, node: toJson(r.node) })),
      });
    }
    case "indexes":
      if (method === "POST") {
        const index = await ctx.db.createIndex(await readJson(ctx, req) as IndexOptions);
        return send(res, 200, { index });
      }
      return send(res, 200, { indexes: ctx.db.indexes() });
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
    // The public key (hex) of the identity that signs the node's writes, or null (mod.ts `open`).
    identity: ctx.db.trust.identity?.id ?? null,
    ...(extras.relay ? { relay: extras.relay } : {}),
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
