// @server-only: starts `lattice serve` and drives two Chromium contexts, one of which goes offline
/**
 * Offline and back: a `lattice serve` node and two pages (two Chromium
 * contexts, so two replicas; page A on `storage: "opfs"`, page B in memory)
 * in one space. Page A reaches the server through a TCP proxy on 127.0.0.1
 * that the test can cut: going offline is the proxy cut (its connection to
 * the server really ends) and `context.setOffline(true)` (no new connection
 * anywhere, and the page's `offline` event). While A is offline, all three
 * write, including the same field of one node; A's writes resolve into OPFS
 * and A hears nothing of the others'. Then the proxy comes back and the
 * context goes online: the page's `online` event makes the node redial at
 * once (net/members.ts `online()`), the reconnection runs anti-entropy, and
 * all three replicas end with the same values for every node, the conflict
 * resolved the same way everywhere.
 *
 * What A's reconnection brings reaches B by B's anti-entropy with the server
 * (gossip carries only each replica's own writes), so B syncs every 2 s here.
 *
 * Chromium (LATTICE_CHROMIUM, default /usr/bin/chromium) is driven with
 * playwright-core; everything stays on 127.0.0.1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { bundle } from "../scripts/test/bundle.mjs";
import { startServer } from "../scripts/test/page_server.mjs";
import { buildOpfsWorker, OPFS_WORKER_FILE } from "../scripts/opfs-worker.mjs";
import type { OpenedDatabase } from "../mod.ts";
import { type ServeProcess, startServe } from "./_serve.ts";
import { eventually } from "./_eventually.ts";

const SPACE = "offline-pages";
/** Waits, in ms. */
const WAIT = 20_000;
/** Writes of each replica while A is offline. */
const WRITES = 30;
/**
 * How long A stays offline, in ms: long enough for its redial backoff (250 ms doubling, jittered)
 * to grow to seconds, so a reconnection within a second is the `online` event's doing.
 */
const OFFLINE_MS = 10_000;

/** What a page holds (globals set in it). */
interface Held {
  db: OpenedDatabase;
  events: string[];
  /** The node's log lines about its redials. */
  redials: string[];
}

/** A TCP proxy from a port of 127.0.0.1 to `target`, that can be cut (every connection ends, new ones are refused) and restored. */
async function tcpProxy(target: number) {
  const sockets = new Set<net.Socket>();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) return void client.destroy();
    const upstream = net.connect(target, "127.0.0.1");
    for (const [a, b] of [[client, upstream], [upstream, client]]) {
      sockets.add(a);
      a.pipe(b);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** Polls `fn` every 100 ms (each poll evaluates in pages) until it returns something, for `ms`. */
const waitFor = <T>(what: string, fn: () => Promise<T | false | undefined>, ms = WAIT) =>
  eventually(what, fn, ms, 100);

describe("a page that goes offline and comes back", { timeout: 180_000 }, () => {
  let dir = "";
  let serve: ServeProcess | undefined;
  let pageServer: { close(): void } | undefined;
  let proxy: Awaited<ReturnType<typeof tcpProxy>> | undefined;
  let browser: Browser | undefined;
  let url = "";

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-offline-"));
    const esbuild = await import("esbuild");
    await buildOpfsWorker(esbuild, path.join(dir, OPFS_WORKER_FILE));
    assert.equal(await bundle(esbuild, "mod.ts", path.join(dir, "lattice.js")), null);
    const started = await startServer(dir);
    pageServer = started.server;
    url = started.url;
    browser = await chromium.launch({
      executablePath: process.env.LATTICE_CHROMIUM ?? "/usr/bin/chromium",
      args: CHROMIUM_ARGS.filter((x) => x !== "--headless"),
    });
  });

  after(async () => {
    await browser?.close();
    pageServer?.close();
    await proxy?.close();
    await serve?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A page in its own context with a replica that joins through `bootstrap`. */
  async function replica(
    context: BrowserContext,
    name: string,
    storage: string,
    bootstrap: string,
    syncInterval?: number,
  ) {
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`page ${name}: ${e.message}`));
    await page.goto(url);
    await page.evaluate(async ({ space, storage, bootstrap, name, syncInterval }) => {
      const L = await import("/bundles/lattice.js");
      const w = globalThis as unknown as Held;
      w.events = [];
      w.redials = [];
      addEventListener("offline", () => w.events.push("offline"));
      addEventListener("online", () => w.events.push("online"));
      w.db = await L.open({
        storage,
        path: name,
        network: {
          space,
          bootstrap: [bootstrap],
          allowPrivateAddresses: true,
          syncInterval,
          logger: L.createLogger({
            level: "debug",
            write: (line: string) => {
              if (/reconnect|redial|bootstrap/.test(line)) w.redials.push(line);
              else if (/^\S+ error /.test(line)) console.error(line);
            },
          }),
        },
      });
    }, { space: SPACE, storage, bootstrap, name, syncInterval });
    return page;
  }

  const connectedTo = (page: Page, peer: string) =>
    page.evaluate(
      (peer) => (globalThis as unknown as Held).db.network!.peers().some((p) => p.id === peer),
      peer,
    );
  const gossipsWith = (page: Page, peer: string) =>
    page.evaluate(
      (peer) => (globalThis as unknown as Held).db.network!.peers().some((p) => p.id === peer && p.gossip),
      peer,
    );
  const get = (page: Page, soul: string) =>
    page.evaluate((soul) => (globalThis as unknown as Held).db.get(soul), soul) as Promise<unknown>;
  const put = (page: Page, soul: string, data: Record<string, unknown>) =>
    page.evaluate(({ soul, data }) => (globalThis as unknown as Held).db.put(soul, data).then(() => {}), {
      soul,
      data,
    });
  /** Several puts in a page, each awaited; resolves once all resolved. */
  const putMany = (page: Page, writes: [string, Record<string, unknown>][]) =>
    page.evaluate(async (writes) => {
      for (const [soul, data] of writes) await (globalThis as unknown as Held).db.put(soul, data);
    }, writes);
  async function serverGet(soul: string): Promise<unknown> {
    const res = await fetch(`${serve!.ready.http}/v1/nodes/${encodeURIComponent(soul)}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    assert.equal(res.status, 200);
    return await res.json();
  }
  async function serverPut(soul: string, data: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${serve!.ready.http}/v1/nodes/${encodeURIComponent(soul)}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${serve!.ready.token}`, "content-type": "application/json" },
      body: JSON.stringify(data),
    });
    assert.equal(res.status, 200, await res.text());
  }

  it("keeps writing into OPFS while offline and converges with the others when back", async () => {
    serve = await startServe([
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
    const ws = serve.ready.addrs.find((a) => /\/ws\/p2p\//.test(a));
    assert.ok(ws, `a WebSockets address among ${serve.ready.addrs.join(" ")}`);
    const serverId = serve.ready.peerId!;
    proxy = await tcpProxy(Number(/\/tcp\/(\d+)\//.exec(ws)![1]));
    const viaProxy = ws.replace(/\/tcp\/\d+\//, `/tcp/${proxy.port}/`);

    const ctxA = await browser!.newContext();
    const ctxB = await browser!.newContext();
    const a = await replica(ctxA, "offline1", "opfs", viaProxy);
    const b = await replica(ctxB, "b", "memory", ws, 2_000);
    assert.equal(await a.evaluate(() => (globalThis as unknown as Held).db.storage), "opfs");
    for (const page of [a, b]) {
      await waitFor("the pages to reach the server", () => connectedTo(page, serverId));
    }
    // Gossip flows once both ends of each connection are subscribed to the space's topic.
    const idA = await a.evaluate(() => (globalThis as unknown as Held).db.network!.peerId);
    const idB = await b.evaluate(() => (globalThis as unknown as Held).db.network!.peerId);
    await waitFor("the server and the pages to gossip", async () => {
      const res = await fetch(`${serve!.ready.http}/v1/peers`);
      const { peers } = await res.json() as { peers: { id: string; gossip: boolean }[] };
      const onServer = peers.filter((p) => p.gossip && (p.id === idA || p.id === idB)).length === 2;
      return onServer && await gossipsWith(a, serverId) && await gossipsWith(b, serverId);
    });

    // Online, a write of each reaches the others.
    await serverPut("before/s", { by: "s" });
    await put(a, "before/a", { by: "a" });
    await put(b, "before/b", { by: "b" });
    for (const page of [a, b]) {
      for (const soul of ["before/s", "before/a", "before/b"]) {
        await waitFor(`${soul} everywhere`, async () => (await get(page, soul)) !== undefined);
      }
    }
    await waitFor("before/a on the server", async () => (await serverGet("before/a")) !== undefined);

    // A goes offline: its connection to the server ends and it can open no other.
    proxy.cut();
    const cut = Date.now();
    await ctxA.setOffline(true);
    await waitFor("A to lose the server", async () => !(await connectedTo(a, serverId)));
    assert.deepEqual(await a.evaluate(() => (globalThis as unknown as Held).events), ["offline"]);

    // All three write, the same field of "shared" too; A's writes resolve while it is offline.
    const writes = (who: string): [string, Record<string, unknown>][] =>
      Array.from({ length: WRITES }, (_, i) => [`${who}/${i}`, { by: who, i }]);
    await putMany(a, writes("a"));
    await putMany(b, writes("b"));
    for (const [soul, data] of writes("s")) await serverPut(soul, data);
    await put(a, "shared", { v: "a", a: true });
    await put(b, "shared", { v: "b", b: true });
    await serverPut("shared", { v: "s", s: true });
    assert.deepEqual(await get(a, "a/0"), { by: "a", i: 0 }, "A reads its offline writes back");
    // B and the server have each other's writes; A has none of them: it really is cut off.
    await waitFor("b/ on the server", async () => (await serverGet(`b/${WRITES - 1}`)) !== undefined);
    await waitFor("s/ on B", async () => (await get(b, `s/${WRITES - 1}`)) !== undefined);
    assert.equal(await get(a, "b/0"), undefined, "A got nothing while offline");
    assert.equal(await get(a, "s/0"), undefined, "A got nothing while offline");
    assert.equal(await serverGet("a/0"), undefined, "nothing of A's left while offline");
    assert.equal(await connectedTo(a, serverId), false);

    await new Promise((r) => setTimeout(r, cut + OFFLINE_MS - Date.now()));
    const redialsOffline = await a.evaluate(() => (globalThis as unknown as Held).redials.length);

    // Back online: the proxy lets connections through again and the page hears `online`.
    proxy.restore();
    const back = Date.now();
    await ctxA.setOffline(false);
    await waitFor("A to reach the server again", () => connectedTo(a, serverId));
    const reconnected = Date.now() - back;
    assert.deepEqual(await a.evaluate(() => (globalThis as unknown as Held).events), ["offline", "online"]);
    // The `online` event redialed the server at once (its backoff had grown while offline).
    const redials = await a.evaluate(() => (globalThis as unknown as Held).redials);
    assert.ok(
      redials.some((l) => l.includes(`online: redial ${serverId}`)),
      `no redial on \`online\`:\n${redials.join("\n")}`,
    );

    // Every replica ends with the same value of every node.
    const souls = ["before/s", "before/a", "before/b", "shared"];
    for (const who of ["a", "b", "s"]) for (const [soul] of writes(who)) souls.push(soul);
    let last = "";
    await waitFor("the three replicas to converge", async () => {
      const sa = await Promise.all(souls.map((s) => get(a, s)));
      const sb = await Promise.all(souls.map((s) => get(b, s)));
      const ss = await Promise.all(souls.map((s) => serverGet(s)));
      const missing = souls.filter((_, i) =>
        sa[i] === undefined || sb[i] === undefined || ss[i] === undefined
      );
      last = `${missing.length} nodes missing somewhere (${missing.slice(0, 5).join(" ")}); shared: ` +
        JSON.stringify([sa.at(3), sb.at(3), ss.at(3)]);
      if (missing.length > 0) return false;
      const ja = JSON.stringify(sa), jb = JSON.stringify(sb), js = JSON.stringify(ss);
      return ja === jb && jb === js;
    }, 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${last}`);
    });
    const converged = Date.now() - back;
    const shared = await get(a, "shared") as Record<string, unknown>;
    // The field written by all three holds one of their values everywhere; the others merge.
    assert.ok(["a", "b", "s"].includes(shared.v as string), JSON.stringify(shared));
    assert.deepEqual({ ...shared, v: 0 }, { v: 0, a: true, b: true, s: true });
    console.log(
      `offline ${OFFLINE_MS} ms (${redialsOffline} redial log lines); back online: A reconnected in ${reconnected} ms, ` +
        `all three converged in ${converged} ms`,
    );

    for (const page of [a, b]) await page.evaluate(() => (globalThis as unknown as Held).db.close());
  });
});
