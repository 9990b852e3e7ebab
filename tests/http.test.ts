// @server-only: listens on 127.0.0.1 and spawns `serve` as a child process
/**
 * The HTTP API (`net/http.ts`) over a memory database: every route, the
 * error shapes and codes, percent-encoded souls, body limits, Server-Sent
 * Events, malformed requests on raw sockets (the server keeps serving), the
 * client `connect(url)` against the library, and `serve` as a child process
 * (ready line, SIGTERM, durability of acknowledged writes).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createConnection, createServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Change, type Database, open } from "../mod.ts";
import { type HttpApi, startHttpApi } from "../net/http.ts";
import { connect, ConnectionError } from "../net/client.ts";
import { VERSION } from "../version.ts";
import { toJson } from "../core/json.ts";
import { startServe } from "./_serve.ts";

const SLOW = { timeout: 60_000 };
const INFO = () => ({
  peerId: null,
  addrs: [],
  space: "default",
  peers: [{ id: "12D3KooWpeer", addrs: ["/ip4/127.0.0.1/tcp/4001"], inSync: true }],
});

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** A request to `api`, with its token unless `headers` says otherwise. */
async function call(
  api: HttpApi,
  method: string,
  path: string,
  body?: string | Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = { authorization: `Bearer ${api.token}` },
): Promise<Answer> {
  const res = await fetch(api.url + path, { method, body, headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

function assertError(a: Answer, status: number, code: string, message?: RegExp): void {
  assert.equal(a.status, status, a.text);
  const e = (a.body as { error: { code: string; message: string } }).error;
  assert.equal(e.code, code, a.text);
  assert.equal(typeof e.message, "string");
  if (message) assert.match(e.message, message);
  assert.doesNotMatch(e.message, /\n\s+at /); // never a stack
}

/** The headers a raw request needs to be heard: a served Host and the token. */
function served(api: HttpApi): string {
  return `Host: 127.0.0.1:${api.port}\r\nAuthorization: Bearer ${api.token}`;
}

/** Sends raw bytes on a new connection and returns what came back before the server closed it or `ms` passed. */
function raw(port: number, data: string | Uint8Array, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    const socket: Socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(data));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(new TextDecoder().decode(concat(chunks)));
    };
    const timer = setTimeout(done, ms);
    socket.on("data", (c: Uint8Array) => chunks.push(c));
    socket.on("error", done);
    socket.on("close", done);
  });
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await sleep(10);
  }
}

/** Reads Server-Sent Events from a fetch response: comments and data payloads in order. */
class EventReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(res: Response) {
    this.#reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }
  /** The next event block (without its blank line). */
  async next(): Promise<string> {
    for (;;) {
      const end = this.#buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        return block;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("stream ended");
      this.#buffer += value;
    }
  }
  /** The next `data:` event, parsed (skipping comments). */
  async data(): Promise<Record<string, unknown>> {
    for (;;) {
      const block = await this.next();
      if (block.startsWith("data: ")) return JSON.parse(block.slice(6));
    }
  }
  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }
}

describe("http api", () => {
  let db: Database;
  let api: HttpApi;

  before(async () => {
    db = await open({ storage: "memory" });
    api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO, heartbeatMs: 100 });
  });
  after(async () => {
    await api.close();
    await db.close();
  });

  it("listens on 127.0.0.1 with a free port", () => {
    assert.match(api.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(api.port > 0);
  });

  it("PUT merges fields and answers {soul, state}; GET returns the node; bytes and links as JSON", async () => {
    const put = await call(
      api,
      "PUT",
      "/v1/nodes/alice",
      '{"name":"Alice","raw":{"$bytes":"AAH/"},"pet":{"name":"Rex"}}',
    );
    assert.equal(put.status, 200, put.text);
    const { soul, state } = put.body as { soul: string; state: string };
    assert.equal(soul, "alice");
    assert.match(state, /^[0-9a-f]{16}$/);
    assert.equal(put.headers.get("content-type"), "application/json; charset=utf-8");
    const again = await call(api, "PUT", "/v1/nodes/alice", '{"age":30,"friend":{"#":"bob"}}');
    assert.equal(again.status, 200);
    const get = await call(api, "GET", "/v1/nodes/alice");
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, {
      age: 30,
      friend: { "#": "bob" },
      name: "Alice",
      pet: { "#": "alice/pet" },
      raw: { $bytes: "AAH/" },
    });
    assert.deepEqual(await db.get("alice"), {
      age: 30,
      friend: { "#": "bob" },
      name: "Alice",
      pet: { "#": "alice/pet" },
      raw: new Uint8Array([0, 1, 255]),
    });
    const child = await call(api, "GET", "/v1/nodes/alice%2Fpet");
    assert.deepEqual(child.body, { name: "Rex" });
  });

  it("GET of a missing node is 404 not_found", async () => {
    assertError(await call(api, "GET", "/v1/nodes/nobody"), 404, "not_found", /nobody/);
  });

  it("DELETE tombstones a field (?field=) or the whole node", async () => {
    await db.put("del", { a: 1, b: 2 });
    const one = await call(api, "DELETE", "/v1/nodes/del?field=a");
    assert.equal(one.status, 200, one.text);
    assert.equal((one.body as { field: string }).field, "a");
    assert.match((one.body as { state: string }).state, /^[0-9a-f]{16}$/);
    assert.deepEqual(await db.get("del"), { b: 2 });
    const all = await call(api, "DELETE", "/v1/nodes/del");
    assert.equal(all.status, 200);
    assert.equal((all.body as { field: null }).field, null);
    assert.equal(await db.get("del"), undefined);
    assertError(await call(api, "GET", "/v1/nodes/del"), 404, "not_found");
    assertError(await call(api, "DELETE", "/v1/nodes/del?field=__proto__"), 400, "out_of_range", /reserved/);
  });

  it("GET /v1/nodes pages with prefix, limit and cursor (null at the end)", async () => {
    for (let i = 0; i < 7; i++) await db.put(`page/${i}`, { i });
    await db.put("pagez", { other: true });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/nodes?prefix=page%2F&limit=3${
        cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`
      }`;
      const a = await call(api, "GET", q);
      assert.equal(a.status, 200, a.text);
      const body = a.body as { nodes: { soul: string; data: { i: number } }[]; cursor: string | null };
      for (const n of body.nodes) {
        seen.push(n.soul);
        assert.equal(n.data.i, Number(n.soul.slice(5)));
      }
      cursor = body.cursor;
      pages++;
    } while (cursor !== null);
    assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6].map((i) => `page/${i}`));
    assert.equal(pages, 3);
    const exact = await call(api, "GET", "/v1/nodes?prefix=page/&limit=7");
    assert.equal((exact.body as { cursor: null }).cursor, null);
    const all = await call(api, "GET", "/v1/nodes");
    assert.ok((all.body as { nodes: unknown[] }).nodes.length >= 9);
    for (const bad of ["0", "1001", "-1", "x", "1.5", ""]) {
      assertError(await call(api, "GET", `/v1/nodes?limit=${bad}`), 400, "out_of_range", /limit/);
    }
    assertError(await call(api, "GET", "/v1/nodes?limt=3"), 400, "invalid_path", /limt/);
    assertError(await call(api, "GET", "/v1/nodes?limit=3&limit=4"), 400, "invalid_path", /twice/);
  });

  it("POST /v1/query runs db.query, with bytes in where", async () => {
    await db.put("q", { a: { "#": "q1" }, b: { "#": "q2" } });
    await db.put("q1", { age: 40, tag: new Uint8Array([7]) });
    await db.put("q2", { age: 20 });
    const a = await call(
      api,
      "POST",
      "/v1/query",
      JSON.stringify({ from: "q", path: ["*"], where: { age: { gt: 30 } } }),
    );
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.body, { nodes: [{ soul: "q1", data: { age: 40, tag: { $bytes: "Bw==" } } }] });
    const b = await call(
      api,
      "POST",
      "/v1/query",
      JSON.stringify({ from: "q", path: ["*"], where: { tag: { $bytes: "Bw==" } } }),
    );
    assert.deepEqual((b.body as { nodes: { soul: string }[] }).nodes.map((n) => n.soul), ["q1"]);
    assertError(
      await call(api, "POST", "/v1/query", '{"from":"q","where":{"age":{"near":1}}}'),
      400,
      "out_of_range",
      /near/,
    );
    assertError(await call(api, "POST", "/v1/query", '{"from":5}'), 400, "invalid_argument", /query.from/);
  });

  it("POST /v1/search without an index is 400 out_of_range", async () => {
    assertError(await call(api, "POST", "/v1/search", '{"vector":[1,2],"k":1}'), 400, "out_of_range");
  });

  it("GET /v1/status and /v1/peers report the database and info()", async () => {
    const s = await call(api, "GET", "/v1/status");
    assert.equal(s.status, 200);
    const body = s.body as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), [
      "addrs",
      "deferred",
      "identity",
      "kernels",
      "nodes",
      "peerId",
      "peers",
      "space",
      "storage",
      "version",
    ]);
    assert.equal(body.identity, null); // a memory database has no key
    assert.equal(body.peerId, null);
    assert.deepEqual(body.addrs, []);
    assert.equal(body.peers, 1);
    assert.equal(body.space, "default");
    assert.equal(body.storage, "memory");
    assert.equal(body.kernels, db.kernels.name);
    assert.equal(body.version, VERSION);
    let n = 0;
    for await (const _ of db.list()) n++;
    assert.equal(body.nodes, n);
    const p = await call(api, "GET", "/v1/peers");
    assert.deepEqual(p.body, { peers: INFO().peers });
  });

  it("GET / serves the inspector page", async () => {
    const a = await call(api, "GET", "/");
    assert.equal(a.status, 200);
    assert.match(a.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(a.text, /<title>Lattice inspector<\/title>/);
    assert.match(a.text, /\/v1\/watch/);
    assert.ok(a.headers.get("content-security-policy"));
  });

  it("unknown routes are 404, wrong methods 405 with Allow", async () => {
    assertError(await call(api, "GET", "/v2/status"), 404, "unknown_route");
    assertError(await call(api, "GET", "/v1/nodesx"), 404, "unknown_route");
    const m = await call(api, "POST", "/v1/status", "{}");
    assertError(m, 405, "method_not_allowed");
    assert.equal(m.headers.get("allow"), "GET, HEAD");
    assertError(await call(api, "GET", "/v1/query"), 405, "method_not_allowed");
    assertError(await call(api, "PATCH", "/v1/nodes/a", "{}"), 405, "method_not_allowed");
  });

  it("percent-encoded souls: spaces, slashes, unicode, percent signs; malformed encoding is 400", async () => {
    const souls = ["with space", "a/b/c", "ünï/cødé ✓", "100%", "emoji 🐙", "q?x=1&y#z", "+plus+"];
    for (const soul of souls) {
      const put = await call(api, "PUT", `/v1/nodes/${encodeURIComponent(soul)}`, JSON.stringify({ soul }));
      assert.equal(put.status, 200, put.text);
      assert.equal((put.body as { soul: string }).soul, soul);
      assert.deepEqual(await db.get(soul), { soul });
      const get = await call(api, "GET", `/v1/nodes/${encodeURIComponent(soul)}`);
      assert.deepEqual(get.body, { soul });
    }
    // An unencoded slash is part of the soul too.
    assert.deepEqual((await call(api, "GET", "/v1/nodes/a/b/c")).body, { soul: "a/b/c" });
    assert.deepEqual((await call(api, "GET", "/v1/nodes/with%20space?")).body, { soul: "with space" });
    for (const bad of ["%", "a%2", "%zz", "%FF", "%C3", "%ED%A0%80"]) {
      assertError(await call(api, "GET", `/v1/nodes/${bad}`), 400, "invalid_path", /percent-encoded/);
    }
    assertError(await call(api, "GET", `/v1/nodes?prefix=%E0`), 400, "invalid_path");
    assertError(await call(api, "GET", `/v1/nodes/${"x".repeat(513)}`), 400, "out_of_range", /512 bytes/);
    assertError(await call(api, "PUT", `/v1/nodes/`, "{}"), 400, "out_of_range", /empty/);
  });

  it("bad bodies: malformed JSON, invalid UTF-8, empty, not an object, bad values, deep nesting", async () => {
    assertError(await call(api, "PUT", "/v1/nodes/x", '{"a":'), 400, "invalid_json", /not valid JSON/);
    assertError(
      await call(api, "PUT", "/v1/nodes/x", new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])),
      400,
      "invalid_json",
      /UTF-8/,
    );
    assertError(await call(api, "PUT", "/v1/nodes/x", ""), 400, "invalid_json", /empty/);
    assertError(await call(api, "PUT", "/v1/nodes/x", "[1,2]"), 400, "invalid_argument", /JSON object/);
    assertError(await call(api, "PUT", "/v1/nodes/x", "null"), 400, "invalid_argument", /JSON object/);
    assertError(
      await call(api, "PUT", "/v1/nodes/x", '{"list":[1]}'),
      400,
      "invalid_argument",
      /cannot store an array/,
    );
    assertError(await call(api, "PUT", "/v1/nodes/x", '{"__proto__":1}'), 400, "out_of_range", /reserved/);
    assertError(
      await call(api, "PUT", "/v1/nodes/x", '{"b":{"$bytes":"A"}}'),
      400,
      "invalid_syntax",
      /base64/,
    );
    assertError(await call(api, "PUT", "/v1/nodes/x", '{"b":{"$bytes":5}}'), 400, "invalid_argument");
    const deep = '{"a":'.repeat(100) + "1" + "}".repeat(100);
    assertError(await call(api, "PUT", "/v1/nodes/x", deep), 400, "out_of_range", /deep/);
    const deeper = "[".repeat(60_000) + "]".repeat(60_000); // (within MAX_BODY_ITEMS: parsed, then refused)
    const d = await call(api, "POST", "/v1/query", deeper);
    assert.equal(d.status, 400, d.text.slice(0, 200));
    const deepObj = '{"a":'.repeat(30_000) + "1" + "}".repeat(30_000);
    assert.equal((await call(api, "PUT", "/v1/nodes/x", deepObj)).status, 400);
    assert.equal(await db.get("x"), undefined);
  });

  it("bodies over the limit are 413, by Content-Length and while streaming", SLOW, async () => {
    const small = await startHttpApi(db, { info: INFO, maxBodyBytes: 1000 });
    const H = served(small);
    try {
      const ok = await call(small, "PUT", "/v1/nodes/lim", JSON.stringify({ s: "x".repeat(900) }));
      assert.equal(ok.status, 200, ok.text);
      assertError(
        await call(small, "PUT", "/v1/nodes/lim", JSON.stringify({ s: "x".repeat(2000) })),
        413,
        "payload_too_large",
        /1000 bytes/,
      );
      // Chunked, without Content-Length: counted while reading.
      const chunked = await raw(
        small.port,
        `PUT /v1/nodes/lim HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\n` +
          "3e8\r\n" + "x".repeat(1000) + "\r\n" + "3e8\r\n" + "x".repeat(1000) + "\r\n0\r\n\r\n",
      );
      assert.match(chunked, /^HTTP\/1\.1 413/);
      assert.match(chunked, /payload_too_large/);
      // Content-Length far over the limit: answered without reading the body.
      const declared = await raw(
        small.port,
        `PUT /v1/nodes/lim HTTP/1.1\r\n${H}\r\nContent-Length: 100000000\r\n\r\n{`,
      );
      assert.match(declared, /^HTTP\/1\.1 413/);
      assert.deepEqual(await db.get("lim"), { s: "x".repeat(900) });
    } finally {
      await small.close();
    }
    // The default limit takes a 1 MiB value as base64, and refuses 3 MiB.
    const big = new Uint8Array(1024 * 1024).fill(7);
    const put = await call(api, "PUT", "/v1/nodes/big", JSON.stringify({ b: toJson(big) }));
    assert.equal(put.status, 200, put.text.slice(0, 200));
    assert.deepEqual((await db.get("big"))?.b, big);
    assertError(
      await call(api, "PUT", "/v1/nodes/big", JSON.stringify({ s: "y".repeat(3 << 20) })),
      413,
      "payload_too_large",
    );
  });

  it(
    "GET /v1/watch streams changes as Server-Sent Events, with heartbeats, and cleans up on disconnect",
    SLOW,
    async () => {
      const before = api.openStreams();
      const res = await fetch(api.url + "/v1/watch?prefix=w%2F");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      const events = new EventReader(res);
      assert.equal(await events.next(), ": watching");
      assert.equal(api.openStreams(), before + 1);
      await db.put("w/1", { n: 1, raw: new Uint8Array([1, 2]) });
      await db.put("other", { n: 2 });
      await db.delete("w/1", "n");
      assert.deepEqual(await events.data(), {
        soul: "w/1",
        changes: { n: 1, raw: { $bytes: "AQI=" } },
        source: "local",
      });
      assert.deepEqual(await events.data(), { soul: "w/1", changes: { n: null }, source: "local" });
      // Heartbeats (every 100 ms here) keep the stream alive.
      let block: string;
      do block = await events.next(); while (block !== ": heartbeat");
      await events.cancel();
      await waitFor(() => api.openStreams() === before);
      // One soul.
      const one = await fetch(api.url + "/v1/watch?soul=" + encodeURIComponent("w/ü 1"));
      const r1 = new EventReader(one);
      await r1.next();
      await db.put("w/ü 10", { no: true });
      await db.put("w/ü 1", { yes: true });
      assert.deepEqual(await r1.data(), { soul: "w/ü 1", changes: { yes: true }, source: "local" });
      await r1.cancel();
      await waitFor(() => api.openStreams() === before);
      // Bad targets are ordinary 400 answers.
      assertError(await call(api, "GET", "/v1/watch"), 400, "invalid_argument", /soul and prefix/);
      assertError(await call(api, "GET", "/v1/watch?soul=a&prefix=b"), 400, "invalid_argument");
      assertError(await call(api, "GET", "/v1/watch?soul="), 400, "out_of_range", /empty/);
    },
  );

  it("closes the event stream of a client that does not read", SLOW, async () => {
    const before = api.openStreams();
    const socket = createConnection({ host: "127.0.0.1", port: api.port });
    socket.on("error", () => {});
    await new Promise<void>((r) => socket.on("connect", () => r()));
    socket.write(`GET /v1/watch?prefix=slow%2F HTTP/1.1\r\n${served(api)}\r\n\r\n`);
    await waitFor(() => api.openStreams() === before + 1);
    socket.pause(); // never read: the server's buffer grows
    const text = "z".repeat(512 * 1024);
    for (let i = 0; i < 64 && api.openStreams() > before; i++) await db.put(`slow/${i}`, { text });
    await waitFor(() => api.openStreams() === before, 10_000);
    socket.destroy();
    assert.equal((await call(api, "GET", "/v1/status")).status, 200);
  });

  it("survives garbage on raw sockets and keeps serving", SLOW, async () => {
    let H = served(api);
    const garbage: (string | Uint8Array)[] = [
      "hello\r\n\r\n",
      "\x00\x01\x02\x03\xff\xfe".repeat(100),
      crypto.getRandomValues(new Uint8Array(4096)),
      "GET / HTTP/1.1\r\n" + "X-Big: " + "a".repeat(200_000) + "\r\n\r\n",
      `GET / HTTP/1.1\r\n${H}\r\n` + "X-H: v\r\n".repeat(5000) + "\r\n",
      "GET /v1/status HTTP/1.1\r\nHost x\r\n\r\n",
      `GET /v1/status HTTP/9.9\r\n${H}\r\n\r\n`,
      `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nContent-Length: 100\r\n\r\n{"a":`,
      `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nContent-Length: abc\r\n\r\n{}`,
      `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`,
      `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n`,
      `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      `GET /v1/nodes/\xff\xfe HTTP/1.1\r\n${H}\r\n\r\n`,
      `GET /v1/nodes/a%ZZ HTTP/1.1\r\n${H}\r\n\r\n`,
      `GET http://example.test/v1/status HTTP/1.1\r\n${H}\r\n\r\n`,
      `GET * HTTP/1.1\r\n${H}\r\n\r\n`,
      `GET /v1/watch?prefix= HTTP/1.1\r\n${H}\r\n\r\n`,
      `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nContent-Length: 7\r\n\r\n{"a":\xff}`,
      `GET /v1/status HTTP/1.1\r\n${H}\r\n\r\nGET /v1/status HTTP/1.1\r\n${H}\r\n\r\nBLAH\r\n\r\n`,
    ];
    for (const g of garbage) {
      await raw(api.port, g, 300);
      const s = await call(api, "GET", "/v1/status");
      assert.equal(s.status, 200, `after ${JSON.stringify(String(g).slice(0, 60))}`);
    }
    // What the answers are, where there is one to give.
    const answers: [string, RegExp][] = [
      ["hello\r\n\r\n", /^HTTP\/1\.1 400 [^]*"bad_request"/],
      [
        "GET / HTTP/1.1\r\nX-Big: " + "a".repeat(200_000) + "\r\n\r\n",
        /^HTTP\/1\.1 431 [^]*"headers_too_large"/,
      ],
      ["GET /v1/status HTTP/1.1\r\nHost x\r\n\r\n", /^HTTP\/1\.1 400 /],
      [`GET /v1/nodes/a%ZZ HTTP/1.1\r\n${H}\r\n\r\n`, /^HTTP\/1\.1 400 [^]*"invalid_path"/],
      [`GET http://example.test/v1/status HTTP/1.1\r\n${H}\r\n\r\n`, /^HTTP\/1\.1 200 [^]*"version"/],
      [`PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nContent-Length: 7\r\n\r\n{"a":\xff}`, /^HTTP\/1\.1 400 /],
    ];
    for (const [request, expected] of answers) assert.match(await raw(api.port, request, 1000), expected);
    // Connections that open and vanish, or send half a request line.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => raw(api.port, "GET /v1/sta".slice(0, i % 11), 50)),
    );
    // A body that stops arriving is a 408 after bodyTimeoutMs.
    const slow = await startHttpApi(db, { info: INFO, bodyTimeoutMs: 200 });
    H = served(slow);
    try {
      const stalled = await raw(
        slow.port,
        `PUT /v1/nodes/t HTTP/1.1\r\n${H}\r\nContent-Length: 50\r\n\r\n{"a":`,
        2000,
      );
      assert.match(stalled, /^HTTP\/1\.1 408/);
      assert.match(stalled, /"timeout"/);
    } finally {
      await slow.close();
    }
    assert.equal(await db.get("t"), undefined);
    assert.equal((await call(api, "GET", "/v1/status")).status, 200);
  });

  it("close() ends event streams, waits for requests, and frees the port", async () => {
    const other = await startHttpApi(db, { info: INFO });
    const res = await fetch(other.url + "/v1/watch?prefix=");
    const events = new EventReader(res);
    await events.next();
    const put = call(other, "PUT", "/v1/nodes/closing", '{"ok":true}');
    await sleep(20);
    await other.close();
    assert.equal((await put).status, 200);
    await assert.rejects(async () => {
      for (;;) await events.next();
    });
    await assert.rejects(fetch(other.url + "/v1/status"));
    assert.equal(other.openStreams(), 0);
  });
});

describe("connect(url)", () => {
  let db: Database;
  let api: HttpApi;

  before(async () => {
    db = await open({ storage: "memory" });
    api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO });
  });
  after(async () => {
    await api.close();
    await db.close();
  });

  it("gives the same results as the library", SLOW, async () => {
    const local = await open({ storage: "memory" });
    const remote = connect(api.url, { token: api.token! });
    try {
      const data = {
        name: "Alice",
        age: 30,
        admin: false,
        nothing: undefined,
        raw: new Uint8Array([0, 1, 255]),
        friend: { "#": "bob" },
        pet: { name: "Rex", toy: { kind: "ball" } },
      };
      for (const target of [local, remote]) {
        const r = await target.put("alice", data);
        assert.equal(r.soul, "alice");
        assert.match(r.state, /^[0-9a-f]{16}$/);
        await target.put("bob", { name: "Bob", age: 50, friend: { "#": "alice" } });
        await target.put("ü/ 1", { x: 1 });
      }
      for (const soul of ["alice", "alice/pet", "alice/pet/toy", "bob", "ü/ 1", "nobody"]) {
        assert.deepEqual(await remote.get(soul), await local.get(soul), soul);
      }
      const q = { from: "alice", path: ["friend", "friend"], where: { age: { gt: 20 } } };
      assert.deepEqual(await remote.query(q), await local.query(q));
      const all = async (it: AsyncIterable<unknown>) => {
        const out: unknown[] = [];
        for await (const x of it) out.push(x);
        return out;
      };
      assert.deepEqual(await all(remote.list()), await all(local.list()));
      assert.deepEqual(
        await all(remote.list({ prefix: "alice", limit: 2 })),
        await all(local.list({ prefix: "alice", limit: 2 })),
      );
      assert.deepEqual(
        await all(remote.list({ cursor: "alice/pet" })),
        await all(local.list({ cursor: "alice/pet" })),
      );
      await remote.delete("alice", "age");
      await local.delete("alice", "age");
      await remote.delete("bob");
      await local.delete("bob");
      assert.deepEqual(await remote.get("alice"), await local.get("alice"));
      assert.equal(await remote.get("bob"), undefined);
      // Errors: the same classes and messages as the library, from local checks or the server's codes.
      for (
        const [op, name] of [
          [(t: typeof local | typeof remote) => t.put("", { a: 1 }), "RangeError"],
          [(t: typeof local | typeof remote) => t.put("s", { a: [1] } as never), "TypeError"],
          [(t: typeof local | typeof remote) => t.get(5 as never), "TypeError"],
          [
            (t: typeof local | typeof remote) =>
              t.query({ from: "alice", where: { a: { near: 1 } } } as never),
            "RangeError",
          ],
          [(t: typeof local | typeof remote) => t.query({ from: 7 } as never), "TypeError"],
          [(t: typeof local | typeof remote) => t.query({ from: "a", limit: -1 }), "RangeError"],
        ] as const
      ) {
        const l = await op(local).then(() => undefined, (e: Error) => e);
        const r = await op(remote).then(() => undefined, (e: Error) => e);
        assert.ok(l && r, "both reject");
        assert.equal(r.name, name);
        assert.equal(r.constructor, l.constructor);
        assert.equal(r.message, l.message);
      }
      assert.throws(() => remote.list({ limit: -1 }), RangeError);
      const s = await remote.status();
      assert.equal(s.storage, "memory");
      assert.equal(s.version, VERSION);
      assert.deepEqual(await remote.peers(), INFO().peers);
      await assert.rejects(remote.search({ vector: [1], k: 1 }), /no vector index is declared/);
    } finally {
      await remote.close();
      await local.close();
    }
  });

  it("lists across many pages", SLOW, async () => {
    const remote = connect(api.url + "/", { token: api.token! });
    for (let i = 0; i < 2300; i++) await db.put(`many/${String(i).padStart(4, "0")}`, { i });
    let n = 0;
    for await (const e of remote.list({ prefix: "many/" })) {
      assert.equal(e.data.i, n++);
    }
    assert.equal(n, 2300);
    n = 0;
    for await (const _ of remote.list({ prefix: "many/", limit: 1500 })) n++;
    assert.equal(n, 1500);
    await remote.close();
  });

  it("watch delivers changes after ready and stops on unsubscribe", SLOW, async () => {
    const remote = connect(api.url, { token: api.token! });
    const seen: Change[] = [];
    const stop = remote.watch({ prefix: "cw/" }, (c) => seen.push(c));
    await stop.ready;
    await db.put("cw/a", { v: new Uint8Array([9]) });
    await db.put("elsewhere", { v: 1 });
    await db.put("cw/b", { v: 2 });
    await waitFor(() => seen.length === 2);
    assert.deepEqual(seen, [
      { soul: "cw/a", changes: { v: new Uint8Array([9]) }, source: "local" },
      { soul: "cw/b", changes: { v: 2 }, source: "local" },
    ]);
    stop();
    await waitFor(() => api.openStreams() === 0);
    await db.put("cw/c", { v: 3 });
    await sleep(50);
    assert.equal(seen.length, 2);
    // A soul watch, and a stream the server ends: onError is told.
    const other = await startHttpApi(db, { info: INFO });
    const r2 = connect(other.url, { token: other.token! });
    const errors: Error[] = [];
    const one: Change[] = [];
    const stop2 = r2.watch("solo", (c) => one.push(c), { onError: (e) => errors.push(e) });
    await stop2.ready;
    await db.put("solo", { x: 1 });
    await waitFor(() => one.length === 1);
    await other.close();
    await waitFor(() => errors.length === 1);
    assert.equal(errors[0].name, "ConnectionError");
    await r2.close();
    // Bad targets throw at once, as in the library.
    assert.throws(() => remote.watch("", () => {}), RangeError);
    assert.throws(() => remote.watch({} as never, () => {}), TypeError);
    await remote.close();
  });

  it(
    "names the URL when the node cannot be reached, times out, and honours abort signals",
    SLOW,
    async () => {
      // A port with nothing listening.
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
      const port = (probe.address() as { port: number }).port;
      await new Promise<void>((r) => probe.close(() => r()));
      const dead = connect(`http://127.0.0.1:${port}`);
      await assert.rejects(dead.get("a"), (e: unknown) => {
        assert.ok(e instanceof ConnectionError);
        assert.match(e.message, new RegExp(`http://127\\.0\\.0\\.1:${port}`));
        return true;
      });
      await dead.close();
      // A server that accepts and never answers.
      const sockets: Socket[] = [];
      const silent: NetServer = createServer((s) => sockets.push(s.on("error", () => {})));
      await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
      const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const slow = connect(silentUrl, { timeoutMs: 200 });
      await assert.rejects(slow.status(), (e: unknown) => (e as Error).name === "TimeoutError");
      const ac = new AbortController();
      const pending = slow.get("a", { signal: ac.signal, timeoutMs: 10_000 });
      ac.abort(new Error("stop now"));
      await assert.rejects(pending, /stop now/);
      await slow.close();
      await assert.rejects(slow.get("a"), /closed/);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
      assert.throws(() => connect("ftp://x"), TypeError);
    },
  );
});

describe("serve (child process)", () => {
  /** `tests/_serve_child.ts args…`, once it has printed its ready line. */
  const start = (args: string[]) => startServe(args, { script: "tests/_serve_child.ts", readyMs: 30_000 });

  it(
    "prints the ready line, serves HTTP, and on SIGTERM exits 0 keeping acknowledged writes",
    SLOW,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "lattice-serve-"));
      try {
        const node = await start([dir]);
        const line = node.ready.line;
        const m = /^ready (http:\/\/127\.0\.0\.1:\d+) -$/.exec(line);
        assert.ok(m, line);
        // The token is in the directory, readable by its owner only.
        const token = readFileSync(join(dir, "http-token"), "utf8").trim();
        assert.match(token, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(statSync(join(dir, "http-token")).mode & 0o777, 0o600);
        const remote = connect(m[1], { token });
        const stop = remote.watch({ prefix: "" }, () => {});
        await stop.ready;
        for (let i = 0; i < 50; i++) await remote.put(`durable/${i}`, { i });
        const last = await remote.put("durable/last", { done: true });
        assert.equal((await remote.status()).nodes, 51);
        assert.equal(await node.stop("SIGTERM"), 0, node.stderr());
        assert.equal(node.stderr(), "");
        stop();
        await remote.close();
        const db = await open({ path: dir });
        try {
          assert.deepEqual(await db.get("durable/last"), { done: true });
          assert.deepEqual(await db.get("durable/49"), { i: 49 });
          let n = 0;
          for await (const _ of db.list({ prefix: "durable/" })) n++;
          assert.equal(n, 51);
          assert.ok(last.state);
        } finally {
          await db.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("prints a JSON ready line with --json and stops on SIGINT", SLOW, async () => {
    const node = await start(["--json", "--memory"]);
    const ready = JSON.parse(node.ready.line);
    assert.equal(ready.ready, true);
    assert.match(ready.http, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(ready.peerId, null);
    assert.deepEqual(ready.addrs, []);
    assert.deepEqual(Object.keys(ready), ["ready", "http", "peerId", "addrs", "token"]);
    assert.match(ready.token, /^[A-Za-z0-9_-]{43}$/); // a --memory node's token lives in memory
    const res = await fetch(ready.http + "/v1/status");
    assert.equal(((await res.json()) as { storage: string }).storage, "memory");
    const put = (token?: string) =>
      fetch(ready.http + "/v1/nodes/n", {
        method: "PUT",
        body: "{}",
        headers: token ? { authorization: `Bearer ${token}` } : {},
      }).then((r) => r.status);
    assert.equal(await put(), 401);
    assert.equal(await put(ready.token), 200);
    assert.equal(await node.stop("SIGINT"), 0, node.stderr());
  });
});
