// @server-only: builds dist/, starts `lattice serve --relay` and drives two Chromium contexts
/**
 * Browser to browser through a relay: two pages (two Chromium contexts, so
 * two separate replicas) load `dist/lattice.js` and join a space through the
 * same `lattice serve --relay` node over WebSockets. Each reserves a slot on
 * the relay; they find each other in the space, signal over the relayed
 * connection and connect directly over WebRTC. Then the relay stops, and a
 * write in one page still reaches the other: gossip and sync run over the
 * direct connection.
 *
 * Chromium (LATTICE_CHROMIUM, default /usr/bin/chromium) is driven with
 * playwright-core; everything stays on 127.0.0.1.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { type Browser, chromium, type Page } from "playwright-core";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { ok, ROOT, run, which } from "./_procs.ts";
import { type ServeProcess, startServe } from "./_serve.ts";
import { eventually } from "./_eventually.ts";

const SPACE = "relay-pages";
/** Waits in the pages, in ms. */
const WAIT = 30_000;

/** The page: `window.lattice` is the library, loaded from beside it. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Lattice relay test</title>
<script type="module">
window.lattice = await import("./lattice.js");
</script>
`;

/** Opens a replica in `page` that joins through `relay`; resolves with its peer id. */
function join(page: Page, relay: string): Promise<string> {
  return page.evaluate(async ({ relay, space }) => {
    // deno-lint-ignore no-explicit-any
    const w = globalThis as any;
    for (let t = 0; !w.lattice && t < 200; t++) await new Promise((r) => setTimeout(r, 50));
    w.db = await w.lattice.open({
      storage: "memory",
      network: {
        space,
        bootstrap: [relay],
        allowPrivateAddresses: true,
        logger: w.lattice.createLogger({ level: "error" }),
      },
    });
    return w.db.network.peerId as string;
  }, { relay, space: SPACE });
}

/** The remote addresses of `page`'s connections to `peer` (none when not connected). */
function addrsTo(page: Page, peer: string): Promise<string[]> {
  return page.evaluate((peer) => {
    // deno-lint-ignore no-explicit-any
    const db = (globalThis as any).db;
    // deno-lint-ignore no-explicit-any
    return db.network.peers().find((p: any) => p.id === peer)?.addrs ?? [];
  }, peer);
}

/** Polls `get(soul)` in `page` until it returns something, at most `ms`. */
function waitGet(page: Page, soul: string, ms = WAIT): Promise<unknown> {
  return page.evaluate(async ({ soul, ms }) => {
    // deno-lint-ignore no-explicit-any
    const db = (globalThis as any).db;
    const end = Date.now() + ms;
    for (;;) {
      const v = await db.get(soul);
      if (v !== undefined || Date.now() > end) return v ?? null;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, { soul, ms });
}

/** A WebRTC connection's remote address (`/webrtc/p2p/…`, or the relayed address it was dialed at). */
const isWebRtc = (addr: string): boolean => /\/webrtc\/p2p\/\w+$/.test(addr);

/** Polls `fn` every 100 ms (each poll evaluates in pages) until it returns something, for `ms`. */
const waitFor = <T>(what: string, fn: () => Promise<T | false | undefined>, ms = WAIT) =>
  eventually(what, fn, ms, 100);

describe("two pages through lattice serve --relay", { timeout: 240_000 }, () => {
  let tmp = "";
  let relay: ServeProcess | undefined;
  let other: ServeProcess | undefined;
  let server: http.Server | undefined;
  let browser: Browser | undefined;

  after(async () => {
    await browser?.close();
    if (server) {
      server.closeAllConnections?.();
      await new Promise((r) => server!.close(r));
    }
    await relay?.stop();
    await other?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    "connect directly over WebRTC and keep replicating after the relay stops",
    { timeout: 240_000 },
    async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-relay-"));
      const nodeExe = which("node");
      assert.ok(nodeExe, "node is on PATH (scripts/build-dist.mjs runs on it)");
      const dist = path.join(tmp, "dist");
      ok(
        await run(nodeExe, ["scripts/build-dist.mjs", "--no-binary", "--outdir", dist], { cwd: ROOT }),
        "scripts/build-dist.mjs",
      );
      const executablePath = process.env.LATTICE_CHROMIUM || "/usr/bin/chromium";
      assert.ok(fs.existsSync(executablePath), `Chromium at ${executablePath}`);

      relay = await startServe([
        "serve",
        "--memory",
        "--http",
        "127.0.0.1:0",
        "--space",
        SPACE,
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--relay",
        "--json",
      ]);
      const ws = relay.ready.addrs.find((a) => /\/ws\/p2p\//.test(a));
      assert.ok(ws, `a WebSockets address among ${relay.ready.addrs.join(" ")}`);

      // A server of the space that is no relay: it finds the pages in the DHT but cannot use a relayed
      // address (no WebRTC through a relay on servers), so it must not dial them.
      other = await startServe([
        "serve",
        "--memory",
        "--http",
        "127.0.0.1:0",
        "--space",
        SPACE,
        "--bootstrap",
        relay.ready.addrs[0],
        "--json",
      ], { env: { LATTICE_LOG: "debug" } });

      server = http.createServer((req, res) => {
        const name = path.basename(new URL(req.url ?? "/", "http://x").pathname);
        const file = path.join(dist, name);
        if (name.endsWith(".js") && fs.existsSync(file)) {
          res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(fs.readFileSync(file));
        } else res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
      });
      await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
      const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

      browser = await chromium.launch({
        executablePath,
        args: CHROMIUM_ARGS.filter((x) => x !== "--headless"),
      });
      const pages: Page[] = [];
      for (let i = 0; i < 2; i++) {
        const page = await (await browser.newContext()).newPage();
        page.on("pageerror", (e) => console.error(`page ${i}: ${e.message}`));
        await page.goto(origin + "/");
        pages.push(page);
      }
      const [a, b] = pages;
      const idA = await join(a, ws);
      const idB = await join(b, ws);

      // Each page is reachable through the relay: its addresses go through it.
      for (const page of pages) {
        const addrs = await waitFor("a /p2p-circuit address", async () => {
          const list: string[] = await page.evaluate(() =>
            // deno-lint-ignore no-explicit-any
            (globalThis as any).db.network.addrs()
          );
          return list.some((x) => x.includes(`/p2p/${relay!.ready.peerId}/p2p-circuit`)) && list;
        });
        assert.ok(addrs.length > 0);
      }

      const reachable = Date.now();
      // They find each other and connect directly: a WebRTC connection, not through the relay.
      const direct = await waitFor("a direct WebRTC connection between the pages", async () => {
        const addrs = await addrsTo(a, idB);
        return addrs.some(isWebRtc) && addrs;
      }, 60_000);
      assert.ok(direct.length > 0);
      // Anti-entropy runs as soon as the direct connection opens (not only every 30 s; the relayed
      // connection that came first carries no sync): each page has a sync state with the other. (Up to
      // 45 s: on a loaded machine the first session over a fresh WebRTC connection can fail, and the
      // periodic round, 30 s later, is the next.)
      for (const [page, peer] of [[a, idB], [b, idA]] as const) {
        await waitFor("a sync session over the direct connection", () =>
          page.evaluate((peer) => {
            // deno-lint-ignore no-explicit-any
            const p = (globalThis as any).db.network.peers().find((p: any) => p.id === peer);
            return p?.sync?.asOf !== undefined;
          }, peer), 45_000);
      }

      await a.evaluate(() =>
        (globalThis as unknown as { db: { put(s: string, d: unknown): Promise<void> } }).db.put("before", {
          n: 1,
        })
      );
      assert.deepEqual(await waitGet(b, "before"), { n: 1 }, "a write crosses while the relay runs");

      // The other server has had a discovery round (every 10 s) since the pages provided the space key
      // (at their next round, at most 10 s after they became reachable).
      await new Promise((r) => setTimeout(r, Math.max(0, reachable + 22_000 - Date.now())));
      const dialed = other.stderr().split("\n").filter((l) =>
        /dial|reconnect/.test(l) && (l.includes(idA) || l.includes(idB))
      );
      assert.deepEqual(dialed, [], "a server leaves pages it can reach only through a relay alone");
      const relayId = relay.ready.peerId!;
      assert.equal(await relay.stop(), 0, "the relay exits cleanly");
      relay = undefined;
      for (const page of pages) {
        await waitFor("the pages to lose the relay", async () => (await addrsTo(page, relayId)).length === 0);
      }

      await a.evaluate(() =>
        (globalThis as unknown as { db: { put(s: string, d: unknown): Promise<void> } }).db.put("after", {
          n: 2,
        })
      );
      assert.deepEqual(
        await waitGet(b, "after"),
        { n: 2 },
        "a write from page A reaches page B with no relay",
      );
      await b.evaluate(() =>
        (globalThis as unknown as { db: { put(s: string, d: unknown): Promise<void> } }).db.put("back", {
          n: 3,
        })
      );
      assert.deepEqual(await waitGet(a, "back"), { n: 3 }, "and back from B to A");
      for (const [page, peer] of [[a, idB], [b, idA]] as const) {
        const still = await addrsTo(page, peer);
        assert.ok(still.length > 0 && still.every(isWebRtc), `only WebRTC connections are left: ${still}`);
      }
    },
  );
});
