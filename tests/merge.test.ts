/**
 * Convergence properties: HAM merge is commutative, associative and
 * idempotent; any delivery order of the same ops (with duplicates) gives a
 * byte-identical state; clock skew of ±24 h never loses the causally later
 * write and never applies a future state early.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { createJsKernels, detectWasm, loadWasmKernels } from "../core/kernels/mod.ts";
import type { Kernels } from "../core/kernels/types.ts";
import { merge, mergeBatch, wins } from "../core/merge.ts";
import { Database } from "../core/database.ts";
import { hlcMs } from "../core/clock.ts";
import { encodeValue } from "../core/value_encoding.ts";
import type { Op } from "../core/op.ts";
import { MemoryStore } from "../storage/memory.ts";
import type { FieldRecord, Store } from "../core/store.ts";
import { createIdentity, type Identity } from "../core/trust/identity.ts";
import { fcParams, prng, SEED } from "./_seed.ts";

const js = createJsKernels();
const kernelSets: Kernels[] = [js];
if (detectWasm() !== "none") kernelSets.push(await loadWasmKernels({ simd: false }));
if (detectWasm() === "simd") kernelSets.push(await loadWasmKernels({ simd: true }));

// Small domains so that equal states, equal values and equal actors are common.
const recordArb: fc.Arbitrary<FieldRecord> = fc.record({
  soul: fc.constant("s"),
  field: fc.constant("f"),
  value: fc.constantFrom<unknown>(null, 1, 2, "a", "b", true).map((v) => encodeValue(v as never)),
  stateHi: fc.nat({ max: 2 }),
  stateLo: fc.nat({ max: 2 }),
  actorHi: fc.constantFrom(0, 0xffffffff),
  actorLo: fc.nat({ max: 2 }),
});
const same = (a: FieldRecord, b: FieldRecord) =>
  a.stateHi === b.stateHi && a.stateLo === b.stateLo && a.actorHi === b.actorHi && a.actorLo === b.actorLo &&
  a.value.length === b.value.length && a.value.every((x, i) => x === b.value[i]);

describe("HAM merge", () => {
  it("is commutative, associative and idempotent (100,000 cases)", () => {
    fc.assert(
      fc.property(recordArb, recordArb, recordArb, (a, b, c) => {
        assert.ok(same(merge(a, b, js), merge(b, a, js)), "commutative");
        assert.ok(same(merge(merge(a, b, js), c, js), merge(a, merge(b, c, js), js)), "associative");
        assert.ok(same(merge(a, a, js), a), "idempotent");
        assert.ok(!(wins(a, b, js) && wins(b, a, js)), "antisymmetric");
      }),
      fcParams(100_000),
    );
  });

  it("the merge kernel decides batches exactly as the scalar rule, on every implementation", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(recordArb, recordArb), { maxLength: 70 }), (pairs) => {
        const want = Uint8Array.from(pairs, ([r, cur]) => (wins(r, cur, js) ? 1 : 0));
        for (const k of kernelSets) assert.deepEqual(mergeBatch(k, pairs), want, k.name);
      }),
      fcParams(3_000),
    );
  });
});

/** A random op set over few souls, fields, states and actors: many conflicts and exact ties. */
function opSet(rand: () => number, n: number): Op[] {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const values = [null, 0, 1, "x", "y", true, { "#": "other" }, new Uint8Array([1])];
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    ops.push({
      soul: pick(["a", "b", "c", "d"]),
      field: pick(["f", "g", "h"]),
      value: pick(values),
      state: (1_700_000_000_000 + Math.floor(rand() * 4)).toString(16).padStart(12, "0") +
        Math.floor(rand() * 3).toString(16).padStart(4, "0"),
      actor: pick(["0000000000000001", "0000000000000002", "7fffffff00000000"]),
    });
  }
  return ops;
}

describe("convergence", () => {
  it("100 random orderings (with duplicates and random batch sizes) give byte-identical states", async () => {
    const rand = prng(SEED);
    const ops = opSet(rand, 300);
    let reference: string | undefined;
    for (let round = 0; round < 100; round++) {
      const delivery = [...ops, ...ops.filter(() => rand() < 0.3)];
      for (let i = delivery.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [delivery[i], delivery[j]] = [delivery[j], delivery[i]];
      }
      const db = await Database.create({
        store: new MemoryStore(),
        kernels: kernelSets[round % kernelSets.length],
      });
      for (let at = 0; at < delivery.length;) {
        const size = 1 + Math.floor(rand() * (rand() < 0.3 ? 150 : 10)); // some batches reach the kernel path
        await db.applyOps(delivery.slice(at, at += size));
      }
      const hash = await db.stateHash();
      reference ??= hash;
      assert.equal(hash, reference, `round ${round} (seed ${SEED}) diverged`);
      await db.close();
    }
  });

  it("clock skew of ±24 h never loses the causally later write nor applies a future state early", async () => {
    const rand = prng(SEED ^ 0x5eed);
    const DAY = 86_400_000, MAX_DRIFT = 600_000;
    for (let trial = 0; trial < 20; trial++) {
      let t = 1_700_000_000_000;
      const offsets = Array.from({ length: 4 }, (_, i) => i === 0 ? 0 : Math.round((rand() * 2 - 1) * DAY));
      const dbs = await Promise.all(
        offsets.map((off) =>
          // Skews up to 2 days apart: past the default horizon (1 day), which would refuse them.
          Database.create({
            store: new MemoryStore(),
            kernels: js,
            now: () => t + off,
            maxDrift: MAX_DRIFT,
            horizon: 3 * DAY,
          })
        ),
      );
      const inbox: Op[][] = dbs.map(() => []);
      // For each write: the writes of the same field that were visible at the writer when it wrote.
      const seenBefore = new Map<string, Set<string>>();
      const fieldOfWrite = new Map<string, string>();
      const checkNoEarly = async () => {
        for (let r = 0; r < dbs.length; r++) {
          for (const op of (await dbs[r].exportOps({ limit: 1e6 })).ops) {
            if (op.actor === dbs[r].actor) continue;
            assert.ok(
              hlcMs(op.state) <= t + offsets[r] + MAX_DRIFT,
              `replica ${r} applied a future state early`,
            );
          }
        }
      };
      for (let step = 0; step < 60; step++) {
        const r = Math.floor(rand() * dbs.length);
        const action = rand();
        if (action < 0.4) {
          const field = ["x", "y"][Math.floor(rand() * 2)];
          const visible = await dbs[r].get("doc");
          const id = `${trial}.${step}`;
          const { state } = await dbs[r].put("doc", { [field]: id });
          const before = visible?.[field];
          seenBefore.set(id, new Set(before === undefined ? [] : [String(before)]));
          fieldOfWrite.set(id, field);
          const op: Op = { soul: "doc", field, value: id, state, actor: dbs[r].actor };
          dbs.forEach((_, i) => i !== r && inbox[i].push(op));
        } else if (action < 0.8) {
          const batch = inbox[r].splice(0);
          if (batch.length > 0) await dbs[r].applyOps(batch);
        } else {
          t += Math.floor(rand() * 4 * 3_600_000); // up to 4 h passes
          for (const db of dbs) await db.processDeferred();
        }
        await checkNoEarly();
      }
      // Deliver everything and let every clock pass every deferred state.
      for (let r = 0; r < dbs.length; r++) await dbs[r].applyOps(inbox[r].splice(0));
      t += 3 * DAY;
      for (const db of dbs) await db.processDeferred();
      const finals = await Promise.all(dbs.map((db) => db.stateHash()));
      assert.ok(finals.every((h) => h === finals[0]), `trial ${trial} (seed ${SEED}) did not converge`);
      const doc = (await dbs[0].get("doc")) ?? {};
      // Transitive closure of "was visible when written": the final value must not precede another write.
      const precedes = (earlier: string, later: string, seen = new Set<string>()): boolean => {
        for (const p of seenBefore.get(later) ?? []) {
          if (p === earlier || (!seen.has(p) && (seen.add(p), precedes(earlier, p, seen)))) return true;
        }
        return false;
      };
      for (const field of ["x", "y"]) {
        const final = doc[field] as string | undefined;
        for (const [id, f] of fieldOfWrite) {
          if (f !== field) continue;
          assert.ok(final !== undefined, `trial ${trial}: field ${field} was written but is missing`);
          assert.ok(
            !precedes(final, id),
            `trial ${trial} (seed ${SEED}): ${final} won over the causally later ${id}`,
          );
        }
      }
      for (const db of dbs) await db.close();
    }
  });
});

/**
 * A MemoryStore without its synchronous twins (so the Database awaits it, as
 * it awaits SQLite's worker in a browser), counting its `readFields` calls.
 */
function awaitedStore(): Store & { reads: number } {
  const mem = new MemoryStore();
  const store = {
    reads: 0,
    engine: "memory",
    durable: false,
    readNode: (soul: string) => mem.readNode(soul),
    readFields: (keys: Parameters<Store["readFields"]>[0]) => (store.reads++, mem.readFields(keys)),
    commit: (batch: Parameters<Store["commit"]>[0]) => mem.commit(batch),
    list: (options: Parameters<Store["list"]>[0]) => mem.list(options),
    changes: (after: number, options: Parameters<Store["changes"]>[1]) => mem.changes(after, options),
    lastSeq: () => mem.lastSeq(),
    deferred: () => mem.deferred(),
    getMeta: (key: string) => mem.getMeta(key),
    close: () => mem.close(),
  };
  return store;
}

describe("local writes racing foreign ones in the commit queue", () => {
  const T = 1_700_000_000_000;
  /** A foreign op on doc.f stamped 5 s ahead of `T` (within maxDrift: merged, not deferred). */
  async function laterForeignOp(): Promise<Op> {
    const src = await Database.create({ store: new MemoryStore(), kernels: js, now: () => T + 5_000 });
    await src.put("doc", { f: "foreign" });
    const op = (await src.exportOps()).ops.find((o) => o.soul === "doc")!;
    await src.close();
    return op;
  }
  const cases: [string, () => MemoryStore | Store, boolean][] = [
    ["memory store, keyless", () => new MemoryStore(), false],
    ["awaited store, keyless", awaitedStore, false],
    ["memory store, signed", () => new MemoryStore(), true],
    ["awaited store, signed", awaitedStore, true],
  ];
  for (const [name, makeStore, signed] of cases) {
    it(`${name}: a put made while a later foreign op waits in the queue is stamped after it`, async () => {
      const foreign = await laterForeignOp();
      const identity: Identity | undefined = signed ? await createIdentity() : undefined;
      const a = await Database.create({ store: makeStore(), kernels: js, now: () => T, identity });
      void a.put("warm", { w: 1 }); // the first write of the turn: committed at once, or under way
      const applied = a.applyOps([foreign]);
      const put = a.put("doc", { f: "local" });
      await applied;
      const { state } = await put;
      assert.ok(state > foreign.state, `the local write (${state}) is stamped after ${foreign.state}`);
      assert.deepEqual(await a.get("doc"), { f: "local" });
      // A replica that got the foreign op first takes the local one too: they converge.
      const b = await Database.create({ store: new MemoryStore(), kernels: js, now: () => T });
      await b.applyOps([foreign]);
      await b.applyOps((await a.exportOps()).ops);
      assert.equal(await b.stateHash(), await a.stateHash());
      await a.close();
      await b.close();
    });

    it(`${name}: a later foreign op queued after a put (before it committed) wins`, async () => {
      const foreign = await laterForeignOp();
      const identity: Identity | undefined = signed ? await createIdentity() : undefined;
      const a = await Database.create({ store: makeStore(), kernels: js, now: () => T, identity });
      void a.put("warm", { w: 1 });
      // Stamped before the foreign op is queued; a signed one is queued only once signed, after it.
      const put = a.put("doc", { f: "local" });
      const applied = a.applyOps([foreign]);
      const [{ state }] = await Promise.all([put, applied]);
      assert.ok(state < foreign.state);
      assert.deepEqual(await a.get("doc"), { f: "foreign" });
      await a.close();
    });
  }

  it("a signed put nobody raced is stored without reading the store first, as an unsigned one is", async () => {
    const store = awaitedStore();
    const a = await Database.create({ store, kernels: js, identity: await createIdentity() });
    const before = store.reads;
    for (let i = 0; i < 20; i++) await a.put(`n${i}`, { i });
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.put(`m${i}`, { i })));
    assert.equal(store.reads, before, "no readFields for the database's own writes");
    // Once a foreign op as late as a pending signed write was queued, that write is merged (read first).
    const foreign = await Database.create({
      store: new MemoryStore(),
      kernels: js,
      now: () => Date.now() + 5_000,
    });
    await foreign.put("x", { f: 1 });
    const put = a.put("x", { f: 2 });
    await a.applyOps((await foreign.exportOps()).ops);
    await put;
    assert.ok(store.reads > before, "the raced write was merged");
    assert.deepEqual(await a.get("x"), { f: 1 });
    await foreign.close();
    await a.close();
  });
});
