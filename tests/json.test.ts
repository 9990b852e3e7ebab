/**
 * core/json.ts: bytes as `{"$bytes": base64}` both ways, RFC 4648 vectors,
 * strict decoding, limits, and seeded random round trips.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { countJsonItems, fromJson, MAX_JSON_DEPTH, toJson } from "../core/json.ts";
import { MAX_VALUE_BYTES } from "../core/value.ts";
import { prng, SEED } from "./_seed.ts";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Byte equality without assert.deepEqual's per-element cost on large arrays. */
function assertSameBytes(actual: unknown, expected: Uint8Array, message = "bytes differ"): void {
  assert.ok(actual instanceof Uint8Array, message);
  assert.equal(actual.length, expected.length, message);
  assert.ok(actual.every((x, i) => x === expected[i]), message);
}

/** RFC 4648 section 10 test vectors. */
const RFC4648: [string, string][] = [
  ["", ""],
  ["f", "Zg=="],
  ["fo", "Zm8="],
  ["foo", "Zm9v"],
  ["foob", "Zm9vYg=="],
  ["fooba", "Zm9vYmE="],
  ["foobar", "Zm9vYmFy"],
];

describe("toJson", () => {
  it("encodes bytes as {$bytes} with the RFC 4648 vectors", () => {
    for (const [text, b64] of RFC4648) {
      assert.deepEqual(toJson(utf8(text)), { $bytes: b64 }, JSON.stringify(text));
    }
  });

  it("encodes every byte value and only the view of a subarray", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const json = toJson(all) as { $bytes: string };
    assert.equal(json.$bytes.length, 344);
    assert.deepEqual(fromJson(json), all);
    const buf = new Uint8Array([9, 9, 0x66, 0x6f, 0x6f, 9]);
    assert.deepEqual(toJson(buf.subarray(2, 5)), { $bytes: "Zm9v" });
  });

  it("keeps node data, links, nested objects and arrays as they are", () => {
    const data = {
      name: "Alice",
      age: 30,
      ok: true,
      gone: null,
      pet: { "#": "alice/pet" },
      key: new Uint8Array([0, 1, 255]),
      nested: { list: [1, "two", new Uint8Array([104, 105])] },
    };
    assert.deepEqual(toJson(data), {
      name: "Alice",
      age: 30,
      ok: true,
      gone: null,
      pet: { "#": "alice/pet" },
      key: { $bytes: "AAH/" },
      nested: { list: [1, "two", { $bytes: "aGk=" }] },
    });
  });

  it("keeps a field named __proto__ as data", () => {
    const data: Record<string, unknown> = {};
    Object.defineProperty(data, "__proto__", { value: new Uint8Array([1]), enumerable: true });
    const json = toJson(data) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(json), Object.prototype);
    assert.deepEqual(Object.keys(json), ["__proto__"]);
    assert.equal(JSON.stringify(json), '{"__proto__":{"$bytes":"AQ=="}}');
  });

  it("encodes a full-size value", () => {
    const big = new Uint8Array(MAX_VALUE_BYTES).map((_, i) => (i * 7) & 255);
    const json = JSON.parse(JSON.stringify(toJson({ big })));
    assertSameBytes((fromJson(json) as { big: unknown }).big, big);
  });

  it("rejects what JSON cannot carry", () => {
    assert.throws(() => toJson({ n: NaN }), RangeError);
    assert.throws(() => toJson({ n: Infinity }), /value\.n/);
    assert.throws(() => toJson({ u: undefined }), TypeError);
    assert.throws(() => toJson(() => 1), TypeError);
    assert.throws(() => toJson(1n), TypeError);
    assert.throws(() => toJson(new Date(0)), /Date/);
    assert.throws(() => toJson(new Map()), TypeError);
    assert.throws(() => toJson(new Uint16Array(2)), TypeError);
  });

  it("rejects nesting deeper than the limit, and cycles", () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) deep = [deep];
    assert.doesNotThrow(() => toJson(deep));
    assert.throws(() => toJson([deep]), RangeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => toJson(cyclic), RangeError);
  });
});

describe("fromJson", () => {
  it("decodes the RFC 4648 vectors", () => {
    for (const [text, b64] of RFC4648) assert.deepEqual(fromJson({ $bytes: b64 }), utf8(text), b64);
  });

  it("decodes bytes at any depth, in objects and arrays", () => {
    const parsed = JSON.parse('{"a":{"$bytes":"AAH/"},"b":{"c":[{"$bytes":"aGk="},2]},"d":{"#":"x"}}');
    assert.deepEqual(fromJson(parsed), {
      a: new Uint8Array([0, 1, 255]),
      b: { c: [new Uint8Array([104, 105]), 2] },
      d: { "#": "x" },
    });
    assert.deepEqual(fromJson({ where: { key: { eq: { $bytes: "AQ==" } } } }), {
      where: { key: { eq: new Uint8Array([1]) } },
    });
  });

  it("treats an object with $bytes and other keys as an ordinary object", () => {
    assert.deepEqual(fromJson({ $bytes: "AQ==", other: 1 }), { $bytes: "AQ==", other: 1 });
  });

  it("passes scalars through and leaves its input untouched", () => {
    for (const v of [null, true, 0, -1.5, "s", ""]) assert.equal(fromJson(v), v);
    const input = { a: { $bytes: "AQ==" } };
    fromJson(input);
    assert.deepEqual(input, { a: { $bytes: "AQ==" } });
  });

  it("keeps a __proto__ key as an own key without touching the prototype", () => {
    const parsed = JSON.parse('{"__proto__":{"polluted":true},"x":1}');
    const out = fromJson(parsed) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ["__proto__", "x"]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("rejects a $bytes that is not a string", () => {
    for (const bad of [1, null, true, ["AQ=="], { x: 1 }]) {
      assert.throws(() => fromJson({ f: { $bytes: bad } }), (e: Error) => {
        assert.ok(e instanceof TypeError, String(e));
        assert.match(e.message, /value\.f: \$bytes must be a base64 string/);
        return true;
      });
    }
    // Through objects and arrays, the message names where the value sits.
    assert.throws(() => fromJson({ a: [1, { b: { $bytes: 7 } }] }), {
      name: "TypeError",
      message: "value.a[1].b: $bytes must be a base64 string, got a number",
    });
    assert.throws(() => fromJson([{ $bytes: "Zg" }]), {
      name: "SyntaxError",
      message: /^value\[0\]: \$bytes is not base64/,
    });
  });

  it("rejects text that is not canonical padded base64", () => {
    const bad = [
      "Zg", // no padding
      "Zg=", // short padding
      "Zm8", // no padding
      "Z===", // too much padding
      "Zm9v\n", // whitespace
      "Zm 9v",
      "Zm9v=",
      "-_8=", // base64url alphabet
      "Zh==", // non-zero bits after the last byte
      "Zm9=",
      "é===",
    ];
    for (const text of bad) {
      assert.throws(() => fromJson({ $bytes: text }), SyntaxError, JSON.stringify(text));
    }
  });

  it("rejects bytes longer than a storable value before decoding them", () => {
    const limit = Math.ceil(MAX_VALUE_BYTES / 3) * 4;
    assert.equal(
      (fromJson({ $bytes: "A".repeat(limit - 4) + "AA==" }) as Uint8Array).length,
      MAX_VALUE_BYTES,
    );
    assert.throws(() => fromJson({ $bytes: "A".repeat(limit + 4) }), RangeError);
  });

  it("rejects nesting deeper than the limit", () => {
    const deep = JSON.parse("[".repeat(MAX_JSON_DEPTH) + "1" + "]".repeat(MAX_JSON_DEPTH));
    assert.doesNotThrow(() => fromJson(deep));
    const deeper = JSON.parse("[".repeat(MAX_JSON_DEPTH + 1) + "1" + "]".repeat(MAX_JSON_DEPTH + 1));
    assert.throws(() => fromJson(deeper), RangeError);
    const hostile = JSON.parse('{"a":'.repeat(5000) + "1" + "}".repeat(5000));
    assert.throws(() => fromJson(hostile), RangeError);
  });
});

describe("countJsonItems", () => {
  const count = (text: string, max = Infinity) => countJsonItems(utf8(text), max);

  it("counts objects, arrays and keys, not scalars", () => {
    assert.equal(count("1"), 0);
    assert.equal(count('"x"'), 0);
    assert.equal(count("{}"), 1);
    assert.equal(count("[1, 2, 3, null, true]"), 1);
    assert.equal(count('{"a": 1, "b": [{}, []], "c": {"d": "e"}}'), 9);
    assert.equal(count(' {\n "a" : [ ] } '), 3);
  });

  it("skips what strings hold, escaped quotes and non-ASCII text included", () => {
    assert.equal(count('{"{[:": "]}:,"}'), 2);
    assert.equal(count('{"a\\"{:": "\\\\", "b": "\\"[:"}'), 3);
    assert.equal(count('{"é:ü": "日本:{", "x": ["€"]}'), 4);
  });

  it("stops counting once past max", () => {
    const text = "[" + "{},".repeat(1000) + "{}]";
    assert.equal(count(text), 1002);
    assert.equal(count(text, 10), 11);
    assert.equal(count(text, 1002), 1002);
  });

  it("agrees with what JSON.parse builds (seed " + SEED + ")", () => {
    const rand = prng(SEED);
    const make = (depth: number): unknown => {
      const r = rand();
      if (depth > 4 || r < 0.4) return [1, 'a:{"[', null, true, "ü"][Math.floor(rand() * 5)];
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => make(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 4); i > 0; i--) o[`k{${i}:"`] = make(depth + 1);
      return o;
    };
    const items = (v: unknown): number =>
      typeof v !== "object" || v === null
        ? 0
        : Array.isArray(v)
        ? 1 + v.reduce((n: number, x) => n + items(x), 0)
        : 1 + Object.values(v).reduce((n: number, x) => n + 1 + items(x), 0);
    for (let i = 0; i < 200; i++) {
      const v = make(0);
      const text = JSON.stringify(v, null, i % 2 === 0 ? undefined : 1);
      assert.equal(count(text), items(v), `seed ${SEED}, case ${i}: ${text}`);
    }
  });
});

describe("round trip", () => {
  it(`random byte values survive toJson → JSON text → fromJson (seed ${SEED})`, () => {
    const rand = prng(SEED);
    for (let i = 0; i < 1000; i++) {
      const len = i < 64 ? i : Math.floor(rand() ** 3 * 5000);
      const bytes = Uint8Array.from({ length: len }, () => Math.floor(rand() * 256));
      const text = JSON.stringify(toJson({ b: bytes, nested: { list: [bytes, "x"] } }));
      const back = fromJson(JSON.parse(text)) as { b: unknown; nested: { list: unknown[] } };
      const message = `seed ${SEED}, case ${i}, length ${len}`;
      assertSameBytes(back.b, bytes, message);
      assertSameBytes(back.nested.list[0], bytes, message);
      assert.equal(back.nested.list[1], "x");
      // One spelling per byte string: decoding then encoding gives the same text back.
      assert.equal(JSON.stringify(toJson(fromJson(JSON.parse(text)))), text);
    }
  });
});
