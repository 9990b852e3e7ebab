// @server-only: drives Chromium pages that reload, close and crash
/**
 * The durability promise of `storage: "opfs"` in a real browser: headless
 * Chromium (playwright-core; LATTICE_CHROMIUM, default /usr/bin/chromium)
 * opens pages of one origin (127.0.0.1, served by the browser stage's page
 * server) that import a bundle of mod.ts with the OPFS worker beside it, as
 * tests/opfs_tabs.test.ts does. Checked: a put is there after the page
 * reloads; and after 10 000 writes (awaited one by one, then concurrent), a
 * page that goes without `db.close()` — closed without its unload handlers,
 * or its renderer crashed in the middle of the writes — leaves every write
 * whose promise resolved in the database that a new page of the origin opens.
 *
 * The page reports each resolved write to the test as it resolves (an exposed
 * function), so what the test holds as acknowledged was acknowledged before
 * the page went.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import type { OpenedDatabase as Database } from "../mod.ts";
import { type Pages, startPages } from "./_pages.ts";

/** Writes of the close and crash cases: the first AWAITED one after another, the rest in concurrent rounds. */
const N = 10_000;
const AWAITED = 1_000;
const ROUND = 100;

/** What a page holds (globals set in it). */
interface Held {
  db: Database;
  failed: string[];
  run: Promise<void>;
  ack(indices: number[]): void;
}

describe("an OPFS database across reloads, closes and crashes", { timeout: 300_000 }, () => {
  let pages: Pages | undefined;
  let context: BrowserContext;
  let url: string;

  before(async () => {
    pages = await startPages("reload");
    ({ context, url } = pages);
  });

  after(async () => {
    await pages?.close();
  });

  /** A new page of the origin with OPFS database `name` open as `db`. */
  async function page(name: string, into?: Page): Promise<Page> {
    const p = into ?? await context.newPage();
    if (into === undefined) p.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await p.goto(url);
    await openIn(p, name);
    return p;
  }

  const openIn = (p: Page, name: string) =>
    p.evaluate(async (name) => {
      const L = await import("/bundles/lattice.js");
      (globalThis as unknown as Held).db = await L.open({ storage: "opfs", path: name });
    }, name);

  /** The souls under `prefix` in `p`'s database. */
  const souls = (p: Page, prefix: string) =>
    p.evaluate(async (prefix) => {
      const out: string[] = [];
      for await (const e of (globalThis as unknown as Held).db.list({ prefix })) out.push(e.soul);
      return out;
    }, prefix);

  it("keeps a put across a reload of the page", async () => {
    const p = await page("reload1");
    await p.evaluate(() => (globalThis as unknown as Held).db.put("r/1", { kept: true, n: 1 }));
    await p.reload(); // no db.close(): the reload ends the page and its worker
    await openIn(p, "reload1");
    assert.deepEqual(await p.evaluate(() => (globalThis as unknown as Held).db.get("r/1")), {
      kept: true,
      n: 1,
    });
    assert.equal(await p.evaluate(() => (globalThis as unknown as Held).db.storage), "opfs");
    await p.evaluate(() => (globalThis as unknown as Held).db.close());
    await p.close();
  });

  /** Starts the N writes in `p` (souls `w/00000`…); each resolved index is added to `acked` on the test's side. */
  async function write(p: Page, acked: Set<number>): Promise<void> {
    await p.exposeFunction("ack", (indices: number[]) => {
      for (const i of indices) acked.add(i);
    });
    await p.evaluate(([n, awaited, round]) => {
      const w = globalThis as unknown as Held;
      const soul = (i: number) => `w/${String(i).padStart(5, "0")}`;
      // Resolved indices go to the test in batches, every few ms (one message per index would
      // cost more than the writes).
      let resolved: number[] = [];
      const flush = () => {
        if (resolved.length > 0) w.ack(resolved);
        resolved = [];
      };
      const timer = setInterval(flush, 5);
      w.failed = [];
      w.run = (async () => {
        for (let i = 0; i < awaited; i++) {
          await w.db.put(soul(i), { i, text: `write ${i}` });
          resolved.push(i);
        }
        for (let i = awaited; i < n; i += round) {
          const puts: Promise<void>[] = [];
          for (let j = i; j < Math.min(n, i + round); j++) {
            puts.push(
              w.db.put(soul(j), { i: j, text: `write ${j}` }).then(
                () => void resolved.push(j),
                (e) => void w.failed.push(`${j}: ${e}`),
              ),
            );
          }
          await Promise.all(puts);
        }
        clearInterval(timer);
        flush();
      })();
    }, [N, AWAITED, ROUND] as const);
  }

  /**
   * Every write in `acked` is in database `name`, opened in a new page (or in `loaded`, a page
   * of the origin with the library loaded); the count of what is there.
   */
  async function check(name: string, acked: Set<number>, loaded?: Page): Promise<number> {
    const q = loaded ?? await page(name);
    if (loaded) await openIn(loaded, name);
    const there = new Set(await souls(q, "w/"));
    const missing = [...acked].filter((i) => !there.has(`w/${String(i).padStart(5, "0")}`));
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged writes are missing`);
    const sample = [...acked].slice(-3);
    for (const i of sample) {
      const v = await q.evaluate(
        (s) => (globalThis as unknown as Held).db.get(s),
        `w/${String(i).padStart(5, "0")}`,
      );
      assert.deepEqual(v, { i, text: `write ${i}` });
    }
    await q.evaluate(() => (globalThis as unknown as Held).db.close());
    await q.close();
    return there.size;
  }

  it("keeps every acknowledged write of 10 000 when the page closes without db.close()", async () => {
    const p = await page("close1");
    const acked = new Set<number>();
    const t0 = Date.now();
    await write(p, acked);
    await p.evaluate(() => (globalThis as unknown as Held).run);
    console.log(`close: ${N} writes in ${Date.now() - t0} ms`);
    assert.deepEqual(await p.evaluate(() => (globalThis as unknown as Held).failed), []);
    const until = Date.now() + 10_000;
    while (acked.size < N && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(acked.size, N);
    await p.close({ runBeforeUnload: false });
    assert.equal(await check("close1", acked), N);
  });

  it("keeps every acknowledged write when the page's renderer crashes mid-stream, reopened at once", async () => {
    const p = await page("crash1");
    const acked = new Set<number>();
    await write(p, acked);
    // Crash in the middle of the concurrent rounds: some writes resolved, some in flight.
    const until = Date.now() + 120_000;
    while (acked.size < AWAITED + 3_000 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.ok(acked.size >= AWAITED + 3_000, `only ${acked.size} writes resolved`);
    // The page that reopens it is ready first, so that it opens the database right after the crash.
    const q = await context.newPage();
    await q.goto(url);
    await q.evaluate(() => import("/bundles/lattice.js").then(() => {}));
    const crashed = new Promise<void>((resolve) => p.once("crash", () => resolve()));
    const cdp = await context.newCDPSession(p);
    void cdp.send("Page.crash").catch(() => {}); // the answer never comes: the renderer is gone
    await crashed;
    const count = acked.size;
    assert.ok(count < N, "the page crashed before all its writes resolved");
    const there = await check("crash1", acked, q);
    assert.ok(there >= count, `${there} writes in the database, ${count} acknowledged`);
    console.log(`crash: ${count} writes acknowledged before the crash, ${there} in the database after it`);
    await p.close().catch(() => {});
  });
});
