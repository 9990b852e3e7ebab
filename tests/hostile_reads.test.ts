// @server-only: listens on 127.0.0.1 and opens SQLite stores in temporary directories
/**
 * Hostile reads and writes that used to freeze a node (issue 11): a query
 * whose path repeats `"*"` (18 s), a put of 64k nested child objects (11 s,
 * then 1.6–1.9 s on SQLite once flattening was linear), and listing after
 * 200k tombstones (1.8–3.1 s a page). Each test here failed on the code
 * before the fix: the query now has a work budget (core/query_budget.ts) and
 * yields to the event loop, a put writes at most `MAX_PUT_FIELDS` fields
 * (core/value.ts) and an HTTP body holds at most `MAX_BODY_ITEMS` JSON
 * objects, arrays and keys (net/http.ts, counted before parsing), and `list`
 * skips nodes whose fields are all tombstones without reading them
 * (storage/memory.ts, storage/sqlite.ts).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database, DEFAULT_QUERY_BUDGET, MAX_PUT_FIELDS, open, QueryTooLargeError } from "../mod.ts";
import { DEFAULT_MAX_BODY_BYTES, type HttpApi, MAX_BODY_ITEMS, startHttpApi } from "../net/http.ts";
import { connect } from "../net/client.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { MemoryStore } from "../storage/memory.ts";
import { SqliteStore } from "../storage/sqlite.ts";
import type { Store } from "../core/store.ts";

const INFO = () => ({ peerId: null, addrs: [], space: "default", peers: [] });
const root = mkdtempSync(join(tmpdir(), "lattice-hostile-reads-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

interface Answer {
  status: number;
  body: unknown;
  text: string;
}

/** One request to the API. Every test goes through here: where the API asks for a token, it goes in these headers. */
async function request(api: HttpApi, method: string, path: string, body?: string): Promise<Answer> {
  const headers: Record<string, string> = body === undefined ? {} : { "content-type": "text/plain" };
  if (api.token) headers.authorization = `Bearer ${api.token}`;
  const res = await fetch(api.url + path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json, text };
}

/** The error code and message of an error answer. */
function errorOf(a: Answer): { code: string; message: string } {
  return (a.body as { error: { code: string; message: string } }).error;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `inner`, counting its node reads (`readNode`, `readNodeData`); every other member is the store's own. */
function countingStore(inner: Store): { store: Store; reads: () => number; reset: () => void } {
  let reads = 0;
  const store = new Proxy(inner, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== "function") return v;
      if (key === "readNode" || key === "readNodeData") {
        return (...args: unknown[]) => {
          reads++;
          return v.apply(target, args);
        };
      }
      return v.bind(target);
    },
  });
  return { store, reads: () => reads, reset: () => void (reads = 0) };
}

/** `n` nodes `n0…`, each linking to every one of them (itself included). */
async function linkedGraph(db: { put: Database["put"] }, n: number): Promise<void> {
  const writes = [];
  for (let i = 0; i < n; i++) {
    const data: Record<string, unknown> = { name: `n${i}` };
    for (let j = 0; j < n; j++) data[`l${j}`] = { "#": `n${j}` };
    writes.push(db.put(`n${i}`, data));
  }
  await Promise.all(writes);
}

describe("query budget", () => {
  it("refuses a path over the budget at once, with a QueryTooLargeError naming it", async () => {
    const db = await open({ storage: "memory" });
    try {
      await linkedGraph(db, 3);
      assert.equal(DEFAULT_QUERY_BUDGET.maxPathLength, 64);
      const ok = await db.query({ from: "n0", path: Array(64).fill("*") });
      assert.equal(ok.length, 3, "a path at the budget runs");
      const e = await db.query({ from: "n0", path: Array(65).fill("*") }).catch((e) => e);
      assert.ok(e instanceof QueryTooLargeError);
      assert.equal(e.name, "QueryTooLargeError");
      assert.equal(
        e.message,
        "Cannot run the query: its path has 65 steps, over the path length budget of 64",
      );
      // Before each step is looked at: 4,000 steps of which one is not a field name still count as too long.
      await assert.rejects(db.query({ from: "n0", path: [...Array(4000).fill("*"), 7] }), QueryTooLargeError);
    } finally {
      await db.close();
    }
  });

  it("bounds the frontier, the nodes read and the time, as configured", async () => {
    const db = await open({ storage: "memory", queryBudget: { maxFrontier: 10, maxVisited: 50 } });
    try {
      await linkedGraph(db, 12);
      await assert.rejects(db.query({ from: "n0", path: ["*"] }), {
        name: "QueryTooLargeError",
        message: "Cannot run the query: one step reaches more than 10 nodes, over the frontier budget",
      });
      await assert.rejects(db.query({ from: Array.from({ length: 11 }, (_, i) => `n${i}`) }), {
        name: "QueryTooLargeError",
      });
      // One node a step, and the one reached at the end: 49 steps read 50 nodes, the budget; 50 are over it.
      assert.equal((await db.query({ from: "n0", path: Array(49).fill("l1") })).length, 1);
      await assert.rejects(db.query({ from: "n0", path: Array(50).fill("l1") }), {
        name: "QueryTooLargeError",
        message: "Cannot run the query: it reads more than 50 nodes, over the visited budget",
      });
    } finally {
      await db.close();
    }
    const slow = await open({ storage: "memory", queryBudget: { maxMs: 1 } });
    try {
      await linkedGraph(slow, 40); // 40 × 40 links a step: it yields at least once, a millisecond or more
      await assert.rejects(slow.query({ from: "n0", path: Array(40).fill("*") }), {
        name: "QueryTooLargeError",
        message: "Cannot run the query: it ran past its time budget of 1 ms",
      });
    } finally {
      await slow.close();
    }
  });

  it("refuses a budget that is not one, before opening anything", async () => {
    for (const queryBudget of [{ maxVisited: 0 }, { maxFrontier: 1.5 }, { maxMs: -1 }, { maxPath: 3 }]) {
      await assert.rejects(
        open({ storage: "memory", queryBudget } as never),
        RangeError,
        JSON.stringify(queryBudget),
      );
    }
  });

  it("yields to the event loop while it works: a timer set before it fires before it ends", async () => {
    const db = await open({ storage: "memory" });
    try {
      await linkedGraph(db, 64);
      let fired = false;
      setTimeout(() => fired = true, 0);
      const result = await db.query({ from: "n0", path: Array(16).fill("*") });
      assert.equal(result.length, 64);
      assert.equal(fired, true, "reads that resolve as microtasks only would starve the timer");
    } finally {
      await db.close();
    }
  });
});

describe("query attack over HTTP", () => {
  it("answers 422 query_too_large to 16 KB of '*' steps, and the client rejects with QueryTooLargeError", async () => {
    const db = await open({ storage: "memory" });
    const api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO });
    try {
      await linkedGraph(db, 8);
      const path: string[] = [];
      while (JSON.stringify({ from: "n0", path }).length < 16_000) path.push("*");
      const a = await request(api, "POST", "/v1/query", JSON.stringify({ from: "n0", path }));
      assert.equal(a.status, 422, a.text);
      assert.equal(errorOf(a).code, "query_too_large");
      assert.match(errorOf(a).message, /path has \d+ steps, over the path length budget of 64/);
      const client = connect(api.url);
      try {
        const e = await client.query({ from: "n0", path }).catch((e) => e);
        assert.ok(e instanceof QueryTooLargeError, String(e));
        assert.equal(e.message, errorOf(a).message);
      } finally {
        await client.close();
      }
    } finally {
      await api.close();
      await db.close();
    }
  });

  it("keeps answering /v1/status within 1 s while a heavy but legal query runs", async () => {
    const counted = countingStore(new MemoryStore());
    const db = await Database.create({ store: counted.store, kernels: await loadKernels({ kernels: "js" }) });
    const api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO });
    try {
      // 100 nodes each linking to all: 64 steps of '*' read 6,400 nodes and look at 640,000 links.
      await linkedGraph(db, 100);
      counted.reset();
      let queryAnswered = false;
      const query = request(
        api,
        "POST",
        "/v1/query",
        JSON.stringify({ from: "n0", path: Array(64).fill("*") }),
      )
        .then((a) => (queryAnswered = true, a));
      while (counted.reads() === 0) await sleep(2); // the query has begun
      const t0 = performance.now();
      const status = await request(api, "GET", "/v1/status");
      const ms = performance.now() - t0;
      assert.equal(status.status, 200, status.text);
      assert.equal(queryAnswered, false, "status was answered while the query ran, not after it");
      assert.ok(ms < 1000, `status took ${ms.toFixed(0)} ms`);
      const q = await query;
      assert.equal(q.status, 200, q.text);
      assert.equal((q.body as { nodes: unknown[] }).nodes.length, 100);
    } finally {
      await api.close();
      await db.close();
    }
  });
});

describe("put of many nested objects", () => {
  it(`refuses a put of more than ${MAX_PUT_FIELDS} fields whole, and stores one at the limit`, async () => {
    const db = await open({ storage: "memory" });
    try {
      const data: Record<string, unknown> = {};
      for (let i = 0; i < 65_536; i++) data[`c${i}`] = { v: i };
      // 64k child objects are 131k fields (a link and a value each): refused, with nothing stored.
      await assert.rejects(db.put("root", data), {
        name: "RangeError",
        message:
          `A put may write at most ${MAX_PUT_FIELDS} fields (the link to a nested object is one) and this one writes more; split it into several puts`,
      });
      assert.equal(await db.get("root"), undefined);
      assert.equal(await db.get("root/c0"), undefined);
      assert.equal(await db.countNodes(), 0);
      // At the limit, flat or nested, a put is stored whole; one field more is refused.
      const atLimit: Record<string, unknown> = {};
      for (let i = 0; i < MAX_PUT_FIELDS / 2; i++) atLimit[`c${i}`] = { v: i };
      await db.put("full", atLimit);
      assert.equal(Object.keys((await db.get("full"))!).length, MAX_PUT_FIELDS / 2);
      assert.deepEqual(await db.get(`full/c${MAX_PUT_FIELDS / 2 - 1}`), { v: MAX_PUT_FIELDS / 2 - 1 });
      const flat: Record<string, unknown> = {};
      for (let i = 0; i < MAX_PUT_FIELDS; i++) flat[`f${i}`] = i;
      flat.skipped = undefined; // not written, so not counted
      await db.put("flat", flat);
      flat.more = 1;
      await assert.rejects(db.put("flat2", flat), RangeError);
      assert.equal(await db.get("flat2"), undefined);
      // Two paths to one soul still merge into one node, the later value of a field winning.
      await db.put("m", { "a/b": { x: 1, y: 1 }, a: { b: { y: 2, z: 3 } } });
      assert.deepEqual(await db.get("m/a/b"), { x: 1, y: 2, z: 3 });
    } finally {
      await db.close();
    }
  });

  it("on SQLite over HTTP: /v1/status answers within 1 s while 64k nested objects are refused, and nothing is lost", async () => {
    const db = await Database.create({
      store: await SqliteStore.open(join(root, `db${++dirs}`)),
      kernels: await loadKernels({ kernels: "js" }),
    });
    const api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO });
    // Polls /v1/status while `run` runs. `slowest` is the longest time from one answer to the next (a 5 ms
    // pause between them included), so a stall while no request was out counts too.
    const whilePolling = async <T>(
      run: () => Promise<T>,
    ): Promise<{ result: T; slowest: number; polls: number }> => {
      let done = false, slowest = 0, polls = 0;
      const poller = (async () => {
        while (!done) {
          const t0 = performance.now();
          await sleep(5);
          const s = await request(api, "GET", "/v1/status");
          slowest = Math.max(slowest, performance.now() - t0);
          polls++;
          assert.equal(s.status, 200, s.text);
        }
      })();
      await sleep(20); // status is being polled before the write is sent
      let result: T;
      try {
        result = await run();
      } finally {
        done = true;
        await poller; // its last answer, which a stall at the end delayed, counts too
      }
      return { result, slowest, polls };
    };
    try {
      const honest = await request(
        api,
        "PUT",
        "/v1/nodes/honest",
        JSON.stringify({ x: 1, pet: { name: "Rex" } }),
      );
      assert.equal(honest.status, 200, honest.text);
      // The attack of issue 11: 1.35 MB of 64k child objects held the event loop 1.6–1.9 s.
      const attack: Record<string, unknown> = {};
      for (let i = 0; i < 65_536; i++) attack[`c${i}`] = { v: i };
      const body = JSON.stringify(attack);
      assert.ok(body.length < DEFAULT_MAX_BODY_BYTES);
      const big = await whilePolling(() => request(api, "PUT", "/v1/nodes/root", body));
      assert.equal(big.result.status, 413, big.result.text);
      assert.equal(errorOf(big.result).code, "payload_too_large");
      assert.match(
        errorOf(big.result).message,
        new RegExp(`more than ${MAX_BODY_ITEMS} JSON objects.*split it`),
      );
      assert.ok(big.slowest < 1000, `status took ${big.slowest.toFixed(0)} ms`);
      // Few enough items to be parsed, too many fields: 400 out_of_range, from the database's own check.
      const flat: Record<string, number> = {};
      for (let i = 0; i <= MAX_PUT_FIELDS; i++) flat[`f${i}`] = i;
      const over = await whilePolling(() => request(api, "PUT", "/v1/nodes/flat", JSON.stringify(flat)));
      assert.equal(over.result.status, 400, over.result.text);
      assert.equal(errorOf(over.result).code, "out_of_range");
      assert.match(errorOf(over.result).message, new RegExp(`at most ${MAX_PUT_FIELDS} fields .* split it`));
      assert.ok(over.slowest < 1000, `status took ${over.slowest.toFixed(0)} ms`);
      // A put at the limit is stored whole, and status keeps answering meanwhile too.
      const atLimit: Record<string, unknown> = {};
      for (let i = 0; i < MAX_PUT_FIELDS / 2; i++) atLimit[`c${i}`] = { v: i };
      const ok = await whilePolling(() => request(api, "PUT", "/v1/nodes/full", JSON.stringify(atLimit)));
      assert.equal(ok.result.status, 200, ok.result.text);
      assert.ok(ok.slowest < 1000, `status took ${ok.slowest.toFixed(0)} ms`);
      assert.ok(big.polls + over.polls + ok.polls >= 3);
      // Nothing of the refused writes is stored; everything acknowledged is.
      for (const soul of ["root", "root/c0", "root/c65535", "flat"]) {
        const a = await request(api, "GET", `/v1/nodes/${encodeURIComponent(soul)}`);
        assert.equal(a.status, 404, `${soul}: ${a.text}`);
      }
      assert.deepEqual((await request(api, "GET", "/v1/nodes/honest")).body, {
        x: 1,
        pet: { "#": "honest/pet" },
      });
      assert.deepEqual((await request(api, "GET", "/v1/nodes/honest%2Fpet")).body, { name: "Rex" });
      const full = await request(api, "GET", "/v1/nodes/full");
      assert.equal(Object.keys(full.body as object).length, MAX_PUT_FIELDS / 2);
      assert.deepEqual((await request(api, "GET", "/v1/nodes/full%2Fc8191")).body, { v: 8191 });
      const status = await request(api, "GET", "/v1/status");
      assert.equal((status.body as { nodes: number }).nodes, 3 + MAX_PUT_FIELDS / 2); // honest, its pet, full and its children
    } finally {
      await api.close();
      await db.close();
    }
  });
});

describe("list after many tombstones", () => {
  const engines: [string, () => Promise<Store>][] = [
    ["memory", () => Promise.resolve(new MemoryStore())],
    ["sqlite", () => SqliteStore.open(join(root, `db${++dirs}`))],
  ];
  for (const [name, make] of engines) {
    it(`${name}: reads only live nodes, however many are deleted before them`, async () => {
      const counted = countingStore(await make());
      const db = await Database.create({
        store: counted.store,
        kernels: await loadKernels({ kernels: "js" }),
      });
      const api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO });
      try {
        const souls = Array.from({ length: 3000 }, (_, i) => `a${String(i).padStart(5, "0")}`);
        await Promise.all(souls.map((s, i) => db.put(s, { x: i })));
        await Promise.all(souls.map((s) => db.delete(s)));
        await db.put("z", { x: 1 });
        await db.put("a01500", { back: true }); // deleted, then live again
        counted.reset();
        const page = await request(api, "GET", "/v1/nodes?limit=1");
        assert.deepEqual(page.body, { nodes: [{ soul: "a01500", data: { back: true } }], cursor: "a01500" });
        const next = await request(api, "GET", "/v1/nodes?limit=1&cursor=a01500");
        assert.deepEqual(next.body, { nodes: [{ soul: "z", data: { x: 1 } }], cursor: null });
        // Each page reads its live nodes (a page of 1 asks for 2, to know whether more follow), not the 2,999 deleted ones.
        assert.ok(counted.reads() <= 4, `${counted.reads()} node reads`);
        counted.reset();
        const all = [];
        for await (const e of db.list({ prefix: "a" })) all.push(e.soul);
        assert.deepEqual(all, ["a01500"]);
        assert.equal(counted.reads(), 1);
        assert.equal(await db.countNodes(), 2);
      } finally {
        await api.close();
        await db.close();
      }
    });
  }
});
