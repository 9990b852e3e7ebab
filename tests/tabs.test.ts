/**
 * runtime/tabs.ts in one page: `SharedDatabase.start` instances of one path
 * find each other through the Web Lock and the BroadcastChannel as tabs do
 * (each over an in-memory Database here, so the hand-over starts from an
 * empty one: what is checked is the protocol, not the data; the OPFS data
 * across tabs is tests/opfs_tabs.test.ts). Checked: one owner, forwarding,
 * a graceful close handing over with calls in flight, and a client's watch
 * that gets the changes the new owner made before the watch reached it (the
 * replay from the owner's seq). Where Web Locks are missing (server
 * runtimes), each opener has its own database.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { open, openShared } from "../mod.ts";
import { SharedDatabase } from "../runtime/tabs.ts";

const hasLocks = typeof (globalThis as { navigator?: { locks?: unknown } }).navigator?.locks === "object" &&
  typeof BroadcastChannel === "function";
const memory = () => open({ storage: "memory" });
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("tabs sharing a database", () => {
  it("is this tab's own database without sharing (other storage, or no Web Locks)", async () => {
    const db = await openShared({ storage: "memory" });
    assert.equal(db.owner, true);
    await db.put("a", { n: 1 });
    assert.deepEqual(await db.get("a"), { n: 1 });
    assert.deepEqual(await db.status(), { owner: true, storage: "memory", nodes: 1, persisted: undefined });
    await db.close();
    await assert.rejects(db.get("a"), /closed/);
  });

  if (!hasLocks) return;

  it("forwards to the owner and hands over on close, replaying to watches what they missed", async () => {
    const path = `t-${Math.random().toString(36).slice(2)}`;
    const x = await SharedDatabase.start(path, memory);
    const y = await SharedDatabase.start(path, memory);
    const z = await SharedDatabase.start(path, memory);
    assert.deepEqual([x.owner, y.owner, z.owner], [true, false, false]);
    const seen: string[] = [];
    z.watch({ prefix: "k/" }, (c) => seen.push(c.soul));
    await y.put("k/1", { by: "y" });
    assert.deepEqual(await z.get("k/1"), { by: "y" });
    assert.deepEqual((await z.list({ prefix: "k/" }).next()).value, { soul: "k/1", data: { by: "y" } });
    assert.equal((await y.status()).owner, false);
    assert.deepEqual(seen, ["k/1"]);
    // X closes with Y's put in flight: Y (first in the lock's queue) takes over and runs it itself, before
    // Z's watch reaches it again.
    const closing = x.close();
    const put = y.put("k/2", { by: "y" });
    await closing;
    await put;
    assert.equal(y.owner, true);
    for (let i = 0; i < 50 && !seen.includes("k/2"); i++) await tick();
    assert.ok(seen.includes("k/2"), `z's watch got ${JSON.stringify(seen)}`);
    await z.put("k/3", { by: "z" });
    for (let i = 0; i < 50 && !seen.includes("k/3"); i++) await tick();
    assert.ok(seen.includes("k/3"));
    await z.close();
    await y.close();
  });

  it("ignores what another script of the origin posts on the channel that is no message, and answers bad calls with errors", async () => {
    const path = `t-${Math.random().toString(36).slice(2)}`;
    const x = await SharedDatabase.start(path, memory);
    const y = await SharedDatabase.start(path, memory);
    const errors: unknown[] = [];
    const onError = (e: Event) => errors.push((e as ErrorEvent).error ?? e);
    globalThis.addEventListener?.("error", onError);
    const stranger = new BroadcastChannel(`lattice:${path}`);
    const answers: unknown[] = [];
    stranger.onmessage = (e) => answers.push(e.data);
    try {
      for (const junk of [null, 42, "call", [], { k: "call", from: "s", id: 1, m: "put", a: null }]) {
        stranger.postMessage(junk);
      }
      stranger.postMessage({ k: "call", from: "s", id: 2, m: "put", a: ["", { n: 1 }] });
      for (let i = 0; i < 100 && answers.filter((a) => (a as { k?: string }).k === "ans").length < 2; i++) {
        await tick();
      }
      const refused = answers.filter((a) => (a as { k?: string }).k === "ans") as {
        id: number;
        e?: unknown;
      }[];
      assert.deepEqual(refused.map((a) => [a.id, a.e !== undefined]).sort(), [[1, true], [2, true]]);
      assert.deepEqual(errors, [], "nothing thrown in the owner's handler");
      await y.put("k", { still: "served" });
      assert.deepEqual(await x.get("k"), { still: "served" });
    } finally {
      globalThis.removeEventListener?.("error", onError);
      stranger.close();
      await y.close();
      await x.close();
    }
  });
});
