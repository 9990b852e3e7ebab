// @server-only: listens on 127.0.0.1, opens raw sockets and spawns `serve` as a child process
/**
 * Who may use a node's HTTP API (`net/http.ts`), and how much one client can
 * take of it: the bearer token (writes always, reads off loopback), no CORS
 * grant but to `corsOrigins`, foreign `Origin` and `Host` refused (drive-by
 * pages, DNS rebinding), the inspector page's token, `GET /v1`, caps on event
 * streams (count and backlog: memory measured in a child process) and idle
 * connections closed.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { type Database, open } from "../mod.ts";
import { type HttpApi, type HttpApiOptions, startHttpApi } from "../net/http.ts";
import { connect, RemoteError } from "../net/client.ts";
import { startServe } from "./_serve.ts";

const SLOW = { timeout: 60_000 };
const INFO = () => ({ peerId: null, addrs: [], space: "default", peers: [] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

async function call(
  api: HttpApi,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  const res = await fetch(api.url + path, { method, headers, body });
  const text = await res.text();
  let json: Answer["body"];
  try {
    json = JSON.parse(text);
  } catch {
    json = { text };
  }
  return { status: res.status, headers: res.headers, body: json };
}

const bearer = (token: string | null) => ({ authorization: `Bearer ${token}` });

function assertError(a: Answer, status: number, code: string): void {
  assert.equal(a.status, status, JSON.stringify(a.body));
  assert.equal(a.body.error?.code, code, JSON.stringify(a.body));
}

/** Sends `request` on a new connection and returns what came back before the server closed it or `ms` passed. */
function raw(port: number, request: string, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const socket: Socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(request));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(done, ms);
    socket.setEncoding("utf8").on("data", (s: string) => text += s);
    socket.on("error", done);
    socket.on("close", done);
  });
}

describe("http api: who may ask", () => {
  let db: Database;
  const apis: HttpApi[] = [];
  const start = async (options: Partial<HttpApiOptions> = {}) => {
    const api = await startHttpApi(db, { info: INFO, ...options });
    apis.push(api);
    return api;
  };

  before(async () => {
    db = await open({ storage: "memory" });
  });
  after(async () => {
    for (const api of apis) await api.close();
    await db.close();
  });

  it("writes need the token: 401 without it or with a wrong one; reads from loopback need none", async () => {
    const api = await start();
    assert.match(api.token ?? "", /^[A-Za-z0-9_-]{43}$/); // a fresh random token by default
    const body = '{"a":1}';
    const none = await call(api, "PUT", "/v1/nodes/w", {}, body);
    assertError(none, 401, "unauthorized");
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assertError(
      await call(api, "PUT", "/v1/nodes/w", bearer("x" + api.token!.slice(1)), body),
      401,
      "unauthorized",
    );
    assertError(await call(api, "PUT", "/v1/nodes/w", bearer(api.token + "x"), body), 401, "unauthorized");
    assertError(
      await call(api, "PUT", "/v1/nodes/w", { authorization: api.token! }, body),
      401,
      "unauthorized",
    );
    assertError(await call(api, "DELETE", "/v1/nodes/w"), 401, "unauthorized");
    assert.equal(await db.get("w"), undefined);
    assert.equal((await call(api, "PUT", "/v1/nodes/w", bearer(api.token), body)).status, 200);
    assert.equal(
      (await call(api, "PUT", "/v1/nodes/w", { authorization: `bearer  ${api.token}` }, body)).status,
      200,
    );
    assert.deepEqual(await db.get("w"), { a: 1 });
    for (const [method, path] of [["GET", "/v1/status"], ["GET", "/v1/nodes/w"], ["GET", "/v1/nodes"]]) {
      assert.equal((await call(api, method, path)).status, 200, path);
    }
    assert.equal((await call(api, "POST", "/v1/query", {}, '{"from":"w"}')).status, 200);
    // A token given by the caller is the one asked for.
    const own = await start({ token: "my-own-token" });
    assert.equal(own.token, "my-own-token");
    assert.equal((await call(own, "PUT", "/v1/nodes/w", bearer("my-own-token"), body)).status, 200);
    await assert.rejects(start({ token: "has space" }), TypeError);
    // The client sends it.
    const without = connect(api.url), with_ = connect(api.url, { token: api.token! });
    await assert.rejects(without.put("c", { x: 1 }), (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "unauthorized");
      return true;
    });
    assert.equal((await with_.put("c", { x: 1 })).soul, "c");
    await Promise.all([without.close(), with_.close()]);
  });

  it("off loopback (loopbackReads: false) reads and watches need the token too", async () => {
    const api = await start({ loopbackReads: false });
    for (const path of ["/v1/status", "/v1/nodes", "/v1/nodes/w", "/v1/peers", "/v1/watch?prefix="]) {
      assertError(await call(api, "GET", path), 401, "unauthorized");
    }
    assertError(await call(api, "POST", "/v1/query", {}, '{"from":"w"}'), 401, "unauthorized");
    assert.equal((await call(api, "GET", "/v1/status", bearer(api.token))).status, 200);
    const remote = connect(api.url, { token: api.token! });
    const stop = remote.watch({ prefix: "" }, () => {});
    await stop.ready;
    stop();
    await remote.close();
    // The inspector page still loads, without the token: it asks for it.
    const page = await fetch(api.url + "/");
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<meta name="lattice-token" content="">/);
  });

  it("auth: false serves anyone (a development node)", async () => {
    const api = await start({ auth: false, token: "ignored" });
    assert.equal(api.token, null);
    assert.equal((await call(api, "PUT", "/v1/nodes/open", {}, '{"a":1}')).status, 200);
    assert.equal((await call(api, "DELETE", "/v1/nodes/open")).status, 200);
  });

  it("grants no CORS by default and refuses requests from other origins' pages", async () => {
    const api = await start();
    const plain = await call(api, "GET", "/v1/status");
    assert.equal(plain.headers.get("access-control-allow-origin"), null);
    assert.equal(plain.headers.get("vary"), null);
    const evil = { origin: "http://evil.test" };
    const pre = await call(api, "OPTIONS", "/v1/nodes/x", {
      ...evil,
      "access-control-request-method": "PUT",
    });
    assertError(pre, 403, "forbidden_origin");
    assert.equal(pre.headers.get("access-control-allow-origin"), null);
    assert.equal(pre.headers.get("access-control-allow-methods"), null);
    // A "simple" cross-origin POST (text/plain) that a page may send without preflight does nothing.
    const simple = await call(
      api,
      "POST",
      "/v1/query",
      { ...evil, "content-type": "text/plain" },
      '{"from":"w"}',
    );
    assertError(simple, 403, "forbidden_origin");
    assert.equal(simple.headers.get("access-control-allow-origin"), null);
    assertError(
      await call(api, "PUT", "/v1/nodes/x", { ...evil, ...bearer(api.token) }, "{}"),
      403,
      "forbidden_origin",
    );
    assertError(await call(api, "GET", "/v1/status", { origin: "null" }), 403, "forbidden_origin");
    // An <img>/<script> of another site's page sends no Origin, but the browser marks it.
    const img = { "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image" };
    assertError(await call(api, "GET", "/v1/nodes?limit=1000", img), 403, "forbidden_origin");
    const link = {
      "sec-fetch-site": "cross-site",
      "sec-fetch-mode": "navigate",
      "sec-fetch-dest": "document",
    };
    assert.equal((await call(api, "GET", "/", link)).status, 200); // a link to the inspector is fine
    // The node's own origin (the inspector's requests) is fine, and gets no CORS header either.
    const own = await call(api, "PUT", "/v1/nodes/x", { origin: api.url, ...bearer(api.token) }, '{"a":1}');
    assert.equal(own.status, 200);
    assert.equal(own.headers.get("access-control-allow-origin"), null);
  });

  it("--cors-origin grants exactly the origins named, with Vary: Origin", async () => {
    const app = "http://app.test:5173";
    const api = await start({ corsOrigins: [app, "https://other.test/"] });
    const pre = await call(api, "OPTIONS", "/v1/nodes/x", {
      origin: app,
      "access-control-request-method": "PUT",
      "access-control-request-headers": "authorization, content-type",
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), app);
    assert.match(pre.headers.get("vary") ?? "", /Origin/);
    assert.match(pre.headers.get("access-control-allow-methods") ?? "", /PUT/);
    assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/);
    const put = await call(api, "PUT", "/v1/nodes/c", { origin: app, ...bearer(api.token) }, '{"a":1}');
    assert.equal(put.status, 200);
    assert.equal(put.headers.get("access-control-allow-origin"), app);
    assert.match(put.headers.get("vary") ?? "", /Origin/);
    // Errors carry the grant too, so the page can read them; writes still need the token.
    const denied = await call(api, "PUT", "/v1/nodes/c", { origin: app }, "{}");
    assertError(denied, 401, "unauthorized");
    assert.equal(denied.headers.get("access-control-allow-origin"), app);
    const got = await call(api, "GET", "/v1/status", { origin: "https://other.test" });
    assert.equal(got.headers.get("access-control-allow-origin"), "https://other.test");
    for (const origin of ["http://app.test:5174", "https://app.test:5173", "http://evil.test"]) {
      const a = await call(api, "GET", "/v1/status", { origin });
      assertError(a, 403, "forbidden_origin");
      assert.equal(a.headers.get("access-control-allow-origin"), null, origin);
    }
    // An allowed origin gets no token from the inspector page.
    const page = await fetch(api.url + "/", { headers: { origin: app } });
    assert.equal(page.headers.get("access-control-allow-origin"), null);
    assert.match(await page.text(), /<meta name="lattice-token" content="">/);
    for (const bad of ["*", "http://a.test/path", "app.test", "ftp://a.test"]) {
      await assert.rejects(start({ corsOrigins: [bad] }), TypeError, bad);
    }
  });

  it("refuses a Host it does not serve (DNS rebinding) with 421 misdirected_request", async () => {
    const api = await start({ hosts: ["db.example.test"] });
    const ask = (host: string) =>
      raw(api.port, `GET /v1/status HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    for (
      const host of [
        "evil.test",
        `evil.test:${api.port}`,
        `127.0.0.1:${api.port + 1}`,
        `localhost.evil.test:${api.port}`,
        `127.0.0.1.nip.io:${api.port}`,
      ]
    ) {
      const a = await ask(host);
      assert.match(a, /^HTTP\/1\.1 421 /, host);
      assert.match(a, /"misdirected_request"/, host);
    }
    for (
      const host of [
        `127.0.0.1:${api.port}`,
        `localhost:${api.port}`,
        `LOCALHOST:${api.port}`,
        `[::1]:${api.port}`,
        "db.example.test",
        `db.example.test:${api.port}`,
      ]
    ) {
      assert.match(await ask(host), /^HTTP\/1\.1 200 /, host);
    }
    // The inspector page (which holds the token) too.
    assert.match(
      await raw(api.port, `GET / HTTP/1.1\r\nHost: evil.test:${api.port}\r\n\r\n`),
      /^HTTP\/1\.1 421 /,
    );
  });

  it("serves the inspector page with a working token, to loopback only", async () => {
    const api = await start();
    const res = await fetch(api.url + "/");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    const html = await res.text();
    const m = /<meta name="lattice-token" content="([^"]*)">/.exec(html);
    assert.ok(m, "the page has the token tag");
    assert.equal(m[1], api.token);
    // The page sends it on writes and watches.
    assert.match(html, /authorization = "Bearer " \+ token/);
    assert.doesNotMatch(html, /new EventSource/);
    const put = await call(
      api,
      "PUT",
      "/v1/nodes/from-page",
      { origin: api.url, ...bearer(m[1]) },
      '{"ok":true}',
    );
    assert.equal(put.status, 200);
    assert.deepEqual(await db.get("from-page"), { ok: true });
    // Without authentication there is no token to give.
    const open = await start({ auth: false });
    assert.match(await (await fetch(open.url + "/")).text(), /<meta name="lattice-token" content="">/);
  });

  it("GET /v1 and /v1/ list the routes and which need the token", async () => {
    const api = await start();
    for (const path of ["/v1", "/v1/"]) {
      const a = await call(api, "GET", path);
      assert.equal(a.status, 200);
      assert.equal(a.body.auth, true);
      const routes = a.body.routes as { method: string; path: string; does: string; token: string }[];
      const find = (method: string, path: string) =>
        routes.find((r) => r.method === method && r.path === path);
      for (const r of routes) assert.ok(r.does.length > 0, `${r.method} ${r.path} says what it does`);
      assert.equal(find("PUT", "/v1/nodes/{soul}")?.token, "always");
      assert.equal(find("DELETE", "/v1/nodes/{soul}")?.token, "always");
      assert.equal(find("GET", "/v1/nodes/{soul}")?.token, "off-loopback");
      assert.equal(find("GET", "/v1/status")?.token, "off-loopback");
      assert.equal(find("POST", "/v1/query")?.token, "off-loopback");
      assert.equal(find("GET", "/v1/watch")?.token, "off-loopback");
      assert.equal(find("GET", "/")?.token, "never");
      assert.ok(find("GET", "/v1"));
    }
    const open = await start({ auth: false });
    const b = await call(open, "GET", "/v1");
    assert.equal(b.body.auth, false);
    assert.ok((b.body.routes as { token: string }[]).every((r) => r.token === "never"));
    assertError(await call(api, "GET", "/v2"), 404, "unknown_route");
  });
});

describe("http api: bounded event streams and connections", () => {
  let db: Database;
  before(async () => {
    db = await open({ storage: "memory" });
  });
  after(async () => {
    await db.close();
  });

  /** Opens a watch and returns its response (the caller reads or cancels it). */
  const watch = (api: HttpApi) => fetch(api.url + "/v1/watch?prefix=cap%2F");

  it("caps event streams in all and per client: 429 too_many_streams beyond", async () => {
    for (
      const [options, whose] of [[{ maxStreams: 2 }, "in all"], [
        { maxStreamsPerClient: 2 },
        "per client",
      ]] as const
    ) {
      const api = await startHttpApi(db, { info: INFO, ...options });
      try {
        const open = [await watch(api), await watch(api)];
        assert.deepEqual(open.map((r) => r.status), [200, 200]);
        const over = await watch(api);
        assert.equal(over.status, 429);
        assert.equal(over.headers.get("retry-after"), "5");
        const body = await over.json() as { error: { code: string; message: string } };
        assert.equal(body.error.code, "too_many_streams");
        assert.match(body.error.message, new RegExp(`at most 2 event streams at once ${whose}`));
        assert.equal(api.openStreams(), 2);
        // A closed stream frees its place.
        await open[0].body!.cancel();
        for (let i = 0; i < 200 && api.openStreams() > 1; i++) await sleep(10);
        const again = await watch(api);
        assert.equal(again.status, 200);
        await again.body!.cancel();
        await open[1].body!.cancel();
      } finally {
        await api.close();
      }
    }
  });

  it("a reader that keeps up gets a burst of large values whole, past the backlog limit", SLOW, async () => {
    const api = await startHttpApi(db, { info: INFO }); // 256 KiB of backlog per stream
    try {
      const reader = await fetch(api.url + "/v1/watch?prefix=burst%2F");
      const events = reader.body!.pipeThrough(new TextDecoderStream()).getReader();
      const text = "b".repeat(512 * 1024);
      let buffered = "", seen = 0;
      const first = await events.read(); // ": watching"
      assert.match(first.value ?? "", /^: watching/);
      // One commit, so one turn of the event loop: 2 MiB written before the first byte leaves.
      await Promise.all([0, 1, 2, 3].map((i) => db.put(`burst/${i}`, { text })));
      while (seen < 4) {
        const { value, done } = await events.read();
        assert.ok(!done, `the stream was closed after ${seen} values`);
        const parts = (buffered + value).split("\n\n");
        buffered = parts.pop()!;
        for (const e of parts) {
          if (!e.startsWith("data: ")) continue;
          assert.equal(JSON.parse(e.slice(6)).changes.text, text);
          seen++;
        }
      }
      assert.equal(api.openStreams(), 1);
      await events.cancel();
    } finally {
      await api.close();
    }
  });

  it(
    "closes the streams with the most unread bytes while all together pass streamsBufferBytes",
    SLOW,
    async () => {
      // A per-stream backlog too large to matter: only the budget across streams closes anything.
      const api = await startHttpApi(db, {
        info: INFO,
        streamBufferBytes: 1024 * 1024 * 1024,
        streamsBufferBytes: 2 * 1024 * 1024,
      });
      const sockets: Socket[] = [];
      try {
        // A reader that keeps up, and sees every large value whole.
        const reader = await fetch(api.url + "/v1/watch?prefix=budget%2F");
        const seen: number[] = [];
        const events = reader.body!.pipeThrough(new TextDecoderStream()).getReader();
        const reading = (async () => {
          let buffered = "";
          for (;;) {
            const { value, done } = await events.read();
            if (done) return;
            const parts = (buffered + value).split("\n\n");
            buffered = parts.pop()!;
            for (const e of parts) {
              if (e.startsWith("data: ")) seen.push(JSON.parse(e.slice(6)).changes.text.length);
            }
          }
        })();
        for (let i = 0; i < 3; i++) {
          await new Promise<void>((resolve) => {
            const socket = createConnection(
              { host: "127.0.0.1", port: api.port },
              () =>
                socket.write(
                  `GET /v1/watch?prefix=budget%2F HTTP/1.1\r\nHost: 127.0.0.1:${api.port}\r\n\r\n`,
                ),
            );
            sockets.push(socket);
            socket.on("error", () => {});
            socket.once("data", () => {
              socket.pause(); // never reads again
              resolve();
            });
          });
        }
        assert.equal(api.openStreams(), 4);
        const text = "z".repeat(512 * 1024);
        let writes = 0;
        while (writes < 40 && api.openStreams() > 1) {
          await db.put(`budget/${writes++}`, { text });
          await sleep(5); // writes come one by one, as they would over HTTP
        }
        assert.equal(api.openStreams(), 1, "the three streams that do not read are closed");
        assert.ok(writes < 40, `${writes} values written before they were`);
        for (let i = 0; i < 100 && seen.length < writes; i++) {
          await sleep(20);
        }
        assert.equal(seen.length, writes, "the reader got every value");
        assert.ok(
          seen.every((n) => n === text.length),
          "each value whole",
        );
        await events.cancel();
        await reading;
      } finally {
        for (const s of sockets) s.destroy();
        await api.close();
      }
    },
  );

  it("closes a connection that sends no request, or half of one, after idleTimeoutMs", SLOW, async () => {
    const api = await startHttpApi(db, { info: INFO, idleTimeoutMs: 300 });
    try {
      const closedAfter = (request: string) =>
        new Promise<number>((resolve) => {
          const started = Date.now();
          const socket = createConnection({ host: "127.0.0.1", port: api.port }, () => socket.write(request));
          socket.on("error", () => {});
          socket.on("data", () => {});
          socket.on("close", () => resolve(Date.now() - started));
          setTimeout(() => {
            socket.destroy();
            resolve(Infinity);
          }, 5_000);
        });
      const host = `Host: 127.0.0.1:${api.port}`;
      const [silent, half, kept] = await Promise.all([
        closedAfter(""), // connects and says nothing
        closedAfter(`GET /v1/status HTTP/1.1\r\n${host}\r\n`), // never ends its header
        closedAfter(`GET /v1/status HTTP/1.1\r\n${host}\r\n\r\n`), // answered, then kept alive idle
      ]);
      assert.ok(silent < 5_000, "a silent connection is closed");
      assert.ok(half < 5_000, "a half-sent header is closed");
      assert.ok(kept < 5_000, "an idle keep-alive connection is closed");
      // An event stream is a request in progress, not idle.
      const res = await fetch(api.url + "/v1/watch?prefix=idle%2F");
      await sleep(800);
      assert.equal(api.openStreams(), 1);
      await res.body!.cancel();
    } finally {
      await api.close();
    }
  });

  it("100 watchers that never read cost a bounded amount of memory (serve child, RSS)", SLOW, async () => {
    const node = await startServe(["--json", "--memory"], {
      script: "tests/_serve_child.ts",
      readyMs: 30_000,
    });
    const sockets: Socket[] = [];
    try {
      const { http, token } = node.ready;
      const port = Number(new URL(http).port);
      const rss = (field: "VmRSS" | "VmHWM") => {
        const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
          readFileSync(`/proc/${node.pid}/status`, "utf8"),
        );
        return Number(m![1]) * 1024;
      };
      const statuses = await Promise.all(Array.from({ length: 100 }, () =>
        new Promise<string>((resolve) => {
          const socket = createConnection({ host: "127.0.0.1", port }, () =>
            socket.write(`GET /v1/watch?prefix=big%2F HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
          sockets.push(socket);
          socket.on("error", () => {});
          socket.once("data", (d: Uint8Array) => {
            socket.pause(); // never reads again: what the node sends piles up
            resolve(new TextDecoder().decode(d).slice(9, 12));
          });
        })));
      const ok = statuses.filter((s) => s === "200").length;
      assert.equal(ok, 16, "16 streams per client by default");
      assert.equal(statuses.filter((s) => s === "429").length, 84);
      const before = rss("VmRSS");
      const text = "z".repeat(256 * 1024);
      const writer = connect(http, { token: token! });
      for (let i = 0; i < 48; i++) await writer.put(`big/${i}`, { text });
      await writer.close();
      const status = await fetch(http + "/v1/status");
      assert.equal(status.status, 200);
      await status.body?.cancel();
      const grown = rss("VmHWM") - before;
      // Measured: +24–28 MiB on Deno and +44–48 MiB on Bun, about what the data alone costs (each change
      // encoded once, 256 KiB of backlog per stream); with each change encoded once per stream and 1 MiB
      // of backlog, +67–80 MiB on Deno and +63–69 MiB on Bun; with no cap on streams and 8 MiB of
      // backlog each, +915 MiB.
      assert.ok(grown < 56 * 1024 * 1024, `peak RSS grew by ${(grown / 1048576).toFixed(0)} MiB`);
    } finally {
      for (const s of sockets) s.destroy();
      assert.equal(await node.stop(), 0, node.stderr());
    }
  });
});
