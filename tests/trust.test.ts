/**
 * Signed ops and protected souls, between databases with no network
 * (core/trust/, core/db/trust.ts): every case of issue 16's negative suite
 * that a single merge decides. Each refused op is neither stored nor
 * counted as applied, and the honest state (its `stateHash`) is unchanged;
 * from a peer (`source`) it is dropped and counted in `refused`, from a
 * local caller the call fails with a `TrustError`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  createIdentity,
  Database,
  type Identity,
  isKeyActor,
  loadKernels,
  type Op,
  TrustError,
} from "../mod.ts";
import { encodeOps, recordToOp } from "../core/op.ts";
import { storeOf } from "../core/database.ts";
import { createCertificate } from "../core/trust/certificate.ts";
import { openStore } from "../storage/open.ts";

/** A memory replica with `identity`, its writes signed for `space` (default `default`). */
async function replica(identity?: Identity, space?: string): Promise<Database> {
  const store = await openStore({ storage: "memory" });
  return await Database.create({ store, kernels: await loadKernels(), identity, space });
}

/** A later state than `state` (by one counter step). */
const after = (state: string): string => (BigInt("0x" + state) + 1n).toString(16).padStart(16, "0");

async function opsOf(db: Database): Promise<Op[]> {
  return (await db.exportOps()).ops;
}

/** Applies `ops` from a peer; asserts every one was refused and nothing changed. */
async function refused(db: Database, ops: Op[], why?: RegExp): Promise<void> {
  const before = await db.stateHash();
  const r = await db.applyOps(ops, { source: "peer-x" });
  assert.equal(r.applied, 0, "nothing applied");
  assert.equal(r.refused, ops.length, "every op refused");
  assert.equal(await db.stateHash(), before, "honest state unchanged");
  if (why) {
    await assert.rejects(db.applyOps(ops), (e: Error) => e instanceof TrustError && why.test(e.message));
  } else await assert.rejects(db.applyOps(ops), TrustError);
  assert.equal(await db.stateHash(), before);
}

describe("signed ops", () => {
  it("a replica with an identity signs every write; another replica verifies and merges them", async () => {
    const me = await createIdentity();
    const a = await replica(me), b = await replica();
    assert.equal(a.actor, me.actor);
    assert.ok(isKeyActor(a.actor));
    assert.ok(!isKeyActor(b.actor), "a keyless replica's actor id has the top bit clear");
    await a.put("alice", { name: "Alice", pet: { name: "Rex" } });
    await a.delete("alice", "name");
    const ops = await opsOf(a);
    assert.equal(ops.length, 3);
    for (const op of ops) assert.ok(op.sig instanceof Uint8Array && op.sig.length >= 101);
    assert.deepEqual(await b.applyOps(ops, { source: "p" }), { applied: 3, ignored: 0, deferred: 0 });
    assert.equal(await b.stateHash(), await a.stateHash());
    // The encoded batch (what gossip and sync carry) too, and one op alone.
    const c = await replica();
    assert.equal((await c.applyOps(encodeOps(ops), { source: "p" })).applied, 3);
    const d = await replica();
    assert.equal((await d.applyOps([ops[1]])).applied, 1);
    for (const db of [a, b, c, d]) await db.close();
  });

  it("ops written together are signed in chunks, and each still verifies on its own", async () => {
    const a = await replica(await createIdentity());
    const data: Record<string, number> = {};
    for (let i = 0; i < 150; i++) data[`f${i}`] = i; // three chunks: 64 + 64 + 22
    await Promise.all([a.put("many", data), a.put("other", { x: 1 })]);
    const ops = await opsOf(a);
    const sigs = new Set(ops.map((op) => Array.from(op.sig!.subarray(33, 97)).join(",")));
    assert.ok(sigs.size >= 3 && sigs.size < ops.length, `${sigs.size} signatures for ${ops.length} ops`);
    const b = await replica();
    for (const op of ops) assert.equal((await b.applyOps([op])).applied, 1);
    assert.equal(await b.stateHash(), await a.stateHash());
    await a.close();
    await b.close();
  });

  it("refuses an unsigned op under a key's actor id (someone else's name), and accepts keyless ones", async () => {
    const victim = await replica(await createIdentity()), b = await replica();
    await victim.put("doc", { v: "honest" });
    await b.applyOps(await opsOf(victim));
    const [op] = await opsOf(victim);
    const forged: Op = { soul: "doc", field: "v", value: "forged", state: after(op.state), actor: op.actor };
    await refused(b, [forged], /unsigned op under a key's actor id/);
    // A keyless writer may write public souls (anyone writes there).
    const open = { soul: "pub", field: "v", value: 1, state: op.state, actor: "0000000000000001" };
    assert.equal((await b.applyOps([open])).applied, 1);
    await victim.close();
    await b.close();
  });

  it("refuses a wrong key, and a signature moved to another value, field, soul, state or space", async () => {
    const me = await createIdentity(), other = await createIdentity();
    const a = await replica(me), x = await replica(other), b = await replica();
    await a.put("doc", { v: 1, w: 2 });
    await x.put("doc", { v: 3 });
    const [v, w] = await opsOf(a);
    await b.applyOps([v, w]);
    const [theirs] = await opsOf(x);
    await refused(b, [{ ...theirs, actor: v.actor }], /not the actor's/); // another key under my actor
    await refused(b, [{ ...v, value: 99 }], /bad signature/);
    await refused(b, [{ ...v, field: "z" }], /bad signature/);
    await refused(b, [{ ...v, soul: "elsewhere" }], /bad signature/);
    await refused(b, [{ ...v, sig: w.sig }], /bad signature/); // w's signature on v
    await refused(b, [{ ...v, state: after(v.state) }], /bad signature/);
    const damaged = v.sig!.slice();
    damaged[40] ^= 1;
    await refused(b, [{ ...v, sig: damaged }], /bad signature/);
    await refused(b, [{ ...v, sig: v.sig!.subarray(0, 60) }], /sig too short/);
    // Signed for space "default": refused by a replica of space "other".
    const inOther = await replica(undefined, "other");
    await refused(inOther, [v], /bad signature/);
    for (const db of [a, x, b, inOther]) await db.close();
  });

  it("a replayed older op changes nothing", async () => {
    const a = await replica(await createIdentity()), b = await replica();
    await a.put("doc", { v: 1 });
    const [old] = await opsOf(a);
    await a.put("doc", { v: 2 });
    await b.applyOps(await opsOf(a));
    const before = await b.stateHash();
    assert.deepEqual(await b.applyOps([old], { source: "p" }), { applied: 0, ignored: 1, deferred: 0 });
    assert.equal(await b.stateHash(), before);
    assert.deepEqual(await b.get("doc"), { v: 2 });
    await a.close();
    await b.close();
  });
});

describe("protected souls ~<key>/…", () => {
  it("accept only their owner's signed ops", async () => {
    const owner = await createIdentity(), stranger = await createIdentity();
    const a = await replica(owner),
      s = await replica(stranger),
      b = await replica(),
      keyless = await replica();
    const home = `~${owner.id}/profile`;
    await a.put(home, { name: "Owner" });
    assert.equal((await b.applyOps(await opsOf(a), { source: "p" })).applied, 1);
    // The stranger cannot write there locally...
    await assert.rejects(s.put(home, { name: "Mallory" }), /protected by another key/);
    await assert.rejects(keyless.put(home, { name: "Mallory" }), /needs the owner's identity/);
    // ...and its signed op, or an unsigned one, is refused by others.
    const [op] = await opsOf(a);
    await s.put("x", { y: 1 });
    const [own] = await opsOf(s);
    const reSigned = { ...op, value: "Mallory", actor: own.actor, sig: own.sig };
    await refused(b, [reSigned]);
    await refused(
      b,
      [{ soul: home, field: "name", value: "M", state: op.state, actor: "0000000000000002" }],
      /unsigned op in a protected soul/,
    );
    assert.deepEqual(await b.get(home), { name: "Owner" });
    for (const db of [a, s, b, keyless]) await db.close();
  });

  it("accept a grantee's ops under a certificate, within its prefix, fields and expiry, until revoked", async () => {
    const owner = await createIdentity(), bob = await createIdentity(), carol = await createIdentity();
    const a = await replica(owner), writerB = await replica(bob), writerC = await replica(carol);
    const board = `~${owner.id}/board`;
    const day = Date.now() + 86_400_000;
    // One certificate for two grantees: both may use it.
    const cert = await a.trust.certify({ grantees: [bob.id, carol.id], prefix: board, expires: day });
    await writerB.trust.useCertificate(cert);
    await writerC.trust.useCertificate(cert);
    await writerB.put(`${board}/1`, { text: "from bob" });
    await writerC.put(`${board}/2`, { text: "from carol" }); // the second grantee: accepted
    const r = await a.applyOps([...await opsOf(writerB), ...await opsOf(writerC)], { source: "p" });
    assert.equal(r.applied, 2);
    // Another prefix, or a field the certificate does not allow, is refused locally and by others.
    await assert.rejects(writerB.put(`~${owner.id}/private`, { x: 1 }), /another prefix|no certificate/);
    const fieldsOnly = await a.trust.certify({
      grantees: [bob.id],
      prefix: board,
      fields: ["text"],
      expires: day,
    });
    const bob2 = await replica(bob);
    await bob2.trust.useCertificate(fieldsOnly);
    await assert.rejects(bob2.put(`${board}/3`, { other: 1 }), /does not allow this field/);
    // An op under a certificate for another prefix, crafted past the local check, is refused by the owner.
    const narrow = await createCertificate(owner, {
      grantees: [bob.id],
      prefix: `${board}/only`,
      expires: day,
    });
    const bob3 = await replica(bob);
    await bob3.trust.useCertificate(narrow);
    await bob3.put(`${board}/only/1`, { text: "ok" });
    const [narrowOp] = await opsOf(bob3);
    assert.equal((await a.applyOps([narrowOp])).applied, 1);
    await refused(a, [{ ...narrowOp, soul: `${board}/elsewhere` }]);
    // Expired by the receiver's clock (the writer's clock is not asked).
    const expired = await createCertificate(owner, {
      grantees: [bob.id],
      prefix: board,
      expires: Date.now() + 200,
    });
    const bob4 = await replica(bob);
    await bob4.trust.useCertificate(expired);
    await bob4.put(`${board}/late`, { text: "late" });
    await new Promise((r) => setTimeout(r, 250));
    await refused(a, await opsOf(bob4), /certificate expired/);
    // Revoked: the owner's revocation replicates; ops under the certificate are then refused.
    await a.trust.revoke(cert);
    const b = await replica();
    await b.applyOps(await opsOf(a), { source: "p" });
    await writerB.put(`${board}/after`, { text: "after revocation" });
    const afterOps = (await opsOf(writerB)).filter((op) => op.soul.endsWith("/after"));
    await refused(b, afterOps, /certificate revoked/);
    // A grantee cannot un-revoke: the revocation soul is the owner's alone.
    await assert.rejects(writerC.put(`~${owner.id}/~revoked`, { x: false }), /only the owner/);
    for (const db of [a, writerB, writerC, bob2, bob3, bob4, b]) await db.close();
  });
});

describe("private values", () => {
  it("readers open them; other replicas hold and sync only ciphertext; rotation shuts removed readers out", async () => {
    const alice = await createIdentity(), bob = await createIdentity(), eve = await createIdentity();
    const a = await replica(alice), b = await replica(bob), e = await replica(eve), relay = await replica();
    assert.equal(await a.trust.shareKey("notes", [bob.id]), 1);
    await a.trust.putPrivate("diary/1", { text: "the secret plan", n: 42 }, "notes");
    assert.deepEqual(await a.trust.getPrivate("diary/1"), { text: "the secret plan", n: 42 });
    // A replica that only relays stores ciphertext: no plaintext in its storage.
    await relay.applyOps(await opsOf(a), { source: "a" });
    const stored = await storeOf(relay).readNode("diary/1");
    assert.equal(stored.length, 2);
    const plain = new TextEncoder().encode("the secret plan");
    for (const r of stored) {
      const bytes = r.value;
      for (let i = 0; i + plain.length <= bytes.length; i++) {
        assert.ok(!plain.every((x, j) => bytes[i + j] === x), "plaintext found in a relay's storage");
      }
    }
    await assert.rejects(relay.trust.getPrivate("diary/1"), TrustError);
    // Bob (a reader) gets it through the relay and opens it; Eve (not a reader) cannot.
    for (const db of [b, e]) await db.applyOps(await opsOf(relay), { source: "relay" });
    assert.deepEqual(await b.trust.getPrivate("diary/1"), { text: "the secret plan", n: 42 });
    await assert.rejects(e.trust.getPrivate("diary/1"), /was not shared with this replica/);
    // A sealed value moved to another field does not open.
    const sealed = recordToOp(stored[0]); // written unsigned by a keyless replica into a field of its own
    await b.applyOps([{
      soul: sealed.soul,
      field: "moved",
      value: sealed.value,
      state: sealed.state,
      actor: "0000000000000009",
    }]);
    await assert.rejects(b.trust.getPrivate("diary/1"), /does not open/);
    // Rotation without bob: he keeps what he could read, not what comes after.
    assert.equal(await a.trust.shareKey("notes", []), 2);
    await a.trust.putPrivate("diary/2", { text: "after bob left" }, "notes");
    await b.applyOps(await opsOf(a), { source: "a" });
    await assert.rejects(b.trust.getPrivate("diary/2"), /version 2 .* was not shared/);
    assert.deepEqual(await a.trust.getPrivate("diary/2"), { text: "after bob left" });
    // Only the owner writes its keyring: bob cannot add himself.
    await assert.rejects(
      b.put(`~${alice.id}/~keys/notes`, { [`2.${bob.id}`]: new Uint8Array(40) }),
      TrustError,
    );
    for (const db of [a, b, e, relay]) await db.close();
  });
});

describe("space manifests", () => {
  it("a writers list admits only its writers; a newer manifest of the owner changes it; others are ignored", async () => {
    const owner = await createIdentity(), w1 = await createIdentity(), w2 = await createIdentity();
    const stranger = await createIdentity();
    const o = await replica(owner), a = await replica(w1), b = await replica(w2), s = await replica(stranger);
    const keyless = await replica(), member = await replica();
    const m1 = await o.trust.createManifest({ writers: [w1.id], seq: 1 });
    for (const db of [o, a, b, s, keyless, member]) assert.equal(await db.trust.useManifest(m1), true);
    assert.deepEqual(member.trust.manifest?.writers, [w1.id]);
    assert.equal(member.trust.manifest?.owner, owner.id);
    // Listed writers and the owner write; the others cannot, locally or through a peer.
    await a.put("doc", { by: "w1" });
    await o.put("doc2", { by: "owner" });
    assert.equal((await member.applyOps([...await opsOf(a), ...await opsOf(o)], { source: "p" })).applied, 2);
    await assert.rejects(b.put("doc", { by: "w2" }), /not a writer of space/);
    await assert.rejects(keyless.put("doc", { by: "keyless" }), /not a writer of space/);
    const outside = await replica(w2); // w2's ops, written where no manifest holds
    await outside.put("doc", { by: "w2" });
    await refused(member, await opsOf(outside), /writer not in the space's manifest/);
    const unsigned = {
      soul: "doc",
      field: "by",
      value: "x",
      state: (await opsOf(a))[0].state,
      actor: "0000000000000003",
    };
    await refused(member, [unsigned], /unsigned op in a space with a writers list/);
    // A manifest with a lower (or the same) seq is not adopted; one from another key never is.
    const m0 = await o.trust.createManifest({ writers: "anyone", seq: 0 });
    assert.equal(await member.trust.useManifest(m0), false);
    const usurper = await s.trust.createManifest({ writers: "anyone", seq: 99 });
    assert.equal(await member.trust.useManifest(usurper), false, "another owner's manifest");
    assert.equal(member.trust.manifest?.seq, 1);
    const damaged = m1.slice();
    damaged[damaged.length - 1] ^= 1;
    const fresh = await replica();
    assert.equal(await fresh.trust.useManifest(damaged), false, "a manifest whose signature fails");
    // A manifest of another space is not adopted.
    const otherSpace = await replica(owner, "elsewhere");
    assert.equal(
      await fresh.trust.useManifest(await otherSpace.trust.createManifest({ writers: [], seq: 5 })),
      false,
    );
    // The owner adds w2: its ops are accepted from then on.
    const m2 = await o.trust.createManifest({ writers: [w1.id, w2.id], seq: 2 });
    assert.equal(await member.trust.useManifest(m2), true);
    assert.equal((await member.applyOps(await opsOf(outside), { source: "p" })).applied, 1);
    for (const db of [o, a, b, s, keyless, member, outside, fresh, otherSpace]) await db.close();
  });
});

describe("malformed and early ops, from a peer", () => {
  it("are refused before anything is stored or deferred, and the honest state is unchanged", async () => {
    const alice = await createIdentity();
    const a = await replica(alice), b = await replica();
    await a.put("doc", { v: 1 });
    const [good] = await opsOf(a);
    await b.applyOps([good]);
    const before = await b.stateHash();
    const far = (Date.now() + 60 * 60_000) * 0x10000; // an hour ahead: beyond maxDrift (10 min)
    const farState = Math.floor(far / 2 ** 32).toString(16).padStart(8, "0") +
      (far >>> 0).toString(16).padStart(8, "0");
    // Forged and early: refused by the trust check, never deferred.
    const forged: Op = { soul: "doc", field: "v", value: 2, state: farState, actor: alice.actor };
    const r = await b.applyOps([forged], { source: "peer" });
    assert.deepEqual([r.applied, r.deferred, r.refused], [0, 0, 1]);
    assert.equal(b.deferredStatus().count, 0, "a forged op is not kept aside");
    // Signed and early (its writer's clock an hour ahead): kept aside, never applied early, as any op
    // beyond maxDrift is.
    const early = await Database.create({
      store: await openStore({ storage: "memory" }),
      kernels: await loadKernels(),
      identity: alice,
      now: () => Date.now() + 3_600_000,
    });
    await early.put("doc", { v: 3 });
    const e = await b.applyOps(await opsOf(early), { source: "peer" });
    assert.deepEqual([e.applied, e.deferred, e.refused ?? 0], [0, 1, 0]);
    assert.equal(b.deferredStatus().count, 1);
    assert.equal(await b.stateHash(), before, "nothing applied early");
    // Malformed batches: the whole batch is refused, nothing stored.
    const { encode } = await import("../core/msgpack.ts");
    const deep: unknown = [[[[[[[[1]]]]]]]];
    const st = new Uint8Array(8), ac = new Uint8Array(8);
    const bad: [string, Uint8Array][] = [
      ["deep nesting", encode([1, ["s", "f", deep, st, ac]] as never)],
      ["a __proto__ key", encode([1, ["s", "f", { "__proto__": "x" }, st, ac]] as never)],
      ["trailing bytes", Uint8Array.from([...encodeOps([good]), 0])],
    ];
    for (const [what, bytes] of bad) {
      await assert.rejects(b.applyOps(bytes, { source: "peer" }), Error, what);
    }
    await assert.rejects(
      b.applyOps(new Uint8Array(65 * 1024 * 1024), { source: "peer" }),
      /exceeds|too large|limit/,
      "an oversize batch",
    );
    assert.equal(await b.stateHash(), before);
    assert.equal(b.deferredStatus().count, 1);
    for (const db of [a, b, early]) await db.close();
  });
});
