/** decodeValue's fast path for scalars: same values and same errors as the general decoder. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode, type MsgValue } from "../core/msgpack.ts";
import { ByteWriter } from "../core/byte_writer.ts";
import { MAX_VALUE_BYTES, type Value } from "../core/value.ts";
import {
  decodeValue,
  decodeValueAt,
  encodeValue,
  setSmallValueMemory,
  valueFromMsg,
  writeValue,
} from "../core/value_encoding.ts";
import { fcParams } from "./_seed.ts";

const fromHex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** The general decoder, as decodeValue called it before the fast path: the reference. */
const slowDecode = (b: Uint8Array): Value =>
  valueFromMsg(decode(b, { maxDepth: 1, maxBytes: MAX_VALUE_BYTES + 16 }));

type Outcome = { value: Value } | { error: { class: unknown; name: string; message: string } };

function outcome(f: () => Value): Outcome {
  try {
    return { value: f() };
  } catch (e) {
    const err = e as Error;
    return { error: { class: err.constructor, name: err.name, message: err.message } };
  }
}

/** Asserts decodeValue returns what the general decoder returns, or throws the same error. */
function assertSameAsSlow(bytes: Uint8Array): void {
  const fast = outcome(() => decodeValue(bytes));
  const slow = outcome(() => slowDecode(bytes));
  assert.deepStrictEqual(fast, slow, toHex(bytes));
}

/** Integers on both sides of every width boundary of the encoding, up to and past ±2^53. */
const EDGES: number[] = [
  0,
  0x7f,
  0x80,
  0xff,
  0x100,
  0xffff,
  0x10000,
  0xffffffff,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
]
  .flatMap((n) => [n - 1, n, n + 1])
  .flatMap((n) => [n, -n])
  .concat([-32, -33, -0x80, -0x81, -0x8000, -0x8001, -0x80000000, -0x80000001, 2 ** 52, -(2 ** 52)]);

const wellFormed = (s: string): boolean => s.isWellFormed();

const valueArb: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.integer({ min: -40, max: 300 }),
  fc.maxSafeInteger(),
  fc.constantFrom(...EDGES),
  fc.integer({ min: 0, max: 2 ** 21 - 1 }).chain((hi) =>
    fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((lo) => hi * 2 ** 32 + lo) // uint64 form
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.float({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, 0.1, -1.5, Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** 53 + 2),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 80 }).filter(wellFormed),
  fc.string({ unit: "grapheme-ascii", minLength: 25, maxLength: 300 }),
  fc.string({ unit: "grapheme", minLength: 20, maxLength: 120 }),
  fc.uint8Array({ maxLength: 300 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 40 }).filter(wellFormed).map((s) => ({ "#": s })),
);

describe("decodeValue", () => {
  it("round-trips random values, equal to the general decoder", () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        const bytes = encodeValue(v);
        const back = decodeValue(bytes);
        assert.deepStrictEqual(back, slowDecode(bytes), toHex(bytes));
        assert.deepStrictEqual(back, v, toHex(bytes));
        // At a non-zero offset in a larger buffer, with bytes around it.
        const shifted = new Uint8Array(bytes.length + 5).fill(0xc1);
        shifted.set(bytes, 3);
        assert.deepStrictEqual(decodeValue(shifted.subarray(3, 3 + bytes.length)), back);
      }),
      fcParams(25_000),
    );
  });

  it("encodes as msgpack's general encoder does, whole or appended to a buffer", () => {
    const w = new ByteWriter(16);
    fc.assert(
      fc.property(valueArb, fc.integer({ min: 0, max: 40 }), (v, pad) => {
        const want = encode(v as MsgValue);
        assert.deepEqual(encodeValue(v), want);
        // Appended after other bytes, which stay as they were.
        w.pos = 0;
        w.ensure(pad);
        for (let i = 0; i < pad; i++) w.buf[i] = 0xc1;
        w.pos = pad;
        writeValue(w, v);
        assert.equal(w.pos, pad + want.length);
        assert.deepEqual(w.buf.subarray(pad, w.pos), want);
        assert.ok(w.buf.subarray(0, pad).every((b) => b === 0xc1));
      }),
      fcParams(25_000),
    );
  });

  it("gives the same bytes with either small-value memory; 'own' gives each value a buffer of its own", () => {
    const values: Value[] = [null, true, 7, 300, 70_000, "abc", "é", -1.5, new Uint8Array([1, 2])];
    try {
      for (const memory of ["slab", "own"] as const) {
        setSmallValueMemory(memory);
        for (const v of values) {
          const e = encodeValue(v);
          assert.deepEqual(e, encode(v as MsgValue), `${memory} ${String(v)}`);
          if (memory === "own") assert.equal(e.buffer.byteLength, e.byteLength, String(v));
        }
        // Short encodings come from slabs in "slab" mode: two values share one buffer.
        if (memory === "slab") assert.equal(encodeValue(1).buffer, encodeValue(2).buffer);
      }
      assert.throws(() => setSmallValueMemory("heap" as "own"), RangeError);
    } finally {
      setSmallValueMemory("slab");
    }
  });
  it("keeps the sign of -0", () => {
    assert.ok(Object.is(decodeValue(encodeValue(-0)), -0));
    assert.ok(Object.is(decodeValue(fromHex("cb8000000000000000")), -0));
    assert.ok(Object.is(decodeValue(fromHex("ca80000000")), -0));
    assert.ok(Object.is(decodeValue(encodeValue(0)), 0));
  });

  it("decodes every short form, canonical or not, to known values", () => {
    const cases: [string, Value][] = [
      ["c0", null],
      ["c2", false],
      ["c3", true],
      ["00", 0],
      ["7f", 127],
      ["ff", -1],
      ["e0", -32],
      ["cc05", 5],
      ["ccff", 255],
      ["cdffff", 65535],
      ["cd0100", 256],
      ["ce80000000", 2 ** 31],
      ["ceffffffff", 2 ** 32 - 1],
      ["cf0000000100000000", 2 ** 32],
      ["cf001fffffffffffff", Number.MAX_SAFE_INTEGER],
      ["cf00000000ffffffff", 2 ** 32 - 1],
      ["d0ff", -1],
      ["d080", -128],
      ["d07f", 127],
      ["d18000", -32768],
      ["d17fff", 32767],
      ["d280000000", -(2 ** 31)],
      ["d27fffffff", 2 ** 31 - 1],
      ["d3ffffffff7fffffff", -(2 ** 31) - 1],
      ["d3ffe0000000000001", Number.MIN_SAFE_INTEGER],
      ["d3001fffffffffffff", Number.MAX_SAFE_INTEGER],
      ["d3ffffffffffffffff", -1],
      ["d30000000000000000", 0],
      ["cbbff8000000000000", -1.5],
      ["cb3fb999999999999a", 0.1],
      ["cb7fefffffffffffff", Number.MAX_VALUE],
      ["cb0000000000000001", Number.MIN_VALUE],
      ["cb7ff8000000000000", NaN],
      ["cbfff0000000000000", -Infinity],
      ["ca3fc00000", 1.5],
      ["ca7f800000", Infinity],
      ["a0", ""],
      ["a3616263", "abc"],
      ["a2c3a9", "é"],
      ["a4f09f9880", "😀"],
      ["d900", ""],
      ["d903616263", "abc"],
      ["d920" + "61".repeat(32), "a".repeat(32)],
      ["d921" + "61".repeat(33), "a".repeat(33)],
      ["d9ff" + "7a".repeat(255), "z".repeat(255)],
      ["c400", new Uint8Array(0)],
      ["c40300017f", new Uint8Array([0, 1, 127])],
      ["81a123a3616263", { "#": "abc" }],
    ];
    for (const [hex, want] of cases) {
      assert.deepStrictEqual(decodeValue(fromHex(hex)), want, hex);
      assertSameAsSlow(fromHex(hex));
    }
  });

  it("returns bytes as a fresh copy, like the general decoder", () => {
    const bytes = fromHex("c403010203");
    const out = decodeValue(bytes) as Uint8Array;
    assert.ok(out instanceof Uint8Array);
    assert.notEqual(out.buffer, bytes.buffer);
    assert.equal(out.byteOffset, 0);
    bytes[2] = 9;
    assert.deepStrictEqual(out, new Uint8Array([1, 2, 3]));
  });

  it("throws exactly when the general decoder throws, with the same error, on random bytes", () => {
    // Biased so the type bytes of the fast path meet both their exact lengths and near misses.
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 12 }),
      fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 10 })).map(([t, rest]) =>
        Uint8Array.of(t, ...rest)
      ),
      fc.tuple(
        fc.constantFrom(0xc4, 0xd9, 0xc5, 0xda),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: -1, max: 1 }),
        fc.boolean(),
      ).chain(([t, len, off, ascii]) =>
        fc.uint8Array({ minLength: Math.max(0, len + off), maxLength: Math.max(0, len + off) }).map(
          (body) => {
            const head = t === 0xc5 || t === 0xda ? [t, 0, len] : [t, len];
            return Uint8Array.of(...head, ...(ascii ? body.map((x) => x & 0x7f) : body));
          },
        )
      ),
      fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: -1, max: 1 })).chain(([len, off]) =>
        fc.uint8Array({ minLength: Math.max(0, len + off), maxLength: Math.max(0, len + off) }) // fixstr, often invalid UTF-8
          .map((body) => Uint8Array.of(0xa0 | len, ...body))
      ),
      fc.tuple(fc.constantFrom(0xcf, 0xd3), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.boolean()).map(
        ([t, body, near]) => {
          if (near) { // high bytes all 0x00 or 0xff: values around ±2^53, where the safe range ends
            body[0] = body[0] & 1 ? 0xff : 0;
            body[1] = body[1] & 1 ? 0xff : 0;
          }
          return Uint8Array.of(t, ...body);
        },
      ),
    );
    fc.assert(fc.property(bytesArb, assertSameAsSlow), fcParams(25_000));
  });

  it("throws like the general decoder on every valid encoding cut short or followed by a byte", () => {
    fc.assert(
      fc.property(valueArb, fc.integer({ min: 0, max: 255 }), (v, extra) => {
        const bytes = encodeValue(v);
        assertSameAsSlow(bytes.subarray(0, bytes.length - 1));
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        longer[bytes.length] = extra;
        assertSameAsSlow(longer);
        if (bytes.length <= 20) {
          for (let n = 0; n < bytes.length - 1; n++) assertSameAsSlow(bytes.subarray(0, n));
        }
      }),
      fcParams(20_000),
    );
  });

  it("leaves long strings and bytes, 64-bit integers past 2^53 and non-Uint8Array input to the general decoder", () => {
    for (const n of [255, 256, 65535, 65536]) {
      for (const v of ["x".repeat(n), "é".repeat(n >> 1) + "!", new Uint8Array(n).fill(7)]) {
        const bytes = encodeValue(v);
        assert.deepStrictEqual(decodeValue(bytes), v);
        assertSameAsSlow(bytes);
        assertSameAsSlow(bytes.subarray(0, bytes.length - 1));
      }
    }
    for (
      const hex of ["cf0020000000000000", "cfffffffffffffffff", "d3ffe0000000000000", "d38000000000000000"]
    ) {
      assert.throws(() => decodeValue(fromHex(hex)), /safe range/);
      assertSameAsSlow(fromHex(hex));
    }
    for (const hex of ["", "c1", "a2c328", "d902c328", "91c0", "80", "81a123c0", "d400"]) {
      assertSameAsSlow(fromHex(hex));
    }
    const notBytes = [0xc0] as unknown as Uint8Array;
    assert.deepStrictEqual(outcome(() => decodeValue(notBytes)), outcome(() => slowDecode(notBytes)));
    assert.throws(() => decodeValue(notBytes), TypeError);
  });
});

describe("decodeValueAt", () => {
  const encodings = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: "grapheme", maxLength: 60 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.string({ minLength: 1 }).map((s) => ({ "#": s })),
    ).map((v) => encodeValue(v as Value)),
  );
  it("decodes a range of a larger buffer as decodeValue decodes a copy of it, errors included", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 12 }),
        encodings,
        fc.uint8Array({ maxLength: 12 }),
        (pre, mid, post) => {
          const b = Uint8Array.of(...pre, ...mid, ...post);
          const start = pre.length, end = pre.length + mid.length;
          let expected: unknown, got: unknown;
          try {
            expected = decodeValue(mid.slice());
          } catch (e) {
            expected = `${(e as Error).name}: ${(e as Error).message}`;
          }
          try {
            got = decodeValueAt(b, start, end);
          } catch (e) {
            got = `${(e as Error).name}: ${(e as Error).message}`;
          }
          assert.deepStrictEqual(got, expected);
        },
      ),
      fcParams(20_000),
    );
  });
});
