/**
 * Kernel conformance: every kernel implementation (js, scalar wasm, SIMD
 * wasm where supported) is checked against known answers, against a naive
 * reference written from the spec in core/kernels/types.ts, and against each
 * other, bit for bit, on ≥ 10,000 random cases per kernel.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createJsKernels, detectWasm, loadWasmKernels } from "../core/kernels/mod.ts";
import type { Kernels, Metric } from "../core/kernels/types.ts";
import { fcParams } from "./_seed.ts";

const RUNS = 10_000;

const js = createJsKernels();
const impls: Kernels[] = [js];
if (detectWasm() !== "none") impls.push(await loadWasmKernels({ simd: false }));
if (detectWasm() === "simd") impls.push(await loadWasmKernels({ simd: true }));

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A copy of `bytes` placed at byte offset `offset` of a larger buffer. */
function atOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const buf = new Uint8Array(bytes.length + offset + 5).fill(0xa5);
  buf.set(bytes, offset);
  return buf.subarray(offset, offset + bytes.length);
}

function f32AtOffset(v: Float32Array, offset: number): Float32Array {
  const buf = new Float32Array(v.length + offset + 3).fill(7.5);
  buf.set(v, offset);
  return buf.subarray(offset, offset + v.length);
}

/** Runs `fn` on every implementation and asserts all results equal (Object.is for numbers). */
function agree<T>(fn: (k: Kernels) => T): T {
  const results = impls.map((k) => {
    try {
      return { ok: true as const, value: fn(k) };
    } catch (e) {
      return { ok: false as const, error: e as Error };
    }
  });
  const first = results[0];
  for (let i = 1; i < results.length; i++) {
    const r = results[i];
    if (first.ok && r.ok) {
      assert.deepStrictEqual(r.value, first.value, `${impls[i].name} differs from ${impls[0].name}`);
    } else if (!first.ok && !r.ok) {
      assert.equal(r.error.name, first.error.name, `${impls[i].name} throws a different error`);
    } else {
      assert.fail(
        `${impls[i].name} ${r.ok ? "returned" : `threw ${r.error}`} where ${impls[0].name} ${
          first.ok ? "returned" : `threw ${first.error}`
        }`,
      );
    }
  }
  if (!first.ok) throw first.error;
  return first.value;
}

// ---------- naive references, written from the spec ----------

function xorCmp(a: Uint8Array, b: Uint8Array, t: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[i] ^ t[i]) - (b[i] ^ t[i]);
    if (d !== 0) return d;
  }
  return 0;
}
const idAt = (ids: Uint8Array, i: number): Uint8Array => ids.subarray(32 * i, 32 * i + 32);

function refXorSort(ids: Uint8Array, t: Uint8Array): Uint32Array {
  const n = ids.length / 32;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((x, y) => xorCmp(idAt(ids, x), idAt(ids, y), t) || x - y);
  return Uint32Array.from(order);
}

function refCpl(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 256; i++) {
    const bit = (x: Uint8Array) => (x[i >> 3] >> (7 - (i & 7))) & 1;
    if (bit(a) !== bit(b)) return i;
  }
  return 256;
}

function refLanes(a: Float32Array, b: Float32Array, term: (x: number, y: number) => number): number {
  const f = Math.fround;
  const acc = [0, 0, 0, 0];
  for (let i = 0; i < a.length; i++) acc[i & 3] = f(acc[i & 3] + term(a[i], b[i]));
  return f(f(acc[0] + acc[1]) + f(acc[2] + acc[3]));
}
const refDot = (a: Float32Array, b: Float32Array) => refLanes(a, b, (x, y) => Math.fround(x * y));
const refL2 = (a: Float32Array, b: Float32Array) =>
  Math.fround(Math.sqrt(refLanes(a, b, (x, y) => {
    const d = Math.fround(x - y);
    return Math.fround(d * d);
  })));
function refCosine(a: Float32Array, b: Float32Array): number {
  const na = refDot(a, a), nb = refDot(b, b);
  if (na === 0 || nb === 0) return 0;
  return Math.fround(refDot(a, b) / Math.sqrt(na * nb));
}
const refScore: Record<Metric, (a: Float32Array, b: Float32Array) => number> = {
  dot: refDot,
  cosine: refCosine,
  l2: refL2,
};

function refRank(scores: { slot: number; score: number }[], metric: Metric, k: number) {
  const sign = metric === "l2" ? 1 : -1;
  scores.sort((x, y) => {
    const xn = Number.isNaN(x.score), yn = Number.isNaN(y.score);
    if (xn || yn) return xn && yn ? x.slot - y.slot : xn ? 1 : -1;
    return sign * (x.score - y.score) || x.slot - y.slot;
  });
  const top = scores.slice(0, k);
  // Canonical NaN: hardware NaNs may carry a sign bit, and typed arrays compare byte for byte.
  const canonical = Float32Array.from(top, (s) => Number.isNaN(s.score) ? NaN : s.score);
  return { slots: Uint32Array.from(top, (s) => s.slot), scores: canonical };
}

// ---------- arbitraries ----------

/** Ids drawn from a small pool half the time, so duplicates and shared prefixes are common. */
const idArb = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }),
  fc.integer({ min: 0, max: 7 }).map((n) => new Uint8Array(32).fill(n * 37)),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 31 }))
    .map(([v, at]) => {
      const id = new Uint8Array(32).fill(0x55);
      id[at] = v;
      return id;
    }),
);
const idsArb = (max: number) =>
  fc.array(idArb, { maxLength: max }).map((list) => {
    const packed = new Uint8Array(32 * list.length);
    list.forEach((id, i) => packed.set(id, 32 * i));
    return packed;
  });
const offsetArb = fc.integer({ min: 0, max: 7 });
const f32Arb = fc.oneof(
  { weight: 8, arbitrary: fc.float({ min: -1000, max: 1000, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 1e-40, 3.4e38, -3.4e38) },
).map(Math.fround);
const vecPairArb = fc.integer({ min: 0, max: 67 }).chain((n) =>
  fc.tuple(
    fc.array(f32Arb, { minLength: n, maxLength: n }).map((a) => Float32Array.from(a)),
    fc.array(f32Arb, { minLength: n, maxLength: n }).map((a) => Float32Array.from(a)),
  )
);

// ---------- tests ----------

describe(`kernels conformance (${impls.map((k) => k.name).join(", ")})`, () => {
  it("has every implementation this runtime supports", () => {
    assert.ok(impls.length >= 2 || detectWasm() === "none", "WASM kernels should load here");
    for (const k of impls) assert.ok(["js", "wasm", "wasm-simd"].includes(k.name));
  });

  describe("sha256", () => {
    const vectors: [string | Uint8Array, string][] = [
      ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
      ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
      [
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      ],
      [
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
      ],
      [
        new Uint8Array(1_000_000).fill(0x61),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      ],
    ];

    it("matches the NIST known-answer vectors, single and batched", () => {
      for (const k of impls) {
        for (const [input, digest] of vectors) {
          const bytes = typeof input === "string" ? utf8(input) : input;
          assert.equal(hex(k.sha256(bytes)), digest, `${k.name} sha256 of ${bytes.length} bytes`);
          assert.equal(hex(k.sha256(atOffset(bytes, 3))), digest, `${k.name} at offset 3`);
        }
        const inputs = vectors.map(([i]) => typeof i === "string" ? utf8(i) : i);
        const ends = new Uint32Array(inputs.length);
        let total = 0;
        inputs.forEach((b, i) => ends[i] = total += b.length);
        const data = new Uint8Array(total);
        inputs.forEach((b, i) => data.set(b, i === 0 ? 0 : ends[i - 1]));
        const out = k.sha256Batch(atOffset(data, 1), ends);
        assert.deepEqual(
          Array.from({ length: inputs.length }, (_, i) => hex(out.subarray(32 * i, 32 * i + 32))),
          vectors.map(([, d]) => d),
          `${k.name} batch`,
        );
      }
    });

    it("matches WebCrypto on random inputs around the block boundaries", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 300 }),
          offsetArb,
          async (bytes, off) => {
            const want = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes))));
            assert.equal(hex(agree((k) => k.sha256(atOffset(bytes, off)))), want);
          },
        ),
        fcParams(1_000),
      );
    });

    it("agrees across implementations on random batches", () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 12 }),
          offsetArb,
          (inputs, off) => {
            const ends = new Uint32Array(inputs.length);
            let total = 0;
            inputs.forEach((b, i) => ends[i] = total += b.length);
            const data = new Uint8Array(total);
            inputs.forEach((b, i) => data.set(b, i === 0 ? 0 : ends[i - 1]));
            const batch = agree((k) => k.sha256Batch(atOffset(data, off), ends));
            assert.equal(batch.length, 32 * inputs.length);
            inputs.forEach((b, i) => assert.deepEqual(batch.subarray(32 * i, 32 * i + 32), js.sha256(b)));
          },
        ),
        fcParams(RUNS),
      );
    });

    it("fills a caller's buffer, handles empty batches, rejects bad bounds", () => {
      agree((k) => {
        const out = new Uint8Array(70).fill(9);
        const res = k.sha256Batch(utf8("abcabc"), new Uint32Array([3, 6]), out);
        assert.equal(res.buffer, out.buffer);
        assert.equal(hex(out.subarray(0, 32)), vectors[1][1]);
        assert.equal(hex(out.subarray(32, 64)), vectors[1][1]);
        assert.deepEqual(out.subarray(64), new Uint8Array(6).fill(9));
        assert.equal(k.sha256Batch(new Uint8Array(0), new Uint32Array(0)).length, 0);
        assert.throws(() => k.sha256Batch(utf8("abc"), new Uint32Array([2, 1])), RangeError);
        assert.throws(() => k.sha256Batch(utf8("abc"), new Uint32Array([4])), RangeError);
        assert.throws(() => k.sha256Batch(utf8("abc"), new Uint32Array([3]), new Uint8Array(31)), RangeError);
        return true;
      });
    });
  });

  describe("xor", () => {
    it("xorSort orders by XOR distance, ties by index", () => {
      fc.assert(
        fc.property(idsArb(40), idArb, offsetArb, (ids, target, off) => {
          const got = agree((k) => k.xorSort(atOffset(ids, off), atOffset(target, off ^ 3)));
          assert.deepEqual(got, refXorSort(ids, target));
        }),
        fcParams(RUNS),
      );
    });

    it("bucketIndex is the common prefix length in bits", () => {
      fc.assert(
        fc.property(idsArb(20), idArb, offsetArb, (ids, self, off) => {
          const got = agree((k) => k.bucketIndex(atOffset(ids, off), self));
          assert.deepEqual(
            got,
            Uint16Array.from({ length: ids.length / 32 }, (_, i) => refCpl(idAt(ids, i), self)),
          );
        }),
        fcParams(RUNS),
      );
    });

    it("IdTable closest/place agree with the reference through random add/remove sequences", () => {
      type Op = { op: "add"; id: Uint8Array } | { op: "remove"; pick: number } | {
        op: "closest";
        target: Uint8Array;
        k: number;
      } | { op: "place"; keys: Uint8Array; r: number };
      const opArb: fc.Arbitrary<Op> = fc.oneof(
        { weight: 5, arbitrary: idArb.map((id) => ({ op: "add" as const, id })) },
        { weight: 2, arbitrary: fc.nat().map((pick) => ({ op: "remove" as const, pick })) },
        {
          weight: 2,
          arbitrary: fc.record({
            op: fc.constant("closest" as const),
            target: idArb,
            k: fc.nat({ max: 40 }),
          }),
        },
        {
          weight: 1,
          arbitrary: fc.record({ op: fc.constant("place" as const), keys: idsArb(6), r: fc.nat({ max: 5 }) }),
        },
      );
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
          const tables = impls.map((k) => k.createIdTable());
          const model = new Map<number, Uint8Array>();
          try {
            for (const op of ops) {
              if (op.op === "add") {
                const slots = tables.map((t) => t.add(atOffset(op.id, 1)));
                assert.ok(slots.every((s) => s === slots[0]), `add slots differ: ${slots}`);
                model.set(slots[0], op.id);
              } else if (op.op === "remove") {
                if (model.size === 0) {
                  for (const t of tables) assert.throws(() => t.remove(0), RangeError);
                  continue;
                }
                const slot = [...model.keys()][op.pick % model.size];
                for (const t of tables) t.remove(slot);
                model.delete(slot);
              } else {
                const live = [...model.entries()];
                const rank = (target: Uint8Array, k: number) =>
                  live.slice().sort(([sa, a], [sb, b]) => xorCmp(a, b, target) || sa - sb).slice(0, k).map((
                    [s],
                  ) => s);
                if (op.op === "closest") {
                  const want = Uint32Array.from(rank(op.target, op.k));
                  for (const t of tables) assert.deepEqual(t.closest(op.target, op.k), want);
                } else {
                  const want = Uint32Array.from(
                    Array.from({ length: op.keys.length / 32 }, (_, i) => rank(idAt(op.keys, i), op.r))
                      .flat(),
                  );
                  for (const t of tables) assert.deepEqual(t.place(atOffset(op.keys, 2), op.r), want);
                }
              }
              for (const t of tables) assert.equal(t.size, model.size);
            }
            for (const [slot, id] of model) for (const t of tables) assert.deepEqual(t.get(slot), id);
          } finally {
            for (const t of tables) t.dispose();
          }
        }),
        fcParams(RUNS),
      );
    });

    it("handles empty tables, k > N, k = 0, duplicates and bad input alike", () => {
      agree((k) => {
        const t = k.createIdTable();
        const target = new Uint8Array(32);
        assert.deepEqual(t.closest(target, 5), new Uint32Array(0));
        assert.deepEqual(t.place(new Uint8Array(64), 3), new Uint32Array(0));
        const a = new Uint8Array(32).fill(1);
        assert.equal(t.add(a), 0);
        assert.equal(t.add(a), 1);
        assert.equal(t.add(new Uint8Array(32).fill(2)), 2);
        assert.deepEqual(t.closest(target, 10), new Uint32Array([0, 1, 2]));
        assert.deepEqual(t.closest(target, 0), new Uint32Array(0));
        t.remove(0);
        assert.equal(t.add(new Uint8Array(32).fill(3)), 0, "reuses the freed slot");
        assert.deepEqual(t.closest(target, 10), new Uint32Array([1, 2, 0]));
        assert.deepEqual(t.place(new Uint8Array(0), 3), new Uint32Array(0));
        assert.throws(() => t.add(new Uint8Array(31)), RangeError);
        assert.throws(() => t.closest(new Uint8Array(33), 1), RangeError);
        assert.throws(() => t.closest(target, -1), RangeError);
        assert.throws(() => t.closest(target, 1.5), RangeError);
        assert.throws(() => t.place(new Uint8Array(40), 1), RangeError);
        assert.throws(() => t.remove(7), RangeError);
        assert.throws(() => t.get(7), RangeError);
        t.dispose();
        assert.throws(() => t.closest(target, 1));
        assert.deepEqual(k.xorSort(new Uint8Array(0), target), new Uint32Array(0));
        assert.deepEqual(k.bucketIndex(new Uint8Array(0), target), new Uint16Array(0));
        assert.throws(() => k.xorSort(new Uint8Array(33), target), RangeError);
        assert.throws(() => k.bucketIndex(new Uint8Array(32), new Uint8Array(3)), RangeError);
        return true;
      });
    });

    it("keeps ids across table growth", () => {
      agree((k) => {
        const t = k.createIdTable();
        const ids: Uint8Array[] = [];
        for (let i = 0; i < 5000; i++) {
          const id = new Uint8Array(32);
          new DataView(id.buffer).setUint32(28, i * 2654435761);
          ids.push(id);
          t.add(id);
        }
        for (let i = 0; i < 5000; i += 499) assert.deepEqual(t.get(i), ids[i]);
        const got = t.closest(ids[1234], 3);
        assert.equal(got[0], 1234);
        const result = Array.from(got);
        t.dispose();
        return result;
      });
    });
  });

  describe("merge", () => {
    const word = fc.oneof(
      fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff),
      fc.nat({ max: 3 }),
      fc.nat(),
    );
    const tuple = fc.array(word, { minLength: 6, maxLength: 6 });
    const cols = ["hlcHi", "hlcLo", "hashHi", "hashLo", "actorHi", "actorLo"] as const;

    it("b wins exactly when its tuple is greater (unsigned, lexicographic)", () => {
      // One reusable batch per implementation, as the batches are meant to be used.
      const batches = new Map(impls.map((k) => [k, k.createMergeBatch(40)]));
      fc.assert(
        fc.property(fc.array(fc.tuple(tuple, tuple), { maxLength: 33 }), (pairs) => {
          const want = Uint8Array.from(pairs, ([a, b]) => {
            for (let c = 0; c < 6; c++) if (a[c] !== b[c]) return b[c] > a[c] ? 1 : 0;
            return 0;
          });
          agree((k) => {
            const batch = batches.get(k)!;
            pairs.forEach(([a, b], i) =>
              cols.forEach((c, j) => {
                batch.a[c][i] = a[j];
                batch.b[c][i] = b[j];
              })
            );
            const out = k.merge(batch, pairs.length);
            assert.deepEqual(out, want);
            return Array.from(out);
          });
        }),
        fcParams(RUNS),
      );
      for (const batch of batches.values()) batch.dispose();
    });

    it("handles an empty batch and rejects a length over capacity", () => {
      agree((k) => {
        const batch = k.createMergeBatch(4);
        assert.equal(batch.capacity, 4);
        assert.deepEqual(k.merge(batch, 0), new Uint8Array(0));
        assert.throws(() => k.merge(batch, 5), RangeError);
        batch.a.hlcHi[3] = 1;
        assert.deepEqual(k.merge(batch, 4), new Uint8Array([0, 0, 0, 0]), "a keeps equal and greater tuples");
        batch.b.actorLo[2] = 1;
        assert.deepEqual(k.merge(batch, 4), new Uint8Array([0, 0, 1, 0]));
        batch.dispose();
        return true;
      });
    });
  });

  describe("vectors", () => {
    it("dot, cosine and l2 follow the specified f32 arithmetic", () => {
      fc.assert(
        fc.property(vecPairArb, fc.integer({ min: 0, max: 3 }), ([a, b], off) => {
          const a2 = f32AtOffset(a, off), b2 = f32AtOffset(b, 3 - off);
          assert.ok(Object.is(agree((k) => k.dot(a2, b2)), refDot(a, b)), "dot");
          assert.ok(Object.is(agree((k) => k.cosine(a2, b2)), refCosine(a, b)), "cosine");
          assert.ok(Object.is(agree((k) => k.l2(a2, b2)), refL2(a, b)), "l2");
        }),
        fcParams(RUNS),
      );
    });

    it("zero, NaN and empty vectors", () => {
      agree((k) => {
        const z = new Float32Array(5), one = new Float32Array([1, 2, 3, 4, 5]);
        assert.equal(k.cosine(z, one), 0);
        assert.equal(k.cosine(new Float32Array(0), new Float32Array(0)), 0);
        assert.equal(k.dot(new Float32Array(0), new Float32Array(0)), 0);
        assert.equal(k.l2(one, one), 0);
        assert.ok(Number.isNaN(k.dot(new Float32Array([NaN, 1]), new Float32Array([1, 1]))));
        assert.ok(Number.isNaN(k.cosine(new Float32Array([NaN, 1]), new Float32Array([1, 1]))));
        assert.throws(() => k.dot(z, new Float32Array(4)), RangeError);
        assert.throws(() => k.createVectorIndex(0), RangeError);
        return true;
      });
    });

    it("VectorIndex topK agrees with the reference through random add/set/remove sequences", () => {
      const metricArb = fc.constantFrom<Metric>("dot", "cosine", "l2");
      const caseArb = fc.integer({ min: 1, max: 19 }).chain((dim) => {
        const vec = fc.array(f32Arb, { minLength: dim, maxLength: dim }).map((a) => Float32Array.from(a));
        const op = fc.oneof(
          { weight: 5, arbitrary: vec.map((v) => ({ op: "add" as const, v })) },
          {
            weight: 1,
            arbitrary: fc.tuple(fc.nat(), vec).map(([pick, v]) => ({ op: "set" as const, pick, v })),
          },
          { weight: 1, arbitrary: fc.nat().map((pick) => ({ op: "remove" as const, pick })) },
          {
            weight: 2,
            arbitrary: fc.record({
              op: fc.constant("topK" as const),
              q: vec,
              k: fc.nat({ max: 25 }),
              metric: metricArb,
            }),
          },
        );
        return fc.tuple(fc.constant(dim), fc.array(op, { maxLength: 25 }));
      });
      fc.assert(
        fc.property(caseArb, ([dim, ops]) => {
          const indexes = impls.map((k) => k.createVectorIndex(dim));
          const model = new Map<number, Float32Array>();
          try {
            for (const op of ops) {
              if (op.op === "add") {
                const slots = indexes.map((x) => x.add(f32AtOffset(op.v, 1)));
                assert.ok(slots.every((s) => s === slots[0]), `add slots differ: ${slots}`);
                model.set(slots[0], op.v);
              } else if (op.op === "set" || op.op === "remove") {
                if (model.size === 0) continue;
                const slot = [...model.keys()][op.pick % model.size];
                if (op.op === "set") {
                  for (const x of indexes) x.set(slot, op.v);
                  model.set(slot, op.v);
                } else {
                  for (const x of indexes) x.remove(slot);
                  model.delete(slot);
                }
              } else {
                const want = refRank(
                  [...model].map(([slot, v]) => ({ slot, score: refScore[op.metric](op.q, v) })),
                  op.metric,
                  op.k,
                );
                for (const x of indexes) {
                  assert.deepStrictEqual(x.topK(f32AtOffset(op.q, 2), op.k, op.metric), want);
                }
              }
              for (const x of indexes) assert.equal(x.size, model.size);
            }
          } finally {
            for (const x of indexes) x.dispose();
          }
        }),
        fcParams(RUNS),
      );
    });

    it("keeps rows across growth and rejects bad rows, slots and metrics", () => {
      agree((k) => {
        const dim = 384;
        const index = k.createVectorIndex(dim);
        const rows: Float32Array[] = [];
        for (let i = 0; i < 2000; i++) {
          const v = new Float32Array(dim);
          v[i % dim] = 1 + i / 1000;
          rows.push(v);
          assert.equal(index.add(v), i);
        }
        const top = index.topK(rows[1500], 3, "l2");
        assert.equal(top.slots[0], 1500);
        assert.equal(top.scores[0], 0);
        assert.throws(() => index.add(new Float32Array(3)), RangeError);
        assert.throws(() => index.set(5000, rows[0]), RangeError);
        assert.throws(() => index.remove(5000), RangeError);
        assert.throws(() => index.topK(rows[0], 1, "manhattan" as Metric), RangeError);
        assert.throws(() => index.topK(rows[0], -1, "dot"), RangeError);
        index.remove(1500);
        assert.notEqual(index.topK(rows[1500], 3, "l2").slots[0], 1500);
        const result = index.topK(rows[7], 5, "l2");
        index.dispose();
        assert.throws(() => index.topK(rows[0], 1, "dot"));
        return result;
      });
    });
  });
});
