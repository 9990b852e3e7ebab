/**
 * The HTTP client (`net/client.ts`) against a scripted `fetch`, so it also
 * runs in the browser: request shapes (methods, percent-encoded souls, JSON
 * bodies with bytes), paging, error mapping, and the Server-Sent Events
 * parser fed in awkward chunks. The client against a real node is covered by
 * tests/http.test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Change } from "../core/database.ts";
import { connect, ConnectionError, RemoteError } from "../net/client.ts";

interface Seen {
  method: string;
  url: string;
  body: string | undefined;
}

/** A fetch that records requests and answers with `reply(request)`. */
function scripted(reply: (req: Seen) => Response | Promise<Response>): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = { method: init?.method ?? "GET", url: String(input), body: init?.body as string | undefined };
    seen.push(req);
    if (init?.signal?.aborted) throw init.signal.reason;
    return await reply(req);
  }) as typeof fetch;
  return { fetch: fake, seen };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const error = (status: number, code: string, message: string) => json(status, { error: { code, message } });

/** A streaming response whose body is `parts`, sent one chunk each tick. */
function stream(parts: readonly string[]): Response {
  const enc = new TextEncoder();
  let i = 0;
  return new Response(
    new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((r) => setTimeout(r, 1));
        if (i < parts.length) controller.enqueue(enc.encode(parts[i++]));
        else controller.close();
      },
    }),
    { status: 200, headers: { "content-type": "text/event-stream" } },
  );
}

async function waitFor(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("http client", () => {
  it("sends percent-encoded souls and JSON bodies with bytes, without undefined fields", async () => {
    const { fetch, seen } = scripted((req) =>
      req.method === "GET"
        ? json(200, { raw: { $bytes: "AAH/" }, link: { "#": "b" } })
        : json(200, { soul: "a/b c", state: "0000000000000001", field: null })
    );
    const db = connect("http://127.0.0.1:9/", { fetch });
    assert.equal(db.url, "http://127.0.0.1:9");
    const r = await db.put("a/b c", { raw: new Uint8Array([0, 1, 255]), skip: undefined, n: 1 });
    assert.deepEqual(r, { soul: "a/b c", state: "0000000000000001" });
    assert.deepEqual(await db.get("a/b c"), { raw: new Uint8Array([0, 1, 255]), link: { "#": "b" } });
    await db.delete("ü?#", "f&g");
    assert.deepEqual(seen.map((s) => [s.method, s.url]), [
      ["PUT", "http://127.0.0.1:9/v1/nodes/a%2Fb%20c"],
      ["GET", "http://127.0.0.1:9/v1/nodes/a%2Fb%20c"],
      ["DELETE", "http://127.0.0.1:9/v1/nodes/%C3%BC%3F%23?field=f%26g"],
    ]);
    assert.deepEqual(JSON.parse(seen[0].body!), { raw: { $bytes: "AAH/" }, n: 1 });
    await db.close();
  });

  it("sends the token as Authorization: Bearer on every request, watches too, and only when given", async () => {
    const auth: (string | null)[] = [];
    const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.signal?.aborted) throw init.signal.reason;
      auth.push(new Headers(init?.headers).get("authorization"));
      if (String(input).includes("/v1/watch")) return stream([": watching\n\n"]);
      if (String(input).includes("/v1/nodes?")) return json(200, { nodes: [], cursor: null });
      return json(200, { soul: "a", state: "0000000000000001", nodes: [], peers: [] });
    }) as typeof fetch;
    const db = connect("http://127.0.0.1:9", { fetch: fake, token: "tok_en-42" });
    await db.put("a", { x: 1 });
    await db.get("a");
    await db.delete("a");
    for await (const _ of db.list()) break;
    await db.query({ from: "a" });
    await db.status();
    await db.peers();
    const stop = db.watch({ prefix: "" }, () => {}, { reconnect: false });
    await stop.ready;
    stop();
    assert.equal(auth.length, 8);
    assert.ok(auth.every((a) => a === "Bearer tok_en-42"), JSON.stringify(auth));
    await db.close();
    auth.length = 0;
    const open = connect("http://127.0.0.1:9", { fetch: fake });
    await open.get("a");
    assert.deepEqual(auth, [null]);
    await open.close();
    for (const bad of ["", "two words", "x".repeat(1025), "tab\t"]) {
      assert.throws(() => connect("http://127.0.0.1:9", { token: bad }), TypeError, JSON.stringify(bad));
    }
  });

  it("counts nodes as the node's status does", async () => {
    const { fetch, seen } = scripted(() => json(200, { nodes: 42, peers: 0, space: "default" }));
    const db = connect("http://127.0.0.1:9", { fetch });
    assert.equal(await db.countNodes(), 42);
    assert.deepEqual(seen.map((s) => [s.method, s.url]), [["GET", "http://127.0.0.1:9/v1/status"]]);
    await db.close();
  });

  it("follows list cursors until null and stops at the limit", async () => {
    const { fetch, seen } = scripted((req) => {
      const cursor = new URL(req.url).searchParams.get("cursor");
      if (cursor === null) return json(200, { nodes: [{ soul: "p/1", data: { i: 1 } }], cursor: "p/1" });
      if (cursor === "p/1") return json(200, { nodes: [{ soul: "p/2", data: { i: 2 } }], cursor: "p/2" });
      return json(200, { nodes: [{ soul: "p/3", data: { i: 3 } }], cursor: null });
    });
    const db = connect("http://127.0.0.1:9", { fetch });
    const souls: string[] = [];
    for await (const e of db.list({ prefix: "p/" })) souls.push(e.soul);
    assert.deepEqual(souls, ["p/1", "p/2", "p/3"]);
    assert.equal(new URL(seen[0].url).searchParams.get("prefix"), "p/");
    assert.equal(new URL(seen[0].url).searchParams.get("limit"), "1000");
    seen.length = 0;
    const two: string[] = [];
    for await (const e of db.list({ limit: 2 })) two.push(e.soul);
    assert.deepEqual(two, ["p/1", "p/2"]);
    assert.deepEqual(seen.map((s) => new URL(s.url).searchParams.get("limit")), ["2", "1"]);
    assert.throws(() => db.list({ prefix: 5 as never }), TypeError);
    await db.close();
  });

  it("maps error answers to the library's error classes", async () => {
    const answers: Record<string, Response> = {};
    const { fetch } = scripted((req) =>
      answers[new URL(req.url).pathname] ?? error(500, "internal", "Internal")
    );
    const db = connect("http://127.0.0.1:9", { fetch });
    const cases: [number, string, (e: unknown) => boolean][] = [
      [400, "invalid_argument", (e) => e instanceof TypeError],
      [400, "invalid_path", (e) => e instanceof TypeError],
      [400, "out_of_range", (e) => e instanceof RangeError],
      [400, "invalid_syntax", (e) => e instanceof SyntaxError],
      [400, "invalid_json", (e) => e instanceof SyntaxError],
      [413, "payload_too_large", (e) => e instanceof RemoteError && e.status === 413],
      [404, "unknown_route", (e) => e instanceof RemoteError && e.code === "unknown_route"],
      [503, "unavailable", (e) => e instanceof RemoteError && e.status === 503],
    ];
    for (const [status, code, check] of cases) {
      answers["/v1/nodes/x"] = error(status, code, `message of ${code}`);
      await assert.rejects(db.get("x"), (e: unknown) => {
        assert.ok(check(e), `${code}: ${e}`);
        assert.equal((e as Error).message, `message of ${code}`);
        return true;
      });
    }
    answers["/v1/nodes/x"] = error(404, "not_found", "Node x not found");
    assert.equal(await db.get("x"), undefined);
    answers["/v1/nodes/x"] = new Response("<html>bad gateway</html>", { status: 502 });
    await assert.rejects(db.get("x"), (e: unknown) => e instanceof RemoteError && e.status === 502);
    answers["/v1/status"] = new Response("not json", { status: 200 });
    await assert.rejects(
      db.status(),
      (e: unknown) => e instanceof RemoteError && e.code === "invalid_answer",
    );
    await db.close();
  });

  it("reports a failed fetch as a ConnectionError naming the URL", async () => {
    const { fetch } = scripted(() => {
      throw new TypeError("Failed to fetch");
    });
    const db = connect("http://127.0.0.1:9", { fetch });
    await assert.rejects(db.status(), (e: unknown) => {
      assert.ok(e instanceof ConnectionError);
      assert.equal(e.url, "http://127.0.0.1:9");
      assert.match(e.message, /http:\/\/127\.0\.0\.1:9.*Failed to fetch/);
      return true;
    });
    await db.close();
  });

  it("parses Server-Sent Events split anywhere, with CRLF, comments and multi-line data", async () => {
    const events = [
      ": watching\n\n",
      'data: {"soul":"a","changes":{"x":1},"source":"local"}\n\n',
      ": heartbeat\r\n\r\n",
      'data:{"soul":"b","changes":{"raw":{"$bytes":"AQI="}},"source":"remote"}\r\n\r\n',
      'event: message\ndata: {"soul":"c",\ndata: "changes":{"gone":null},"source":"local"}\n\n',
    ].join("");
    // Every split point of the whole text into three chunks would be slow; cut at each position once.
    for (let cut = 0; cut < events.length; cut += 7) {
      const parts = [events.slice(0, cut), events.slice(cut, cut + 3), events.slice(cut + 3)].filter((p) =>
        p
      );
      const { fetch, seen } = scripted(() => stream(parts));
      const db = connect("http://127.0.0.1:9", { fetch });
      const got: Change[] = [];
      // The scripted stream ends after the events: no reconnection here (see the reconnection tests).
      const stop = db.watch({ prefix: "a b" }, (c) => got.push(c), { reconnect: false });
      await stop.ready;
      await waitFor(() => got.length === 3);
      assert.deepEqual(got, [
        { soul: "a", changes: { x: 1 }, source: "local" },
        { soul: "b", changes: { raw: new Uint8Array([1, 2]) }, source: "remote" },
        { soul: "c", changes: { gone: null }, source: "local" },
      ]);
      assert.equal(seen[0].url, "http://127.0.0.1:9/v1/watch?prefix=a%20b");
      stop();
      await db.close();
    }
  });

  it("watch: refused subscriptions reject ready; a callback that throws does not end the stream", async () => {
    const { fetch } = scripted((req) =>
      req.url.includes("soul=bad")
        ? error(400, "out_of_range", "A soul may be at most 512 bytes of UTF-8, got 600")
        : stream([
          ": watching\n\n",
          'data: {"soul":"s","changes":{"n":1},"source":"local"}\n\n',
          'data: {"soul":"s","changes":{"n":2},"source":"local"}\n\n',
        ])
    );
    const db = connect("http://127.0.0.1:9", { fetch });
    const errors: Error[] = [];
    const refused = db.watch("bad", () => {}, { onError: (e) => errors.push(e) });
    await assert.rejects(refused.ready, RangeError);
    await waitFor(() => errors.length === 1);
    assert.ok(errors[0] instanceof RangeError);
    const got: number[] = [];
    const originalError = console.error;
    console.error = () => {};
    try {
      const ended: Error[] = [];
      const stop = db.watch("s", (c) => {
        got.push(c.changes.n as number);
        throw new Error("callback bug");
      }, { onError: (e) => ended.push(e), reconnect: false });
      await stop.ready;
      await waitFor(() => got.length === 2 && ended.length === 1);
      assert.deepEqual(got, [1, 2]);
      // The scripted stream ends after two events: without reconnection the client reports it, once.
      assert.ok(ended[0] instanceof ConnectionError);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(ended.length, 1);
    } finally {
      console.error = originalError;
    }
    await db.close();
  });

  it("close() ends watches and refuses further calls", async () => {
    const { fetch } = scripted((req) =>
      new Promise<Response>((resolve) => {
        void req;
        setTimeout(() => resolve(stream(Array.from({ length: 1000 }, () => ": heartbeat\n\n"))), 1);
      })
    );
    const db = connect("http://127.0.0.1:9", { fetch });
    const errors: Error[] = [];
    const stop = db.watch({ prefix: "" }, () => {}, { onError: (e) => errors.push(e) });
    await stop.ready;
    await db.close();
    await assert.rejects(db.get("a"), /closed/);
    assert.throws(() => db.watch("a", () => {}), /closed/);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(errors, []); // an intended stop is not an error
  });

  /** A fetch that answers watch requests in turn from `answers`, recording each Last-Event-ID. */
  function watchServer(answers: (() => Response)[]) {
    const lastIds: (string | null)[] = [];
    const fake = (async (_input: RequestInfo | URL, init?: RequestInit) => {
      if (init?.signal?.aborted) throw init.signal.reason;
      lastIds.push(new Headers(init?.headers).get("last-event-id"));
      const next = answers[Math.min(lastIds.length - 1, answers.length - 1)];
      return next();
    }) as typeof fetch;
    return { fetch: fake, lastIds };
  }
  const heartbeats = () => stream(Array.from({ length: 2000 }, () => ": heartbeat\n\n"));
  const FAST = { initialMs: 10, maxMs: 40 };

  it("watch reconnects after the stream drops and resumes from the last checkpoint", async () => {
    const { fetch, lastIds } = watchServer([
      () =>
        stream([
          ": watching\n\n",
          "id: 00000000000000aa:5\n\n",
          'data: {"soul":"s","changes":{"n":1},"source":"local"}\n\n',
          "id: 00000000000000aa:7\n\n",
        ]),
      () => {
        throw new TypeError("fetch failed: connection refused"); // the node is down for a moment
      },
      () => stream([": watching\n\n", 'data: {"soul":"s","changes":{"n":2},"source":"remote"}\n\n']),
      heartbeats,
    ]);
    const db = connect("http://127.0.0.1:9", { fetch });
    const got: number[] = [];
    const errors: Error[] = [];
    const stop = db.watch("s", (c) => got.push(c.changes.n as number), {
      onError: (e) => errors.push(e),
      reconnect: FAST,
    });
    await stop.ready;
    await waitFor(() => got.length === 2 && lastIds.length === 4);
    assert.deepEqual(got, [1, 2]);
    // Every reconnection carries the last checkpoint seen; the first request has none.
    assert.deepEqual(lastIds, [null, "00000000000000aa:7", "00000000000000aa:7", "00000000000000aa:7"]);
    // Each drop and each failed attempt is reported; none of them ends the watch.
    assert.equal(errors.length, 3);
    assert.ok(errors.every((e) => e instanceof ConnectionError), errors.map((e) => e.message).join("; "));
    stop();
    await db.close();
  });

  it("watch stops reconnecting when the node refuses it, and on unsubscribe during the backoff", async () => {
    const drop = () => stream([": watching\n\n", "id: 00000000000000aa:1\n\n"]);
    const refused = watchServer([drop, () => error(400, "out_of_range", "Last-Event-ID out of range")]);
    const db = connect("http://127.0.0.1:9", { fetch: refused.fetch });
    const errors: Error[] = [];
    const stop = db.watch("s", () => {}, { onError: (e) => errors.push(e), reconnect: FAST });
    await stop.ready;
    await waitFor(() => errors.length === 2);
    assert.ok(errors[0] instanceof ConnectionError);
    assert.ok(errors[1] instanceof RangeError, "a refusal is final");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(refused.lastIds.length, 2, "no attempt after a refusal");
    await db.close();

    // Unsubscribed while waiting to reconnect: no further request, no error.
    const waiting = watchServer([drop]);
    const db2 = connect("http://127.0.0.1:9", { fetch: waiting.fetch });
    const errors2: Error[] = [];
    const stop2 = db2.watch("s", () => {}, {
      onError: (e) => errors2.push(e),
      reconnect: { initialMs: 200, maxMs: 200 },
    });
    await stop2.ready;
    await waitFor(() => errors2.length === 1); // the drop
    stop2();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(waiting.lastIds.length, 1);
    assert.equal(errors2.length, 1);
    await db2.close();
  });

  it("watch checks its reconnect option", () => {
    const db = connect("http://127.0.0.1:9", {
      fetch: (() => Promise.reject(new Error("unused"))) as typeof fetch,
    });
    assert.throws(() => db.watch("s", () => {}, { reconnect: { initialMs: 0 } }), RangeError);
    assert.throws(() => db.watch("s", () => {}, { reconnect: { initialMs: 100, maxMs: 50 } }), RangeError);
    assert.throws(() => db.watch("s", () => {}, { reconnect: true as never }), TypeError);
  });
});
