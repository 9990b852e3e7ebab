// @server-only: drives Chromium with several pages
/**
 * Many tabs, one OPFS database (`openShared`, runtime/tabs.ts): headless
 * Chromium (playwright-core; LATTICE_CHROMIUM, default /usr/bin/chromium)
 * opens pages of one origin (127.0.0.1, served by the browser stage's page
 * server) that import a bundle of mod.ts built as the browser stage builds its
 * test bundles, with the OPFS worker beside it. Checked: the first page runs
 * the database and the others forward to it (a write in one is seen by
 * another's get and watch); and when the owner's page is closed in the middle
 * of a stream of writes from another page, a waiting page takes over, no
 * write whose promise resolved is missing afterwards, none failed, and a third
 * page's watch keeps receiving changes.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { CHROMIUM_ARGS } from "../scripts/test/chromium_args.mjs";
import { bundle } from "../scripts/test/bundle.mjs";
import { startServer } from "../scripts/test/page_server.mjs";
import { buildOpfsWorker, OPFS_WORKER_FILE } from "../scripts/opfs-worker.mjs";

const WAIT = 20_000;

describe("tabs sharing one OPFS database", { timeout: 240_000 }, () => {
  let browser: Browser | undefined;
  let context: BrowserContext;
  let server: { close(): void } | undefined;
  let url: string;
  let dir: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-tabs-"));
    const esbuild = await import("esbuild");
    await buildOpfsWorker(esbuild, path.join(dir, OPFS_WORKER_FILE));
    const error = await bundle(esbuild, "mod.ts", path.join(dir, "lattice.js"));
    assert.equal(error, null);
    const started = await startServer(dir);
    server = started.server;
    url = started.url;
    browser = await chromium.launch({
      executablePath: process.env.LATTICE_CHROMIUM ?? "/usr/bin/chromium",
      args: CHROMIUM_ARGS.filter((x) => x !== "--headless"),
    });
    context = await browser.newContext();
  });

  after(async () => {
    await browser?.close();
    server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A page of the origin with database `name` open through `openShared`, and a watch of `prefix` into `seen`. */
  async function tab(name: string, prefix: string): Promise<Page> {
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await page.goto(url);
    await page.evaluate(async ([name, prefix]) => {
      const L = await import("/bundles/lattice.js");
      const w = globalThis as unknown as Record<string, unknown>;
      const db = await L.openShared({ storage: "opfs", path: name });
      const seen: string[] = [];
      db.watch({ prefix }, (c: { soul: string }) => seen.push(c.soul));
      w.db = db;
      w.seen = seen;
    }, [name, prefix]);
    return page;
  }

  const status = (page: Page) =>
    page.evaluate(() =>
      (globalThis as unknown as { db: { status(): Promise<unknown> } }).db.status()
    ) as Promise<
      { owner: boolean; storage: string; nodes: number; persisted: boolean | undefined }
    >;
  const seen = (page: Page) => page.evaluate(() => (globalThis as unknown as { seen: string[] }).seen);

  it("forwards the calls of the other tabs to the owner, and its changes to their watches", async () => {
    const a = await tab("shared1", "t/");
    const b = await tab("shared1", "t/");
    const sa = await status(a), sb = await status(b);
    assert.equal(sa.owner, true);
    assert.equal(sb.owner, false);
    assert.equal(sa.storage, "opfs");
    assert.equal(typeof sa.persisted, "boolean");
    assert.equal(sb.persisted, sa.persisted);
    await a.evaluate(() => (globalThis as any).db.put("t/1", { by: "a" }));
    await b.waitForFunction(() => (globalThis as any).seen.includes("t/1"), null, { timeout: WAIT });
    assert.deepEqual(await b.evaluate(() => (globalThis as any).db.get("t/1")), { by: "a" });
    await b.evaluate(() => (globalThis as any).db.put("t/2", { by: "b" }));
    await a.waitForFunction(() => (globalThis as any).seen.includes("t/2"), null, { timeout: WAIT });
    assert.deepEqual(await a.evaluate(() => (globalThis as any).db.get("t/2")), { by: "b" });
    assert.deepEqual(
      await b.evaluate(async () => (await (globalThis as any).db.query({ from: "t/1" })).length > 0),
      true,
    );
    assert.equal((await status(b)).nodes, 2);
    await b.evaluate(() => (globalThis as any).db.close());
    await a.evaluate(() => (globalThis as any).db.close());
    await a.close();
    await b.close();
  });

  it("hands the database over when the owner's tab closes, losing no resolved write", async () => {
    const N = 300;
    const a = await tab("shared2", "s/");
    const b = await tab("shared2", "s/");
    const c = await tab("shared2", "s/");
    assert.equal((await status(a)).owner, true);
    // B writes one after another; each index is noted once its put resolved.
    await b.evaluate((n) => {
      const w = globalThis as any;
      w.acked = [];
      w.failed = [];
      w.run = (async () => {
        for (let i = 0; i < n; i++) {
          try {
            await w.db.put(`s/${String(i).padStart(4, "0")}`, { i });
            w.acked.push(i);
          } catch (e) {
            w.failed.push(`${i}: ${e}`);
          }
        }
      })();
    }, N);
    await b.waitForFunction(() => (globalThis as any).acked.length >= 30, null, { timeout: WAIT });
    await a.close(); // no db.close(): the tab just goes, as when it is closed or crashes
    await b.waitForFunction(
      (n) => (globalThis as any).acked.length + (globalThis as any).failed.length >= n,
      N,
      {
        timeout: 120_000,
      },
    );
    const failed = await b.evaluate(() => (globalThis as any).failed);
    assert.deepEqual(failed, []);
    const sb = await status(b), sc = await status(c);
    assert.equal(sb.owner || sc.owner, true, "B or C took over");
    assert.equal(sb.owner && sc.owner, false, "one owner");
    // Every resolved write is there, read from either tab.
    const acked = await b.evaluate(() => (globalThis as any).acked) as number[];
    assert.equal(acked.length, N);
    const souls = await c.evaluate(async () => {
      const out: string[] = [];
      for await (const e of (globalThis as any).db.list({ prefix: "s/" })) out.push(e.soul);
      return out;
    });
    for (const i of acked) {
      assert.ok(souls.includes(`s/${String(i).padStart(4, "0")}`), `write ${i} is missing`);
    }
    // The watches kept receiving changes after the take-over: the last write reached both.
    const last = `s/${String(N - 1).padStart(4, "0")}`;
    for (const page of [b, c]) {
      await page.waitForFunction((s) => (globalThis as any).seen.includes(s), last, { timeout: WAIT });
    }
    await b.evaluate(() => (globalThis as any).db.close());
    await c.evaluate(() => (globalThis as any).db.close());
  });
});
