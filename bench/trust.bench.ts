/**
 * The `trust` suite: what signatures and private values cost (issue 16), on
 * the runtime that runs the suite and in headless Chromium, side by side.
 *
 * - **sign / verify one signature**: Ed25519 by WebCrypto (the runtime's
 *   native Ed25519, what Lattice uses where it exists) and by
 *   `@noble/curves` (pure JS, the fallback).
 * - **awaited put**: `put` then await, on the memory store, by a replica
 *   with an identity (every write signed) and one without; the signing
 *   overhead (signed − unsigned, median of alternating rounds) has the
 *   issue's limit of 100 µs.
 * - **apply 100k foreign ops**: merged from encoded frames of 2,000 ops (as
 *   sync brings them) into a memory replica, ns per op: ops made in bulk
 *   (puts of 100 fields: one signature per chunk of 64), ops made one put
 *   each (one signature per op: bounded by one verification per op), and
 *   the same 100k unsigned. The floor, 30,000 ops/s, is a limit on
 *   the bulk row.
 * - **private put / get**: `putPrivate` (fields sealed with AES-GCM, then a
 *   signed put) beside a signed `put`, and `getPrivate` beside `get`.
 *
 * The hand-timed figures come from bench/_trust_measure.ts, run here and in
 * Chromium (bench/_trust_browser.ts; left out with a note when there is no
 * Chromium).
 *
 * Run: `deno task bench trust`, `bun scripts/bench.ts trust`.
 *
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { createIdentity, open, verifySignature } from "../mod.ts";
import type { BenchCase, BenchSetup, BenchSuite } from "../scripts/bench.ts";
import { FRAME_OPS, measureTrust, type TrustFigures } from "./_trust_measure.ts";
import { trustInChromium } from "./_trust_browser.ts";

const runtime = "Bun" in globalThis ? "bun" : "deno";

/** The measured rows of one runtime's figures, named `<runtime>-…`. */
function rows(
  name: string,
  f: TrustFigures,
): {
  sign: Record<string, number>;
  verify: Record<string, number>;
  overhead: number;
  apply: Record<string, number>;
} {
  return {
    sign: { ...(f.signWeb ? { [`${name}-webcrypto`]: f.signWeb } : {}), [`${name}-noble`]: f.signNoble },
    verify: {
      ...(f.verifyWeb ? { [`${name}-webcrypto`]: f.verifyWeb } : {}),
      [`${name}-noble`]: f.verifyNoble,
    },
    overhead: Math.max(0, f.putSigned - f.putUnsigned),
    apply: {
      [`${name}-signed-bulk`]: f.applyBulk,
      [`${name}-one-signature-per-op`]: f.applyOnePerPut,
      [`${name}-unsigned`]: f.applyUnsigned,
    },
  };
}

const opsPerSecond = (ns: number) => Math.round(1e9 / ns).toLocaleString("en-US");

export const suite: BenchSuite = {
  description:
    "Ed25519 sign/verify (WebCrypto vs @noble/curves), signed puts, signed bulk apply, private values",
  async setup(): Promise<BenchSetup> {
    const here = await measureTrust();
    const browser = await trustInChromium().catch((e) => `Chromium run failed: ${(e as Error).message}`);
    const mine = rows(runtime, here);
    const theirs = typeof browser === "string" ? undefined : rows("chromium", browser.figures);

    const me = await createIdentity();
    const msg = new Uint8Array(50).fill(7);
    const seed = new Uint8Array(32).fill(3), pub = ed25519.getPublicKey(seed);
    const nobleSig = ed25519.sign(msg, seed), webSig = await me.sign(msg);
    const signedDb = await open({ storage: "memory", identity: me });
    const plainDb = await open({ storage: "memory" });
    await signedDb.trust.shareKey("bench", [(await createIdentity()).id]);
    const text = "a private value of some length";
    await signedDb.trust.putPrivate("sealed", { text, n: 1 }, "bench");
    await signedDb.put("open", { text, n: 1 });
    let k = 0;
    const web = here.backend === "webcrypto";
    const cases: BenchCase[] = [
      {
        name: "sign one commit root",
        impls: {
          ...(web ? { webcrypto: () => me.sign(msg) } : {}),
          "@noble/curves": () => ed25519.sign(msg, seed),
        },
      },
      {
        name: "verify one signature",
        impls: {
          ...(web ? { webcrypto: () => verifySignature(me.publicKey, webSig, msg) } : {}),
          "@noble/curves": () => ed25519.verify(nobleSig, msg, pub),
        },
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
          private: () => signedDb.trust.putPrivate(`s/${k++}`, { text, n: k }, "bench"),
          "signed put": () => signedDb.put(`o/${k++}`, { text, n: k }),
        },
      },
      {
        name: "private get",
        impls: { getPrivate: () => signedDb.trust.getPrivate("sealed"), get: () => signedDb.get("open") },
      },
      { name: "sign, by hand", impls: {}, measured: { ...mine.sign, ...theirs?.sign } },
      { name: "verify, by hand", impls: {}, measured: { ...mine.verify, ...theirs?.verify } },
    ];
    for (const [name, r] of [[runtime, mine], ["chromium", theirs]] as const) {
      if (r === undefined) continue;
      cases.push({
        name: `${name}: signing overhead per awaited put`,
        impls: {},
        measured: { "signed-minus-unsigned": r.overhead },
        limits: [{ atMost: 100_000 }],
      });
      cases.push({
        name: `${name}: apply 100k foreign ops, per op`,
        impls: {},
        measured: r.apply,
        subject: `${name}-signed-bulk`,
        limits: [{ atMost: 1e9 / 30_000 }],
      });
    }
    const line = (name: string, f: TrustFigures) =>
      `${name}: backend ${f.backend}; awaited put signed ${(f.putSigned / 1000).toFixed(1)} µs, unsigned ` +
      `${(f.putUnsigned / 1000).toFixed(1)} µs; apply in frames of ${FRAME_OPS}: signed in bulk ` +
      `${opsPerSecond(f.applyBulk)} ops/s, one signature per op ${opsPerSecond(f.applyOnePerPut)} ops/s, ` +
      `unsigned ${opsPerSecond(f.applyUnsigned)} ops/s`;
    return {
      cases,
      notes: [
        line(runtime, here),
        typeof browser === "string"
          ? `Chromium left out: ${browser}`
          : line(`chromium ${browser.version}`, browser.figures),
      ],
      dispose() {
        void signedDb.close();
        void plainDb.close();
      },
    };
  },
};
