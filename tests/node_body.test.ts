/**
 * The SQLite engine's node rows (storage/node_body.ts): bodies round-trip
 * every part of every record, malformed bodies are refused, and merging
 * keeps the record with the higher seq per field.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Value } from "../core/value.ts";
import { encodeValue, nodeData } from "../core/value_encoding.ts";
import {
  bodyData,
  bodyLive,
  decodeBody,
  encodeBody,
  mergeNode,
  nodeSeq,
  recordsLive,
  sortFields,
} from "../storage/node_body.ts";
import { fcParams } from "./_seed.ts";
import type { StoredRecord } from "../core/store.ts";

const rec = (field: string, seq: number, extra: Partial<StoredRecord> = {}): StoredRecord => ({
  soul: "s",
  field,
  value: new Uint8Array([seq & 255, 1]),
  stateHi: 0xffffffff,
  stateLo: seq % 2 ** 32,
  actorHi: 0,
  actorLo: 0x80000000,
  seq,
  ...extra,
});

const plain = (rs: StoredRecord[]) =>
  rs.map((r) => ({ ...r, value: [...r.value], sig: r.sig && [...r.sig] }));

describe("node bodies", () => {
  it("round-trip records: unicode and long field names, sigs, empty and large values, seqs up to 2^53", () => {
    const records = [
      rec("", 1),
      rec("a", 2 ** 53 - 1, { sig: new Uint8Array(64).fill(7) }),
      rec("a\u0000b", 127, { value: new Uint8Array(0) }),
      rec("b".repeat(300), 128, { sig: new Uint8Array(0) }),
      rec("ß", 16384, { value: new Uint8Array(70_000).fill(3) }),
      rec("😀", 2 ** 31),
    ];
    const body = encodeBody(records);
    assert.deepEqual(plain(decodeBody("s", body)), plain(records));
    assert.equal(nodeSeq(records), 2 ** 53 - 1);
    assert.deepEqual(decodeBody("s", encodeBody([])), []);
  });

  it("refuses truncated bodies, trailing bytes and unknown formats", () => {
    const body = encodeBody([rec("a", 1, { sig: new Uint8Array([1]) }), rec("b", 2)]);
    for (let cut = 0; cut < body.length; cut++) {
      assert.throws(() => decodeBody("s", body.subarray(0, cut)), RangeError, `cut at ${cut}`);
    }
    const longer = new Uint8Array(body.length + 1);
    longer.set(body);
    assert.throws(() => decodeBody("s", longer), /trailing bytes/);
    const other = body.slice();
    other[0] = 2;
    assert.throws(() => decodeBody("s", other), /body format 2/);
  });

  it("decodes bodies straight to data as nodeData(decodeBody(...)) does, tombstones left out", () => {
    const value: fc.Arbitrary<Value> = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: "grapheme", maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.string({ minLength: 1 }).map((s) => ({ "#": s })),
    );
    const fields = fc.uniqueArray(
      fc.record({
        field: fc.oneof(
          fc.string({ maxLength: 8 }),
          fc.constantFrom("f0", "f1", "__proto__", "\uFEFFx", "ß"),
        ),
        value,
        sig: fc.option(fc.uint8Array({ maxLength: 70 }), { nil: undefined }),
      }),
      { selector: (f) => f.field, maxLength: 12 },
    );
    fc.assert(
      fc.property(fields, (list) => {
        const records = list.map((f, i) => rec(f.field, i + 1, { value: encodeValue(f.value), sig: f.sig }));
        const body = encodeBody(records);
        const data = bodyData("s", body);
        assert.deepStrictEqual(data, nodeData(decodeBody("s", body)));
        // Whether it has a live field, read only as far as the first one.
        assert.equal(bodyLive("s", body), data !== undefined);
        assert.equal(recordsLive(records), data !== undefined);
        if (data !== undefined) assert.equal(Object.getPrototypeOf(data), Object.prototype);
      }),
      fcParams(3_000),
    );
    const body = encodeBody([
      rec("a", 1, { value: encodeValue("x"), sig: new Uint8Array([1]) }),
      rec("b", 2, { value: encodeValue(7) }),
    ]);
    for (let cut = 0; cut < body.length; cut++) {
      assert.throws(() => bodyData("s", body.subarray(0, cut)), RangeError, `cut at ${cut}`);
    }
    assert.throws(() => bodyData("s", Uint8Array.of(...body, 0)), /trailing bytes/);
  });

  it("merges by seq: higher wins per field, new fields sorted in, nothing to do reported", () => {
    const stored = [rec("b", 5), rec("d", 9)];
    const merged = mergeNode(stored, new Map([["d", rec("d", 7)], ["a", rec("a", 10)], ["b", rec("b", 11)]]));
    assert.deepEqual(merged?.map((r) => [r.field, r.seq]), [["a", 10], ["b", 11], ["d", 9]]);
    assert.equal(mergeNode(stored, new Map([["b", rec("b", 5)], ["d", rec("d", 1)]])), undefined);
    assert.deepEqual(
      mergeNode([], new Map([["z", rec("z", 1)], ["y", rec("y", 2)]]))?.map((r) => r.field),
      ["y", "z"],
    );
    // Incoming records as an array in field order: the same merge.
    const list = [rec("a", 10), rec("b", 11), rec("d", 7)];
    assert.deepEqual(mergeNode(stored, list)?.map((r) => [r.field, r.seq]), [["a", 10], ["b", 11], ["d", 9]]);
    assert.equal(mergeNode(stored, [rec("b", 5), rec("d", 1)]), undefined);
    assert.equal(mergeNode([], list), list, "a new node's ordered records as they are");
  });

  it("sorts a node's records by field, keeping the later of two for a field", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom("a", "b", "é", "z", "aa", ""), { maxLength: 12 }), (fields) => {
        const records = fields.map((f, i) => rec(f, i + 1));
        const expected = new Map<string, StoredRecord>();
        for (const r of records) expected.set(r.field, r);
        const sorted = sortFields(records.slice());
        assert.deepEqual(
          sorted.map((r) => [r.field, r.seq]),
          [...expected.values()].sort((x, y) => (x.field < y.field ? -1 : 1)).map((r) => [r.field, r.seq]),
        );
      }),
      fcParams(2_000),
    );
  });
});
