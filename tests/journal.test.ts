// @server-only: database directories on disk
/**
 * The SQLite engine's journal (storage/journal.ts): commits acknowledged from
 * the journal alone survive a crash, a torn last frame is ignored, replaying
 * a journal that was already folded never undoes later writes, the
 * background fold keeps every record readable, and a failed append leaves
 * the journal usable. Crash images are copies of a live database directory
 * (without its LOCK), taken between calls.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  crc32,
  encodeFrame,
  FrameWriter,
  HEADER_BYTES,
  JournalFile,
  type JournalFs,
  readJournal,
} from "../storage/journal.ts";
import { SqliteStore } from "../storage/sqlite.ts";
import type { FieldRecord, StoredRecord } from "../core/store.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-journal-test-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => path.join(root, `d${++dirs}`);

const rec = (soul: string, field: string, v: number, sig?: Uint8Array): FieldRecord => ({
  soul,
  field,
  value: new Uint8Array([v & 255, v >>> 8 & 255, 7]),
  stateHi: 1,
  stateLo: v,
  actorHi: 2,
  actorLo: 3,
  ...(sig === undefined ? {} : { sig }),
});

/** What a crash leaves: the directory's files as they are now, without the LOCK. */
function crashImage(dir: string): string {
  const copy = freshDir();
  fs.mkdirSync(copy);
  for (const name of fs.readdirSync(dir)) {
    if (name !== "LOCK") fs.copyFileSync(path.join(dir, name), path.join(copy, name));
  }
  return copy;
}

/** Opens the store in `dir`, runs `fn` on it, and closes it however `fn` ends. */
async function withStore(dir: string, fn: (store: SqliteStore) => Promise<void>): Promise<void> {
  const store = await SqliteStore.open(dir);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

const journalNames = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith("journal-")).sort();
const brief = (rs: StoredRecord[]) => rs.map((r) => [r.soul, r.field, r.stateLo, r.seq]);

describe("journal", () => {
  it("crc32 is zlib's CRC-32", () => {
    assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
    // Four bytes at a time, the rest one by one: every length and offset against the bytewise rule.
    const bytewise = (b: Uint8Array, start: number, end: number) => {
      let c = -1;
      for (let i = start; i < end; i++) {
        c ^= b[i];
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      return (c ^ -1) >>> 0;
    };
    const b = new Uint8Array(80).map((_, i) => (i * 151 + 7) & 255);
    for (let start = 0; start < 5; start++) {
      for (let end = start; end <= b.length; end++) {
        assert.equal(crc32(b, start, end), bytewise(b, start, end));
      }
    }
  });

  it("frames round-trip: records with and without sig, unicode keys, metadata", () => {
    const w = new FrameWriter();
    const records = [rec("n", "a", 1), rec("ünï/😀", "ß", 70000, new Uint8Array([1, 2])), rec("n", "b", 0)];
    const n = encodeFrame(w, 41, records, [["clock", "00ff"]]);
    const file = new Uint8Array(HEADER_BYTES + n);
    new DataView(file.buffer).setUint32(0, 0x4a43544c, true);
    new DataView(file.buffer).setUint32(4, 1, true);
    file.set(w.buf.subarray(0, n), HEADER_BYTES);
    const { frames, tornBytes } = readJournal(file);
    assert.equal(tornBytes, 0);
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0].records, records.map((r, i) => ({ ...r, seq: 41 + i })));
    assert.deepEqual(frames[0].meta, [["clock", "00ff"]]);
    // Every cut short of the whole frame, and any flipped byte, reads as a torn end.
    for (const cut of [HEADER_BYTES, HEADER_BYTES + 3, HEADER_BYTES + 8, file.length - 1]) {
      const r = readJournal(file.subarray(0, cut));
      assert.equal(r.frames.length, 0);
      assert.equal(r.tornBytes, cut - HEADER_BYTES);
    }
    for (let i = HEADER_BYTES; i < file.length; i += 7) {
      const bad = file.slice();
      bad[i] ^= 0x40;
      assert.equal(readJournal(bad).frames.length, 0, `flipped byte ${i}`);
    }
    assert.throws(() => readJournal(new Uint8Array(16).fill(1), "x.log"), /x\.log is not a Lattice journal/);
  });

  it("acknowledged commits survive a crash before any fold", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.commit({ records: [rec("n", "a", 1), rec("n", "b", 2)], meta: { clock: "c1" } });
      await store.commit({ records: [rec("n", "a", 3), rec("m", "x", 4, new Uint8Array([9]))] });
      assert.equal(store.pending, 3);
      assert.equal(journalNames(dir).length, 1);
      const image = crashImage(dir);
      await withStore(image, async (again) => {
        assert.deepEqual(brief(await again.readNode("n")), [["n", "a", 3, 3], ["n", "b", 2, 2]]);
        assert.deepEqual((await again.readNode("m"))[0].sig, new Uint8Array([9]));
        assert.equal(await again.getMeta("clock"), "c1");
        assert.equal(await again.lastSeq(), 4);
        assert.equal(again.pending, 0, "replayed into SQLite at open");
        assert.deepEqual(await again.integrityCheck(), ["ok"]);
        // The next commit continues the seqs.
        assert.equal(await again.commit({ records: [rec("k", "z", 5)] }), 5);
      });
      assert.deepEqual(journalNames(image), [], "a clean close leaves no journal");
    });
  });

  it("a replay too large for one part is written in parts, the latest write of each field kept", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      // 20 commits rewriting the same 1,000 fields: 20,000 journaled records (more than one replay part
      // holds), 1,000 distinct ones (too few for a fold), so every field's last write is in the last part.
      for (let c = 0, v = 0; c < 20; c++) {
        const records: FieldRecord[] = [];
        for (let i = 0; i < 1000; i++) records.push(rec(`n${i % 100}`, `f${Math.floor(i / 100)}`, ++v));
        await store.commit({ records, meta: { round: String(c) } });
      }
      assert.equal(store.pending, 1000);
      const image = crashImage(dir);
      await withStore(image, async (again) => {
        assert.equal(again.pending, 0, "replayed into SQLite at open");
        assert.equal(await again.lastSeq(), 20_000);
        assert.equal(await again.getMeta("round"), "19");
        for (const soul of ["n0", "n37", "n99"]) {
          const node = await again.readNode(soul);
          assert.deepEqual(brief(node), brief(await store.readNode(soul)), soul);
          assert.ok(node.every((r) => r.seq > 19_000), `${soul}: only last-round writes`);
        }
        assert.equal(await again.countLive(), 100);
        assert.deepEqual(await again.integrityCheck(), ["ok"]);
      });
    });
  });

  it("a torn last frame is ignored; the frames before it are replayed", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.commit({ records: [rec("n", "a", 1)] });
      await store.commit({ records: [rec("n", "b", 2)] });
      const image = crashImage(dir);
      const [name] = journalNames(image);
      const file = path.join(image, name);
      const bytes = fs.readFileSync(file);
      // A third frame cut off mid-write: its length says more than there is.
      fs.writeFileSync(file, Buffer.concat([bytes, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5])]));
      await withStore(image, async (again) => {
        assert.deepEqual(brief(await again.readNode("n")), [["n", "a", 1, 1], ["n", "b", 2, 2]]);
      });
    });
  });

  it("replaying a journal that was already folded never undoes a later write", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.commit({ records: [rec("n", "a", 1), rec("n", "b", 2)] });
      const [oldName] = journalNames(dir);
      const oldJournal = fs.readFileSync(path.join(dir, oldName));
      await store.flush(); // folded, journal deleted
      await store.commit({ records: [rec("n", "a", 5)] }); // a later write of n.a
      await store.flush();
      const image = crashImage(dir);
      // As if the process died between folding the first journal and deleting it.
      fs.writeFileSync(path.join(image, oldName), oldJournal);
      await withStore(image, async (again) => {
        assert.deepEqual(brief(await again.readNode("n")), [["n", "a", 5, 3], ["n", "b", 2, 2]]);
        assert.deepEqual(journalNames(image).length, 1, "only the new, empty journal");
      });
    });
  });

  it("a journal replayed twice (a crash between a replay's commit and its files' deletion) keeps the count of nodes right", async () => {
    const dir = freshDir();
    let journal: [string, Buffer][] = [];
    await withStore(dir, async (store) => {
      await store.commit({ records: [rec("n1", "a", 1), rec("n2", "a", 2), rec("n3", "a", 3)] });
      await store.commit({ records: [rec("n4", "a", 4), rec("n1", "b", 5)] });
      journal = journalNames(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))]);
      assert.equal(await store.countLive(), 4); // folded; the file keeps its count from here on
    });
    // Closed: the journal was folded into SQLite and deleted. Put it back, as a crash right after the
    // replay's commit would have left it, and open twice: the replay writes the same records again.
    for (const [name, bytes] of journal) fs.writeFileSync(path.join(dir, name), bytes);
    await withStore(dir, async (again) => {
      const listed = (await again.list({ limit: 100 })).length;
      assert.equal(await again.countLive(), listed);
      assert.equal(listed, 4);
    });
  });

  it("refuses to open over a file that is not a journal, naming it", async () => {
    const dir = freshDir();
    await (await SqliteStore.open(dir)).close();
    fs.writeFileSync(path.join(dir, "journal-7.log"), "definitely not a journal");
    await assert.rejects(SqliteStore.open(dir), /journal-7\.log is not a Lattice journal/);
    // The failed open released the directory: removing the file lets it open.
    fs.rmSync(path.join(dir, "journal-7.log"));
    await (await SqliteStore.open(dir)).close();
  });

  it("folds journaled commits in the background while every record stays readable", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      const n = 40_000; // over the fold threshold: rotates and folds in steps
      const records = Array.from({ length: n }, (_, i) => rec(`s${i % 5000}`, `f${i}`, i));
      for (let i = 0; i < n; i += 4000) await store.commit({ records: records.slice(i, i + 4000) });
      await store.commit({ records: [rec("s1", "late", 1)] });
      assert.ok(store.pending > 0);
      assert.ok(journalNames(dir).length >= 2, "rotated: the active journal and the one being folded");
      // Mid-fold reads: journaled, folding and folded records alike.
      const some = await store.readFields([
        { soul: "s0", field: "f0" },
        { soul: "s4999", field: `f${n - 1}` },
        { soul: "s1", field: "late" },
        { soul: "s1", field: "nope" },
      ]);
      assert.deepEqual(some.map((r) => r?.seq), [1, n, n + 1, undefined]);
      assert.equal((await store.readNode("s1")).length, n / 5000 + 1);
      for (let i = 0; i < 200 && store.pending > 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(store.pending <= 1, `the background fold went on: ${store.pending} pending`);
      // changes() and list() see everything (they fold what is left first).
      assert.equal((await store.changes(0, { limit: Infinity })).records.length, n + 1);
      assert.equal(store.pending, 0);
      assert.equal((await store.list({ limit: Infinity })).length, 5000);
    });
    assert.deepEqual(journalNames(dir), []);
  });

  it("large batches go straight into SQLite: nothing journaled, in SQLite when acknowledged", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      await store.commit({ records: [rec("n", "a", 1)] }); // journaled first
      const big = Array.from({ length: 20_000 }, (_, i) => rec(`b${i % 700}`, `f${i}`, i));
      const seq = await store.commit({ records: big });
      assert.equal(seq, 20_001);
      assert.equal(store.pending, 0, "the journaled commit was folded before the batch");
      const image = crashImage(dir);
      for (const name of journalNames(image)) fs.rmSync(path.join(image, name)); // SQLite alone holds it
      await withStore(image, async (again) => {
        assert.equal(await again.lastSeq(), 20_001);
        assert.equal((await again.readNode("b699")).length, Math.floor(20_000 / 700));
        assert.equal((await again.readFields([{ soul: "n", field: "a" }]))[0]?.seq, 1);
      });
    });
  });

  it("large batches in runs of one node: fields in any order, the later of a field twice kept, stored nodes merged", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      // 2,000 nodes × 9 records, each node's together: f8 … f1 (reversed), then f3 once more.
      const batch = (base: number) =>
        Array.from({ length: 2_000 }, (_, n) => [
          ...Array.from({ length: 8 }, (_, k) => rec(`r${n}`, `f${8 - k}`, base + 8 - k)),
          rec(`r${n}`, "f3", base + 100),
        ]).flat();
      const first = batch(0);
      assert.ok(first.length >= 16_384, "large enough to skip the journal");
      assert.equal(await store.commit({ records: first }), first.length);
      assert.equal(store.pending, 0);
      const node = await store.readNode("r7");
      assert.deepEqual(node.map((r) => r.field), ["f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"]);
      assert.equal(node[2].stateLo, 100, "the later f3");
      assert.equal(node[2].seq, 7 * 9 + 9, "with its own seq");
      // Again over the same nodes: stored nodes are merged, every field newer.
      const second = batch(1_000);
      const last = await store.commit({ records: second });
      const again = await store.readNode("r1999");
      assert.deepEqual(again.map((r) => [r.field, r.stateLo]), [
        ["f1", 1_001],
        ["f2", 1_002],
        ["f3", 1_100],
        ["f4", 1_004],
        ["f5", 1_005],
        ["f6", 1_006],
        ["f7", 1_007],
        ["f8", 1_008],
      ]);
      assert.equal(Math.max(...again.map((r) => r.seq)), last);
    });
    await withStore(dir, async (store) => {
      assert.equal((await store.readNode("r0")).find((r) => r.field === "f3")?.stateLo, 1_100);
    });
  });

  it("large batches in field order: each record keeps its own seq, new and stored nodes alike", async () => {
    const dir = freshDir();
    // Nodes o0 … o2999, fields f0 … f5 in order; the second batch covers o1500 … o4499.
    const batch = (from: number, base: number) =>
      Array.from(
        { length: 3_000 },
        (_, n) => Array.from({ length: 6 }, (_, k) => rec(`o${from + n}`, `f${k}`, base + k)),
      )
        .flat();
    await withStore(dir, async (store) => {
      const first = batch(0, 0);
      assert.equal(await store.commit({ records: first }), first.length);
      const second = batch(1_500, 500);
      assert.equal(await store.commit({ records: second }), 2 * first.length);
      const seqOf = (i: number) => first.length + i + 1; // of second[i]
      assert.deepEqual(
        brief(await store.readNode("o1499")),
        brief(first.slice(1_499 * 6, 1_500 * 6).map((r, k) => ({ ...r, seq: 1_499 * 6 + k + 1 }))),
      );
      for (const n of [1_500, 2_999, 3_000, 4_499]) {
        const want = second.slice((n - 1_500) * 6, (n - 1_499) * 6).map((r, k) => ({
          ...r,
          seq: seqOf((n - 1_500) * 6 + k),
        }));
        assert.deepEqual(brief(await store.readNode(`o${n}`)), brief(want), `o${n}`);
      }
    });
    await withStore(dir, async (store) => {
      const node = await store.readNode("o3000");
      assert.deepEqual(
        node.map((r) => [r.field, r.stateLo]),
        Array.from({ length: 6 }, (_, k) => [`f${k}`, 500 + k]),
      );
    });
  });

  it("readFields finds stored nodes among absent ones in any order of souls", async () => {
    const dir = freshDir();
    await withStore(dir, async (store) => {
      // Stored in SQLite (a large batch): s02, s04, … s98, fields a and b.
      const stored = Array.from({ length: 49 }, (_, i) => `s${String(2 * i + 2).padStart(2, "0")}`);
      const filler = Array.from({ length: 16_384 }, (_, i) => rec(`z${i}`, "a", i));
      await store.commit({
        records: [...stored.flatMap((s, i) => [rec(s, "a", i), rec(s, "b", i + 1000)]), ...filler],
      });
      assert.equal(store.pending, 0);
      const all = Array.from({ length: 101 }, (_, i) => `s${String(i).padStart(2, "0")}`); // s00 … s100
      const expect = (soul: string, field: string) => {
        const i = stored.indexOf(soul);
        return i < 0 || field === "c" ? undefined : field === "a" ? i : i + 1000;
      };
      const shuffled = [...all].sort((x, y) =>
        (x.charCodeAt(2) * 7 + x.length) % 11 - (y.charCodeAt(2) * 7 + y.length) % 11
      );
      for (
        const souls of [all, [...all].reverse(), shuffled, ["s00", "s01", "s02", "s01", "s02", "t", "s98"]]
      ) {
        const keys = souls.flatMap((soul) => ["a", "b", "c"].map((field) => ({ soul, field })));
        const got = await store.readFields(keys);
        assert.deepEqual(
          got.map((r) => r?.stateLo),
          keys.map((k) => expect(k.soul, k.field)),
          souls.slice(0, 5).join(","),
        );
      }
      // Souls between two stored ones, found absent, then written into SQLite (a fold, then a
      // large batch), are found: reads remember the gap between s02 and s04 until a write.
      const stateLo = async (soul: string) => (await store.readFields([{ soul, field: "a" }]))[0]?.stateLo;
      assert.equal(await stateLo("s03a"), undefined); // not asked before: SQLite is asked
      await store.commit({ records: [rec("s03b", "a", 3), rec("s05", "a", 5)] });
      await store.flush();
      assert.equal(await stateLo("s03b"), 3);
      assert.equal(await stateLo("s07a"), undefined);
      await store.commit({
        records: [rec("s07b", "a", 7), ...filler.map((r) => ({ ...r, soul: `y${r.soul}` }))],
      });
      assert.equal(await stateLo("s05"), 5);
      assert.equal(await stateLo("s07b"), 7);
    });
  });

  it("a failed append is cut off, so the frames after it are still replayed", () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    let failNext = false;
    const real = fs as unknown as JournalFs;
    const flaky: JournalFs = {
      ...real,
      writeSync(fd, buffer, offset, length) {
        if (failNext) {
          failNext = false;
          real.writeSync(fd, buffer, offset, Math.floor(length / 2)); // half a frame reaches the file
          throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        }
        return real.writeSync(fd, buffer, offset, length);
      },
    };
    const j = JournalFile.create(flaky, dir, path.sep, 1, false);
    const w = new FrameWriter();
    let n = encodeFrame(w, 1, [rec("n", "a", 1)], []);
    j.write(w.buf, n);
    failNext = true;
    n = encodeFrame(w, 2, [rec("n", "b", 2)], []);
    assert.throws(() => j.write(w.buf, n), /ENOSPC/);
    n = encodeFrame(w, 2, [rec("n", "c", 3)], []);
    j.write(w.buf, n);
    j.close();
    const { frames, tornBytes } = readJournal(fs.readFileSync(j.path));
    assert.equal(tornBytes, 0);
    assert.deepEqual(frames.flatMap((f) => f.records.map((r) => r.field)), ["a", "c"]);
  });
});
