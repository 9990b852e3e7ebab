/**
 * `GET /`: the inspector page (web/index.html, embedded as
 * web/_inspector_html.ts), and who gets the token inside it: a page loaded
 * from loopback, never a fetch of another page.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "./context.ts";
import { isLoopback } from "./guard.ts";

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
export async function sendInspector(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
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
  return (await import("../../web/_inspector_html.ts")).INSPECTOR_HTML;
}
