// @server-only: starts lattice serve and drives Chromium
/**
 * The inspector (`GET /` of `lattice serve`, web/index.html) as a person
 * sees it: headless Chromium (playwright-core; LATTICE_CHROMIUM, default
 * /usr/bin/chromium) loads the page of a node that has a second node as its
 * peer, and the test checks what the issue asks the page to show: the peer
 * id, a soul written through the HTTP API, that soul's neighbourhood picture
 * naming its linked nodes (a click on one opens it), the peer with its sync
 * state, a live change after a write (local, and one replicated from the
 * peer), hostile souls shown as text, and no horizontal scrolling at 390 px.
 * Screenshots go to `LATTICE_TEST_OUTPUT` (if set) or a fresh temporary
 * directory; the test prints where.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { type Browser, chromium, type Page } from "playwright-core";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { type ServeProcess, startServe } from "./_serve.ts";

/** A soul a hostile writer picked: markup that must stay text. */
const HOSTILE = "<img src=x onerror=\"document.title='owned'\">";
/** Waits for the page (polled) in Chromium, at most 10 s unless told. */
const WAIT = 10_000;

describe("the inspector page", { timeout: 180_000 }, () => {
  let a: ServeProcess | undefined, b: ServeProcess | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let outDir: string;

  async function put(node: ServeProcess, soul: string, data: unknown): Promise<void> {
    const res = await fetch(`${node.ready.http}/v1/nodes/${encodeURIComponent(soul)}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${node.ready.token}`, "content-type": "application/json" },
      body: JSON.stringify(data),
    });
    assert.equal(res.status, 200, await res.text());
  }
  const text = (selector: string) => page.locator(selector).first().textContent({ timeout: WAIT });

  before(async () => {
    outDir = process.env.LATTICE_TEST_OUTPUT ?? fs.mkdtempSync(path.join(os.tmpdir(), "lattice-inspector-"));
    fs.mkdirSync(outDir, { recursive: true });
    a = await startServe(["serve", "--memory", "--http", "127.0.0.1:0", "--json"]);
    b = await startServe([
      "serve",
      "--memory",
      "--http",
      "127.0.0.1:0",
      "--json",
      "--bootstrap",
      a.ready.addrs[0],
    ]);
    await put(a, "alice", {
      name: "Alice",
      friend: { "#": "bob" },
      pet: { "#": "rex" },
      odd: { "#": HOSTILE },
    });
    await put(a, "bob", { name: "Bob", knows: { "#": "carol" }, back: { "#": "alice" } });
    await put(a, "rex", { kind: "dog" });
    await put(a, "carol", { name: "Carol" });
    await put(a, HOSTILE, { note: "<script>document.title='owned'</script>" });
    const index = await fetch(`${a.ready.http}/v1/indexes`, {
      method: "POST",
      headers: { authorization: `Bearer ${a.ready.token}`, "content-type": "application/json" },
      body: JSON.stringify({ field: "emb", dim: 3 }),
    });
    assert.equal(index.status, 200, await index.text());
    await put(a, "vec-x", { emb: [1, 0, 0] });
    await put(a, "vec-y", { emb: [0, 1, 0] });
    const executablePath = process.env.LATTICE_CHROMIUM ?? "/usr/bin/chromium";
    browser = await chromium.launch({
      executablePath,
      args: CHROMIUM_ARGS.filter((x) => x !== "--headless"),
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${a.ready.http}/#n=alice`);
  });

  after(async () => {
    await browser?.close();
    await b?.stop();
    await a?.stop();
  });

  it("shows the node's peer id and a soul written through the HTTP API", async () => {
    assert.equal(await text("#peerId"), a!.ready.peerId);
    await page.locator('#nodes li[data-soul="alice"]').waitFor({ timeout: WAIT });
    // The page opens #n=alice once it knows the vector indexes: wait for it, then read.
    await page.locator("#fields", { hasText: '"Alice"' }).waitFor({ timeout: WAIT });
  });

  it("draws the neighbourhood of a node, two steps out, and a click follows a link", async () => {
    for (const soul of ["alice", "bob", "rex", HOSTILE, "carol"]) {
      const g = page.locator(`#graph g.n[data-soul="${soul.replaceAll('"', '\\"')}"]`);
      await g.waitFor({ timeout: WAIT });
      assert.equal(await g.locator("title").textContent(), soul);
    }
    // carol is two steps out (alice → bob → carol); bob links back to alice: an edge, not a new node.
    assert.equal(await page.locator('#graph g.n.c2[data-soul="carol"]').count(), 1);
    assert.equal(await page.locator("#graph g.n").count(), 5);
    // The hostile soul is text: no element came of it, no handler ran.
    assert.equal(await page.locator("img").count(), 0);
    assert.equal(await page.locator("body script").count(), 1);
    await page.locator(`#nodes li[data-soul="${HOSTILE.replaceAll('"', '\\"')}"]`).waitFor({ timeout: WAIT });
    assert.equal(await page.title(), "Lattice inspector");
    await page.locator('#graph g.n[data-soul="bob"]').click();
    await page.locator('#graph g.n.c0[data-soul="bob"]').waitFor({ timeout: WAIT });
    assert.match(await text("#fields") ?? "", /Bob/);
    assert.equal(await page.inputValue("#soul"), "bob");
    await page.goBack();
    await page.locator('#graph g.n.c0[data-soul="alice"]').waitFor({ timeout: WAIT });
  });

  it("lists the peer with its transport, gossip and sync state", async () => {
    const peer = page.locator(`#peers .peer[data-peer="${b!.ready.peerId}"]`);
    // The page asks for peers every 5 s; the first sync session starts when b reaches a.
    await peer.locator(".sync", { hasText: "in sync" }).waitFor({ timeout: 30_000 });
    assert.match(await peer.textContent() ?? "", /TCP/);
  });

  it("shows live changes without being asked, local and from the peer", async () => {
    await page.locator("#dot.on").waitFor({ timeout: WAIT });
    const start = Date.now();
    await put(a!, "live-local", { n: 1 });
    await page.locator('#events li[data-soul="live-local"]').waitFor({ timeout: WAIT });
    console.log(`a local write showed in the live feed after ${Date.now() - start} ms`);
    assert.match(await text('#events li[data-soul="live-local"]') ?? "", /local/);
    await put(b!, "live-remote", { n: 2 });
    await page.locator('#events li[data-soul="live-remote"]').waitFor({ timeout: 20_000 });
    assert.match(await text('#events li[data-soul="live-remote"]') ?? "", /remote/);
    const shot = path.join(outDir, "inspector-desktop.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`inspector screenshots in ${outDir}`);
  });

  it("searches a vector index and opens a result", async () => {
    assert.match(await text("#index option") ?? "", /^emb \(3-d cosine, 2 vectors, ready\)/);
    await page.fill("#k", "1");
    await page.fill("#vector", "[0.1, 0.9, 0]");
    await page.click('#search button[type="submit"]');
    const hit = page.locator('#results li[data-soul="vec-y"]');
    await hit.waitFor({ timeout: WAIT });
    assert.equal(await page.locator("#results li").count(), 1);
    await hit.click();
    await page.locator('#graph g.n.c0[data-soul="vec-y"]').waitFor({ timeout: WAIT });
    assert.match(await text("#fields") ?? "", /\[0, 1, 0\]/);
    await page.goBack();
    await page.locator('#graph g.n.c0[data-soul="alice"]').waitFor({ timeout: WAIT });
  });

  it("fits a phone-sized screen (390 px) without horizontal scrolling", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    // The picture is redrawn narrower, so its labels stay readable.
    await page.locator('#graph[viewBox="0 0 400 460"] g.n.c0[data-soul="alice"]').waitFor({ timeout: WAIT });
    const width = await page.evaluate("document.documentElement.scrollWidth") as number;
    assert.ok(width <= 390, `the page is ${width} px wide at 390 px`);
    await page.screenshot({ path: path.join(outDir, "inspector-phone.png"), fullPage: true });
  });
});
