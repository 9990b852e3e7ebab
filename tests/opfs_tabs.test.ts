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
 * write whose promise resolved is missing afterwards, none failed, and the
 * watches of both remaining pages got every one of them. And when a client's
 * page crashes (no `bye`), the owner stops sending it the changes its
 * watches asked for. A dedicated worker of the origin shares the database
 * the same way, and takes it over when the tabs are gone.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import type { SharedDatabase } from "../mod.ts";
import { type Pages, startPages } from "./_pages.ts";

const WAIT = 20_000;

/**
 * A dedicated worker of the origin that opens database `name` (from its URL's
 * query) through `openShared`, watches `w/`, and answers `{ id, op, soul?,
 * data? }` messages: put, get, status, seen, close.
 */
const TAB_WORKER = `
import * as L from "./lattice.js";
const name = new URL(import.meta.url).searchParams.get("name");
const db = await L.openShared({ storage: "opfs", path: name });
const seen = [];
db.watch({ prefix: "w/" }, (c) => seen.push(c.soul));
onmessage = async ({ data: m }) => {
  try {
    const value = m.op === "put" ? await db.put(m.soul, m.data)
      : m.op === "get" ? await db.get(m.soul)
      : m.op === "status" ? await db.status()
      : m.op === "seen" ? seen.slice()
      : (await db.close(), true);
    postMessage({ id: m.id, value });
  } catch (e) {
    postMessage({ id: m.id, error: String(e) });
  }
};
postMessage({ ready: true });
`;

/** What a page holds (globals set in it). */
interface Tab {
  db: SharedDatabase;
  seen: string[];
  acked: number[];
  failed: string[];
  run: Promise<void>;
}

describe("tabs sharing one OPFS database", { timeout: 240_000 }, () => {
  let pages: Pages | undefined;
  let context: BrowserContext;
  let url: string;

  before(async () => {
    pages = await startPages("tabs");
    ({ context, url } = pages);
    fs.writeFileSync(path.join(pages.dir, "tab_worker.js"), TAB_WORKER);
  });

  after(async () => {
    await pages?.close();
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
  it("forwards the calls of the other tabs to the owner, and its changes to their watches", async () => {
    const a = await tab("shared1", "t/");
    const b = await tab("shared1", "t/");
    const sa = await status(a), sb = await status(b);
    assert.equal(sa.owner, true);
    assert.equal(sb.owner, false);
    assert.equal(sa.storage, "opfs");
    assert.equal(typeof sa.persisted, "boolean");
    assert.equal(sb.persisted, sa.persisted);
    console.log(`navigator.storage.persist() answered ${sa.persisted} in this Chromium`);
    await a.evaluate(() => (globalThis as unknown as Tab).db.put("t/1", { by: "a" }));
    await b.waitForFunction(() => (globalThis as unknown as Tab).seen.includes("t/1"), null, {
      timeout: WAIT,
    });
    assert.deepEqual(await b.evaluate(() => (globalThis as unknown as Tab).db.get("t/1")), { by: "a" });
    await b.evaluate(() => (globalThis as unknown as Tab).db.put("t/2", { by: "b" }));
    await a.waitForFunction(() => (globalThis as unknown as Tab).seen.includes("t/2"), null, {
      timeout: WAIT,
    });
    assert.deepEqual(await a.evaluate(() => (globalThis as unknown as Tab).db.get("t/2")), { by: "b" });
    assert.deepEqual(
      await b.evaluate(async () =>
        (await (globalThis as unknown as Tab).db.query({ from: "t/1" })).length > 0
      ),
      true,
    );
    assert.equal((await status(b)).nodes, 2);
    await b.evaluate(() => (globalThis as unknown as Tab).db.close());
    await a.evaluate(() => (globalThis as unknown as Tab).db.close());
    await a.close();
    await b.close();
  });

  it("hands the database over when the owner's tab closes, losing no resolved write", async () => {
    const N = 300;
    const a = await tab("shared2", "s/");
    const b = await tab("shared2", "s/");
    const c = await tab("shared2", "s/");
    assert.equal((await status(a)).owner, true);
    // B and C write one after another; each index is noted once its put resolved.
    const start = (page: Page, who: string) =>
      page.evaluate(([n, who]) => {
        const w = globalThis as unknown as Tab;
        w.acked = [];
        w.failed = [];
        w.run = (async () => {
          for (let i = 0; i < n; i++) {
            try {
              await w.db.put(`s/${who}${String(i).padStart(4, "0")}`, { i });
              w.acked.push(i);
            } catch (e) {
              w.failed.push(`${i}: ${e}`);
            }
          }
        })();
      }, [N, who] as const);
    await start(b, "b");
    await start(c, "c");
    const done = (page: Page) =>
      page.evaluate(() =>
        (globalThis as unknown as Tab).acked.length + (globalThis as unknown as Tab).failed.length
      );
    await b.waitForFunction(() => (globalThis as unknown as Tab).acked.length >= 30, null, { timeout: WAIT });
    await a.close(); // no db.close(): the tab just goes, as when it is closed or crashes
    const atClose = Math.min(await done(b), await done(c));
    assert.ok(atClose < N, "the owner went in the middle of the writes");
    for (const page of [b, c]) {
      await page.waitForFunction(
        (n) =>
          (globalThis as unknown as Tab).acked.length + (globalThis as unknown as Tab).failed.length >= n,
        N,
        {
          timeout: 60_000,
        },
      );
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Tab).failed), []);
    }
    const sb = await status(b), sc = await status(c);
    assert.equal(sb.owner || sc.owner, true, "B or C took over");
    assert.equal(sb.owner && sc.owner, false, "one owner");
    // Every resolved write is there, read from either tab.
    const souls = await c.evaluate(async () => {
      const out: string[] = [];
      for await (const e of (globalThis as unknown as Tab).db.list({ prefix: "s/" })) out.push(e.soul);
      return out;
    });
    for (const [page, who] of [[b, "b"], [c, "c"]] as const) {
      const acked = await page.evaluate(() => (globalThis as unknown as Tab).acked);
      assert.equal(acked.length, N);
      for (const i of acked) {
        assert.ok(souls.includes(`s/${who}${String(i).padStart(4, "0")}`), `write ${who}${i} is missing`);
      }
    }
    assert.equal((await status(b)).nodes, 2 * N);
    // The watches kept receiving changes across the take-over: every resolved write reached both tabs'.
    const ackedSouls: string[] = [];
    for (const [page, who] of [[b, "b"], [c, "c"]] as const) {
      for (const i of await page.evaluate(() => (globalThis as unknown as Tab).acked)) {
        ackedSouls.push(`s/${who}${String(i).padStart(4, "0")}`);
      }
    }
    for (const page of [b, c]) {
      await page.waitForFunction(
        (souls) => souls.every((s) => (globalThis as unknown as Tab).seen.includes(s)),
        ackedSouls,
        { timeout: WAIT },
      ).catch(async (e) => {
        const seen = await page.evaluate(() => (globalThis as unknown as Tab).seen);
        const missing = ackedSouls.filter((s) => !seen.includes(s));
        throw new Error(`a watch missed ${missing.length} writes: ${missing.slice(0, 10).join(" ")} (${e})`);
      });
    }
    await b.evaluate(() => (globalThis as unknown as Tab).db.close());
    await c.evaluate(() => (globalThis as unknown as Tab).db.close());
  });

  it("shares the database with a dedicated worker of the origin, which takes over when the tab closes", async () => {
    const a = await tab("shared4", "w/");
    assert.equal((await status(a)).owner, true);
    // A second page runs the worker; `ask` sends it one message and waits for its answer.
    const b = await context.newPage();
    b.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    await b.goto(url);
    await b.evaluate(async () => {
      const worker = new Worker("/bundles/tab_worker.js?name=shared4", { type: "module" });
      let next = 0;
      const waiting = new Map<number, (m: { value?: unknown; error?: string }) => void>();
      await new Promise<void>((resolve, reject) => {
        worker.onerror = (e) => reject(new Error(e.message));
        worker.onmessage = (e) => {
          if (e.data.ready) resolve();
          else waiting.get(e.data.id)?.(e.data);
        };
      });
      (globalThis as unknown as Record<string, unknown>).ask = (op: string, soul?: string, data?: unknown) =>
        new Promise((resolve, reject) => {
          const id = next++;
          waiting.set(id, (m) => m.error === undefined ? resolve(m.value) : reject(new Error(m.error)));
          worker.postMessage({ id, op, soul, data });
        });
    });
    const ask = (op: string, soul?: string, data?: unknown) =>
      b.evaluate(
        ([op, soul, data]) =>
          (globalThis as unknown as { ask(o: unknown, s: unknown, d: unknown): Promise<unknown> }).ask(
            op,
            soul,
            data,
          ),
        [op, soul, data] as const,
      );
    const ws = await ask("status") as { owner: boolean; storage: string };
    assert.deepEqual([ws.owner, ws.storage], [false, "opfs"]);
    await ask("put", "w/1", { by: "worker" });
    await a.waitForFunction(() => (globalThis as unknown as Tab).seen.includes("w/1"), null, {
      timeout: WAIT,
    });
    assert.deepEqual(await a.evaluate(() => (globalThis as unknown as Tab).db.get("w/1")), { by: "worker" });
    await a.evaluate(() => (globalThis as unknown as Tab).db.put("w/2", { by: "tab" }));
    const deadline = Date.now() + WAIT;
    while (!(await ask("seen") as string[]).includes("w/2")) {
      assert.ok(Date.now() < deadline, "the worker's watch saw the tab's write");
      await new Promise((r) => setTimeout(r, 50));
    }
    // The tab closes: the worker takes the database over (its own OPFS worker inside it).
    await a.close();
    while (!(await ask("status") as { owner: boolean }).owner) {
      assert.ok(Date.now() < deadline + WAIT, "the worker took over");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(await ask("get", "w/2"), { by: "tab" });
    await ask("put", "w/3", { by: "worker, owner" });
    assert.deepEqual(await ask("get", "w/3"), { by: "worker, owner" });
    await ask("close");
    await b.close();
  });

  it("stops serving the watches of a client whose page crashed", async () => {
    const a = await tab("shared3", "x/");
    // A page that only listens on the tabs' channel: it sees every change the owner sends to whom.
    const spy = await context.newPage();
    await spy.goto(url);
    await spy.evaluate(() => {
      const w = globalThis as unknown as {
        heard: { k: string; to?: string; from?: string; soul?: string }[];
      };
      w.heard = [];
      new BroadcastChannel("lattice:shared3").onmessage = (e) =>
        w.heard.push({ k: e.data.k, to: e.data.to, from: e.data.from, soul: e.data.c?.soul });
    });
    type Heard = { heard: { k: string; to?: string; from?: string; soul?: string }[] };
    const heard = () => spy.evaluate(() => (globalThis as unknown as Heard).heard);
    const b = await tab("shared3", "x/");
    const idB = (await heard()).find((m) => m.k === "watch")?.from;
    assert.ok(idB, "B sent its watch");
    const c = await tab("shared3", "x/"); // its watch is kept after B's: the owner sends B's changes first
    const idC = (await heard()).filter((m) => m.k === "watch").map((m) => m.from).find((id) => id !== idB);
    assert.ok(idC, "C sent its watch");
    const put = (soul: string) =>
      a.evaluate((soul) => (globalThis as unknown as Tab).db.put(soul, { n: 1 }).then(() => {}), soul);
    /** Puts `soul` in A; whether the owner sent it to B, told once it reached C (sent after B's). */
    const sentToB = async (soul: string) => {
      await put(soul);
      await spy.waitForFunction(
        ([soul, idC]) =>
          (globalThis as unknown as Heard).heard.some((m) => m.k === "ev" && m.to === idC && m.soul === soul),
        [soul, idC] as const,
        { timeout: WAIT },
      );
      return (await heard()).some((m) => m.k === "ev" && m.to === idB && m.soul === soul);
    };
    assert.equal(await sentToB("x/0"), true, "B's watch is served while B lives");
    await b.waitForFunction(() => (globalThis as unknown as Tab).seen.includes("x/0"), null, {
      timeout: WAIT,
    });

    // B's renderer crashes: no pagehide, no bye.
    const crashed = new Promise<void>((resolve) => b.once("crash", () => resolve()));
    void (await context.newCDPSession(b)).send("Page.crash").catch(() => {});
    await crashed;
    let n = 1;
    const until = Date.now() + WAIT;
    while (await sentToB(`x/${n}`)) {
      assert.ok(Date.now() < until, `the owner still sends changes to B's watch ${n} writes after its crash`);
      n++;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`the owner dropped the crashed tab's watch after ${n - 1} more writes`);
    assert.equal(await sentToB(`x/${n + 1}`), false, "and does not start again");
    await c.waitForFunction((s) => (globalThis as unknown as Tab).seen.includes(s), `x/${n + 1}`, {
      timeout: WAIT,
    });
    await c.evaluate(() => (globalThis as unknown as Tab).db.close());
    await a.evaluate(() => (globalThis as unknown as Tab).db.close());
    for (const page of [a, b, c, spy]) await page.close().catch(() => {});
  });
});
