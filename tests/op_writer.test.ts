/**
 * The op writer (core/op_writer.ts) against the path it replaced on the
 * wire: `encodeRecordsAsOps(records)` must give exactly the bytes of
 * `encodeOps(records.map(recordToOp))` (docs/PROTOCOL.md: sync and gossip
 * peers receive these bytes), for signed and unsigned records, tombstones,
 * every kind of value, unicode souls and fields, and records as the store
 * gives them back.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { open } from "../mod.ts";
import { encodeOps, type Op, opToRecord, recordToOp } from "../core/op.ts";
import { encodeRecordsAsOps } from "../core/op_writer.ts";
import { storeOf } from "../core/database.ts";
import type { FieldRecord } from "../core/store.ts";
import { fcParams } from "./_seed.ts";

/** The bytes the sync and gossip senders wrote before: records made ops, then encoded. */
const throughOps = (records: readonly FieldRecord[]): Uint8Array => encodeOps(records.map(recordToOp));

const SIG = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 5) & 0xff);
const LONG = "ü".repeat(200) + "x".repeat(70_000); // str16 and str32 headers, multi-byte UTF-8
const ops: Op[] = [
  { soul: "user/1", field: "name", value: "Ada", state: "018bcfe568000000", actor: "00000000000000aa" },
  { soul: "user/1", field: "gone", value: null, state: "018bcfe568000001", actor: "00000000000000aa" },
  {
    soul: "user/1",
    field: "signed",
    value: 42,
    state: "018bcfe568000002",
    actor: "00000000000000ab",
    sig: SIG,
  },
  {
    soul: "user/1",
    field: "tomb",
    value: null,
    state: "018bcfe568000003",
    actor: "00000000000000ab",
    sig: SIG,
  },
  {
    soul: "ノード/é",
    field: "名前",
    value: "Grüße 👋",
    state: "018bcfe568000004",
    actor: "ffffffffffffffff",
  },
  {
    soul: "🌍/emoji",
    field: "ŝtato",
    value: { "#": "ノード/é" },
    state: "ffffffffffffffff",
    actor: "8000000000000001",
  },
  { soul: "n", field: "ints", value: -33, state: "0000000000000000", actor: "0000000000000000" },
  { soul: "n", field: "big", value: 2 ** 53 - 1, state: "018bcfe568000005", actor: "00000000000000aa" },
  { soul: "n", field: "neg", value: -(2 ** 40), state: "018bcfe568000006", actor: "00000000000000aa" },
  { soul: "n", field: "float", value: 0.1, state: "018bcfe568000007", actor: "00000000000000aa" },
  { soul: "n", field: "negzero", value: -0, state: "018bcfe568000008", actor: "00000000000000aa" },
  { soul: "n", field: "bool", value: false, state: "018bcfe568000009", actor: "00000000000000aa" },
  {
    soul: "n",
    field: "bytes",
    value: new Uint8Array(300).fill(7),
    state: "018bcfe56800000a",
    actor: "00000000000000aa",
  },
  { soul: "n", field: "long", value: LONG, state: "018bcfe56800000b", actor: "00000000000000aa" },
];

describe("op writer", () => {
  it("writes the bytes of encodeOps over recordToOp: signed, unsigned, tombstones, unicode", () => {
    const records = ops.map(opToRecord);
    const bytes = encodeRecordsAsOps(records);
    assert.deepStrictEqual(bytes, throughOps(records));
    assert.deepStrictEqual(bytes, encodeOps(ops)); // and of the ops the records came from
  });

  it("writes a range of the records, and an empty batch", () => {
    const records = ops.map(opToRecord);
    assert.deepStrictEqual(encodeRecordsAsOps(records, 2, 6), throughOps(records.slice(2, 6)));
    assert.deepStrictEqual(encodeRecordsAsOps(records, 3, 3), encodeOps([]));
    assert.deepStrictEqual(encodeRecordsAsOps([]), encodeOps([]));
  });

  it("writes records as the store gives them back (the sync sender's input)", async () => {
    const db = await open({ storage: "memory" });
    try {
      // Stored as they are (their sigs are test bytes, which applyOps would refuse).
      await storeOf(db).commit({
        records: ops.map((op) =>
          opToRecord({ ...op, state: op.state === "ffffffffffffffff" ? ops[0].state : op.state })
        ),
      });
      await db.put("plain", { a: 1, b: "two", c: null, d: { e: true } });
      const keys = [...ops.map(({ soul, field }) => ({ soul, field })), { soul: "plain", field: "a" }, {
        soul: "plain",
        field: "c",
      }, { soul: "plain/d", field: "e" }];
      const found = (await db.readFields(keys)).filter((r) => r !== undefined);
      assert.equal(found.length, keys.length);
      assert.ok(found.some((r) => r.sig !== undefined), "a signed record came back");
      assert.deepStrictEqual(encodeRecordsAsOps(found), throughOps(found));
    } finally {
      await db.close();
    }
  });

  it("agrees with encodeOps over recordToOp on random records", () => {
    const hex16 = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) =>
      Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
    );
    const name = fc.oneof(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.string({ unit: "grapheme", minLength: 1 }),
    )
      .filter((s) => !["__proto__", "constructor", "prototype"].includes(s));
    const value = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: "grapheme", maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      name.map((s) => ({ "#": s })),
    );
    const op = fc.record({
      soul: name,
      field: name,
      value,
      state: hex16,
      actor: hex16,
      sig: fc.option(fc.uint8Array({ minLength: 1, maxLength: 100 }), { nil: undefined }),
    }).map(({ sig, ...o }) => (sig === undefined ? o : { ...o, sig }) as Op);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 20 }), (batch) => {
        const records = batch.map(opToRecord);
        assert.deepStrictEqual(encodeRecordsAsOps(records), throughOps(records));
      }),
      fcParams(2_000),
    );
  });
});
