// @server-only: builds dist/ and drives Chromium and a `lattice serve` node from child processes
/**
 * The browser build as a CDN serves it: `scripts/build-dist.mjs` builds
 * `dist/` into a temporary directory, a local static server stands in for the
 * CDN (another origin than the page, with the CORS header CDNs send), and a
 * plain HTML page — no import map, no bundler — does
 * `import { open } from "http://127.0.0.1:PORT/lattice.js"`, puts and gets
 * locally, then opens with a network and joins a `lattice serve` node over
 * WebSockets, both ways. The CDN's request log shows that the page fetches
 * `lattice.js` alone until it asks for a network, then `lattice-network.js`;
 * last it opens an OPFS database twice, which loads `lattice-opfs-worker.js`.
 *
 * Chromium runs headless as a child process (LATTICE_CHROMIUM, default
 * /usr/bin/chromium); the page reports to the page server by `fetch`.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { connect } from "../mod.ts";
import { eventually } from "./_eventually.ts";
import { ok, ROOT, run, which } from "./_procs.ts";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { type ServeProcess, startServe } from "./_serve.ts";

const SPACE = "cdn-page";
/** The page: a plain module script importing the bundle from the CDN's origin. */
function page(cdn: string, bootstrap: string): string {
  return `<!doctype html>
<meta charset="utf-8">
<title>Lattice from a CDN</title>
<script type="module">
import { open } from "${cdn}/lattice.js";
const post = (path, body) => fetch(path, { method: "POST", body: JSON.stringify(body ?? {}) });
async function waitFor(read, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value || Date.now() > end) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}
try {
  const local = await open({ storage: "memory" });
  await local.put("alice", { name: "Alice", pet: { name: "Rex" } });
  const alice = await local.get("alice");
  await local.close();
  await post("/mark");
  const db = await open({
    storage: "memory",
    network: { space: ${JSON.stringify(SPACE)}, bootstrap: [${
    JSON.stringify(bootstrap)
  }], allowPrivateAddresses: true },
  });
  await db.put("from-page", { by: "page" });
  const fromServer = await waitFor(() => db.get("from-server"), 30000);
  const peers = db.network.peers().map((p) => p.id);
  // storage "opfs": its worker comes from the CDN too (a blob: module importing it, cross-origin).
  const first = await open({ storage: "opfs", path: "cdn-page" });
  await first.put("kept", { bytes: new Uint8Array([1, 2, 3]), to: { "#": "alice" } });
  await first.close();
  const again = await open({ storage: "opfs", path: "cdn-page" });
  const kept = await again.get("kept");
  const opfs = { storage: again.storage, kept: { bytes: [...kept.bytes], to: kept.to } };
  await again.close();
  await post("/result", { alice, fromServer, peers, opfs });
} catch (e) {
  await post("/result", { error: String(e && e.stack || e) });
}
</script>
`;
}

/** Starts an HTTP server on 127.0.0.1 and returns its origin. */
async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function close(server: http.Server | undefined): Promise<void> {
  if (!server) return;
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
}

describe("dist/lattice.js from a CDN in a plain page", { timeout: 180_000 }, () => {
  let tmp = "";
  let node: ServeProcess | undefined;
  let cdnServer: http.Server | undefined;
  let pageServer: http.Server | undefined;
  let chromium: ReturnType<typeof spawn> | undefined;
  /** Requests to the CDN, and "mark" where the page asked for a network. */
  const log: string[] = [];

  after(async () => {
    if (chromium?.pid) {
      const pid = chromium.pid;
      if (chromium.exitCode === null && chromium.signalCode === null) {
        const gone = new Promise((r) => chromium!.once("exit", r));
        process.kill(pid, "SIGTERM");
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([gone, new Promise((r) => timer = setTimeout(r, 5000))]);
        clearTimeout(timer);
      }
      try {
        process.kill(-pid, "SIGKILL"); // what is left of its own process group (renderers, helpers)
      } catch {
        // all gone
      }
    }
    await close(cdnServer);
    await close(pageServer);
    if (node) assert.equal(await node.stop(), 0, "the serve node exits cleanly");
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("imports lattice.js, puts and gets, and joins a lattice serve node over WebSockets", {
    timeout: 180_000,
  }, async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-cdn-"));
    const nodeExe = which("node");
    assert.ok(nodeExe, "node is on PATH (scripts/build-dist.mjs runs on it)");
    ok(
      await run(nodeExe, ["scripts/build-dist.mjs", "--no-binary", "--outdir", path.join(tmp, "dist")], {
        cwd: ROOT,
      }),
      "scripts/build-dist.mjs",
    );
    const exe = process.env.LATTICE_CHROMIUM || "/usr/bin/chromium";
    assert.ok(fs.existsSync(exe), `Chromium at ${exe} (apt-get install chromium, or set LATTICE_CHROMIUM)`);
    const dist = path.join(tmp, "dist");
    node = await startServe([
      "serve",
      "--memory",
      "--http",
      "127.0.0.1:0",
      "--space",
      SPACE,
      "--listen",
      "/ip4/127.0.0.1/tcp/0/ws",
      "--json",
    ]);
    const ws = node.ready.addrs.find((a) => /\/ws\/p2p\//.test(a));
    assert.ok(ws, `a WebSockets address among ${node.ready.addrs.join(" ")}`);
    const api = connect(node.ready.http, { token: node.ready.token ?? undefined });
    try {
      await api.put("from-server", { by: "server" });

      cdnServer = http.createServer((req, res) => {
        const name = path.basename(new URL(req.url ?? "/", "http://x").pathname);
        log.push(name);
        const file = path.join(dist, name);
        if (!name.endsWith(".js") || !fs.existsSync(file)) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, {
          "content-type": "text/javascript; charset=utf-8",
          "access-control-allow-origin": "*",
        });
        res.end(fs.readFileSync(file));
      });
      const cdn = await listen(cdnServer);
      let report!: (value: Record<string, unknown>) => void;
      const result = new Promise<Record<string, unknown>>((resolve) => report = resolve);
      pageServer = http.createServer((req, res) => {
        let body = "";
        req.setEncoding("utf8").on("data", (s: string) => body += s).on("end", () => {
          if (req.method === "POST" && req.url === "/mark") log.push("mark");
          if (req.method === "POST" && req.url === "/result") report(JSON.parse(body));
          res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
          res.end(req.url === "/" ? page(cdn, ws) : "");
        });
      });
      const origin = await listen(pageServer);

      chromium = spawn(
        exe,
        [...CHROMIUM_ARGS, `--user-data-dir=${path.join(tmp, "profile")}`, origin + "/"],
        {
          stdio: "ignore",
          detached: true,
        },
      );
      const exited = new Promise<never>((_, reject) =>
        chromium!.once(
          "exit",
          (code) => reject(new Error(`Chromium exited (${code}) before the page reported`)),
        )
      );
      exited.catch(() => {});
      const got = await Promise.race([result, exited]);
      assert.equal(got.error, undefined, String(got.error));
      assert.deepEqual(got.alice, { name: "Alice", pet: { "#": "alice/pet" } }, "put and get in the page");
      assert.deepEqual(got.fromServer, { by: "server" }, "the server's write reached the page");
      assert.ok((got.peers as string[]).includes(node.ready.peerId!), "the page is connected to the node");
      assert.deepEqual(
        await eventually("the page's write on the server", () => api.get("from-page"), 20_000),
        { by: "page" },
      );

      assert.deepEqual(
        got.opfs,
        { storage: "opfs", kept: { bytes: [1, 2, 3], to: { "#": "alice" } } },
        "an OPFS database kept its write across close and open",
      );

      // The core for the local database, the network file once asked, then the OPFS worker (once
      // per worker started, when not cached) and nothing else.
      assert.deepEqual(log.slice(0, 3), ["lattice.js", "mark", "lattice-network.js"]);
      assert.ok(log.length > 3, `the OPFS worker was loaded: ${log.join(" ")}`);
      for (const name of log.slice(3)) assert.equal(name, "lattice-opfs-worker.js");
    } finally {
      api.close();
    }
  });
});
