// @server-only: database directories on disk
/**
 * Large foreign batches into SQLite are committed in parts (records made,
 * read, merged and written a part at a time, in one transaction): the
 * result must be exactly what the same batch gives merged whole, on the
 * memory store, counts, events and deferred ops included, and a failure
 * must leave nothing behind.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { open } from "../mod.ts";
import { hlcFromWords } from "../core/clock.ts";
import type { Change } from "../core/database.ts";
import type { Op } from "../core/op.ts";
import { SqliteStore } from "../storage/sqlite.ts";
import type { OpenedDatabase } from "../mod.ts";
import type { FieldRecord } from "../core/store.ts";
import { prng, SEED } from "./_seed.ts";
import { storeOf } from "../core/database.ts";
import { createIdentity, loadKernels } from "../mod.ts";
import { opToRecord, recordToOp } from "../core/op.ts";
import { signRecords } from "../core/trust/signing.ts";

/** The key of the batches' signed ops. */
const SIGNER = await createIdentity();

const root = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-parts-test-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `d${++dirs}`);

/** Counts the commits in parts `db`'s store begins. */
function countParts(db: OpenedDatabase): { n: number } {
  const store = storeOf(db) as SqliteStore;
  const count = { n: 0 };
  const begin = store.beginParts.bind(store);
  store.beginParts = () => (count.n++, begin());
  return count;
}

const NOW = Date.now();
/** A state `ms` after (or before) now, with a counter. */
const stateAt = (ms: number, counter: number): string => {
  const t = (NOW + ms) * 0x10000 + counter;
  return hlcFromWords(Math.floor(t / 2 ** 32), t >>> 0);
};

/**
 * 40,000 ops over 5,000 nodes, each (soul, field) once: values of every kind,
 * some signed (for real: they are verified), a few hours in the future (deferred), the rest in the past;
 * three actors. Order shuffled within runs of nodes so parts cut nodes apart.
 */
async function bigBatch(seed: number): Promise<Op[]> {
  const rnd = prng(seed);
  const ops: Op[] = [];
  for (let n = 0; n < 5_000; n++) {
    for (let f = 0; f < 8; f++) {
      const k = ops.length;
      const kind = Math.floor(rnd() * 6);
      const value = kind === 0
        ? null
        : kind === 1
        ? rnd() < 0.5
        : kind === 2
        ? Math.floor(rnd() * 1e9) - 5e8
        : kind === 3
        ? `v${k}`
        : kind === 4
        ? new Uint8Array([k & 255, 1, 2])
        : { "#": `n${(n * 7) % 5_000}` };
      const future = rnd() < 0.01, soon = rnd() < 0.01; // deferred; within maxDrift (applied, observed)
      ops.push({
        soul: `n${String(n).padStart(5, "0")}`,
        field: `f${f}`,
        value,
        state: stateAt(
          future ? 3 * 3600_000 : soon ? 300_000 + k : -60_000 + Math.floor(rnd() * 50_000),
          Math.floor(rnd() * 100),
        ),
        actor: rnd() < 0.05 ? SIGNER.actor : rnd() < 0.5 ? "00000000000000aa" : "00000000000000bb",
      });
    }
  }
  // The signer's ops signed for real (chunks of them share a signature, as a writer's commits do).
  const mine = ops.flatMap((op, i) => op.actor === SIGNER.actor ? [i] : []);
  const signed = await signRecords(
    SIGNER,
    await loadKernels(),
    new TextEncoder().encode("default"),
    mine.map((i) => opToRecord(ops[i])),
  );
  mine.forEach((i, j) => ops[i] = recordToOp(signed[j]));
  return ops;
}

/**
 * Another write of `op`'s key and value at `state`, unsigned by a keyless writer (a signed op's sig would
 * not cover the new state).
 */
function rewritten(op: Op, state: string): Op {
  return { soul: op.soul, field: op.field, value: op.value, state, actor: "00000000000000aa" };
}

describe("large foreign batches committed in parts", () => {
  it("give the state, counts, events and commits of the same batch merged whole", async () => {
    const ops = await bigBatch(SEED);
    // Some nodes are there before: half of their fields older than the batch's, half newer.
    const before: Op[] = [];
    for (let n = 0; n < 5_000; n += 3) {
      for (let f = 0; f < 8; f += 2) {
        const i = n * 8 + f;
        before.push({
          soul: ops[i].soul,
          field: ops[i].field,
          actor: "00000000000000aa", // unsigned: a keyless writer's
          value: `old${i}`,
          state: stateAt(f % 4 === 0 ? -3600_000 : -5_000, 1),
        });
      }
    }
    const disk = await open({ path: freshDir() });
    const mem = await open({ storage: "memory" });
    try {
      assert.ok(ops.length >= 32_768, "large enough for parts");
      for (const db of [disk, mem]) await db.applyOps(before);
      const seen = { disk: [] as Change[], mem: [] as Change[] };
      const commits = { disk: 0, mem: 0 };
      disk.watch({ prefix: "n" }, (c) => seen.disk.push(c));
      mem.watch({ prefix: "n" }, (c) => seen.mem.push(c));
      disk.onCommit((records) => commits.disk += records.length);
      mem.onCommit((records) => commits.mem += records.length);
      const parts = countParts(disk);
      const [a, b] = [await disk.applyOps(ops), await mem.applyOps(ops)];
      assert.equal(parts.n, 1, "committed in parts");
      assert.deepEqual(a, b);
      assert.ok(a.deferred > 100 && a.ignored > 1_000 && a.applied > 30_000, JSON.stringify(a));
      assert.equal(a.applied + a.ignored + a.deferred, ops.length);
      assert.equal(await disk.stateHash(), await mem.stateHash());
      assert.equal(commits.disk, a.applied);
      assert.equal(commits.mem, a.applied);
      const bySoul = (cs: Change[]) => cs.map((c) => JSON.stringify([c.soul, c.changes])).sort();
      assert.deepEqual(bySoul(seen.disk), bySoul(seen.mem));
      assert.deepEqual(await disk.get("n00003"), await mem.get("n00003"));
      // The clock observed the latest state applied: a write now is stamped after it.
      const latest = ops.map((op) => op.state).filter((st) => st < stateAt(600_000, 0)).sort().at(-1)!;
      assert.ok((await disk.put("after", { x: 1 })).state > latest);
      // The deferred ops were stored aside, not dropped.
      assert.equal((await storeOf(disk).deferred()).length, a.deferred);
    } finally {
      await disk.close();
      await mem.close();
    }
  });

  it("a batch with a key twice is merged whole, with the same counts as on the memory store", async () => {
    const ops = (await bigBatch(SEED + 1)).slice(0, 36_000);
    ops.push(rewritten(ops[5], stateAt(-1, 5)), rewritten(ops[9], stateAt(-120_000, 0)));
    const disk = await open({ path: freshDir() });
    const mem = await open({ storage: "memory" });
    try {
      const parts = countParts(disk);
      assert.deepEqual(await disk.applyOps(ops), await mem.applyOps(ops));
      assert.equal(parts.n, 0, "merged whole");
      assert.equal(await disk.stateHash(), await mem.stateHash());
    } finally {
      await disk.close();
      await mem.close();
    }
  });

  it("tells a batch out of soul order from one with a key twice, wherever the key comes again", async () => {
    const again = (op: Op): Op => rewritten(op, stateAt(-1, 7));
    const ops = (await bigBatch(SEED + 5)).slice(0, 36_000);
    const swapped = [...ops.slice(18_000), ...ops.slice(0, 18_000)]; // out of soul order, no key twice
    const cases: [string, Op[], boolean][] = [
      ["out of order", swapped, true],
      // A key from before the order broke, and one from after it, again at the end.
      ["a key twice, first seen in order", [...swapped, again(ops[18_000])], false],
      ["a key twice, first seen out of order", [...swapped, again(ops[17_999])], false],
    ];
    for (const [name, batch, inParts] of cases) {
      const disk = await open({ path: freshDir() });
      const mem = await open({ storage: "memory" });
      try {
        const parts = countParts(disk);
        assert.deepEqual(await disk.applyOps(batch), await mem.applyOps(batch), name);
        assert.equal(parts.n > 0, inParts, name);
        assert.equal(await disk.stateHash(), await mem.stateHash(), name);
      } finally {
        await disk.close();
        await mem.close();
      }
    }
  });

  it("takes the batch as it was when applyOps was called, whatever the caller changes after", async () => {
    const ops = await bigBatch(SEED + 3);
    const copy = ops.map((op) => ({ ...op, ...(op.sig ? { sig: op.sig.slice() } : {}) }));
    const disk = await open({ path: freshDir() });
    const mem = await open({ storage: "memory" });
    try {
      const parts = countParts(disk);
      const applying = disk.applyOps(ops);
      for (const op of ops) {
        (op as { value: unknown }).value = "changed";
        (op as { soul: string }).soul = "elsewhere";
        op.sig?.fill(0);
      }
      ops.length = 0;
      assert.deepEqual(await applying, await mem.applyOps(copy));
      assert.equal(parts.n, 1);
      assert.equal(await disk.stateHash(), await mem.stateHash());
      assert.deepEqual(await disk.get("elsewhere"), undefined);
    } finally {
      await disk.close();
      await mem.close();
    }
  });

  it("an invalid op anywhere rejects the whole batch and stores nothing", async () => {
    const ops = await bigBatch(SEED + 2);
    const dir = freshDir();
    const db = await open({ path: dir });
    try {
      await db.put("keep", { a: 1 });
      const hash = await db.stateHash();
      const bad = [...ops];
      bad[39_000] = { ...bad[39_000], state: "not a state" };
      await assert.rejects(db.applyOps(bad), /Op 39000 is invalid/);
      assert.equal(await db.stateHash(), hash);
      assert.deepEqual((await db.applyOps(ops.slice(0, 40_000))).ignored, 0);
    } finally {
      await db.close();
    }
  });
});

describe("SqliteStore commits in parts", () => {
  const rec = (soul: string, field: string, v: number): FieldRecord => ({
    soul,
    field,
    value: new Uint8Array([v & 255]),
    stateHi: 1,
    stateLo: v,
    actorHi: 0,
    actorLo: 7,
  });

  it("are seen by reads through the store while open, by nobody after an abort, and durable after commit", async () => {
    const dir = freshDir();
    const store = await SqliteStore.open(dir);
    try {
      await store.commit({ records: [rec("j", "a", 1)] }); // journaled: folded first
      const parts = store.beginParts();
      parts.write([rec("p", "a", 2), rec("p", "b", 3)]);
      parts.write([rec("q", "a", 4)]);
      assert.deepEqual(
        (await store.readFields([{ soul: "p", field: "b" }, { soul: "q", field: "a" }])).map((r) => r?.seq),
        [3, 4],
      );
      assert.throws(() => store.commitSync({ records: [rec("x", "a", 5)] }), /commit in parts is open/);
      assert.throws(() => store.beginParts(), /already open/);
      assert.equal((await store.readFields([{ soul: "o", field: "a" }]))[0], undefined); // next stored: "p"
      parts.abort();
      const after = await store.readFields([{ soul: "p", field: "a" }, { soul: "q", field: "a" }]);
      assert.deepEqual(after, [undefined, undefined]);
      assert.throws(() => parts.write([rec("r", "a", 6)]), /has ended/);
      assert.deepEqual(await store.readNode("p"), []);
      assert.equal(await store.lastSeq(), 1);

      const again = store.beginParts();
      again.write([rec("p", "a", 2)]);
      assert.equal(again.commit({ records: [rec("q", "a", 3)], meta: { k: "v" } }), 3);
      assert.equal(await store.getMeta("k"), "v");
      assert.equal(await store.commit({ records: [rec("z", "a", 9)] }), 4, "commits go on after it");

      const open = store.beginParts();
      open.write([rec("lost", "a", 1)]);
    } finally {
      await store.close(); // with a commit in parts open: it is dropped
    }
    const reopened = await SqliteStore.open(dir);
    try {
      assert.deepEqual((await reopened.readNode("p")).map((r) => [r.field, r.seq]), [["a", 2]]);
      assert.deepEqual(await reopened.readNode("lost"), []);
      assert.equal(await reopened.lastSeq(), 4);
      assert.deepEqual(await reopened.integrityCheck(), ["ok"]);
    } finally {
      await reopened.close();
    }
  });
});
