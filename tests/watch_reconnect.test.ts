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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

interface Node {
  readonly url: string;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `cli.ts serve` on `dir`, its HTTP API on `port`, in the runtime running this test. */
async function serve(dir: string, port: number): Promise<Node> {
  const { spawn } = await import("node:child_process");
  const process = (await import("node:process")).default;
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const args = ["serve", "--path", dir, "--http", `127.0.0.1:${port}`, "--json"];
  const cmd = "Deno" in globalThis ? ["run", "-A", "cli.ts", ...args] : ["cli.ts", ...args];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_")) env[k] = v;
  }
  const child = spawn(process.execPath, cmd, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => stdout += s);
  child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await eventually("the ready line", () => {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stderr}`);
    return stdout.includes("\n");
  }, 60_000);
  const ready = JSON.parse(stdout.slice(0, stdout.indexOf("\n")));
  return { url: ready.http, pid: child.pid!, exited, stderr: () => stderr };
}

describe("connect(url).watch across a node restart", { timeout: 180_000 }, () => {
  it("reconnects after the node is killed and restarted, and misses nothing written meanwhile", async () => {
    const fs = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const process = (await import("node:process")).default;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-watch-"));
    const port = await freePort();
    let node: Node | undefined = await serve(dir, port);
    const remote = connect(node.url, { timeoutMs: 5_000 });
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
      process.kill(node.pid, "SIGKILL");
      await node.exited;
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
        process.kill(node.pid, "SIGTERM");
        assert.equal(await node.exited, 0, node.stderr());
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
