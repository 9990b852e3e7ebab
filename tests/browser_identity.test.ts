/**
 * The identity of a browser database (runtime/browser_identity.ts): an OPFS
 * database keeps a non-extractable Ed25519 key in IndexedDB, the same at
 * every open of that name, another for another name; it signs (verifiable
 * with its public key) and cannot be exported; its peer id (a transport key
 * beside it) is the same at every open too. On a server runtime, where
 * identities are files, the IndexedDB store is refused in one sentence.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { exportIdentity, isKeyActor, open, verifySignature } from "../mod.ts";
import { isServerRuntime } from "../runtime/detect.ts";
import { deleteBrowserIdentity, loadOrCreateBrowserIdentity } from "../runtime/browser_identity.ts";
import { peerKeyOf } from "../net/peer_key.ts";

if (isServerRuntime()) {
  describe("browser identity on a server runtime", () => {
    it("is refused: servers keep identities in files", async () => {
      await assert.rejects(loadOrCreateBrowserIdentity("x"), {
        name: "RangeError",
        message: /needs IndexedDB/,
      });
    });
  });
} else {
  // Fresh names each run: the browser profile may keep OPFS and IndexedDB between runs.
  const run = Math.random().toString(36).slice(2, 10);
  const used: string[] = [];
  const fresh = (label: string): string => {
    const name = `id-${run}-${label}`;
    used.push(name);
    return name;
  };

  after(async () => {
    interface Dir {
      getDirectoryHandle(name: string, options: { create: boolean }): Promise<Dir>;
      removeEntry(name: string, options: { recursive: boolean }): Promise<void>;
    }
    const storage = (navigator as unknown as { storage: { getDirectory(): Promise<Dir> } }).storage;
    const dir = await (await storage.getDirectory()).getDirectoryHandle(".lattice", { create: true });
    for (const name of used) {
      await dir.removeEntry(name, { recursive: true }).catch(() => {});
      await deleteBrowserIdentity(name);
    }
  });

  describe("browser identity", () => {
    it("an OPFS database keeps its key across opens; another name has another", async () => {
      const path = fresh("a");
      const a = await open({ storage: "opfs", path });
      const id = a.identity!.id;
      assert.ok(isKeyActor(a.actor));
      assert.equal(a.actor, a.identity!.actor);
      await a.put("alice", { name: "Alice" });
      const { ops } = await a.exportOps();
      for (const op of ops) assert.equal(op.actor, a.actor);
      await a.close();
      const again = await open({ storage: "opfs", path });
      assert.equal(again.identity!.id, id);
      assert.equal(again.actor, a.actor);
      await again.close();
      const other = await open({ storage: "opfs", path: fresh("b") });
      assert.notEqual(other.identity!.id, id);
      await other.close();
    });

    it("signs verifiably with a key no script can export", async () => {
      const me = await loadOrCreateBrowserIdentity(fresh("sign"));
      const msg = new TextEncoder().encode("hello");
      assert.equal(await verifySignature(me.publicKey, await me.sign(msg), msg), true);
      assert.throws(() => exportIdentity(me), TypeError);
      const again = await loadOrCreateBrowserIdentity(used[used.length - 1]);
      assert.equal(again.id, me.id);
    });

    it("keeps its libp2p peer id across opens: a transport key beside the key no script can read", async () => {
      const path = fresh("peer");
      const one = await loadOrCreateBrowserIdentity(path);
      const hex = (b: Uint8Array | undefined) =>
        b === undefined ? "none" : Array.from(b, (x) => x.toString(16)).join();
      const key = hex(peerKeyOf(one));
      assert.notEqual(key, "none", "a peer key although the identity's secret cannot be read");
      assert.equal(hex(peerKeyOf(await loadOrCreateBrowserIdentity(path))), key, "the same at the next load");
      assert.notEqual(hex(peerKeyOf(await loadOrCreateBrowserIdentity(fresh("peer2")))), key);
      // End to end: the peer id a page's network shows is the same after a reopen.
      const network = { space: `peer-${run}`, bootstrap: [] };
      const a = await open({ storage: "opfs", path: fresh("net"), network });
      const peerId = a.network!.peerId;
      await a.close();
      const b = await open({ storage: "opfs", path: used[used.length - 1], network });
      assert.equal(b.network!.peerId, peerId);
      await b.close();
    });

    it("memory storage has none", async () => {
      const db = await open({ storage: "memory" });
      assert.equal(db.identity, undefined);
      await db.close();
    });
  });
}
