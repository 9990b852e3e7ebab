// @server-only: child processes killed with SIGKILL
/**
 * Crash safety of the durable engine, end to end: a child process (same
 * runtime) writes through `open({ path })` and prints each write once `put`
 * resolved; it is killed with SIGKILL at a seeded random moment — sometimes
 * while still starting or opening — and the database is reopened. Every
 * acknowledged write must be there with its value (hot nodes: that write or
 * a later one), and `PRAGMA integrity_check` must say ok. All rounds use the
 * same directory, so each one also recovers the previous one's WAL and
 * takes over its stale LOCK.
 *
 * Replay a failure with `LATTICE_SEED=<seed>` (printed at start).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Database, open } from "../mod.ts";
import type { SqliteStore } from "../storage/sqlite.ts";
import { childCommand, HOT, valueOf } from "./_crash_child.ts";
import { prng, SEED } from "./_seed.ts";
import { storeOf } from "../core/database.ts";

const ROUNDS = 20;
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-crash-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

console.log(`crash test: seed ${SEED} (replay with LATTICE_SEED=${SEED}), directory ${dir}`);
const rand = prng(SEED);

/** Acknowledged writes: key → n (for hot nodes the highest n acknowledged). */
const acked = new Map<string, number>();

/**
 * Runs the writer for `round` and kills it: `delay` ms after it printed
 * `ready`, or (`early`) `delay` ms after it was spawned. Resolves with the
 * complete lines it printed.
 */
function writeAndKill(round: number, early: boolean, delay: number): Promise<string[]> {
  const [cmd, argv] = childCommand(["write", dir, String(round), String((SEED + round) | 0)]);
  const child = spawn(cmd, argv, { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "", timer: ReturnType<typeof setTimeout> | undefined;
  const kill = () => child.kill("SIGKILL");
  // A child that never gets going must not hang the test.
  const guard = setTimeout(kill, 20_000);
  if (early) timer = setTimeout(kill, delay);
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => err += d);
  child.stdout!.on("data", (d: string) => {
    if (!early && timer === undefined && (out + d).startsWith("ready\n")) timer = setTimeout(kill, delay);
    out += d;
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      if (signal !== "SIGKILL") {
        reject(new Error(`The writer ended by itself (code ${code}, signal ${signal}): ${err.trim()}`));
        return;
      }
      const lines = out.split("\n");
      lines.pop(); // an unfinished last line was never fully acknowledged
      resolve(lines);
    });
  });
}

async function expectPresent(db: Database, key: string, n: number, context: string): Promise<void> {
  const got = await db.get(key);
  assert.ok(got !== undefined, `${key} (write ${n}) was acknowledged but is missing; ${context}`);
  if (key.startsWith("hot/")) {
    assert.ok(
      typeof got.n === "number" && got.n >= n,
      `${key} went back from write ${n} to ${got.n}; ${context}`,
    );
    assert.deepEqual(got, valueOf(key, got.n as number), `${key}; ${context}`);
  } else {
    assert.deepEqual(got, valueOf(key, n), `${key}; ${context}`);
  }
}

describe("crash safety: SIGKILL at random moments loses no acknowledged write", () => {
  for (let round = 0; round < ROUNDS; round++) {
    it(`round ${round}`, async () => {
      const early = rand() < 0.15;
      const delay = Math.floor(early ? rand() * 600 : rand() * 250);
      const context = `seed ${SEED}, round ${round}, killed ${delay} ms after ${early ? "spawn" : "ready"}`;
      const lines = await writeAndKill(round, early, delay);
      const fresh: [string, number][] = [];
      for (const line of lines) {
        if (line === "ready") continue;
        const m = /^ack (\S+) (\d+)$/.exec(line);
        assert.ok(m, `unexpected output ${JSON.stringify(line)}; ${context}`);
        const key = m[1], n = Number(m[2]);
        if ((acked.get(key) ?? -1) < n) acked.set(key, n);
        fresh.push([key, n]);
      }
      const db = await open({ path: dir });
      try {
        // This round's writes and the hot nodes every round; all earlier writes in the last round.
        const check = round === ROUNDS - 1
          ? [...acked]
          : [...fresh, ...[...acked].filter(([k]) => k.startsWith("hot/"))];
        for (const [key, n] of check) await expectPresent(db, key, acked.get(key) ?? n, context);
        assert.deepEqual(await (storeOf(db) as SqliteStore).integrityCheck(), ["ok"], context);
        // The count of live nodes the store keeps agrees with the nodes there are.
        let listed = 0;
        for await (const _ of db.list()) listed++;
        assert.equal(await db.countNodes(), listed, `the kept count of nodes; ${context}`);
      } finally {
        await db.close();
      }
    });
  }

  it("wrote something in most rounds", () => {
    const rounds = new Set(
      [...acked.keys()].filter((k) => !k.startsWith("hot/")).map((k) => k.split("/")[0]),
    );
    console.log(`crash test: ${acked.size} nodes acknowledged over ${rounds.size} rounds, all present`);
    assert.ok(
      rounds.size >= ROUNDS / 2,
      `only ${rounds.size} of ${ROUNDS} rounds acknowledged a write (seed ${SEED})`,
    );
    assert.ok(HOT > 0);
  });
});
