/** core/op.ts, op encoding: round trips, the frozen version-1 fixture, hostile input, op words. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode, type MsgValue } from "../core/msgpack.ts";
import { checkOpWords, decodeOps, encodeOps, type Op, OpWords } from "../core/op.ts";
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
