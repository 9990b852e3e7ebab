// @server-only: the saved index lives in a SQLite directory on disk; a child process is killed.
/**
 * The sync index saves itself while the network runs (`SyncIndex.saveEvery`,
 * started by `startNetwork`): after a SIGKILL, the next build loads the last
 * periodic save and reads only what was written since; a save that fails is
 * reported and tried again, never fatal.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "../mod.ts";
import { SyncIndex } from "../core/sync/sync_index.ts";
import { systemWorld, type Timer, type World } from "../core/world.ts";
import { ACTOR_A, ACTOR_B, userOp } from "./_sync_fixture.ts";
import { AFTER, BASE, baseOps, childCommand } from "./_index_save_child.ts";
import { counted, fullIndex, sameAs } from "./_index_fixture.ts";
import { storeOf } from "../core/database.ts";

/** Runs the child on `dir` until it prints `done …`, then SIGKILLs it; resolves with that line. */
function runAndKill(dir: string): Promise<string> {
  const [cmd, argv] = childCommand([dir]);
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stderr.on("data", (b) => (err += b));
    child.stdout.on("data", (b) => {
      out += b;
      if (/^done /m.test(out)) child.kill("SIGKILL");
    });
    child.on("exit", (_code, sig) => {
      clearTimeout(timer);
      const line = /^done .*$/m.exec(out)?.[0];
      if (line !== undefined && sig === "SIGKILL") resolve(line);
      else reject(new Error(`child ended without "done" (${sig}): ${out} ${err}`));
    });
  });
}

describe("periodic save of the sync index", () => {
  it("saves while the network runs; after a SIGKILL a build reads only what came since that save", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-idxsave-"));
    try {
      const db0 = await open({ path: dir });
      const ops = baseOps();
      for (let i = 0; i < ops.length; i += 5_000) await db0.applyOps(ops.slice(i, i + 5_000));
      await db0.close();
      const line = await runAndKill(dir);
      const { db, reads } = await counted(dir);
      const index = await SyncIndex.build(db);
      assert.equal(index.buildStats.loaded, true);
      assert.ok(
        reads() <= AFTER,
        `after the kill the build read ${reads()} records, more than the ${AFTER} written since the periodic save (${line})`,
      );
      assert.equal(line, "done true", "a periodic save happened while the network ran");
      assert.equal(index.size, BASE + AFTER);
      sameAs(index.snapshot(), (await fullIndex(db)).snapshot());
      index.close();
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a save after changes (slots out of id order, two id chunks) loads and follows commits as a full build", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-idxsave-"));
    try {
      let { db, reads } = await counted(dir);
      const N = 70_000, ops = baseOps();
      for (let i = 0; ops.length < N; i++) ops.push(userOp(BASE / 2 + i, 0, 1, ACTOR_A));
      for (let i = 0; i < N; i += 10_000) await db.applyOps(ops.slice(i, i + 10_000));
      let index = await SyncIndex.build(db);
      await index.save();
      // Replacements across both chunks and new keys: the live slots leave id order.
      await db.applyOps(Array.from({ length: 500 }, (_, i) => userOp(i * 67, 0, 2, ACTOR_B)));
      await db.applyOps(Array.from({ length: 300 }, (_, i) => userOp(N + i, 3, 1, ACTOR_B)));
      const saving = index.save();
      // Commits while the save runs: on top of what it saves, read again by the next build.
      const during = db.applyOps(Array.from({ length: 50 }, (_, i) => userOp(N + 1_000 + i, 1, 1, ACTOR_B)));
      await Promise.all([saving, during]);
      index.close();
      await db.close();
      ({ db, reads } = await counted(dir));
      index = await SyncIndex.build(db);
      assert.equal(index.buildStats.loaded, true);
      assert.ok(reads() <= 50, `the build read ${reads()} records`);
      assert.equal(index.size, N + 350);
      sameAs(index.snapshot(), (await fullIndex(db)).snapshot());
      await db.applyOps(Array.from({ length: 200 }, (_, i) => userOp(i * 101, 0, 3, ACTOR_B)));
      await db.applyOps([userOp(N + 5_000, 2, 1, ACTOR_B)]);
      sameAs(index.snapshot(), (await fullIndex(db)).snapshot());
      index.close();
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("checks on the timers of the World it was built with: unref'd, re-armed, cleared by close", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-idxsave-"));
    try {
      const db = await open({ path: dir });
      await db.applyOps(baseOps().slice(0, 500));
      // Yields (0 ms) run on the system's timers; the periodic checks are held here and fired by hand.
      const held = new Map<Timer, { fn: () => void; ms: number; unref?: boolean }>();
      const world: World = {
        ...systemWorld,
        setTimer(fn, ms, unref) {
          if (ms === 0) return systemWorld.setTimer(fn, ms, unref);
          const t = { held: held.size } as unknown as Timer;
          held.set(t, { fn, ms, unref });
          return t;
        },
        clearTimer(t) {
          if (t !== undefined && !held.delete(t)) systemWorld.clearTimer(t);
        },
      };
      const index = await SyncIndex.build(db, { world });
      await index.save();
      const saves = index.saves;
      index.saveEvery({ records: 10, intervalMs: 5_000 });
      assert.deepEqual([...held.values()].map(({ ms, unref }) => ({ ms, unref })), [{
        ms: 5_000,
        unref: true,
      }]);
      await db.applyOps(Array.from({ length: 20 }, (_, i) => userOp(i, 0, 2, ACTOR_B)));
      const [first, check] = [...held][0];
      held.delete(first);
      check.fn(); // the check is due: it re-arms itself and saves
      assert.equal(held.size, 1, "re-armed");
      for (const end = Date.now() + 10_000; index.saves === saves && Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(index.saves, saves + 1);
      index.close();
      assert.equal(held.size, 0, "close clears the timer");
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports a save that fails (a full disk) and tries again at a later check", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-idxsave-"));
    try {
      const db = await open({ path: dir });
      await db.applyOps(baseOps().slice(0, 2_000));
      const index = await SyncIndex.build(db);
      await index.save(); // the full build's own save, settled
      const saves = index.saves;
      const store = storeOf(db), writeAux = store.writeAux!.bind(store);
      let failures = 1;
      store.writeAux = (name, parts) => {
        if (failures-- > 0) {
          const e = new Error("No space left on the device of the database directory");
          e.name = "DiskFullError";
          return Promise.reject(e);
        }
        return writeAux(name, parts);
      };
      const errors: unknown[] = [];
      index.saveEvery({ records: 100, intervalMs: 10, onError: (e) => errors.push(e) });
      await db.applyOps(Array.from({ length: 150 }, (_, i) => userOp(i, 0, 2, ACTOR_B)));
      for (const end = Date.now() + 10_000; index.saves === saves && Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as Error).name, "DiskFullError");
      assert.equal(index.saves, saves + 1, "the save was tried again and succeeded");
      assert.equal(index.unsaved, 0);
      index.close();
      await db.close();
      const again = await counted(dir);
      const rebuilt = await SyncIndex.build(again.db);
      assert.equal(rebuilt.buildStats.loaded, true);
      assert.equal(again.reads(), 0);
      rebuilt.close();
      await again.db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("auxiliary data written in slices (SqliteStore.writeAux)", () => {
  it("reads back whole past several slices; one write per name at a time; commits go on meanwhile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lattice-idxsave-"));
    try {
      const db = await open({ path: dir });
      const parts = [new Uint8Array(5 << 20), new Uint8Array(3), new Uint8Array(6 << 20)];
      parts.forEach((p, k) => p.forEach((_, i) => (p[i] = (i * 7 + k) & 0xff)));
      const writing = storeOf(db).writeAux!("test-aux", parts);
      await assert.rejects(storeOf(db).writeAux!("test-aux", [new Uint8Array(1)]), /one write at a time/);
      await db.put("during", { a: 1 }); // a commit while the file is being written
      await writing;
      const back = await storeOf(db).readAux!("test-aux");
      assert.equal(back?.length, 3);
      back!.forEach((p, k) => assert.deepEqual(p, parts[k]));
      await db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
