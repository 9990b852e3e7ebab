/**
 * Who may ask, checked before a request does anything (the order is in
 * net/http.ts): the `Host` must be one the node serves (DNS rebinding), an
 * `Origin` must be the node's own or one of `corsOrigins` (CSRF and CORS),
 * and the bearer token must be there where the route needs it (compared in
 * constant time). Also the checks of the `--cors-origin` and `--allow-host`
 * values, shared with the CLI.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "./context.ts";
import { HttpError } from "./errors.ts";

/** Preflight answer for an origin of `corsOrigins` (with its `access-control-allow-origin`). */
export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, accept, last-event-id",
  "access-control-max-age": "600",
};

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
export function servesHost(ctx: Context, host: string | undefined): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(h);
  if (!m) return false;
  const name = m[1], port = m[2] === undefined ? 80 : Number(m[2]);
  if (port === ctx.port && (name === "localhost" || IPV4.test(name) || IPV6.test(name))) return true;
  return ctx.hosts.has(h) || ctx.hosts.has(name);
}

/** Whether an address (as `socket.remoteAddress` gives it) is a loopback one. */
export function isLoopback(address: string | undefined): boolean {
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
export function checkRequestOrigin(ctx: Context, req: IncomingMessage, res: ServerResponse): void {
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

/**
 * Throws 401 unless the request has the token or needs none (see
 * `HttpApiOptions.token`); `spec` is the route's row of the route list
 * (net/http/routes.ts): `open` needs no token, `read` none from loopback.
 */
export function requireToken(
  ctx: Context,
  req: IncomingMessage,
  spec: { readonly read?: true; readonly open?: true } | undefined,
): void {
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
