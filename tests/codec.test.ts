/** MessagePack subset and op encoding: round trips, frozen fixtures, hostile input. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode, type MsgValue } from "../core/msgpack.ts";
import { checkOpWords, decodeOps, encodeOps, type Op, OpWords } from "../core/op.ts";
import { isLowerHex16 } from "../core/clock.ts";
import { fcParams } from "./_seed.ts";

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// Frozen: written by encodeOps in format version 1. Never regenerate; a change here breaks stored data and peers.
const FIXTURE_HEX =
  "980195a5616c696365a46e616d65a5416c696365c408018bcfe568000001c4080123456789abcdef95a5616c696365" +
  "a36167652ac408018bcfe568000001c4080123456789abcdef95a5616c696365a370657481a123a9616c6963652f706574c408018bcf" +
  "e568000002c4080123456789abcdef95a9616c6963652f706574a4676f6e65c0c408018bcfe568010000c408fedcba987654321096a3" +
  "62696ea162c4030001ffc4080000000000000000c4080000000000000000c402090995aac3bc6ec3af2ff09f9880a2cf80cbbff80000" +
  "00000000c408ffffffffffffffffc408ffffffffffffffff95a174a3796573c3c408018bcfe568000003c4080123456789abcdef";
const FIXTURE_OPS: Op[] = [
  { soul: "alice", field: "name", value: "Alice", state: "018bcfe568000001", actor: "0123456789abcdef" },
  { soul: "alice", field: "age", value: 42, state: "018bcfe568000001", actor: "0123456789abcdef" },
  {
    soul: "alice",
    field: "pet",
    value: { "#": "alice/pet" },
    state: "018bcfe568000002",
    actor: "0123456789abcdef",
  },
  { soul: "alice/pet", field: "gone", value: null, state: "018bcfe568010000", actor: "fedcba9876543210" },
  {
    soul: "bin",
    field: "b",
    value: new Uint8Array([0, 1, 255]),
    state: "0000000000000000",
    actor: "0000000000000000",
    sig: new Uint8Array([9, 9]),
  },
  { soul: "ünï/😀", field: "π", value: -1.5, state: "ffffffffffffffff", actor: "ffffffffffffffff" },
  { soul: "t", field: "yes", value: true, state: "018bcfe568000003", actor: "0123456789abcdef" },
];

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

describe("op encoding", () => {
  it("decodes the frozen version-1 fixture and re-encodes it byte for byte", () => {
    const bytes = fromHex(FIXTURE_HEX);
    assert.deepStrictEqual(decodeOps(bytes), FIXTURE_OPS);
    assert.equal(toHex(encodeOps(FIXTURE_OPS)), FIXTURE_HEX);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    assert.deepStrictEqual(decodeOps(shifted.subarray(3)), FIXTURE_OPS, "at a non-zero byte offset");
  });

  it("rejects every truncation of a valid encoding", () => {
    const bytes = fromHex(FIXTURE_HEX);
    for (let n = 0; n < bytes.length; n++) assert.throws(() => decodeOps(bytes.subarray(0, n)), SyntaxError);
  });

  it("rejects wrong versions, shapes and invalid ops, returning nothing", () => {
    const op = (t: MsgValue[]) => encode([1, t]);
    const st = fromHex("018bcfe568000001"), ac = fromHex("0123456789abcdef");
    const cases: [Uint8Array, RegExp][] = [
      [encode([2]), /unsupported format version 2/],
      [encode({ v: 1 } as MsgValue), /not a versioned op list/],
      [encode([1, "x"]), /not an op tuple/],
      [op(["s", "f", 1, st]), /not an op tuple/],
      [op(["s", "f", 1, st.subarray(0, 7), ac]), /state is not 8 bytes/],
      [op(["s", "f", 1, st, "actor"]), /actor is not 8 bytes/],
      [op(["", "f", 1, st, ac]), /soul must not be empty/],
      [op(["s", "__proto__", 1, st, ac]), /reserved/],
      [op(["s", "constructor", 1, st, ac]), /reserved/],
      [op(["s", "f", [1, 2], st, ac]), /field value must be/],
      [op(["s", "f", { "#": 5 } as MsgValue, st, ac]), /not .*link|field value/],
      [op(["s", "f", { a: 1 } as MsgValue, st, ac]), /field value/],
      [op(["x".repeat(513), "f", 1, st, ac]), /at most 512 bytes/],
      [op(["s", "f", 1, st, ac, "sig"]), /sig is not bytes/],
    ];
    for (const [bytes, re] of cases) assert.throws(() => decodeOps(bytes), re);
    assert.throws(() => decodeOps(new Uint8Array(2048), 1024), RangeError);
  });

  it("keeps a leading U+FEFF in strings, souls and fields (not a byte order mark)", () => {
    assert.equal(decode(encode("\uFEFFé")), "\uFEFFé");
    assert.equal(decode(encode("\uFEFF")), "\uFEFF");
    const op: Op = {
      soul: "\uFEFFs",
      field: "\uFEFFf",
      value: "\uFEFFv",
      state: "018bcfe568000001",
      actor: "00000000000000ab",
    };
    assert.deepStrictEqual(decodeOps(encodeOps([op])), [op]);
  });

  it("round-trips random ops", () => {
    const hex16 = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(toHex);
    const valueArb = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string(),
      fc.uint8Array(),
      fc.string({ minLength: 1 }).map((s) => ({ "#": s })),
    );
    const opArb = fc.record({
      soul: fc.string({ minLength: 1, maxLength: 20 }),
      field: fc.string({ minLength: 1, maxLength: 10 }).filter((f) =>
        !["__proto__", "constructor", "prototype"].includes(f)
      ),
      value: valueArb,
      state: hex16,
      actor: hex16,
    });
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 8 }), (ops) => {
        assert.deepStrictEqual(decodeOps(encodeOps(ops)), ops.map((op) => ({ ...op })));
      }),
      fcParams(2_000),
    );
  });
});

describe("encodeOps", () => {
  it("writes the bytes of the generic encoder for the same tuples", () => {
    const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    const hexLike = fc.oneof(
      fc.uint8Array({ minLength: 8, maxLength: 8 }).map(toHex),
      fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => toHex(b).toUpperCase()),
      fc.string({ maxLength: 18 }), // not an id: still written as parseInt reads it
    );
    const opArb = fc.record({
      soul: fc.string(),
      field: fc.string(),
      value: fc.oneof(
        fc.constant(null),
        fc.boolean(),
        fc.double(),
        fc.integer(),
        fc.string({ unit: "grapheme", maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.string().map((s) => ({ "#": s })),
      ),
      state: hexLike,
      actor: hexLike,
      sig: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
    });
    const bytes8 = (hex: string) => {
      const out = new Uint8Array(8);
      for (let i = 0; i < 8; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      return out;
    };
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 20 }), (ops) => {
        const tuples: MsgValue[] = ops.map((op) => {
          const t: MsgValue[] = [op.soul, op.field, op.value as MsgValue, bytes8(op.state), bytes8(op.actor)];
          if (op.sig) t.push(op.sig);
          return t;
        });
        assert.deepStrictEqual(encodeOps(ops as Op[]), encode([1, ...tuples]));
      }),
      fcParams(3_000),
    );
  });
});

describe("isLowerHex16", () => {
  it("accepts exactly what /^[0-9a-f]{16}$/ accepts", () => {
    const re = /^[0-9a-f]{16}$/;
    const hexish = fc.string({
      unit: fc.constantFrom(..."0123456789abcdefABCDEF/:`g@G \u0660"),
      minLength: 14,
      maxLength: 18,
    });
    fc.assert(
      fc.property(fc.oneof(hexish, fc.string(), fc.anything()), (s) => {
        assert.equal(
          isLowerHex16(s),
          typeof s === "string" && re.test(s),
          String(typeof s === "string" ? s : typeof s),
        );
      }),
      fcParams(20_000),
    );
  });
});

describe("checkOpWords", () => {
  it("checks states and actors as the regex does and reads their words, reusing a repeated actor", () => {
    const hexish = fc.oneof(
      fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) =>
        Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
      ),
      fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEFg/ "), minLength: 15, maxLength: 17 }),
      fc.constant("00000000000000ab"),
    );
    const re = /^[0-9a-f]{16}$/;
    const words = new OpWords(); // shared across cases: a repeated actor takes the cached path
    fc.assert(
      fc.property(hexish, fc.oneof(hexish, fc.constant(7)), (state, actor) => {
        const op = { soul: "s", field: "f", value: 1, state, actor };
        const expected = !re.test(state)
          ? `Op state must be 16 hex digits, got ${JSON.stringify(state)}`
          : typeof actor !== "string" || !re.test(actor)
          ? `Op actor must be 16 hex digits, got ${JSON.stringify(actor)}`
          : undefined;
        let got: string | undefined;
        try {
          checkOpWords(op, words);
        } catch (e) {
          got = (e as Error).message;
        }
        assert.equal(got, expected);
        if (expected === undefined) {
          assert.deepEqual([words.stateHi, words.stateLo], [
            parseInt(state.slice(0, 8), 16),
            parseInt(state.slice(8), 16),
          ]);
          const a = actor as string;
          assert.deepEqual([words.actorHi, words.actorLo, words.actor], [
            parseInt(a.slice(0, 8), 16),
            parseInt(a.slice(8), 16),
            a,
          ]);
        }
      }),
      fcParams(20_000),
    );
  });
});
