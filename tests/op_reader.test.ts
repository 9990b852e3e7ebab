/**
 * The fast op reader (core/op_reader.ts) against the general decoder: the
 * same records whenever it reads a batch, the fast path taken for what
 * Lattice's encoder writes, and hostile or unusual bytes left to the general
 * path (which then accepts or throws as it always did).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { opToRecord } from "../core/database.ts";
import { decode, encode, type MsgValue } from "../core/msgpack.ts";
import { decodeOpRecords, decodeOps, decodeOpsTree, encodeOps, type Op } from "../core/op.ts";
import { readOpRecords } from "../core/op_reader.ts";
import type { FieldRecord } from "../core/store.ts";
import { fcParams, prng, SEED } from "./_seed.ts";

const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const hex16 = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(toHex);
const name = fc.oneof(
  fc.string({ minLength: 1, maxLength: 12 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }),
  fc.constantFrom("f0", "f1", "name", "n0000001", "n0000002"),
).filter((s) => !["__proto__", "constructor", "prototype"].includes(s));

/** Values whose canonical encoding the fast path reads (no str32 or bin32). */
const fastValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -0x80000000, max: 0xffffffff }),
  fc.maxSafeInteger(),
  fc.constantFrom(
    2 ** 32,
    2 ** 32 - 1,
    -(2 ** 31),
    -(2 ** 31) - 1,
    2 ** 53 - 1,
    -(2 ** 53 - 1),
    1.7e12,
    -(2 ** 32),
  ),
  fc.constantFrom(0, -0, 31, 32, -32, -33, 127, 128, 255, 256, 65535, 65536, -128, -129, -32768, -32769, 0.5),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((v) =>
    !Number.isSafeInteger(v) || v === 0 ||
    Math.abs(v) <= 0xffffffff / 2
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
  name.map((s) => ({ "#": s })),
);

const opArb = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Op> =>
  fc.record({
    soul: name,
    field: name,
    value,
    state: hex16,
    actor: fc.oneof(hex16, fc.constant("00000000000000ab")),
    sig: fc.option(fc.uint8Array({ minLength: 1, maxLength: 300 }), { nil: undefined }),
  }).map((o) => {
    const { sig, ...op } = o;
    return (sig === undefined ? op : { ...op, sig }) as Op;
  });

/** What the general path makes of `bytes` (the MessagePack tree's ops, then the record of each). */
const general = (bytes: Uint8Array): FieldRecord[] => decodeOpsTree(bytes).map(opToRecord);

/** Records with their byte fields as plain arrays (so that views and copies compare equal). */
const plain = (records: readonly FieldRecord[]) =>
  records.map((r) => ({ ...r, value: [...r.value], ...(r.sig ? { sig: [...r.sig] } : {}) }));

describe("op reader", () => {
  it("reads every batch Lattice encodes, giving the general path's records", () => {
    fc.assert(
      fc.property(fc.array(opArb(fastValue), { minLength: 1, maxLength: 12 }), (ops) => {
        const bytes = encodeOps(ops);
        const fast = readOpRecords(bytes, 1);
        assert.ok(fast !== undefined, "the fast path refused a canonical batch");
        assert.deepStrictEqual(plain(fast), plain(general(bytes)));
      }),
      fcParams(5_000),
    );
  });

  it("decodeOps gives the ops of the general decoder, through the fast reader or not", () => {
    const random = prng(SEED ^ 0x0d5);
    fc.assert(
      fc.property(fc.array(opArb(fastValue), { minLength: 1, maxLength: 8 }), (ops) => {
        const valid = encodeOps(ops);
        const flipped = valid.slice();
        flipped[Math.floor(random() * flipped.length)] = Math.floor(random() * 256);
        for (const bytes of [valid, flipped]) {
          let expected: unknown, got: unknown;
          try {
            expected = decodeOpsTree(bytes);
          } catch (e) {
            expected = `${(e as Error).name}: ${(e as Error).message}`;
          }
          try {
            got = decodeOps(bytes);
          } catch (e) {
            got = `${(e as Error).name}: ${(e as Error).message}`;
          }
          assert.deepStrictEqual(got, expected);
        }
        assert.ok(readOpRecords(valid, 1) !== undefined);
      }),
      fcParams(3_000),
    );
  });

  it("reads runs of one node's fields and one writer (the names reused)", () => {
    const ops: Op[] = [];
    for (let i = 0; i < 500; i++) {
      ops.push({
        soul: `n${String(i >> 3).padStart(7, "0")}`,
        field: `f${i & 7}`,
        value: i * 7 - 1000,
        state: (0x18bcfe568000000 + i).toString(16).padStart(16, "0"),
        actor: i % 100 === 99 ? "0123456789abcdef" : "00000000000000ab",
      });
    }
    const bytes = encodeOps(ops);
    const fast = readOpRecords(bytes, 1)!;
    assert.deepStrictEqual(plain(fast), plain(general(bytes)));
    assert.equal(fast[1].soul, fast[0].soul);
  });

  it("never accepts bytes the general path rejects, nor reads them differently", () => {
    const random = prng(SEED);
    fc.assert(
      fc.property(fc.array(opArb(fastValue), { minLength: 1, maxLength: 6 }), fc.nat(), (ops, seed) => {
        const valid = encodeOps(ops);
        const next = prng(seed ^ (random() * 0x7fffffff));
        // one to three bytes changed, the end cut, or a byte appended
        const variants: Uint8Array[] = [valid.subarray(0, valid.length - 1), Uint8Array.of(...valid, 0xc0)];
        const flipped = valid.slice();
        for (let k = 1 + Math.floor(next() * 3); k > 0; k--) {
          flipped[Math.floor(next() * flipped.length)] = Math.floor(next() * 256);
        }
        variants.push(flipped);
        for (const bytes of variants) {
          const fast = readOpRecords(bytes, 1);
          let expected: FieldRecord[] | Error;
          try {
            expected = general(bytes);
          } catch (e) {
            expected = e as Error;
          }
          if (fast === undefined) continue; // left to the general path
          assert.ok(
            !(expected instanceof Error),
            `fast path accepted bytes the general path rejects: ${expected}`,
          );
          assert.deepStrictEqual(plain(fast), plain(expected));
        }
      }),
      fcParams(5_000),
    );
  });

  it("leaves valid but unusual encodings to the general path, which reads them", () => {
    const st = Uint8Array.of(1, 0x8b, 0xcf, 0xe5, 0x68, 0, 0, 1), ac = new Uint8Array(8);
    const batch = (value: MsgValue): Uint8Array => encode([1, ["s", "f", value, st, ac]]);
    // 5 as uint8, 1 as a float64, 5 as uint64, -5 as int64, a long string as str32
    const uint8Five = (() => {
      const b = batch(0);
      const at = b.indexOf(0x00, 6); // the value byte after "s", "f"
      return Uint8Array.of(...b.subarray(0, at), 0xcc, 5, ...b.subarray(at + 1));
    })();
    const cases: [Uint8Array, unknown][] = [
      [uint8Five, 5],
      [
        Uint8Array.of(
          ...batch(0.5).subarray(0, 7),
          0xcb,
          0x3f,
          0xf0,
          0,
          0,
          0,
          0,
          0,
          0,
          ...batch(0.5).subarray(16),
        ),
        1,
      ],
      [Uint8Array.of(...batch(0).subarray(0, 7), 0xcf, 0, 0, 0, 0, 0, 0, 0, 5, ...batch(0).subarray(8)), 5],
      [
        Uint8Array.of(
          ...batch(0).subarray(0, 7),
          0xd3,
          255,
          255,
          255,
          255,
          255,
          255,
          255,
          0xfb,
          ...batch(0).subarray(8),
        ),
        -5,
      ],
      [batch("x".repeat(70_000)), "x".repeat(70_000)],
    ];
    for (const [bytes, value] of cases) {
      assert.equal(readOpRecords(bytes, 1), undefined);
      const records = decodeOpRecords(bytes);
      assert.deepStrictEqual(decode(records[0].value), value);
      assert.deepStrictEqual(plain(records), plain(general(bytes)));
    }
  });

  it("leaves invalid ops to the general path, whose errors they keep", () => {
    const st = "018bcfe568000001", ac = "00000000000000ab";
    const bad: [Op, RegExp][] = [
      [{ soul: "s", field: "__proto__", value: 1, state: st, actor: ac }, /reserved/],
      [{ soul: "s".repeat(600), field: "f", value: 1, state: st, actor: ac }, /at most 512 bytes/],
      [{ soul: "s", field: "f", value: { "#": "" }, state: st, actor: ac }, /must not be empty/],
    ];
    for (const [op, re] of bad) {
      const bytes = encode([1, [
        op.soul,
        op.field,
        op.value as MsgValue,
        new Uint8Array(8),
        new Uint8Array(8),
      ]]);
      assert.equal(readOpRecords(bytes, 1), undefined);
      assert.throws(() => decodeOpRecords(bytes), re);
    }
    // a string value of invalid UTF-8 (an encoded surrogate), put in place of "abc"
    const abc = encode([1, ["s", "f", "abc", new Uint8Array(8), new Uint8Array(8)]]);
    const at = abc.indexOf(0xa3, 5);
    const surrogate = abc.slice();
    surrogate.set([0xed, 0xa0, 0x80], at + 1);
    assert.equal(readOpRecords(surrogate, 1), undefined);
    assert.throws(() => decodeOpRecords(surrogate), /UTF-8/);
    assert.throws(
      () => decodeOpRecords(encode([1, ["s", "f", Infinity, new Uint8Array(8), new Uint8Array(8)]])),
      /finite/,
    );
  });
});
