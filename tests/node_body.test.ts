/**
 * The SQLite engine's node rows (storage/node_body.ts): bodies round-trip
 * every part of every record, malformed bodies are refused, and merging
 * keeps the record with the higher seq per field.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeBody, encodeBody, mergeNode, nodeSeq } from "../storage/node_body.ts";
import type { StoredRecord } from "../storage/store.ts";

const rec = (field: string, seq: number, extra: Partial<StoredRecord> = {}): StoredRecord => ({
  soul: "s",
  field,
  value: new Uint8Array([seq & 255, 1]),
  sh: 0xffffffff,
  sl: seq % 2 ** 32,
  ah: 0,
  al: 0x80000000,
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

  it("merges by seq: higher wins per field, new fields sorted in, nothing to do reported", () => {
    const stored = [rec("b", 5), rec("d", 9)];
    const merged = mergeNode(stored, new Map([["d", rec("d", 7)], ["a", rec("a", 10)], ["b", rec("b", 11)]]));
    assert.deepEqual(merged?.map((r) => [r.field, r.seq]), [["a", 10], ["b", 11], ["d", 9]]);
    assert.equal(mergeNode(stored, new Map([["b", rec("b", 5)], ["d", rec("d", 1)]])), undefined);
    assert.deepEqual(
      mergeNode([], new Map([["z", rec("z", 1)], ["y", rec("y", 2)]]))?.map((r) => r.field),
      ["y", "z"],
    );
  });
});
