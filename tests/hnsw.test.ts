/**
 * The HNSW kernel (`Kernels.createHnsw`): recall against exact search, the
 * twins (js, scalar wasm, SIMD wasm) building byte-identical graphs and
 * answering identically, removal, serialize/restore (also across twins and
 * from hostile bytes), and the checks on bad input; the same for `quantize:
 * "int8"`, with its scores within `errorBound` of the f32 ones and its
 * recall once re-scored in f32. Data come from the run's
 * seed (`LATTICE_SEED` replays a run; every test name carries it).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createJsKernels, detectWasm, loadWasmKernels } from "../core/kernels/mod.ts";
import type { HnswIndex, HnswOptions, Kernels, Metric } from "../core/kernels/types.ts";
import { SEED } from "./_seed.ts";
import { clustered, uniform, type VectorSet } from "./_vectors.ts";

const js = createJsKernels();
const impls: Kernels[] = [js];
if (detectWasm() !== "none") impls.push(await loadWasmKernels({ simd: false }));
if (detectWasm() === "simd") impls.push(await loadWasmKernels({ simd: true }));
/** The fastest twin, for the large recall runs (identical graphs make one twin's recall everyone's). */
const fastest = impls[impls.length - 1];

const METRICS: Metric[] = ["cosine", "dot", "l2"];

function build(k: Kernels, set: VectorSet, count: number, options: Omit<HnswOptions, "dim">): HnswIndex {
  const index = k.createHnsw({ dim: set.dim, ...options });
  for (let i = 0; i < count; i++) index.insert(i, set.rows[i]);
  return index;
}

/** Mean recall@k of `index.search` against `index.searchExact` over `queries`. */
function recall(index: HnswIndex, queries: Float32Array[], k: number, ef?: number): number {
  let hits = 0;
  for (const q of queries) {
    const truth = new Set(index.searchExact(q, k).ids);
    for (const id of index.search(q, k, ef).ids) if (truth.has(id)) hits++;
  }
  return hits / (k * queries.length);
}

/** Everything observable of an index for `queries`: approximate and exact hits. */
function answers(index: HnswIndex, queries: Float32Array[]): unknown[] {
  return queries.map((q) => {
    const a = index.search(q, 10), e = index.searchExact(q, 10);
    return [[...a.ids], [...a.scores], [...e.ids], [...e.scores]];
  });
}

/** A seeded script of inserts, replacements and removals, run the same way on every index. */
function churn(indexes: HnswIndex[], set: VectorSet, count: number): void {
  for (let i = 0; i < count; i++) {
    const id = i % Math.floor(count * 0.8); // the last fifth replaces earlier ids
    for (const x of indexes) x.insert(id, set.rows[i]);
    if (i % 9 === 4) { for (const x of indexes) x.remove(i - 3); }
  }
}

describe(`HNSW kernel (${impls.map((k) => k.name).join(", ")}; seed ${SEED})`, () => {
  it(`recall@10 ≥ 0.95 at the default ef on 10k × 384 clustered data, cosine (${fastest.name}, seed ${SEED})`, () => {
    const set = clustered(SEED, 10_200, 384);
    const index = build(fastest, set, 10_000, { metric: "cosine", seed: SEED >>> 0 });
    try {
      const r = recall(index, set.rows.slice(10_000), 10);
      assert.ok(r >= 0.95, `recall ${r}`);
    } finally {
      index.dispose();
    }
  });

  it(`recall@10 ≥ 0.95 at the default ef on 10k × 128 uniform data, l2 (${fastest.name}, seed ${SEED})`, () => {
    const set = uniform(SEED, 10_100, 128);
    const index = build(fastest, set, 10_000, { metric: "l2", seed: SEED >>> 0 });
    try {
      const r = recall(index, set.rows.slice(10_000), 10);
      assert.ok(r >= 0.95, `recall ${r}`);
    } finally {
      index.dispose();
    }
  });

  it(`the twins build byte-identical graphs and answer identically, every metric (seed ${SEED})`, () => {
    for (const metric of METRICS) {
      for (const dim of [37, 64]) {
        const set = clustered(SEED + dim, 1_300, dim, 8, 0.5);
        const queries = set.rows.slice(1_200);
        const indexes = impls.map((k) =>
          k.createHnsw({ dim, metric, m: 6, efConstruction: 40, seed: SEED >>> 0, exactBelow: 0 })
        );
        try {
          churn(indexes, set, 1_200);
          const bytes = indexes.map((x) => x.serialize());
          const want = answers(indexes[0], queries);
          for (let i = 1; i < impls.length; i++) {
            const what = `${impls[i].name} vs js, ${metric}, dim ${dim}`;
            assert.deepStrictEqual(bytes[i], bytes[0], `graph bytes differ: ${what}`);
            assert.deepStrictEqual(answers(indexes[i], queries), want, `answers differ: ${what}`);
          }
          // Dot product is no metric (long vectors crowd the lists): lower bound, seen ≥ 0.86 over 80 seeds.
          const floor = metric === "dot" ? 0.75 : 0.9;
          assert.ok(recall(indexes[0], queries, 10) >= floor, `recall of the small ${metric} index`);
        } finally {
          for (const x of indexes) x.dispose();
        }
      }
    }
  });

  it(`removed ids never come back; replaced ids answer with their new vector (seed ${SEED})`, () => {
    for (const k of impls) {
      const set = clustered(SEED, 2_000, 48, 10, 0.3);
      const index = build(k, set, 1_500, {
        metric: "l2",
        m: 8,
        efConstruction: 64,
        ef: 32,
        seed: 3,
        exactBelow: 0,
      });
      try {
        const removed = new Set<number>();
        for (let id = 0; id < 1_500; id += 3) {
          assert.equal(index.remove(id), true);
          removed.add(id);
        }
        assert.equal(index.remove(0), false, "a second removal finds nothing");
        assert.equal(index.size, 1_000);
        assert.equal(index.nodes, 1_500, "removed nodes stay as waypoints");
        assert.equal(index.has(0), false);
        assert.equal(index.vector(0), undefined);
        assert.deepStrictEqual(index.vector(1), set.rows[1]);
        for (let id = 0; id < 1_500; id += 3) {
          const q = set.rows[id]; // its own vector: the removed id would be the best hit
          for (const hits of [index.search(q, 20), index.search(q, 20, 400), index.searchExact(q, 20)]) {
            for (const got of hits.ids) assert.ok(!removed.has(got), `${k.name}: removed id ${got} returned`);
          }
        }
        // Replacing id 1 by another vector: the new one is found under id 1, the old one is gone. (Only exact
        // search is asserted: HNSW may leave a new node without in-links when every neighbour prunes it.)
        index.insert(1, set.rows[1_900]);
        assert.equal(index.size, 1_000);
        assert.equal(index.nodes, 1_501, "a replaced vector is a new node");
        assert.deepStrictEqual(index.vector(1), set.rows[1_900]);
        assert.equal(index.searchExact(set.rows[1_900], 1).ids[0], 1);
        assert.notEqual(index.searchExact(set.rows[1], 1).scores[0], 0, "the old vector is gone");
        // Emptied: nothing is returned.
        for (let id = 0; id < 1_500; id++) index.remove(id);
        assert.equal(index.size, 0);
        assert.equal(index.search(set.rows[5], 5).ids.length, 0);
      } finally {
        index.dispose();
      }
    }
  });

  it(`serialize → restore answers identically, in every twin, and keeps building identically (seed ${SEED})`, () => {
    const set = clustered(SEED, 1_700, 40, 6, 0.4);
    const queries = set.rows.slice(1_600);
    const original = js.createHnsw({
      dim: 40,
      metric: "cosine",
      m: 8,
      efConstruction: 50,
      seed: 9,
      exactBelow: 0,
    });
    churn([original], set, 1_200);
    const bytes = original.serialize();
    const want = answers(original, queries);
    for (let i = 1_200; i < 1_600; i++) original.insert(i, set.rows[i]);
    const grown = original.serialize();
    for (const k of impls) {
      const restored = k.restoreHnsw(bytes);
      try {
        assert.equal(restored.size, js.restoreHnsw(bytes).size);
        assert.deepStrictEqual(answers(restored, queries), want, `${k.name} after restore`);
        assert.deepStrictEqual(restored.serialize(), bytes, `${k.name} serializes the same bytes`);
        for (let i = 1_200; i < 1_600; i++) restored.insert(i, set.rows[i]);
        assert.deepStrictEqual(restored.serialize(), grown, `${k.name} grows like the original`);
      } finally {
        restored.dispose();
      }
    }
    original.dispose();
  });

  it("refuses hostile bytes with RangeError", () => {
    const set = uniform(SEED, 300, 8);
    const index = build(js, set, 300, { metric: "l2", m: 4, seed: 1 });
    const bytes = index.serialize();
    index.dispose();
    const view = new DataView(bytes.buffer);
    const stride = (bytes.length - 64 - view.getUint32(56, true)) / 300;
    const corrupt = (edit: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = bytes.slice();
      edit(b, new DataView(b.buffer));
      return b;
    };
    const bad: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["truncated", bytes.subarray(0, bytes.length - 1)],
      ["bad magic", corrupt((b) => (b[0] ^= 1))],
      ["version 2", corrupt((_, v) => v.setUint32(4, 2, true))],
      ["metric 9", corrupt((_, v) => v.setUint32(12, 9, true))],
      ["link past the end", corrupt((_, v) => v.setUint32(64 + 8 * 4 + 24, 300, true))],
      ["too many links", corrupt((_, v) => v.setUint32(64 + 8 * 4 + 20, 99, true))],
      ["NaN component", corrupt((_, v) => v.setFloat32(64 + stride, NaN, true))],
      ["level 40", corrupt((_, v) => v.setUint32(64 + 8 * 4 + 8, 40, true))],
      ["entry past the end", corrupt((_, v) => v.setUint32(48, 300, true))],
      ["live count", corrupt((_, v) => v.setUint32(44, 5, true))],
    ];
    for (const k of impls) {
      for (const [what, b] of bad) assert.throws(() => k.restoreHnsw(b), RangeError, `${k.name}: ${what}`);
    }
  });

  it("refuses bad vectors, ids and options with RangeError and changes nothing", () => {
    for (const k of impls) {
      const index = k.createHnsw({ dim: 4, metric: "dot", seed: 2 });
      index.insert(7, new Float32Array([1, 2, 3, 4]));
      const before = index.serialize();
      const bad = [
        new Float32Array(3),
        new Float32Array(5),
        new Float32Array([1, NaN, 0, 0]),
        new Float32Array([Infinity, 0, 0, 0]),
        new Float32Array([0, 0, 0, -Infinity]),
      ];
      for (const v of bad) {
        assert.throws(() => index.insert(8, v), RangeError);
        assert.throws(() => index.insert(7, v), RangeError, "a bad replacement keeps the old vector");
        assert.throws(() => index.search(v, 1), RangeError);
        assert.throws(() => index.searchExact(v, 1), RangeError);
      }
      assert.throws(() => index.insert(8, [1, 2, 3, 4] as unknown as Float32Array), TypeError);
      for (const id of [-1, 1.5, 2 ** 32, NaN]) {
        assert.throws(() => index.insert(id, new Float32Array(4)), RangeError);
      }
      const q = new Float32Array(4);
      assert.throws(() => index.search(q, -1), RangeError);
      assert.throws(() => index.search(q, 1, 0), RangeError);
      assert.deepStrictEqual(index.serialize(), before);
      assert.equal(index.size, 1);
      index.dispose();
      assert.throws(() => index.search(q, 1), TypeError);
      for (
        const options of [{ dim: 0 }, { dim: 4, m: 1 }, { dim: 4, metric: "cos" }, {
          dim: 4,
          efConstruction: 0,
        }, {
          dim: 4,
          seed: -1,
        }]
      ) assert.throws(() => k.createHnsw(options as HnswOptions), RangeError, JSON.stringify(options));
    }
  });

  it(`searchExact ranks every live vector as the spec does: ties by insertion, removed and replaced ids, k > n (seed ${SEED})`, () => {
    // 203 vectors (not a multiple of four), many exact duplicates, so ties decide much of the order.
    const set = clustered(SEED, 120, 11, 3, 0.2);
    const rows = Array.from({ length: 203 }, (_, i) => set.rows[(i * 7) % 120]);
    for (const metric of METRICS) {
      const ref = (q: Float32Array, k: number, live: Map<number, { order: number; v: Float32Array }>) => {
        const score = metric === "cosine" ? js.cosine : metric === "dot" ? js.dot : js.l2;
        const all = [...live].map(([id, e]) => ({ id, order: e.order, s: score(q, e.v) }));
        all.sort((a, b) => (metric === "l2" ? a.s - b.s : b.s - a.s) || a.order - b.order);
        const top = all.slice(0, k);
        return { ids: [...top.map((e) => e.id)], scores: [...Float32Array.from(top, (e) => e.s)] };
      };
      for (const k of impls) {
        const index = k.createHnsw({
          dim: set.dim,
          metric,
          m: 4,
          efConstruction: 16,
          seed: 3,
          exactBelow: 0,
        });
        const live = new Map<number, { order: number; v: Float32Array }>();
        let order = 0;
        rows.forEach((v, i) => {
          const id = i % 180; // the last 23 replace earlier ids: their new vectors come later in insertion order
          index.insert(id, v);
          live.set(id, { order: order++, v });
          if (i % 11 === 5) {
            index.remove(i - 2);
            live.delete(i - 2);
          }
        });
        for (const [qi, n] of [[0, 1], [5, 10], [9, 37], [40, 400]]) {
          const q = set.rows[qi], got = index.searchExact(q, n);
          assert.deepStrictEqual(
            { ids: [...got.ids], scores: [...got.scores] },
            ref(q, n, live),
            `${k.name} ${metric}`,
          );
        }
        index.dispose();
      }
    }
  });

  it(`copies of one vector do not wall themselves off: distinct vectors added after them stay reachable (seed ${SEED})`, () => {
    // 100 copies first (the entry point is one of them), then 300 distinct vectors. If copies kept
    // each other as neighbours they would fill every list (m0 = 32) with copies: no link would leave
    // the group, and a search entering it could reach nothing else.
    const set = uniform(SEED, 301, 32);
    for (const k of impls) {
      const index = k.createHnsw({ dim: 32, metric: "l2", m: 16, exactBelow: 0, seed: 3 });
      for (let i = 0; i < 100; i++) index.insert(i, set.rows[300]);
      for (let i = 0; i < 300; i++) index.insert(100 + i, set.rows[i]);
      const r = recall(index, set.rows.slice(0, 300), 1);
      assert.ok(r >= 0.95, `${k.name}: recall@1 of the distinct vectors ${r}`);
      assert.equal(index.search(set.rows[300], 10).ids.length, 10, "the copies are found too");
      for (const id of index.search(set.rows[300], 10).ids) assert.ok(id < 100);
      index.dispose();
    }
  });

  it("below exactBelow live vectors, search is exact", () => {
    const set = clustered(SEED, 600, 16, 4, 1);
    for (const k of impls) {
      const index = build(k, set, 500, { metric: "cosine", exactBelow: 1_000, seed: 5 });
      for (const q of set.rows.slice(500)) {
        assert.deepStrictEqual(index.search(q, 7), index.searchExact(q, 7));
      }
      index.dispose();
    }
  });
});

describe(`HNSW kernel, quantize int8 (${impls.map((k) => k.name).join(", ")}; seed ${SEED})`, () => {
  it(`recall@10 ≥ 0.95 at ef 50 on 10k × 384 clustered data once 2k candidates are re-scored in f32 (${fastest.name}, seed ${SEED})`, () => {
    const set = clustered(SEED, 10_100, 384);
    const index = build(fastest, set, 10_000, {
      metric: "cosine",
      ef: 50,
      seed: SEED >>> 0,
      quantize: "int8",
    });
    try {
      assert.ok(index.byteLength < 0.35 * 10_000 * 1696, `int8 bytes ${index.byteLength}`);
      let hits = 0;
      for (const q of set.rows.slice(10_000)) {
        const truth = new Set<number>();
        const all = set.rows.slice(0, 10_000).map((v, id) => ({ id, s: fastest.cosine(q, v) }));
        all.sort((a, b) => b.s - a.s || a.id - b.id);
        for (const { id } of all.slice(0, 10)) truth.add(id);
        const cands = [...index.search(q, 20).ids].map((id) => ({ id, s: fastest.cosine(q, set.rows[id]) }));
        cands.sort((a, b) => b.s - a.s || a.id - b.id);
        for (const { id } of cands.slice(0, 10)) if (truth.has(id)) hits++;
      }
      assert.ok(hits / 1000 >= 0.95, `recall ${hits / 1000}`);
    } finally {
      index.dispose();
    }
  });

  it(`the twins build byte-identical int8 graphs and answer identically, every metric; scores within errorBound (seed ${SEED})`, () => {
    for (const metric of METRICS) {
      for (const dim of [37, 64]) {
        const set = clustered(SEED + dim, 1_300, dim, 8, 0.5);
        const queries = set.rows.slice(1_200);
        const options = { dim, metric, m: 6, efConstruction: 40, seed: SEED >>> 0, exactBelow: 0 };
        const indexes = impls.map((k) => k.createHnsw({ ...options, quantize: "int8" }));
        const plain = js.createHnsw(options);
        try {
          churn([...indexes, plain], set, 1_200);
          const bytes = indexes.map((x) => x.serialize());
          const want = answers(indexes[0], queries);
          const bounds = queries.map((q) => indexes[0].errorBound(q));
          for (let i = 1; i < impls.length; i++) {
            const what = `${impls[i].name} vs js, ${metric}, dim ${dim}`;
            assert.deepStrictEqual(bytes[i], bytes[0], `graph bytes differ: ${what}`);
            assert.deepStrictEqual(answers(indexes[i], queries), want, `answers differ: ${what}`);
            assert.deepStrictEqual(
              queries.map((q) => indexes[i].errorBound(q)),
              bounds,
              `bounds differ: ${what}`,
            );
          }
          assert.equal(indexes[0].quantize, "int8");
          // vector(id) gives the dequantized vector: each component within half a step of the original's.
          for (let id = 0; id < 1_200; id += 97) {
            const held = indexes[0].vector(id);
            if (held === undefined) continue; // removed by the churn
            const original = plain.vector(id)!;
            let norm = 1;
            if (metric === "cosine") norm = Math.hypot(...original);
            const step = Math.max(...original.map((x) => Math.abs(x / norm))) / 127;
            for (let i = 0; i < dim; i++) {
              assert.ok(Math.abs(held[i] - original[i] / norm) <= step * 0.5001, `${metric} ${id}[${i}]`);
            }
          }
          assert.ok(indexes[0].byteLength < 0.6 * plain.byteLength, `${indexes[0].byteLength} bytes`);
          assert.equal(plain.errorBound(queries[0]), 0);
          // Every quantized score is within the bound of the f32 score of the same vector, and not equal to all.
          let differ = 0;
          for (let i = 0; i < queries.length; i++) {
            const hits = indexes[0].searchExact(queries[i], 1_000);
            const truth = plain.searchExact(queries[i], 1_000);
            const exact = new Map([...truth.ids].map((id, j) => [id, j]));
            for (let j = 0; j < hits.ids.length; j++) {
              const f32 = truth.scores[exact.get(hits.ids[j])!];
              assert.ok(
                Math.abs(f32 - hits.scores[j]) <= bounds[i],
                `${metric}: ${f32} vs ${hits.scores[j]}`,
              );
              if (f32 !== hits.scores[j]) differ++;
            }
          }
          assert.ok(differ > 0, "quantized scores are not the f32 ones");
          const floor = metric === "dot" ? 0.7 : 0.85;
          assert.ok(recall(indexes[0], queries, 10) >= floor, `recall of the small ${metric} int8 index`);
        } finally {
          for (const x of [...indexes, plain]) x.dispose();
        }
      }
    }
  });

  it(`serialize → restore round trip of an int8 index, in every twin; version 2 (seed ${SEED})`, () => {
    const set = clustered(SEED, 1_700, 40, 6, 0.4);
    const queries = set.rows.slice(1_600);
    const options = { dim: 40, metric: "l2" as const, m: 8, efConstruction: 50, seed: 9, exactBelow: 0 };
    const original = js.createHnsw({ ...options, quantize: "int8" });
    churn([original], set, 1_200);
    const bytes = original.serialize();
    assert.equal(new DataView(bytes.buffer).getUint32(4, true), 2, "version 2");
    const want = answers(original, queries);
    for (let i = 1_200; i < 1_600; i++) original.insert(i, set.rows[i]);
    const grown = original.serialize();
    for (const k of impls) {
      const restored = k.restoreHnsw(bytes);
      try {
        assert.equal(restored.quantize, "int8");
        assert.deepStrictEqual(answers(restored, queries), want, `${k.name} after restore`);
        assert.deepStrictEqual(restored.serialize(), bytes, `${k.name} serializes the same bytes`);
        for (let i = 1_200; i < 1_600; i++) restored.insert(i, set.rows[i]);
        assert.deepStrictEqual(restored.serialize(), grown, `${k.name} grows like the original`);
        assert.equal(restored.errorBound(queries[0]), original.errorBound(queries[0]));
      } finally {
        restored.dispose();
      }
    }
    original.dispose();
    const f32 = js.createHnsw(options);
    f32.insert(1, set.rows[0]);
    assert.equal(new DataView(f32.serialize().buffer).getUint32(4, true), 1, "f32 indexes stay version 1");
    f32.dispose();
  });

  it("refuses hostile int8 bytes and bad quantize options with RangeError", () => {
    const set = uniform(SEED, 300, 20);
    const index = build(js, set, 300, { metric: "cosine", m: 4, seed: 1, quantize: "int8" });
    const bytes = index.serialize();
    index.dispose();
    const stride = (bytes.length - 64 - new DataView(bytes.buffer).getUint32(56, true)) / 300;
    const corrupt = (edit: (b: Uint8Array, v: DataView) => void): Uint8Array => {
      const b = bytes.slice();
      edit(b, new DataView(b.buffer));
      return b;
    };
    const bad: [string, Uint8Array][] = [
      ["version 2 without quantization", corrupt((_, v) => v.setUint32(60, 0, true))],
      ["version 1 with quantization", corrupt((_, v) => v.setUint32(4, 1, true))],
      ["version 3", corrupt((_, v) => v.setUint32(4, 3, true))],
      ["code -128", corrupt((b) => (b[64 + stride + 3] = 0x80))],
      ["NaN scale", corrupt((_, v) => v.setFloat32(64 + stride + 32, NaN, true))],
      ["negative residual", corrupt((_, v) => v.setFloat32(64 + stride + 36, -1, true))],
      ["truncated", bytes.subarray(0, bytes.length - 4)],
      ["link past the end", corrupt((_, v) => v.setUint32(64 + 40 + 24, 300, true))],
    ];
    for (const k of impls) {
      assert.equal(k.restoreHnsw(bytes).size, 300);
      for (const [what, b] of bad) assert.throws(() => k.restoreHnsw(b), RangeError, `${k.name}: ${what}`);
      for (const quantize of ["int4", true, 8]) {
        assert.throws(
          () => k.createHnsw({ dim: 4, quantize } as unknown as HnswOptions),
          RangeError,
          String(quantize),
        );
      }
    }
  });
});
