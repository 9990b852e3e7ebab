// @server-only: runs three `lattice serve` processes on 127.0.0.1
/**
 * Multi-process replication over loopback: three `lattice serve` nodes
 * bootstrapped to each other. A write over HTTP on A is readable on C and
 * seen live by an SSE watcher on B; B is stopped, A and C take writes, B
 * restarts and converges through anti-entropy sync without further writes.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { connect } from "../mod.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const IS_DENO = "Deno" in globalThis;
const TIMEOUT = { timeout: 120_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

interface Ready {
  http: string;
  peerId: string;
  addrs: string[];
}

function startNode(path: string, bootstrap: string[]) {
  const args = [
    "serve",
    "--path",
    path,
    "--http",
    "127.0.0.1:0",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--json",
  ];
  for (const b of bootstrap) args.push("--bootstrap", b);
  const cmd = IS_DENO ? ["run", "-A", "cli.ts", ...args] : ["cli.ts", ...args];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_")) env[k] = v;
  }
  const child = spawn(process.execPath, cmd, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => stdout += s);
  child.stderr.setEncoding("utf8").on("data", (s: string) => stderr += s);
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const ready = (async (): Promise<Ready> => {
    const deadline = Date.now() + 60_000;
    while (!stdout.includes("\n")) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`no ready line; stderr: ${stderr}`);
      }
      await sleep(20);
    }
    return JSON.parse(stdout.slice(0, stdout.indexOf("\n")));
  })();
  /** Stops the node with SIGTERM (by pid: see http.test.ts) and returns its exit code. */
  const stop = async () => {
    if (child.exitCode === null) process.kill(child.pid!, "SIGTERM");
    return await exited;
  };
  return { ready, stop, stderr: () => stderr };
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe("three lattice serve processes", () => {
  it("replicate writes live, and a restarted node catches up by sync alone", TIMEOUT, async () => {
    const [dA, dB, dC] = ["a", "b", "c"].map((n) => {
      const d = mkdtempSync(join(tmpdir(), `lattice-cluster-${n}-`));
      dirs.push(d);
      return d;
    });
    const a = startNode(dA, []);
    const A = await a.ready;
    assert.match(A.peerId, /^12D3Koo/);
    assert.ok(A.addrs.length > 0 && A.addrs.every((x) => x.startsWith("/ip4/127.0.0.1/tcp/")));
    let b = startNode(dB, [A.addrs[0]]);
    const c = startNode(dC, [A.addrs[0]]);
    let [B, C] = await Promise.all([b.ready, c.ready]);
    const ca = connect(A.http), cc = connect(C.http);
    let cb = connect(B.http);
    try {
      // Everyone has found everyone (through A and the DHT).
      await eventually("a full mesh", async () => {
        const counts = await Promise.all([ca, cb, cc].map(async (x) => (await x.status()).peers));
        return counts.every((n) => n >= 2) ? true : undefined;
      });

      const seenOnB: unknown[] = [];
      const unwatch = cb.watch("greeting", (change) => seenOnB.push(change));
      await unwatch.ready;
      await ca.put("greeting", { text: "hello from A" });
      assert.deepEqual(await eventually("the write on C", () => cc.get("greeting")), {
        text: "hello from A",
      });
      await eventually("the SSE event on B", async () => (seenOnB.length > 0 ? true : undefined));
      assert.deepEqual(seenOnB[0], { soul: "greeting", changes: { text: "hello from A" }, source: "remote" });
      unwatch();

      assert.equal(await b.stop(), 0, `B did not stop cleanly: ${b.stderr()}`);
      cb.close();
      await ca.put("while-b-was-away", { from: "A" });
      await cc.put("also-while-b-was-away", { from: "C" });
      await eventually(
        "A and C to share both writes",
        async () =>
          (await ca.get("also-while-b-was-away")) && (await cc.get("while-b-was-away")) ? true : undefined,
      );

      b = startNode(dB, [A.addrs[0]]);
      B = await b.ready;
      cb = connect(B.http);
      assert.deepEqual(await eventually("A's write on B", () => cb.get("while-b-was-away")), { from: "A" });
      assert.deepEqual(await eventually("C's write on B", () => cb.get("also-while-b-was-away")), {
        from: "C",
      });
      assert.deepEqual(await cb.get("greeting"), { text: "hello from A" }, "kept on disk across the restart");
      const peers = await cb.peers();
      assert.ok(peers.some((p) => p.id === A.peerId), "B reconnected to A");
    } finally {
      for (const x of [ca, cb, cc]) x.close();
      const codes = await Promise.all([a.stop(), b.stop(), c.stop()]);
      assert.deepEqual(codes, [0, 0, 0], `${a.stderr()}${b.stderr()}${c.stderr()}`);
    }
  });
});
