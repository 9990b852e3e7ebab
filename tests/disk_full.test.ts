// @server-only: fills a real file system (a small tmpfs this file mounts; needs root, as CI runs the tests)
/**
 * A full disk is a clear error, and nothing more: a write rejects with a
 * `DiskFullError` naming the directory (507 `insufficient_storage` over
 * HTTP, exit 1 with that sentence from the CLI), reads, `status` and the
 * count go on, a fold does not eat the space freed for new writes, a
 * restart on the full disk opens and serves reads, writes resume once space
 * returns (no restart), and every acknowledged write survives.
 *
 * The disk is a 64 MiB tmpfs mounted in `before` and unmounted in `after`;
 * mounting needs root, as scripts/test.mjs's WebRTC interface does (CI runs
 * as root). Without it the tests fail with the command to run them.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { connect, Database, DiskFullError, open } from "../mod.ts";
import { startHttpApi, type StatusExtras } from "../net/http.ts";
import { main } from "../cli.ts";
import { loadKernels } from "../runtime/kernels.ts";
import { SqliteStore } from "../storage/sqlite.ts";
import { childCommand as crashChild } from "./_crash_child.ts";
import { childCommand as reopenChild } from "./_disk_full_child.ts";
import { eventually } from "./_eventually.ts";
import { storeOf } from "../core/database.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const MNT = join(tmpdir(), `lattice-disk-full-${process.pid}`);
const SIZE = "64m";
const INFO = (): StatusExtras => ({ peerId: null, addrs: [], space: "default", peers: [] });

/** Bytes free on the test disk. */
function free(): number {
  const s = statfsSync(MNT);
  return Number(s.bavail) * Number(s.bsize);
}

/** Fills the test disk with files that can be deleted one by one to free space again. */
class Filler {
  #files: string[] = [];
  #n = 0;

  /** Writes 256 KiB files, then 4 KiB at a time, until the disk is full. */
  fill(): void {
    for (const size of [256 << 10, 4096]) {
      const chunk = new Uint8Array(size);
      for (;;) {
        const path = join(MNT, `fill-${this.#n++}`);
        const fd = openSync(path, "w");
        this.#files.push(path);
        let full = false;
        try {
          for (let i = 0; i < (size === 4096 ? 1 << 20 : 1); i++) writeSync(fd, chunk);
        } catch (e) {
          if ((e as { code?: string }).code !== "ENOSPC") throw e;
          full = true;
        } finally {
          closeSync(fd);
        }
        if (full) break;
      }
    }
    assert.equal(free(), 0, "the test disk is full");
  }

  /** Deletes filler files until at least `bytes` are free. */
  free(bytes: number): void {
    while (free() < bytes && this.#files.length > 0) unlinkSync(this.#files.shift()!);
  }

  freeAll(): void {
    for (const f of this.#files) rmSync(f, { force: true });
    this.#files = [];
  }
}

/** A value of about `size` bytes for write `i`. */
const valueOf = (i: number, size = 1000) => ({ i, text: `${i}:`.padEnd(size, "x") });

/** Puts until one rejects (the journal file's last page may still take a few); returns the error. */
async function putUntilFull(db: Database, acked: Map<string, number>): Promise<Error> {
  for (let i = 0; i < 10_000; i++) {
    const soul = `full/${i}`;
    try {
      await db.put(soul, valueOf(i));
      acked.set(soul, i);
    } catch (e) {
      return e as Error;
    }
  }
  throw new Error("10,000 puts on a full disk all succeeded");
}

/** Checks every acknowledged write, and that the count and the list agree with them. */
async function expectAcked(db: Database, acked: Map<string, number>, context: string): Promise<void> {
  for (const [soul, i] of acked) {
    assert.equal((await db.get(soul))?.i, i, `${soul} (write ${i}) was acknowledged; ${context}`);
  }
  assert.equal(await db.countNodes(), acked.size, `count; ${context}`);
  let listed = 0;
  for await (const _ of db.list()) listed++;
  assert.equal(listed, acked.size, `list; ${context}`);
}

async function openWith(dir: string, driver: "native" | "wasm"): Promise<Database> {
  const store = await SqliteStore.open(dir, { driver });
  return await Database.create({ store, kernels: await loadKernels() });
}

describe("a full disk", () => {
  const filler = new Filler();
  let mounted = false;

  before(() => {
    mkdirSync(MNT, { recursive: true });
    const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${SIZE},mode=0700`, "tmpfs", MNT], {
      encoding: "utf8",
    });
    if (r.status !== 0) {
      const why = (r.error?.message ?? r.stderr ?? "").trim() || `exit code ${r.status}`;
      throw new Error(
        `Cannot mount a ${SIZE} tmpfs on ${MNT} (${why}): these tests fill a real disk and need root ` +
          "to mount it; run them as root (as CI does), e.g. `sudo node scripts/test.mjs`",
      );
    }
    mounted = true;
  });

  after(() => {
    filler.freeAll();
    if (mounted) spawnSync("umount", ["-l", MNT]);
    rmSync(MNT, { recursive: true, force: true });
  });

  /** A fresh directory on the test disk, with every file of earlier tests gone. */
  function freshDir(name: string): string {
    filler.freeAll();
    for (const f of readdirSync(MNT)) rmSync(join(MNT, f), { recursive: true, force: true });
    return join(MNT, name);
  }

  for (const driver of ["native", "wasm"] as const) {
    it(`(${driver} SQLite) a put rejects with DiskFullError naming the directory; reads go on, writes resume once space is freed, nothing acknowledged is lost`, async () => {
      const dir = freshDir(`db-${driver}`);
      let db = await openWith(dir, driver);
      const acked = new Map<string, number>();
      try {
        for (let i = 0; i < 300; i++) {
          await db.put(`n/${i}`, valueOf(i));
          acked.set(`n/${i}`, i);
        }
        filler.fill();
        const err = await putUntilFull(db, acked);
        assert.equal(err.name, "DiskFullError", `${err.name}: ${err.message}`);
        assert.ok(err instanceof DiskFullError);
        assert.ok(err.message.includes(dir), `the message names ${dir}: ${err.message}`);
        assert.equal((err as DiskFullError).dir, dir);
        await expectAcked(db, acked, "the disk being full");
        // Space comes back: writes resume in this process.
        filler.free(1 << 20);
        for (let i = 0; i < 20; i++) {
          await db.put(`resumed/${i}`, valueOf(i));
          acked.set(`resumed/${i}`, i);
        }
        await expectAcked(db, acked, "after 1 MiB was freed");
      } finally {
        await db.close();
      }
      filler.freeAll();
      db = await openWith(dir, driver);
      try {
        await expectAcked(db, acked, "after a reopen");
      } finally {
        await db.close();
      }
    });
  }

  it("a fold does not take the space freed for new writes, and runs once the disk has room", async () => {
    const dir = freshDir("fold");
    const db = await openWith(dir, "native");
    const store = storeOf(db) as SqliteStore;
    const acked = new Map<string, number>();
    try {
      // Nodes in SQLite, then about 3 MB journaled and not folded yet (fewer records than a fold
      // starts at), some of them over nodes in SQLite.
      for (let i = 0; i < 500; i++) {
        await db.put(`n/${i}`, valueOf(-1 - i));
        acked.set(`n/${i}`, -1 - i);
      }
      await store.flush();
      for (let i = 250; i < 2250; i++) {
        await db.put(`n/${i}`, valueOf(i, 1500));
        acked.set(`n/${i}`, i);
      }
      assert.ok(store.pending > 0);
      filler.fill();
      await putUntilFull(db, acked);
      filler.free(2 << 20); // less than folding 3 MB takes
      // Deletes while the journal cannot be folded: of a node only in SQLite, of one in both, of one only
      // journaled, and of one field of a node that stays live. The count and the list must follow.
      const deleted = ["n/0", "n/300", "n/1000"];
      for (const soul of deleted) {
        await db.delete(soul);
        acked.delete(soul);
      }
      await db.delete("n/10", "text");
      const room = free();
      await expectAcked(db, acked, "2 MiB freed, too little to fold"); // list folds when it can
      // The store lists live souls only, also while it merges journaled nodes it cannot fold.
      const listed = await store.list({ limit: Infinity });
      for (const soul of deleted) assert.ok(!listed.includes(soul), `${soul} was deleted: not listed`);
      assert.deepEqual(listed, [...acked.keys()].sort(), "the store lists exactly the live souls");
      // What sync exports (store.changes, page by page) has every node too, each once, in order.
      const exported = new Set<string>();
      for (let cursor: number | undefined, prev = "";;) {
        const page = await store.changes(0, { limit: 300, cursor });
        for (const r of page.records) {
          if (r.soul !== prev) assert.ok(!exported.has(r.soul), `${r.soul} comes once, whole`);
          exported.add(prev = r.soul);
        }
        if (page.cursor === undefined) break;
        cursor = page.cursor;
      }
      // Deleted nodes are exported too: their tombstones replicate.
      assert.deepEqual([...exported].sort(), [...acked.keys(), ...deleted].sort());
      assert.ok(
        free() >= room - (64 << 10),
        `a failed fold gave the space back: ${room} → ${free()} bytes free`,
      );
      for (let i = 0; i < 50; i++) {
        await db.put(`after/${i}`, valueOf(i));
        acked.set(`after/${i}`, i);
      }
      assert.ok(store.pending > 0, "the journal waits for room");
      filler.freeAll();
      await eventually("the journal to be folded once the disk has room", async () => {
        await db.countNodes();
        for await (const _ of db.list({ limit: 1 })) break;
        return store.pending === 0;
      }, 15_000);
      await expectAcked(db, acked, "after the fold");
      // Writes that need the journal folded first work again too (deferred ops go straight to SQLite).
      await store.flush();
    } finally {
      await db.close();
    }
  });

  it("a background fold that meets a full disk leaves every acknowledged write readable, and resumes once there is room", async () => {
    const dir = freshDir("background");
    const db = await openWith(dir, "native");
    const store = storeOf(db) as SqliteStore;
    const acked = new Map<string, number>();
    try {
      // 18 MB: the journal is frozen at 16 MiB, to be folded in the background 8k records at a time.
      for (let i = 0; i < 9_000; i++) {
        await db.put(`n/${i}`, valueOf(i, 2000));
        acked.set(`n/${i}`, i);
      }
      filler.fill();
      filler.free(20 << 20); // room for a part of the fold, not for all of it
      await new Promise((resolve) => setTimeout(resolve, 300)); // the fold runs (as far as it can)
      await expectAcked(db, acked, "the background fold having met a full disk");
      for (let i = 0; i < 100; i++) {
        await db.put(`more/${i}`, valueOf(i));
        acked.set(`more/${i}`, i);
      }
      const exported = new Set<string>();
      let cursor: number | undefined;
      for (;;) {
        const page = await store.changes(0, { limit: 1000, cursor });
        for (const r of page.records) exported.add(r.soul);
        if (page.cursor === undefined) break;
        cursor = page.cursor;
      }
      assert.deepEqual([...exported].sort(), [...acked.keys()].sort());
      filler.freeAll();
      await eventually("the journal to be folded once the disk has room", async () => {
        for await (const _ of db.list({ limit: 1 })) break;
        return store.pending === 0;
      }, 15_000);
    } finally {
      await db.close();
    }
    const again = await openWith(dir, "native");
    try {
      await expectAcked(again, acked, "after a reopen");
    } finally {
      await again.close();
    }
  });

  it("over HTTP a full disk is 507 insufficient_storage naming the directory, /v1/status answers, connect() rejects with DiskFullError, the CLI says so and exits 1", async () => {
    const dir = freshDir("http"), cliDir = join(MNT, "cli");
    const cliDb = await open({ path: cliDir });
    await cliDb.put("a", { x: 1 });
    await cliDb.close();
    const db = await open({ path: dir });
    const api = await startHttpApi(db, { host: "127.0.0.1", port: 0, info: INFO });
    try {
      for (let i = 0; i < 100; i++) await db.put(`n/${i}`, valueOf(i));
      filler.fill();
      let res: Response | undefined, body: { error?: { code: string; message: string } } = {};
      for (let i = 0; i < 10_000; i++) {
        res = await fetch(`${api.url}/v1/nodes/full%2F${i}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${api.token}` },
          body: JSON.stringify(valueOf(i)),
        });
        body = await res.json();
        if (!res.ok) break;
      }
      assert.equal(res!.status, 507, JSON.stringify(body));
      assert.equal(body.error?.code, "insufficient_storage");
      assert.ok(body.error!.message.includes(dir), body.error!.message);
      const status = await fetch(`${api.url}/v1/status`);
      assert.equal(status.status, 200);
      const live = await db.countNodes();
      assert.equal((await status.json()).nodes, live);
      const remote = connect(api.url, { token: api.token ?? undefined });
      try {
        // Larger than the write that met the full disk, so it cannot fit in what is left of the journal
        // file's last block either (a small one may: how much is left depends on the frames before).
        await assert.rejects(remote.put("remote", valueOf(0, 8192)), (e: Error) => {
          assert.ok(e instanceof DiskFullError, `${e.name}: ${e.message}`);
          assert.ok(e.message.includes(dir), e.message);
          return true;
        });
        assert.equal((await remote.status()).nodes, live);
      } finally {
        await remote.close();
      }
      const stderr: string[] = [];
      const host = {
        env: (name: string) => name === "LATTICE_PATH" ? undefined : process.env[name],
        resolvePath: (p: string) => p.startsWith("/") ? p : join(REPO, p),
        pathKind: (p: string) => {
          try {
            return statSync(p).isDirectory() ? "directory" as const : "file" as const;
          } catch {
            return "missing" as const;
          }
        },
        stdout: () => Promise.resolve(),
        stderr: (t: string) => {
          stderr.push(t);
          return Promise.resolve();
        },
      };
      // A little room, for the CLI's lock file; its puts then fill the disk again.
      filler.free(64 << 10);
      let code = 0;
      for (let i = 0; i < 1000 && code === 0; i++) {
        code = await main(["put", `cli/${i}`, JSON.stringify(valueOf(i)), "--path", cliDir], host);
      }
      assert.equal(code, 1, stderr.join(""));
      assert.match(stderr.join(""), /^lattice: Cannot .* in .*cli: the disk is full/m);
      assert.equal(await main(["status", "--path", cliDir], host), 0, stderr.join(""));
    } finally {
      await api.close();
      await db.close();
    }
  });

  it("a restart on a full disk opens and serves reads, writes answer DiskFullError until space returns, and nothing acknowledged is lost", async () => {
    const dir = freshDir("restart");
    // A writer killed mid-stream leaves its journal behind; then the disk fills.
    const acked = new Map<string, number>();
    const lines = await new Promise<string[]>((resolve, reject) => {
      const [cmd, argv] = crashChild(["write", dir, "1", "7"]);
      const child = spawn(cmd, argv, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
      let out = "", err = "";
      const guard = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.split("\n").length > 800) child.kill("SIGKILL");
      });
      child.stderr!.setEncoding("utf8").on("data", (d: string) => err += d);
      child.on("error", reject);
      child.on("close", (_code, signal) => {
        clearTimeout(guard);
        if (signal !== "SIGKILL") reject(new Error(`the writer ended by itself: ${err}`));
        const lines = out.split("\n");
        lines.pop();
        resolve(lines);
      });
    });
    for (const line of lines) {
      const [word, key, n] = line.split(" ");
      if (word === "ack") acked.set(key, Math.max(acked.get(key) ?? -1, Number(n)));
    }
    assert.ok(acked.size > 100, `the writer acknowledged ${acked.size} nodes`);
    filler.fill();
    const keys = [...acked.keys()].filter((k) => !k.startsWith("hot/")).slice(0, 20);
    const [cmd, argv] = reopenChild(["reopen", dir, ...keys]);
    const child = spawn(cmd, argv, { cwd: REPO, stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => out += d);
    child.stderr!.setEncoding("utf8").on("data", (d: string) => err += d);
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      const first = JSON.parse(
        await eventually("the restarted node's first answer", () => out.includes("\n") && out.split("\n")[0]),
      );
      assert.equal(first.open, undefined, `the restart opens on a full disk: ${JSON.stringify(first.open)}`);
      assert.ok(first.count >= acked.size, `count ${first.count}, acknowledged ${acked.size}`);
      for (const k of keys) assert.equal(first.got[k], acked.get(k), `${k} read after the restart`);
      assert.equal(first.put.name, "DiskFullError", JSON.stringify(first.put));
      assert.ok(first.put.message.includes(dir), first.put.message);
      filler.free(1 << 20);
      child.stdin!.end("go\n");
      assert.equal(await exited, 0, err);
      assert.deepEqual(JSON.parse(out.split("\n")[1]), { put: "ok" });
    } finally {
      child.kill("SIGKILL");
    }
    filler.freeAll();
    const db = await open({ path: dir });
    try {
      for (const [key, n] of acked) {
        const got = await db.get(key);
        assert.ok(got !== undefined, `${key} (write ${n}) was acknowledged but is missing`);
        if (key.startsWith("hot/")) {
          assert.ok((got.n as number) >= n, `${key} went back from ${n} to ${got.n}`);
        } else assert.equal(got.n, n, key);
      }
      assert.deepEqual(await db.get("restart/2"), { after: "restart" });
    } finally {
      await db.close();
    }
  });
});
