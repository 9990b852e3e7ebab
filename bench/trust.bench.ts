/**
 * The `trust` suite: what signatures cost (issue 16).
 *
 * - **sign / verify one op**: an Ed25519 signature of a commit root, by
 *   WebCrypto (the runtime's native Ed25519, what Lattice uses where it
 *   exists) and by `@noble/curves` (pure JS, the fallback), side by side.
 * - **awaited put**: `put` then await, on the memory store, by a replica
 *   with an identity (every write signed) and one without. The signing
 *   overhead (signed − unsigned, median of alternating rounds) is a measured
 *   row with the limit of 100 µs.
 * - **signed bulk apply**: 100k foreign ops merged from encoded batches of
 *   2,000 ops (as sync frames bring them) into a memory replica, as ops/s
 *   (ns per op): ops a writer made in bulk (puts of 100 fields, one
 *   signature per chunk of 64), ops made one put each (one signature per op:
 *   the worst case, bounded by one verification per op), and the same 100k
 *   unsigned. The floor, 30,000 ops/s, is a limit on the bulk row.
 * - **private put / get**: `putPrivate` (two fields sealed with AES-GCM, then
 *   a signed put) beside a signed `put` of the same plain fields, and
 *   `getPrivate` beside `get`.
 *
 * Run: `deno task bench trust`, `bun scripts/bench.ts trust`.
 *
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { createIdentity, type Identity, open, verifySignature } from "../mod.ts";
import { encodeOps, type Op } from "../core/op.ts";
import { signingBackend } from "../core/trust/identity.ts";
import type { BenchSetup, BenchSuite } from "../scripts/bench.ts";

const BULK_OPS = 100_000;
const FRAME_OPS = 2_000;
const PUTS = 2_000;

/** The ops of a writer with `identity`: `BULK_OPS` of them, `perPut` fields per put. */
async function writerOps(identity: Identity | undefined, perPut: number): Promise<Op[]> {
  const db = await open({ storage: "memory", identity });
  const writes: Promise<unknown>[] = [];
  for (let p = 0; p < BULK_OPS / perPut; p++) {
    const data: Record<string, number> = {};
    for (let f = 0; f < perPut; f++) data[`f${f}`] = p * perPut + f;
    const w = db.put(`n/${p}`, data);
    if (perPut === 1) await w; // one commit, so one signature, per op
    else writes.push(w);
  }
  await Promise.all(writes);
  const ops: Op[] = [];
  for (let cursor: number | undefined, page;; cursor = page.cursor) {
    page = await db.exportOps({ cursor, limit: 20_000 });
    ops.push(...page.ops);
    if (page.cursor === undefined) break;
  }
  await db.close();
  return ops;
}

/** Ns per op to merge `frames` into a fresh memory replica (each frame from a peer). */
async function applyNs(frames: Uint8Array[], n: number): Promise<number> {
  const db = await open({ storage: "memory" });
  const t0 = performance.now();
  for (const f of frames) {
    const r = await db.applyOps(f, { source: "peer" });
    if (r.refused) throw new Error(`${r.refused} ops refused: the bench's ops should all verify`);
  }
  const ns = (performance.now() - t0) * 1e6 / n;
  if ((await db.countNodes()) === 0) throw new Error("nothing applied");
  await db.close();
  return ns;
}

function framesOf(ops: Op[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < ops.length; i += FRAME_OPS) out.push(encodeOps(ops.slice(i, i + FRAME_OPS)));
  return out;
}

/** Median ns per awaited put with and without signing, over alternating rounds. */
async function putOverhead(me: Identity): Promise<{ signed: number; unsigned: number }> {
  const signedDb = await open({ storage: "memory", identity: me });
  const plainDb = await open({ storage: "memory" });
  const rounds: number[][] = [[], []];
  for (let round = 0; round < 6; round++) {
    for (const [k, db] of [[0, signedDb], [1, plainDb]] as const) {
      const t0 = performance.now();
      for (let i = 0; i < PUTS; i++) await db.put(`p/${round}/${i}`, { i });
      rounds[k].push((performance.now() - t0) * 1e6 / PUTS);
    }
  }
  await signedDb.close();
  await plainDb.close();
  const median = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1];
  return { signed: median(rounds[0]), unsigned: median(rounds[1]) };
}

export const suite: BenchSuite = {
  description: "Ed25519 sign/verify (WebCrypto vs @noble/curves), signed puts, signed bulk apply",
  async setup(): Promise<BenchSetup> {
    const me = await createIdentity();
    const msg = new Uint8Array(50).fill(7);
    const seed = crypto.getRandomValues(new Uint8Array(32)), pub = ed25519.getPublicKey(seed);
    const nobleSig = ed25519.sign(msg, seed);
    const webSig = await me.sign(msg);
    const backend = await signingBackend();

    const bulk = framesOf(await writerOps(me, 100));
    const single = framesOf(await writerOps(me, 1));
    const plain = framesOf(await writerOps(undefined, 100));
    const bulkNs = await applyNs(bulk, BULK_OPS);
    const singleNs = await applyNs(single, BULK_OPS);
    const plainNs = await applyNs(plain, BULK_OPS);
    const overhead = await putOverhead(me);

    const signedDb = await open({ storage: "memory", identity: me });
    const plainDb = await open({ storage: "memory" });
    await signedDb.trust.shareKey("bench", [(await createIdentity()).id]);
    await signedDb.trust.putPrivate("sealed", { text: "a private value of some length", n: 1 }, "bench");
    await signedDb.put("open", { text: "a private value of some length", n: 1 });
    let k = 0;
    return {
      cases: [
        {
          name: "sign one commit root",
          impls: backend === "webcrypto"
            ? { webcrypto: () => me.sign(msg), "@noble/curves": () => ed25519.sign(msg, seed) }
            : { "@noble/curves": () => ed25519.sign(msg, seed) },
        },
        {
          name: "verify one signature",
          impls: backend === "webcrypto"
            ? {
              webcrypto: () => verifySignature(me.publicKey, webSig, msg),
              "@noble/curves": () => ed25519.verify(nobleSig, msg, pub),
            }
            : { "@noble/curves": () => ed25519.verify(nobleSig, msg, pub) },
        },
        {
          name: "awaited put (memory)",
          impls: {
            signed: () => signedDb.put(`a/${k++}`, { k }),
            unsigned: () => plainDb.put(`b/${k++}`, { k }),
          },
        },
        {
          name: "private put (AES-GCM, awaited, signed)",
          impls: {
            private: () =>
              signedDb.trust.putPrivate(
                `s/${k++}`,
                { text: "a private value of some length", n: k },
                "bench",
              ),
            "signed put": () => signedDb.put(`o/${k++}`, { text: "a private value of some length", n: k }),
          },
        },
        {
          name: "private get",
          impls: {
            getPrivate: () => signedDb.trust.getPrivate("sealed"),
            get: () => signedDb.get("open"),
          },
        },
        {
          name: "signing overhead per awaited put",
          impls: {},
          measured: { "signed-minus-unsigned": Math.max(0, overhead.signed - overhead.unsigned) },
          limits: [{ atMost: 100_000 }],
        },
        {
          name: "apply 100k foreign ops, per op",
          impls: {},
          measured: { "signed-bulk": bulkNs, "signed-one-per-put": singleNs, unsigned: plainNs },
          subject: "signed-bulk",
          limits: [{ atMost: 1e9 / 30_000 }],
        },
      ],
      notes: [
        `signing backend here: ${backend}`,
        `awaited put (alternating rounds of ${PUTS}, median): signed ${
          (overhead.signed / 1000).toFixed(1)
        } µs, ` +
        `unsigned ${(overhead.unsigned / 1000).toFixed(1)} µs`,
        `apply 100k in frames of ${FRAME_OPS}: signed in bulk ${Math.round(1e9 / bulkNs)} ops/s, ` +
        `one signature per op ${Math.round(1e9 / singleNs)} ops/s, unsigned ${
          Math.round(1e9 / plainNs)
        } ops/s`,
      ],
      dispose() {
        void signedDb.close();
        void plainDb.close();
      },
    };
  },
};
