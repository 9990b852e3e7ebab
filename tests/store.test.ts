/**
 * Store conformance: one suite, run against every engine this runtime has —
 * memory everywhere; SQLite through the native driver on Deno, Bun and Node;
 * SQLite-WASM on a file wherever it loads. Engines must agree with each other
 * and with a plain reference model (sorting by code point = UTF-8 byte order).
 *
 * The SQLite engines need a file system: they are found at run time, so this
 * file also runs in the browser (memory, and OPFS: SQLite in a worker). Lock and schema checks that
 * only make sense on a server live in store_sqlite.test.ts.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { compareCodePoints } from "../core/order.ts";
import { importRuntimeModule, isServerRuntime, runtimeName } from "../runtime/detect.ts";
import { MemoryStore } from "../storage/memory.ts";
import { hasOpfs, OpfsStore } from "../storage/opfs.ts";
import type { FieldRecord, Store, StoredRecord } from "../core/store.ts";
import { prng, SEED } from "./_seed.ts";

// ---------------------------------------------------------------- engines

interface Opened {
  readonly store: Store;
  /** Closes and opens the same database again (durable engines only). */
  readonly reopen?: () => Promise<Store>;
}

interface Engine {
  readonly name: string;
  readonly durable: boolean;
  /** Whether a malformed record makes `commit` fail (and roll back). */
  open(): Promise<Opened>;
}

interface Fs {
  mkdtempSync(prefix: string): string;
  rmSync(path: string, options: { recursive: boolean; force: boolean }): void;
  existsSync(path: string | URL): boolean;
}

const engines: Engine[] = [{
  name: "memory",
  durable: false,
  open: () => Promise.resolve({ store: new MemoryStore() }),
}];

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.splice(0)) c();
});

if (isServerRuntime()) {
  const fs = await importRuntimeModule<Fs>("node:fs");
  const { tmpdir } = await importRuntimeModule<{ tmpdir(): string }>("node:os");
  const { join } = await importRuntimeModule<{ join(...p: string[]): string }>("node:path");
  const { SqliteStore } = await import("../storage/sqlite.ts");
  const root = fs.mkdtempSync(join(tmpdir(), "lattice-store-test-"));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const sqlite = (driver: "native" | "wasm"): Engine => ({
    name: driver === "native" ? `sqlite native (${runtimeName()})` : "sqlite-wasm",
    durable: true,
    async open() {
      const dir = join(root, `db${++n}`);
      let store = await SqliteStore.open(dir, { driver });
      const opened: Opened = {
        get store() {
          return store;
        },
        async reopen() {
          await store.close();
          store = await SqliteStore.open(dir, { driver });
          return store;
        },
      };
      cleanups.unshift(() => void store.close());
      return opened;
    },
  });
  if (runtimeName() === "bun" || runtimeName() === "deno" || await hasNodeSqlite()) {
    engines.push(sqlite("native"));
  }
  if (fs.existsSync(new URL("../storage/sqlite_wasm.ts", import.meta.url))) engines.push(sqlite("wasm"));
}

if (hasOpfs()) {
  // Fresh names each run: a browser profile may keep OPFS between runs.
  const run = Math.random().toString(36).slice(2, 10);
  let n = 0;
  engines.push({
    name: "opfs",
    durable: true,
    async open() {
      const name = `store-test-${run}-${++n}`;
      let store = await OpfsStore.open(name);
      const opened: Opened = {
        get store() {
          return store;
        },
        async reopen() {
          await store.close();
          store = await OpfsStore.open(name);
          return store;
        },
      };
      cleanups.unshift(() => void store.close());
      return opened;
    },
  });
}

async function hasNodeSqlite(): Promise<boolean> {
  try {
    await importRuntimeModule("node:sqlite");
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- helpers

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function rec(
  soul: string,
  field: string,
  value: Uint8Array = utf8(soul + "." + field),
  stateLo = 1,
  extra?: Partial<FieldRecord>,
) {
  return {
    soul,
    field,
    value,
    stateHi: 0x0190_0000,
    stateLo,
    actorHi: 0xdead_beef,
    actorLo: 0x0000_0001,
    ...extra,
  } as FieldRecord;
}

/** The record as stored, without its seq. */
function plain(r: StoredRecord | FieldRecord): FieldRecord {
  const { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig } = r;
  return sig === undefined
    ? { soul, field, value, stateHi, stateLo, actorHi, actorLo }
    : { soul, field, value, stateHi, stateLo, actorHi, actorLo, sig };
}

/** Every record with seq > after, paging through `changes` `page` records at a time. */
async function allChanges(store: Store, after = 0, page = 1000): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (let cursor: number | undefined;;) {
    const got = await store.changes(after, { limit: page, cursor });
    out.push(...got.records);
    if ((cursor = got.cursor) === undefined) return out;
  }
}

/** Records by seq, for comparing sets of records. */
const bySeq = (rs: StoredRecord[]) => [...rs].sort((a, b) => a.seq - b.seq);

/** The reference `list`: souls sorted by code point, filtered by prefix and cursor. */
function refList(
  souls: readonly string[],
  prefix: string,
  after: string | undefined,
  limit: number,
): string[] {
  return [...new Set(souls)].sort(compareCodePoints)
    .filter((s) => s.startsWith(prefix) && (after === undefined || compareCodePoints(s, after) > 0))
    .slice(0, limit);
}

/** Characters chosen to break UTF-16 order and naive upper bounds. */
const ALPHABET = [
  "a",
  "b",
  "z",
  "A",
  "/",
  "~",
  "\u007f",
  "é",
  "ÿ",
  "\u0100",
  "中",
  "\ud7ff",
  "\ue000",
  "\uffef",
  "\ufffd",
  "\uffff",
  "😀",
  "\u{10000}",
  "\u{10ffff}",
];

function randomSoul(rand: () => number): string {
  let s = "";
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)];
  return s;
}

// ---------------------------------------------------------------- the suite

for (const engine of engines) {
  describe(`store conformance: ${engine.name}`, () => {
    it("starts empty", async () => {
      const { store } = await engine.open();
      assert.equal(store.durable, engine.durable);
      assert.equal(typeof store.engine, "string");
      assert.deepEqual(await store.readNode("a"), []);
      assert.deepEqual(await store.readFields([{ soul: "a", field: "b" }]), [undefined]);
      assert.deepEqual(await store.readFields([]), []);
      assert.deepEqual(await store.list({ limit: 10 }), []);
      assert.deepEqual(await store.changes(0, { limit: 10 }), { records: [], seq: 0 });
      assert.equal(await store.lastSeq(), 0);
      assert.deepEqual(await store.deferred(), []);
      assert.equal(await store.getMeta("actor"), undefined);
      assert.equal(await store.commit({}), 0, "an empty commit returns the current seq");
      await store.close();
    });

    it("upserts: a key keeps one record, each write takes the next seq", async () => {
      const { store } = await engine.open();
      assert.equal(await store.commit({ records: [rec("n", "a"), rec("n", "b"), rec("m", "a")] }), 3);
      assert.deepEqual(
        bySeq(await allChanges(store)).map((r) => [r.soul, r.field, r.seq]),
        [["n", "a", 1], ["n", "b", 2], ["m", "a", 3]],
      );
      // Overwrite n.a: it moves to seq 4 and leaves seq 1 behind.
      const newer = rec("n", "a", utf8("new"), 2);
      assert.equal(await store.commit({ records: [newer] }), 4);
      const [got] = await store.readFields([{ soul: "n", field: "a" }]);
      assert.deepEqual(got, { ...newer, seq: 4 });
      assert.deepEqual(bySeq(await allChanges(store)).map((r) => r.seq), [2, 3, 4]);
      assert.equal(await store.lastSeq(), 4);
      // Within one batch a later record for the same key replaces the earlier one.
      assert.equal(
        await store.commit({
          records: [rec("x", "f", utf8("first")), rec("y", "f"), rec("x", "f", utf8("second"))],
        }),
        7,
      );
      const x = (await store.readFields([{ soul: "x", field: "f" }]))[0]!;
      assert.deepEqual([x.value, x.seq], [utf8("second"), 7]);
      assert.deepEqual(bySeq(await allChanges(store)).map((r) => r.seq), [2, 3, 4, 6, 7]);
      assert.equal(await store.commit({ meta: { k: "v" } }), 7, "a commit without records keeps the seq");
      // A long batch cycling over a few keys: the last record of each key wins, with its own seq.
      const cycle = Array.from({ length: 53 }, (_, i) => rec(`cyc${i % 7}`, `f${i % 2}`, bytes(i)));
      assert.equal(await store.commit({ records: cycle }), 7 + 53);
      const last = new Map(cycle.map((r, i) => [`${r.soul}.${r.field}`, i]));
      const got2 = await store.readFields([...last.keys()].map((k) => {
        const [soul, field] = k.split(".");
        return { soul, field };
      }));
      assert.deepEqual(
        got2.map((r) => [r!.value[0], r!.seq]),
        [...last.values()].map((i) => [i, 7 + i + 1]),
      );
      await store.close();
    });

    it("keeps every part of a record: states, actor, signature, empty and large values", async () => {
      const { store } = await engine.open();
      const big = new Uint8Array(1 << 20).map((_, i) => (i * 7 + 3) & 0xff);
      const records = [
        rec("v", "empty", new Uint8Array(0)),
        rec("v", "big", big),
        rec("v", "max", bytes(0xc0), 0xffff_ffff, {
          stateHi: 0xffff_ffff,
          actorHi: 0xffff_ffff,
          actorLo: 0xffff_ffff,
        }),
        rec("v", "zero", bytes(0), 0, { stateHi: 0, actorHi: 0, actorLo: 0 }),
        rec("v", "signed", bytes(1, 2), 5, { sig: new Uint8Array(64).fill(9) }),
        rec("v", "emptysig", bytes(1), 5, { sig: new Uint8Array(0) }),
      ];
      await store.commit({ records });
      const got = await store.readFields(records);
      assert.deepEqual(got.map((r) => r && plain(r)), records);
      for (const r of got) {
        assert.equal(Object.getPrototypeOf(r!.value), Uint8Array.prototype, "values are plain Uint8Arrays");
        if (r!.sig) assert.equal(Object.getPrototypeOf(r!.sig), Uint8Array.prototype);
        for (const k of ["stateHi", "stateLo", "actorHi", "actorLo", "seq"] as const) {
          assert.equal(typeof r![k], "number");
        }
      }
      assert.equal("sig" in got[0]!, false, "no sig key when none was given");
      assert.deepEqual(
        (await store.readNode("v")).map(plain),
        [...records].sort((a, b) => compareCodePoints(a.field, b.field)),
      );
      await store.close();
    });

    it("readFields answers in the order asked, with undefined for misses", async () => {
      const { store } = await engine.open();
      await store.commit({ records: [rec("a", "1"), rec("a", "2"), rec("b", "1")] });
      const got = await store.readFields([
        { soul: "b", field: "1" },
        { soul: "a", field: "3" },
        { soul: "a", field: "1" },
        { soul: "c", field: "1" },
        { soul: "b", field: "1" },
        { soul: "a", field: "2" },
      ]);
      assert.deepEqual(got.map((r) => r && `${r.soul}.${r.field}`), [
        "b.1",
        undefined,
        "a.1",
        undefined,
        "b.1",
        "a.2",
      ]);
      await store.close();
    });

    it("readNode returns fields in UTF-8 byte order, tombstones included", async () => {
      const { store } = await engine.open();
      const fields = [
        "b",
        "a",
        "B",
        "é",
        "z",
        "\uffff",
        "😀",
        "\ue000",
        "\ud7ff",
        "aa",
        "a b",
        "中",
        "\u{10ffff}",
        "_",
      ];
      await store.commit({ records: fields.map((f, i) => rec("node", f, bytes(i))) });
      await store.commit({ records: [rec("node", "z", bytes(0xc0), 9), rec("other", "a")] }); // a tombstone
      const got = await store.readNode("node");
      const want = [...fields].sort(compareCodePoints);
      assert.deepEqual(got.map((r) => r.field), want);
      assert.ok(
        compareCodePoints("\uffff", "😀") < 0 && "\uffff" > "😀",
        "the test covers where UTF-16 order differs",
      );
      assert.deepEqual(got.find((r) => r.field === "z")!.value, bytes(0xc0));
      assert.ok(got.every((r) => r.soul === "node"));
      assert.deepEqual(await store.readNode("nod"), []);
      assert.deepEqual(await store.readNode("node/"), []);
      await store.close();
    });

    it("lists souls in UTF-8 byte order with prefix, cursor and limit (seeded random souls)", async () => {
      const { store } = await engine.open();
      const rand = prng(SEED ^ 0x5eed);
      const souls = Array.from({ length: 400 }, () => randomSoul(rand));
      // A soul with several fields is listed once.
      await store.commit({
        records: souls.flatMap((s, i) => i % 3 === 0 ? [rec(s, "a"), rec(s, "b")] : [rec(s, "a")]),
      });
      const prefixes = [
        "",
        ...ALPHABET,
        ...Array.from({ length: 40 }, () => Array.from(randomSoul(rand)).slice(0, 2).join("")),
      ];
      for (const prefix of prefixes) {
        const want = refList(souls, prefix, undefined, Infinity);
        assert.deepEqual(
          await store.list({ prefix, limit: 10_000 }),
          want,
          `prefix ${JSON.stringify(prefix)} (seed ${SEED})`,
        );
        // Page through with small limits and cursors.
        const paged: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.list({ prefix, after, limit: 7 });
          paged.push(...page);
          if (page.length < 7) break;
          after = page[page.length - 1];
        }
        assert.deepEqual(paged, want, `paging prefix ${JSON.stringify(prefix)} (seed ${SEED})`);
        // Cursors that are not souls, before and past the prefix range.
        for (let i = 0; i < 5; i++) {
          const after = randomSoul(rand);
          const limit = 1 + Math.floor(rand() * 20);
          assert.deepEqual(
            await store.list({ prefix, after, limit }),
            refList(souls, prefix, after, limit),
            `prefix ${JSON.stringify(prefix)} after ${JSON.stringify(after)} limit ${limit} (seed ${SEED})`,
          );
        }
      }
      assert.deepEqual(await store.list({ limit: 0 }), []);
      await store.close();
    });

    it("list handles prefixes at the top of the code space", async () => {
      const { store } = await engine.open();
      const souls = [
        "p",
        "p\uffff",
        "p\uffffx",
        "p\uffff\u{10ffff}",
        "p\u{10000}",
        "p\u{10ffff}",
        "p\u{10ffff}a",
        "p\u{10ffff}\u{10ffff}",
        "q",
        "\u{10ffff}",
        "\u{10ffff}\u{10ffff}",
        "\ud7ff",
        "\ud7ffa",
        "\ue000",
        "\u007f",
        "\u0080",
        "a\u0000b",
        "a",
        "a\u0001",
      ];
      await store.commit({ records: souls.map((s) => rec(s, "f")) });
      for (
        const prefix of [
          "p\uffff",
          "p\u{10ffff}",
          "\u{10ffff}",
          "\ud7ff",
          "\u007f",
          "p",
          "a",
          "a\u0000",
          "\uffff",
        ]
      ) {
        assert.deepEqual(
          await store.list({ prefix, limit: 100 }),
          refList(souls, prefix, undefined, 100),
          JSON.stringify(prefix),
        );
      }
      assert.deepEqual(await store.list({ limit: 100 }), refList(souls, "", undefined, 100));
      assert.deepEqual(
        await store.list({ prefix: "p", after: "p\uffff", limit: 100 }),
        refList(souls, "p", "p\uffff", 100),
      );
      assert.deepEqual(await store.list({ prefix: "p", after: "q", limit: 100 }), []);
      assert.deepEqual(await store.list({ prefix: "p\uffff", after: "a", limit: 2 }), [
        "p\uffff",
        "p\uffffx",
      ]);
      await store.close();
    });

    it("keeps a leading U+FEFF in souls, fields and text (not taken for a byte order mark)", async () => {
      const opened = await engine.open();
      let store = opened.store;
      const records = [rec("\uFEFFs", "\uFEFFf", utf8("\uFEFFv")), rec("\uFEFFs", "\uFEFF\u0000g")];
      await store.commit({ records, meta: { "\uFEFFk": "\uFEFFm" } });
      const check = async (s: Store) => {
        assert.deepEqual((await s.readNode("\uFEFFs")).map((r) => [r.soul, r.field]), [
          ["\uFEFFs", "\uFEFF\u0000g"],
          ["\uFEFFs", "\uFEFFf"],
        ]);
        assert.deepEqual(await s.list({ limit: 10 }), ["\uFEFFs"]);
        assert.deepEqual(
          (await s.changes(0, { limit: 10 })).records.map((r) => r.field).sort(),
          ["\uFEFF\u0000g", "\uFEFFf"],
        );
        assert.equal(await s.getMeta("\uFEFFk"), "\uFEFFm");
      };
      await check(store);
      if (opened.reopen) await check(store = await opened.reopen()); // from the journal or SQLite
      await store.close();
    });

    it("changes pages through current records, whole nodes in last-change order", async () => {
      const { store } = await engine.open();
      const rand = prng(SEED ^ 0x51ce);
      const live = new Map<string, FieldRecord>();
      for (let round = 0; round < 30; round++) {
        const batch: FieldRecord[] = [];
        for (let i = 0; i < 1 + Math.floor(rand() * 10); i++) {
          const r = rec(`s${Math.floor(rand() * 15)}`, `f${Math.floor(rand() * 3)}`, bytes(round, i), round);
          batch.push(r);
          live.set(`${r.soul}\u0000${r.field}`, r);
        }
        await store.commit({ records: batch });
      }
      const page = 1 + Math.floor(rand() * 5);
      const all = await allChanges(store, 0, page);
      assert.equal(all.length, live.size);
      assert.equal(new Set(all.map((r) => r.seq)).size, all.length, "each record once");
      for (const r of all) assert.deepEqual(plain(r), live.get(`${r.soul}\u0000${r.field}`));
      // Whole nodes, nodes in the order of their last change, fields in field order.
      const souls = all.map((r) => r.soul).filter((s, i, a) => i === 0 || a[i - 1] !== s);
      assert.equal(new Set(souls).size, souls.length, "a node's records come together");
      const lastChange = (soul: string) => Math.max(...all.filter((r) => r.soul === soul).map((r) => r.seq));
      for (let i = 1; i < souls.length; i++) assert.ok(lastChange(souls[i - 1]) < lastChange(souls[i]));
      for (let i = 1; i < all.length; i++) {
        if (all[i].soul === all[i - 1].soul) assert.ok(all[i - 1].field < all[i].field, "field order");
      }
      const last = await store.lastSeq();
      assert.equal(Math.max(...all.map((r) => r.seq)), last);
      // A page ends with the node that reaches the limit, and tells the seq it was read at.
      const first = await store.changes(0, { limit: page });
      const firstNodes = new Set(first.records.map((r) => r.soul)).size;
      assert.ok(first.records.length >= Math.min(page, all.length));
      assert.ok(firstNodes === 1 || first.records.length - page < all.length, "no node past the limit");
      assert.equal(first.seq, last);
      assert.deepEqual(await store.changes(last, { limit: 10 }), { records: [], seq: last });
      // After `mid`: exactly the records with a higher seq, in any page size.
      const mid = bySeq(all)[Math.floor(all.length / 2)].seq;
      const want = bySeq(all.filter((r) => r.seq > mid));
      for (const size of [1, 3, 1000]) assert.deepEqual(bySeq(await allChanges(store, mid, size)), want);
      await assert.rejects(store.changes(0, { limit: 0 }), RangeError);
      await assert.rejects(store.changes(5, { limit: 1, cursor: 2 }), RangeError);
      await store.close();
    });

    it("changes, paged while written to, still returns every current record", async () => {
      const { store } = await engine.open();
      const rand = prng(SEED ^ 0xc4a9);
      const live = new Map<string, FieldRecord>();
      const write = async (n: number, tag: number) => {
        const batch: FieldRecord[] = [];
        for (let i = 0; i < n; i++) {
          const r = rec(`s${Math.floor(rand() * 20)}`, `f${Math.floor(rand() * 4)}`, bytes(tag, i), tag);
          batch.push(r);
          live.set(`${r.soul}\u0000${r.field}`, r);
        }
        await store.commit({ records: batch });
      };
      await write(60, 0);
      const seen = new Map<string, StoredRecord>();
      let cursor: number | undefined, pages = 0, seq = 0;
      do {
        const got = await store.changes(0, { limit: 4, cursor });
        for (const r of got.records) seen.set(`${r.soul}\u0000${r.field}`, r);
        cursor = got.cursor;
        seq = got.seq;
        if (++pages <= 8) await write(3, pages); // writes between the first pages
      } while (cursor !== undefined);
      // Everything up to the last page's seq came, in its newest version.
      for (const [k, r] of live) {
        const got = seen.get(k);
        const stored = (await store.readFields([{ soul: r.soul, field: r.field }]))[0]!;
        if (stored.seq <= seq) assert.deepEqual(got && plain(got), plain(stored), k);
      }
      await store.close();
    });

    it("keeps deferred ops: earliest due first, ids unique and never reused", async () => {
      const { store } = await engine.open();
      await store.commit({
        defer: [{ due: 30, op: bytes(3) }, { due: 10, op: bytes(1) }, { due: 20, op: bytes(2) }],
      });
      await store.commit({
        defer: [{ due: 10, op: bytes(4) }, { due: 1.7e12, op: new Uint8Array(5000).fill(5) }],
      });
      let d = await store.deferred();
      assert.deepEqual(d.map((x) => x.due), [10, 10, 20, 30, 1.7e12]);
      assert.deepEqual(d.map((x) => x.op[0]), [1, 4, 2, 3, 5]);
      assert.equal(new Set(d.map((x) => x.id)).size, 5);
      assert.ok(d.every((x) => Number.isSafeInteger(x.id) && x.id > 0));
      assert.ok(d[0].id < d[1].id, "equal dues keep insertion order");
      assert.equal(d[4].op.length, 5000);
      const maxId = Math.max(...d.map((x) => x.id));
      // Drop two (the newest among them), add one in the same commit.
      await store.commit({ undefer: [d[1].id, d[4].id], defer: [{ due: 15, op: bytes(6) }] });
      d = await store.deferred();
      assert.deepEqual(d.map((x) => x.op[0]), [1, 6, 2, 3]);
      assert.ok(d[1].id > maxId, "a removed id is not handed out again");
      await store.commit({ undefer: [123456789] }); // unknown ids are ignored
      assert.equal((await store.deferred()).length, 4);
      assert.equal(await store.lastSeq(), 0, "deferring does not take seqs");
      await store.close();
    });

    it("reads deferred ops by due time (until, limit) and counts them, in all and per source", async () => {
      const { store } = await engine.open();
      assert.ok(store.deferredDue && store.deferredCount, "the engine reads deferred ops through an index");
      await store.commit({
        defer: [
          { due: 30, op: bytes(3), source: "peer-a" },
          { due: 10, op: bytes(1), source: "peer-b" },
          { due: 20, op: bytes(2), source: "peer-a" },
          { due: 10, op: bytes(4) }, // no source: ""
        ],
      });
      const all = await store.deferred();
      assert.deepEqual(all.map((d) => d.source), ["peer-b", "", "peer-a", "peer-a"]);
      assert.deepEqual((await store.deferredDue(20, 10)).map((d) => d.op[0]), [1, 4, 2]);
      assert.deepEqual(
        (await store.deferredDue(20, 2)).map((d) => d.op[0]),
        [1, 4],
        "earliest first, limited",
      );
      assert.deepEqual(await store.deferredDue(9, 10), []);
      assert.deepEqual((await store.deferredDue(Infinity, 1)).map((d) => d.due), [10], "the next, whenever");
      assert.deepEqual(await store.deferredDue(Infinity, Infinity), all);
      assert.equal(await store.deferredCount(), 4);
      assert.equal(await store.deferredCount("peer-a"), 2);
      assert.equal(await store.deferredCount(""), 1);
      assert.equal(await store.deferredCount("nobody"), 0);
      await store.commit({ undefer: [all[2].id, all[2].id, 987654] }); // twice, and unknown: once
      assert.equal(await store.deferredCount("peer-a"), 1);
      assert.equal(await store.deferredCount(), 3);
      assert.deepEqual((await store.deferredDue(Infinity, 10)).map((d) => d.op[0]), [1, 4, 3]);
      await assert.rejects(
        store.commit({ defer: [{ due: 1, op: bytes(1), source: 7 as never }] }),
        TypeError,
      );
      assert.equal(await store.deferredCount(), 3, "a refused batch defers nothing");
      assert.equal(await store.dropDeferredAfter!(10), 1, "drops those due after a time");
      assert.deepEqual((await store.deferred()).map((d) => d.op[0]), [1, 4]);
      assert.equal(await store.deferredCount("peer-a"), 0);
      assert.equal(await store.dropDeferredAfter!(10), 0);
      await store.close();
    });

    it("keeps metadata", async () => {
      const { store } = await engine.open();
      await store.commit({
        meta: { actor: "00000000000000ff", clock: "1", "ключ": "значение 😀", empty: "" },
      });
      await store.commit({ meta: { clock: "2" } });
      assert.equal(await store.getMeta("actor"), "00000000000000ff");
      assert.equal(await store.getMeta("clock"), "2");
      assert.equal(await store.getMeta("ключ"), "значение 😀");
      assert.equal(await store.getMeta("empty"), "");
      assert.equal(await store.getMeta("missing"), undefined);
      // The key an engine may keep its count of live nodes under is not for batches.
      await assert.rejects(store.commit({ meta: { "nodes.live": "7" } }), /kept by the store/);
      await store.close();
    });

    it("counts and lists the nodes with a live field through small and large commits, tombstones and reopening", async () => {
      const opened = await engine.open();
      let store = opened.store;
      assert.equal(typeof store.countLive, "function");
      assert.equal(await store.countLive!(), 0);
      const rand = prng(SEED ^ 0x11fe);
      const live = new Map<string, Map<string, boolean>>(); // soul → field → live
      const liveSouls = () =>
        [...live].filter(([, fields]) => [...fields.values()].some((l) => l)).map(([soul]) => soul).sort(
          compareCodePoints,
        );
      const want = () => liveSouls().length;
      let stateLo = 1;
      for (let round = 0; round < 24; round++) {
        // Mostly small commits over 40 nodes (new ones, and merges into ones already written), and
        // two large enough to skip a journal (a node in them is new or merged alike).
        const large = round === 8 || round === 16;
        const n = large ? 20_000 : 1 + Math.floor(rand() * 60);
        const batch: FieldRecord[] = [];
        const keys = new Set<string>();
        for (let i = 0; i < n; i++) {
          const soul = large && i % 2 === 0 ? `big/${round}/${i}` : `n${Math.floor(rand() * 40)}`;
          const field = `f${Math.floor(rand() * 3)}`;
          if (keys.has(`${soul}\u0000${field}`)) continue;
          keys.add(`${soul}\u0000${field}`);
          const dead = rand() < (large ? 0.2 : 0.45);
          batch.push(rec(soul, field, dead ? bytes(0xc0) : bytes(1, i & 0xff), stateLo++));
          if (!live.has(soul)) live.set(soul, new Map());
          live.get(soul)!.set(field, !dead);
        }
        await store.commit({ records: batch });
        assert.equal(await store.countLive!(), want(), `after round ${round} (seed ${SEED})`);
        assert.deepEqual(
          await store.list({ limit: Infinity }),
          liveSouls(),
          `list after round ${round} (seed ${SEED})`,
        );
        if (opened.reopen && round % 6 === 5) {
          store = await opened.reopen();
          assert.equal(await store.countLive!(), want(), `after reopening in round ${round} (seed ${SEED})`);
        }
      }
      // As many as list's souls whose node has a live field.
      let listed = 0;
      for (const soul of await store.list({ limit: Infinity })) {
        if ((await store.readNode(soul)).some((r) => !(r.value.length === 1 && r.value[0] === 0xc0))) {
          listed++;
        }
      }
      assert.equal(await store.countLive!(), listed);
      await store.close();
    });

    it("lists only nodes with a live field: deleted ones are skipped, revived ones come back", async () => {
      const opened = await engine.open();
      let store = opened.store;
      const dead = bytes(0xc0);
      // 3,000 nodes whose fields are all tombstones around a few live ones, from a large commit (past
      // any journal) and from small ones.
      const souls = Array.from({ length: 3000 }, (_, i) => `d/${String(i).padStart(4, "0")}`);
      await store.commit({ records: souls.map((s) => rec(s, "a", dead)) });
      await store.commit({ records: [rec("d/0100", "a"), rec("d/2999x", "b"), rec("e", "a", dead)] });
      await store.commit({
        records: [rec("d/1500", "b", dead), rec("d/1500", "c"), rec("d/0100", "z", dead)],
      });
      const check = async (want: string[], when: string) => {
        assert.deepEqual(await store.list({ limit: Infinity }), want, when);
        assert.deepEqual(await store.list({ prefix: "d/", limit: 1 }), want.slice(0, 1), when);
        assert.deepEqual(
          await store.list({ after: "d/0100", limit: 1 }),
          want.filter((s) => s > "d/0100").slice(0, 1),
          when,
        );
        assert.deepEqual(
          await store.list({ prefix: "d/2", limit: 5 }),
          want.filter((s) => s.startsWith("d/2")),
          when,
        );
        assert.deepEqual(await store.list({ prefix: "e", limit: 5 }), [], when);
        if (store.countLive) assert.equal(await store.countLive(), want.length, when);
      };
      await check(["d/0100", "d/1500", "d/2999x"], "after the writes");
      // The last live field deleted: gone from the list; a field written again: back.
      await store.commit({ records: [rec("d/1500", "c", dead, 2), rec("d/0007", "a", bytes(1), 2)] });
      await check(["d/0007", "d/0100", "d/2999x"], "after deleting one and reviving another");
      if (opened.reopen) {
        store = await opened.reopen();
        await check(["d/0007", "d/0100", "d/2999x"], "after reopening");
      }
      // Deleted in a large commit too.
      await store.commit({
        records: souls.map((s) => rec(s, "a", dead, 3)).concat([rec("d/0100", "a", dead, 3)]),
      });
      await check(["d/2999x"], "after a large commit of tombstones");
      await store.close();
    });

    it("commits large batches", async () => {
      const { store } = await engine.open();
      const records = Array.from(
        { length: 20_000 },
        (_, i) => rec(`bulk/${i % 5000}`, `f${(i / 5000) | 0}`, bytes(i & 0xff)),
      );
      assert.equal(await store.commit({ records }), 20_000);
      assert.equal((await allChanges(store, 0, 4096)).length, 20_000);
      assert.equal((await store.list({ prefix: "bulk/", limit: 10_000 })).length, 5000);
      assert.equal((await store.readNode("bulk/42")).length, 4);
      await store.close();
    });

    it("commits atomically: a failing batch leaves nothing behind", async () => {
      const { store } = await engine.open();
      await store.commit({
        records: [rec("keep", "a")],
        meta: { m: "before" },
        defer: [{ due: 1, op: bytes(1) }],
      });
      const deferredBefore = await store.deferred();
      const bad = [
        { ...rec("bad", "value"), value: "not bytes" as unknown as Uint8Array },
        { ...rec("bad", "state"), stateLo: -1 },
        { ...rec("bad", "actor"), actorHi: 2 ** 32 },
        { ...rec("bad", "sig"), sig: [1, 2] as unknown as Uint8Array },
      ];
      for (const b of bad) {
        await assert.rejects(
          store.commit({
            records: [rec("keep", "a", utf8("changed"), 2), rec("new", "x"), b, rec("new", "y")],
            defer: [{ due: 2, op: bytes(2) }],
            undefer: [deferredBefore[0].id],
            meta: { m: "after" },
          }),
          (e: Error) => e instanceof TypeError || e instanceof RangeError,
          b.field,
        );
        assert.equal(await store.lastSeq(), 1);
        assert.deepEqual((await store.readFields([{ soul: "keep", field: "a" }]))[0]?.value, utf8("keep.a"));
        assert.deepEqual(await store.readNode("new"), []);
        assert.deepEqual(await store.list({ limit: 10 }), ["keep"]);
        assert.deepEqual(await store.deferred(), deferredBefore);
        assert.equal(await store.getMeta("m"), "before");
        assert.equal((await allChanges(store)).length, 1);
      }
      await assert.rejects(store.commit({ meta: { m: 5 as unknown as string } }), TypeError);
      // The store is still usable and seqs go on without a gap.
      assert.equal(await store.commit({ records: [rec("new", "x")] }), 2);
      assert.equal(await store.getMeta("m"), "before");
      await store.close();
    });

    it("closes: idempotent, later calls reject", async () => {
      const { store } = await engine.open();
      await store.commit({ records: [rec("a", "b")] });
      await store.close();
      await store.close();
      for (
        const call of [
          () => store.readNode("a"),
          () => store.readFields([{ soul: "a", field: "b" }]),
          () => store.commit({ records: [rec("a", "c")] }),
          () => store.list({ limit: 1 }),
          () => store.changes(0, { limit: 1 }),
          () => store.deferred(),
          () => store.getMeta("x"),
        ]
      ) {
        await assert.rejects(async () => await call(), /closed/);
      }
    });

    if (engine.durable) {
      it("keeps everything across close and reopen", async () => {
        const opened = await engine.open();
        const big = new Uint8Array(300_000).map((_, i) => i % 251);
        await opened.store.commit({
          records: [
            rec("p", "a"),
            rec("p", "b", big),
            rec("q", "é", new Uint8Array(0), 7, { sig: bytes(1, 2, 3) }),
          ],
          defer: [{ due: 5, op: bytes(5) }, { due: 6, op: bytes(6) }],
          meta: { actor: "0123456789abcdef" },
        });
        await opened.store.commit({
          records: [rec("p", "a", utf8("v2"), 3)],
          undefer: [(await opened.store.deferred())[1].id],
        });
        const before = {
          all: await allChanges(opened.store),
          p: await opened.store.readNode("p"),
          list: await opened.store.list({ limit: 10 }),
          deferred: await opened.store.deferred(),
          seq: await opened.store.lastSeq(),
        };
        const store = await opened.reopen!();
        assert.deepEqual(await allChanges(store), before.all);
        assert.deepEqual(await store.readNode("p"), before.p);
        assert.deepEqual(await store.list({ limit: 10 }), before.list);
        assert.deepEqual(await store.deferred(), before.deferred);
        assert.equal(await store.lastSeq(), before.seq);
        assert.equal(await store.getMeta("actor"), "0123456789abcdef");
        // Seqs and deferred ids go on from where they were.
        assert.equal(
          await store.commit({ records: [rec("r", "a")], defer: [{ due: 1, op: bytes(7) }] }),
          before.seq + 1,
        );
        const ids = (await store.deferred()).map((d) => d.id);
        assert.ok(
          ids[0] > Math.max(...before.deferred.map((d) => d.id)),
          "deferred ids are not reused after reopen",
        );
        await store.close();
      });
    }
  });
}
