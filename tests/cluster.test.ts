// @server-only: runs three `lattice serve` processes on 127.0.0.1
/**
 * Multi-process replication over loopback: three `lattice serve` nodes
 * bootstrapped to each other. A write over HTTP on A is readable on C and
 * seen live by an SSE watcher on B; B is stopped, A and C take writes, B
 * restarts and converges through anti-entropy sync without further writes.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "../mod.ts";
import { eventually } from "./_eventually.ts";
import { type ServeProcess, startServe } from "./_serve.ts";

const TIMEOUT = { timeout: 120_000 };
/** How long each wait for replication may take. */
const WAIT_MS = 30_000;
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function startNode(path: string, bootstrap: string[]): Promise<ServeProcess> {
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
  return startServe(args);
}

describe("three lattice serve processes", () => {
  it("replicate writes live, and a restarted node catches up by sync alone", TIMEOUT, async () => {
    const [dA, dB, dC] = ["a", "b", "c"].map((n) => {
      const d = mkdtempSync(join(tmpdir(), `lattice-cluster-${n}-`));
      dirs.push(d);
      return d;
    });
    const a = await startNode(dA, []);
    const A = a.ready;
    assert.match(A.peerId!, /^12D3Koo/);
    assert.ok(A.addrs.length > 0 && A.addrs.every((x) => x.startsWith("/ip4/127.0.0.1/tcp/")));
    let [b, c] = await Promise.all([startNode(dB, [A.addrs[0]]), startNode(dC, [A.addrs[0]])]);
    let B = b.ready;
    const C = c.ready;
    const ca = connect(A.http, { token: A.token! }), cc = connect(C.http, { token: C.token! });
    let cb = connect(B.http, { token: B.token! });
    try {
      // Everyone has found everyone (through A and the DHT).
      await eventually("a full mesh", async () => {
        const counts = await Promise.all([ca, cb, cc].map(async (x) => (await x.status()).peers));
        return counts.every((n) => n >= 2);
      }, WAIT_MS);

      const seenOnB: unknown[] = [];
      const unwatch = cb.watch("greeting", (change) => seenOnB.push(change));
      await unwatch.ready;
      await ca.put("greeting", { text: "hello from A" });
      assert.deepEqual(await eventually("the write on C", () => cc.get("greeting"), WAIT_MS), {
        text: "hello from A",
      });
      await eventually("the SSE event on B", () => seenOnB.length > 0, WAIT_MS);
      assert.deepEqual(seenOnB[0], { soul: "greeting", changes: { text: "hello from A" }, source: "remote" });
      unwatch();

      assert.equal(await b.stop(), 0, `B did not stop cleanly: ${b.stderr()}`);
      cb.close();
      await ca.put("while-b-was-away", { from: "A" });
      await cc.put("also-while-b-was-away", { from: "C" });
      await eventually(
        "A and C to share both writes",
        async () => (await ca.get("also-while-b-was-away")) && (await cc.get("while-b-was-away")),
        WAIT_MS,
      );

      b = await startNode(dB, [A.addrs[0]]);
      B = b.ready;
      cb = connect(B.http, { token: B.token! });
      assert.deepEqual(await eventually("A's write on B", () => cb.get("while-b-was-away"), WAIT_MS), {
        from: "A",
      });
      assert.deepEqual(await eventually("C's write on B", () => cb.get("also-while-b-was-away"), WAIT_MS), {
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
