/** core/msgpack.ts, the MessagePack subset: round trips, canonical bytes, hostile input. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode, type MsgValue } from "../core/msgpack.ts";
import { fcParams } from "./_seed.ts";

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const msgArb: fc.Arbitrary<MsgValue> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.string({ unit: "grapheme" }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string().filter((k) => k !== "__proto__"), tie("value"), { maxKeys: 5 }),
  ),
})).value as fc.Arbitrary<MsgValue>;

/** Plain-object view of decoded maps (they decode with a null prototype). */
function plain(v: MsgValue): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

describe("msgpack", () => {
  it("round-trips random values, canonically", () => {
    fc.assert(
      fc.property(msgArb, (v) => {
        const bytes = encode(v);
        const back = decode(bytes);
        assert.deepStrictEqual(plain(back), plain(v));
        assert.deepEqual(encode(back), bytes);
      }),
      fcParams(2_000),
    );
  });

  it("keeps -0, uses the shortest integer forms, and limits safe integers", () => {
    assert.ok(Object.is(decode(encode(-0)), -0));
    assert.equal(encode(5).length, 1);
    assert.equal(encode(-5).length, 1);
    assert.equal(encode(300).length, 3);
    assert.equal(decode(encode(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
    assert.throws(() => decode(fromHex("cfffffffffffffffff")), /safe range/);
  });

  it("writes and reads 64-bit integers as two's complement, up to ±(2^53 - 1)", () => {
    const known: [number, string][] = [
      [2 ** 32, "cf0000000100000000"],
      [1.7e12, "cf0000018bcfe56800"],
      [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"],
      [-(2 ** 31) - 1, "d3ffffffff7fffffff"],
      [-(2 ** 40), "d3ffffff0000000000"],
      [Number.MIN_SAFE_INTEGER, "d3ffe0000000000001"],
    ];
    for (const [v, hex] of known) {
      assert.equal(toHex(encode(v)), hex, String(v));
      assert.equal(decode(fromHex(hex)), v, hex);
    }
    // Non-canonical but valid: small values in the 64-bit forms.
    assert.equal(decode(fromHex("cf0000000000000005")), 5);
    assert.equal(decode(fromHex("d3fffffffffffffffb")), -5);
    assert.equal(decode(fromHex("d3001fffffffffffff")), Number.MAX_SAFE_INTEGER);
    for (
      const hex of ["cf0020000000000000", "d3ffe0000000000000", "d3ff00000000000000", "d30020000000000000"]
    ) {
      assert.throws(() => decode(fromHex(hex)), /at byte 1: integer outside the safe range/, hex);
    }
  });

  it("rejects hostile input with clear errors", () => {
    const cases: [string, RegExp][] = [
      ["", /truncated/],
      ["c1", /unsupported type byte 0xc1/],
      ["d4000000", /unsupported type byte 0xd4/], // fixext: extension types are refused
      ["c7000000", /unsupported type byte 0xc7/],
      ["a3616263ff", /1 trailing bytes/],
      ["a5616263", /truncated/],
      ["c4ff00", /truncated/],
      ["ddffffffff", /exceeds the input/],
      ["dfffffffff", /exceeds the input/],
      ["81a95f5f70726f746f5f5f01", /__proto__/],
      ["82a16101a16102", /duplicate map key "a"/],
      ["8101c0", /not a string/],
      ["a2c328", /invalid UTF-8/],
    ];
    for (const [hex, re] of cases) assert.throws(() => decode(fromHex(hex)), re, hex);
    assert.throws(() => decode(fromHex("91".repeat(100) + "c0")), /nesting deeper than 32/);
    assert.throws(() => decode(new Uint8Array(100), { maxBytes: 10 }), RangeError);
    assert.throws(() => encode(undefined as unknown as MsgValue), TypeError);
  });

  it("never returns objects with a polluted prototype", () => {
    const v = decode(fromHex("81ab636f6e7374727563746f7201")) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), null);
    assert.equal(v.constructor, 1);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
