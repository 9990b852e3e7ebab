/**
 * The page server of the Chromium stage: serves tests/_browser/index.html and the bundles from
 * 127.0.0.1, cross-origin isolated (SharedArrayBuffer and the OPFS sqlite VFS need it).
 *
 * @module
 */

import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { BROWSER_DIR } from "./config.mjs";

export function startServer(bundleDir) {
  const indexHtml = path.join(BROWSER_DIR, "index.html");
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const headers = {
      "Cache-Control": "no-store",
      // Cross-origin isolation: SharedArrayBuffer and the OPFS sqlite VFS need it.
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    };
    let file = null;
    let type = "";
    if (url.pathname === "/" || url.pathname === "/index.html") {
      file = indexHtml;
      type = "text/html; charset=utf-8";
    } else {
      const m = url.pathname.match(/^\/bundles\/([\w.-]+\.js)$/);
      if (m) {
        file = path.join(bundleDir, m[1]);
        type = "text/javascript; charset=utf-8";
      }
    }
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204, headers).end();
      return;
    }
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { ...headers, "Content-Type": type });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(
      0,
      "127.0.0.1",
      () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }),
    );
  });
}
