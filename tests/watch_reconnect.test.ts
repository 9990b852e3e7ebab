// @server-only: runs `cli.ts serve` child processes and kills them
/**
 * `connect(url).watch` against a real node that is killed (SIGKILL) and
 * restarted on the same port and data directory: the watch reconnects with
 * backoff and, through its last checkpoint (`Last-Event-ID`), gets what was
 * written while it was away, then live changes again; unsubscribing stops it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type Change, connect, open } from "../mod.ts";
import { eventually } from "./_eventually.ts";
import { type ServeProcess, startServe } from "./_serve.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `cli.ts serve` on `dir`, its HTTP API on `port`, in the runtime running this test. */
function serve(dir: string, port: number): Promise<ServeProcess> {
  return startServe(["serve", "--path", dir, "--http", `127.0.0.1:${port}`, "--json"]);
}

describe("connect(url).watch across a node restart", { timeout: 180_000 }, () => {
  it("reconnects after the node is killed and restarted, and misses nothing written meanwhile", async () => {
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-watch-"));
    const port = await freePort();
    let node: ServeProcess | undefined = await serve(dir, port);
    // The token stays the same across restarts: it is in dir/http-token.
    const remote = connect(node.ready.http, { timeoutMs: 5_000, token: node.ready.token! });
    const seen: Change[] = [];
    const errors: Error[] = [];
    const stop = remote.watch({ prefix: "w/" }, (c) => seen.push(c), {
      onError: (e) => errors.push(e),
      reconnect: { initialMs: 50, maxMs: 400 },
    });
    const latest = (soul: string) => seen.filter((c) => c.soul === soul).at(-1)?.changes;
    try {
      await stop.ready;
      await remote.put("w/1", { n: 1 });
      await remote.put("elsewhere", { n: 1 });
      await eventually("the live change", () => latest("w/1")?.n === 1);

      // The node dies without a word.
      await node.kill();
      node = undefined;
      await eventually("the drop reported", () => errors.length > 0);
      assert.ok(errors.every((e) => e.name === "ConnectionError"), errors.map((e) => e.message).join("; "));

      // Meanwhile the data changes behind its back (the stale lock is taken over).
      const db = await open({ path: dir });
      await db.put("w/1", { n: 10 });
      await db.put("w/2", { n: 2, text: "written while the node was down" });
      await db.delete("w/1", "n");
      await db.put("other/x", { n: 1 });
      await db.close();
      const failures = errors.length;
      await sleep(300);
      assert.ok(errors.length > failures, "reconnection attempts go on (and fail) while the node is down");

      // Back on the same port: the watch resumes on its own and replays what it missed.
      node = await serve(dir, port);
      await eventually("w/2 replayed", () => latest("w/2")?.n === 2);
      assert.deepEqual(latest("w/2"), { n: 2, text: "written while the node was down" });
      assert.equal(latest("w/1")?.n, null, "the last word on w/1.n is its deletion");
      assert.ok(seen.every((c) => c.soul.startsWith("w/")), "only the watched prefix");
      // And live again.
      await remote.put("w/3", { n: 3 });
      await eventually("the live change after the restart", () => latest("w/3")?.n === 3);
      const errorsBefore = errors.length;
      stop();
      await remote.put("w/4", { n: 4 });
      await sleep(200);
      assert.equal(latest("w/4"), undefined, "nothing after unsubscribe");
      assert.equal(errors.length, errorsBefore, "an unsubscribe is not an error");
    } finally {
      stop();
      await remote.close();
      if (node) {
        assert.equal(await node.stop(), 0, node.stderr());
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
