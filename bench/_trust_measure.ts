/**
 * The figures of the `trust` suite (bench/trust.bench.ts) that are timed by
 * hand, runtime-neutral so that the same code runs on Deno, Bun and in
 * Chromium (bench/_trust_page.ts): sign and verify per signature
 * (WebCrypto and `@noble/curves`), the signing overhead of an awaited put
 * (alternating rounds, median), and the apply of 100k foreign ops in frames
 * of 2,000 (signed in bulk, one signature per op, unsigned). Not a suite.
 *
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { createIdentity, type Identity, open, verifySignature } from "../mod.ts";
import { encodeOps, type Op } from "../core/op.ts";
import { signingBackend } from "../core/trust/identity.ts";

export const BULK_OPS = 100_000;
export const FRAME_OPS = 2_000;
const PUTS = 2_000;
const SIGS = 2_000;

/** What {@link measureTrust} found, ns per item. */
export interface TrustFigures {
  readonly backend: "webcrypto" | "noble";
  readonly signWeb?: number;
  readonly verifyWeb?: number;
  readonly signNoble: number;
  readonly verifyNoble: number;
  readonly putSigned: number;
  readonly putUnsigned: number;
  readonly applyBulk: number;
  readonly applyOnePerPut: number;
  readonly applyUnsigned: number;
}

/** The ops of a writer with `identity`: `BULK_OPS` of them, `perPut` fields per put. */
export async function writerOps(
  identity: Identity | undefined,
  perPut: number,
  total = BULK_OPS,
): Promise<Op[]> {
  const db = await open({ storage: "memory", identity });
  const writes: Promise<unknown>[] = [];
  for (let p = 0; p < total / perPut; p++) {
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

/** The ops in encoded frames of {@link FRAME_OPS}, as sync brings them. */
export function framesOf(ops: Op[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < ops.length; i += FRAME_OPS) out.push(encodeOps(ops.slice(i, i + FRAME_OPS)));
  return out;
}

/** Ns per op to merge `frames` (`n` ops) into a fresh memory replica, each frame from a peer. */
export async function applyNs(frames: Uint8Array[], n: number): Promise<number> {
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

/** Median ns per awaited put with and without signing, over alternating rounds. */
export async function putNs(me: Identity): Promise<{ signed: number; unsigned: number }> {
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

async function perCall(n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  return (performance.now() - t0) * 1e6 / n;
}

/** Every hand-timed figure of the suite, in this runtime. */
export async function measureTrust(): Promise<TrustFigures> {
  const me = await createIdentity();
  const backend = await signingBackend();
  const msg = new Uint8Array(50).fill(7);
  const seed = new Uint8Array(32).fill(3), pub = ed25519.getPublicKey(seed);
  const nobleSig = ed25519.sign(msg, seed), webSig = await me.sign(msg);
  const web = backend === "webcrypto"
    ? {
      signWeb: await perCall(SIGS, () => me.sign(msg)),
      verifyWeb: await perCall(SIGS, () => verifySignature(me.publicKey, webSig, msg)),
    }
    : {};
  const signNoble = await perCall(SIGS / 10, () => ed25519.sign(msg, seed));
  const verifyNoble = await perCall(SIGS / 10, () => ed25519.verify(nobleSig, msg, pub));
  const put = await putNs(me);
  const applyBulk = await applyNs(framesOf(await writerOps(me, 100)), BULK_OPS);
  const applyOnePerPut = await applyNs(framesOf(await writerOps(me, 1)), BULK_OPS);
  const applyUnsigned = await applyNs(framesOf(await writerOps(undefined, 100)), BULK_OPS);
  return {
    backend,
    ...web,
    signNoble,
    verifyNoble,
    putSigned: put.signed,
    putUnsigned: put.unsigned,
    applyBulk,
    applyOnePerPut,
    applyUnsigned,
  };
}
